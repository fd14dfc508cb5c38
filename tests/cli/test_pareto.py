"""`nasforge pareto` and `search --objectives`: a study's front against the true one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_testing import invoke

import nasforge
from nasforge.pareto import dominates, study_front, true_front

pytest.importorskip("moocore")

OBJECTIVES = "test_acc:max,latency_ms[pixel3]:min"


def mo_search(tmp_path: Path, *extra: str, budget: int = 80) -> str:
    storage = f"sqlite:///{tmp_path / 'mo.db'}"
    result = invoke(
        "search",
        "--strategy",
        "nsga2",
        "--objectives",
        OBJECTIVES,
        "--budget",
        str(budget),
        "--storage",
        storage,
        "--study",
        "mo",
        "--seed",
        "3",
        "-q",
        *extra,
    )
    assert result.exit_code == 0, result.stderr
    return storage


def test_objectives_comma_form_equals_repeated_objective(tmp_path: Path) -> None:
    storage = mo_search(tmp_path, budget=20)
    study = nasforge.load_study("mo", storage)
    assert [str(o) for o in study.objectives] == OBJECTIVES.split(",")
    repeated = nasforge.create_study(
        strategy="nsga2", seed=3, objectives=OBJECTIVES.split(","), evaluator=None
    )
    evaluator = nasforge.evaluators.create("tabular", dataset="cifar10")
    repeated.optimize(evaluator, budget=20)
    assert [t.arch for t in repeated.trials] == [t.arch for t in study.trials]


def test_both_objective_forms_are_refused() -> None:
    result = invoke("search", "--objectives", "valid_acc:max", "--objective", "test_acc:max")
    assert result.exit_code == 2
    assert "either with --objectives" in result.stderr


def test_pareto_json_front_is_non_dominated_and_below_the_true_front(tmp_path: Path) -> None:
    storage = mo_search(tmp_path)
    result = invoke("pareto", "mo", "--storage", storage, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    metrics = ["test_acc", "latency_ms[pixel3]"]
    points = np.array([[row[metrics[0]], -row[metrics[1]]] for row in data["front"]])
    assert len(points) >= 3
    for i, a in enumerate(points):
        assert not any(dominates(b, a) for j, b in enumerate(points) if j != i)
    assert data["n_scored"] >= 80  # 80 evaluations, and functional twins answered free
    assert 0.5 < data["ratio"] < 1.0
    assert data["hypervolume"] < data["true_hypervolume"]
    # every found point is dominated by, or on, the true front
    truth = true_front("nb201", "cifar10", OBJECTIVES.split(","))
    for p in points:
        assert any(dominates(t, p) or np.allclose(t, p) for t in truth.points)


def test_pareto_plot_writes_an_image(tmp_path: Path) -> None:
    storage = mo_search(tmp_path, budget=30)
    out = tmp_path / "front.png"
    result = invoke("pareto", "mo", "--storage", storage, "--plot", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ratio" in result.stdout and "true front" in result.stdout


def test_true_front_of_a_constrained_study_holds_only_feasible_cells() -> None:
    study = nasforge.create_study(
        strategy="nsga2",
        seed=0,
        objectives=["test_acc:max", "params_M:min"],
        constraints=["latency_ms[edgegpu]<=5"],
    )
    evaluator = nasforge.evaluators.create("tabular", dataset="cifar10")
    study.optimize(evaluator, budget=40)
    report = study_front(study)
    assert report.true is not None
    bench = nasforge.tabular.create("nb201")
    latency = bench.column("cifar10", "latency_ms[edgegpu]")
    assert (latency[report.true.rows] <= 5).all()
    unconstrained = true_front("nb201", "cifar10", ["test_acc:max", "params_M:min"])
    assert not (latency[unconstrained.rows] <= 5).all()  # the constraint changed the front
    assert 0.0 < report.ratio <= 1.0 + 1e-12


def test_pareto_bad_input(tmp_path: Path) -> None:
    storage = mo_search(tmp_path, budget=10)
    result = invoke("pareto", "mo", "--storage", storage, "--reference", "ideal")
    assert result.exit_code == 2 and "'nadir' or 'median'" in result.stderr
    result = invoke("pareto", "mo", "--storage", storage, "--plot", str(tmp_path / "f.txt"))
    assert result.exit_code == 2 and ".png, .svg or .pdf" in result.stderr
    result = invoke("pareto", "nope", "--storage", storage)
    assert result.exit_code == 2 and "nope" in result.stderr
    single = f"sqlite:///{tmp_path / 'one.db'}"
    assert (
        invoke("search", "--budget", "5", "--storage", single, "--study", "s", "-q").exit_code == 0
    )
    result = invoke("pareto", "s", "--storage", single, "--plot", str(tmp_path / "f.png"))
    assert result.exit_code == 2 and "one objective" in result.stderr


def test_pareto_prints_whole_architectures_in_json_and_text(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "50")  # narrower than one architecture string
    storage = mo_search(tmp_path, budget=40)
    study = nasforge.load_study("mo", storage, read_only=True)
    front = {t.number: t.arch.text for t in study.pareto_front()}
    study.storage.close()
    data = json.loads(invoke("pareto", "mo", "--storage", storage, "--json").stdout)
    assert {row["number"]: row["arch"] for row in data["front"]} == front
    text = invoke("pareto", "mo", "--storage", storage).stdout
    lines = text.splitlines()
    for arch in front.values():  # each whole on one line: copyable
        assert any(arch in line for line in lines), (arch, text)
    assert "…" not in text
