"""``nasforge compare``: the options reach the comparison harness; bad input is one line."""

from __future__ import annotations

import importlib
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_testing import assert_usage_error, force_progress, invoke


@dataclass(frozen=True)
class FakeRow:
    dataset: str
    strategy: str
    budget: int
    n_runs: int
    mean_test: float
    std_test: float
    mean_valid: float
    optimum_rate: float
    ri: float


class FakeComparison:
    def __init__(self, strategies: list[str], datasets: list[str], budget: int) -> None:
        self.strategies, self.datasets, self.budget = strategies, datasets, budget

    def summary(self, budgets: Any = None) -> list[FakeRow]:
        return [
            FakeRow(d, s, self.budget, 3, 93.5, 0.25, 91.0, 0.5, float("nan"))
            for d in self.datasets
            for s in self.strategies
        ]

    def to_json(self) -> dict[str, Any]:
        entry = {"mean_test": 93.5, "std_test": 0.25, "n_runs": 3, "by_budget": {}}
        per = {s: dict(entry) for s in self.strategies}
        return {"strategies": per, "datasets": {d: per for d in self.datasets}}

    def write(self, out: Path) -> dict[str, Path]:
        path = Path(out) / "summary.json"
        path.write_text(json.dumps(self.to_json()))
        return {"json": path}


@pytest.fixture
def fake_harness(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def run_comparison(strategies: Any, **kwargs: Any) -> FakeComparison:
        calls.append({"strategies": list(strategies), **kwargs})
        if kwargs.get("progress"):
            kwargs["progress"](0, 2)
            kwargs["progress"](2, 2)
        return FakeComparison(list(strategies), list(kwargs["datasets"]), kwargs["budget"])

    # the name check (is_oneshot) stays the real one
    importlib.import_module("nasforge.experiments.compare")
    module = types.ModuleType("nasforge.experiments")
    module.run_comparison = run_comparison  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nasforge.experiments", module)
    return calls


def test_compare_calls_the_harness(fake_harness: list[dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = invoke(
        "compare",
        "--strategies",
        "random,regularized-evolution",
        "--dataset",
        "cifar10,cifar100",
        "--budget",
        "20",
        "--seeds",
        "5",
        "--workers",
        "2",
        "--param",
        "regularized-evolution.population_size=10",
        "--param",
        "regularized-evolution.tournament_size=3",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.stderr
    (call,) = fake_harness
    assert call == {
        "strategies": ["random", "regularized-evolution"],
        "datasets": ["cifar10", "cifar100"],
        "seeds": 5,
        "budget": 20,
        "benchmark": "nb201",
        "strategy_params": {"regularized-evolution": {"population_size": 10, "tournament_size": 3}},
        "n_jobs": 2,
        "dedupe": "auto",
        "seconds_per_query": 0.0,
    }
    text = result.stdout
    assert "regularized-evolution" in text and "cifar100" in text
    assert "93.50 ± 0.25" in text and "50.0" in text  # optimum rate in percent
    assert f"wrote json: {out / 'summary.json'}" in text
    assert (out / "summary.json").exists()


def test_compare_json(fake_harness: list[dict[str, Any]]) -> None:
    result = invoke("compare", "--seeds", "0,1,2", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data["strategies"]) == {"random", "regularized-evolution"}
    assert fake_harness[0]["seeds"] == [0, 1, 2]
    assert fake_harness[0]["strategy_params"] is None


def test_compare_progress(
    fake_harness: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    force_progress(monkeypatch)
    result = invoke("compare", "--budget", "10")
    assert result.exit_code == 0, result.stderr
    assert "2/2" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["--strategies", "random,evolution"],
            ["strategy or one-shot method 'evolution'", "Did you mean 'regularized-evolution'"],
        ),
        (["--dataset", "cifar10,svhn"], ["'svhn'"]),
        (["--budget", "0"], ["budget must be a positive whole number"]),
        (["--seeds", "0"], ["--seeds must be a positive number"]),
        (["--seeds", "a,b"], ["--seeds 'a,b'"]),
        (["--workers", "0"], ["--workers must be at least 1"]),
        (["--param", "population_size=3"], ["STRATEGY.key=value"]),
        (["--param", "regularized-evolution.popsize=3"], ["'popsize'"]),
        (["--param", "regularized-evolution.population_size=x"], ["'x'", "integer"]),
        (["--benchmark", "nb101"], ["'nb101'"]),
        (["--epochs", "3"], ["--epochs only applies to one-shot methods"]),
        (["--strategies", "random,darts"], ["give --data PATH", "never downloads"]),
        (
            ["--strategies", "darts", "--data", "x", "--dataset", "cifar100"],
            ["datasets=['cifar10']"],
        ),
        (["--seconds-per-query", "-1"], ["seconds_per_query must be a finite number"]),
    ],
)
def test_compare_bad_input(args: list[str], fragments: list[str]) -> None:
    # the real harness validates everything before any run starts
    assert_usage_error(invoke("compare", *args), *fragments)


def test_compare_with_the_real_harness(tmp_path: Path) -> None:
    pytest.importorskip("nasforge.experiments", reason="the comparison harness is not installed")
    result = invoke("compare", "--seeds", "5", "--budget", "20", "--workers", "1", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data["strategies"]) == {"random", "regularized-evolution"}
    assert data["strategies"]["random"]["n_runs"] == 5
    table = invoke("compare", "--seeds", "3", "--budget", "10", "--workers", "1")
    assert table.exit_code == 0 and "regularized-evolution" in table.stdout
    assert "time s" not in table.stdout  # a plain table comparison spends no time to show
    charged = invoke(
        "compare", "--seeds", "2", "--budget", "10", "--workers", "1", "--seconds-per-query", "30"
    )
    assert charged.exit_code == 0 and "time s" in charged.stdout
    # 10 queries at 30 s each, plus a few milliseconds of measured wall time
    rows = [line.split() for line in charged.stdout.splitlines() if " 10 " in line]
    assert rows and all(row[-3:] == ["300", "dedupe", "(canonical)"] for row in rows)
    assert "deduplication: on for every strategy" in table.stdout
    both = invoke("compare", "--seeds", "2", "--budget", "10", "--workers", "1", "--dedupe", "both")
    assert both.exit_code == 0, both.stderr
    assert "random[no-dedupe]" in both.stdout and "regularized-evolution[dedupe]" in both.stdout
    short = invoke(
        "compare", "--seeds", "2", "--budget", "10", "--workers", "1", "--fidelity", "12"
    )
    assert short.exit_code == 0 and "after 12 training epochs" in short.stdout
    bad = invoke("compare", "--seeds", "2", "--budget", "10", "--dedupe", "maybe")
    assert_usage_error(bad, "dedupe must be one of")


def test_the_old_jobs_flag_still_runs(fake_harness: list[dict[str, Any]]) -> None:
    result = invoke("compare", "--jobs", "3", "--budget", "10", "--json")
    assert result.exit_code == 0, result.stderr
    assert fake_harness[0]["n_jobs"] == 3
    assert "--jobs is now called --workers" in result.stderr
    assert_usage_error(invoke("compare", "--jobs", "3", "--workers", "2"), "give only --workers")


def test_the_table_explains_its_columns_and_prints_one_shot_rows_once(capsys) -> None:
    from nasforge.cli.compare import _print_table
    from nasforge.experiments.results import SummaryRow

    rows = [
        SummaryRow(
            "cifar10",
            strategy,
            budget,
            n_runs=2,
            mean_test=90.0 + i,
            std_test=0.5,
            mean_valid=88.0,
            optimum_rate=0.0,
            ri=float(i),
            mean_seconds=10.0 * budget,
        )
        for budget in (10, 25, 50)
        for i, strategy in enumerate(("random", "regularized-evolution", "darts"))
    ]
    _print_table(rows, oneshot=("darts",), show_time=True)
    out = capsys.readouterr().out
    darts = [line for line in out.splitlines() if line.split()[:2] == ["cifar10", "darts"]]
    assert len(darts) == 1 and "final" in darts[0] and "500" in darts[0]
    evolution = [line for line in out.splitlines() if "regularized-evolution" in line.split()]
    assert len(evolution) == 3  # black-box rows: one per budget
    for column in ("budget:", "test acc:", "valid:", "opt %:", "RI %:", "time s:", "final:"):
        assert any(line.startswith(column) for line in out.splitlines()), (column, out)
    _print_table(rows[:2], show_time=False)
    plain = capsys.readouterr().out
    assert not any(line.startswith(("time s:", "final:")) for line in plain.splitlines())
