"""``nasforge search`` on the tabular benchmark: summary, JSON, resume, progress, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cli_testing import assert_usage_error, invoke, search_json, sqlite

import nasforge
from nasforge.evaluators.tabular import TabularEvaluator


def test_search_defaults_print_a_summary() -> None:
    result = invoke("search")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "regularized-evolution (seed 0)" in out
    # 100 evaluations, and the functional twins the study answered free (dedupe, the default)
    counts = re.search(r"trials\s+(\d+) \((\d+) complete\), cost 100\b", out)
    twins = re.search(r"dedupe\s+on \((\d+) functional twins? answered free\)", out)
    assert counts and twins, out
    assert int(counts[1]) == int(counts[2]) == 100 + int(twins[1])
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
    assert first["n_trials"] - first["n_duplicates"] == 60 and first["spent"] == 60
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
    assert first["n_trials"] - first["n_duplicates"] == 30
    before = [(t.arch, t.metrics) for t in nasforge.load_study(first["study"], url).trials]

    result = invoke("search", "--json", "--storage", url, "--budget", "60", "--seed", "2")
    assert result.exit_code == 0, result.stderr
    recorded = first["n_trials"]  # 30 evaluations and the free twins
    assert (
        f"resuming study nb201-regularized-evolution-cifar10-seed2 ({recorded} trials recorded)"
        in result.stderr
    )
    second = json.loads(result.stdout)
    assert second["n_trials"] - second["n_duplicates"] == 60
    after = nasforge.load_study(first["study"], url).trials
    assert [(t.arch, t.metrics) for t in after[: len(before)]] == before

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
    result = invoke("search", "--storage", url, "--budget", "50", "--no-dedupe")
    assert result.exit_code == 130
    assert result.stderr.strip() == (
        "interrupted: 25 trials recorded; run the same command to resume"
    )
    monkeypatch.setattr(TabularEvaluator, "evaluate", original)

    resumed = search_json("--storage", url, "--budget", "50")
    assert resumed["dedupe"] is False  # resumed with the setting it was created with
    fresh = search_json("--budget", "50", "--no-dedupe")
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
    from nasforge.cli import _common

    seen: list[bool] = []
    monkeypatch.setattr(_common, "show_progress", lambda quiet: seen.append(quiet) or True)
    result = invoke("search", "--budget", "30", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["n_trials"] - summary["n_duplicates"] == 30
    assert "30/30" in result.stderr
    assert seen == [False]


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
        (["--budget", "0"], ["--budget must be a finite number above 0", "got 0;"]),
        (["--budget", "-3"], ["--budget must be a finite number above 0", "got -3;"]),
        (["--budget", "1e23"], ["--budget", "at most 1e+12", "got 1e+23"]),
        (["--budget", "inf"], ["'--budget'", "'inf' is not a finite number"]),
        (["--trials", "0"], ["--trials must be from 1 to 1,000,000,000, got 0."]),
        (["--trials", "2000000000"], ["--trials", "got 2000000000"]),
        (["--seed", "-1"], ["--seed must be from 0 to 2**63 - 1", "got -1"]),
        (["--seed", str(2**63)], ["--seed must be from 0 to 2**63 - 1", str(2**63)]),
        (["--study", ""], ["--study", "empty"]),
        (["--study", " "], ["--study", "empty"]),
        (["--objectives", ""], ["--objectives ''", "names no objective"]),
        (["--objectives", " , "], ["names no objective"]),
        (["--objective", ""], ["--objective is empty"]),
        (["--objectives", "valid_acc:max,valid_acc:min"], ["'valid_acc' is given twice"]),
        (["--objective", "valid_acc", "--objective", "valid_acc"], ["given twice"]),
        (["--param", "population_size=NaN"], ["population_size=nan", "not a finite number"]),
        (["--param", "population_size=1e999"], ["population_size=inf", "not a finite number"]),
        (["--device", "tpu"], ["'--device'", "'tpu' is not a device", "cuda:N"]),
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


def test_search_with_constraints_and_list_devices() -> None:
    result = invoke("search", "--budget", "60", "--constraint", "latency_ms[edgegpu]<=5", "--json")
    assert result.exit_code == 0, result.stderr
    best = json.loads(result.stdout)["best"]["metrics"]
    assert best["latency_ms[edgegpu]"] <= 5
    bad = invoke("search", "--budget", "10", "--constraint", "weight<=1")
    assert_usage_error(bad, "constraint metric", "params_M")
    listed = invoke("list", "devices", "--json")
    assert listed.exit_code == 0 and "edgegpu" in listed.stdout


def test_any_registered_evaluator_with_its_own_parameters() -> None:
    data = search_json("--budget", "10", "--evaluator-param", "fidelity=12")
    assert data["fidelity"] == 12
    assert_usage_error(
        invoke("search", "--evaluator-param", "epochs=3"),
        "The evaluator 'tabular' takes no parameter(s) ['epochs']",
    )
    assert_usage_error(
        invoke("search", "--evaluator", "proxy", "--fidelity", "12"),
        "--fidelity looks up a tabular benchmark",
        "--evaluator-param",
    )
    assert_usage_error(
        invoke("search", "--evaluator", "train", "--evaluator-param", "x=1", "--trials", "1"),
        "--evaluator-param applies to evaluators other than train",
    )
