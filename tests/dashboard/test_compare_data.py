"""Comparison folders read back for the dashboard: the summary, curves recomputed from the
comparison itself, and clear errors for folders that are not comparisons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge.dashboard._compare import load_comparison
from nasforge.dashboard._data import DashboardData
from nasforge.errors import InvalidConfigError
from nasforge.experiments import run_comparison
from nasforge.storage import InMemoryStorage

STRATEGIES = ["regularized-evolution", "random"]
PARAMS = {"regularized-evolution": {"population_size": 5, "tournament_size": 2}}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    comparison = run_comparison(
        STRATEGIES,
        datasets=["cifar10", "cifar100"],
        seeds=3,
        budget=12,
        strategy_params=PARAMS,
        dedupe=False,
        n_jobs=1,
    )
    folder = tmp_path_factory.mktemp("cmp") / "re-vs-random"
    comparison.write(folder)
    return comparison, folder


def test_a_written_comparison_is_read_back(written):
    comparison, folder = written
    with DashboardData(InMemoryStorage(), comparisons=[folder]) as data:
        (payload,) = data.comparisons()
        (entry,) = data.overview()["comparisons"]
    json.dumps(payload, allow_nan=False)
    assert entry == {
        "id": 0,
        "name": "re-vs-random",
        "benchmark": "nb201",
        "datasets": ["cifar10", "cifar100"],
        "strategies": STRATEGIES,
    }
    assert (payload["budget"], payload["n_seeds"], payload["benchmark"]) == (12, 3, "nb201")
    rows = {(r.dataset, r.strategy): r for r in comparison.summary() if r.budget == 12}
    for dataset in ("cifar10", "cifar100"):
        for strategy in STRATEGIES:
            shown = payload["datasets"][dataset][strategy]
            row = rows[(dataset, strategy)]
            assert shown["mean_test"] == pytest.approx(row.mean_test, rel=1e-5)
            assert shown["optimum_rate"] == pytest.approx(row.optimum_rate)
            assert shown["ri"] == pytest.approx(row.ri, rel=1e-5, abs=1e-9)
            assert shown["knowledge"] == row.knowledge
            curve = payload["curves"][dataset][strategy]
            assert curve["x"] == list(range(1, 13))
            _, test = comparison.trajectories(strategy, dataset)
            assert curve["mean"] == pytest.approx(np.nanmean(test, axis=0).tolist(), rel=1e-5)
            spread = np.nanstd(test, axis=0, ddof=1)
            assert curve["high"] == pytest.approx(
                (np.nanmean(test, axis=0) + spread).tolist(), rel=1e-5
            )
            assert curve["low"] == pytest.approx(
                (np.nanmean(test, axis=0) - spread).tolist(), rel=1e-5
            )
            # the mean at the budget is the summary's mean test accuracy
            assert curve["mean"][-1] == pytest.approx(row.mean_test, rel=1e-5)


def test_a_long_budget_is_sampled(written, tmp_path, monkeypatch):
    from nasforge.dashboard import _compare

    _, folder = written
    monkeypatch.setattr(_compare, "MAX_POINTS", 5)
    curve = load_comparison(folder, 0)["curves"]["cifar10"]["random"]
    assert curve["x"][0] == 1 and curve["x"][-1] == 12 and len(curve["x"]) == 5


def test_folders_that_are_not_comparisons_are_refused(written, tmp_path):
    _, folder = written
    with pytest.raises(InvalidConfigError, match=r"no such folder.*summary\.json and trials\.csv"):
        DashboardData(InMemoryStorage(), comparisons=[tmp_path / "nowhere"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidConfigError, match=r"'.*empty'.*summary\.json is missing"):
        load_comparison(empty, 0)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    with pytest.raises(InvalidConfigError, match=r"summary\.json is not JSON"):
        load_comparison(broken, 0)
    (broken / "summary.json").write_text((folder / "summary.json").read_text())
    with pytest.raises(InvalidConfigError, match=r"trials\.csv is missing"):
        load_comparison(broken, 0)
    (broken / "trials.csv").write_text("dataset,strategy\ncifar10,random\n")
    with pytest.raises(InvalidConfigError, match="lacks the columns seed, cum_cost, best_test"):
        load_comparison(broken, 0)
    lines = (folder / "trials.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = dict(zip(header, lines[3].split(","), strict=True))
    row["cum_cost"] = "many"
    lines[3] = ",".join(row[c] for c in header)
    (broken / "trials.csv").write_text("\n".join(lines))
    with pytest.raises(InvalidConfigError, match=r"line 4 of trials\.csv"):
        load_comparison(broken, 0)
