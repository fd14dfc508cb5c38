"""The comparison harness on a table of one's own: run_comparison and ``nasforge compare
--table`` report mean ± std, optimum rate and RI over random search for it, offline."""

from __future__ import annotations

import json
from importlib import resources

import pandas as pd
import pytest
from typer.testing import CliRunner

import nasforge
from nasforge.cli import app
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.experiments import run_comparison
from nasforge.tabular import from_table, table_params

EXAMPLE = str(resources.files("nasforge.tabular").joinpath("data").joinpath("example_table.csv"))


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "bench.parquet"
    pd.read_csv(EXAMPLE).to_parquet(path)
    return str(path)


def _settings(path):
    return table_params(
        path,
        metrics=["valid_acc:max", "test_acc:max", "params_M:min"],
        fidelity="epochs",
        cost="train_seconds",
        free=["params_M"],
    )


def test_the_harness_reports_every_figure_on_a_table(parquet):
    settings = _settings(parquet)
    strategies = ["regularized-evolution", "local-search", "successive-halving"]
    comparison = run_comparison(
        strategies, datasets=["table"], seeds=4, budget=40, benchmark="table",
        benchmark_params=settings, n_jobs=1,
        strategy_params={"successive-halving": {"n_candidates": 20}},
    )  # fmt: skip
    rows = {r.strategy: r for r in comparison.summary([40])}
    assert list(rows) == [*strategies, "random"]
    frame = pd.read_parquet(parquet)
    full = frame[frame.epochs == 200]
    assert comparison.optima["table"] == full.valid_acc.max()
    assert comparison.test_optima["table"] == full.test_acc.max()
    for row in rows.values():
        assert row.n_runs == 4
        assert full.test_acc.min() <= row.mean_test <= full.test_acc.max()
        assert row.std_test >= 0 and 0 <= row.optimum_rate <= 1
    random = rows["random"].mean_test
    for row in rows.values():
        assert row.ri == pytest.approx(100 * (row.mean_test - random) / random)
    # each run is exactly the study of that strategy and seed, on the table's space
    space, evaluator = from_table(parquet, **{k: v for k, v in settings.items() if k != "path"})
    run = [r for r in comparison.trial_rows() if (r["strategy"], r["seed"]) == ("local-search", 2)]
    study = nasforge.create_study(space="table", space_params=space.params,
                                  strategy="local-search", seed=2)  # fmt: skip
    counted = nasforge.evaluators.create(
        "tabular", benchmark="table", dataset="table", metrics=["valid_acc", "test_acc"],
        benchmark_params=space.params, charge_queries=True,
    )  # fmt: skip
    study.optimize(counted, budget=40)
    assert [t.arch.text for t in study.trials] == [r["arch"] for r in run]
    assert [t.metrics["test_acc"] for t in study.trials] == [r["test_acc"] for r in run]
    del evaluator


def test_workers_give_the_same_comparison(parquet):
    settings = _settings(parquet)
    kwargs = {"datasets": ["table"], "seeds": 3, "budget": 20, "benchmark": "table",
              "benchmark_params": settings}  # fmt: skip
    one = run_comparison(["regularized-evolution"], n_jobs=1, **kwargs)
    two = run_comparison(["regularized-evolution"], n_jobs=2, **kwargs)
    for a, b in zip(one.summary([20]), two.summary([20]), strict=True):  # all but wall times
        assert (a.strategy, a.mean_test, a.std_test, a.optimum_rate, a.ri) == (
            b.strategy, b.mean_test, b.std_test, b.optimum_rate, b.ri
        )  # fmt: skip


def test_a_table_with_one_accuracy_is_judged_by_it_and_minimised_metrics_are_refused():
    frame = pd.read_csv(EXAMPLE)
    frame = frame[frame.epochs == 200].drop(columns=["epochs", "test_acc", "train_seconds"])
    settings = table_params(frame, metrics=["valid_acc", "params_M:min"])
    comparison = run_comparison(
        ["local-search"], datasets=["table"], seeds=2, budget=15, benchmark="table",
        benchmark_params=settings, metrics=["valid_acc", "valid_acc"], n_jobs=1,
    )  # fmt: skip
    row = comparison.summary([15])[0]
    assert row.mean_test == pytest.approx(row.mean_valid)
    with pytest.raises(InvalidConfigError, match="'params_M' is minimised"):
        run_comparison(["random"], datasets=["table"], seeds=1, budget=5, benchmark="table",
                       benchmark_params=settings, metrics=["params_M", "valid_acc"])  # fmt: skip
    with pytest.raises(UnknownNameError, match="test_acc"):
        run_comparison(["random"], datasets=["table"], seeds=1, budget=5, benchmark="table",
                       benchmark_params=settings)  # fmt: skip


def test_the_command_line_compares_on_a_table(parquet):
    result = CliRunner().invoke(
        app,
        [
            "compare", "--table", parquet,
            "--table-param", "metrics=valid_acc:max,test_acc:max",
            "--table-param", "fidelity=epochs",
            "--strategies", "random,local-search", "--seeds", "3", "--budget", "10",
            "--workers", "1", "--json", "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["benchmark"] == "table"
    rows = data["datasets"]["table"]
    assert set(rows) == {"random", "local-search"}
    for row in rows.values():
        assert {"mean_test", "std_test", "optimum_rate", "ri"} <= set(row) and row["n_runs"] == 3
    bad = CliRunner().invoke(
        app, ["compare", "--table", parquet, "--table-param", "metrics=valid_acc,flops"]
    )
    assert bad.exit_code == 2 and "flops" in bad.output and "Traceback" not in bad.output


def test_the_command_line_searches_a_table_and_resumes_it(parquet, tmp_path):
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    args = [
        "search", "--table", parquet, "--table-param", "metrics=valid_acc,test_acc,params_M:min",
        "--table-param", "fidelity=epochs", "--table-param", "cost=train_seconds",
        "--strategy", "regularized-evolution",
        "--storage", storage, "--json",
    ]  # fmt: skip
    first = CliRunner().invoke(app, [*args, "--trials", "6"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, [*args, "--trials", "12"])
    assert again.exit_code == 0, again.output
    study = nasforge.load_study(json.loads(again.stdout)["study"], storage)
    assert len(study.trials) == 12 and study.space.size == 500
