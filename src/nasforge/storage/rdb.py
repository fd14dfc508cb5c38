"""Studies in a relational database through SQLAlchemy: SQLite now, PostgreSQL through the same
code (``postgresql+psycopg://user@host/db``).

SQLite files are opened in WAL mode with ``synchronous=NORMAL``: a committed trial survives the
process being killed at any moment; writes take an immediate lock so that concurrent writers
wait (``busy_timeout``) instead of failing with "database is locked". SQLite suits several
processes of one machine; PostgreSQL (``pip install 'nasforge[postgres]'``) many machines.

A study's lock is its row in ``nasforge_studies`` (``SELECT ... FOR UPDATE`` in PostgreSQL;
SQLite's write lock serialises every write anyway). Connections that fail are retried with
exponential back-off before a :class:`~nasforge.errors.StorageError` names the database (its
URL with the password hidden: credentials are never printed nor logged).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import (
    MissingDependencyError,
    StorageError,
    StudyConflictError,
    StudyDeletedError,
)
from nasforge.storage.base import SCHEMA_VERSION, Storage, StudyRecord
from nasforge.trial import Trial, TrialState

__all__ = ["RDBStorage"]

logger = logging.getLogger(__name__)

_SUPPORTED = ("sqlite", "postgresql")
_EXAMPLES = (
    "'sqlite:///study.db' (a file), 'sqlite:////abs/path/study.db' or "
    "'postgresql+psycopg://user@host/db'"
)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True, separators=(",", ":"))


class RDBStorage(Storage):
    """A SQLAlchemy-backed storage.

    Args:
        url: A SQLAlchemy URL. SQLite: ``sqlite:///relative.db`` or ``sqlite:////abs.db``.
        create: Create the SQLite file if it does not exist; if false, a missing file is an
            error (for read-only uses such as ``load_study``).
        retries: How many times a database that cannot be reached is tried again.
        backoff: Seconds before the first retry; doubled after each (at most 30 s).

    Raises:
        StorageError: The URL is malformed or names an unsupported database, the database
            cannot be reached after the retries, the file is not a database or is corrupt,
            the database holds other tables than nasforge's, or was written by a newer
            nasforge.
        MissingDependencyError: The PostgreSQL driver (psycopg 3) is not installed.
    """

    persistent = True

    def __init__(
        self, url: str, *, create: bool = True, retries: int = 5, backoff: float = 0.5
    ) -> None:
        import sqlalchemy as sa
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self._local = threading.local()
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StorageError(
                f"Malformed storage URL {url!r}; write it like {_EXAMPLES}."
            ) from None
        backend = parsed.get_backend_name()
        if backend not in _SUPPORTED:
            raise StorageError(
                f"Unsupported storage URL {self._safe_url(parsed)!r} (database {backend!r}); "
                f"nasforge stores studies in SQLite or PostgreSQL, e.g. {_EXAMPLES}."
            )
        self._sqlite = backend == "sqlite"
        if self._sqlite:
            path = parsed.database
            if not path or path == ":memory:":
                raise StorageError(
                    f"Storage URL {url!r} names no file; give a path like 'sqlite:///study.db' "
                    "(or leave the storage out to keep the study in memory)."
                )
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise StorageError(
                    f"Cannot create study database {path!r}: folder {folder!r} does not exist."
                )
            if not create and not os.path.exists(path):
                raise StorageError(
                    f"No study database at {path!r}; check the storage path (running a search "
                    "with this storage creates it)."
                )
            if os.path.isdir(path):
                raise StorageError(
                    f"Storage path {path!r} is a folder; name a file in it, e.g. "
                    f"'sqlite:///{path.rstrip('/')}/study.db'."
                )
            self._engine = sa.create_engine(parsed, connect_args={"timeout": 60})
            sa.event.listen(self._engine, "connect", _sqlite_on_connect)
            sa.event.listen(self._engine, "begin", _sqlite_on_begin)
        else:
            if parsed.drivername in ("postgresql", "postgres"):
                parsed = parsed.set(drivername="postgresql+psycopg")
            try:
                # no pool_pre_ping: a dead pooled connection fails the first statement of a
                # transaction, which _retrying repeats on a fresh connection
                self._engine = sa.create_engine(parsed, connect_args={"connect_timeout": 10})
            except ImportError as exc:
                raise MissingDependencyError(
                    f"PostgreSQL storage {self._safe_url(parsed)!r} needs the psycopg driver "
                    f"({exc}); install it with: pip install 'nasforge[postgres]'. Write URLs "
                    "as 'postgresql+psycopg://user:password@host:5432/database'."
                ) from None
        self._display = self._safe_url(parsed)
        self.url = self._display
        self._tables = _tables(sa)
        self._space_of: dict[int, str] = {}
        self._check_or_create()

    @staticmethod
    def _safe_url(parsed: Any) -> str:
        return str(parsed.render_as_string(hide_password=True))

    def _retrying(self, fn: Callable[[], Any], what: str) -> Any:
        """``fn()``, tried again with exponential back-off while the database is unreachable
        (a connection refused or dropped, a deadlock); other errors pass through."""
        from sqlalchemy.exc import DBAPIError, OperationalError

        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except (OperationalError, DBAPIError) as exc:
                if not _transient(exc, self._sqlite) or attempt == self.retries:
                    raise
                logger.warning(
                    "%s %s failed (%s); retrying in %.1f s (%d/%d)",
                    what,
                    self._display,
                    _reason(exc).splitlines()[0],
                    delay,
                    attempt + 1,
                    self.retries,
                )
                time.sleep(delay)
                delay = min(2 * delay, 30.0)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- schema -----------------------------------------------------------------------------
    def _check_or_create(self) -> None:
        from sqlalchemy.exc import DatabaseError, OperationalError

        try:
            self._retrying(self._check_or_create_once, "connecting to")
        except (DatabaseError, OperationalError) as exc:
            reason = _reason(exc)
            if self._sqlite:
                raise StorageError(
                    f"Cannot open study database {self._display}: {reason}. The file is "
                    "corrupt or not a SQLite database; move it away or choose another "
                    "--storage path."
                ) from None
            tries = f" after {self.retries + 1} attempts" if _transient(exc, False) else ""
            raise StorageError(
                f"Cannot reach study database {self._display}{tries}: {reason}. Check that the "
                "server runs and that host, port, user, password and database name are right."
            ) from None

    def _check_or_create_once(self) -> None:
        import sqlalchemy as sa

        meta, schema = self._tables["meta"], self._tables["schema"]
        with self._engine.begin() as conn:
            if not self._sqlite:  # workers starting together: one creates or migrates
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7306571)"))
            existing = set(sa.inspect(conn).get_table_names())
            ours = {t.name for t in meta.sorted_tables}
            if not existing:
                meta.create_all(conn)
                conn.execute(
                    schema.insert().values(
                        id=1, schema_version=SCHEMA_VERSION, library_version=_version()
                    )
                )
                return
            if schema.name not in existing:
                raise StorageError(
                    f"{self._display} is a database but not a nasforge study database (it "
                    f"has tables {', '.join(sorted(existing))}); use another file or database."
                )
            row = conn.execute(sa.select(schema.c.schema_version)).first()
            version = None if row is None else int(row[0])
            if version is None:
                raise StorageError(
                    f"{self._display} has no nasforge schema version; it is damaged. Move "
                    "it away and start a new study database."
                )
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self._display} was written by a newer nasforge (schema {version}; "
                    f"this nasforge reads schema {SCHEMA_VERSION}). Upgrade nasforge: "
                    "pip install -U nasforge."
                )
            if version < SCHEMA_VERSION:
                self._migrate(conn, version)
            if not ours <= existing:
                meta.create_all(conn)

    def _migrate(self, conn: Any, version: int) -> None:
        """Bring a database of an older schema up to date, in the caller's transaction."""
        import sqlalchemy as sa

        if version < 2:
            # schema 1 was written by one process at a time: each trial was proposed after
            # every earlier trial had finished, and trials finished in the order of numbers
            for column in ("asked_after", "finish_seq"):
                conn.execute(sa.text(f"ALTER TABLE nasforge_trials ADD COLUMN {column} INTEGER"))
            conn.execute(sa.text("UPDATE nasforge_trials SET asked_after = number"))
            conn.execute(
                sa.text(
                    "UPDATE nasforge_trials SET finish_seq = number + 1 WHERE state <> 'RUNNING'"
                )
            )
            self._tables["finish_index"].create(conn, checkfirst=True)
        schema = self._tables["schema"]
        conn.execute(
            schema.update().values(schema_version=SCHEMA_VERSION, library_version=_version())
        )
        logger.info("upgraded %s from schema %d to %d", self._display, version, SCHEMA_VERSION)

    def _run(self, fn: Any) -> Any:
        """``fn(connection)`` in a transaction: the study lock's when one is held, else a new
        one (retried while the database is unreachable)."""
        from sqlalchemy.exc import DatabaseError, OperationalError

        held = getattr(self._local, "conn", None)
        if held is not None:
            return fn(held)

        def once() -> Any:
            with self._engine.begin() as conn:
                return fn(conn)

        try:
            return self._retrying(once, "writing to")
        except (DatabaseError, OperationalError) as exc:
            if getattr(exc, "orig", None) is not None and "UNIQUE" in str(exc.orig).upper():
                raise
            raise StorageError(f"Study database {self._display} failed: {_reason(exc)}.") from None

    @contextlib.contextmanager
    def locked(self, study_id: int, *, durable: bool = True) -> Iterator[None]:
        """One transaction holding the study's row lock; nested calls join it.

        ``durable=False`` (PostgreSQL): the commit does not wait for the disk
        (``synchronous_commit=off``), which shortens the time the lock is held; finishing a
        trial inside switches it back on."""
        import sqlalchemy as sa
        from sqlalchemy.exc import DatabaseError, OperationalError

        if getattr(self._local, "conn", None) is not None:
            yield
            return
        studies = self._tables["studies"]
        query = sa.select(studies.c.study_id).where(studies.c.study_id == study_id)
        if not self._sqlite:
            query = query.with_for_update()

        def begin() -> Any:
            conn = self._engine.connect()
            try:
                transaction = conn.begin()
                if not durable and not self._sqlite:
                    conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
                    self._local.relaxed = True
                row = conn.execute(query).first()
            except BaseException:
                conn.close()
                raise
            return conn, transaction, row

        try:
            conn, transaction, row = self._retrying(begin, "locking a study in")
        except (DatabaseError, OperationalError) as exc:
            raise StorageError(f"Study database {self._display} failed: {_reason(exc)}.") from None
        try:
            if row is None:
                raise StudyDeletedError(
                    f"Study {study_id} no longer exists in {self._display}: it was deleted "
                    "while this worker ran."
                )
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None
                self._local.relaxed = False
            transaction.commit()
        except (DatabaseError, OperationalError) as exc:
            transaction.rollback()
            raise StorageError(f"Study database {self._display} failed: {_reason(exc)}.") from None
        except BaseException:
            transaction.rollback()
            raise
        finally:
            conn.close()

    # -- studies ----------------------------------------------------------------------------
    def create_study(self, record: StudyRecord) -> StudyRecord:
        import sqlalchemy as sa
        from sqlalchemy.exc import IntegrityError

        studies = self._tables["studies"]
        now = _utcnow()

        def insert(conn: Any) -> int:
            taken = conn.execute(
                sa.select(studies.c.study_id).where(studies.c.name == record.name)
            ).first()
            if taken is not None:
                raise StudyConflictError(
                    f"A study named {record.name!r} already exists in {self._display}."
                )
            result = conn.execute(
                studies.insert().values(
                    name=record.name,
                    space=record.space,
                    space_params=_dumps(record.space_params),
                    strategy=record.strategy,
                    strategy_params=_dumps(record.strategy_params),
                    seed=record.seed,
                    objectives=_dumps(list(record.objectives)),
                    evaluator=None if record.evaluator is None else _dumps(record.evaluator),
                    options=_dumps(record.options),
                    created_at=now,
                )
            )
            return int(result.inserted_primary_key[0])

        try:
            study_id = self._run(insert)
        except IntegrityError:
            raise StudyConflictError(
                f"A study named {record.name!r} already exists in {self._display}."
            ) from None
        return dataclasses.replace(record, study_id=study_id, created_at=now)

    def _record(self, row: Any) -> StudyRecord:
        return StudyRecord(
            name=row.name,
            space=row.space,
            strategy=row.strategy,
            seed=int(row.seed),
            objectives=tuple(json.loads(row.objectives)),
            strategy_params=json.loads(row.strategy_params),
            space_params=json.loads(row.space_params),
            evaluator=None if row.evaluator is None else json.loads(row.evaluator),
            options=json.loads(row.options),
            study_id=int(row.study_id),
            created_at=row.created_at,
        )

    def get_study(self, name: str) -> StudyRecord | None:
        import sqlalchemy as sa

        studies = self._tables["studies"]
        row = self._run(
            lambda c: c.execute(sa.select(studies).where(studies.c.name == name)).first()
        )
        return None if row is None else self._record(row)

    def set_evaluator(self, study_id: int, evaluator: dict[str, Any]) -> None:
        studies = self._tables["studies"]
        self._run(
            lambda c: c.execute(
                studies.update()
                .where(studies.c.study_id == study_id)
                .values(evaluator=_dumps(evaluator))
            )
        )

    def update_options(self, study_id: int, options: dict[str, Any]) -> None:
        import sqlalchemy as sa

        studies = self._tables["studies"]

        def update(conn: Any) -> None:
            row = conn.execute(
                sa.select(studies.c.options).where(studies.c.study_id == study_id)
            ).first()
            if row is None:
                raise StudyDeletedError(f"Study {study_id} no longer exists in {self._display}.")
            merged = {**json.loads(row[0]), **options}
            conn.execute(
                studies.update()
                .where(studies.c.study_id == study_id)
                .values(options=_dumps(merged))
            )

        self._run(update)

    def list_studies(self) -> list[StudyRecord]:
        import sqlalchemy as sa

        studies = self._tables["studies"]
        rows = self._run(lambda c: c.execute(sa.select(studies).order_by(studies.c.study_id)).all())
        return [self._record(r) for r in rows]

    def delete_study(self, name: str) -> None:
        import sqlalchemy as sa

        studies, trials = self._tables["studies"], self._tables["trials"]

        def delete(conn: Any) -> None:
            row = conn.execute(sa.select(studies.c.study_id).where(studies.c.name == name)).first()
            if row is None:
                raise StorageError(f"No study named {name!r} in {self._display}.")
            conn.execute(trials.delete().where(trials.c.study_id == row[0]))
            conn.execute(studies.delete().where(studies.c.study_id == row[0]))

        self._run(delete)

    def study_counts(self) -> dict[int, dict[str, int]]:
        """Number of trials per state for every study (for listings)."""
        import sqlalchemy as sa

        trials = self._tables["trials"]
        rows = self._run(
            lambda c: c.execute(
                sa.select(trials.c.study_id, trials.c.state, sa.func.count()).group_by(
                    trials.c.study_id, trials.c.state
                )
            ).all()
        )
        out: dict[int, dict[str, int]] = {}
        for study_id, state, count in rows:
            out.setdefault(int(study_id), {})[state] = int(count)
        return out

    # -- trials -----------------------------------------------------------------------------
    def _space(self, study_id: int) -> str:
        import sqlalchemy as sa

        space = self._space_of.get(study_id)
        if space is None:
            studies = self._tables["studies"]
            row = self._run(
                lambda c: c.execute(
                    sa.select(studies.c.space).where(studies.c.study_id == study_id)
                ).first()
            )
            if row is None:
                raise StudyDeletedError(
                    f"Study {study_id} no longer exists in {self._display}; it was deleted."
                )
            space = self._space_of[study_id] = str(row[0])
        return space

    def _last_finish(self, conn: Any, study_id: int) -> int:
        import sqlalchemy as sa

        trials = self._tables["trials"]
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(trials.c.finish_seq), 0)).where(
                    trials.c.study_id == study_id
                )
            ).scalar_one()
        )

    def _durable(self, conn: Any) -> None:
        """Make the enclosing transaction's commit wait for the disk (a finished trial)."""
        import sqlalchemy as sa

        if getattr(self._local, "relaxed", False):
            conn.execute(sa.text("SET LOCAL synchronous_commit = on"))
            self._local.relaxed = False

    def add_trial(self, study_id: int, trial: Trial) -> int:
        import sqlalchemy as sa

        trials = self._tables["trials"]
        now = _utcnow()

        def insert(conn: Any) -> int:
            number, last = conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.max(trials.c.number), -1) + 1,
                    sa.func.coalesce(sa.func.max(trials.c.finish_seq), 0),
                ).where(trials.c.study_id == study_id)
            ).one()
            number, last = int(number), int(last)
            finished = trial.state is not TrialState.RUNNING
            if finished:
                self._durable(conn)
            conn.execute(
                trials.insert().values(
                    study_id=study_id,
                    number=number,
                    state=trial.state.value,
                    arch=trial.arch.text,
                    choices=_dumps(list(trial.arch.choices)),
                    fidelity=None if trial.fidelity is None else _dumps(dict(trial.fidelity)),
                    metrics=_dumps(trial.metrics),
                    cost=_finite(trial.cost),
                    seconds=_finite(trial.seconds),
                    fail_reason=trial.fail_reason,
                    retryable=trial.retryable,
                    retry_of=trial.retry_of,
                    duplicate_of=trial.duplicate_of,
                    worker=trial.worker,
                    started_at=_naive(trial.started_at) or now,
                    finished_at=_naive(trial.finished_at) if finished else None,
                    heartbeat_at=now,
                    asked_after=last if trial.asked_after is None else trial.asked_after,
                    finish_seq=last + 1 if finished else None,
                )
            )
            return int(number)

        self._space(study_id)
        with self.locked(study_id):
            return int(self._run(insert))

    def finish_trial(self, study_id: int, trial: Trial) -> bool:
        import sqlalchemy as sa

        trials = self._tables["trials"]
        values = {
            "state": trial.state.value,
            "metrics": _dumps(trial.metrics),
            "cost": _finite(trial.cost),
            "seconds": _finite(trial.seconds),
            "fail_reason": trial.fail_reason,
            "retryable": trial.retryable,
            "finished_at": _naive(trial.finished_at) or _utcnow(),
        }

        def update(conn: Any) -> bool:
            self._durable(conn)
            seq = self._last_finish(conn, study_id) + 1
            result = conn.execute(
                trials.update()
                .where(
                    trials.c.study_id == study_id,
                    trials.c.number == trial.number,
                    trials.c.state == TrialState.RUNNING.value,
                )
                .values(finish_seq=seq, **values)
            )
            if result.rowcount == 0:
                exists = conn.execute(
                    sa.select(trials.c.state).where(
                        trials.c.study_id == study_id, trials.c.number == trial.number
                    )
                ).first()
                if exists is None:
                    raise StorageError(
                        f"Trial {trial.number} of study {study_id} is not in {self._display}."
                    )
                return False
            return True

        with self.locked(study_id):
            return bool(self._run(update))

    def heartbeat(self, study_id: int, number: int) -> None:
        trials = self._tables["trials"]
        self._run(
            lambda c: c.execute(
                trials.update()
                .where(trials.c.study_id == study_id, trials.c.number == number)
                .values(heartbeat_at=_utcnow())
            )
        )

    def get_trials(
        self, study_id: int, *, since: int = 0, finished_since: int | None = None
    ) -> list[Trial]:
        import sqlalchemy as sa

        trials = self._tables["trials"]
        space = self._space(study_id)
        where = trials.c.number >= since
        if finished_since is not None and since > 0:
            where = sa.or_(
                where,
                trials.c.finish_seq > finished_since,
                trials.c.state == TrialState.RUNNING.value,
            )
        rows = self._run(
            lambda c: c.execute(
                sa.select(trials)
                .where(trials.c.study_id == study_id, where)
                .order_by(trials.c.number)
            ).all()
        )
        out = []
        for r in rows:
            out.append(
                Trial(
                    number=int(r.number),
                    arch=Architecture(space, tuple(json.loads(r.choices)), r.arch),
                    state=TrialState(r.state),
                    fidelity=None if r.fidelity is None else json.loads(r.fidelity),
                    metrics=json.loads(r.metrics),
                    cost=float(r.cost),
                    seconds=float(r.seconds),
                    fail_reason=r.fail_reason,
                    retryable=bool(r.retryable),
                    retry_of=None if r.retry_of is None else int(r.retry_of),
                    duplicate_of=None if r.duplicate_of is None else int(r.duplicate_of),
                    worker=r.worker,
                    started_at=_aware(r.started_at),
                    finished_at=_aware(r.finished_at),
                    asked_after=None if r.asked_after is None else int(r.asked_after),
                    finish_seq=None if r.finish_seq is None else int(r.finish_seq),
                    heartbeat_at=_aware(r.heartbeat_at),
                )
            )
        return out

    def close(self) -> None:
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"RDBStorage({self._display!r})"


def _reason(exc: BaseException) -> str:
    """The database's own message of an error (never the URL: it may hold a password)."""
    return str(getattr(exc, "orig", None) or exc).strip()


def _transient(exc: BaseException, sqlite: bool) -> bool:
    """Whether an error may go away when tried again (unreachable server, dropped
    connection, deadlock, serialisation failure, locked SQLite file)."""
    if getattr(exc, "connection_invalidated", False):
        return True
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is not None:
        # 08: connection exceptions, 57P0x: server shutting down, 40001/40P01: retry
        return str(code).startswith(("08", "57P0", "40001", "40P01"))
    text = str(orig or exc).lower()
    if sqlite:
        return "database is locked" in text
    return any(
        key in text
        for key in ("connection refused", "could not connect", "connection failed", "timeout")
    )


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def _naive(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=timezone.utc)


def _version() -> str:
    from nasforge import __version__

    return __version__


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" hook issue BEGIN IMMEDIATE
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _tables(sa: Any) -> dict[str, Any]:
    meta = sa.MetaData()
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
        sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("nasforge_studies.study_id", ondelete="CASCADE"),
            nullable=False,
        ),
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
    return {
        "meta": meta,
        "schema": schema,
        "studies": studies,
        "trials": trials,
        "finish_index": finish_index,
    }
