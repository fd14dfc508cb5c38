"""The :class:`~nasforge.storage.Storage` contract as pytest tests a storage of your own can run.

Subclass :class:`StorageContract` in a test module (its name must start with ``Test``) and
give it a ``storage`` fixture that returns a new, empty storage; pytest then runs every test
of the contract on it. A storage that several processes can open also defines ``reopen``, a
fixture returning a function that opens another handle on the same records (the lock test is
skipped without it)::

    import pytest
    from nasforge.testing.storages import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(tmp_path / "studies")

        @pytest.fixture
        def reopen(self, tmp_path):
            return lambda: MyStorage(tmp_path / "studies")

nasforge runs it on memory, SQLite and PostgreSQL (``tests/storage/test_storage.py``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidConfigError,
    StorageError,
    StudyConflictError,
    StudyDeletedError,
)
from nasforge.storage.base import MAX_SEED, MAX_STUDY_NAME, Storage, StudyRecord
from nasforge.trial import Trial, TrialState

__all__ = ["RECORD", "StorageContract", "nb201_arch"]

#: The study the contract writes (its name is ``"s"``).
RECORD = StudyRecord(
    name="s",
    space="nb201",
    strategy="random",
    seed=7,
    objectives=("valid_acc:max",),
    strategy_params={"a": 1},
)


def nb201_arch(index: int) -> Architecture:
    """Architecture ``index`` of the NB201 space."""
    from nasforge import spaces

    return spaces.create("nb201").from_index(index)  # type: ignore[attr-defined, no-any-return]


def _trial(index: int) -> Trial:
    return Trial(number=-1, arch=nb201_arch(index), worker="w")


def _create(storage: Storage, record: StudyRecord = RECORD) -> int:
    """Create the study; its id."""
    study_id = storage.create_study(record).study_id
    assert study_id is not None, "create_study() must return the record with its study_id"
    return study_id


def _stored(storage: Storage, name: str) -> StudyRecord:
    record = storage.get_study(name)
    assert record is not None, f"study {name!r} is missing"
    return record


class StorageContract:
    """Tests every :class:`~nasforge.storage.Storage` passes (see the module docstring)."""

    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("define a 'storage' fixture returning a new, empty storage")

    @pytest.fixture
    def reopen(self) -> Callable[[], Storage]:
        pytest.skip("this storage cannot be opened twice (no 'reopen' fixture)")

    def test_study_and_trial_round_trip(self, storage: Storage) -> None:
        record = storage.create_study(RECORD)
        assert record.study_id is not None and record == RECORD
        study_id = record.study_id
        assert storage.get_study("s") == RECORD and storage.get_study("nope") is None
        with pytest.raises(StudyConflictError):
            storage.create_study(RECORD)
        arch = nb201_arch(5)
        started = datetime(2026, 1, 1, tzinfo=timezone.utc)
        trial = Trial(number=-1, arch=arch, fidelity={"epochs": 12}, worker="w", started_at=started)
        assert storage.add_trial(study_id, trial) == 0
        assert storage.add_trial(study_id, trial) == 1
        trial.number = 0
        trial.state = TrialState.COMPLETE
        trial.metrics = {"valid_acc": 90.5, "latency_ms[pixel3]": 3.25}
        trial.cost = 0.06
        storage.finish_trial(study_id, trial)
        stored = storage.get_trials(study_id)
        assert [t.number for t in stored] == [0, 1]
        first = stored[0]
        assert first.arch == arch and first.arch.text == arch.text
        assert first.state is TrialState.COMPLETE and first.metrics == trial.metrics
        assert first.fidelity == {"epochs": 12} and first.cost == pytest.approx(0.06)
        assert first.started_at == started and first.finished_at is not None
        assert stored[1].state is TrialState.RUNNING
        assert [t.number for t in storage.get_trials(study_id, since=1)] == [1]
        storage.heartbeat(study_id, 1)
        assert storage.get_trials(study_id, since=1)[0].heartbeat_at is not None
        storage.set_evaluator(study_id, {"name": "tabular", "dataset": "cifar10"})
        assert _stored(storage, "s").evaluator == {"name": "tabular", "dataset": "cifar10"}
        assert [r.name for r in storage.list_studies()] == ["s"]
        storage.delete_study("s")
        assert storage.get_study("s") is None
        with pytest.raises(StorageError, match="No study named 's'"):
            storage.delete_study("s")

    def test_studies_are_kept_apart(self, storage: Storage) -> None:
        first = _create(storage)
        other = _create(storage, dataclasses.replace(RECORD, name="t"))
        assert other != first
        storage.add_trial(first, _trial(0))
        for i in (1, 2):
            storage.add_trial(other, _trial(i))
        done = storage.get_trials(other)[1]
        done.state = TrialState.FAILED
        done.fail_reason = "out of memory"
        storage.finish_trial(other, done)
        assert storage.study_counts() == {
            first: {"RUNNING": 1},
            other: {"RUNNING": 1, "FAILED": 1},
        }
        assert storage.get_trials(other)[1].fail_reason == "out of memory"
        assert sorted(r.name for r in storage.list_studies()) == ["s", "t"]
        storage.update_options(first, {"limits": {"n_trials": 5}})
        storage.update_options(first, {"heartbeat_grace": 30.0})
        stored = _stored(storage, "s")
        assert stored.options == {"limits": {"n_trials": 5}, "heartbeat_grace": 30.0}
        assert _stored(storage, "t").options == {}
        storage.delete_study("t")
        assert [t.arch for t in storage.get_trials(first)] == [nb201_arch(0)]

    def test_finish_sequence_orders_the_history_of_many_workers(self, storage: Storage) -> None:
        study_id = _create(storage)
        for i in range(3):
            storage.add_trial(study_id, _trial(i))
        stored = storage.get_trials(study_id)
        assert [t.asked_after for t in stored] == [0, 0, 0]
        assert all(t.finish_seq is None for t in stored)
        for number in (2, 0):  # finished out of order
            done = stored[number]
            done.state = TrialState.COMPLETE
            assert storage.finish_trial(study_id, done)
        # a trial declared dead elsewhere is not overwritten by its late result
        assert not storage.finish_trial(study_id, stored[2])
        twin = _trial(7)
        twin.state = TrialState.COMPLETE  # answered from the record: finished when added
        storage.add_trial(study_id, twin)
        by_number = {t.number: t for t in storage.get_trials(study_id)}
        assert by_number[2].finish_seq == 1 and by_number[0].finish_seq == 2
        assert by_number[3].asked_after == 2 and by_number[3].finish_seq == 3
        assert by_number[1].finish_seq is None
        # what changed since a reader saw trials 0-3 and finishes up to 1
        changed = storage.get_trials(study_id, since=4, finished_since=1)
        assert [t.number for t in changed] == [0, 1, 3]

    def test_deleted_study_is_reported_to_its_workers(self, storage: Storage) -> None:
        study_id = _create(storage)
        storage.add_trial(study_id, _trial(0))
        running = storage.get_trials(study_id)[0]
        storage.delete_study("s")
        with pytest.raises(StudyDeletedError, match="deleted"), storage.locked(study_id):
            pass
        running.state = TrialState.COMPLETE
        with pytest.raises(StudyDeletedError):
            storage.finish_trial(study_id, running)

    def test_locked_block_is_atomic_and_excludes_other_writers(
        self, storage: Storage, reopen: Callable[[], Storage]
    ) -> None:
        study_id = _create(storage)
        other = reopen()
        entered = threading.Event()
        done: list[int] = []

        def writer() -> None:
            entered.wait()
            done.append(other.add_trial(study_id, _trial(9)))

        thread = threading.Thread(target=writer)
        thread.start()
        with storage.locked(study_id):
            number = storage.add_trial(study_id, _trial(1))
            entered.set()
            thread.join(0.5)
            assert thread.is_alive() and not done  # waits for the lock
            assert [t.number for t in storage.get_trials(study_id)] == [number]
        thread.join(30)
        assert done == [1]
        # an error inside the block writes nothing
        with pytest.raises(RuntimeError), storage.locked(study_id):
            storage.add_trial(study_id, _trial(2))
            raise RuntimeError("boom")
        assert len(storage.get_trials(study_id)) == 2

    @pytest.mark.parametrize(
        ("name", "seed", "message"),
        [
            ("s", MAX_SEED + 1, "integer from 0 to 2\\*\\*63 - 1"),
            ("s", 2**64, "integer from 0 to 2\\*\\*63 - 1"),
            ("s", -1, "integer from 0 to 2\\*\\*63 - 1"),
            ("s", True, "integer from 0 to 2\\*\\*63 - 1"),
            ("", 0, "empty"),
            ("   ", 0, "empty"),
            ("x" * (MAX_STUDY_NAME + 1), 0, f"at most {MAX_STUDY_NAME}"),
            ("a\x00b", 0, "control character"),
            ("a\nb", 0, "control character"),
            ("a\x1bb", 0, "control character"),
            ("a\ud800b", 0, "control character"),
        ],
    )
    def test_names_and_seeds_it_cannot_keep_are_refused_before_anything_is_stored(
        self, storage: Storage, name: str, seed: int, message: str
    ) -> None:
        with pytest.raises(InvalidConfigError, match=message):
            storage.create_study(dataclasses.replace(RECORD, name=name, seed=seed))
        assert storage.list_studies() == []
        assert storage.get_study(name) is None

    def test_longest_name_and_largest_seed_are_kept_exactly(self, storage: Storage) -> None:
        name = "é" * MAX_STUDY_NAME
        storage.create_study(dataclasses.replace(RECORD, name=name, seed=MAX_SEED))
        stored = _stored(storage, name)
        assert stored.name == name and stored.seed == MAX_SEED
        storage.create_study(dataclasses.replace(RECORD, name="zero", seed=0))
        assert _stored(storage, "zero").seed == 0
