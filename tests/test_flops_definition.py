"""``flops_M`` is one quantity everywhere: floating-point operations, ``2 * macs_M``, in the
bundled table (what ``nasforge search`` prints), ``nasforge profile``, nasforge.hardware and
the train evaluator."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import nasforge
from nasforge import cli
from nasforge.hardware import costs

runner = CliRunner()


@pytest.mark.parametrize(("index", "dataset"), [(0, "cifar10"), (1234, "cifar100")])
def test_search_and_profile_print_the_same_flops(index, dataset):
    arch = nasforge.spaces.create("nb201").from_index(index)
    table = nasforge.evaluators.create("tabular", dataset=dataset, metrics=["flops_M", "macs_M"])
    looked_up = table.evaluate(arch).metrics
    result = runner.invoke(cli.app, ["profile", str(arch), "--dataset", dataset, "--json"])
    assert result.exit_code == 0, result.output
    profiled = json.loads(result.stdout)["metrics"]
    assert profiled["flops_M"] == pytest.approx(2 * profiled["macs_M"], abs=1e-6)
    assert looked_up["flops_M"] == pytest.approx(profiled["flops_M"], abs=2e-6)
    assert looked_up["macs_M"] == pytest.approx(profiled["macs_M"], abs=1e-6)
    assert table.free_metrics(arch)["flops_M"] == looked_up["flops_M"]


def test_hardware_costs_count_two_flops_per_multiply_accumulate():
    torch = pytest.importorskip("torch")
    layer = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    counted = costs.count_flops(layer, (3, 6, 6))
    macs = 8 * 3 * 9 * 36 / 1e6
    assert counted.macs_M == pytest.approx(macs)
    assert counted.flops_M == pytest.approx(2 * macs)
