"""Storages: the same contract in memory and in SQLite, and clear errors on bad databases."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from nasforge.errors import StorageError, StudyConflictError
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


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    if request.param == "memory":
        return InMemoryStorage()
    return get_storage(f"sqlite:///{tmp_path / 's.db'}")


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
