from __future__ import annotations

import pytest

from nasforge.proxies import Batch, create

torch = pytest.importorskip("torch")


def test_params_is_the_count_in_millions(batch):
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.Flatten(),
        torch.nn.LazyLinear(10),
    )
    net(batch.inputs)  # materialise the lazy layer: 4 * 6 * 6 inputs
    count = (3 * 4 * 9 + 4) + (4 + 4) + (144 * 10 + 10)
    assert create("params").score(net, batch) * 1e6 == pytest.approx(count)


def test_nb201_params_match_the_benchmark(nb201, bench):
    arch = nb201.from_index(6111)
    b = Batch(torch.zeros(2, 3, 32, 32), torch.tensor([0, 1]), 10)
    value = create("params").score(nb201.build(arch), b)
    assert value == pytest.approx(bench.query(arch, "cifar10", "params_M"), abs=1e-6)
