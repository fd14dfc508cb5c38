"""The multi-objective comparison: runs, hypervolume ratios, protocol, files and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.pareto import front_indices, hypervolume, true_front

pytest.importorskip("moocore", reason="the hypervolume needs the [mo] extra")

from nasforge.experiments.pareto import run_pareto_comparison

OBJECTIVES = ["test_acc:max", "params_M:min"]


@pytest.fixture(scope="module")
def small():
    return run_pareto_comparison(
        ["nsga2", "mo-local-search"], objectives=OBJECTIVES, seeds=3, budget=40, n_jobs=1
    )


def test_runs_every_strategy_and_the_baseline(small):
    assert small.strategies == ("nsga2", "mo-local-search", "random")
    assert small.seeds == (0, 1, 2)
    rows = small.summary([20, 40])
    assert [(r.budget, r.strategy) for r in rows] == [
        (b, s) for b in (20, 40) for s in small.strategies
    ]
    for row in rows:
        assert row.n_runs == 3 and 0 < row.mean_ratio <= 1 and row.min_ratio <= row.mean_ratio
        assert row.reference == "nadir" and 0 <= row.recall <= 1
    assert small.default_budgets() == [40]


def test_ratio_is_the_hypervolume_of_the_front_found(small, bench):
    tf = true_front(bench, "cifar10", OBJECTIVES)
    found = small.found("nsga2", 1, 40)
    assert len(front_indices(found)) == len(found)  # a front: nothing in it is dominated
    expected = hypervolume(found, tf.reference) / tf.hypervolume
    assert small.ratios("nsga2", 40)[1] == pytest.approx(expected)
    # more queries never shrink the front's volume
    assert np.all(small.ratios("nsga2", 40) >= small.ratios("nsga2", 20) - 1e-12)


def test_median_reference_is_stricter(small):
    nadir = small.summary([40])
    median = small.summary([40], reference="median")
    for a, b in zip(nadir, median, strict=True):
        assert b.reference == "median" and b.mean_ratio < a.mean_ratio


def test_same_seeds_same_result(small):
    again = run_pareto_comparison(["nsga2"], objectives=OBJECTIVES, seeds=[1], budget=40, n_jobs=1)
    assert again.ratios("nsga2", 40)[0] == pytest.approx(small.ratios("nsga2", 40)[1])


def test_searching_validation_and_reporting_test_accuracy():
    result = run_pareto_comparison(
        ["nsga2"],
        objectives=["valid_acc:max", "params_M:min"],
        report_objectives=OBJECTIVES,
        seeds=2,
        budget=30,
        n_jobs=1,
        baseline=False,
    )
    assert result.strategies == ("nsga2",)
    assert [str(o) for o in result.report_objectives] == OBJECTIVES
    for ratio in result.ratios("nsga2", 30):
        assert 0 < ratio < 1


def test_optuna_nsga2_learns_the_number_of_objectives():
    pytest.importorskip("optuna")
    result = run_pareto_comparison(
        ["optuna-nsga2"], objectives=OBJECTIVES, seeds=1, budget=20, n_jobs=1, baseline=False
    )
    assert result.strategy_params["optuna-nsga2"]["n_objectives"] == 2


def test_write(small, tmp_path):
    paths = small.write(tmp_path / "out", budgets=[20, 40])
    data = json.loads(paths["json"].read_text())
    assert data["objectives"] == OBJECTIVES and data["n_seeds"] == 3
    assert {row["reference"] for row in data["summary"]} == {"nadir", "median"}
    assert len(paths["summary"].read_text().splitlines()) == 1 + 2 * 2 * 3
    assert paths["plot-nsga2"].stat().st_size > 0


def test_errors(small):
    with pytest.raises(InvalidConfigError, match="report_objectives"):
        run_pareto_comparison(["nsga2"], report_objectives=["test_acc:max"], seeds=1, budget=5)
    with pytest.raises(InvalidConfigError, match="not compared"):
        run_pareto_comparison(["nsga2"], strategy_params={"bananas": {}}, seeds=1, budget=5)
    with pytest.raises(UnknownNameError):
        run_pareto_comparison(["nsga2"], objectives=["nope:max"], seeds=1, budget=5)
    with pytest.raises(InvalidConfigError, match="budget"):
        run_pareto_comparison(["nsga2"], seeds=1, budget=0)
    with pytest.raises(InvalidConfigError, match="seeds"):
        run_pareto_comparison(["nsga2"], seeds=[1, 1], budget=5)
    with pytest.raises(InvalidConfigError, match="exceeds"):
        small.summary([41])
    with pytest.raises(InvalidConfigError, match="no runs"):
        small.ratios("bananas", 10)
