"""A plugin distribution on PYTHONPATH shows up in the real ``nasforge`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_plugin_components_are_listed(plugin_root, nasforge_cli):
    def listed(what):
        return {
            row["name"]: row
            for row in json.loads(nasforge_cli(plugin_root, "list", what, "--json").stdout)[what]
        }

    spaces = listed("spaces")
    assert {"nb201", "toy-chain"} <= set(spaces) and spaces["toy-chain"]["size"] == 81
    strategies = listed("strategies")
    assert {"random", "toy-walk"} <= set(strategies)
    assert strategies["toy-walk"]["parameters"] == {"start": 3}
    assert listed("benchmarks")["toy-bench"]["space"] == "toy-chain"
    assert "toy-score" in listed("evaluators")


def test_search_and_worker_run_the_plugin(plugin_root, nasforge_cli, tmp_path):
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    common = ["--space", "toy-chain", "--strategy", "toy-walk", "--benchmark", "toy-bench"]
    done = nasforge_cli(
        plugin_root,
        "search",
        *common,
        "--dataset",
        "toy",
        "--trials",
        "12",
        "--param",
        "start=2",
        "--storage",
        storage,
        "--study",
        "toy",
        "--json",
    )
    summary = json.loads(done.stdout)
    assert summary["space"] == "toy-chain" and summary["strategy"] == "toy-walk"
    assert summary["n_complete"] == 12
    # the best of 81 architectures under the made-up score is four convolutions
    assert summary["best"]["arch"] == "conv-conv-conv-conv"
    assert summary["best"]["metrics"]["test_acc"] == summary["best"]["metrics"]["valid_acc"] - 1
    # a worker joins the stored study: it rebuilds the plugin's space, strategy and benchmark
    report = json.loads(
        nasforge_cli(
            plugin_root,
            "worker",
            "--storage",
            storage,
            "--study",
            "toy",
            "--trials",
            "20",
            "--json",
        ).stdout
    )
    assert report["trials_by_this_worker"] == 8 and report["study_finished"] == 20


def test_search_with_the_plugin_evaluator(plugin_root, nasforge_cli):
    done = nasforge_cli(
        plugin_root,
        "search",
        "--space",
        "toy-chain",
        "--strategy",
        "toy-walk",
        "--evaluator",
        "toy-score",
        "--trials",
        "5",
        "--json",
    )
    summary = json.loads(done.stdout)
    assert summary["n_complete"] == 5 and summary["best"]["metrics"]["convs"] == 4.0


def test_a_worker_creates_a_study_scored_by_the_plugin_evaluator(
    plugin_root, nasforge_cli, tmp_path
):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    report = json.loads(
        nasforge_cli(
            plugin_root,
            "worker",
            "--storage",
            storage,
            "--study",
            "shared",
            "--space",
            "toy-chain",
            "--strategy",
            "toy-walk",
            "--evaluator",
            "toy-score",
            "--trials",
            "6",
            "--json",
        ).stdout
    )
    assert report["trials_by_this_worker"] == 6 and report["study_finished"] == 6
    shown = nasforge_cli(plugin_root, "show", "shared", "--storage", storage, "--json")
    assert json.loads(shown.stdout)["best"]["metrics"]["convs"] >= 0.0


def test_a_broken_plugin_is_named_and_hides_nothing(plugin_root, nasforge_cli, write_plugin):
    write_plugin(
        plugin_root,
        "nasforge-broken",
        {"nasforge_broken/__init__.py": "", "nasforge_broken/space.py": "import not_a_module\n"},
        {"nasforge.spaces": {"broken-space": "nasforge_broken.space:Space"}},
    )
    done = nasforge_cli(plugin_root, "list", "spaces", "--json")
    names = [row["name"] for row in json.loads(done.stdout)["spaces"]]
    assert names == [
        "bats", "darts", "dass", "fbnet", "llm", "mobilenet", "nb201", "ofa", "ofa-cifar",
        "table", "toy-chain", "vit", "vit-cifar",
    ]  # fmt: skip
    assert "nasforge-broken" in done.stderr and "broken-space = nasforge_broken.space:Space" in (
        done.stderr
    )
    assert "No module named 'not_a_module'" in done.stderr
    used = nasforge_cli(
        plugin_root, "search", "--space", "broken-space", "--trials", "2", check=False
    )
    assert used.returncode == 2 and "Traceback" not in used.stderr
    error = used.stderr.strip().splitlines()[-1]
    assert "'broken-space'" in error and "nasforge-broken" in error
    assert "not_a_module" in error and "pip uninstall nasforge-broken" in error


def test_a_taken_name_is_refused_naming_both_origins(plugin_root, nasforge_cli, write_plugin):
    write_plugin(
        plugin_root,
        "nasforge-twin",
        {
            "nasforge_twin/__init__.py": (
                "from nasforge.strategies.random import RandomSearch\n\n\n"
                "class Twin(RandomSearch):\n    '''Random search under a taken name.'''\n"
            )
        },
        {
            "nasforge.strategies": {"random": "nasforge_twin:Twin"},
            "nasforge.spaces": {"toy-chain": "nasforge_twin:Twin"},
        },
    )
    done = nasforge_cli(plugin_root, "list", "strategies", "--json")
    rows = {row["name"]: row for row in json.loads(done.stdout)["strategies"]}
    assert "toy-walk" in rows and rows["random"]["description"].startswith("Samples")
    warning = [line for line in done.stderr.splitlines() if "'random = nasforge_twin:Twin'" in line]
    assert warning and "nasforge.strategies.random.RandomSearch" in warning[0]
    assert "'nasforge'" in warning[0] and "'nasforge-twin'" in warning[0]
    # between two plugins, the first in distribution order keeps the name
    spaces = nasforge_cli(plugin_root, "list", "spaces", "--json")
    toy = [row for row in json.loads(spaces.stdout)["spaces"] if row["name"] == "toy-chain"]
    assert toy[0]["size"] == 81
    assert "nasforge-toy" in spaces.stderr and "nasforge-twin" in spaces.stderr


def test_the_contract_tests_check_the_plugin(plugin_root, tmp_path):
    """nasforge's contract tests, parametrised over the registries, pick the plugin up."""
    tests = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(plugin_root), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            "-k",
            "toy",
            "--rootdir",
            str(tests.parent),
            str(tests / "testing" / "test_contracts.py"),
            str(tests / "strategies" / "test_contract.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    passed = {line.split("::")[-1] for line in done.stdout.splitlines() if "PASSED" in line}
    assert {
        "test_evaluator_contract[toy-score]",
        "test_benchmark_contract[toy-bench]",
        "test_proxy_contract[toy_weights]",
        "test_space_contract[toy-chain]",
        "test_strategy_contract[toy-walk]",
    } <= passed, done.stdout[-3000:]
