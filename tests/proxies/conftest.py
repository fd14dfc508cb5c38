"""Tiny networks and batches for the proxy tests."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

NONE_CELL = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
GOOD_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)


@pytest.fixture
def batch():
    from nasforge.proxies import Batch

    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(16, 3, 8, 8, generator=g), torch.arange(16) % 4, num_classes=10)


@pytest.fixture
def tiny_nb201(nb201):
    """``build(text)``: a small NB201 network (4 channels, one cell per stage), init seed 0."""

    def build(text: str):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return nb201.build(nb201.parse(text), channels=4, cells_per_stage=1)

    return build


def linear_net(*weights, bias=False):
    """A chain of ``nn.Linear`` layers with the given weight matrices (rows = outputs)."""
    layers = [torch.nn.Flatten()]
    for w in weights:
        w = torch.as_tensor(w, dtype=torch.float32)
        layer = torch.nn.Linear(w.shape[1], w.shape[0], bias=bias)
        with torch.no_grad():
            layer.weight.copy_(w)
        layers.append(layer)
    return torch.nn.Sequential(*layers)
