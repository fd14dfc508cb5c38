"""The record side of a study: its settings, its trials, and their replay."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from nasforge import evaluators, spaces, strategies
from nasforge.architecture import Architecture
from nasforge.constraints import Constraint
from nasforge.errors import StorageError
from nasforge.evaluators.base import Evaluator
from nasforge.spaces.base import SearchSpace
from nasforge.storage import Storage, StudyRecord
from nasforge.strategies.base import Strategy
from nasforge.study._support import (
    _FINISH_FIELDS,
    _HOST,
    _LIVE_WORKERS,
    _ExternalProposals,
    _fidelity,
    _Heartbeats,
    _improves,
    _pid_alive,
    _replace,
    _with_objective_count,
    trial_row,
)
from nasforge.trial import Objective, Proposal, Trial, TrialState

logger = logging.getLogger("nasforge.study")


class StudyBase:
    """A study's settings and trials, rebuilt by replaying the record (see :class:`Study`)."""

    heartbeat_interval: float = 10.0
    heartbeat_grace: float = 60.0
    max_retries: int = 3
    #: Seconds between looks at the storage while the last trials run in other workers.
    poll_interval: float = 0.2
    #: With ``dedupe``, stop after this many free answers in a row (a converged strategy).
    max_duplicate_streak: int = 1000
    #: Why the last search stopped early, converged on known architectures ("" if it did not).
    _converged: str = ""
    #: With constraints, give up (InfeasibleConstraintError) after this many rejections in a row.
    max_rejected_streak: int = 1000
    #: Stop (EvaluationFailuresError) after this many trials in a row failed in the evaluator:
    #: a broken evaluator records failures at no cost, so a budget alone would never end.
    max_failed_streak: int = 100
    _failed_streak: int = 0

    def __init__(self, record: StudyRecord, storage: Storage) -> None:
        assert record.study_id is not None
        self._record = record
        self._storage = storage
        self.space: SearchSpace = spaces.create(record.space, **record.space_params)
        self.objectives: tuple[Objective, ...] = tuple(
            Objective.parse(o) for o in record.objectives
        )
        #: Whether a one-shot method (``nasforge.oneshot``) chooses the architectures: the
        #: study then records what :meth:`record_architecture` is given instead of asking a
        #: strategy, and a resume reads the trials back without replaying them.
        self.external = bool(record.options.get("oneshot", False))
        self._strategy: Strategy = (
            _ExternalProposals(self.space, seed=record.seed)
            if self.external
            else strategies.create(
                record.strategy,
                self.space,
                seed=record.seed,
                **_with_objective_count(
                    record.strategy, record.strategy_params, len(self.objectives)
                ),
            )
        )
        self._trials: list[Trial] = []
        self._retry: deque[Trial] = deque()
        self._attempts: dict[int, int] = {}
        self._pending: dict[int, Trial] = {}
        self._mine: set[int] = set()
        self._finished: dict[int, Trial] = {}
        self._told = 0
        self._n_done = 0
        self._spent = 0.0
        self._best: Trial | None = None
        self._held: tuple[Proposal, int | None] | None = None
        self.max_retries = int(record.options.get("max_retries", StudyBase.max_retries))
        self.heartbeat_grace = float(
            record.options.get("heartbeat_grace", StudyBase.heartbeat_grace)
        )
        self.heartbeat_interval = min(StudyBase.heartbeat_interval, self.heartbeat_grace / 4)
        self.dedupe = bool(record.options.get("dedupe", False))
        self.constraints = tuple(Constraint.parse(c) for c in record.options.get("constraints", ()))
        self._tightest: dict[Constraint, float] = {}
        self._seen: dict[tuple[Any, ...], Trial] = {}
        self._strategy.free_metrics = self._stored_free_metrics()
        self._strategy.functional_key = self.space.functional_key if self.dedupe else None
        self._worker = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        #: Every architecture ever enqueued (``enqueue_trial``), in order, with the number of
        #: trials the study held then; the first ``_queue_taken`` became trials.
        self._queue: list[tuple[Proposal, int]] = []
        self._queue_taken = 0
        self._load_queue(record.options.get("enqueued", ()))
        #: Trials handed out by ask() and not told yet: their free metrics.
        self._asked: dict[int, dict[str, float]] = {}
        self._asked_beats: _Heartbeats | None = None
        self._ask_with: Evaluator | None = None
        self._sync()

    # -- read-only views --------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._record.name

    @property
    def seed(self) -> int:
        return self._record.seed

    @property
    def strategy_name(self) -> str:
        return self._record.strategy

    @property
    def strategy_params(self) -> dict[str, Any]:
        return dict(self._record.strategy_params)

    @property
    def record(self) -> StudyRecord:
        """The stored settings of this study."""
        return self._record

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def trials(self) -> list[Trial]:
        """All trials in the order they started."""
        return list(self._trials)

    @property
    def completed_trials(self) -> list[Trial]:
        return [t for t in self._trials if t.state is TrialState.COMPLETE]

    @property
    def n_finished(self) -> int:
        """Trials that count towards ``n_trials``: COMPLETE, STOPPED (ended early by the
        study's stopping rule), and FAILED ones not retried."""
        return self._n_done

    @property
    def spent(self) -> float:
        """Total cost of the finished trials, in the evaluator's cost unit."""
        return self._spent

    @property
    def best_trial(self) -> Trial:
        """The COMPLETE full-fidelity trial with the best first objective (the earliest among
        equals). Trials at a reduced fidelity (``{"epochs": 12}``) are screening results and
        are not candidates."""
        if self._best is None:
            raise StorageError(f"Study {self.name!r} has no completed trial yet.")
        return self._best

    def pareto_front(self) -> list[Trial]:
        """The COMPLETE, feasible, full-fidelity trials that no other such trial dominates on
        the study's objectives (for one objective: the best trials)."""
        from nasforge.pareto import front_trials

        return front_trials([t for t in self._trials if t.scores is not None and not t.fidelity])

    def best_so_far(self) -> list[Trial]:
        """For each finished trial in order, the best trial up to it (a trajectory)."""
        out: list[Trial] = []
        best: Trial | None = None
        for trial in self._trials:
            if _improves(trial, best):
                best = trial
            if trial.state.finished and best is not None:
                out.append(best)
        return out

    # -- replay -----------------------------------------------------------------------------
    def _sync(self, *, mark_stale: bool = True) -> None:
        """Read what changed in storage since the last look (new trials, finishes) in one
        snapshot and replay it; then declare dead the RUNNING trials of stopped workers."""
        self._apply(
            self._storage.get_trials(
                self._study_id, since=len(self._trials), finished_since=self._told
            )
        )
        if not mark_stale or getattr(self._storage, "read_only", False):
            return  # a read-only storage (nasforge show) is only read
        stale = [
            t for t in self._pending.values() if t.number not in self._mine and self._is_stale(t)
        ]
        if not stale:
            return
        with self._storage.locked(self._study_id):
            for trial in stale:
                dead = dataclasses.replace(
                    trial,
                    state=TrialState.FAILED,
                    retryable=True,
                    fail_reason=f"worker {trial.worker} stopped while evaluating this trial "
                    f"(no heartbeat for {self.heartbeat_grace:g} s, or its process is gone)",
                    finished_at=datetime.now(timezone.utc),
                )
                if self._storage.finish_trial(self._study_id, dead):
                    logger.info(
                        "trial %d was left running by a dead worker; retrying it", trial.number
                    )
            self._sync(mark_stale=False)

    def _apply(self, fresh: Sequence[Trial]) -> None:
        """Replay stored trials: asks in the order of trial numbers, each after the finishes
        it was proposed after (``asked_after``), and tells in the order of ``finish_seq``."""
        known = len(self._trials)
        if any(stored.number >= known for stored in fresh):
            self._refresh_queue()  # trials of other workers may have taken enqueued ones
        for stored in fresh:
            if stored.number < known:  # a trial seen before: it finished, or it beat
                local = self._trials[stored.number]
                if stored.finish_seq is not None and local.finish_seq is None:
                    self._finished[stored.finish_seq] = stored
                elif stored.state is TrialState.RUNNING:
                    local.heartbeat_at = stored.heartbeat_at
                continue
            if stored.number != len(self._trials):
                raise StorageError(
                    f"Study {self.name!r} is inconsistent: trial {stored.number} follows trial "
                    f"{len(self._trials) - 1}."
                )
            self._tell_until(stored.asked_after if stored.asked_after is not None else 0)
            self._replay(stored)
        if self._finished:
            self._tell_until(max(self._finished))

    def _tell_until(self, seq: int) -> None:
        """Settle (tell the strategy) the finishes numbered up to ``seq``, in order."""
        while self._told < seq:
            stored = self._finished.pop(self._told + 1, None)
            if stored is None:
                raise StorageError(
                    f"Study {self.name!r} is inconsistent: finish {self._told + 1} is missing."
                )
            local = self._trials[stored.number]
            for name in _FINISH_FIELDS:
                setattr(local, name, getattr(stored, name))
            self._pending.pop(local.number, None)
            self._told += 1
            self._settle(local)

    def _replay(self, trial: Trial) -> None:
        # a one-shot study's architectures came from its method: nothing to ask again
        queued = self._queue_taken
        expected = trial.proposal if self.external else self._next_proposal(trial.retry_of)
        if expected.arch != trial.arch or _fidelity(expected) != _fidelity(trial.proposal):
            source = (
                "the enqueued architecture is"
                if self._queue_taken > queued
                else f"strategy {self.strategy_name!r} with seed {self.seed} proposes"
            )
            raise StorageError(
                f"Study {self.name!r} cannot be replayed: its trial {trial.number} evaluated "
                f"{trial.arch.text!r}, but {source} {expected.arch.text!r} at that point. The "
                "study was written by a different version of this strategy; start a new study."
            )
        self._trials.append(trial)
        if trial.state is TrialState.RUNNING:
            self._pending[trial.number] = trial
        else:
            assert trial.finish_seq is not None
            finish_seq, trial.finish_seq = trial.finish_seq, None
            self._finished[finish_seq] = dataclasses.replace(trial, finish_seq=finish_seq)

    def _next_proposal(self, retry_of: int | None) -> Proposal:
        """The proposal of the next trial (live and in replay): the retry of ``retry_of``, else
        the next enqueued architecture when one is due, else a held one or the strategy's."""
        if retry_of is None:
            queued = self._due()
            if queued is not None:
                self._queue_taken += 1
                return queued
        if self._held is not None:  # asked before but not recorded (it did not fit the budget)
            held, held_retry = self._held
            if held_retry == retry_of:
                self._held = None
                return held
            if held_retry is not None:  # give the retry back; it stays first in line
                self._held = None
                self._retry.appendleft(self._trials[held_retry])
        if retry_of is None:
            return self._strategy.ask()
        for i, waiting in enumerate(self._retry):
            if waiting.number == retry_of:
                del self._retry[i]
                return waiting.proposal
        raise StorageError(
            f"Study {self.name!r} is inconsistent: a trial retries trial {retry_of}, which did "
            "not fail in a retryable way."
        )

    def _settle(self, trial: Trial) -> None:
        """Bookkeeping once a trial is COMPLETE, STOPPED or FAILED (same code live and in
        replay): only COMPLETE trials are scored; the strategy is told every one."""
        self._attempts[trial.number] = (
            1 if trial.retry_of is None else self._attempts.get(trial.retry_of, 1) + 1
        )
        if trial.state is TrialState.COMPLETE:
            trial.scores = self._scores(trial.metrics) if self.feasible(trial) else None
            if _improves(trial, self._best):
                self._best = trial
        retry = trial.state is TrialState.FAILED and trial.retryable
        if retry and self._attempts[trial.number] <= self.max_retries:
            self._retry.append(trial)
            return
        self._n_done += 1
        self._spent += trial.cost
        if self.dedupe and trial.duplicate_of is None:
            self._seen.setdefault(self._key(trial.proposal), trial)
        self._strategy.tell(trial)

    def feasible(self, trial: Trial) -> bool:
        """Whether a trial's metrics meet every constraint of the study."""
        return all(c.satisfied(trial.metrics) for c in self.constraints)

    def _reject(self, free: Mapping[str, float]) -> str | None:
        """Why a proposal with these free metrics violates a constraint, or ``None``."""
        for c in self.constraints:
            if c.metric in free and not c.satisfied(free):
                value = free[c.metric]
                seen = self._tightest.get(c)
                better = seen is None or (value < seen if c.upper else value > seen)
                if better:
                    self._tightest[c] = value
                return f"infeasible before evaluation: {c.metric}={value:g} violates {c}"
        return None

    def _key(self, proposal: Proposal) -> tuple[Any, ...]:
        """Functional identity of a proposal: canonical architecture and fidelity."""
        fidelity = tuple(sorted((proposal.fidelity or {}).items()))
        return (self.space.functional_key(proposal.arch), fidelity)

    def _stored_free_metrics(self) -> Callable[[Architecture], Mapping[str, float]] | None:
        """Free metrics from the stored evaluator, built on first use (for replays)."""
        spec = self._record.evaluator
        if spec is None:
            return None
        built: list[Evaluator] = []

        def free(arch: Architecture) -> Mapping[str, float]:
            if not built:
                params = dict(spec)
                built.append(evaluators.create(params.pop("name"), **params))
            return built[0].free_metrics(arch)

        return free

    def _scores(self, metrics: Mapping[str, float]) -> tuple[float, ...] | None:
        out = []
        for objective in self.objectives:
            value = metrics.get(objective.metric)
            if value is None or math.isnan(value):
                return None
            out.append(objective.oriented(float(value)))
        return tuple(out)

    def _is_stale(self, trial: Trial) -> bool:
        host, _, rest = (trial.worker or "").partition(":")
        pid_text, _, _ = rest.partition(":")
        if host == _HOST and pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                return trial.worker not in _LIVE_WORKERS
            if not _pid_alive(pid):
                return True
        beat = trial.heartbeat_at or trial.started_at
        if beat is None:
            return True
        return datetime.now(timezone.utc) - beat > timedelta(seconds=self.heartbeat_grace)

    @property
    def _study_id(self) -> int:
        assert self._record.study_id is not None
        return self._record.study_id

    # -- the queue of enqueue_trial -----------------------------------------------------------
    def _load_queue(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Append the stored queue entries not known yet (the queue only grows)."""
        for entry in entries[len(self._queue) :]:
            proposal = Proposal(self.space.parse(entry["arch"]), entry.get("fidelity"))
            self._queue.append((proposal, int(entry["after"])))
        if len(entries) != len(self._record.options.get("enqueued", ())):
            options = {**self._record.options, "enqueued": [dict(e) for e in entries]}
            self._record = _replace(self._record, options=options)

    def _refresh_queue(self) -> None:
        """Read the queue again (another worker or Study object may have added to it)."""
        stored = self._storage.get_study(self.name)
        if stored is not None:
            self._load_queue(stored.options.get("enqueued", ()))

    def _due(self) -> Proposal | None:
        """The next enqueued proposal if the next trial takes it (it was enqueued when the
        study held no more trials than now), else ``None``."""
        if self._queue_taken < len(self._queue):
            proposal, after = self._queue[self._queue_taken]
            if after <= len(self._trials):
                return proposal
        return None

    # -- export -----------------------------------------------------------------------------
    def to_dataframe(self) -> Any:
        """The trials as a ``pandas.DataFrame``: one row per trial, one column per metric."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "to_dataframe() needs pandas: pip install 'nasforge[pandas]'"
            ) from None
        return pd.DataFrame([trial_row(t) for t in self._trials])

    def __repr__(self) -> str:
        return (
            f"Study({self.name!r}, space={self.space.name!r}, strategy={self.strategy_name!r}, "
            f"seed={self.seed}, trials={len(self._trials)})"
        )
