"""Storages: where studies are recorded. ``get_storage(None)`` is memory,
``get_storage("sqlite:///study.db")`` a SQLite file, and
``get_storage(url, read_only=True)`` opens a storage that is only read (nothing is ever
written: commands that show or export a study use it)."""

from __future__ import annotations

from nasforge.storage._url import mask
from nasforge.storage.base import (
    MAX_SEED,
    MAX_STUDY_NAME,
    SCHEMA_VERSION,
    Storage,
    StudyRecord,
    check_record,
    check_study_name,
)
from nasforge.storage.memory import InMemoryStorage

__all__ = [
    "MAX_SEED",
    "MAX_STUDY_NAME",
    "SCHEMA_VERSION",
    "InMemoryStorage",
    "Storage",
    "StudyRecord",
    "check_record",
    "check_study_name",
    "get_storage",
    "mask_url",
]

#: The text of a storage URL with its password replaced by ``***`` (also when the URL is
#: malformed); use it wherever a URL given by a user is printed or logged.
mask_url = mask


def get_storage(
    storage: str | Storage | None, *, create: bool = True, read_only: bool = False
) -> Storage:
    """A storage from a URL, an existing storage, or ``None`` (a new in-memory storage).

    Args:
        storage: A URL (``sqlite:///study.db``, ``postgresql+psycopg://user@host/db``), a
            storage (returned as it is), or ``None``.
        create: Create the study database if there is none. With ``create=False`` a
            SQLite file that does not exist or is empty, or a database without tables, is an
            error instead of a new, empty study database (for commands that resume).
        read_only: Never write (for commands that only read: ``show``, ``pareto``,
            ``export``): SQLite is opened read-only (no WAL switch, no tables created, no
            upgrade of an older schema), PostgreSQL in read-only transactions. The database
            must already be a nasforge study database; methods that write raise
            :class:`~nasforge.errors.StorageError`. Implies ``create=False``.

    Raises:
        StorageError: The URL is malformed (the message shows it with the password hidden
            and says how to write it) or the database cannot be opened as asked.

    Example:
        >>> import os, tempfile
        >>> from nasforge.storage import get_storage
        >>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "study.db")
        >>> get_storage(url, read_only=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nasforge.errors.StorageError: No study database at ...
        >>> get_storage(url).close()  # creates it
        >>> get_storage(url, read_only=True)  # doctest: +ELLIPSIS
        RDBStorage('sqlite:///.../study.db', read_only=True)
    """
    if storage is None:
        return InMemoryStorage()
    if isinstance(storage, Storage):
        return storage
    from nasforge.storage.rdb import RDBStorage

    return RDBStorage(storage, read_only, create=create)
