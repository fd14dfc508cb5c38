from __future__ import annotations

import pytest

from nasforge.proxies import create

torch = pytest.importorskip("torch")


def test_macs_of_a_convolution_in_millions(batch):
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1, bias=False),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 10),
    )
    macs = 3 * 4 * 9 * 8 * 8 + 4 * 10
    assert create("flops").score(net, batch) * 1e6 == pytest.approx(macs)
