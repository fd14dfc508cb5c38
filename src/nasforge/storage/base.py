"""The :class:`Storage` contract: what happened, durably."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nasforge.trial import Trial

__all__ = ["SCHEMA_VERSION", "Storage", "StudyRecord"]

#: Version of the database layout; bumped with every change to the tables.
SCHEMA_VERSION = 1


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
    """

    #: Whether the record outlives the process (False for memory).
    persistent: bool = False

    @abstractmethod
    def create_study(self, record: StudyRecord) -> StudyRecord:
        """Create a study; :class:`~nasforge.errors.StudyConflictError` if the name is taken."""

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

    @abstractmethod
    def add_trial(self, study_id: int, trial: Trial) -> int:
        """Write ``trial`` (usually RUNNING) as the next trial of the study; its number."""

    @abstractmethod
    def finish_trial(self, study_id: int, trial: Trial) -> None:
        """Write the final state, metrics, cost and failure reason of trial ``trial.number``."""

    @abstractmethod
    def heartbeat(self, study_id: int, number: int) -> None:
        """Record that the worker running trial ``number`` is alive."""

    @abstractmethod
    def get_trials(self, study_id: int, *, since: int = 0) -> list[Trial]:
        """Trials of the study numbered ``since`` and later, in order (``scores`` unset)."""

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
