"""Storages: the same contract in memory, SQLite and PostgreSQL, and clear errors on bad
databases (unreachable, foreign, newer, corrupt)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import datetime, timezone

import pytest

from nasforge.errors import StorageError, StudyConflictError, StudyDeletedError
from nasforge.spaces.nb201 import NB201Space
from nasforge.storage import SCHEMA_VERSION, InMemoryStorage, StudyRecord, get_storage
from nasforge.storage.rdb import RDBStorage
from nasforge.trial import Trial, TrialState

RECORD = StudyRecord(
    name="s",
    space="nb201",
    strategy="random",
    seed=7,
    objectives=("valid_acc:max",),
    strategy_params={"a": 1},
)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def storage(request, tmp_path):
    if request.param == "memory":
        return InMemoryStorage()
    if request.param == "postgresql":
        return get_storage(request.getfixturevalue("postgres_url"))
    return get_storage(f"sqlite:///{tmp_path / 's.db'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 's.db'}"


def test_study_and_trial_round_trip(storage):
    record = storage.create_study(RECORD)
    assert record.study_id is not None and record == RECORD
    assert storage.get_study("s") == RECORD and storage.get_study("nope") is None
    with pytest.raises(StudyConflictError):
        storage.create_study(RECORD)
    arch = NB201Space().from_index(5)
    started = datetime(2026, 1, 1, tzinfo=timezone.utc)
    trial = Trial(number=-1, arch=arch, fidelity={"epochs": 12}, worker="w", started_at=started)
    assert storage.add_trial(record.study_id, trial) == 0
    assert storage.add_trial(record.study_id, trial) == 1
    trial.number = 0
    trial.state = TrialState.COMPLETE
    trial.metrics = {"valid_acc": 90.5, "latency_ms[pixel3]": 3.25}
    trial.cost = 0.06
    storage.finish_trial(record.study_id, trial)
    stored = storage.get_trials(record.study_id)
    assert [t.number for t in stored] == [0, 1]
    first = stored[0]
    assert first.arch == arch and first.arch.text == arch.text
    assert first.state is TrialState.COMPLETE and first.metrics == trial.metrics
    assert first.fidelity == {"epochs": 12} and first.cost == pytest.approx(0.06)
    assert first.started_at == started and first.finished_at is not None
    assert stored[1].state is TrialState.RUNNING
    assert [t.number for t in storage.get_trials(record.study_id, since=1)] == [1]
    storage.heartbeat(record.study_id, 1)
    storage.set_evaluator(record.study_id, {"name": "tabular", "dataset": "cifar10"})
    assert storage.get_study("s").evaluator == {"name": "tabular", "dataset": "cifar10"}
    assert [r.name for r in storage.list_studies()] == ["s"]
    storage.delete_study("s")
    assert storage.get_study("s") is None
    with pytest.raises(StorageError, match="No study named 's'"):
        storage.delete_study("s")


def test_sqlite_file_survives_reopening(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first = get_storage(url)
    study_id = first.create_study(RECORD).study_id
    first.add_trial(study_id, Trial(number=-1, arch=NB201Space().from_index(1)))
    first.close()
    again = get_storage(url)
    assert again.get_study("s") == RECORD
    assert len(again.get_trials(study_id)) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("study.db", "Malformed storage URL"),
        ("sqlit:/x", "Malformed storage URL"),
        ("mysql://u@h/db", "Unsupported storage URL"),
        ("sqlite://", "names no file"),
        ("sqlite:///no/such/folder/x.db", "does not exist"),
    ],
)
def test_bad_urls(url, message):
    with pytest.raises(StorageError, match=message):
        get_storage(url)


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="corrupt or not a SQLite database"):
        get_storage(f"sqlite:///{path}")


def test_foreign_sqlite_database(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StorageError, match=r"not a nasforge study database.*customers"):
        get_storage(f"sqlite:///{path}")


def test_database_from_a_newer_nasforge(tmp_path):
    path = tmp_path / "new.db"
    get_storage(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE nasforge_schema SET schema_version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StorageError, match=r"newer nasforge.*pip install -U nasforge"):
        RDBStorage(f"sqlite:///{path}")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(StorageError, match="is a folder"):
        get_storage(f"sqlite:///{tmp_path}")


def _trial(index: int) -> Trial:
    return Trial(number=-1, arch=NB201Space().from_index(index), worker="w")


def test_finish_sequence_orders_the_history_of_many_workers(storage):
    study_id = storage.create_study(RECORD).study_id
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


def test_locked_block_is_atomic_and_excludes_other_writers(db_url):
    storage = get_storage(db_url)
    study_id = storage.create_study(RECORD).study_id
    other = get_storage(db_url)
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


def test_deleted_study_is_reported_to_its_workers(storage):
    study_id = storage.create_study(RECORD).study_id
    storage.add_trial(study_id, _trial(0))
    running = storage.get_trials(study_id)[0]
    storage.delete_study("s")
    with pytest.raises(StudyDeletedError, match="deleted"), storage.locked(study_id):
        pass
    running.state = TrialState.COMPLETE
    with pytest.raises(StudyDeletedError):
        storage.finish_trial(study_id, running)


def test_schema_1_database_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    first = get_storage(url)
    study_id = first.create_study(RECORD).study_id
    for i in range(3):
        first.add_trial(study_id, _trial(i))
    for trial in first.get_trials(study_id)[:2]:
        trial.state = TrialState.COMPLETE
        first.finish_trial(study_id, trial)
    first.close()
    with sqlite3.connect(path) as conn:  # what nasforge 0.1 wrote
        conn.execute("DROP INDEX ix_nasforge_trials_finish")
        conn.execute("ALTER TABLE nasforge_trials DROP COLUMN asked_after")
        conn.execute("ALTER TABLE nasforge_trials DROP COLUMN finish_seq")
        conn.execute("UPDATE nasforge_schema SET schema_version = 1")
    trials = get_storage(url).get_trials(study_id)
    assert [(t.asked_after, t.finish_seq) for t in trials] == [(0, 1), (1, 2), (2, None)]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT schema_version FROM nasforge_schema").fetchone() == (2,)


def test_postgres_database_from_a_newer_nasforge(postgres_url):
    import sqlalchemy as sa

    get_storage(postgres_url).close()
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE nasforge_schema SET schema_version = {SCHEMA_VERSION + 1}"))
    engine.dispose()
    with pytest.raises(StorageError, match=r"newer nasforge.*pip install -U nasforge"):
        get_storage(postgres_url)


def test_unreachable_database_is_retried_then_named_without_its_password(caplog):
    pytest.importorskip("psycopg")
    import socket

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://alice:s3cret-pw@127.0.0.1:{port}/studies"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StorageError) as info:
        RDBStorage(url, retries=2, backoff=0.01)
    message = str(info.value)
    assert "Cannot reach study database" in message and "after 3 attempts" in message
    assert f"alice:***@127.0.0.1:{port}/studies" in message
    assert "s3cret" not in message and "s3cret" not in caplog.text
    assert caplog.text.count("retrying in") == 2
