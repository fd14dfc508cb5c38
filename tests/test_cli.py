"""The ``nasforge`` command line: search, compare, list, show, errors and start-up."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import nasforge
from nasforge import cli
from nasforge.evaluators.tabular import TabularEvaluator

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args))


def search_json(*args: str) -> dict[str, Any]:
    result = invoke("search", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def assert_usage_error(result: Any, *fragments: str) -> str:
    """Exit code 2, one line on stderr starting with ``error:``, no traceback, nothing on stdout."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def sqlite(tmp_path: Path, name: str = "x.db") -> str:
    return f"sqlite:///{tmp_path / name}"


# -- search ------------------------------------------------------------------------------------
def test_search_defaults_print_a_summary() -> None:
    result = invoke("search")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "regularized-evolution (seed 0)" in out
    assert "100 (100 complete)" in out
    for label in ("best", "valid_acc", "test_acc", "params_M", "flops_M", "wall time"):
        assert label in out
    assert result.stderr == ""  # not a terminal: no progress bar, no notes


def test_search_json_has_the_required_keys_and_is_deterministic() -> None:
    first = search_json("--space", "nb201", "--dataset", "cifar10", "--budget", "60", "--seed", "3")
    assert first["space"] == "nb201"
    assert first["strategy"] == "regularized-evolution"
    assert first["dataset"] == "cifar10"
    assert first["seed"] == 3
    assert first["budget"] == 60
    assert first["n_trials"] == 60
    best = first["best"]
    space = nasforge.spaces.create("nb201")
    assert space.index(space.parse(best["arch"])) == best["index"]
    assert {"valid_acc", "test_acc", "params_M", "flops_M"} <= set(best["metrics"])
    assert isinstance(first["seconds"], float)

    again = search_json("--budget", "60", "--seed", "3")
    for key in ("best", "n_trials", "spent", "strategy_params"):
        assert again[key] == first[key]
    other = search_json("--budget", "60", "--seed", "4", "--strategy", "random")
    assert other["strategy"] == "random" and other["seed"] == 4


def test_search_matches_the_python_api() -> None:
    params = {"population_size": 10, "tournament_size": 3}
    data = search_json(
        "--budget", "40", "--seed", "1", "-p", "population_size=10", "-p", "tournament_size=3"
    )
    study = nasforge.create_study(strategy="regularized-evolution", seed=1, strategy_params=params)
    study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), budget=40)
    assert data["best"]["arch"] == study.best_trial.arch.text
    assert data["best"]["metrics"] == study.best_trial.metrics
    assert data["strategy_params"] == params


def test_search_objective_and_fidelity() -> None:
    data = search_json(
        "--budget", "20", "--objective", "latency_ms[pixel3]:min", "--objective", "valid_acc"
    )
    assert data["objectives"] == ["latency_ms[pixel3]:min", "valid_acc:max"]
    short = search_json("--budget", "10", "--fidelity", "12", "--strategy", "random")
    assert short["fidelity"] == 12


def test_search_persists_and_resumes(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    first = search_json("--storage", url, "--budget", "30", "--seed", "2")
    assert first["study"] == "nb201-regularized-evolution-cifar10-seed2"
    assert first["n_trials"] == 30
    before = [(t.arch, t.metrics) for t in nasforge.load_study(first["study"], url).trials]

    result = invoke("search", "--json", "--storage", url, "--budget", "60", "--seed", "2")
    assert result.exit_code == 0, result.stderr
    assert "resuming study nb201-regularized-evolution-cifar10-seed2 (30 trials recorded)" in (
        result.stderr
    )
    second = json.loads(result.stdout)
    assert second["n_trials"] == 60
    after = nasforge.load_study(first["study"], url).trials
    assert [(t.arch, t.metrics) for t in after[:30]] == before

    fresh = search_json("--budget", "60", "--seed", "2")  # never interrupted, in memory
    assert fresh["best"] == second["best"]

    quiet = invoke("search", "--storage", url, "--budget", "60", "--seed", "2", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_search_with_a_named_study(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    data = search_json("--storage", url, "--study", "mine", "--budget", "10")
    assert data["study"] == "mine"
    assert [r.name for r in nasforge.storage.get_storage(url).list_studies()] == ["mine"]


def test_search_conflicting_settings_are_refused(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    search_json("--storage", url, "--study", "s", "--budget", "10")
    result = invoke("search", "--storage", url, "--study", "s", "--strategy", "random")
    assert_usage_error(result, "'s' already exists with other settings", "strategy")
    result = invoke("search", "--storage", url, "--study", "s", "--dataset", "cifar100")
    assert_usage_error(result, "'s' already exists with other settings", "evaluator", "cifar100")


def test_search_interrupted_then_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqlite(tmp_path)
    original = TabularEvaluator.evaluate
    calls = {"n": 0}

    def flaky(self: TabularEvaluator, arch: Any, fidelity: Any = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return original(self, arch, fidelity)

    monkeypatch.setattr(TabularEvaluator, "evaluate", flaky)
    result = invoke("search", "--storage", url, "--budget", "50")
    assert result.exit_code == 130
    assert result.stderr.strip() == (
        "interrupted: 25 trials recorded; run the same command to resume"
    )
    monkeypatch.setattr(TabularEvaluator, "evaluate", original)

    resumed = search_json("--storage", url, "--budget", "50")
    fresh = search_json("--budget", "50")
    assert resumed["best"]["arch"] == fresh["best"]["arch"]
    assert resumed["n_complete"] == 50


def test_search_interrupted_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def stop(self: TabularEvaluator, arch: Any, fidelity: Any = None) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(TabularEvaluator, "evaluate", stop)
    result = invoke("search")
    assert result.exit_code == 130
    assert "not saved" in result.stderr and "--storage" in result.stderr


def test_search_progress_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(cli, "_show_progress", lambda quiet: seen.append(quiet) or True)
    result = invoke("search", "--budget", "30", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["n_trials"] == 30
    assert "30/30" in result.stderr
    assert seen == [False]


# -- bad input: one line, exit code 2 ----------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--space", "nb210"], ["search space 'nb210'", "nb201", "Did you mean 'nb201'?"]),
        (["--strategy", "regularised-evolution"], ["Did you mean 'regularized-evolution'?"]),
        (["--dataset", "cifar11"], ["dataset 'cifar11'", "cifar100", "Did you mean"]),
        (["--benchmark", "nb101"], ["benchmark 'nb101'", "nb201"]),
        (["--objective", "valid_ac:max"], ["'valid_ac'", "Did you mean 'valid_acc'?"]),
        (["--objective", "valid_acc:up"], ["direction 'up'", "'max'"]),
        (["--fidelity", "13"], ["fidelity", "12, 200"]),
        (["--budget", "0"], ["budget must be a positive number, got 0."]),
        (["--budget", "-3"], ["budget must be a positive number, got -3."]),
        (["--seed", "-1"], ["seed must be a non-negative integer"]),
        (["--storage", "sqlit:/x"], ["Malformed storage URL 'sqlit:/x'", "sqlite:///"]),
        (["--storage", "foo.db"], ["Malformed storage URL 'foo.db'"]),
        (["--storage", "mysql://u@h/db"], ["Unsupported storage URL", "SQLite or PostgreSQL"]),
        (["--param", "population_size"], ["Malformed --param 'population_size'", "key=value"]),
        (["--param", "=3"], ["Malformed --param"]),
        (["--param", "a=1", "--param", "a=2"], ["given twice"]),
        (["--param", "popsize=3"], ["'popsize'", "population_size"]),
        (["--param", "population_size=abc"], ["'abc'", "population_size", "integer"]),
        (["--param", "population_size=2.5"], ["2.5", "integer"]),
        (["--param", "population_size=true"], ["True", "integer"]),
        (["--param", "tournament_size=500"], ["tournament_size"]),
        (["--strategy", "random", "--param", "x=1"], ["Unknown parameter 'x'"]),
        (["--budget", "abc"], ["'--budget'", "integer", "--help"]),
        (["--bugdet", "3"], ["--bugdet", "--budget"]),
    ],
)
def test_search_bad_input(args: list[str], fragments: list[str]) -> None:
    assert_usage_error(invoke("search", *args), *fragments)


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    search_json("--storage", url, "--budget", "5")  # creates the database
    for args in (["--objective", "nope"], ["--budget", "0"], ["--param", "population_size=x"]):
        assert_usage_error(invoke("search", "--storage", url, "--study", "other", *args))
    names = [r.name for r in nasforge.storage.get_storage(url).list_studies()]
    assert names == ["nb201-regularized-evolution-cifar10-seed0"]


def test_corrupt_database(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not a database " * 100)
    message = assert_usage_error(invoke("search", "--storage", f"sqlite:///{path}"))
    assert "corrupt" in message
    assert_usage_error(invoke("show", "--storage", f"sqlite:///{path}"), "corrupt")


def test_missing_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}"
    assert_usage_error(invoke("search", "--storage", url), "does not exist")


# -- list --------------------------------------------------------------------------------------
@pytest.mark.parametrize("what", cli.LIST_TARGETS)
def test_list(what: str) -> None:
    result = invoke("list", what)
    assert result.exit_code == 0, result.stderr
    data = json.loads(invoke("list", what, "--json").stdout)
    rows = data[what]
    assert rows and all("name" in row for row in rows)


def test_list_names_come_from_the_registries() -> None:
    def names(what: str) -> list[str]:
        return [row["name"] for row in json.loads(invoke("list", what, "--json").stdout)[what]]

    assert names("spaces") == nasforge.spaces.names()
    assert names("strategies") == nasforge.strategies.names()
    assert names("benchmarks") == nasforge.tabular.names()
    assert names("evaluators") == nasforge.evaluators.names()
    assert names("datasets") == list(nasforge.tabular.create("nb201").datasets)
    evolution = json.loads(invoke("list", "strategies", "--json").stdout)["strategies"]
    params = {row["name"]: row["parameters"] for row in evolution}
    assert "population_size" in params["regularized-evolution"]


def test_list_metrics() -> None:
    result = invoke("list", "metrics", "--dataset", "cifar100", "--fidelity", "12", "--json")
    data = json.loads(result.stdout)
    assert (data["benchmark"], data["dataset"], data["fidelity"]) == ("nb201", "cifar100", 12)
    by_name = {m["name"]: m for m in data["metrics"]}
    assert by_name["valid_acc"]["direction"] == "max"
    assert by_name["params_M"]["direction"] == "min"
    assert "train_acc" not in by_name  # 12 epochs have no training accuracy
    table = invoke("list", "metrics").stdout
    assert "latency_ms[pixel3]" in table  # brackets are printed, not read as markup


def test_list_bad_input() -> None:
    assert_usage_error(invoke("list", "metric"), "Did you mean 'metrics'?", "strategies")
    assert_usage_error(invoke("list", "metrics", "--dataset", "svhn"), "'svhn'", "cifar10")
    assert_usage_error(invoke("list", "datasets", "--benchmark", "nb301"), "'nb301'")
    assert_usage_error(invoke("list", "metrics", "--fidelity", "7"), "fidelity")
    assert_usage_error(invoke("list"), "Missing argument")


# -- show --------------------------------------------------------------------------------------
def test_show_a_study(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    params = ["-p", "population_size=10", "-p", "tournament_size=3"]
    run = search_json("--storage", url, "--budget", "25", *params)
    result = invoke("show", run["study"], "--storage", url, "--top", "5", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["study"] == run["study"]
    assert (data["strategy"], data["seed"]) == ("regularized-evolution", 0)
    assert data["strategy_params"] == {"population_size": 10, "tournament_size": 3}
    assert data["objectives"] == ["valid_acc:max"]
    assert data["evaluator"]["dataset"] == "cifar10"
    assert data["states"] == {"COMPLETE": 25}
    assert data["best"] == run["best"]
    assert len(data["top"]) == 5
    scores = [t["score"] for t in data["top"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == run["best"]["score"]

    text = invoke("show", run["study"], "--storage", url).stdout
    assert "population_size=10" in text and run["best"]["arch"] in text


def test_show_lists_the_studies(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    search_json("--storage", url, "--budget", "10")
    search_json("--storage", url, "--budget", "5", "--strategy", "random", "--seed", "1")
    data = json.loads(invoke("show", "--storage", url, "--json").stdout)
    rows = {row["name"]: row for row in data["studies"]}
    assert rows["nb201-regularized-evolution-cifar10-seed0"]["n_trials"] == 10
    assert rows["nb201-random-cifar10-seed1"]["seed"] == 1
    assert rows["nb201-random-cifar10-seed1"]["n_trials"] == 5
    text = invoke("show", "--storage", url).stdout
    assert "random" in text


def test_show_bad_input(tmp_path: Path) -> None:
    url = sqlite(tmp_path)
    assert_usage_error(invoke("show"), "--storage")
    assert_usage_error(invoke("show", "--storage", url), "No study database")
    assert not (tmp_path / "x.db").exists()  # showing does not create a database
    search_json("--storage", url, "--study", "one", "--budget", "5")
    assert_usage_error(invoke("show", "onr", "--storage", url), "'onr'", "Did you mean 'one'?")
    assert_usage_error(invoke("show", "one", "--storage", "foo.db"), "Malformed storage URL")


# -- compare -----------------------------------------------------------------------------------
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
        "--jobs",
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
        "dedupe": False,
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
    monkeypatch.setattr(cli, "_show_progress", lambda quiet: True)
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
        (["--jobs", "0"], ["--jobs must be at least 1"]),
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
    result = invoke("compare", "--seeds", "5", "--budget", "20", "--jobs", "1", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data["strategies"]) == {"random", "regularized-evolution"}
    assert data["strategies"]["random"]["n_runs"] == 5
    table = invoke("compare", "--seeds", "3", "--budget", "10", "--jobs", "1")
    assert table.exit_code == 0 and "regularized-evolution" in table.stdout
    assert "time s" not in table.stdout  # a plain table comparison spends no time to show
    charged = invoke(
        "compare", "--seeds", "2", "--budget", "10", "--jobs", "1", "--seconds-per-query", "30"
    )
    assert charged.exit_code == 0 and "time s" in charged.stdout
    # 10 queries at 30 s each, plus a few milliseconds of measured wall time
    rows = [line.split() for line in charged.stdout.splitlines() if " 10 " in line]
    assert rows and all(row[-1] == "300" for row in rows)


# -- entry points and start-up -----------------------------------------------------------------
def test_help_and_version() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("search", "compare", "list", "show"):
        assert command in result.stdout
    assert invoke().exit_code == 0  # no command: the help
    assert invoke("--version").stdout.strip() == f"nasforge {nasforge.__version__}"


def test_parse_value() -> None:
    assert cli.parse_value("3") == 3 and isinstance(cli.parse_value("3"), int)
    assert cli.parse_value("0.5") == 0.5
    assert cli.parse_value("1e-3") == 0.001
    assert cli.parse_value("True") is True and cli.parse_value("false") is False
    assert cli.parse_value("onehot") == "onehot"
    assert cli.parse_params(["a=1", "b = x "]) == {"a": 1, "b": "x"}


def test_python_m_nasforge_runs_without_torch() -> None:
    code = (
        "import sys\n"
        "from nasforge.cli import main\n"
        "try:\n"
        "    main(['search', '--budget', '10', '--json', '--quiet'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["n_trials"] == 10
    assert done.stderr.strip() == "False"
    help_run = subprocess.run(
        [sys.executable, "-m", "nasforge", "--help"], capture_output=True, text=True, check=True
    )
    assert "search" in help_run.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "nasforge", "search", "--space", "x"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: Unknown search space 'x'")


def test_search_with_constraints_and_list_devices() -> None:
    result = invoke("search", "--budget", "60", "--constraint", "latency_ms[edgegpu]<=5", "--json")
    assert result.exit_code == 0, result.stderr
    best = json.loads(result.stdout)["best"]["metrics"]
    assert best["latency_ms[edgegpu]"] <= 5
    bad = invoke("search", "--budget", "10", "--constraint", "weight<=1")
    assert_usage_error(bad, "constraint metric", "params_M")
    listed = invoke("list", "devices", "--json")
    assert listed.exit_code == 0 and "edgegpu" in listed.stdout
