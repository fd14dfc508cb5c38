"""Net2Net transformations: function preservation, shapes, and refusals with reasons."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nasforge import growth, spaces
from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError

TOL = 1e-5


def _settled(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """``model`` with batch-norm statistics away from their defaults, in eval mode."""
    gen = torch.Generator().manual_seed(1)
    for p in model.parameters():
        with torch.no_grad():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(example.shape, generator=gen))
    return model.eval()


def _gap(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float((a.eval()(x) - b.eval()(x)).abs().max())


def _plain_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 12),
        nn.ReLU(),
        nn.Linear(12, 5),
    )


@pytest.fixture(scope="module")
def plain() -> tuple[nn.Module, torch.Tensor]:
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    return _settled(_plain_cnn(), x), x


def test_plain_cnn_layers_and_reasons(plain: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = plain
    found = growth.layers(model, x)
    assert [(layer.name, layer.kind) for layer in found] == [
        ("0", "conv"),
        ("4", "conv"),
        ("9", "linear"),
        ("11", "linear"),
    ]
    assert [layer.widenable for layer in found] == [True, True, True, False]
    assert [layer.removable for layer in found] == [False, True, False, False]
    assert "network's output" in " ".join(found[3].reasons)
    assert found[0].in_features == 3 and found[0].out_features == 6
    rows = growth.describe(model, x)
    assert rows[0]["kernel"] == 3 and rows[0]["size"] == 8 and rows[1]["size"] == 4
    assert rows[2]["kind"] == "linear" and rows[2]["in"] == 96


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_widen_preserves_function_and_leaves_original(
    plain: tuple[nn.Module, torch.Tensor], layer: int
) -> None:
    model, x = plain
    before = {k: v.clone() for k, v in model.state_dict().items()}
    width = growth.layers(model, x)[layer].out_features
    wider = growth.widen(model, x, layer, width + 5, rng=np.random.default_rng(layer))
    assert growth.layers(wider, x)[layer].out_features == width + 5
    assert _gap(wider, model, x) <= TOL
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    noisy = growth.widen(model, x, layer, width + 5, rng=np.random.default_rng(0), noise=0.5)
    assert _gap(noisy, model, x) > TOL


def test_widen_then_shrink_back_is_the_same_function(
    plain: tuple[nn.Module, torch.Tensor],
) -> None:
    model, x = plain
    wider = growth.widen(model, x, "4", 11, rng=np.random.default_rng(3))
    back = growth.shrink(wider, x, {"4": 6})
    assert growth.layers(back, x)[1].out_features == 6
    assert _gap(back, model, x) <= TOL
    assert sum(p.numel() for p in back.parameters()) == sum(p.numel() for p in model.parameters())


def test_shrink_keeps_largest_l1_filters_and_fixes_shapes(
    plain: tuple[nn.Module, torch.Tensor],
) -> None:
    model, x = plain
    norms = model[0].weight.detach().abs().sum((1, 2, 3))
    small = growth.shrink(model, x, {0: 3, 2: 4})
    kept = sorted(torch.argsort(norms, descending=True)[:3].tolist())
    assert torch.equal(small[0].weight, model[0].weight[kept])
    assert torch.equal(small[4].weight, model[4].weight[:, kept])
    assert small[9].out_features == 4 and small[11].in_features == 4
    assert small.eval()(x).shape == (4, 5)


def test_deepen_preserves_function(plain: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = plain
    for layer, kernel in ((0, 3), (1, 5), (2, 1)):
        deeper = growth.deepen(model, x, layer, kernel=kernel)
        assert len(growth.layers(deeper, x)) == 5
        assert _gap(deeper, model, x) <= TOL
    with pytest.raises(InvalidConfigError, match="odd"):
        growth.deepen(model, x, 0, kernel=2)


def test_remove_shape_preserving_layer(plain: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = plain
    smaller = growth.remove(model, x, [1])
    assert isinstance(smaller[4], nn.Identity)
    assert smaller.eval()(x).shape == (4, 5)
    with pytest.raises(UnsupportedOperationError, match=r"Layer 0 '0' cannot be removed.*shape"):
        growth.remove(model, x, [0])


def test_bad_layer_names_and_indices_list_valid_ones(
    plain: tuple[nn.Module, torch.Tensor],
) -> None:
    model, x = plain
    with pytest.raises(UnknownNameError, match=r"'conv9'.*0 '0', 1 '4', 2 '9', 3 '11'"):
        growth.widen(model, x, "conv9", 8, rng=np.random.default_rng(0))
    with pytest.raises(InvalidConfigError, match=r"out of range.*0 '0'.*3 '11'"):
        growth.deepen(model, x, 7)
    with pytest.raises(UnsupportedOperationError, match="network's output"):
        growth.widen(model, x, 3, 8, rng=np.random.default_rng(0))
    with pytest.raises(InvalidConfigError, match="shrink"):
        growth.widen(model, x, 0, 2, rng=np.random.default_rng(0))


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)
        self.c = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.cat([self.a(x), self.b(x)], 1))


class _DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.conv(x)
        return x


def test_refusals_name_the_construct() -> None:
    x = torch.randn(2, 3, 4, 4)
    found = growth.layers(_Branchy(), x)
    assert "concatenated" in found[0].reasons[0]
    with pytest.raises(UnsupportedOperationError, match="Cannot trace _DataDependent"):
        growth.layers(_DataDependent(), x)


def test_nb201_network_from_its_space() -> None:
    space = spaces.create("nb201")
    arch = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"
    )
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model = _settled(space.build(arch, channels=4, cells_per_stage=1), x)
    found = {layer.name: layer for layer in growth.layers(model, x)}
    assert {name for name, layer in found.items() if layer.widenable} == {
        "cells.1.conv_a.1",
        "cells.3.conv_a.1",
    }
    assert "residual sum" in found["cells.0.edges.0.1"].reasons[0]
    assert "layer 'cells.1.shortcut.1'" in found["cells.1.conv_b.1"].reasons[0]
    with pytest.raises(UnsupportedOperationError, match=r"'cells\.1\.shortcut\.1'.*residual"):
        growth.widen(model, x, "cells.1.shortcut.1", 12, rng=np.random.default_rng(0))
    wider = growth.widen(model, x, "cells.1.conv_a.1", 12, rng=np.random.default_rng(0))
    assert _gap(wider, model, x) <= TOL
    deeper = growth.deepen(model, x, "cells.0.edges.0.1")
    assert _gap(deeper, model, x) <= TOL
    removable = [name for name, layer in found.items() if layer.removable]
    assert "cells.0.edges.0.1" in removable
    assert growth.remove(model, x, removable).eval()(x).shape == (2, 10)


def test_mobilenet_network_from_its_space() -> None:
    space = spaces.create("mobilenet")
    arch = space.sample(np.random.default_rng(1))
    model = space.build(
        arch, num_classes=10, width_mult=0.25, resolution=16, stem_stride=1, first_stride=2
    )
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    model = _settled(model, x)
    found = growth.layers(model, x)
    reasons = " ".join(r for layer in found for r in layer.reasons)
    assert "depthwise convolution" in reasons
    assert "squeeze-and-excitation" in reasons and "residual sum" in reasons
    widenable = [layer for layer in found if layer.widenable]
    assert widenable and any(".expand." in layer.name for layer in widenable)
    for layer in widenable[:4]:
        wider = growth.widen(
            model, x, layer.index, layer.out_features + 3, rng=np.random.default_rng(0)
        )
        assert _gap(wider, model, x) <= TOL
        back = growth.shrink(wider, x, {layer.name: layer.out_features})
        assert _gap(back, model, x) <= TOL
    for layer in found[:3]:
        assert _gap(growth.deepen(model, x, layer.index, kernel=3), model, x) <= TOL
