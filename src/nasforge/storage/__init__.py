"""Storages: where studies are recorded. ``get_storage(None)`` is memory,
``get_storage("sqlite:///study.db")`` a SQLite file."""

from __future__ import annotations

from nasforge.errors import StorageError
from nasforge.storage.base import SCHEMA_VERSION, Storage, StudyRecord
from nasforge.storage.memory import InMemoryStorage

__all__ = ["SCHEMA_VERSION", "InMemoryStorage", "Storage", "StudyRecord", "get_storage"]


def get_storage(storage: str | Storage | None, *, create: bool = True) -> Storage:
    """A storage from a URL, an existing storage, or ``None`` (a new in-memory storage).

    With ``create=False`` a SQLite file that does not exist is an error instead of a new,
    empty study database (for commands that only read).
    """
    if storage is None:
        return InMemoryStorage()
    if isinstance(storage, Storage):
        return storage
    if not isinstance(storage, str) or "://" not in storage:
        raise StorageError(
            f"Malformed storage URL {storage!r}; write it like 'sqlite:///study.db' (a SQLite "
            "file) or 'postgresql+psycopg://user@host/db'."
        )
    from nasforge.storage.rdb import RDBStorage

    return RDBStorage(storage, create=create)
