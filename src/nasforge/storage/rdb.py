"""Studies in a relational database through SQLAlchemy: SQLite or PostgreSQL
(``postgresql+psycopg://user@host/db``, ``pip install 'nasforge[postgres]'``).

SQLite files are opened in WAL mode with ``synchronous=NORMAL``: a committed trial survives the
process being killed at any moment; writes take an immediate lock so that concurrent writers
wait (``busy_timeout``). An existing file is first checked without writing (``_sqlite.py``):
another application's file is refused and left byte-identical. With ``read_only=True``
nothing is ever written: SQLite is opened ``mode=ro`` (no WAL switch, no tables created, no
migration), PostgreSQL in read-only transactions; a missing or empty database is an error.

A study's lock is its row in ``nasforge_studies`` (``SELECT ... FOR UPDATE`` in PostgreSQL;
SQLite's write lock serialises every write anyway). An unreachable server is retried with
exponential back-off; a refused login is reported at once. Messages name the database by
its URL with the password hidden (``_url.py``). Damaged rows are refused with the study, the
trial and the column (``_rows.py``), never skipped: a resume must not lose a finished trial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from nasforge.errors import (
    MissingDependencyError,
    StorageError,
    StudyConflictError,
    StudyDeletedError,
)
from nasforge.storage import _rows, _schema, _sqlite
from nasforge.storage._rdb_reports import RDBReports
from nasforge.storage._url import parse_url, scrub
from nasforge.storage.base import Storage, StudyRecord, check_record
from nasforge.trial import Trial, TrialState

__all__ = ["RDBStorage"]

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class RDBStorage(RDBReports, Storage):
    """A SQLAlchemy-backed storage.

    Args:
        url: A SQLAlchemy URL. SQLite: ``sqlite:///relative.db`` or ``sqlite:////abs.db``.
        read_only: Never write: open SQLite read-only and PostgreSQL in read-only
            transactions; the database must already hold nasforge's tables at the current
            schema. Every method that writes raises :class:`~nasforge.errors.StorageError`.
        create: Create the database's tables if there are none; if false, a missing or
            empty SQLite file, or a database without tables, is an error (for commands that
            resume, such as ``load_study``).
        retries: How many times a database that cannot be reached is tried again.
        backoff: Seconds before the first retry; doubled after each (at most 30 s).

    Raises:
        StorageError: The URL is malformed or names an unsupported database or driver, the
            database cannot be reached after the retries or refuses the login, the file is
            not a database or is corrupt, the database holds other tables than nasforge's,
            or was written by a newer nasforge.
        MissingDependencyError: The PostgreSQL driver (psycopg 3) is not installed.
    """

    persistent = True

    # ``read_only`` is not keyword-only: tests replace ``__kwdefaults__`` of ``__init__``
    def __init__(
        self,
        url: str,
        read_only: bool = False,
        *,
        create: bool = True,
        retries: int = 5,
        backoff: float = 0.5,
    ) -> None:
        import sqlalchemy as sa

        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.read_only = bool(read_only)
        self._create = bool(create) and not self.read_only
        self._local = threading.local()
        checked = parse_url(url)
        parsed = checked.url
        self._secrets = checked.secrets
        self.url = self._display = checked.display
        self._source = url  # reopened by evaluations in other processes (their reports)
        self._sqlite = checked.backend == "sqlite"
        if self._sqlite:
            path = parsed.database
            if not path or path == ":memory:":
                raise StorageError(
                    f"Storage URL {self._display!r} names no file; give a path like "
                    "'sqlite:///study.db' (or leave the storage out to keep the study in memory)."
                )
            _sqlite.inspect_file(path, self._display, must_exist=not self._create)
            if self.read_only:
                engine = sa.create_engine(parsed, creator=_sqlite.read_only_creator(path))
            else:
                engine = sa.create_engine(parsed, connect_args={"timeout": 60})
            on_connect, on_begin = _sqlite.connect_hooks(self.read_only)
            sa.event.listen(engine, "connect", on_connect)
            sa.event.listen(engine, "begin", on_begin)
        else:
            if parsed.drivername in ("postgresql", "postgres"):
                parsed = parsed.set(drivername="postgresql+psycopg")
            try:
                # no pool_pre_ping: a dead pooled connection fails the first statement of a
                # transaction, which _retrying repeats on a fresh connection
                engine = sa.create_engine(parsed, connect_args={"connect_timeout": 10})
            except ImportError as exc:
                raise MissingDependencyError(
                    f"PostgreSQL storage {self._display!r} needs the {parsed.get_driver_name()} "
                    f"driver ({exc}); install it with: pip install 'nasforge[postgres]'. Write "
                    "URLs as 'postgresql+psycopg://user:password@host:5432/database'."
                ) from None
            except sa.exc.SQLAlchemyError as exc:
                raise StorageError(f"Cannot use {self._display}: {self._reason(exc)}.") from None
            if self.read_only:
                sa.event.listen(engine, "connect", _schema.postgres_read_only)
        self._engine = engine
        self._tables = _schema.tables(sa)
        self._study_of: dict[int, tuple[str, str]] = {}
        self._check_or_create()

    def _reason(self, exc: BaseException) -> str:
        """The database's own message of an error, on one line, without secrets."""
        text = str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__
        text = " ".join(scrub(text, self._secrets).split())
        return text if len(text) <= 300 else text[:297] + "..."

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise StorageError(
                f"Cannot {what}: {self._display} was opened read-only; open it without "
                "read_only=True to change it."
            )

    def _retrying(self, fn: Callable[[], Any], what: str) -> Any:
        """``fn()``, tried again with exponential back-off while the database is unreachable
        (a connection refused or dropped, a deadlock); other errors pass through."""
        from sqlalchemy.exc import DBAPIError, OperationalError

        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except (OperationalError, DBAPIError) as exc:
                if not _schema.transient(exc, self._sqlite) or attempt == self.retries:
                    raise
                logger.warning(
                    "%s %s failed (%s); retrying in %.1f s (%d/%d)",
                    what,
                    self._display,
                    self._reason(exc),
                    delay,
                    attempt + 1,
                    self.retries,
                )
                time.sleep(delay)
                delay = min(2 * delay, 30.0)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- schema -----------------------------------------------------------------------------
    def _check_or_create(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            self._retrying(self._check_or_create_once, "connecting to")
        except (SQLAlchemyError, ValueError, TypeError, OSError) as exc:
            self._engine.dispose()
            raise _schema.open_error(
                self._reason(exc),
                self._display,
                sqlite=self._sqlite,
                transient=_schema.transient(exc, self._sqlite),
                attempts=self.retries + 1,
            ) from None
        except StorageError:
            self._engine.dispose()
            raise

    def _check_or_create_once(self) -> None:
        with self._engine.begin() as conn:
            _schema.check_or_create(
                conn,
                self._tables,
                display=self._display,
                sqlite=self._sqlite,
                read_only=self.read_only,
                create=self._create,
            )

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
            return self._retrying(once, "using")
        except UnicodeDecodeError:  # SQLite's message quotes a damaged schema
            raise StorageError(f"{self._display} is damaged: its schema is unreadable.") from None
        except (DatabaseError, OperationalError) as exc:
            if getattr(exc, "orig", None) is not None and "UNIQUE" in str(exc.orig).upper():
                raise
            raise StorageError(
                f"Study database {self._display} failed: {self._reason(exc)}."
            ) from None

    @contextlib.contextmanager
    def locked(self, study_id: int, *, durable: bool = True) -> Iterator[None]:
        """One transaction holding the study's row lock; nested calls join it.

        ``durable=False`` (PostgreSQL): the commit does not wait for the disk
        (``synchronous_commit=off``), which shortens the time the lock is held; finishing a
        trial inside switches it back on. A read-only storage holds no lock (it cannot
        write) and only checks that the study exists."""
        import sqlalchemy as sa
        from sqlalchemy.exc import DatabaseError, OperationalError

        if getattr(self._local, "conn", None) is not None:
            yield
            return
        if self.read_only:
            self._study(study_id)
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
            raise StorageError(
                f"Study database {self._display} failed: {self._reason(exc)}."
            ) from None
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
            raise StorageError(
                f"Study database {self._display} failed: {self._reason(exc)}."
            ) from None
        except BaseException:
            transaction.rollback()
            raise
        finally:
            conn.close()

    # -- studies ----------------------------------------------------------------------------
    def create_study(self, record: StudyRecord) -> StudyRecord:
        import sqlalchemy as sa
        from sqlalchemy.exc import IntegrityError

        check_record(record)
        self._writable(f"create study {record.name!r}")
        studies = self._tables["studies"]
        now = _utcnow()
        dumps = _rows.dumps

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
                    space_params=dumps(record.space_params),
                    strategy=record.strategy,
                    strategy_params=dumps(record.strategy_params),
                    seed=record.seed,
                    objectives=dumps(list(record.objectives)),
                    evaluator=None if record.evaluator is None else dumps(record.evaluator),
                    options=dumps(record.options),
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

    def _select_studies(self, where: Any = None) -> list[StudyRecord]:
        import sqlalchemy as sa

        studies = self._tables["studies"]
        query = _rows.raw_select(sa, studies).order_by(studies.c.study_id)
        if where is not None:
            query = query.where(where)
        rows = self._run(lambda c: c.execute(query).all())
        return [_rows.decode_study(r, display=self._display) for r in rows]

    def get_study(self, name: str) -> StudyRecord | None:
        if not _schema.storable(name):
            return None  # no such name can have been stored
        found = self._select_studies(self._tables["studies"].c.name == name)
        return found[0] if found else None

    def set_evaluator(self, study_id: int, evaluator: dict[str, Any]) -> None:
        self._writable("record the evaluator")
        studies = self._tables["studies"]
        self._run(
            lambda c: c.execute(
                studies.update()
                .where(studies.c.study_id == study_id)
                .values(evaluator=_rows.dumps(evaluator))
            )
        )

    def update_options(self, study_id: int, options: dict[str, Any]) -> None:
        import sqlalchemy as sa

        self._writable("update the study's options")
        studies = self._tables["studies"]

        def update(conn: Any) -> None:
            row = conn.execute(
                sa.select(studies.c.options).where(studies.c.study_id == study_id)
            ).first()
            if row is None:
                raise StudyDeletedError(f"Study {study_id} no longer exists in {self._display}.")
            stored = _rows.options_of(row[0], study_id=study_id, display=self._display)
            conn.execute(
                studies.update()
                .where(studies.c.study_id == study_id)
                .values(options=_rows.dumps({**stored, **options}))
            )

        self._run(update)

    def list_studies(self) -> list[StudyRecord]:
        return self._select_studies()

    def delete_study(self, name: str) -> None:
        import sqlalchemy as sa

        self._writable(f"delete study {name!r}")
        studies = self._tables["studies"]

        def delete(conn: Any) -> None:
            row = None
            if _schema.storable(name):
                row = conn.execute(
                    sa.select(studies.c.study_id).where(studies.c.name == name)
                ).first()
            if row is None:
                raise StorageError(f"No study named {name!r} in {self._display}.")
            for table in (self._tables[t] for t in ("reports", "trials", "studies")):
                conn.execute(table.delete().where(table.c.study_id == row[0]))

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
        return _rows.counts_of(rows, display=self._display)

    # -- trials -----------------------------------------------------------------------------
    def _study(self, study_id: int) -> tuple[str, str]:
        """The name and the space of a study (cached)."""
        import sqlalchemy as sa

        known = self._study_of.get(study_id)
        if known is None:
            studies = self._tables["studies"]
            row = self._run(
                lambda c: c.execute(
                    sa.select(studies.c.name, studies.c.space).where(studies.c.study_id == study_id)
                ).first()
            )
            if row is None:
                raise StudyDeletedError(
                    f"Study {study_id} no longer exists in {self._display}; it was deleted."
                )
            known = self._study_of[study_id] = (str(row[0]), str(row[1]))
        return known

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

        self._writable("add a trial")
        trials = self._tables["trials"]
        now = _utcnow()
        dumps, finite, naive = _rows.dumps, _rows.finite, _rows.naive

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
                    choices=dumps(list(trial.arch.choices)),
                    fidelity=None if trial.fidelity is None else dumps(dict(trial.fidelity)),
                    metrics=dumps(trial.metrics),
                    cost=finite(trial.cost),
                    seconds=finite(trial.seconds),
                    fail_reason=trial.fail_reason,
                    retryable=trial.retryable,
                    retry_of=trial.retry_of,
                    duplicate_of=trial.duplicate_of,
                    worker=trial.worker,
                    started_at=naive(trial.started_at) or now,
                    finished_at=naive(trial.finished_at) if finished else None,
                    heartbeat_at=now,
                    asked_after=last if trial.asked_after is None else trial.asked_after,
                    finish_seq=last + 1 if finished else None,
                )
            )
            return int(number)

        self._study(study_id)
        with self.locked(study_id):
            return int(self._run(insert))

    def finish_trial(self, study_id: int, trial: Trial) -> bool:
        import sqlalchemy as sa

        self._writable("finish a trial")
        trials = self._tables["trials"]
        values = {
            "state": trial.state.value,
            "metrics": _rows.dumps(trial.metrics),
            "cost": _rows.finite(trial.cost),
            "seconds": _rows.finite(trial.seconds),
            "fail_reason": trial.fail_reason,
            "retryable": trial.retryable,
            "finished_at": _rows.naive(trial.finished_at) or _utcnow(),
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
        self._writable("record a heartbeat")
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
        """See :meth:`Storage.get_trials`.

        Raises:
            StorageError: A stored trial is damaged (malformed JSON, an unknown state, a
                cost that is not a finite number, a NULL where a value is due...). The
                message names the study, the trial number and the column and gives the SQL
                that repairs or deletes the row. Damaged trials are refused, never skipped:
                a resume that skipped one would silently lose a finished trial.
        """
        import sqlalchemy as sa

        trials = self._tables["trials"]
        name, space = self._study(study_id)
        where = trials.c.number >= since
        if finished_since is not None and since > 0:
            where = sa.or_(
                where,
                trials.c.finish_seq > finished_since,
                trials.c.state == TrialState.RUNNING.value,
            )
        query = (
            _rows.raw_select(sa, trials)
            .where(trials.c.study_id == study_id, where)
            .order_by(trials.c.number)
        )
        rows = self._run(lambda c: c.execute(query).all())
        return [
            _rows.decode_trial(r, space=space, study=name, study_id=study_id, display=self._display)
            for r in rows
        ]

    def close(self) -> None:
        self._engine.dispose()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"RDBStorage({self._display!r}{mode})"
