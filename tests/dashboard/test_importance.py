"""Decision importance: the main-effect share of variance of each decision, by hand and on
synthetic studies whose metric one decision alone determines."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from nasforge import spaces
from nasforge.dashboard._data import DashboardData
from nasforge.dashboard._importance import MIN_TRIALS, decision_importance, main_effects
from nasforge.storage import InMemoryStorage, StudyRecord
from nasforge.trial import Objective, Trial, TrialState

NB201 = spaces.create("nb201")


def _trials(rows, metric=lambda c: 0.0, state=TrialState.COMPLETE):
    return [
        Trial(
            number=i,
            arch=NB201.from_choices(choices),
            state=state,
            metrics={"valid_acc": float(metric(choices))},
        )
        for i, choices in enumerate(rows)
    ]


def test_main_effects_by_hand():
    codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]])
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    # decision 0: option means 1.5, 3.5, 5.5 around 3.5 -> between = 2 * (4 + 0 + 4) = 16;
    # decision 1: means 3 and 4 -> between = 3 * (0.25 + 0.25) = 1.5; total = 17.5
    assert main_effects(codes, y) == pytest.approx([16 / 17.5, 1.5 / 17.5])
    assert main_effects(codes, np.full(6, 2.0)).tolist() == [0.0, 0.0]


def test_a_decision_that_alone_determines_the_metric_ranks_first():
    rng = np.random.default_rng(0)
    rows = [tuple(int(c) for c in rng.integers(0, 5, size=6)) for _ in range(60)]
    result = decision_importance(
        _trials(rows, lambda c: 10.0 * c[2]), Objective("valid_acc"), lambda: NB201
    )
    ranked = result["decisions"]
    assert "reason" not in result and result["metric"] == "valid_acc"
    assert ranked[0]["name"] == "edge2"
    assert ranked[0]["importance"] == pytest.approx(1.0)
    assert all(d["importance"] < 0.2 for d in ranked[1:])
    assert [d["importance"] for d in ranked] == sorted(
        (d["importance"] for d in ranked), reverse=True
    )
    assert {d["name"] for d in ranked} == {d.name for d in NB201.decisions()}


def test_reasons_instead_of_importances():
    few = _trials([(i % 5,) * 6 for i in range(MIN_TRIALS - 1)], lambda c: c[0])
    result = decision_importance(few, Objective("valid_acc"), lambda: NB201)
    assert result["decisions"] == [] and f"at least {MIN_TRIALS} COMPLETE" in result["reason"]
    # failed trials do not count
    failed = _trials([(i % 5,) * 6 for i in range(20)], state=TrialState.FAILED)
    assert (
        "the study has 0"
        in decision_importance(failed, Objective("valid_acc"), lambda: NB201)["reason"]
    )
    flat = _trials([(i % 5,) * 6 for i in range(20)], lambda c: 3.0)
    assert (
        "the same in every trial"
        in decision_importance(flat, Objective("valid_acc"), lambda: NB201)["reason"]
    )
    enough = _trials([(i % 5,) * 6 for i in range(20)], lambda c: c[0])

    def broken():
        raise ModuleNotFoundError("No module named 'my_spaces'")

    result = decision_importance(enough, Objective("valid_acc"), broken)
    assert "cannot be built here" in result["reason"] and "my_spaces" in result["reason"]
    darts = spaces.create("darts")  # a space without independent decisions
    assert (
        "no independent decisions"
        in decision_importance(enough, Objective("valid_acc"), lambda: darts)["reason"]
    )


def test_choices_that_do_not_fit_are_read_from_the_text_or_left_out():
    rng = np.random.default_rng(1)
    rows = [tuple(int(c) for c in rng.integers(0, 5, size=6)) for _ in range(30)]
    trials = _trials(rows, lambda c: c[4])
    for trial in trials[:10]:  # stored choices lost: the text still says them
        trial.arch = type(trial.arch)("nb201", (), trial.arch.text)
    for trial in trials[10:15]:  # neither fits: left out
        trial.arch = type(trial.arch)("nb201", (9,), "not an nb201 cell")
    result = decision_importance(trials, Objective("valid_acc"), lambda: NB201)
    assert result["decisions"][0] == {"name": "edge4", "importance": pytest.approx(1.0)}


def test_study_page_importance_from_trials_written_to_a_storage():
    storage = InMemoryStorage()
    record = storage.create_study(
        StudyRecord(name="imp", space="nb201", strategy="random", seed=0, objectives=("acc:max",))
    )
    rng = np.random.default_rng(2)
    for _ in range(40):
        choices = tuple(int(c) for c in rng.integers(0, 5, size=6))
        arch = NB201.from_choices(choices)
        number = storage.add_trial(
            record.study_id, Trial(0, arch, started_at=datetime.now(timezone.utc))
        )
        storage.finish_trial(
            record.study_id,
            Trial(number, arch, TrialState.COMPLETE, metrics={"acc": 5.0 * choices[0] + 1.0}),
        )
    with DashboardData(storage) as data:
        importance = data.study("imp")["importance"]
    assert importance["metric"] == "acc" and "eta squared" in importance["method"]
    assert importance["decisions"][0]["name"] == "edge0"
    assert importance["decisions"][0]["importance"] == pytest.approx(1.0)


def test_a_study_of_an_unknown_space_gives_a_reason_not_an_error():
    storage = InMemoryStorage()
    record = storage.create_study(
        StudyRecord(
            name="u", space="not-installed", strategy="random", seed=0, objectives=("acc:max",)
        )
    )
    for i in range(10):
        arch = NB201.from_choices((i % 5,) * 6)
        number = storage.add_trial(record.study_id, Trial(0, arch))
        storage.finish_trial(
            record.study_id, Trial(number, arch, TrialState.COMPLETE, metrics={"acc": float(i)})
        )
    with DashboardData(storage) as data:
        page = data.study("u")
        trial = data.trial("u", 0)
    assert page["importance"]["decisions"] == [] and "not-installed" in page["importance"]["reason"]
    assert trial["drawing"] is None and "not-installed" in trial["drawing_error"]
