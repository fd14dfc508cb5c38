"""The :class:`Storage` contract: what happened, durably."""

from __future__ import annotations

import contextlib
import operator
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.trial import Trial

__all__ = [
    "MAX_SEED",
    "MAX_STUDY_NAME",
    "SCHEMA_VERSION",
    "Storage",
    "StudyRecord",
    "check_record",
    "check_study_name",
]

#: Version of the database layout; bumped with every change to the tables.
#: 2: trials record ``asked_after`` and ``finish_seq`` (the order of events of many workers).
#: 3: a table of intermediate reports (``nasforge_reports``: what a running trial reported
#: per step, read by the study's stopping rule in every worker).
SCHEMA_VERSION = 3

#: Option keys that describe how a study is run, not which trials it produces, or that grow
#: after it was created (``enqueued``: see ``Study.enqueue_trial``); a study resumed or joined
#: with other values of these is the same study.
RUN_OPTIONS = ("limits", "heartbeat_grace", "enqueued")

#: Longest study name, in characters, in every storage (the database column holds 512).
MAX_STUDY_NAME = 255

#: Largest seed: seeds are stored as signed 64-bit integers (SQLite's INTEGER, PostgreSQL's
#: BIGINT); they run from 0 to ``MAX_SEED``.
MAX_SEED = 2**63 - 1

#: Unicode categories refused in study names: control characters, lone surrogates (which no
#: database can store) and line or paragraph separators.
_REFUSED_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")


def _abbreviate(value: str, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def check_study_name(name: object) -> str:
    """``name`` if it can name a study in every storage.

    Raises:
        InvalidConfigError: ``name`` is not text, is empty or blank, is longer than
            :data:`MAX_STUDY_NAME` characters, or holds a control character.
    """
    if not isinstance(name, str):
        raise InvalidConfigError(
            f"A study name must be text, got {type(name).__name__}; give a name such as 'nb201-re'."
        )
    if not name.strip():
        raise InvalidConfigError(
            f"The study name {name!r} is empty; give a name such as 'nb201-re'."
        )
    if len(name) > MAX_STUDY_NAME:
        raise InvalidConfigError(
            f"The study name {_abbreviate(name)} is {len(name)} characters long; use at most "
            f"{MAX_STUDY_NAME}."
        )
    for char in name:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise InvalidConfigError(
                f"The study name {_abbreviate(name)} contains the control character "
                f"{char!r}; use letters, digits, spaces and punctuation only."
            )
    return name


def check_record(record: StudyRecord) -> None:
    """Refuse a study a storage cannot keep exactly; every storage calls it in
    :meth:`Storage.create_study` before writing anything.

    Raises:
        InvalidConfigError: The name is refused by :func:`check_study_name`, or the seed is
            not an integer from 0 to :data:`MAX_SEED` (2**63 - 1).
    """
    check_study_name(record.name)
    seed = record.seed
    try:
        value = operator.index(seed)
    except TypeError:
        value = None
    if value is None or isinstance(seed, bool) or not 0 <= value <= MAX_SEED:
        raise InvalidConfigError(
            f"Seed {_abbreviate(str(seed))} of study {record.name!r} is out of range; a seed is "
            f"an integer from 0 to 2**63 - 1 = {MAX_SEED}."
        )


@dataclass(frozen=True)
class StudyRecord:
    """The settings that define a study; two runs with equal settings give equal trials.

    ``evaluator`` is the evaluator's spec (see ``Evaluator.spec``), filled in when the study
    is first optimised; ``objectives`` are written ``"metric:max"``; ``options`` holds study
    behaviour that changes the trials (``{"dedupe": True}``).
    """

    name: str
    space: str
    strategy: str
    seed: int
    objectives: tuple[str, ...]
    strategy_params: dict[str, Any] = field(default_factory=dict)
    space_params: dict[str, Any] = field(default_factory=dict)
    evaluator: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    study_id: int | None = field(default=None, compare=False)
    created_at: datetime | None = field(default=None, compare=False)

    def differences(self, other: StudyRecord) -> list[str]:
        """Human-readable list of the settings that differ from ``other``."""
        out = []
        keys = ("space", "space_params", "strategy", "strategy_params", "seed", "objectives")
        for key in (*keys, "options"):
            mine, theirs = getattr(self, key), getattr(other, key)
            if key == "options":
                mine = {k: v for k, v in mine.items() if k not in RUN_OPTIONS}
                theirs = {k: v for k, v in theirs.items() if k not in RUN_OPTIONS}
            if mine != theirs:
                out.append(f"{key}: stored {mine!r}, requested {theirs!r}")
        if None not in (self.evaluator, other.evaluator) and self.evaluator != other.evaluator:
            out.append(f"evaluator: stored {self.evaluator!r}, requested {other.evaluator!r}")
        return out


class Storage(ABC):
    """Durable record of studies and their trials.

    Trials are numbered from 0 within a study in the order they were added. ``add_trial``
    writes a RUNNING trial and returns its number; ``finish_trial`` writes its final state.
    Implementations must make both atomic: a trial is either fully written or absent.

    Finishing gives a trial the next number of the study's finish sequence (``finish_seq``);
    adding one records in ``asked_after`` the last finish number at that moment (unless the
    caller set it). Everything done inside ``with storage.locked(study_id):`` is one atomic
    step that no other worker of the study interleaves with: workers read the study, ask the
    strategy and reserve the proposal there.
    """

    #: Whether the record outlives the process (False for memory).
    persistent: bool = False

    @abstractmethod
    def create_study(self, record: StudyRecord) -> StudyRecord:
        """Create a study; :class:`~nasforge.errors.StudyConflictError` if the name is taken.

        Implementations call :func:`check_record` first: a name or a seed that some
        storage could not keep is refused by every storage alike, before anything is stored.
        """

    @abstractmethod
    def get_study(self, name: str) -> StudyRecord | None:
        """The study called ``name``, or ``None``."""

    @abstractmethod
    def set_evaluator(self, study_id: int, evaluator: dict[str, Any]) -> None:
        """Record the evaluator spec of a study (once, at its first optimisation)."""

    @abstractmethod
    def list_studies(self) -> list[StudyRecord]:
        """Every study in the storage, oldest first."""

    @abstractmethod
    def delete_study(self, name: str) -> None:
        """Remove a study and its trials."""

    def update_options(self, study_id: int, options: dict[str, Any]) -> None:
        """Merge ``options`` into the stored options of a study (run settings such as its
        limits; see :data:`RUN_OPTIONS`)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def locked(self, study_id: int, *, durable: bool = True) -> Iterator[None]:
        """Hold the study's lock: reads and writes inside are one atomic step.

        With ``durable=False`` the step may be committed before it reaches the disk (a
        reservation: a crash of the database server may forget it; its worker then stops
        with an error). Finished trials written inside are always durable.

        Raises:
            StudyDeletedError: The study no longer exists.
        """
        yield

    @abstractmethod
    def add_trial(self, study_id: int, trial: Trial) -> int:
        """Write ``trial`` (usually RUNNING) as the next trial of the study; its number.

        A trial written already finished (answered from the record) gets its ``finish_seq``.
        """

    @abstractmethod
    def finish_trial(self, study_id: int, trial: Trial) -> bool:
        """Write the final state, metrics, cost and failure reason of trial ``trial.number``
        and give it the next ``finish_seq``.

        Returns:
            False (and writes nothing) when the stored trial is no longer RUNNING: another
            worker declared it dead (its heartbeat stopped) and it is being retried.

        Raises:
            StudyDeletedError: The study was deleted.
        """

    @abstractmethod
    def heartbeat(self, study_id: int, number: int) -> None:
        """Record that the worker running trial ``number`` is alive."""

    @abstractmethod
    def get_trials(
        self, study_id: int, *, since: int = 0, finished_since: int | None = None
    ) -> list[Trial]:
        """Trials of the study numbered ``since`` and later, in order (``scores`` unset).

        With ``finished_since``, also the earlier trials that are RUNNING or whose
        ``finish_seq`` is above it: what changed since a reader's last look, read at one
        instant (one consistent snapshot).
        """

    def add_reports(
        self, study_id: int, number: int, reports: Mapping[int, Mapping[str, float]]
    ) -> None:
        """Store what trial ``number`` reported, ``{step: {metric: value}}``; a step stored
        before is replaced (writing the same reports twice changes nothing).

        Raises:
            UnsupportedOperationError: This storage keeps no reports (a storage written
                before reports existed; the built-in ones all keep them).
        """
        raise UnsupportedOperationError(
            f"{type(self).__name__} keeps no intermediate reports; implement add_reports and "
            "get_reports to use early stopping with it."
        )

    def get_reports(
        self, study_id: int, numbers: Iterable[int] | None = None
    ) -> dict[int, dict[int, dict[str, float]]]:
        """Every report of the study (or of the trials ``numbers``), ``{number: {step:
        {metric: value}}}``, steps in increasing order."""
        raise UnsupportedOperationError(
            f"{type(self).__name__} keeps no intermediate reports; implement add_reports and "
            "get_reports to use early stopping with it."
        )

    def study_counts(self) -> dict[int, dict[str, int]]:
        """Number of trials per state (``"COMPLETE"``...) for every study, by study id."""
        out: dict[int, dict[str, int]] = {}
        for record in self.list_studies():
            assert record.study_id is not None
            counts = out.setdefault(record.study_id, {})
            for trial in self.get_trials(record.study_id):
                counts[trial.state.value] = counts.get(trial.state.value, 0) + 1
        return out

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
