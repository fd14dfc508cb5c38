"""SQLite files: looked at without writing before nasforge opens them, and the connection
settings of the two ways to open them.

:func:`inspect_file` reads an existing file only through a read-only connection
(``file:...?mode=ro``), before any ``PRAGMA`` that writes (``journal_mode=WAL`` changes the
file's header): a file that is not a SQLite database, or a database without nasforge's
tables, is refused byte-identical. Writers then open it in WAL mode with
``synchronous=NORMAL`` and take an immediate lock at ``BEGIN``; readers open it with
``mode=ro`` and ``query_only``, and nothing they do can change it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from nasforge.errors import StorageError

__all__ = ["connect_hooks", "inspect_file", "read_only_creator"]

_MAGIC = b"SQLite format 3\x00"


def _uri(path: str) -> str:
    return f"file:{quote(os.path.abspath(path))}?mode=ro"


def inspect_file(path: str, display: str, *, must_exist: bool) -> bool:
    """Check the file at ``path`` without writing to it; whether it is new.

    Returns:
        True when there is no file, an empty one or a database without tables (nasforge may
        create its tables there),
        False when it is a SQLite database holding nasforge's schema table.

    Raises:
        StorageError: The path is a folder or lies in a missing folder; the file is not a
            SQLite database, is corrupt, or holds other tables than nasforge's; with
            ``must_exist``, the file is missing or empty or has no tables.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise StorageError(
            f"Cannot open study database {path!r}: folder {folder!r} does not exist; "
            "create it or correct the storage path."
        )
    if os.path.isdir(path):
        raise StorageError(
            f"Storage path {path!r} is a folder; name a file in it, e.g. "
            f"'sqlite:///{path.rstrip('/')}/study.db'."
        )
    if not os.path.exists(path):
        if must_exist:
            raise StorageError(
                f"No study database at {path!r}; check the storage path (running a search "
                "with this storage creates it)."
            )
        return True
    try:
        with open(path, "rb") as file:
            head = file.read(len(_MAGIC))
    except OSError as exc:
        raise StorageError(
            f"Cannot read study database {path!r}: {exc.strerror or exc}; check its permissions."
        ) from None
    if not head:
        if must_exist:
            raise StorageError(
                f"{path!r} is an empty file, not a nasforge study database; check the storage "
                "path (running a search with this storage writes a study database there)."
            )
        return True
    if head != _MAGIC:
        raise StorageError(
            f"Cannot open study database {display}: the file is corrupt or not a SQLite "
            "database; move it away or choose another --storage path."
        )
    names = _table_names(path, display)
    if not names and not must_exist:
        # a database without tables holds nothing to lose; it is also what another worker
        # creating the study database at this moment shows until its schema is committed
        return True
    if "nasforge_schema" not in names:
        what = f"it has tables {', '.join(sorted(names))}" if names else "it has no tables"
        raise StorageError(
            f"{display} is a SQLite database but not a nasforge study database ({what}); "
            "use another file (nasforge leaves this one untouched)."
        )
    return False


def _table_names(path: str, display: str) -> set[str]:
    # Without a -wal file the whole database is in the file: read it as immutable, which
    # creates no -wal and -shm files next to another application's database.
    uri = _uri(path) if os.path.exists(f"{path}-wal") else f"{_uri(path)}&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=60)
    except sqlite3.Error as exc:
        raise StorageError(
            f"Cannot open study database {display}: {_one_line(exc)}; check the file's permissions."
        ) from None
    conn.text_factory = _decode
    try:
        conn.execute("PRAGMA query_only=1")
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged schema's message is not text
        reason = _one_line(exc) if isinstance(exc, sqlite3.Error) else "unreadable schema"
        raise StorageError(
            f"Cannot open study database {display}: {reason}. The file is corrupt or not a "
            "SQLite database; move it away or choose another --storage path."
        ) from None
    finally:
        conn.close()
    return {str(name) for (name,) in rows}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _decode(data: bytes) -> str:
    """Text of a damaged file that is not UTF-8 is read with replacement characters (and
    then refused as a damaged value) instead of raising UnicodeDecodeError."""
    return data.decode("utf-8", errors="replace")


def read_only_creator(path: str) -> Callable[[], sqlite3.Connection]:
    """A function opening ``path`` read-only (SQLAlchemy's ``creator``)."""
    uri = _uri(path)
    return lambda: sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)


def connect_hooks(read_only: bool) -> tuple[Callable[..., None], Callable[..., None]]:
    """SQLAlchemy ``connect`` and ``begin`` event hooks for a writer or a reader."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook issue BEGIN
        dbapi_connection.text_factory = _decode
        cursor = dbapi_connection.cursor()
        if read_only:
            cursor.execute("PRAGMA query_only=1")
        else:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return on_connect, on_begin
