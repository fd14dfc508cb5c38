"""Bounds on the trials a study answers without cost (``dedupe`` twins and constraint
rejections): they spend nothing, so without a bound a strategy that keeps proposing known or
infeasible architectures would never reach a budget."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from nasforge.architecture import Architecture
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError
from nasforge.trial import Trial

if TYPE_CHECKING:
    from nasforge.study._loop import StudyLoop


def is_rejection(trial: Trial) -> bool:
    """Whether a constraint rejected the trial before evaluation (recorded at no cost)."""
    return bool(
        trial.cost == 0
        and trial.fail_reason
        and trial.fail_reason.startswith("infeasible before evaluation")
    )


@dataclasses.dataclass
class _FreeCounts:
    """Free answers (twins and rejections) and paid trials, for bounding the former."""

    paid: int = 0
    total: int = 0
    run: int = 0
    run_rejected: int = 0
    rejected: int = 0
    proposed: set[Architecture] = dataclasses.field(default_factory=set)


def bound_free_answers(study: StudyLoop, trial: Trial, was_rejected: bool) -> str | None:
    """Bound the trials answered without cost (``dedupe`` twins, constraint rejections).

    They are recorded but spend nothing, so a strategy that keeps proposing known or
    infeasible architectures would never reach a budget. Three limits, whatever mix of
    twins and rejections: the space used up (``dedupe`` on a space of known
    :attr:`~nasforge.spaces.SearchSpace.size` whose every architecture was proposed),
    :attr:`max_free_streak` free answers in a row that mix twins and rejections (runs of
    one kind have their own limits), and more than
    ``max_free_streak + max_free_per_paid * paid`` free answers in all.

    Returns:
        Why the search should stop, when the last limit is passed by twins alone (no
        constraint ever rejected a proposal): the strategy has converged on what it already
        evaluated, which is the end of a search (deduplication is on by default), not an
        error; ``None`` otherwise.
    """
    free = trial.cost == 0 and (was_rejected or trial.duplicate_of is not None)
    counts = _free_counts(study, exclude=trial.number)
    if trial.fidelity is None:
        counts.proposed.add(trial.arch)
    if not free:
        counts.paid += 1
        counts.run = counts.run_rejected = 0
        return None
    counts.total += 1
    counts.run += 1
    counts.run_rejected += was_rejected
    counts.rejected += was_rejected
    size = study.space.size if study.dedupe else None
    if size is not None and len(counts.proposed) >= size:
        _raise_exhausted(study, size, counts)
    mixed = 0 < counts.run_rejected < counts.run
    if mixed and counts.run >= study.max_free_streak:
        _raise_free(study, f"{counts.run} proposals in a row", counts.run_rejected, counts)
    if counts.total > study.max_free_streak + study.max_free_per_paid * counts.paid:
        if counts.rejected == 0:
            return (
                f"{counts.total} proposals for {counts.paid} evaluations were functional twins "
                "of evaluated architectures (dedupe answers them for free): the search has "
                "converged"
            )
        _raise_free(
            study,
            f"{counts.total} proposals for {counts.paid} evaluations",
            None,
            counts,
        )
    return None


def _free_counts(study: StudyLoop, exclude: int) -> _FreeCounts:
    """This process's tally of free and paid trials, started from the stored ones."""
    counts = study.__dict__.get("_free_tally")
    if counts is None:
        counts = _FreeCounts()
        for t in study._trials:
            if t.number == exclude or not t.state.finished:
                continue
            if t.fidelity is None:
                counts.proposed.add(t.arch)
            if t.cost == 0 and (is_rejection(t) or t.duplicate_of is not None):
                counts.total += 1
                counts.rejected += is_rejection(t)
            else:
                counts.paid += 1
        study.__dict__["_free_tally"] = counts
    return counts


def _raise_exhausted(study: StudyLoop, size: int, counts: _FreeCounts) -> None:
    what = "evaluated or rejected by the constraints" if study.constraints else "evaluated"
    message = (
        f"Study {study.name!r}: search space {study.space.name!r} is used up: all {size} of "
        f"its architectures were proposed and are {what}, so further proposals cost "
        f"nothing and the limit cannot be reached ({counts.paid} evaluations so far, all "
        "stored). Lower the budget or n_trials, search a larger space, or create the "
        "study without dedupe to evaluate architectures again."
    )
    if study.constraints:
        raise InfeasibleConstraintError(message + " Or loosen the constraints.")
    raise InvalidConfigError(message)


def _raise_free(study: StudyLoop, what: str, rejected: int | None, counts: _FreeCounts) -> None:
    detail = (
        f"{rejected} violated the constraints, the others were already evaluated (dedupe)"
        if rejected is not None
        else "already evaluated (dedupe) or violating the constraints"
    )
    fixes = []
    if study.constraints:
        fixes.append(f"loosen the constraints ({study._tightest_seen() or 'none violated'})")
    if study.dedupe:
        fixes.append("create the study without dedupe")
    fixes.append("change the strategy or search a larger space")
    error = InfeasibleConstraintError if study.constraints else InvalidConfigError
    raise error(
        f"Study {study.name!r}: {what} were answered without cost, {detail}; the strategy "
        f"rarely finds a new feasible architecture (at most {study.max_free_per_paid} free "
        f"answers per evaluation, beyond the first {study.max_free_streak}, are allowed). "
        f"The {counts.paid} evaluations so far are stored. To go on, " + ", or ".join(fixes) + "."
    )
