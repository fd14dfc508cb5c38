"""The :class:`Study`: the search loop and its durable record."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import inspect
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from nasforge import evaluators, spaces, strategies
from nasforge._study_specs import space_spec, strategy_spec, unrecordable
from nasforge.architecture import Architecture
from nasforge.constraints import Constraint
from nasforge.errors import (
    InfeasibleConstraintError,
    InvalidConfigError,
    StorageError,
    StudyConflictError,
    UnknownNameError,
    UnsupportedOperationError,
)
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import Executor, WorkerLost
from nasforge.execution.inprocess import InProcessExecutor
from nasforge.spaces.base import SearchSpace
from nasforge.storage import Storage, StudyRecord, get_storage
from nasforge.strategies.base import Strategy, check_params
from nasforge.trial import Objective, Proposal, Result, Trial, TrialState

__all__ = ["Study", "create_study", "load_study"]

logger = logging.getLogger(__name__)

Callback = Callable[["Study", Trial], None]

#: Trials whose worker is in this set are being evaluated by this process right now.
_LIVE_WORKERS: set[str] = set()
_HOST = socket.gethostname()
#: Returned by ``Study._next_step`` while the last trials run in other workers.
_WAIT = object()
#: What finishing a trial changes in its record.
_FINISH_FIELDS = (
    "state",
    "metrics",
    "cost",
    "seconds",
    "fail_reason",
    "retryable",
    "finished_at",
    "heartbeat_at",
    "finish_seq",
)


class Study:
    """A search: a space, a strategy with its seed, objectives, and the trials recorded so far.

    Build one with :func:`create_study` or :func:`load_study`. Opening a study replays its
    stored trials through a fresh strategy built from the stored seed (no live object is ever
    pickled), so a resumed study continues exactly where it stopped: an interrupted search
    that is resumed ends with the same completed trials as one that never stopped.

    Trials that a dead worker left RUNNING (its process is gone, or its heartbeat is older
    than ``heartbeat_grace`` seconds) and trials interrupted with Ctrl-C are marked FAILED
    with ``retryable=True``; their proposal is evaluated again (at most ``max_retries`` times)
    before the strategy is asked for anything new. Failures of the evaluation itself are told
    to the strategy and not retried.

    Many workers (processes or machines: ``nasforge worker``) may optimise one study in a
    shared storage at once. Each reserves its next trial under the study's lock, right after
    catching up with the record: the strategy has been asked for every earlier trial, those
    still RUNNING in other workers included (pending: told when they finish), and told the
    finished ones in the order they finished. Each trial stores that order (``asked_after``,
    ``finish_seq``), so that a replay rebuilds the strategy exactly as the workers saw it.

    With the option ``dedupe`` (functional hashing, after Gillard et al., "Unified Functional
    Hashing in Automatic Machine Learning", arXiv:2302.05433), a proposal whose canonical form
    (``space.canonical``) and fidelity equal those of a finished trial is answered from that
    trial's record at no cost; the trial names it in ``duplicate_of``.
    """

    heartbeat_interval: float = 10.0
    heartbeat_grace: float = 60.0
    max_retries: int = 3
    #: Seconds between looks at the storage while the last trials run in other workers.
    poll_interval: float = 0.2
    #: With ``dedupe``, stop after this many free answers in a row (a converged strategy).
    max_duplicate_streak: int = 1000
    #: With constraints, give up (InfeasibleConstraintError) after this many rejections in a row.
    max_rejected_streak: int = 1000

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
        self.max_retries = int(record.options.get("max_retries", Study.max_retries))
        self.heartbeat_grace = float(record.options.get("heartbeat_grace", Study.heartbeat_grace))
        self.heartbeat_interval = min(Study.heartbeat_interval, self.heartbeat_grace / 4)
        self.dedupe = bool(record.options.get("dedupe", False))
        self.constraints = tuple(Constraint.parse(c) for c in record.options.get("constraints", ()))
        self._tightest: dict[Constraint, float] = {}
        self._seen: dict[tuple[Any, ...], Trial] = {}
        self._strategy.free_metrics = self._stored_free_metrics()
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
        """Trials that count towards ``n_trials``: COMPLETE, and FAILED ones not retried."""
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
        if not mark_stale:
            return
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
        """Bookkeeping once a trial is COMPLETE or FAILED (same code live and in replay)."""
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
        return (self.space.canonical(proposal.arch).choices, fidelity)

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

    # -- the search loop --------------------------------------------------------------------
    def optimize(
        self,
        evaluator: Evaluator | None = None,
        *,
        n_trials: int | None = None,
        budget: float | None = None,
        timeout: float | None = None,
        executor: Executor | None = None,
        callbacks: Sequence[Callback] = (),
        in_order: bool = True,
    ) -> Study:
        """Run the search until the study holds ``n_trials`` finished trials or has spent
        ``budget``.

        Both limits count the whole study, not this call: resuming an interrupted study with
        the same call finishes the remaining trials.

        Args:
            evaluator: Scores architectures. ``None`` rebuilds the evaluator the study was
                first optimised with. A different evaluator than the stored one is refused.
            n_trials: Stop once this many trials are finished (COMPLETE, or FAILED for good).
            budget: Stop once the finished trials cost this much, in the evaluator's unit
                (queries for a tabular benchmark).
            timeout: Stop starting new trials after this many seconds of this call.
            executor: Where evaluations run; in this process by default. An executor with
                several slots (a process pool, Ray) runs that many trials at once and
                reserves the next one as soon as one finishes (asynchronous).
            callbacks: Called as ``callback(study, trial)`` after each finished trial.
            in_order: With several slots, record results and tell them to the strategy in
                the order the trials were asked, each slot refilled when the oldest running
                trial finishes. Trial ``j`` is then always asked after exactly the results of
                trials ``0 .. j - slots``, so a seed gives the same trials on every run with
                the same number of slots, however long each evaluation takes. ``False``
                takes each result as it arrives: busier slots when evaluation times vary
                widely, but the trials depend on timing. Workers started separately
                (``nasforge worker``) always take results as they arrive.

        Returns:
            The study itself.

        Raises:
            InvalidConfigError: No limit given, or a limit is not positive.
            StudyConflictError: ``evaluator`` differs from the one stored with the study.
            UnknownNameError: An objective names a metric the evaluator does not return.
        """
        if n_trials is None and budget is None and timeout is None:
            raise InvalidConfigError("Give optimize() a limit: n_trials=, budget= or timeout=.")
        if self._asked:
            raise InvalidConfigError(
                f"Study {self.name!r} has trials asked and not told yet "
                f"({', '.join(map(str, sorted(self._asked)))}); tell() their results (or "
                "tell(trial, state=TrialState.FAILED)) before optimize()."
            )
        for label, value in (("n_trials", n_trials), ("budget", budget), ("timeout", timeout)):
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise InvalidConfigError(f"{label} must be a positive number, got {value!r}.")
        evaluator = self._resolve_evaluator(evaluator)
        self._strategy.free_metrics = evaluator.free_metrics
        executor = executor or InProcessExecutor()
        slots = max(1, int(getattr(executor, "max_workers", 1) or 1))
        deadline = None if timeout is None else time.monotonic() + timeout
        in_flight: dict[Future[Result], tuple[Trial, dict[str, float]]] = {}
        streak = rejected = 0
        stop = False
        with _live(self._worker), _Heartbeats(self) as beats:
            try:
                while True:
                    waiting = False
                    # several free slots (an asynchronous executor): reserve them in one
                    # transaction of the study's lock instead of one each
                    batch = slots - len(in_flight) > 1 and not stop
                    try:
                        lock = self._storage.locked(self._study_id, durable=False)
                        with lock if batch else _nothing():
                            stop, waiting, rejected, streak = self._fill(
                                evaluator,
                                executor,
                                n_trials,
                                budget,
                                deadline,
                                slots,
                                in_flight,
                                beats,
                                callbacks,
                                stop,
                                rejected,
                                streak,
                                in_order,
                            )
                    except BaseException:
                        if batch:  # the reservations of the batch were rolled back
                            self._rebuild()
                        raise
                    if not in_flight:
                        if stop or not waiting:
                            break
                        time.sleep(self.poll_interval)  # other workers run the last trials
                        continue
                    if in_order:  # the oldest trial first, whatever finishes before it
                        oldest = min(in_flight, key=lambda f: in_flight[f][0].number)
                        wait([oldest], timeout=self.poll_interval if waiting else None)
                        ready: list[Future[Result]] = [oldest] if oldest.done() else []
                    else:
                        arrived, _ = wait(
                            list(in_flight),
                            timeout=self.poll_interval if waiting else None,
                            return_when=FIRST_COMPLETED,
                        )
                        ready = sorted(arrived, key=lambda f: in_flight[f][0].number)
                    for done in self._collect(ready, in_flight, beats):
                        rejected, streak, stop = self._after(
                            done, callbacks, rejected, streak, stop
                        )
            except BaseException as exc:
                self._abandon(in_flight, exc)
                raise
        return self

    def _fill(
        self,
        evaluator: Evaluator,
        executor: Executor,
        n_trials: int | None,
        budget: float | None,
        deadline: float | None,
        slots: int,
        in_flight: dict[Future[Result], tuple[Trial, dict[str, float]]],
        beats: _Heartbeats,
        callbacks: Sequence[Callback],
        stop: bool,
        rejected: int,
        streak: int,
        in_order: bool = True,
    ) -> tuple[bool, bool, int, int]:
        """Reserve trials and submit them until every slot is busy; whether to stop, whether
        the last trials run in other workers, and the streak counters."""
        waiting = False
        while not stop and len(in_flight) < slots:
            if deadline is not None and time.monotonic() >= deadline:
                stop = True
                break
            step = self._next_step(evaluator, n_trials, budget)
            if step is None:
                stop = True
                break
            if not isinstance(step, tuple):  # _WAIT
                waiting = True
                break
            trial, free = step
            if trial.state.finished:  # answered without evaluation
                finished = [trial]
            else:
                beats.add(trial)
                try:
                    future = executor.submit(_evaluate, evaluator, trial.proposal)
                except BaseException as exc:  # Ctrl-C in an in-process evaluation
                    self._abandon({Future(): (trial, free)}, exc)
                    raise
                in_flight[future] = (trial, free)
                finished = []
                # a result taken here would come before older trials still running
                if not future.done() or (in_order and len(in_flight) > 1):
                    continue
                finished = self._collect([future], in_flight, beats)
            for done in finished:
                rejected, streak, stop = self._after(done, callbacks, rejected, streak, stop)
        return stop, waiting, rejected, streak

    def _next_step(
        self, evaluator: Evaluator, n_trials: int | None, budget: float | None
    ) -> tuple[Trial, dict[str, float]] | object | None:
        """Under the study's lock: catch up with the other workers, then reserve the next
        trial (a retry or the strategy's next proposal). ``None`` when the study is done,
        ``_WAIT`` when the last trials run elsewhere (their workers may die)."""
        with self._storage.locked(self._study_id, durable=False):
            self._sync()
            running = len(self._pending)
            if n_trials is not None and self._n_done + running >= n_trials:
                return _WAIT if running else None
            committed = 0.0
            if budget is not None:
                for trial in self._pending.values():
                    committed += evaluator.expected_cost(trial.arch, trial.fidelity) or 0.0
                if self._spent + committed >= budget - 1e-9:
                    return _WAIT if running else None
            proposal, retry_of = self._take_proposal()
            if budget is not None:
                cost = evaluator.expected_cost(proposal.arch, proposal.fidelity)
                if cost is not None and self._spent + committed + cost > budget + 1e-9:
                    self._held = (proposal, retry_of)  # first in line when resumed
                    return _WAIT if running else None
            return self._reserve(evaluator, proposal, retry_of)

    def _after(
        self,
        trial: Trial,
        callbacks: Sequence[Callback],
        rejected: int,
        streak: int,
        stop: bool,
    ) -> tuple[int, int, bool]:
        """Callbacks and the stopping rules after a finished trial of this process."""
        for callback in callbacks:
            callback(self, trial)
        rejected = (
            rejected + 1
            if trial.cost == 0
            and trial.fail_reason
            and (trial.fail_reason.startswith("infeasible before evaluation"))
            else 0
        )
        if rejected >= self.max_rejected_streak:
            self._raise_infeasible(rejected)
        streak = streak + 1 if trial.duplicate_of is not None else 0
        if streak >= self.max_duplicate_streak and not stop:
            logger.warning(
                "stopping: strategy %r proposed %d architectures in a row that were "
                "already evaluated (dedupe answers them for free)",
                self.strategy_name,
                streak,
            )
            stop = True
        return rejected, streak, stop

    def _collect(
        self,
        ready: Sequence[Future[Result]] | set[Future[Result]],
        in_flight: dict[Future[Result], tuple[Trial, dict[str, float]]],
        beats: _Heartbeats,
    ) -> list[Trial]:
        """Record the evaluations that are done (in one transaction); the trials, finished."""
        out: list[Trial] = []
        with self._storage.locked(self._study_id):
            self._record_results(ready, in_flight, beats, out)
            self._sync(mark_stale=False)
        return out

    def _record_results(
        self,
        ready: Sequence[Future[Result]] | set[Future[Result]],
        in_flight: dict[Future[Result], tuple[Trial, dict[str, float]]],
        beats: _Heartbeats,
        out: list[Trial],
    ) -> None:
        for future in ready:
            trial, free = in_flight.pop(future)
            beats.discard(trial)
            try:
                result = future.result()
            except KeyboardInterrupt:
                raise
            except WorkerLost as exc:  # the machine or process died, not the architecture
                logger.warning("trial %d lost its worker: %s", trial.number, exc)
                self._finish(trial, None, f"worker lost: {exc}", retryable=True, sync=False)
            except Exception as exc:  # the evaluation failed: record why, go on
                logger.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
                self._finish(trial, None, f"{type(exc).__name__}: {exc}", sync=False)
            else:
                self._finish(trial, self._with_free(result, free), None, sync=False)
            out.append(trial)

    def _with_free(
        self, result: Result, free: Mapping[str, float], extra: Mapping[str, float] | None = None
    ) -> Result:
        """The result with the constrained values known for free (part of the record)."""
        known = {c.metric: free[c.metric] for c in self.constraints if c.metric in free}
        return Result({**known, **result.metrics, **(extra or {})}, result.cost, result.seconds)

    def _abandon(
        self,
        in_flight: dict[Future[Result], tuple[Trial, dict[str, float]]],
        exc: BaseException,
    ) -> None:
        """On Ctrl-C or an error of the loop: the trials still running are FAILED, retryable
        (their proposal is evaluated again when the study resumes)."""
        reason = (
            "interrupted (KeyboardInterrupt)"
            if isinstance(exc, KeyboardInterrupt)
            else f"the search stopped: {type(exc).__name__}"
        )
        for future, (trial, _) in list(in_flight.items()):
            future.cancel()
            with contextlib.suppress(Exception):
                self._finish(trial, None, reason, retryable=True)
        in_flight.clear()

    def record_architecture(
        self,
        arch: Architecture,
        evaluator: Evaluator | None = None,
        *,
        extra: Mapping[str, float] | None = None,
        seconds: float = 0.0,
        failed: str | None = None,
    ) -> Trial:
        """Evaluate an architecture that a one-shot method derived and record it as a trial.

        Only for studies created by :func:`nasforge.oneshot.search` (``study.external``),
        whose architectures come from a supernet rather than from a strategy.

        Args:
            arch: The derived architecture.
            evaluator: Scores it (``None``: the study's stored evaluator).
            extra: Metrics the method measured (epoch, wall time so far, supernet loss,
                share of parameter-free edges...), recorded beside the evaluator's.
            seconds: Search time spent to derive ``arch``; added to the evaluation's.
            failed: Record the trial as FAILED with this reason, without evaluating it.

        Raises:
            UnsupportedOperationError: The study asks a strategy for its architectures.
        """
        if not self.external:
            raise UnsupportedOperationError(
                f"Study {self.name!r} asks strategy {self.strategy_name!r} for architectures; "
                "record_architecture() is for studies of one-shot methods (nasforge.oneshot)."
            )
        self.space.check(arch)
        evaluator = self._resolve_evaluator(evaluator)
        if failed is not None:
            with _live(self._worker):
                with self._storage.locked(self._study_id):
                    self._sync()
                    trial, _ = self._reserve(evaluator, Proposal(arch), None)
                trial.metrics = dict(extra or {})
                trial.seconds = float(seconds)
                self._finish(trial, None, failed)
            return trial
        with _live(self._worker):
            return self._run_one(
                evaluator, InProcessExecutor(), Proposal(arch), None, extra, float(seconds)
            )

    # -- driving the study by hand: ask / tell / enqueue_trial ---------------------------------
    def ask(self, evaluator: Evaluator | None = None) -> Trial:
        """Reserve the study's next trial and hand it out, RUNNING, to be evaluated by the
        caller and finished with :meth:`tell` (Optuna's ask-and-tell interface).

        The trial is taken exactly as :meth:`optimize` takes it (a retry first, then an
        enqueued architecture, then the strategy's next proposal) and recorded RUNNING in the
        storage, so a study driven by ``ask``/``tell`` resumes and replays like one driven by
        ``optimize``, and one call after the other gives the same trials as ``optimize`` with
        one slot. Proposals answered without evaluation (a constraint known for free rejects
        them, or ``dedupe`` knows them) are recorded and told on the way, as ``optimize``
        does; ``ask`` returns the first one that needs evaluating. While a trial is out, this
        process counts as its live worker (with a heartbeat in a persistent storage).

        Args:
            evaluator: Needed only when the study has constraints and no stored evaluator
                (its free metrics check them); stored with the study like ``optimize``'s.

        Returns:
            The RUNNING trial; ``trial.arch`` (and ``trial.fidelity``) is what to evaluate.
            The same object shows the outcome once told.

        Raises:
            UnsupportedOperationError: The study records a one-shot method's architectures.
            InvalidConfigError: Constraints without an evaluator to check them.

        Example:
            >>> import nasforge
            >>> study = nasforge.create_study(strategy="random", seed=0)
            >>> bench = nasforge.evaluators.create("tabular", dataset="cifar10")
            >>> for _ in range(3):
            ...     trial = study.ask()
            ...     _ = study.tell(trial, bench.evaluate(trial.arch))
            >>> [t.state.value for t in study.trials]
            ['COMPLETE', 'COMPLETE', 'COMPLETE']
        """
        self._refuse_external("ask()")
        chosen = self._evaluator_for_ask(evaluator)
        rejected = streak = 0
        while True:
            with self._storage.locked(self._study_id, durable=False):
                self._sync()
                proposal, retry_of = self._take_proposal()
                trial, free = self._reserve(chosen, proposal, retry_of)
            if not trial.state.finished:
                break
            rejected, streak, stop = self._after(trial, (), rejected, streak, False)
            if stop:
                raise InvalidConfigError(
                    f"Study {self.name!r}: strategy {self.strategy_name!r} proposed {streak} "
                    "architectures in a row that were already evaluated; the search has "
                    "converged (create the study without dedupe to evaluate them again)."
                )
        self._asked[trial.number] = free
        _LIVE_WORKERS.add(self._worker)
        if self._asked_beats is None:
            self._asked_beats = _Heartbeats(self).__enter__()
        self._asked_beats.add(trial)
        return trial

    def tell(
        self,
        trial: Trial | int,
        values: Result | Mapping[str, float] | float | Sequence[float] | None = None,
        state: TrialState | str = TrialState.COMPLETE,
        *,
        fail_reason: str | None = None,
    ) -> Trial:
        """Finish a trial handed out by :meth:`ask`: record its outcome and tell the strategy.

        Args:
            trial: The trial, or its number.
            values: What the evaluation measured: a :class:`~nasforge.trial.Result` (with its
                cost), a mapping of metric names to values (cost 1, one evaluation), or the
                objective values in the order of the study's objectives (a number for one).
                Wall time since ``ask`` is recorded unless a ``Result`` gives ``seconds``.
            state: ``COMPLETE`` (needs every objective's metric) or ``FAILED`` (values
                optional; the strategy is told the failure, which is not retried).
            fail_reason: Why it failed (``FAILED`` only).

        Returns:
            The finished trial (scored by the study's objectives and constraints).

        Raises:
            InvalidConfigError: A trial that does not exist, is already finished (a trial is
                told once), or was not asked by this ``Study`` object; values that lack an
                objective's metric or hold NaN for one; a state other than COMPLETE/FAILED.
        """
        number = self._asked_number(trial)
        final = _parse_state(state)
        local = self._trials[number]
        if final is TrialState.COMPLETE and values is None:
            raise InvalidConfigError(
                f"tell() needs the metrics of trial {number} to record it COMPLETE, e.g. "
                f"tell(trial, {{{self.objectives[0].metric!r}: 93.1}}); or tell(trial, "
                "state=TrialState.FAILED)."
            )
        if fail_reason is not None and final is TrialState.COMPLETE:
            raise InvalidConfigError("fail_reason is for state=TrialState.FAILED only.")
        result = None
        if values is not None:
            result = self._told_result(local, values, check=final is TrialState.COMPLETE)
            result = self._with_free(result, self._asked[number])
        reason = None if final is TrialState.COMPLETE else fail_reason or "failed (told)"
        self._finish(local, result, reason)
        self._close_asked(number)
        return self._trials[number]

    def enqueue_trial(
        self, arch: Architecture | str, fidelity: Mapping[str, Any] | None = None
    ) -> None:
        """Evaluate ``arch`` before the strategy's next proposals (Optuna's
        ``enqueue_trial``): the next trial that is not a retry takes it, in the order
        enqueued, in :meth:`optimize` and :meth:`ask` alike, and its result is told to the
        strategy like any other trial.

        The queue is stored with the study (``record.options["enqueued"]``, each entry with
        the number of trials the study held when it was added): enqueued architectures not
        evaluated yet survive a resume, workers sharing the study see them, and a replay knows
        which trials came from the queue, so it replays exactly.

        Args:
            arch: An architecture of the study's space, or its text.
            fidelity: The fidelity to evaluate it at (``None``: full).

        Raises:
            InvalidArchitectureError: ``arch`` is not an architecture of the study's space.
            UnsupportedOperationError: A one-shot study, or a storage that cannot update a
                study's options.

        Example:
            >>> import nasforge
            >>> study = nasforge.create_study(strategy="random", seed=0)
            >>> import numpy as np
            >>> mine = study.space.sample(np.random.default_rng(7))
            >>> study.enqueue_trial(str(mine))
            >>> study.ask().arch == mine
            True
        """
        self._refuse_external("enqueue_trial()")
        parsed = self.space.parse(arch) if isinstance(arch, str) else self.space.check(arch)
        entry: dict[str, Any] = {"arch": parsed.text}
        if fidelity:
            entry["fidelity"] = dict(fidelity)
            try:
                json.dumps(entry["fidelity"])
            except (TypeError, ValueError):
                raise InvalidConfigError(
                    f"fidelity {fidelity!r} cannot be stored; give numbers or strings, e.g. "
                    "{'epochs': 12}."
                ) from None
        with self._storage.locked(self._study_id):
            self._sync()
            self._refresh_queue()
            entry["after"] = len(self._trials)
            entries = [*self._record.options.get("enqueued", ()), entry]
            try:
                self._storage.update_options(self._study_id, {"enqueued": entries})
            except NotImplementedError:
                raise UnsupportedOperationError(
                    f"Storage {type(self._storage).__name__} cannot update a study's options, "
                    "which enqueue_trial() needs to record the queue."
                ) from None
            self._load_queue(entries)

    def _refuse_external(self, what: str) -> None:
        if self.external:
            raise UnsupportedOperationError(
                f"Study {self.name!r} records the architectures a one-shot method derives; "
                f"{what} is for studies that ask a strategy."
            )

    def _evaluator_for_ask(self, evaluator: Evaluator | None) -> Evaluator | None:
        """The evaluator whose free metrics check the constraints (``None``: not needed)."""
        if evaluator is not None:
            self._ask_with = self._resolve_evaluator(evaluator)
            self._strategy.free_metrics = self._ask_with.free_metrics
        elif self._ask_with is None and self.constraints:
            if self._record.evaluator is None:
                raise InvalidConfigError(
                    f"Study {self.name!r} has constraints ({', '.join(map(str, self.constraints))}"
                    "), checked on the evaluator's free metrics; pass the evaluator: "
                    "study.ask(evaluator)."
                )
            self._ask_with = self._resolve_evaluator(None)
        return self._ask_with

    def _asked_number(self, trial: Trial | int) -> int:
        """The number of a trial that this object's ask() handed out and is not told yet."""
        number = trial.number if isinstance(trial, Trial) else trial
        if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
            raise InvalidConfigError(
                f"tell() takes a trial from ask() or its number, got {type(trial).__name__}."
            )
        number = int(number)
        known = len(self._trials)
        if not 0 <= number < known:
            held = f"trials 0 to {known - 1}" if known else "no trials"
            raise InvalidConfigError(
                f"Study {self.name!r} has no trial {number} (it holds {held}); tell() finishes "
                "a trial that ask() returned."
            )
        local = self._trials[number]
        if isinstance(trial, Trial) and trial.arch != local.arch:
            raise InvalidConfigError(
                f"Trial {number} of study {self.name!r} is {local.arch.text!r}, not "
                f"{trial.arch.text!r}: this trial belongs to another study."
            )
        if number in self._asked:
            return number
        if local.state.finished:
            raise InvalidConfigError(
                f"Trial {number} of study {self.name!r} is already {local.state.value}; a trial "
                "is told once."
            )
        raise InvalidConfigError(
            f"Trial {number} of study {self.name!r} is being evaluated by worker "
            f"{local.worker}; tell() finishes the trials that this Study object's ask() "
            "returned."
        )

    def _told_result(
        self,
        trial: Trial,
        values: Result | Mapping[str, float] | float | Sequence[float],
        check: bool,
    ) -> Result:
        """``values`` as a Result (wall time since ask() unless given); with ``check``, every
        objective's metric must be there and not NaN."""
        started = trial.started_at or datetime.now(timezone.utc)
        elapsed = (datetime.now(timezone.utc) - started).total_seconds()
        metrics = self._told_metrics(values)
        if isinstance(values, Result):
            result = Result(metrics, float(values.cost), float(values.seconds) or elapsed)
        else:
            result = Result(metrics, 1.0, elapsed)
        if check:
            for objective in self.objectives:
                value = metrics.get(objective.metric)
                if value is None or math.isnan(value):
                    given = ", ".join(sorted(metrics)) or "none"
                    raise InvalidConfigError(
                        f"tell() got no value for objective {objective.metric!r} of trial "
                        f"{trial.number} (metrics given: {given}); give it, or tell the trial "
                        "with state=TrialState.FAILED."
                    )
        return result

    def _told_metrics(
        self, values: Result | Mapping[str, float] | float | Sequence[float]
    ) -> dict[str, float]:
        if isinstance(values, Result):
            values = values.metrics
        if isinstance(values, Mapping):
            pairs = list(values.items())
        else:
            numbers = [values] if isinstance(values, (int, float, np.number)) else list(values)
            if len(numbers) != len(self.objectives):
                raise InvalidConfigError(
                    f"tell() got {len(numbers)} value(s) for {len(self.objectives)} objective(s) "
                    f"({', '.join(str(o) for o in self.objectives)}); give one per objective or "
                    "a mapping of metric names to values."
                )
            pairs = [(o.metric, v) for o, v in zip(self.objectives, numbers, strict=True)]
        out: dict[str, float] = {}
        for name, value in pairs:
            if (
                not isinstance(name, str)
                or isinstance(value, bool)
                or not isinstance(value, (int, float, np.number))
            ):
                raise InvalidConfigError(
                    f"tell() takes metric names and numbers, got {name!r}: {value!r}."
                )
            out[name] = float(value)
        return out

    def _close_asked(self, number: int) -> None:
        self._asked.pop(number, None)
        beats = self._asked_beats
        if beats is not None:
            with beats.lock:
                beats.numbers.discard(number)
        if not self._asked:
            if beats is not None:
                beats.__exit__(None, None, None)
            self._asked_beats = None
            _LIVE_WORKERS.discard(self._worker)

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

    def _raise_infeasible(self, count: int) -> None:
        parts = []
        for c in self.constraints:
            if c in self._tightest:
                word = "smallest" if c.upper else "largest"
                parts.append(f"{c}: the {word} {c.metric} seen was {self._tightest[c]:g}")
        raise InfeasibleConstraintError(
            f"Study {self.name!r}: {count} proposals in a row violated the constraints before "
            f"evaluation ({'; '.join(parts)}). Loosen the bound or change the strategy."
        )

    def _take_proposal(self) -> tuple[Proposal, int | None]:
        """The next proposal: a held one, a retry, an enqueued architecture, or a new one from
        the strategy (in the order a replay finds them: see ``_next_proposal``)."""
        self._refresh_queue()
        if self._held is not None and (self._held[1] is not None or self._due() is None):
            held, self._held = self._held, None
            return held
        retry_of = self._retry[0].number if self._retry else None
        return self._next_proposal(retry_of), retry_of

    def _reserve(
        self, evaluator: Evaluator | None, proposal: Proposal, retry_of: int | None
    ) -> tuple[Trial, dict[str, float]]:
        """Record ``proposal`` as the study's next trial (under the study's lock, right after
        a sync); answered at once when a constraint rejects it or ``dedupe`` knows it."""
        trial = Trial(
            number=-1,
            arch=proposal.arch,
            fidelity=None if proposal.fidelity is None else dict(proposal.fidelity),
            retry_of=retry_of,
            worker=self._worker,
            started_at=datetime.now(timezone.utc),
            asked_after=self._told,
        )
        try:
            rejection = None
            free: dict[str, float] = {}
            if self.constraints and evaluator is not None:
                free = dict(evaluator.free_metrics(proposal.arch))
                rejection = self._reject(free)
                if rejection is not None:  # recorded, never evaluated, at no cost
                    trial.state = TrialState.FAILED
                    trial.metrics = free
                    trial.fail_reason = rejection
                    trial.finished_at = trial.started_at
            twin = None
            if self.dedupe and rejection is None:
                twin = self._seen.get(self._key(proposal))
            if twin is not None:  # answered from the record, at no cost
                trial.state = twin.state
                trial.metrics = dict(twin.metrics)
                trial.fail_reason = twin.fail_reason
                trial.duplicate_of = twin.number
                trial.finished_at = trial.started_at
            number = self._storage.add_trial(self._study_id, trial)
        except BaseException:
            # the strategy was asked but nothing was recorded: rebuild it from the record
            self._rebuild()
            raise
        if number != len(self._trials):
            raise StudyConflictError(
                f"Another process wrote trial {len(self._trials)} of study {self.name!r} "
                "without taking the study's lock; is an older nasforge running on it?"
            )
        trial.number = number
        self._trials.append(trial)
        if trial.state.finished:
            self._finished[self._told + 1] = dataclasses.replace(trial, finish_seq=self._told + 1)
            self._tell_until(self._told + 1)
        else:
            self._pending[number] = trial
            self._mine.add(number)
        return trial, free

    def _rebuild(self) -> None:
        """Forget the replayed state and replay the stored trials again."""
        mine = self._mine
        fresh = Study(self._record, self._storage)
        for name, value in vars(fresh).items():
            if name not in ("_worker", "_asked", "_asked_beats", "_ask_with"):
                setattr(self, name, value)
        self._mine = {n for n in mine if n < len(self._trials)}

    def _run_one(
        self,
        evaluator: Evaluator,
        executor: Executor,
        proposal: Proposal,
        retry_of: int | None,
        extra: Mapping[str, float] | None = None,
        seconds: float = 0.0,
    ) -> Trial:
        """Reserve ``proposal`` and evaluate it at once (one trial, in this thread)."""
        with self._storage.locked(self._study_id):
            self._sync()
            trial, free = self._reserve(evaluator, proposal, retry_of)
        if trial.state.finished:
            return trial
        try:
            with _Heartbeats(self) as beats:
                beats.add(trial)
                result = executor.submit(_evaluate, evaluator, proposal).result()
        except KeyboardInterrupt:
            self._finish(trial, None, "interrupted (KeyboardInterrupt)", retryable=True)
            raise
        except Exception as exc:  # the evaluation failed: record why, go on
            logger.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
            self._finish(trial, None, f"{type(exc).__name__}: {exc}")
        else:
            result = self._with_free(result, free, extra)
            self._finish(trial, Result(result.metrics, result.cost, result.seconds + seconds), None)
        return trial

    def _finish(
        self,
        trial: Trial,
        result: Result | None,
        reason: str | None,
        *,
        retryable: bool = False,
        sync: bool = True,
    ) -> None:
        """Write the outcome of a trial of this process, then read it back in the study's
        order of finishes (which tells the strategy)."""
        done = dataclasses.replace(trial, finished_at=datetime.now(timezone.utc))
        if result is not None:
            done.metrics = dict(result.metrics)
            done.cost = float(result.cost)
            done.seconds = float(result.seconds)
            if self._scores(done.metrics) is None:
                missing = [o.metric for o in self.objectives if o.metric not in done.metrics]
                reason = f"the evaluator returned no value for objective {', '.join(missing)}"
        done.state = TrialState.FAILED if reason is not None else TrialState.COMPLETE
        done.fail_reason = reason
        done.retryable = retryable
        self._mine.discard(trial.number)
        if not self._storage.finish_trial(self._study_id, done):
            logger.warning(
                "trial %d was declared dead by another worker (no heartbeat for %g s) and is "
                "retried; this result is dropped",
                trial.number,
                self.heartbeat_grace,
            )
        if sync:
            self._sync()

    def _resolve_evaluator(self, evaluator: Evaluator | None) -> Evaluator:
        stored = self._record.evaluator
        if evaluator is None:
            if stored is None:
                raise InvalidConfigError(
                    f"Study {self.name!r} has no evaluator yet; pass one to optimize(), e.g. "
                    "nasforge.evaluators.create('tabular', dataset='cifar10')."
                )
            params = dict(stored)
            evaluator = evaluators.create(params.pop("name"), **params)
        else:
            spec = evaluator.spec()
            if stored is not None and spec is not None and spec != stored:
                raise StudyConflictError(
                    f"Study {self.name!r} was run with evaluator {stored}; this call passes "
                    f"{spec}. Use a new study name for another evaluator."
                )
            if stored is None and spec is not None:
                self._storage.set_evaluator(self._study_id, spec)
                self._record = _replace(self._record, evaluator=spec)
        check_evaluator(evaluator, self.space.name, self.objectives, self.constraints)
        return evaluator

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


class _ExternalProposals(Strategy):
    """The stand-in strategy of a one-shot study: architectures come from the method."""

    requires = ()

    def ask(self) -> Proposal:
        raise UnsupportedOperationError(
            "This study records the architectures a one-shot method derives; run it with "
            "nasforge.oneshot.search(...), not optimize()."
        )


def check_evaluator(
    evaluator: Evaluator,
    space: str,
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
) -> None:
    """Refuse an evaluator that scores another space or lacks an objective's or a
    constraint's metric."""
    if evaluator.space is not None and evaluator.space != space:
        raise InvalidConfigError(
            f"Evaluator {evaluator!r} scores {evaluator.space!r} architectures, but the study "
            f"searches space {space!r}."
        )
    for objective in objectives:
        if objective.metric not in evaluator.metrics:
            raise UnknownNameError(
                f"objective metric (of {evaluator!r})", objective.metric, evaluator.metrics
            )
    known = set(evaluator.metrics) | set(evaluator.free_metric_names)
    for constraint in constraints:
        if constraint.metric not in known:
            raise UnknownNameError(
                f"constraint metric (of {evaluator!r})", constraint.metric, known
            )


def _improves(trial: Trial, best: Trial | None) -> bool:
    """Whether ``trial`` is a better candidate than ``best``: scored (COMPLETE, feasible),
    at full fidelity, and strictly better (the earliest wins ties)."""
    if trial.score is None or trial.fidelity:
        return False
    return best is None or best.score is None or trial.score > best.score


def trial_row(trial: Trial) -> dict[str, Any]:
    """A flat dictionary describing ``trial`` (for tables and CSV files)."""
    row: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.value,
        "arch": trial.arch.text,
        "score": trial.score,
        "cost": trial.cost,
        "seconds": trial.seconds,
        "retry_of": trial.retry_of,
        "fail_reason": trial.fail_reason,
    }
    row.update(trial.metrics)
    return row


def _evaluate(evaluator: Evaluator, proposal: Proposal) -> Result:
    start = time.perf_counter()
    result = evaluator.evaluate(proposal.arch, proposal.fidelity)
    if result.seconds:
        return result
    return Result(result.metrics, result.cost, time.perf_counter() - start)


def _parse_state(state: TrialState | str) -> TrialState:
    """COMPLETE or FAILED, from the enum or its name."""
    try:
        parsed = state if isinstance(state, TrialState) else TrialState(str(state).upper())
    except ValueError:
        parsed = None
    if parsed is None or parsed is TrialState.RUNNING:
        raise InvalidConfigError(
            f"tell() records a trial COMPLETE or FAILED, got state {state!r}; use "
            "TrialState.COMPLETE or TrialState.FAILED."
        )
    return parsed


def _fidelity(proposal: Proposal) -> dict[str, Any] | None:
    return None if not proposal.fidelity else dict(proposal.fidelity)


def _replace(record: StudyRecord, **changes: Any) -> StudyRecord:
    import dataclasses

    return dataclasses.replace(record, **changes)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextlib.contextmanager
def _live(worker: str) -> Iterator[None]:
    _LIVE_WORKERS.add(worker)
    try:
        yield
    finally:
        _LIVE_WORKERS.discard(worker)


class _Heartbeats:
    """One thread that beats, every ``heartbeat_interval`` seconds, for each trial this
    process is evaluating (persistent storages only)."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.numbers: set[int] = set()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, trial: Trial) -> None:
        with self.lock:
            self.numbers.add(trial.number)

    def discard(self, trial: Trial) -> None:
        with self.lock:
            self.numbers.discard(trial.number)

    def _beat(self) -> None:
        study = self.study
        while not self.stop.wait(study.heartbeat_interval):
            with self.lock:
                numbers = sorted(self.numbers)
            for number in numbers:
                try:
                    study.storage.heartbeat(study._study_id, number)
                except Exception:  # a missed beat is not fatal; the next one may succeed
                    logger.debug("heartbeat failed", exc_info=True)

    def __enter__(self) -> _Heartbeats:
        if self.study.storage.persistent:
            self.thread = threading.Thread(target=self._beat, name="nasforge-heartbeat")
            self.thread.daemon = True
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


class _Default(enum.Enum):
    """The default of ``create_study(seed=...)``: 0, or a strategy object's own seed."""

    SEED = 0

    def __repr__(self) -> str:
        return "0"


_DEFAULT_SEED = _Default.SEED


# -- public constructors ----------------------------------------------------------------------
def create_study(
    *,
    space: str | SearchSpace | None = None,
    strategy: str | Strategy = "random",
    seed: int | _Default | None = _DEFAULT_SEED,
    storage: str | Storage | None = None,
    study_name: str | None = None,
    objectives: Sequence[str | Objective] = ("valid_acc:max",),
    strategy_params: Mapping[str, Any] | None = None,
    space_params: Mapping[str, Any] | None = None,
    evaluator: Evaluator | None = None,
    dedupe: bool = False,
    constraints: Sequence[str | Constraint] = (),
    load_if_exists: bool = False,
    max_retries: int = 3,
    heartbeat_grace: float = 60.0,
) -> Study:
    """Create a study (or, with ``load_if_exists``, open one with the same settings).

    Args:
        space: Registry name of the search space (see ``nasforge.spaces.names()``), or a
            :class:`~nasforge.spaces.SearchSpace` of a registered class (``space_params``
            then say how it was built). ``None``: the strategy object's space, else
            ``"nb201"``.
        strategy: Registry name of the strategy (see ``nasforge.strategies.names()``), or a
            :class:`~nasforge.strategies.Strategy` of a registered class built with an
            integer seed on the study's space. The study records its registry name, seed and
            ``params()`` and builds its own copy from them (as a resume does); the object
            itself is not asked, and ``strategy_params`` must be left out.
        seed: Seed of the strategy; ``None`` draws one, which is stored with the study. 0 by
            default, or the strategy object's seed (a different one is refused).
        storage: ``None`` (memory), a URL such as ``"sqlite:///study.db"``, or a storage.
        study_name: Name of the study in the storage; generated when ``None``.
        objectives: Metrics to optimise, first is primary, e.g. ``["valid_acc:max"]``.
        strategy_params: Keyword arguments of the strategy (``{"population_size": 20}``).
        space_params: Keyword arguments of the space.
        evaluator: The evaluator the study will use. Optional here (``optimize`` takes it),
            but given here it is checked before anything is written: it must score this
            space and return every objective's metric, and it is stored with the study.
        dedupe: Answer proposals that are functionally identical to an evaluated
            architecture from the record, at no cost (see :class:`Study`).
        constraints: Bounds such as ``"params_M<=1.0"`` or ``"latency_ms[edgegpu]<=5"``. A
            bound on a metric the evaluator knows without evaluating (parameters, FLOPs, table
            latency) is checked before evaluation: the proposal is recorded as FAILED at no
            cost. Others are checked after: the trial is COMPLETE but never a best and is told
            to the strategy without a score.
        load_if_exists: Open the study if one with this name and the same settings exists
            (workers started together may all call this: one creates, the others open).
        max_retries: How many times the proposal of a trial whose worker died is evaluated
            again before it counts as FAILED (stored with the study: every worker agrees).
        heartbeat_grace: Seconds without a heartbeat after which another worker declares a
            RUNNING trial dead (same host: at once when its process is gone).

    Raises:
        StudyConflictError: A study of that name exists (with other settings, or
            ``load_if_exists`` is false).
        UnknownNameError, InvalidConfigError: A name or parameter is not valid; a space or
            strategy object that the record could not rebuild (unregistered class, no
            seed, parameters a persistent storage cannot hold), or a strategy object built
            on another space.

    Example:
        >>> import nasforge
        >>> study = nasforge.create_study(strategy="regularized-evolution", seed=0)
        >>> ev = nasforge.evaluators.create("tabular", dataset="cifar10")
        >>> study.optimize(ev, n_trials=50).best_trial.metrics["valid_acc"] > 85
        True

        Objects instead of names give the same study:

        >>> space = nasforge.spaces.create("nb201")
        >>> evolution = nasforge.strategies.create("regularized-evolution", space, seed=0)
        >>> twin = nasforge.create_study(strategy=evolution).optimize(ev, n_trials=50)
        >>> [t.arch for t in twin.trials] == [t.arch for t in study.trials]
        True
    """
    seed_given = not isinstance(seed, _Default)
    space, space_params, space_obj = space_spec(space, space_params, strategy)
    strategy, strategy_params, seed = strategy_spec(
        strategy,
        strategy_params,
        0 if isinstance(seed, _Default) else seed,
        seed_given,
        space_obj,
        space_params,
    )
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint32)[0])
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer, got {seed!r}.")
    parsed = tuple(Objective.parse(o) for o in objectives)
    if not parsed:
        raise InvalidConfigError("Give at least one objective, e.g. 'valid_acc:max'.")
    # build once to validate names and parameters before anything is written
    factory = strategies.get(strategy)
    params = _with_objective_count(strategy, strategy_params, len(parsed))
    if params.get("n_objectives", len(parsed)) != len(parsed):
        raise InvalidConfigError(
            f"Strategy {strategy!r} was built for {params['n_objectives']} objectives; the "
            f"study has {len(parsed)} ({', '.join(map(str, parsed))})."
        )
    if isinstance(factory, type):
        params = check_params(factory, params)
    factory(space_obj, seed=int(seed), **params)
    parsed_constraints = tuple(Constraint.parse(c) for c in constraints)
    options = _options(dedupe, parsed_constraints)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}.")
    if max_retries != Study.max_retries:
        options["max_retries"] = max_retries
    if not isinstance(heartbeat_grace, (int, float)) or not heartbeat_grace > 0:
        raise InvalidConfigError(
            f"heartbeat_grace must be a positive number of seconds, got {heartbeat_grace!r}."
        )
    if heartbeat_grace != Study.heartbeat_grace:
        options["heartbeat_grace"] = float(heartbeat_grace)
    spec = None
    if evaluator is not None:
        check_evaluator(evaluator, space, parsed, parsed_constraints)
        spec = evaluator.spec()
    store = get_storage(storage)
    bad = unrecordable(params) if store.persistent else []
    if bad:
        kinds = ", ".join(f"{k}: {type(params[k]).__name__}" for k in bad)
        raise InvalidConfigError(
            f"Parameters of strategy {strategy!r} that a storage cannot record ({kinds}), so "
            "the study could not be resumed; give recordable values (numbers, strings, "
            "lists) or use the memory storage."
        )
    name = study_name or f"{space}-{strategy}-seed{seed}-{uuid.uuid4().hex[:8]}"
    record = StudyRecord(
        name=name,
        space=space,
        strategy=strategy,
        seed=int(seed),
        objectives=tuple(str(o) for o in parsed),
        strategy_params=params,
        space_params=space_params,
        evaluator=spec,
        options=options,
    )
    existing = store.get_study(name)
    if existing is None:
        try:
            return Study(store.create_study(record), store)
        except StudyConflictError:  # another worker created it a moment ago
            existing = store.get_study(name)
            if existing is None:
                raise
    diffs = existing.differences(record)
    if diffs:
        raise StudyConflictError(
            f"Study {name!r} already exists with other settings ({'; '.join(diffs)}). "
            "Use another study name, or the stored settings to resume it."
        )
    if not load_if_exists:
        raise StudyConflictError(
            f"Study {name!r} already exists; resume it with nasforge.load_study({name!r}, "
            "storage) or create_study(..., load_if_exists=True), or choose another name."
        )
    return Study(existing, store)


def _with_objective_count(
    strategy: str, params: Mapping[str, Any], n_objectives: int
) -> dict[str, Any]:
    """``params`` plus ``n_objectives`` for strategies that take it (multi-objective ones)."""
    out = dict(params)
    factory = strategies.get(strategy)
    if "n_objectives" not in out and "n_objectives" in inspect.signature(factory).parameters:
        out["n_objectives"] = n_objectives
    return out


def _options(dedupe: bool, constraints: Sequence[Constraint]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if dedupe:
        options["dedupe"] = True
    if constraints:
        options["constraints"] = [str(c) for c in constraints]
    return options


def load_study(study_name: str, storage: str | Storage) -> Study:
    """Open a stored study and replay its trials, ready to :meth:`Study.optimize` further.

    Raises:
        UnknownNameError: No study of that name (the message lists the stored ones).
        StorageError: The storage cannot be opened or is not a nasforge database.
    """
    store = get_storage(storage, create=False)
    record = store.get_study(study_name)
    if record is None:
        names = [r.name for r in store.list_studies()]
        if not names:
            raise StorageError(f"No study named {study_name!r}: the storage holds no studies.")
        raise UnknownNameError("study", study_name, names)
    return Study(record, store)
