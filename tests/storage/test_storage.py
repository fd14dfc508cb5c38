"""Storages: the shared contract (nasforge.testing.storages) in memory, SQLite and PostgreSQL,
and clear errors on bad databases (unreachable, foreign, newer, corrupt)."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from nasforge.errors import StorageError
from nasforge.storage import SCHEMA_VERSION, InMemoryStorage, get_storage
from nasforge.storage.rdb import RDBStorage
from nasforge.testing.storages import RECORD, StorageContract, nb201_arch
from nasforge.trial import Trial, TrialState


def _trial(index: int) -> Trial:
    return Trial(number=-1, arch=nb201_arch(index), worker="w")


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self):
        return InMemoryStorage()


class TestRDBStorage(StorageContract):
    @pytest.fixture(params=["sqlite", "postgresql"])
    def url(self, request, tmp_path):
        if request.param == "postgresql":
            return request.getfixturevalue("postgres_url")
        return f"sqlite:///{tmp_path / 's.db'}"

    @pytest.fixture
    def storage(self, url):
        return get_storage(url)

    @pytest.fixture
    def reopen(self, url):
        return lambda: get_storage(url)


def test_sqlite_file_survives_reopening(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first = get_storage(url)
    study_id = first.create_study(RECORD).study_id
    first.add_trial(study_id, Trial(number=-1, arch=nb201_arch(1)))
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
        assert conn.execute("SELECT schema_version FROM nasforge_schema").fetchone() == (
            SCHEMA_VERSION,
        )


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


class _DriverError(Exception):
    def __init__(self, text: str, sqlstate: str | None = None) -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


class _Wrapped(Exception):
    def __init__(self, orig: Exception) -> None:
        super().__init__(str(orig))
        self.orig = orig


@pytest.mark.parametrize(
    ("text", "sqlstate", "transient"),
    [
        ('connection failed: FATAL: password authentication failed for user "a"', None, False),
        ('connection failed: FATAL: password authentication failed for user "a"', "28P01", False),
        ('connection failed: FATAL: database "nope" does not exist', None, False),
        ('connection failed: FATAL: role "bob" does not exist', None, False),
        ("connection failed: FATAL: no pg_hba.conf entry for host", None, False),
        ("connection failed: fe_sendauth: no password supplied", None, False),
        ('invalid connection option "foo"', None, False),
        ("connection failed: Connection refused", None, True),
        ("could not connect to server: Connection timed out", None, True),
        ("terminating connection due to administrator command", "57P01", True),
        ("deadlock detected", "40P01", True),
        ("server closed the connection unexpectedly", "08006", True),
    ],
)
def test_only_errors_of_an_unreachable_server_are_retried(text, sqlstate, transient):
    from nasforge.storage._schema import transient as is_transient

    assert is_transient(_Wrapped(_DriverError(text, sqlstate)), sqlite=False) is transient
