"""The bundled NAS-Bench-201 table: known records, the protocol, metrics, fidelities, errors."""

from __future__ import annotations

import csv
import gzip
import math

import numpy as np
import pytest

from nasforge.errors import InvalidArchitectureError, UnknownNameError


def test_known_optima_of_each_dataset(nb201, bench):
    # Published / README-verified optima (NAS-Bench-201 v1.1 and NATS-Bench numbers).
    c10 = bench.column("cifar10", "valid_acc")
    assert int(np.argmax(c10)) == 6111
    best = nb201.from_index(6111)
    assert bench.query(best, "cifar10", "valid_acc") == pytest.approx(91.606667, abs=1e-6)
    assert bench.query(best, "cifar10", "test_acc") == pytest.approx(94.373333, abs=1e-6)
    assert np.nanmax(bench.column("cifar10", "test_acc")) == pytest.approx(94.373333, abs=1e-6)
    assert int(np.argmax(bench.column("cifar100", "valid_acc"))) == 9930
    assert np.max(bench.column("cifar100", "test_acc")) == pytest.approx(73.513333, abs=1e-5)
    assert int(np.argmax(bench.column("imagenet16-120", "valid_acc"))) == 10676
    assert int(np.argmax(bench.column("imagenet16-120", "test_acc"))) == 857


def test_architecture_zero_matches_hw_nas_bench_readme(nb201, bench):
    arch = nb201.from_index(0)
    assert bench.query(arch, "cifar10", "latency_ms[edgegpu]") == pytest.approx(5.8074, abs=1e-4)
    assert bench.query(arch, "cifar10", "energy_mJ[edgegpu]") == pytest.approx(24.2266, abs=1e-4)
    assert bench.query(arch, "cifar10", "latency_ms[pixel3]") == pytest.approx(3.6059, abs=1e-4)
    assert bench.query(arch, "cifar10", "latency_ms[fpga]") == pytest.approx(2.5730, abs=1e-4)


def test_cost_columns_range(bench):
    params = bench.column("cifar10", "params_M")
    flops = bench.column("cifar10", "flops_M")
    assert params.min() == pytest.approx(0.0733, abs=1e-4)
    assert params.max() == pytest.approx(1.5315, abs=1e-4)
    assert flops.min() == pytest.approx(2 * 7.78, abs=0.02)  # 2 x MACs, as nasforge.hardware
    assert flops.max() == pytest.approx(2 * 220.12, abs=0.02)
    assert np.array_equal(flops, np.round(2 * bench.column("cifar10", "macs_M"), 6))


def test_disconnected_cells_have_chance_accuracy(nb201, bench):
    dead = nb201.from_choices((0, 0, 0, 0, 0, 0))
    assert bench.query(dead, "cifar10", "test_acc") == pytest.approx(10.0)
    assert bench.query(dead, "cifar100", "test_acc") == pytest.approx(1.0)


def test_twelve_epoch_fidelity_and_cost(nb201, bench):
    arch = nb201.from_index(1)
    assert bench.query(arch, "cifar100", "valid_acc", 12) == pytest.approx(57.8)
    assert bench.query(arch, "cifar100", "valid_acc", 200) == pytest.approx(69.826667, abs=1e-6)
    assert bench.cost("cifar10", 12) == pytest.approx(0.06)
    assert bench.cost("cifar10") == 1.0
    assert "train_acc" not in {m.name for m in bench.metrics("cifar10", 12)}


def test_metric_catalogue(bench):
    names = {m.name for m in bench.metrics("cifar10")}
    for required in ("valid_acc", "test_acc", "train_acc", "params_M", "flops_M"):
        assert required in names
    for device in ("edgegpu", "raspi4", "edgetpu", "pixel3", "eyeriss", "fpga", "1080ti_1"):
        assert f"latency_ms[{device}]" in names
    assert "energy_mJ[fpga]" in names
    assert len(bench.devices()) == 29


def test_missing_values_are_left_out(nb201, bench):
    column = bench.column("cifar10", "latency_ms[edgetpu]")
    missing = int(np.flatnonzero(np.isnan(column))[0])
    arch = nb201.from_index(missing)
    assert math.isnan(bench.query(arch, "cifar10", "latency_ms[edgetpu]"))
    assert "latency_ms[edgetpu]" not in bench.query_all(arch, "cifar10")


def test_columns_are_read_only(bench):
    with pytest.raises(ValueError):
        bench.column("cifar10", "valid_acc")[0] = 0.0


def test_bad_names(nb201, bench):
    arch = nb201.from_index(0)
    with pytest.raises(UnknownNameError, match="cifar100"):
        bench.query(arch, "cifar1000", "valid_acc")
    with pytest.raises(UnknownNameError, match="Did you mean 'valid_acc'"):
        bench.query(arch, "cifar10", "val_acc")
    with pytest.raises(UnknownNameError, match="200"):
        bench.query(arch, "cifar10", "valid_acc", 50)
    with pytest.raises(InvalidArchitectureError):
        bench.row("not an arch")  # type: ignore[arg-type]


@pytest.mark.shared_data
def test_bundled_table_equals_the_shared_csv(shared_nb201, nb201, bench):
    with gzip.open(shared_nb201 / "nb201_accuracy.csv.gz", "rt") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15625
    for row in rows[::97]:
        arch = nb201.parse(row["arch"])
        assert nb201.index(arch) == int(row["arch_index"])
        assert bench.query(arch, "cifar10", "valid_acc") == float(row["cifar10_valid_acc"])
        assert bench.query(arch, "cifar10", "test_acc") == float(row["cifar10_test_acc"])
        assert bench.query(arch, "imagenet16-120", "test_acc") == float(row["imagenet16_test_acc"])
        # the release's "FLOPs" are MACs plus the classifier's 100 bias additions
        macs = bench.query(arch, "cifar100", "macs_M")
        assert macs == pytest.approx(float(row["flops_M_cifar100"]) - 100 / 1e6, abs=1e-6)
        assert bench.query(arch, "cifar100", "flops_M") == pytest.approx(2 * macs, abs=1e-6)


def _read_columns_in_child(_: int) -> float:
    import nasforge

    bench = nasforge.tabular.create("nb201")
    return float(sum(bench.column(d, "valid_acc").sum() for d in ("cifar10", "cifar100")))


def test_table_reads_are_safe_in_forked_processes(bench):
    import multiprocessing

    bench.column("cifar10", "test_acc")  # the parent has the archive open
    expected = _read_columns_in_child(0)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_read_columns_in_child, range(8))
    assert results == [expected] * 8
