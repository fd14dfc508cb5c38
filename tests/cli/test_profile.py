"""``nasforge profile``: parameters, MACs, FLOPs and latency of a network."""

from __future__ import annotations

import json

import pytest
from cli_testing import assert_usage_error, invoke


def test_profile_prints_costs_and_latency() -> None:
    result = invoke("profile", "6111", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["metrics"]["params_M"] == pytest.approx(1.073466)
    assert data["metrics"]["macs_M"] == pytest.approx(153.27296)
    assert data["latency"] == {}
    small = invoke(
        "profile",
        data["arch"],
        "--num-classes",
        "5",
        "--resolution",
        "16",
        "--channels",
        "4",
        "--cells",
        "1",
        "--latency",
        "--backend",
        "torch",
        "--runs",
        "2",
    )
    assert small.exit_code == 0, small.stderr
    assert "latency torch" in small.stdout and "3x16x16" in small.stdout
    darts = invoke(
        "profile",
        "darts-v2",
        "--space",
        "darts",
        "--dataset",
        "cifar100",
        "--channels",
        "8",
        "--cells",
        "5",
        "--json",
    )
    assert darts.exit_code == 0, darts.stderr
    assert json.loads(darts.stdout)["build"] == {
        "num_classes": 100,
        "channels": 8,
        "layers": 5,
        "auxiliary": False,
    }


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["|bad|"], ["Malformed NB201 cell string"]),
        (["20000"], ["out of range"]),
        (["1", "--dataset", "mnist"], ["Unknown dataset 'mnist'"]),
        (["1", "--dataset", "cifar10", "--num-classes", "3"], ["not both"]),
        (["6111", "--resolution", "1"], ["failed on inputs of shape (1, 3, 1, 1)", "too small"]),
        (["6111", "--latency", "--backend", "tensorrt", "--runs", "1"], ["latency backend"]),
    ],
)
def test_profile_errors(args: list[str], fragments: list[str]) -> None:
    assert_usage_error(invoke("profile", *args), *fragments)
