"""How much of the variation of a study's first objective each decision of its space explains
(the dashboard's importance bars)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from nasforge.dashboard._safe import num
from nasforge.errors import NasforgeError
from nasforge.trial import Objective, Trial, TrialState

__all__ = ["METHOD", "MIN_TRIALS", "decision_importance", "main_effects"]

#: Fewest COMPLETE trials with a measured objective to estimate the importances from.
MIN_TRIALS = 8

#: What the importances are, as shown beside them.
METHOD = "main effect: share of variance explained by each decision alone (eta squared)"


def main_effects(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The empirical main-effect share of variance of each decision.

    For decision ``j`` (column ``j`` of ``codes``, the option index chosen in each trial)
    this is the correlation ratio

        eta_j^2 = sum_k n_k (mean_k - mean)^2 / sum_i (y_i - mean)^2,

    the variance of the per-option means of ``values`` (weighted by how many trials chose
    each option) over the total variance: the share a model that knows only decision ``j``
    explains. When the other decisions were drawn independently of decision ``j`` (random
    search, or any space sampled uniformly) it estimates the first-order (main-effect) term
    of the functional ANOVA decomposition that fANOVA computes, F. Hutter, H. Hoos and
    K. Leyton-Brown, "An Efficient Approach for Assessing Hyperparameter Importance", ICML
    2014. It is computed from the trials themselves, not from the random-forest model fANOVA
    fits: no interactions, no extrapolation to architectures never evaluated, and trials
    that a strategy concentrated on good options make those options' effects look smaller.
    With few trials per option it is biased upwards (each option's mean is fitted to its own
    trials).

    Args:
        codes: Shape ``(n, d)``, non-negative option indices.
        values: Shape ``(n,)``, the metric of each trial.

    Returns:
        Shape ``(d,)``, each in ``[0, 1]``; zeros when ``values`` do not vary.

    Example:
        >>> codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
        >>> main_effects(codes, np.array([1.0, 1.0, 3.0, 3.0])).tolist()
        [1.0, 0.0]
    """
    y = np.asarray(values, dtype=np.float64)
    centred = y - y.mean()
    total = float(centred @ centred)
    out = np.zeros(codes.shape[1])
    if total <= 0.0:
        return out
    for j in range(codes.shape[1]):
        column = codes[:, j]
        counts = np.bincount(column)
        sums = np.bincount(column, weights=centred)
        seen = counts > 0
        between = float(np.sum(sums[seen] ** 2 / counts[seen]))
        out[j] = min(1.0, max(0.0, between / total))
    return out


def decision_importance(
    trials: Iterable[Trial], objective: Objective, space: Callable[[], Any]
) -> dict[str, Any]:
    """The importance of each decision for ``objective`` over the COMPLETE full-fidelity
    trials with the metric measured, by :func:`main_effects`, most important first.

    Args:
        trials: The study's trials.
        objective: The study's first objective.
        space: Returns the study's search space (called once; a space that cannot be built
            here, e.g. a user's space whose module is not importable, gives a reason).

    Returns:
        ``{"metric", "method", "decisions": [{"name", "importance"}, ...]}``, or the same
        with ``"decisions": []`` and a ``"reason"`` saying why there are none (too few
        trials, a space without decisions, a metric that does not vary). Never raises.
    """
    base: dict[str, Any] = {"metric": objective.metric, "method": METHOD, "decisions": []}
    usable = [
        t
        for t in trials
        if t.state is TrialState.COMPLETE
        and not t.fidelity
        and _finite(t.metrics.get(objective.metric))
    ]
    if len(usable) < MIN_TRIALS:
        return {
            **base,
            "reason": f"needs at least {MIN_TRIALS} COMPLETE trials with {objective.metric} "
            f"measured; the study has {len(usable)}",
        }
    try:
        found = space()
        decisions = tuple(found.decisions())
    except NasforgeError as error:
        return {**base, "reason": f"the search space has no independent decisions ({error})"}
    except Exception as error:  # a user's space may fail to import or build in any way
        return {
            **base,
            "reason": f"the search space cannot be built here ({type(error).__name__}: {error})",
        }
    if not decisions:
        return {**base, "reason": "the search space declares no decisions"}
    codes, y = _codes(found, usable, [len(d.options) for d in decisions], objective.metric)
    if len(y) < MIN_TRIALS:
        return {
            **base,
            "reason": f"only {len(y)} trials could be read as choices of the space's "
            f"decisions; needs at least {MIN_TRIALS}",
        }
    if float(np.ptp(y)) == 0.0:
        return {**base, "reason": f"{objective.metric} is the same in every trial"}
    shares = main_effects(codes, y)
    ranked = sorted(
        zip((d.name for d in decisions), shares.tolist(), strict=True), key=lambda p: -p[1]
    )
    return {**base, "decisions": [{"name": n, "importance": num(v)} for n, v in ranked]}


def _codes(
    space: Any, trials: Sequence[Trial], sizes: Sequence[int], metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """The option indices (one row per trial that fits the decisions) and the metric of
    those trials; stored choices are checked in one step, the others read one by one."""
    limit = np.asarray(sizes, dtype=np.int64)
    stored = [t for t in trials if len(t.arch.choices) == len(sizes)]
    fitting: list[Trial] = []
    codes = np.empty((0, len(sizes)), dtype=np.int64)
    if stored:
        try:
            table = np.asarray([t.arch.choices for t in stored], dtype=np.int64)
        except (TypeError, ValueError):  # choices that are not integers: one by one below
            table = np.full((len(stored), len(sizes)), -1, dtype=np.int64)
        ok = np.flatnonzero(((table >= 0) & (table < limit)).all(axis=1))
        fitting = [stored[i] for i in ok.tolist()]
        codes = table[ok]
    checked = {id(t) for t in fitting}
    extra = []
    for trial in trials:
        if id(trial) not in checked:
            choices = _choices(space, trial, sizes)
            if choices is not None:
                extra.append(choices)
                fitting.append(trial)
    if extra:
        codes = np.concatenate([codes, np.asarray(extra, dtype=np.int64)])
    return codes, np.asarray([float(t.metrics[metric]) for t in fitting])


def _choices(space: Any, trial: Trial, sizes: Sequence[int]) -> tuple[int, ...] | None:
    """The trial's option indices, from its stored choices or by parsing its text; ``None``
    when neither fits the decisions."""
    if _fits(trial.arch.choices, sizes):
        return tuple(int(c) for c in trial.arch.choices)
    try:
        parsed = space.parse(trial.arch.text).choices
    except Exception:  # a trial the space no longer reads is left out, never fatal
        return None
    return tuple(int(c) for c in parsed) if _fits(parsed, sizes) else None


def _fits(choices: Sequence[Any], sizes: Sequence[int]) -> bool:
    return len(choices) == len(sizes) and all(
        isinstance(c, (int, np.integer)) and 0 <= c < n for c, n in zip(choices, sizes, strict=True)
    )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
