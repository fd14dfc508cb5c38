"""``nasforge list``: names from the registries, a benchmark's datasets, devices and metrics."""

from __future__ import annotations

import json

import pytest
from cli_testing import assert_usage_error, invoke

import nasforge
import nasforge.oneshot
from nasforge.runs.catalog import LIST_TARGETS


@pytest.mark.parametrize("what", LIST_TARGETS)
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
    assert names("strategies") == nasforge.strategies.names() + nasforge.oneshot.names()
    assert names("benchmarks") == nasforge.tabular.names()
    assert names("evaluators") == nasforge.evaluators.names()
    assert names("datasets") == list(nasforge.tabular.create("nb201").datasets)
    evolution = json.loads(invoke("list", "strategies", "--json").stdout)["strategies"]
    params = {row["name"]: row["parameters"] for row in evolution}
    assert "population_size" in params["regularized-evolution"]


def test_listing_strategies_builds_nothing_and_marks_one_shot_methods(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("listing must not build a strategy")

    monkeypatch.setattr(nasforge.strategies, "create", refuse)
    monkeypatch.setattr(nasforge.oneshot, "create", refuse)
    rows = json.loads(invoke("list", "strategies", "--json").stdout)["strategies"]
    kinds = {row["name"]: row["kind"] for row in rows}
    assert kinds["regularized-evolution"] == "black-box"
    assert kinds["darts"] == kinds["spos"] == "one-shot"
    params = {row["name"]: row["parameters"] for row in rows}
    assert params["gdas"]["tau_max"] == 10.0


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
