"""The NB201 builder is the benchmark's network: its parameters and FLOPs equal the table."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from nasforge.errors import InvalidConfigError  # noqa: E402

CASES = [0, 1, 6111, 9930, 10676, 857]  # includes the optima and a cell with none edges


@pytest.mark.parametrize("index", CASES)
@pytest.mark.parametrize(
    ("dataset", "classes", "size"),
    [("cifar10", 10, 32), ("cifar100", 100, 32), ("imagenet16-120", 120, 16)],
)
def test_params_and_flops_equal_the_table(nb201, bench, index, dataset, classes, size):
    arch = nb201.from_index(index)
    with torch.device("meta"):
        net = nb201.build(arch, num_classes=classes).eval()
        params = sum(p.numel() for p in net.parameters()) / 1e6
        with FlopCounterMode(display=False) as counter:
            net(torch.zeros(1, 3, size, size))
    # flops_M is what torch's counter counts (2 x MACs), as in nasforge.hardware
    flops = counter.get_total_flops() / 1e6
    assert params == pytest.approx(bench.query(arch, dataset, "params_M"), abs=5e-7)
    assert flops == pytest.approx(bench.query(arch, dataset, "flops_M"), abs=2e-6)
    macs = counter.get_total_flops() / 2 / 1e6
    assert macs == pytest.approx(bench.query(arch, dataset, "macs_M"), abs=5e-7)


def test_forward_shapes_and_reduced_settings(nb201):
    arch = nb201.from_index(6111)
    small = nb201.build(arch, num_classes=7, channels=4, cells_per_stage=1)
    assert small(torch.zeros(2, 3, 16, 16)).shape == (2, 7)
    full = nb201.build(arch)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in full.parameters())


def test_none_edges_output_zeros_and_skip_is_identity(nb201):
    from nasforge.ops.nb201 import NB201Cell

    x = torch.randn(2, 4, 8, 8)
    dead = NB201Cell((0, 0, 0, 0, 0, 0), 4)
    assert torch.count_nonzero(dead(x)) == 0
    skip = NB201Cell((0, 0, 0, 1, 0, 0), 4)  # only 0->3 is skip
    assert torch.equal(skip(x), x)


def test_bad_settings(nb201):
    with pytest.raises(InvalidConfigError, match="channels"):
        nb201.build(nb201.from_index(0), channels=0)
