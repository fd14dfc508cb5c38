"""Helpers of the study: constants, the heartbeat thread, evaluator checks, trial rows."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nasforge import strategies
from nasforge.constraints import Constraint
from nasforge.errors import (
    InvalidConfigError,
    UnknownNameError,
    UnsupportedOperationError,
)
from nasforge.evaluators.base import Evaluator
from nasforge.reporting import TrialContext, TrialStopped
from nasforge.storage import StudyRecord
from nasforge.strategies.base import Strategy
from nasforge.trial import Objective, Proposal, Result, Trial, TrialState

if TYPE_CHECKING:
    from nasforge.study._base import StudyBase

logger = logging.getLogger("nasforge.study")


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


def _evaluate(
    evaluator: Evaluator, proposal: Proposal, context: TrialContext | None = None
) -> Result:
    """Evaluate ``proposal`` (where the executor runs it). An evaluator that takes a context
    gets ``context``; its reports come back in ``Result.reports``, and an evaluation ended
    by :class:`~nasforge.reporting.TrialStopped` becomes a stopped result with the last
    reported metrics."""
    start = time.perf_counter()
    if context is None:
        result = evaluator.evaluate(proposal.arch, proposal.fidelity)
    else:
        try:
            taking: Any = evaluator  # evaluate(arch, fidelity, context=...): takes_context
            result = taking.evaluate(proposal.arch, proposal.fidelity, context=context)
        except TrialStopped:
            seconds = time.perf_counter() - start
            cost = _stopped_cost(evaluator, proposal, context, seconds)
            result = Result(context.last, cost, seconds, stopped=True)
        # once the rule said stop, the trial is STOPPED however the evaluation ended
        stopped = result.stopped or context.stopped
        metrics = result.metrics if result.metrics or not stopped else context.last
        reports = {s: dict(v) for s, v in context.reports.items()} or result.reports
        result = dataclasses.replace(result, metrics=metrics, reports=reports, stopped=stopped)
    if result.seconds:
        return result
    return dataclasses.replace(result, seconds=time.perf_counter() - start)


def _stopped_cost(
    evaluator: Evaluator, proposal: Proposal, context: TrialContext, seconds: float
) -> float:
    """What an evaluation that raised TrialStopped cost: its seconds for an evaluator that
    counts seconds, else its full cost times the share of ``context.max_step`` reached."""
    if evaluator.cost_unit == "seconds":
        return seconds
    full = evaluator.expected_cost(proposal.arch, proposal.fidelity)
    full = 1.0 if full is None else float(full)
    last = context.last_step
    if context.max_step and last is not None:
        return full * min(1.0, last / context.max_step)
    return full


def stop_reason(result: Result, rule: Mapping[str, Any] | None) -> str:
    """What a STOPPED trial records as its reason: the rule and the last step reported."""
    steps = sorted(result.reports or {})
    where = f" at step {steps[-1]}" if steps else ""
    by = f" by the {rule['name']!r} rule" if rule else ""
    return f"stopped early{where}{by}"


def _parse_state(state: TrialState | str) -> TrialState:
    """COMPLETE, FAILED or STOPPED, from the enum or its name."""
    try:
        parsed = state if isinstance(state, TrialState) else TrialState(str(state).upper())
    except ValueError:
        parsed = None
    if parsed is None or parsed is TrialState.RUNNING:
        raise InvalidConfigError(
            f"tell() records a trial COMPLETE, FAILED or STOPPED, got state {state!r}; use "
            "TrialState.COMPLETE, TrialState.FAILED or TrialState.STOPPED."
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

    def __init__(self, study: StudyBase) -> None:
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


def _with_objective_count(
    strategy: str, params: Mapping[str, Any], n_objectives: int
) -> dict[str, Any]:
    """``params`` plus ``n_objectives`` for strategies that take it (multi-objective ones)."""
    out = dict(params)
    factory = strategies.get(strategy)
    if "n_objectives" not in out and "n_objectives" in inspect.signature(factory).parameters:
        out["n_objectives"] = n_objectives
    return out
