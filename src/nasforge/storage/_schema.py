"""nasforge's tables: their definition, creation, check and upgrade, and which database
errors are worth retrying."""

from __future__ import annotations

import logging
from typing import Any

from nasforge.errors import StorageError
from nasforge.storage.base import SCHEMA_VERSION

__all__ = ["check_or_create", "open_error", "postgres_read_only", "storable", "tables", "transient"]

logger = logging.getLogger("nasforge.storage.rdb")


def tables(sa: Any) -> dict[str, Any]:
    """SQLAlchemy tables of schema :data:`~nasforge.storage.base.SCHEMA_VERSION`."""
    meta = sa.MetaData()

    def study_of() -> Any:
        # the study a row belongs to; its rows go with the study
        return sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("nasforge_studies.study_id", ondelete="CASCADE"),
            nullable=False,
        )

    schema = sa.Table(
        "nasforge_schema",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("library_version", sa.String(32), nullable=False),
    )
    studies = sa.Table(
        "nasforge_studies",
        meta,
        sa.Column("study_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(512), nullable=False, unique=True),
        sa.Column("space", sa.String(128), nullable=False),
        sa.Column("space_params", sa.Text, nullable=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("strategy_params", sa.Text, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("objectives", sa.Text, nullable=False),
        sa.Column("evaluator", sa.Text, nullable=True),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    trials = sa.Table(
        "nasforge_trials",
        meta,
        sa.Column("trial_id", sa.Integer, primary_key=True, autoincrement=True),
        study_of(),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("arch", sa.Text, nullable=False),
        sa.Column("choices", sa.Text, nullable=False),
        sa.Column("fidelity", sa.Text, nullable=True),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("fail_reason", sa.Text, nullable=True),
        sa.Column("retryable", sa.Boolean, nullable=False),
        sa.Column("retry_of", sa.Integer, nullable=True),
        sa.Column("duplicate_of", sa.Integer, nullable=True),
        sa.Column("worker", sa.String(256), nullable=True),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("heartbeat_at", sa.DateTime, nullable=True),
        sa.Column("asked_after", sa.Integer, nullable=True),
        sa.Column("finish_seq", sa.Integer, nullable=True),
        sa.UniqueConstraint("study_id", "number", name="uq_nasforge_trial_number"),
    )
    finish_index = sa.Index("ix_nasforge_trials_finish", trials.c.study_id, trials.c.finish_seq)
    reports = sa.Table(
        "nasforge_reports",
        meta,
        sa.Column("report_id", sa.Integer, primary_key=True, autoincrement=True),
        study_of(),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.UniqueConstraint("study_id", "number", "step", name="uq_nasforge_report_step"),
    )
    return {
        "meta": meta,
        "schema": schema,
        "studies": studies,
        "trials": trials,
        "finish_index": finish_index,
        "reports": reports,
    }


def check_or_create(
    conn: Any, tables: dict[str, Any], *, display: str, sqlite: bool, read_only: bool, create: bool
) -> None:
    """Check that the database holds nasforge's tables at the current schema, in the
    caller's transaction; create them in an empty database (``create``) or upgrade an older
    schema (unless ``read_only``).

    Raises:
        StorageError: The database is not a nasforge database, has no tables (without
            ``create``), is damaged, was written by a newer nasforge, or needs an upgrade
            while ``read_only``.
    """
    import sqlalchemy as sa

    meta, schema = tables["meta"], tables["schema"]
    if not sqlite and not read_only:
        # workers starting together: one creates or migrates
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7306571)"))
    existing = set(sa.inspect(conn).get_table_names())
    ours = {t.name for t in meta.sorted_tables}
    if not existing:
        if not create:
            raise StorageError(
                f"{display} holds no nasforge study database (it has no "
                "tables); check the storage URL (running a search with this storage "
                "creates one)."
            )
        meta.create_all(conn)
        conn.execute(
            schema.insert().values(
                id=1, schema_version=SCHEMA_VERSION, library_version=version_text()
            )
        )
        return
    if schema.name not in existing:
        raise StorageError(
            f"{display} is a database but not a nasforge study database (it "
            f"has tables {', '.join(sorted(existing))}); use another file or database."
        )
    row = conn.execute(sa.select(sa.type_coerce(schema.c.schema_version, sa.Text))).first()
    version = None if row is None else row[0]
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version)
    if not isinstance(version, int):
        raise StorageError(
            f"{display} has no valid nasforge schema version ({version!r}); it is "
            "damaged. Move it away and start a new study database."
        )
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{display} was written by a newer nasforge (schema {version}; "
            f"this nasforge reads schema {SCHEMA_VERSION}). Upgrade nasforge: "
            "pip install -U nasforge."
        )
    if version < SCHEMA_VERSION:
        if read_only:
            raise StorageError(
                f"{display} was written by an older nasforge (schema {version}); "
                f"reading it needs an upgrade to schema {SCHEMA_VERSION}, which writes. "
                "Open it once for writing (resume a study in it, or call "
                "nasforge.storage.get_storage(url)), then read it again."
            )
        _migrate(conn, tables, version, display)
    missing = ours - existing
    if missing:
        if read_only:
            raise StorageError(
                f"{display} is damaged: it lacks the tables "
                f"{', '.join(sorted(missing))}. Open it for writing to recreate them "
                "(their content is lost) or restore a copy."
            )
        meta.create_all(conn)


def _migrate(conn: Any, tables: dict[str, Any], version: int, display: str) -> None:
    """Bring a database of an older schema up to date, in the caller's transaction."""
    import sqlalchemy as sa

    if version < 2:
        # schema 1 was written by one process at a time: each trial was proposed after
        # every earlier trial had finished, and trials finished in the order of numbers
        for column in ("asked_after", "finish_seq"):
            conn.execute(sa.text(f"ALTER TABLE nasforge_trials ADD COLUMN {column} INTEGER"))
        conn.execute(sa.text("UPDATE nasforge_trials SET asked_after = number"))
        conn.execute(
            sa.text("UPDATE nasforge_trials SET finish_seq = number + 1 WHERE state <> 'RUNNING'")
        )
        tables["finish_index"].create(conn, checkfirst=True)
    if version < 3:
        # schema 2 kept no intermediate reports: the table starts empty (the decisions of
        # the finished trials are their recorded states, which a resume does not revisit)
        tables["reports"].create(conn, checkfirst=True)
    schema = tables["schema"]
    conn.execute(
        schema.update().values(schema_version=SCHEMA_VERSION, library_version=version_text())
    )
    logger.info("upgraded %s from schema %d to %d", display, version, SCHEMA_VERSION)


def version_text() -> str:
    """This nasforge's version (recorded with the schema)."""
    from nasforge import __version__

    return __version__


def postgres_read_only(dbapi_connection: Any, _record: Any) -> None:
    """Make every transaction of a new PostgreSQL connection read-only (a ``connect`` hook)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_connection.commit()


def storable(name: Any) -> bool:
    """Whether a database can hold ``name`` (text without NUL and lone surrogates)."""
    if not isinstance(name, str) or "\x00" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: Error texts of a server that answered and refused (never retried).
PERMANENT = (
    "authentication failed",
    "no password supplied",
    "password is required",
    "does not exist",
    "no pg_hba.conf entry",
    "invalid connection option",
    "invalid port",
    "invalid integer value",
    "name or service not known",
    "nodename nor servname",
    "permission denied",
    "certificate",
)


def transient(exc: BaseException, sqlite: bool) -> bool:
    """Whether an error may go away when tried again (unreachable server, dropped
    connection, deadlock, serialisation failure, locked SQLite file). A refused login or a
    missing database is not: the server answered."""
    orig = getattr(exc, "orig", None)
    text = str(orig or exc).lower()
    if any(key in text for key in PERMANENT):
        return False
    if getattr(exc, "connection_invalidated", False):
        return True
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is not None:
        # 08: connection exceptions, 57P0x: server shutting down, 40001/40P01: retry
        return str(code).startswith(("08", "57P0", "40001", "40P01"))
    if sqlite:
        return "database is locked" in text
    return any(
        key in text
        for key in ("connection refused", "could not connect", "connection failed", "timeout")
    )


def open_error(
    reason: str, display: str, *, sqlite: bool, transient: bool, attempts: int
) -> StorageError:
    """The error of a database that could not be opened (``reason``: its own message)."""
    if sqlite and transient:
        return StorageError(
            f"Cannot open study database {display}: {reason} (tried {attempts} times); another "
            "process holds it locked. Try again when it is done."
        )
    if sqlite:
        return StorageError(
            f"Cannot open study database {display}: {reason}. The file is corrupt or not a "
            "SQLite database; move it away or choose another --storage path."
        )
    if transient:
        return StorageError(
            f"Cannot reach study database {display} after {attempts} attempts: {reason}. "
            "Check that the server runs and that host and port are right."
        )
    return StorageError(
        f"Cannot open study database {display}: {reason}. Check the user name, password, "
        "database name and options (not retried: trying again would not help)."
    )
