from __future__ import annotations

import math

import pytest

from nasforge.proxies import create

from .conftest import GOOD_CELL

torch = pytest.importorskip("torch")


def test_zen_ignores_the_initial_weights_and_depends_on_its_seed(nb201, batch):
    arch = nb201.parse(GOOD_CELL)
    a = nb201.build(arch, channels=4, cells_per_stage=1)
    b = nb201.build(arch, channels=4, cells_per_stage=1)  # other initial weights
    zen = create("zen")
    assert zen.score(a, batch, seed=1) == zen.score(b, batch, seed=1)
    assert zen.score(a, batch, seed=1) != zen.score(a, batch, seed=2)


def test_without_batch_norm_zen_is_the_log_feature_change(batch):
    conv = torch.nn.Conv2d(3, 2, 1, bias=False)
    net = torch.nn.Sequential(
        conv, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(2, 10)
    )
    score = create("zen").score(net, batch, seed=0)
    # replay the proxy's draws: conv weight, linear weight, then x and e
    g = torch.Generator().manual_seed(0)
    w = torch.randn(conv.weight.shape, generator=g)
    torch.randn((10, 2), generator=g)
    shape = (batch.size, *batch.image_shape)
    torch.randn(shape, generator=g)
    e = torch.randn(shape, generator=g)
    change = torch.nn.functional.conv2d(0.01 * e, w).abs().sum(dim=(1, 2, 3)).mean()
    assert score == pytest.approx(math.log(float(change)), rel=1e-4)
