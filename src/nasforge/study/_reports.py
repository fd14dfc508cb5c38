"""A study's side of intermediate reports: the context a reporting evaluator gets, and the
reports that come back with a result."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nasforge.errors import UnsupportedOperationError
from nasforge.evaluators.base import Evaluator
from nasforge.execution.base import Executor
from nasforge.execution.inprocess import InProcessExecutor
from nasforge.reporting import TrialContext
from nasforge.trial import Direction, Result, Trial, TrialState

if TYPE_CHECKING:
    from nasforge.study._base import StudyBase

__all__ = ["make_context", "store_reports", "trial_context"]

logger = logging.getLogger("nasforge.study")


def store_reports(study: StudyBase, trial: Trial, result: Result) -> None:
    """Store the reports that came back with a result (those of a process that could not
    reach the storage; the others were stored as they came, and rewriting them changes
    nothing)."""
    if not result.reports:
        return
    try:
        study.storage.add_reports(study.record.study_id or 0, trial.number, result.reports)
    except UnsupportedOperationError:
        logger.debug("storage %r keeps no reports", study.storage)


def trial_context(
    study: StudyBase, trial: Trial, evaluator: Evaluator, executor: Executor
) -> TrialContext | None:
    """The context of ``trial`` for an evaluator that takes one (``None`` otherwise):
    reports go to the study's storage and decisions come from its stopping rule, wherever
    the executor runs the evaluation (see :mod:`nasforge.stopping._sink`)."""
    if not evaluator.takes_context:
        return None
    return make_context(study, trial, in_process=isinstance(executor, InProcessExecutor))


def make_context(study: StudyBase, trial: Trial, *, in_process: bool = True) -> TrialContext:
    """A context for ``trial`` whose reports go to the study's storage and whose decisions
    come from its stopping rule; ``in_process``: used in this process (else it carries the
    storage's URL, or a snapshot of the reports for a study in memory)."""
    from nasforge.stopping._sink import StudySink

    storage = study.storage
    study_id = study.record.study_id or 0
    objective = study.objectives[0]
    rule = study.record.options.get("stopping")
    settings: dict[str, Any] = {
        "study_id": study_id,
        "metric": objective.metric,
        "maximize": objective.direction is Direction.MAXIMIZE,
        "rule": rule,
    }
    url = getattr(storage, "_source", None) if storage.persistent else None
    if in_process:
        sink = StudySink(storage=storage, **settings)
    elif url is not None:
        sink = StudySink(url=url, **settings)
    else:  # a study in memory: what the others reported so far travels with the trial
        snapshot = None
        if rule is not None:
            complete = {t.number for t in study.trials if t.state is TrialState.COMPLETE}
            snapshot = (storage.get_reports(study_id), frozenset(complete))
        sink = StudySink(snapshot=snapshot, **settings)
    return TrialContext(trial.number, trial.arch, trial.fidelity, sink=sink)
