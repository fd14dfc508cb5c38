"""Opening and running a search from plain settings; progress through callbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import nasforge
from nasforge.errors import InvalidConfigError
from nasforge.runs import SearchProgress, open_search, open_training_search, run_search


class Recorder(SearchProgress):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def start(self, study: Any, **info: Any) -> None:
        best = info["best"]
        self.events.append(("start", info["by_trials"], info["total"], info["completed"], best))

    def trial(self, study: Any, trial: Any, *, advance: float, is_best: bool) -> None:
        self.events.append(("trial", trial.number, advance, is_best))

    def epoch(self, study: Any, arch: Any, report: Any) -> None:
        self.events.append(("epoch", len(study.trials) - 1, report.epoch, report.epochs))


def test_a_tabular_search_is_named_resumed_and_reported(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    settings = {"space": "nb201", "strategy": "random", "dataset": "cifar10", "seed": 2}
    opened = open_search(budget=6, storage=url, **settings)
    assert opened.study.name == "nb201-random-cifar10-seed2" and not opened.resumed
    recorder = Recorder()
    run_search(opened.study, opened.evaluator, budget=6, progress=recorder)
    assert recorder.events[0] == ("start", False, 6, 0, None)
    trials = [e for e in recorder.events if e[0] == "trial"]
    assert [e[1] for e in trials] == list(range(6)) and {e[2] for e in trials} == {1.0}
    best = opened.study.best_trial.number
    assert [e[1] for e in trials if e[3]][-1] == best
    again = open_search(budget=10, storage=url, **settings)
    assert again.resumed and len(again.study.trials) == 6
    recorder = Recorder()
    run_search(again.study, again.evaluator, budget=10, progress=recorder)
    assert recorder.events[0][:4] == ("start", False, 10, 6.0)
    plain = open_search(budget=10, **settings)  # the same trials without progress
    run_search(plain.study, plain.evaluator, budget=10)
    assert [t.arch for t in plain.study.trials] == [t.arch for t in again.study.trials]


def test_a_bad_budget_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with pytest.raises(InvalidConfigError, match=r"budget must be a finite number above 0.*got 0"):
        open_search(space="nb201", strategy="random", dataset="cifar10", seed=0, budget=0,
                    storage=url)  # fmt: skip
    assert not (tmp_path / "r.db").exists()


def test_training_progress_comes_through_epoch_callbacks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    opened = open_training_search(
        space="nb201",
        strategy="random",
        dataset="synthetic",
        seed=0,
        storage=url,
        training={"epochs": 2, "channels": 4, "cells": 1, "resolution": 8, "threads": 1,
                  "device": "cpu", "batch_size": 32},
    )  # fmt: skip
    evaluator = opened.evaluator
    assert opened.study.name == "nb201-random-train-synthetic-seed0"
    assert Path(evaluator.checkpoint_dir) == tmp_path / "t.db-checkpoints" / opened.study.name
    evaluate = type(evaluator).evaluate
    recorder = Recorder()
    run_search(opened.study, evaluator, n_trials=2, progress=recorder)
    epochs = [e[1:] for e in recorder.events if e[0] == "epoch"]
    assert epochs == [(0, 0, 2), (0, 1, 2), (0, 2, 2), (1, 0, 2), (1, 1, 2), (1, 2, 2)]
    assert recorder.events[0][:4] == ("start", True, 2, 0)
    # nothing was replaced, and the callback is gone after the run
    assert evaluator.on_epoch is None and type(evaluator).evaluate is evaluate
    assert "evaluate" not in vars(evaluator) and evaluator._epoch_callbacks_now() == []
    kept = open_training_search(
        space="nb201", strategy="random", dataset="synthetic", seed=1, storage=url,
        keep_checkpoints=False, training={"epochs": 1, "channels": 4, "cells": 1},
    )  # fmt: skip
    assert kept.evaluator.checkpoint_dir is None


def test_run_search_without_progress_matches_study_optimize() -> None:
    opened = open_search(space="nb201", strategy="regularized-evolution", dataset="cifar10",
                         seed=0, budget=30)  # fmt: skip
    run_search(opened.study, opened.evaluator, budget=30)
    study = nasforge.create_study(strategy="regularized-evolution", seed=0)
    study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), budget=30)
    assert [t.arch for t in study.trials] == [t.arch for t in opened.study.trials]
