"""Keep studies in this process's memory (the default when no storage URL is given)."""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, timezone
from typing import Any

from nasforge.errors import StorageError, StudyConflictError
from nasforge.storage.base import Storage, StudyRecord
from nasforge.trial import Trial

__all__ = ["InMemoryStorage"]


class InMemoryStorage(Storage):
    """Studies and trials held in dictionaries; lost when the process ends."""

    persistent = False

    def __init__(self) -> None:
        self._studies: dict[str, StudyRecord] = {}
        self._trials: dict[int, list[Trial]] = {}

    def create_study(self, record: StudyRecord) -> StudyRecord:
        if record.name in self._studies:
            raise StudyConflictError(f"A study named {record.name!r} already exists in memory.")
        study_id = len(self._trials) + 1
        stored = dataclasses.replace(
            record, study_id=study_id, created_at=datetime.now(timezone.utc)
        )
        self._studies[record.name] = stored
        self._trials[study_id] = []
        return stored

    def get_study(self, name: str) -> StudyRecord | None:
        return self._studies.get(name)

    def _by_id(self, study_id: int) -> StudyRecord:
        for record in self._studies.values():
            if record.study_id == study_id:
                return record
        raise StorageError(f"No study with id {study_id} in memory; it may have been deleted.")

    def set_evaluator(self, study_id: int, evaluator: dict[str, Any]) -> None:
        record = self._by_id(study_id)
        self._studies[record.name] = dataclasses.replace(record, evaluator=dict(evaluator))

    def list_studies(self) -> list[StudyRecord]:
        return list(self._studies.values())

    def delete_study(self, name: str) -> None:
        record = self._studies.pop(name, None)
        if record is None:
            raise StorageError(f"No study named {name!r} in memory.")
        assert record.study_id is not None
        self._trials.pop(record.study_id, None)

    def add_trial(self, study_id: int, trial: Trial) -> int:
        trials = self._trials.get(study_id)
        if trials is None:
            raise StorageError(f"No study with id {study_id} in memory; it may have been deleted.")
        stored = copy.copy(trial)
        stored.number = len(trials)
        stored.heartbeat_at = datetime.now(timezone.utc)
        trials.append(stored)
        return stored.number

    def finish_trial(self, study_id: int, trial: Trial) -> None:
        stored = copy.copy(trial)
        stored.scores = None
        stored.finished_at = trial.finished_at or datetime.now(timezone.utc)
        self._trials[study_id][trial.number] = stored

    def heartbeat(self, study_id: int, number: int) -> None:
        self._trials[study_id][number].heartbeat_at = datetime.now(timezone.utc)

    def get_trials(self, study_id: int, *, since: int = 0) -> list[Trial]:
        return [copy.copy(t) for t in self._trials[study_id][since:]]
