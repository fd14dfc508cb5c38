"""Studies in a relational database through SQLAlchemy: SQLite now, PostgreSQL through the same
code (``postgresql+psycopg://user@host/db``).

SQLite files are opened in WAL mode with ``synchronous=NORMAL``: a committed trial survives the
process being killed at any moment; writes take an immediate lock so that concurrent writers
wait (``busy_timeout``) instead of failing with "database is locked".
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from datetime import datetime, timezone
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import StorageError, StudyConflictError
from nasforge.storage.base import SCHEMA_VERSION, Storage, StudyRecord
from nasforge.trial import Trial, TrialState

__all__ = ["RDBStorage"]

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

    Raises:
        StorageError: The URL is malformed or names an unsupported database, the file is not
            a database or is corrupt, the database holds other tables than nasforge's, or was
            written by a newer nasforge.
    """

    persistent = True

    def __init__(self, url: str, *, create: bool = True) -> None:
        import sqlalchemy as sa
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        self.url = url
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
            self._engine = sa.create_engine(parsed, pool_pre_ping=True)
        self._display = self._safe_url(parsed)
        self._tables = _tables(sa)
        self._space_of: dict[int, str] = {}
        self._check_or_create()

    @staticmethod
    def _safe_url(parsed: Any) -> str:
        return str(parsed.render_as_string(hide_password=True))

    # -- schema -----------------------------------------------------------------------------
    def _check_or_create(self) -> None:
        import sqlalchemy as sa
        from sqlalchemy.exc import DatabaseError, OperationalError

        meta, schema = self._tables["meta"], self._tables["schema"]
        try:
            with self._engine.begin() as conn:
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
                if not ours <= existing:
                    meta.create_all(conn)
        except (DatabaseError, OperationalError) as exc:
            reason = str(getattr(exc, "orig", exc)).strip()
            raise StorageError(
                f"Cannot open study database {self._display}: {reason}. The file is corrupt or "
                "not a SQLite database; move it away or choose another --storage path."
                if self._sqlite
                else f"Cannot open study database {self._display}: {reason}."
            ) from None

    def _run(self, fn: Any) -> Any:
        from sqlalchemy.exc import DatabaseError, OperationalError

        try:
            with self._engine.begin() as conn:
                return fn(conn)
        except (DatabaseError, OperationalError) as exc:
            if getattr(exc, "orig", None) is not None and "UNIQUE" in str(exc.orig).upper():
                raise
            reason = str(getattr(exc, "orig", exc)).strip()
            raise StorageError(f"Study database {self._display} failed: {reason}.") from None

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
                raise StorageError(
                    f"Study {study_id} no longer exists in {self._display}; it was deleted."
                )
            space = self._space_of[study_id] = str(row[0])
        return space

    def add_trial(self, study_id: int, trial: Trial) -> int:
        import sqlalchemy as sa
        from sqlalchemy.exc import IntegrityError

        trials = self._tables["trials"]
        now = _utcnow()

        def insert(conn: Any) -> int:
            number = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(trials.c.number), -1) + 1).where(
                    trials.c.study_id == study_id
                )
            ).scalar_one()
            conn.execute(
                trials.insert().values(
                    study_id=study_id,
                    number=number,
                    state=trial.state.value,
                    arch=trial.arch.text,
                    choices=_dumps(list(trial.arch.choices)),
                    fidelity=None if trial.fidelity is None else _dumps(dict(trial.fidelity)),
                    metrics=_dumps(trial.metrics),
                    cost=trial.cost,
                    seconds=trial.seconds,
                    fail_reason=trial.fail_reason,
                    retryable=trial.retryable,
                    retry_of=trial.retry_of,
                    duplicate_of=trial.duplicate_of,
                    worker=trial.worker,
                    started_at=_naive(trial.started_at) or now,
                    finished_at=_naive(trial.finished_at),
                    heartbeat_at=now,
                )
            )
            return int(number)

        self._space(study_id)
        for _ in range(20):
            try:
                return int(self._run(insert))
            except IntegrityError:  # another worker took the number; take the next
                continue
        raise StorageError(f"Could not allocate a trial number in {self._display}.")

    def finish_trial(self, study_id: int, trial: Trial) -> None:
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
        self._run(
            lambda c: c.execute(
                trials.update()
                .where(trials.c.study_id == study_id, trials.c.number == trial.number)
                .values(**values)
            )
        )

    def heartbeat(self, study_id: int, number: int) -> None:
        trials = self._tables["trials"]
        self._run(
            lambda c: c.execute(
                trials.update()
                .where(trials.c.study_id == study_id, trials.c.number == number)
                .values(heartbeat_at=_utcnow())
            )
        )

    def get_trials(self, study_id: int, *, since: int = 0) -> list[Trial]:
        import sqlalchemy as sa

        trials = self._tables["trials"]
        space = self._space(study_id)
        rows = self._run(
            lambda c: c.execute(
                sa.select(trials)
                .where(trials.c.study_id == study_id, trials.c.number >= since)
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
                    heartbeat_at=_aware(r.heartbeat_at),
                )
            )
        return out

    def close(self) -> None:
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"RDBStorage({self._display!r})"


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
        sa.UniqueConstraint("study_id", "number", name="uq_nasforge_trial_number"),
    )
    return {"meta": meta, "schema": schema, "studies": studies, "trials": trials}
