"""The search loop of a study: reserving, evaluating and recording trials."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TypeVar, cast

from nasforge import evaluators
from nasforge.architecture import Architecture
from nasforge.errors import (
    EvaluationFailuresError,
    InfeasibleConstraintError,
    InvalidConfigError,
    StudyConflictError,
    UnsupportedOperationError,
)
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import Executor, WorkerLost
from nasforge.execution.inprocess import InProcessExecutor
from nasforge.study._base import StudyBase
from nasforge.study._free import bound_free_answers, is_rejection
from nasforge.study._reports import store_reports, trial_context
from nasforge.study._support import (
    _WAIT,
    _evaluate,
    _Heartbeats,
    _live,
    _nothing,
    _replace,
    check_evaluator,
    stop_reason,
)
from nasforge.trial import Proposal, Result, Trial, TrialState

if TYPE_CHECKING:
    from nasforge.study._study import Study

Callback = Callable[["Study", Trial], None]
_L = TypeVar("_L", bound="StudyLoop")

logger = logging.getLogger("nasforge.study")


class StudyLoop(StudyBase):
    """The search loop of a :class:`Study` (``optimize`` and what it shares with ``ask``)."""

    #: Free answers (``dedupe`` twins and constraint rejections, recorded at no cost) allowed
    #: in a row when they mix both kinds, and in all before :attr:`max_free_per_paid` applies.
    max_free_streak: int = 1000
    #: Beyond the first :attr:`max_free_streak`, at most this many free answers per paid
    #: evaluation; more means the strategy rarely finds a new feasible architecture and the
    #: search stops with an error naming what to change.
    max_free_per_paid: int = 20

    # -- the search loop --------------------------------------------------------------------
    def optimize(
        self: _L,
        evaluator: Evaluator | None = None,
        *,
        n_trials: int | None = None,
        budget: float | None = None,
        timeout: float | None = None,
        executor: Executor | None = None,
        callbacks: Sequence[Callback] = (),
        in_order: bool = True,
    ) -> _L:
        """Run the search until the study holds ``n_trials`` finished trials or has spent
        ``budget``.

        Both limits count the whole study, not this call: resuming an interrupted study with
        the same call finishes the remaining trials.

        Args:
            evaluator: Scores architectures. ``None`` rebuilds the evaluator the study was
                first optimised with. A different evaluator than the stored one is refused.
            n_trials: Stop once this many trials are finished (COMPLETE, STOPPED by the
                study's stopping rule, or FAILED for good).
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
        from nasforge.study._create import check_limits

        check_limits(n_trials=n_trials, budget=budget, timeout=timeout)
        evaluator = self._resolve_evaluator(evaluator)
        self._strategy.free_metrics = evaluator.free_metrics
        executor = executor or InProcessExecutor()
        slots = max(1, int(getattr(executor, "max_workers", 1) or 1))
        deadline = None if timeout is None else time.monotonic() + timeout
        in_flight: dict[Future[Result], tuple[Trial, dict[str, float]]] = {}
        streak = rejected = 0
        self._failed_streak = 0
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
                    context = trial_context(self, trial, evaluator, executor)
                    future = executor.submit(_evaluate, evaluator, trial.proposal, context)
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
            callback(cast("Study", self), trial)
        was_rejected = is_rejection(trial)
        failed = trial.state is TrialState.FAILED and not was_rejected and not trial.retryable
        self._failed_streak = self._failed_streak + 1 if failed else 0
        if self._failed_streak >= self.max_failed_streak:
            count, self._failed_streak = self._failed_streak, 0
            raise EvaluationFailuresError(
                f"The last {count} trials all failed in the evaluator (the last: "
                f"{trial.fail_reason}); the search stops. Fix the evaluator (the failed trials "
                "and their reasons are recorded: nasforge show), then resume the study."
            )
        rejected = rejected + 1 if was_rejected else 0
        if rejected >= self.max_rejected_streak:
            self._raise_infeasible(rejected)
        streak = streak + 1 if trial.duplicate_of is not None else 0
        converged = bound_free_answers(self, trial, was_rejected)
        if streak >= self.max_duplicate_streak and converged is None:
            converged = (
                f"{streak} proposals in a row were architectures already evaluated (dedupe "
                "answers them for free)"
            )
        if converged is not None and not stop:
            logger.warning("stopping: strategy %r: %s", self.strategy_name, converged)
            self._converged = converged
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
        return dataclasses.replace(result, metrics={**known, **result.metrics, **(extra or {})})

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

    def _tightest_seen(self) -> str:
        parts = []
        for c in self.constraints:
            if c in self._tightest:
                word = "smallest" if c.upper else "largest"
                parts.append(f"{c}: the {word} {c.metric} seen was {self._tightest[c]:g}")
        return "; ".join(parts)

    def _raise_infeasible(self, count: int) -> None:
        raise InfeasibleConstraintError(
            f"Study {self.name!r}: {count} proposals in a row violated the constraints before "
            f"evaluation ({self._tightest_seen()}). Loosen the bound or change the strategy."
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
        fresh = type(self)(self._record, self._storage)
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
                context = trial_context(self, trial, evaluator, executor)
                result = executor.submit(_evaluate, evaluator, proposal, context).result()
        except KeyboardInterrupt:
            self._finish(trial, None, "interrupted (KeyboardInterrupt)", retryable=True)
            raise
        except Exception as exc:  # the evaluation failed: record why, go on
            logger.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
            self._finish(trial, None, f"{type(exc).__name__}: {exc}")
        else:
            result = self._with_free(result, free, extra)
            self._finish(trial, dataclasses.replace(result, seconds=result.seconds + seconds), None)
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
        stopped = result is not None and result.stopped
        if result is not None:
            done.metrics = dict(result.metrics)
            done.cost = float(result.cost)
            done.seconds = float(result.seconds)
            store_reports(self, trial, result)
            if stopped:
                reason = reason or stop_reason(result, self._record.options.get("stopping"))
            elif self._scores(done.metrics) is None:
                missing = [o.metric for o in self.objectives if o.metric not in done.metrics]
                reason = f"the evaluator returned no value for objective {', '.join(missing)}"
        if stopped:
            done.state = TrialState.STOPPED
        else:
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
