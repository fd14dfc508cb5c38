"""nasforge's errors travel between processes: every exception class pickles with its
constructor's arguments and comes back equal (class, message, attributes), and an error
raised in a process-pool worker reaches the caller as itself, or named, never as a broken
pool."""

from __future__ import annotations

import inspect
import pickle

import pytest

from nasforge import errors
from nasforge.errors import NasforgeError, UnknownNameError


def _classes() -> list[type[NasforgeError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, NasforgeError)
    ]


def _build(cls: type[NasforgeError]) -> NasforgeError:
    """An instance built the way nasforge builds it: with the constructor's own arguments."""
    if cls.__init__ is UnknownNameError.__init__:
        return cls("benchmark", "nb2001", ["nb201", "nb301"])  # type: ignore[call-arg]
    if cls is errors.StudyNotFoundError:
        return cls("nb201-ra", "sqlite:///runs.db", ["nb201-re", "nb201-rs"])
    assert "__init__" not in cls.__dict__, (
        f"{cls.__name__} has its own constructor: add its arguments to this test"
    )
    return cls(f"{cls.__name__}: what was wrong and how to fix it")


def test_every_error_class_is_covered() -> None:
    assert {c.__name__ for c in _classes()} == set(errors.__all__)


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_every_error_survives_a_pickle_round_trip(cls: type[NasforgeError]) -> None:
    error = _build(cls)
    error.add_note("a note")
    try:
        raise error
    except NasforgeError as raised:  # a raised error carries a traceback: still pickles
        copy = pickle.loads(pickle.dumps(raised))
    assert type(copy) is cls
    assert str(copy) == str(error) and copy.args == error.args
    assert copy.__dict__ == error.__dict__
    assert isinstance(copy, NasforgeError)


def test_unknown_name_error_keeps_its_fields_across_pickling() -> None:
    error = UnknownNameError("space", "nb2O1", ["nb201", "darts"])
    copy = pickle.loads(pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL))
    assert (copy.kind, copy.name, copy.valid) == ("space", "nb2O1", ["darts", "nb201"])
    assert "Did you mean 'nb201'?" in str(copy)


def test_a_subclass_defined_elsewhere_with_its_own_constructor_pickles() -> None:
    class Late(NasforgeError):
        def __init__(self, count: int) -> None:
            self.count = count
            super().__init__(f"{count} things went wrong")

    globals()["Late"] = Late  # pickle finds classes by module and name
    Late.__qualname__ = "Late"
    try:
        copy = pickle.loads(pickle.dumps(Late(3)))
    finally:
        del globals()["Late"]
    assert copy.count == 3 and str(copy) == "3 things went wrong"


def test_a_pool_workers_error_reaches_the_caller_with_its_own_message() -> None:
    from nasforge import spaces
    from nasforge.execution.pool import ProcessPool

    with ProcessPool(1) as pool:
        future = pool.submit(spaces.create, "no-such-space")
        error = future.exception(timeout=120)
        assert isinstance(error, UnknownNameError)
        assert "no-such-space" in str(error) and "nb201" in str(error)
        # the pool is not broken: the next task runs
        assert pool.submit(spaces.names).result(timeout=120)


def test_an_error_that_cannot_be_unpickled_is_sent_back_by_name() -> None:
    from nasforge.execution.pool import WorkerError, _call_in_worker

    class Unpicklable(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a} and {b}")

    def fail() -> None:
        raise Unpicklable(1, 2)

    with pytest.raises(WorkerError, match=r"Unpicklable: 1 and 2"):
        _call_in_worker(fail)
    from nasforge import spaces

    with pytest.raises(UnknownNameError, match="no-such-space"):  # picklable: as itself
        _call_in_worker(spaces.create, "no-such-space")


def test_the_errors_of_other_modules_pickle_too() -> None:
    pytest.importorskip("torch")
    from nasforge.export import ExportError
    from nasforge.oneshot.base import NonFiniteLossError
    from nasforge.train.checkpoint import CheckpointMismatchError
    from nasforge.train.data import DatasetError
    from nasforge.train.trainer import TrainingDivergedError

    for error in (
        ExportError("no weights"),
        DatasetError("no images"),
        TrainingDivergedError("loss nan"),
        CheckpointMismatchError("other arch"),
        NonFiniteLossError("loss inf at step 3", (0, 1, 2)),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert (str(copy), copy.__dict__) == (str(error), error.__dict__)
