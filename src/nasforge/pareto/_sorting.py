"""Dominance, non-dominated sorting, crowding and fronts (see :mod:`nasforge.pareto`)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from nasforge.errors import InvalidConfigError
from nasforge.trial import Direction, Objective, Trial, TrialState


# -- dominance and sorting ----------------------------------------------------------------------
def _as_points(points: Any, name: str = "points") -> np.ndarray:
    """``points`` as a float array of shape ``(n, k)``; NaN is refused."""
    array = np.asarray(points, dtype=np.float64)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, 1)
    if array.ndim != 2:
        raise InvalidConfigError(
            f"{name} must be a 2-D array (one row per point, one column per objective), got "
            f"shape {array.shape}."
        )
    if np.isnan(array).any():
        raise InvalidConfigError(
            f"{name} holds NaN; drop the points whose objectives were not measured first."
        )
    return array


def dominates(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> bool:
    """Whether oriented point ``a`` dominates ``b``: no worse anywhere, better somewhere.

    Example:
        >>> dominates([94.0, -1.2], [93.0, -1.2]), dominates([94.0, -1.2], [94.0, -1.2])
        (True, False)
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise InvalidConfigError(f"Cannot compare points of shapes {x.shape} and {y.shape}.")
    return bool(np.all(x >= y) and np.any(x > y))


def _domination_matrix(points: np.ndarray) -> np.ndarray:
    """``d[i, j]``: point ``i`` dominates point ``j``."""
    geq = np.all(points[:, None, :] >= points[None, :, :], axis=2)
    gt = np.any(points[:, None, :] > points[None, :, :], axis=2)
    return np.asarray(geq & gt)


def non_dominated_sort(points: Any) -> list[np.ndarray]:
    """The fronts of ``points`` in order (first front first): Deb et al.'s fast sort.

    For each point ``p`` the algorithm counts the points that dominate it (``n_p``) and lists
    those it dominates (``S_p``); the points with ``n_p = 0`` form the first front; removing
    a front decrements the counts of the points its members dominate, and those reaching 0
    form the next front. Within a front, indices are in increasing order.

    Computed by ``moocore.pareto_rank`` when moocore is installed, else as described (the
    same fronts either way).

    Args:
        points: Oriented values (larger is better), shape ``(n, k)``.

    Returns:
        One integer array of indices per front; together they hold every index once.
    """
    array = _as_points(points)
    if len(array) == 0:
        return []
    moocore = _optional_moocore(array)
    if moocore is None:
        return _non_dominated_sort_numpy(array)
    ranks = np.asarray(moocore.pareto_rank(array, maximise=True), dtype=np.int64)
    return [np.flatnonzero(ranks == rank) for rank in range(int(ranks.max()) + 1)]


def _non_dominated_sort_numpy(array: np.ndarray) -> list[np.ndarray]:
    """:func:`non_dominated_sort` in NumPy alone (the fallback without moocore)."""
    if len(array) == 0:
        return []
    dominated_by = _domination_matrix(array)  # row p: S_p
    counts = dominated_by.sum(axis=0)  # n_p
    fronts: list[np.ndarray] = []
    current = np.flatnonzero(counts == 0)
    while current.size:
        fronts.append(current)
        counts = counts - dominated_by[current].sum(axis=0)
        counts[current] = -1  # placed
        current = np.flatnonzero(counts == 0)
    return fronts


def pareto_ranks(points: Any) -> np.ndarray:
    """The front number of each point (0 for the non-dominated ones); see
    :func:`non_dominated_sort`."""
    fronts = non_dominated_sort(points)
    ranks = np.zeros(sum(len(f) for f in fronts), dtype=np.int64)
    for rank, members in enumerate(fronts):
        ranks[members] = rank
    return ranks


def crowding_distance(points: Any) -> np.ndarray:
    """The crowding distance of each point of one front (Deb et al. 2002, Section III-B).

    For each objective the points are sorted by it; the two extreme points get an infinite
    distance, every other point adds the gap between its two neighbours divided by the range
    of the objective over the front. Points tied in an objective are ordered by index. An
    objective in which all points are equal adds nothing (the paper divides by its range,
    here zero) and makes no point extreme. A front of one or two points is all extremes.

    Args:
        points: Oriented values of the members of one front, shape ``(n, k)``.

    Returns:
        Distances, shape ``(n,)``; larger means less crowded.

    Example:
        >>> crowding_distance([[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]]).tolist()
        [inf, 1.5, 1.5, inf]
    """
    array = _as_points(points)
    n, k = array.shape
    distance = np.zeros(n)
    if n <= 2:
        distance[:] = np.inf
        return distance
    for m in range(k):
        order = np.argsort(array[:, m], kind="stable")
        values = array[order, m]
        span = values[-1] - values[0]
        if span <= 0:
            continue
        distance[order[0]] = distance[order[-1]] = np.inf
        distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def front_indices(points: Any) -> np.ndarray:
    """Indices of the non-dominated points of ``points``, in increasing order.

    Points are scanned in decreasing lexicographic order, in which a point can only be
    dominated by points before it, and each is kept unless one of the points kept so far
    dominates it (by transitivity that suffices). Cost ``O(n log n + n |front| k)``.

    Computed by ``moocore.is_nondominated`` when moocore is installed (the whole NB201 table
    in milliseconds), else by the scan above.

    Args:
        points: Oriented values (larger is better), shape ``(n, k)``.
    """
    array = _as_points(points)
    if len(array) == 0:
        return np.zeros(0, dtype=np.int64)
    moocore = _optional_moocore(array)
    if moocore is None:
        return _front_indices_numpy(array)
    kept = moocore.is_nondominated(array, maximise=True, keep_weakly=True)
    return np.flatnonzero(np.asarray(kept)).astype(np.int64)


def _front_indices_numpy(array: np.ndarray) -> np.ndarray:
    """:func:`front_indices` in NumPy alone (the fallback without moocore)."""
    n, k = array.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort(tuple(-array[:, m] for m in reversed(range(k))))
    kept = np.empty((n, k))
    kept_index = np.empty(n, dtype=np.int64)
    size = 0
    for i in order:
        p = array[i]
        if size:
            head = kept[:size]
            if np.any(np.all(head >= p, axis=1) & np.any(head > p, axis=1)):
                continue
        kept[size] = p
        kept_index[size] = i
        size += 1
    return np.sort(kept_index[:size])


def front(points: Any) -> np.ndarray:
    """The non-dominated points of ``points`` (rows in their original order)."""
    array = _as_points(points)
    return np.asarray(array[front_indices(array)])


def orient(values: Any, objectives: Sequence[str | Objective]) -> np.ndarray:
    """Raw metric values turned so that larger is better (minimised columns negated).

    Args:
        values: Shape ``(n, k)`` (or ``(k,)``), column ``j`` the metric of ``objectives[j]``.
        objectives: ``"metric:max"``/``"metric:min"`` or :class:`~nasforge.trial.Objective`.

    Example:
        >>> orient([[94.0, 1.5]], ["test_acc:max", "latency_ms[pixel3]:min"]).tolist()
        [[94.0, -1.5]]
    """
    parsed = [Objective.parse(o) for o in objectives]
    array = np.asarray(values, dtype=np.float64)
    if array.shape[-1:] != (len(parsed),):
        raise InvalidConfigError(
            f"values have {array.shape[-1] if array.ndim else 0} columns but {len(parsed)} "
            "objectives were given; give one column per objective."
        )
    signs = np.array([1.0 if o.direction is Direction.MAXIMIZE else -1.0 for o in parsed])
    return np.asarray(array * signs)


def front_trials(trials: Iterable[Trial]) -> list[Trial]:
    """The COMPLETE full-fidelity trials not dominated by another (by ``Trial.scores``).

    Trials without scores (failed, infeasible) and screening trials at a reduced fidelity are
    left out; of several trials of the same architecture, the first is kept. The result is in
    the order of the trials. This is what ``Study.pareto_front()`` returns.
    """
    candidates: list[Trial] = []
    seen = set()
    for trial in trials:
        if trial.state is not TrialState.COMPLETE or trial.scores is None or trial.fidelity:
            continue
        if trial.arch in seen:
            continue
        seen.add(trial.arch)
        candidates.append(trial)
    if not candidates:
        return []
    widths = {len(t.scores or ()) for t in candidates}
    if len(widths) != 1:
        raise InvalidConfigError(
            f"The trials have different numbers of objective values ({sorted(widths)}); "
            "a front compares trials of one study."
        )
    points = np.array([t.scores for t in candidates], dtype=np.float64)
    return [candidates[int(i)] for i in front_indices(points)]


def _optional_moocore(array: np.ndarray) -> ModuleType | None:
    """moocore when it is installed and ``array`` is finite (it sorts finite values), else
    ``None``: the NumPy fallbacks give the same answer, more slowly."""
    if not np.isfinite(array).all():
        return None
    try:
        return importlib.import_module("moocore")
    except ImportError:
        return None
