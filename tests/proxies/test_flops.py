from __future__ import annotations

import pytest

from nasforge.proxies import create

torch = pytest.importorskip("torch")


def test_operations_counted_as_the_reference_in_millions(batch):
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1, bias=False),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 10),
    )
    conv = 3 * 9 * 4 * 8 * 8  # C_in * k * k per output element
    pooling = 4 * 8 * 8  # one per input element of the global pooling
    linear = 4 * 10 + 10  # weights and bias
    assert create("flops").score(net, batch) * 1e6 == pytest.approx(conv + pooling + linear)


@pytest.mark.shared_data
def test_nb201_flops_match_the_reference_table(nb201, bench, shared_nb201):
    from nasforge.proxies import Batch
    from nasforge.proxies.scores import read_reference

    table = read_reference(shared_nb201 / "nb201_zero_cost_proxies.csv.gz", proxies=["flops"])
    b = Batch(torch.zeros(2, 3, 32, 32), torch.tensor([0, 1]), 10)
    for row in (0, 1, 500):
        ours = create("flops").score(nb201.build(table.archs[row]), b)
        assert ours == pytest.approx(table.values[row, 0], abs=2e-3)
