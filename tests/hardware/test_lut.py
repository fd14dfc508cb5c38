"""Latency lookup tables: exact recovery of additive latencies, reports and errors."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge import spaces
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.hardware.lut import (
    LatencyLUT,
    device_report,
    evaluate,
    fit_table,
    mean_relative_error,
    spearman,
)


def additive(choices: np.ndarray, constant: float, entries: np.ndarray) -> np.ndarray:
    return np.asarray(constant + entries[np.arange(entries.shape[0]), choices].sum(axis=1))


@pytest.fixture
def synthetic(nb201):
    """Entries of an exactly additive latency (option 0 costs nothing), and 120 cells."""
    rng = np.random.default_rng(1)
    entries = rng.uniform(0.1, 2.0, size=(6, 5))
    entries[:, 0] = 0.0
    archs = [nb201.sample(rng) for _ in range(120)]
    choices = np.array([a.choices for a in archs])
    return entries, archs, additive(choices, 3.0, entries)


def test_recovers_an_exactly_additive_latency(nb201, synthetic):
    entries, archs, latency = synthetic
    lut = LatencyLUT.fit(nb201, archs, latency, metric="latency_ms[synthetic]")
    assert lut.constant == pytest.approx(3.0)
    np.testing.assert_allclose(lut.entries, entries, atol=1e-9)
    every = np.array([a.choices for a in nb201])
    np.testing.assert_allclose(lut.predict(every), additive(every, 3.0, entries), atol=1e-9)
    assert float(lut.predict(archs[0])) == pytest.approx(latency[0])
    report = evaluate(lut, every, additive(every, 3.0, entries))
    assert report.n == len(every) and report.spearman == pytest.approx(1.0)
    assert report.mean_relative_error < 1e-9 and report.median_relative_error < 1e-9
    table = lut.table()
    assert table["constant"][""] == pytest.approx(3.0)
    assert table["edge0"]["none"] == 0.0
    assert table["edge2"]["nor_conv_3x3"] == pytest.approx(entries[2, 3])


def test_a_shift_of_option_zero_moves_into_the_constant(nb201, synthetic):
    entries, archs, _ = synthetic
    shifted = entries + 0.5  # option 0 now costs 0.5 on every edge
    choices = np.array([a.choices for a in archs])
    lut = LatencyLUT.fit(nb201, choices, additive(choices, 3.0, shifted))
    assert lut.constant == pytest.approx(3.0 + 6 * 0.5)
    np.testing.assert_allclose(lut.entries, entries, atol=1e-9)


def test_noisy_latency_is_fitted_approximately(nb201, synthetic):
    _, archs, latency = synthetic
    noisy = latency * np.random.default_rng(2).normal(1.0, 0.02, size=len(latency))
    lut = LatencyLUT.fit(nb201, archs, noisy)
    report = evaluate(lut, archs, latency)
    assert report.spearman > 0.95 and report.mean_relative_error < 0.03


def test_missing_latencies_are_dropped(nb201, synthetic):
    entries, archs, latency = synthetic
    holes = latency.copy()
    holes[::7] = np.nan
    lut = LatencyLUT.fit(nb201, archs, holes)
    np.testing.assert_allclose(lut.entries, entries, atol=1e-9)


def test_fit_errors(nb201, synthetic):
    _, archs, latency = synthetic
    with pytest.raises(InvalidConfigError, match="at least"):
        LatencyLUT.fit(nb201, archs[:10], latency[:10])
    with pytest.raises(InvalidConfigError, match="one each"):
        LatencyLUT.fit(nb201, archs, latency[:-1])
    no_pool = [a for a in archs if 4 not in a.choices[:1]]
    lat = latency[[i for i, a in enumerate(archs) if 4 not in a.choices[:1]]]
    with pytest.raises(InvalidConfigError, match="avg_pool_3x3"):
        LatencyLUT.fit(nb201, no_pool, lat)
    with pytest.raises(UnsupportedOperationError):
        LatencyLUT.fit(spaces.create("darts"), [], [])
    lut = LatencyLUT.fit(nb201, archs, latency)
    with pytest.raises(InvalidConfigError, match="options"):
        lut.predict(np.array([[0, 0, 0, 0, 0, 7]]))


def test_spearman_and_relative_error_by_hand():
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties share their mid-rank: ranks (1.5, 1.5, 3) against (1, 2, 3)
    assert spearman([5, 5, 7], [1, 2, 3]) == pytest.approx(0.8660254)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert mean_relative_error([1.1, 1.8], [1.0, 2.0]) == pytest.approx(0.1)


def test_tables_of_nb201_devices():
    # the FPGA column of HW-NAS-Bench is an additive model itself: a table recovers it
    _, held_out = fit_table("nb201", "cifar10", "latency_ms[fpga]", n_train=100, seed=0)
    assert len(held_out) == 15_625 - 100
    (fit,) = device_report("nb201", "cifar10", ["fpga"], n_train=100)
    assert fit.report.mean_relative_error < 1e-6
    assert fit.lut.entries[0, 0] == 0.0 and fit.metric == "latency_ms[fpga]"
    with pytest.raises(InvalidConfigError):
        fit_table("nb201", "cifar10", "latency_ms[fpga]", n_train=0)


def test_lookup_tables_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nasforge.hardware as h, nasforge.hardware.lut\n"
        "assert 'torch' not in sys.modules, 'lut pulled torch in'\n"
        "h.count_params\n"
        "assert 'torch' in sys.modules\n"
        "try:\n    h.nope\nexcept AttributeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "has no attribute 'nope'" in out.stdout
