"""The Python API checks limits, seeds, names, objectives and strategy parameters before
anything is written: a refused call leaves no database behind; reading a study never writes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nasforge
from nasforge.errors import InvalidConfigError, NasforgeError, StorageError, UnknownNameError
from nasforge.execution.worker import join_study, run_worker
from nasforge.study._create import MAX_BUDGET, MAX_TRIALS, check_limits

NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([True, False, "3", None, 1e23, MAX_BUDGET, MAX_TRIALS, MAX_TRIALS + 1]),
)


def _valid_trials(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_TRIALS


def _valid_budget(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= MAX_BUDGET
    )


@settings(max_examples=200, deadline=None)
@given(n_trials=NUMBERS, budget=NUMBERS)
def test_limits_are_accepted_exactly_when_finite_and_within_bounds(
    n_trials: object, budget: object
) -> None:
    valid = (n_trials is None or _valid_trials(n_trials)) and (
        budget is None or _valid_budget(budget)
    )
    if valid:
        check_limits(n_trials=n_trials, budget=budget)
    else:
        with pytest.raises(InvalidConfigError, match=r"n_trials|budget"):
            check_limits(n_trials=n_trials, budget=budget)


@pytest.mark.parametrize("limits", [{"budget": math.inf}, {"budget": 1e23}, {"n_trials": 0}])
def test_optimize_and_workers_refuse_endless_limits_and_store_none(
    limits: dict[str, float], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    evaluator = nasforge.evaluators.create("tabular", dataset="cifar10")
    study = nasforge.create_study(strategy="random", storage=url, study_name="l")
    with pytest.raises(InvalidConfigError):
        study.optimize(evaluator, **limits)
    with pytest.raises(InvalidConfigError):
        run_worker(study, **limits)  # type: ignore[arg-type]
    assert nasforge.load_study("l", url).record.options.get("limits") is None
    assert study.trials == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"study_name": ""}, "empty"),
        ({"study_name": "x" * 300}, "at most 255"),
        ({"seed": 2**63}, "2\\*\\*63 - 1"),
        ({"seed": -1}, "2\\*\\*63 - 1"),
        ({"seed": 2.0}, "whole number"),
        ({"objectives": ["valid_acc:max", "valid_acc:min"]}, "given twice"),
        ({"objectives": ["params_M:min", "params_M"]}, "given twice"),
        ({"strategy_params": {"population_size": math.nan}}, "not a finite number"),
        ({"strategy_params": {"population_size": 2**80}}, "beyond 64 bits"),
        ({"strategy_params": {"mutation": [1.0, math.inf]}}, "not a finite number"),
        ({"heartbeat_grace": math.inf}, "heartbeat_grace"),
    ],
)
def test_create_study_refuses_before_creating_a_database(
    kwargs: dict[str, object], message: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    settings = {"strategy": "regularized-evolution", "storage": url, "study_name": "c"}
    with pytest.raises(InvalidConfigError, match=message):
        nasforge.create_study(**{**settings, **kwargs})  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_strategys_own_python_error_becomes_a_clear_error() -> None:
    with pytest.raises(NasforgeError, match=r"sample_size|tournament_size|population_size"):
        nasforge.create_study(
            strategy="regularized-evolution",
            strategy_params={"population_size": 3, "sample_size": 50},
        )


def test_load_study_says_when_there_is_no_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    with pytest.raises(StorageError, match="No study database"):
        nasforge.load_study("s", url)
    assert list(tmp_path.iterdir()) == []
    nasforge.create_study(strategy="random", storage=url, study_name="t").storage.close()
    with pytest.raises(UnknownNameError, match=r"study 's'.*choose from t"):
        nasforge.load_study("s", url)
    with pytest.raises(InvalidConfigError, match="empty"):
        nasforge.load_study("", url)


def test_reading_a_study_with_a_dead_workers_trial_writes_nothing(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "r.db"
    url = f"sqlite:///{path}"
    study = nasforge.create_study(strategy="random", storage=url, study_name="r")
    study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), n_trials=3)
    study.storage.close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE nasforge_trials SET state = 'RUNNING', worker = 'gone:1:x', "
            "heartbeat_at = '2000-01-01 00:00:00.000000', finished_at = NULL, finish_seq = NULL "
            "WHERE number = 2"
        )
    conn.close()
    before = path.read_bytes()
    reader = nasforge.load_study("r", url, read_only=True)
    assert [t.state.value for t in reader.trials][-1] == "RUNNING"
    reader.storage.close()
    assert path.read_bytes() == before
    # a writer still declares the dead worker's trial FAILED for retry
    writer = nasforge.load_study("r", url)
    assert [t.state.value for t in writer.trials][-1] == "FAILED"
    writer.storage.close()


def test_a_worker_without_a_limit_creates_no_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    create = {"strategy": "random"}
    with pytest.raises(InvalidConfigError, match="needs a limit"):
        join_study(url, "w", create=create, limits={"n_trials": None, "budget": None})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StorageError, match="No study database"):
        join_study(url, "w")
    assert list(tmp_path.iterdir()) == []
