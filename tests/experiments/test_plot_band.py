"""Confidence bands of the comparison plots: Student's t, not the normal 1.96."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.experiments import plot
from nasforge.experiments.plot import _mean_and_band, _t_quantile, t_quantile


@pytest.mark.parametrize("df", [*range(1, 40), 57, 120, 999, 5000, 10_001, 250_000])
def test_fallback_matches_scipy(df):
    stats = pytest.importorskip("scipy.stats")
    for p in (0.025, 0.3, 0.5, 0.6, 0.9, 0.975, 0.995, 0.99999):
        assert _t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-12)
    assert t_quantile(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-12)


def test_known_values_without_scipy(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scipy", None)
    # two-sided 95% quantiles from printed tables
    for df, value in [(1, 12.706), (2, 4.303), (3, 3.182), (10, 2.228), (30, 2.042)]:
        assert t_quantile(0.975, df) == pytest.approx(value, abs=5e-4)
    assert t_quantile(0.975, 10**7) == pytest.approx(1.95996, abs=1e-5)
    with pytest.raises(ValueError, match="df"):
        t_quantile(0.975, 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        t_quantile(1.0, 3)


def test_band_uses_t_with_the_seeds_measured_at_each_point():
    values = np.array([[1.0, 2.0, 5.0], [3.0, np.nan, 7.0], [5.0, 4.0, np.nan]])
    mean, half = _mean_and_band(values)
    assert mean.tolist() == [3.0, 3.0, 6.0]
    se = np.array([2.0 / np.sqrt(3), np.sqrt(2.0) / np.sqrt(2), np.sqrt(2.0) / np.sqrt(2)])
    expected = se * np.array([t_quantile(0.975, 2), t_quantile(0.975, 1), t_quantile(0.975, 1)])
    assert half == pytest.approx(expected)
    # with two seeds the band is 12.7 / 1.96 = 6.5 times wider than the normal one
    assert half[1] / (1.96 * se[1]) == pytest.approx(6.48, abs=0.01)
    assert plot.CONFIDENCE == 0.95
    one = _mean_and_band(np.array([[4.0, np.nan]]))
    assert one[0][0] == 4.0 and one[1].tolist() == [0.0, 0.0] and np.isnan(one[0][1])
