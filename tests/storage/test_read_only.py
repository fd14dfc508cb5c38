"""Reading never writes: ``get_storage(url, read_only=True)`` leaves every file byte-identical,
refuses what is not a nasforge database instead of initialising it, and a file of another
application is refused before anything is written, also when opened for writing."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path

import pytest

from nasforge.errors import StorageError
from nasforge.storage import InMemoryStorage, get_storage
from nasforge.storage.rdb import RDBStorage
from nasforge.testing.storages import RECORD, nb201_arch
from nasforge.trial import Trial, TrialState


def _digest(folder: Path) -> dict[str, str]:
    """Every file of a folder and the hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _nasforge_file(path: Path, trials: int = 3) -> int:
    storage = get_storage(f"sqlite:///{path}")
    study_id = storage.create_study(RECORD).study_id
    assert study_id is not None
    for i in range(trials):
        storage.add_trial(study_id, Trial(number=-1, arch=nb201_arch(i)))
    done = storage.get_trials(study_id)[0]
    done.state, done.metrics = TrialState.COMPLETE, {"valid_acc": 91.0}
    storage.finish_trial(study_id, done)
    storage.close()
    return study_id


def _foreign_file(path: Path, *, wal: bool = False) -> None:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    conn.execute("INSERT INTO customers VALUES (1, 'Ada')")
    conn.commit()
    conn.close()


def test_reading_a_study_database_changes_no_byte(tmp_path):
    path = tmp_path / "s.db"
    study_id = _nasforge_file(path)
    before = (path.read_bytes(), sorted(p.name for p in tmp_path.iterdir()))
    storage = get_storage(f"sqlite:///{path}", read_only=True)
    assert storage.get_study("s") == RECORD
    trials = storage.get_trials(study_id)
    assert [t.state for t in trials] == [TrialState.COMPLETE, *[TrialState.RUNNING] * 2]
    assert storage.study_counts() == {study_id: {"COMPLETE": 1, "RUNNING": 2}}
    with storage.locked(study_id):
        assert len(storage.get_trials(study_id)) == 3
    for write in (
        lambda: storage.create_study(RECORD),
        lambda: storage.add_trial(study_id, Trial(number=-1, arch=nb201_arch(5))),
        lambda: storage.finish_trial(study_id, trials[1]),
        lambda: storage.heartbeat(study_id, 1),
        lambda: storage.set_evaluator(study_id, {"name": "x"}),
        lambda: storage.update_options(study_id, {"limits": {}}),
        lambda: storage.delete_study("s"),
    ):
        with pytest.raises(StorageError, match="opened read-only"):
            write()
    import sqlalchemy as sa

    with (
        pytest.raises(sa.exc.OperationalError, match="readonly"),  # the connection itself
        storage._engine.begin() as conn,  # type: ignore[attr-defined]
    ):
        conn.execute(sa.text("DELETE FROM nasforge_trials"))
    assert "read_only=True" in repr(storage)
    storage.close()
    assert path.read_bytes() == before[0]
    assert get_storage(f"sqlite:///{path}").get_trials(study_id)[0].metrics == {"valid_acc": 91.0}


def test_a_reader_sees_what_a_running_writer_committed(tmp_path):
    path = tmp_path / "s.db"
    writer = get_storage(f"sqlite:///{path}")
    study_id = writer.create_study(RECORD).study_id
    reader = get_storage(f"sqlite:///{path}", read_only=True)
    writer.add_trial(study_id, Trial(number=-1, arch=nb201_arch(3)))
    assert [t.arch for t in reader.get_trials(study_id)] == [nb201_arch(3)]
    writer.add_trial(study_id, Trial(number=-1, arch=nb201_arch(4)))
    assert len(reader.get_trials(study_id)) == 2


@pytest.mark.parametrize("create", [True, False])
def test_a_missing_file_is_an_error_naming_it_and_is_not_created(tmp_path, create):
    path = tmp_path / "none.db"
    with pytest.raises(StorageError, match=f"No study database at '{path}'"):
        get_storage(f"sqlite:///{path}", read_only=True, create=create)
    assert not path.exists()


def test_an_empty_file_is_refused_for_reading_and_resuming_but_filled_by_a_new_search(
    tmp_path,
):
    path = tmp_path / "empty.db"
    path.touch()
    for options in ({"read_only": True}, {"create": False}):
        with pytest.raises(StorageError, match="is an empty file, not a nasforge study"):
            get_storage(f"sqlite:///{path}", **options)
        assert path.stat().st_size == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    storage = get_storage(f"sqlite:///{path}")  # a search may start a study there
    storage.create_study(RECORD)
    assert get_storage(f"sqlite:///{path}", read_only=True).get_study("s") == RECORD


@pytest.mark.parametrize("wal", [False, True])
@pytest.mark.parametrize("mode", [{}, {"create": False}, {"read_only": True}])
def test_another_applications_database_is_refused_and_left_byte_identical(tmp_path, wal, mode):
    path = tmp_path / "crm.db"
    _foreign_file(path, wal=wal)
    before = _digest(tmp_path)
    with pytest.raises(StorageError, match=r"not a nasforge study database.*customers"):
        get_storage(f"sqlite:///{path}", **mode)
    assert _digest(tmp_path) == before


def test_a_sqlite_database_without_tables_is_refused_for_reading_and_filled_by_a_search(
    tmp_path,
):
    path = tmp_path / "blank.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("DROP TABLE t")
    conn.commit()
    conn.close()
    assert path.stat().st_size > 0
    before = _digest(tmp_path)
    for mode in ({"read_only": True}, {"create": False}):
        with pytest.raises(StorageError, match=r"not a nasforge study database \(it has no tables"):
            get_storage(f"sqlite:///{path}", **mode)
        assert _digest(tmp_path) == before
    # nothing to lose: what another worker shows while it creates the study database
    get_storage(f"sqlite:///{path}").create_study(RECORD)
    assert get_storage(f"sqlite:///{path}", read_only=True).get_study("s") == RECORD


@pytest.mark.parametrize("mode", [{}, {"read_only": True}])
def test_a_file_that_is_not_sqlite_is_refused_byte_identical(tmp_path, mode):
    path = tmp_path / "notes.db"
    path.write_bytes(b"Dear diary,\n" * 50)
    with pytest.raises(StorageError, match="corrupt or not a SQLite database"):
        get_storage(f"sqlite:///{path}", **mode)
    assert path.read_bytes() == b"Dear diary,\n" * 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_a_database_of_an_older_schema_is_not_upgraded_by_a_reader(tmp_path):
    path = tmp_path / "old.db"
    _nasforge_file(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE nasforge_schema SET schema_version = 1")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match=r"older nasforge \(schema 1.*Open it once for writing"):
        get_storage(f"sqlite:///{path}", read_only=True)
    assert path.read_bytes() == before


def test_a_database_missing_a_table_is_refused_by_a_reader(tmp_path):
    path = tmp_path / "cut.db"
    _nasforge_file(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE nasforge_trials")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="damaged: it lacks the tables nasforge_trials"):
        get_storage(f"sqlite:///{path}", read_only=True)
    assert path.read_bytes() == before


def test_memory_and_storage_objects_pass_through():
    assert isinstance(get_storage(None, read_only=True), InMemoryStorage)
    storage = InMemoryStorage()
    assert get_storage(storage, read_only=True) is storage


# -- PostgreSQL -----------------------------------------------------------------------------


def test_postgres_reader_runs_read_only_transactions(postgres_url):
    import sqlalchemy as sa

    with pytest.raises(StorageError, match="holds no nasforge study database"):
        get_storage(postgres_url, read_only=True)
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []  # nothing was created
    writer = get_storage(postgres_url)
    study_id = writer.create_study(RECORD).study_id
    writer.add_trial(study_id, Trial(number=-1, arch=nb201_arch(2)))
    reader = get_storage(postgres_url, read_only=True)
    assert reader.get_study("s") == RECORD
    assert [t.arch for t in reader.get_trials(study_id)] == [nb201_arch(2)]
    with pytest.raises(StorageError, match="opened read-only"):
        reader.delete_study("s")
    with (
        pytest.raises(sa.exc.InternalError, match="read-only transaction"),
        reader._engine.begin() as conn,  # type: ignore[attr-defined]
    ):
        conn.execute(sa.text("DELETE FROM nasforge_trials"))
    assert len(writer.get_trials(study_id)) == 1
    engine.dispose()


@pytest.fixture
def password_user(postgres_server, postgres_url):
    """A role that must log in with a password (the test server trusts everyone else), with
    the right to create tables in the (freshly reset) study database."""
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=postgres_server.port, user="postgres", dbname="postgres"
    ) as conn:
        conn.autocommit = True
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        original = hba.read_text()
        conn.execute("DROP ROLE IF EXISTS carol")
        conn.execute("CREATE ROLE carol LOGIN PASSWORD 'right-horse'")
        hba.write_text(f"host all carol 127.0.0.1/32 scram-sha-256\n{original}")
        conn.execute("SELECT pg_reload_conf()")
    with psycopg.connect(postgres_url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("GRANT CREATE ON SCHEMA public TO carol")
    try:
        yield postgres_server.port
    finally:
        hba.write_text(original)
        with psycopg.connect(
            host="127.0.0.1", port=postgres_server.port, user="postgres", dbname="postgres"
        ) as conn:
            conn.execute("SELECT pg_reload_conf()")


def test_a_wrong_postgres_password_fails_at_once_without_the_password(password_user, caplog):
    import time

    url = f"postgresql+psycopg://carol:wrong-zebra@127.0.0.1:{password_user}/nasforge"
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(StorageError, match="password authentication failed") as info:
        RDBStorage(url, retries=3, backoff=2.0)
    assert time.monotonic() - started < 2.0  # not retried as if the server were down
    message = str(info.value)
    assert "carol:***@127.0.0.1" in message and "not retried" in message
    assert "wrong-zebra" not in message and "wrong-zebra" not in caplog.text
    assert "retrying" not in caplog.text
    right = RDBStorage(url.replace("wrong-zebra", "right-horse"), retries=0)
    assert right.list_studies() == [] and "right-horse" not in repr(right)
