"""nasforge's tables, and the decoding of their rows into studies and trials.

A row that cannot be decoded (malformed JSON, an unknown state, a cost that is not a finite
number, a NULL where a value is expected, a date that is not one...) is refused with a
:class:`~nasforge.errors.StorageError` naming the study, the trial, the column and the value,
and giving the SQL statement that repairs or removes the row. Rows are read without
SQLAlchemy's type conversions (:func:`raw_select`) so that a damaged value reaches the
decoder instead of failing inside SQLAlchemy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import StorageError
from nasforge.storage.base import StudyRecord
from nasforge.trial import Trial, TrialState

__all__ = [
    "aware",
    "counts_of",
    "decode_report",
    "decode_study",
    "decode_trial",
    "dumps",
    "finite",
    "naive",
    "raw_select",
]


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True, separators=(",", ":"))


def finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def naive(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=timezone.utc)


def raw_select(sa: Any, table: Any) -> Any:
    """``SELECT`` of every column of ``table`` as the database stores it (no conversion of
    dates or booleans by SQLAlchemy, which would fail on a damaged value)."""
    return sa.select(*[sa.type_coerce(c, sa.types.NullType()).label(c.name) for c in table.c])


class _Damaged(Exception):
    """A column value that cannot be decoded (turned into a StorageError by the caller)."""


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json(value: Any, kind: type | None = None) -> Any:
    if not isinstance(value, str):
        raise _Damaged("expected JSON text" if value is not None else "NULL where JSON is expected")
    try:
        out = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise _Damaged(f"malformed JSON ({str(exc).splitlines()[0][:80]})") from None
    if kind is not None and not isinstance(out, kind):
        raise _Damaged(f"expected a JSON {'object' if kind is dict else 'list'}")
    return out


def _json_or_null(value: Any, kind: type | None = None) -> Any:
    return None if value is None else _json(value, kind)


def _int(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise _Damaged("expected an integer" if value is not None else "NULL where a number is due")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise _Damaged("expected an integer")


def _int_or_null(value: Any) -> int | None:
    return None if value is None else _int(value)


def _float(value: Any) -> float:
    if value is None:
        raise _Damaged("NULL where a number is expected")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Damaged("expected a number")
    try:
        out = float(value)
    except ValueError:
        raise _Damaged("expected a number") from None
    if not math.isfinite(out):
        raise _Damaged("expected a finite number")
    return out


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Damaged("NULL where text is expected" if value is None else "expected text")
    return value


def _text_or_null(value: Any) -> str | None:
    return None if value is None else _text(value)


def _bool(value: Any) -> bool:
    if value in (0, 1, True, False) and not isinstance(value, float):
        return bool(value)
    if isinstance(value, str) and value in ("0", "1"):
        return value == "1"
    raise _Damaged("NULL where true/false is expected" if value is None else "expected 0 or 1")


def _date(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise _Damaged("expected a date and time")


def _state(value: Any) -> TrialState:
    try:
        return TrialState(value)
    except ValueError:
        valid = ", ".join(s.value for s in TrialState)
        raise _Damaged(f"unknown state (the states are {valid})") from None


def _metrics(value: Any) -> dict[str, float]:
    out = _json(value, dict)
    for key, number in out.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise _Damaged(f"metric {key!r} is {_short(number)}, not a number")
    return out  # type: ignore[no-any-return]


def _choices(value: Any) -> tuple[int, ...]:
    out = _json(value, list)
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in out):
        raise _Damaged("expected a JSON list of integers")
    return tuple(out)


def _fidelity(value: Any) -> dict[str, Any] | None:
    return _json_or_null(value, dict)  # type: ignore[no-any-return]


def _column(row: Any, column: str, decode: Callable[[Any], Any], where: Callable[[], str]) -> Any:
    raw = getattr(row, column)
    try:
        return decode(raw)
    except _Damaged as exc:
        raise StorageError(f"{where()}: column {column!r} holds {_short(raw)}: {exc}") from None


#: SQL that repairs a damaged trial column without losing what else the trial records;
#: ``None``: the trial cannot be repaired, only deleted.
_TRIAL_REPAIRS: dict[str, str | None] = {
    "state": "state = 'FAILED'",
    "metrics": "metrics = '{}', state = 'FAILED'",
    "fidelity": "fidelity = NULL",
    "cost": "cost = 0",
    "seconds": "seconds = 0",
    "fail_reason": "fail_reason = NULL",
    "retryable": "retryable = 0",
    "retry_of": "retry_of = NULL",
    "duplicate_of": "duplicate_of = NULL",
    "worker": "worker = NULL",
    "started_at": "started_at = NULL",
    "finished_at": "finished_at = NULL",
    "heartbeat_at": "heartbeat_at = NULL",
}


def decode_trial(row: Any, *, space: str, study: str, study_id: int, display: str) -> Trial:
    """The trial of a row of ``nasforge_trials`` read with :func:`raw_select`.

    Raises:
        StorageError: A column is damaged; the message names the study, the trial number
            and the column, and gives the SQL that repairs or deletes the row.
    """
    number_text = str(getattr(row, "number", "?"))
    where_trial = f"study_id = {study_id} AND number = {number_text}"

    def column(name: str, decode: Callable[[Any], Any]) -> Any:
        def where() -> str:
            return f"Trial {number_text} of study {study!r} in {display} is damaged"

        try:
            return _column(row, name, decode, where)
        except StorageError as exc:
            repair = _TRIAL_REPAIRS.get(name)
            how = (
                f"repair it with: UPDATE nasforge_trials SET {repair} WHERE {where_trial}; "
                "or delete it"
                if repair is not None
                else "delete it"
            )
            raise StorageError(
                f"{exc}. Fix the value, {how} with: DELETE FROM nasforge_trials WHERE "
                f"{where_trial}; (its result is then lost)."
            ) from None

    if row.number is None or not isinstance(row.number, int) or isinstance(row.number, bool):
        raise StorageError(
            f"A trial of study {study!r} in {display} is damaged: column 'number' holds "
            f"{_short(row.number)}, not an integer. Delete it with: DELETE FROM nasforge_trials "
            f"WHERE study_id = {study_id} AND trial_id = {_short(row.trial_id)};"
        )
    return Trial(
        number=row.number,
        arch=Architecture(space, column("choices", _choices), column("arch", _text)),
        state=column("state", _state),
        fidelity=column("fidelity", _fidelity),
        metrics=column("metrics", _metrics),
        cost=column("cost", _float),
        seconds=column("seconds", _float),
        fail_reason=column("fail_reason", _text_or_null),
        retryable=column("retryable", _bool),
        retry_of=column("retry_of", _int_or_null),
        duplicate_of=column("duplicate_of", _int_or_null),
        worker=column("worker", _text_or_null),
        started_at=aware(column("started_at", _date)),
        finished_at=aware(column("finished_at", _date)),
        asked_after=column("asked_after", _int_or_null),
        finish_seq=column("finish_seq", _int_or_null),
        heartbeat_at=aware(column("heartbeat_at", _date)),
    )


def decode_study(row: Any, *, display: str) -> StudyRecord:
    """The study of a row of ``nasforge_studies`` read with :func:`raw_select`.

    Raises:
        StorageError: A column is damaged; the message names the study and the column.
    """
    name = row.name if isinstance(row.name, str) else f"with id {row.study_id!r}"

    def column(column: str, decode: Callable[[Any], Any]) -> Any:
        def where() -> str:
            return f"Study {name!r} in {display} is damaged"

        try:
            return _column(row, column, decode, where)
        except StorageError as exc:
            raise StorageError(
                f"{exc}. Fix the value with an UPDATE of nasforge_studies WHERE study_id = "
                f"{_short(row.study_id)}, or delete the study (Storage.delete_study)."
            ) from None

    return StudyRecord(
        name=column("name", _text),
        space=column("space", _text),
        strategy=column("strategy", _text),
        seed=column("seed", _int),
        objectives=tuple(column("objectives", _objectives)),
        strategy_params=column("strategy_params", lambda v: _json(v, dict)),
        space_params=column("space_params", lambda v: _json(v, dict)),
        evaluator=column("evaluator", lambda v: _json_or_null(v, dict)),
        options=column("options", lambda v: _json(v, dict)),
        study_id=column("study_id", _int),
        created_at=column("created_at", _date),
    )


def _objectives(value: Any) -> list[str]:
    out = _json(value, list)
    if not all(isinstance(o, str) for o in out):
        raise _Damaged("expected a JSON list of texts like 'valid_acc:max'")
    return out  # type: ignore[no-any-return]


def options_of(value: Any, *, study_id: int, display: str) -> dict[str, Any]:
    """The decoded ``options`` column of a study (for merging new options into it)."""
    try:
        return _json(value, dict)  # type: ignore[no-any-return]
    except _Damaged as exc:
        raise StorageError(
            f"Study {study_id} in {display} is damaged: column 'options' holds "
            f"{_short(value)}: {exc}. Fix the value with: UPDATE nasforge_studies SET options = "
            f"'{{}}' WHERE study_id = {study_id};"
        ) from None


def decode_report(
    value: Any, *, study: str, study_id: int, number: Any, step: Any, display: str
) -> dict[str, float]:
    """The metrics of a row of ``nasforge_reports``.

    Raises:
        StorageError: The value is not a JSON object of numbers; the message names the
            study, the trial and the step and gives the SQL that deletes the report.
    """
    try:
        return _metrics(value)
    except _Damaged as exc:
        raise StorageError(
            f"The report of trial {number} at step {step} of study {study!r} in {display} is "
            f"damaged: column 'metrics' holds {_short(value)}: {exc}. Delete it with: DELETE "
            f"FROM nasforge_reports WHERE study_id = {study_id} AND number = {number} AND "
            f"step = {step};"
        ) from None


def counts_of(rows: Any, *, display: str) -> dict[int, dict[str, int]]:
    """Trials per state by study id, from rows of ``(study_id, state, count)``."""
    out: dict[int, dict[str, int]] = {}
    for study_id, state, count in rows:
        if not isinstance(study_id, int) or isinstance(study_id, bool):
            raise StorageError(
                f"{display} is damaged: {count} trial(s) have the study_id {_short(study_id)}, "
                "not a number. Delete them with: DELETE FROM nasforge_trials WHERE "
                "typeof(study_id) <> 'integer';"
            )
        out.setdefault(study_id, {})[str(state)] = int(count)
    return out
