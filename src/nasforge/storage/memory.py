"""Keep studies in this process's memory (the default when no storage URL is given)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from nasforge.errors import StorageError, StudyConflictError, StudyDeletedError
from nasforge.storage.base import Storage, StudyRecord, check_record
from nasforge.trial import Trial, TrialState

__all__ = ["InMemoryStorage"]


class InMemoryStorage(Storage):
    """Studies and trials held in dictionaries; lost when the process ends.

    Safe to share between threads of one process (one lock guards every study).
    """

    persistent = False

    def __init__(self) -> None:
        self._studies: dict[str, StudyRecord] = {}
        self._trials: dict[int, list[Trial]] = {}
        self._finished: dict[int, int] = {}
        self._reports: dict[int, dict[int, dict[int, dict[str, float]]]] = {}
        self._lock = threading.RLock()
        self._last_id = 0

    def create_study(self, record: StudyRecord) -> StudyRecord:
        check_record(record)
        if record.name in self._studies:
            raise StudyConflictError(f"A study named {record.name!r} already exists in memory.")
        self._last_id += 1  # never an id of a deleted study (its Study objects may live on)
        study_id = self._last_id
        stored = dataclasses.replace(
            record, study_id=study_id, created_at=datetime.now(timezone.utc)
        )
        self._studies[record.name] = stored
        self._trials[study_id] = []
        self._finished[study_id] = 0
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

    def update_options(self, study_id: int, options: dict[str, Any]) -> None:
        with self._lock:
            record = self._by_id(study_id)
            merged = {**record.options, **options}
            self._studies[record.name] = dataclasses.replace(record, options=merged)

    @contextlib.contextmanager
    def locked(self, study_id: int, *, durable: bool = True) -> Iterator[None]:
        with self._lock:
            self._study_trials(study_id)
            yield

    def _study_trials(self, study_id: int) -> list[Trial]:
        trials = self._trials.get(study_id)
        if trials is None:
            raise StudyDeletedError(
                f"Study {study_id} no longer exists in memory; it was deleted while it ran."
            )
        return trials

    def list_studies(self) -> list[StudyRecord]:
        return list(self._studies.values())

    def delete_study(self, name: str) -> None:
        record = self._studies.pop(name, None)
        if record is None:
            raise StorageError(f"No study named {name!r} in memory.")
        assert record.study_id is not None
        with self._lock:
            self._trials.pop(record.study_id, None)
            self._reports.pop(record.study_id, None)

    def add_trial(self, study_id: int, trial: Trial) -> int:
        with self._lock:
            trials = self._study_trials(study_id)
            stored = copy.copy(trial)
            stored.scores = None
            stored.number = len(trials)
            stored.heartbeat_at = datetime.now(timezone.utc)
            if stored.asked_after is None:
                stored.asked_after = self._finished[study_id]
            if stored.state is not TrialState.RUNNING:
                self._finished[study_id] += 1
                stored.finish_seq = self._finished[study_id]
            trials.append(stored)
            return stored.number

    def finish_trial(self, study_id: int, trial: Trial) -> bool:
        with self._lock:
            trials = self._study_trials(study_id)
            if trials[trial.number].state is not TrialState.RUNNING:
                return False
            stored = copy.copy(trial)
            stored.scores = None
            stored.finished_at = trial.finished_at or datetime.now(timezone.utc)
            stored.asked_after = trials[trial.number].asked_after
            self._finished[study_id] += 1
            stored.finish_seq = self._finished[study_id]
            trials[trial.number] = stored
            return True

    def heartbeat(self, study_id: int, number: int) -> None:
        with self._lock:
            self._study_trials(study_id)[number].heartbeat_at = datetime.now(timezone.utc)

    def get_trials(
        self, study_id: int, *, since: int = 0, finished_since: int | None = None
    ) -> list[Trial]:
        with self._lock:
            trials = self._study_trials(study_id)
            out = []
            if finished_since is not None:
                for t in trials[:since]:
                    changed = t.finish_seq is not None and t.finish_seq > finished_since
                    if changed or t.state is TrialState.RUNNING:
                        out.append(copy.copy(t))
            return out + [copy.copy(t) for t in trials[since:]]

    def add_reports(
        self, study_id: int, number: int, reports: Mapping[int, Mapping[str, float]]
    ) -> None:
        with self._lock:
            self._study_trials(study_id)
            mine = self._reports.setdefault(study_id, {}).setdefault(int(number), {})
            for step, values in reports.items():
                mine[int(step)] = {str(k): float(v) for k, v in values.items()}

    def get_reports(
        self, study_id: int, numbers: Iterable[int] | None = None
    ) -> dict[int, dict[int, dict[str, float]]]:
        with self._lock:
            self._study_trials(study_id)
            stored = self._reports.get(study_id, {})
            wanted = sorted(stored) if numbers is None else sorted(set(numbers) & set(stored))
            return {n: {step: dict(stored[n][step]) for step in sorted(stored[n])} for n in wanted}
