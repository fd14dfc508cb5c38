"""Pareto tools: dominance, non-dominated sorting, crowding, fronts and hypervolume.

Every function here works on **oriented** objective values, larger is better, the form in
which a study hands them to strategies (``Trial.scores``): a minimised metric enters with its
sign flipped (:func:`orient`). So ``[94.1, -1.4]`` stands for 94.1 % accuracy at 1.4 ms, and
the mixed directions of ``("test_acc:max", "latency_ms[pixel3]:min")`` need no special case.

A point ``a`` **dominates** ``b`` when it is at least as good in every objective and better in
one (:func:`dominates`). The **front** of a set is its non-dominated points; equal points do
not dominate each other, so duplicates of a front point are all on the front.

* :func:`non_dominated_sort`: the fronts of a set, in order, by the fast non-dominated sort of
  Deb, K., Pratap, A., Agarwal, S. and Meyarivan, T. "A Fast and Elitist Multiobjective Genetic
  Algorithm: NSGA-II." IEEE Transactions on Evolutionary Computation 6(2), 2002, Section III-A
  (``O(M N^2)`` time and ``O(N^2)`` memory, as in the paper: for populations, not tables).
* :func:`crowding_distance`: Deb et al. 2002, Section III-B.
* :func:`front_indices` / :func:`front`: the first front only, in ``O(N |front| M)`` by a scan
  in lexicographic order; fast on a whole table of 15,625 cells.
* :func:`true_front`: the front of a tabular benchmark over all of its cells, with the
  reference point of the hypervolume (:class:`TrueFront`).
* :func:`hypervolume`, :func:`hypervolume_ratio`: computed by ``moocore`` (López-Ibáñez et
  al., the C library of the ``eaf``/``moocore`` projects: exact algorithms of Fonseca,
  Paquete and López-Ibáñez 2006 in 2-D/3-D, HV4D+ of Guerreiro and Fonseca 2018 in 4-D),
  never by hand. It is the optional extra ``pip install 'nasforge[mo]'``; without it these
  functions raise :class:`~nasforge.errors.MissingDependencyError`.

**Reference point.** The hypervolume of a front depends on the reference point, and so does
the ratio of two hypervolumes. :func:`reference_point` offers two documented choices, both
computed from the true front or the table, never from the runs being compared:

* ``"nadir"`` (the default): the nadir of the true front (its worst value in each
  objective) moved outwards by ``margin`` (10 %) of the front's range in that objective, the
  convention of pymoo and EvoXBench. Every point of the true front then adds volume,
  including its two ends. On NAS-Bench-201 the fastest cells compute nothing (10 %
  accuracy), so the accuracy range spans 10..94 % and a ratio near 1 is easy: random search
  reaches 0.97 at 200 queries on (cifar10 test accuracy, edge GPU latency).
* ``"median"``: the table's median in each objective (an architecture of typical accuracy
  *and* typical cost). Only the part of a front better than a typical architecture in every
  objective counts; stricter, and far more telling between strategies.

This module imports only numpy and nasforge's core; ``moocore``, matplotlib and the tabular
benchmarks are imported when a function needs them, so the study may import it.

Example:
    >>> import numpy as np
    >>> points = np.array([[3.0, -1.0], [2.0, -2.0], [1.0, -0.5], [2.0, -1.5]])
    >>> front_indices(points).tolist()
    [0, 2]
    >>> [f.tolist() for f in non_dominated_sort(points)]
    [[0, 2], [3], [1]]
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Protocol

import numpy as np

from nasforge.errors import InvalidConfigError, MissingDependencyError, UnsupportedOperationError
from nasforge.trial import Direction, Objective, Trial, TrialState

__all__ = [
    "INSTALL_HINT",
    "ColumnSource",
    "TrueFront",
    "crowding_distance",
    "dominates",
    "front",
    "front_indices",
    "front_trials",
    "hypervolume",
    "hypervolume_ratio",
    "non_dominated_sort",
    "orient",
    "pareto_ranks",
    "plot_front",
    "reference_point",
    "study_front",
    "true_front",
]

#: The extra that installs the hypervolume library.
INSTALL_HINT = "pip install 'nasforge[mo]'"
#: Reference point choices of :func:`reference_point`.
ReferenceKind = Literal["nadir", "median"]


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


# -- hypervolume --------------------------------------------------------------------------------
def _optional_moocore(array: np.ndarray) -> ModuleType | None:
    """moocore when it is installed and ``array`` is finite (it sorts finite values), else
    ``None``: the NumPy fallbacks give the same answer, more slowly."""
    if not np.isfinite(array).all():
        return None
    try:
        return importlib.import_module("moocore")
    except ImportError:
        return None


def _moocore() -> ModuleType:
    try:
        return importlib.import_module("moocore")
    except ImportError:
        raise MissingDependencyError(
            f"The hypervolume is computed by the moocore package, which is not installed: "
            f"{INSTALL_HINT}"
        ) from None


def hypervolume(points: Any, reference: Sequence[float] | np.ndarray) -> float:
    """The volume dominated by ``points`` and bounded by ``reference`` (oriented values).

    Only points strictly better than ``reference`` in every objective add volume; the others
    are dropped first. Computed by ``moocore.hypervolume`` (maximising).

    Args:
        points: Oriented values (larger is better), shape ``(n, k)``; dominated points may
            be included, they add nothing.
        reference: One oriented value per objective, worse than the points that count.

    Raises:
        MissingDependencyError: ``moocore`` is not installed (``pip install 'nasforge[mo]'``).

    Example:
        >>> hypervolume([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]], [0.0, 0.0])  # a staircase
        6.0
    """
    array = _as_points(points)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if len(array) and array.shape[1] != ref.size:
        raise InvalidConfigError(
            f"reference has {ref.size} values but the points have {array.shape[1]} objectives."
        )
    if not np.all(np.isfinite(ref)):
        raise InvalidConfigError(f"reference must be finite, got {ref.tolist()}.")
    moocore = _moocore()
    inside = array[np.all(array > ref, axis=1)] if len(array) else array
    if len(inside) == 0:
        return 0.0
    return float(moocore.hypervolume(inside, ref=ref, maximise=True))


def hypervolume_ratio(
    found: Any,
    true_front: Any,
    reference: Sequence[float] | np.ndarray,
) -> float:
    """``hypervolume(found) / hypervolume(true_front)`` at the same reference (0..1 when the
    true front is the front of a set that contains ``found``).

    Args:
        found: Oriented values of what a search found (any points; dominated ones add
            nothing).
        true_front: Oriented values of the true front (or a :class:`TrueFront`).
        reference: The reference point (see :func:`reference_point`).

    Raises:
        InvalidConfigError: The true front has no volume at this reference.
    """
    points = true_front.points if isinstance(true_front, TrueFront) else true_front
    best = hypervolume(points, reference)
    if best <= 0:
        raise InvalidConfigError(
            f"The true front has no hypervolume at reference {list(reference)}; choose a "
            "reference worse than its points (reference_point(...))."
        )
    return hypervolume(found, reference) / best


def reference_point(
    front_points: Any,
    *,
    kind: ReferenceKind = "nadir",
    margin: float = 0.1,
    table: Any = None,
) -> np.ndarray:
    """The reference point of the hypervolume (see the module docstring).

    Args:
        front_points: Oriented values of the true front.
        kind: ``"nadir"``: the front's worst value in each objective, moved outwards by
            ``margin`` times the front's range (by ``margin`` itself where the range is 0).
            ``"median"``: the median of ``table`` in each objective.
        margin: Share of the range added beyond the nadir.
        table: Oriented values of every point of the benchmark (for ``"median"``).

    Example:
        >>> reference_point([[10.0, -3.0], [20.0, -5.0]]).tolist()
        [9.0, -5.2]
    """
    points = _as_points(front_points, "front_points")
    if len(points) == 0:
        raise InvalidConfigError("The true front is empty; there is no reference point.")
    if kind == "nadir":
        if not margin >= 0:
            raise InvalidConfigError(f"margin must be non-negative, got {margin}.")
        nadir = points.min(axis=0)
        span = points.max(axis=0) - nadir
        span[span == 0] = 1.0
        return np.asarray(nadir - margin * span)
    if kind == "median":
        if table is None:
            raise InvalidConfigError("reference_point(kind='median') needs table= (all points).")
        values = _as_points(table, "table")
        return np.asarray(np.median(values, axis=0))
    raise InvalidConfigError(f"Unknown reference kind {kind!r}; choose 'nadir' or 'median'.")


# -- the true front of a tabular benchmark ------------------------------------------------------
class ColumnSource(Protocol):
    """What :func:`true_front` reads: a benchmark's whole columns (any
    :class:`~nasforge.tabular.TabularBenchmark` is one)."""

    def column(self, dataset: str, metric: str, fidelity: int | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class TrueFront:
    """The Pareto front of every cell of a tabular benchmark for some objectives.

    Attributes:
        benchmark: Registry name of the benchmark.
        dataset: Its dataset.
        objectives: The objectives, in column order.
        rows: Benchmark rows (cell indices) of the front's members, increasing.
        points: Their oriented values, shape ``(len(rows), k)``.
        table: Oriented values of every cell with all objectives measured, shape ``(n, k)``.
        reference: The reference point of the hypervolume (oriented).
        reference_kind: How it was chosen (``"nadir"`` or ``"median"``).
        hypervolume: The front's hypervolume at ``reference`` (NaN without ``moocore``).
    """

    benchmark: str
    dataset: str
    objectives: tuple[Objective, ...]
    rows: np.ndarray
    points: np.ndarray
    table: np.ndarray
    reference: np.ndarray
    reference_kind: str
    hypervolume: float

    def ratio(self, found: Any) -> float:
        """:func:`hypervolume_ratio` of ``found`` (oriented points) against this front."""
        return hypervolume_ratio(found, self.points, self.reference)

    def values(self) -> np.ndarray:
        """The front in the metrics' own units (minimised objectives positive again)."""
        return orient(self.points, self.objectives)

    def with_reference(self, kind: ReferenceKind, *, margin: float = 0.1) -> TrueFront:
        """The same front with another reference point."""
        ref = reference_point(self.points, kind=kind, margin=margin, table=self.table)
        return TrueFront(
            self.benchmark,
            self.dataset,
            self.objectives,
            self.rows,
            self.points,
            self.table,
            ref,
            kind,
            _safe_hypervolume(self.points, ref),
        )


def _safe_hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    try:
        return hypervolume(points, ref)
    except MissingDependencyError:
        return float("nan")


def true_front(
    benchmark: str | ColumnSource,
    dataset: str,
    objectives: Sequence[str | Objective],
    *,
    fidelity: int | None = None,
    reference: ReferenceKind = "nadir",
    margin: float = 0.1,
) -> TrueFront:
    """The true front of ``objectives`` over every cell of a tabular benchmark.

    Reads each objective's whole column (``benchmark.column(dataset, metric)``), drops the
    cells where one is missing (NaN), orients them and keeps the non-dominated cells.

    Args:
        benchmark: A registry name (``"nb201"``) or a benchmark object (anything with
            ``column(dataset, metric, fidelity)``).
        dataset: One of its datasets.
        objectives: E.g. ``["test_acc:max", "latency_ms[edgegpu]:min"]``.
        fidelity: Training epochs of the accuracies (``None``: the benchmark's highest).
        reference: The reference point choice (see :func:`reference_point`).
        margin: For ``reference="nadir"``.

    Example:
        >>> tf = true_front("nb201", "cifar10", ["test_acc:max", "params_M:min"])
        >>> len(tf.rows), round(float(tf.values()[:, 0].max()), 2)
        (17, 94.37)
    """
    from nasforge import tabular

    bench: ColumnSource = tabular.create(benchmark) if isinstance(benchmark, str) else benchmark
    parsed = tuple(Objective.parse(o) for o in objectives)
    if not parsed:
        raise InvalidConfigError("Give at least one objective, e.g. 'test_acc:max'.")
    columns = np.stack(
        [np.asarray(bench.column(dataset, o.metric, fidelity), dtype=np.float64) for o in parsed],
        axis=1,
    )
    measured = np.flatnonzero(~np.isnan(columns).any(axis=1))
    table = orient(columns[measured], parsed)
    local = front_indices(table)
    points = table[local]
    ref = reference_point(points, kind=reference, margin=margin, table=table)
    return TrueFront(
        benchmark=str(getattr(bench, "name", benchmark)),
        dataset=dataset,
        objectives=parsed,
        rows=measured[local],
        points=points,
        table=table,
        reference=ref,
        reference_kind=reference,
        hypervolume=_safe_hypervolume(points, ref),
    )


# -- plot ---------------------------------------------------------------------------------------
def plot_front(
    found: Any,
    true_front: Any,
    path: str | Path,
    *,
    objectives: Sequence[str | Objective] | None = None,
    others: Any = None,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Draw a found front against the true one (and, optionally, the other points seen).

    Axes show the metrics in their own units when ``objectives`` are given (minimised ones
    positive again), else the oriented values. Two objectives give one panel; more give one
    panel per pair. matplotlib is imported here, with the Agg canvas, so the user's pyplot
    backend is left alone.

    Args:
        found: Oriented values of the front a search found, shape ``(n, k)``.
        true_front: Oriented values of the true front (or a :class:`TrueFront`, which also
            supplies the objectives).
        path: Where to write the image (its suffix picks the format).
        objectives: Objective of each column, for the axis labels and units.
        others: Oriented values of the other points seen (drawn faintly), optional.
        title: Figure title.
        dpi: Resolution of raster images.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        raise MissingDependencyError("Plotting needs matplotlib: pip install matplotlib") from None

    if isinstance(true_front, TrueFront):
        objectives = objectives or true_front.objectives
        true_points = true_front.points
    else:
        true_points = _as_points(true_front, "true_front")
    found_points = _as_points(found, "found")
    k = true_points.shape[1]
    parsed = None if objectives is None else [Objective.parse(o) for o in objectives]
    if parsed is not None and len(parsed) != k:
        raise InvalidConfigError(f"{len(parsed)} objectives for points of {k} objectives.")

    def raw(points: np.ndarray) -> np.ndarray:
        return points if parsed is None else orient(points, parsed)

    labels = [f"objective {j}" for j in range(k)] if parsed is None else [o.metric for o in parsed]
    pairs = [(0, 1)] if k == 2 else [(a, b) for a in range(k) for b in range(a + 1, k)]
    if k < 2:
        raise InvalidConfigError("plot_front draws fronts of two or more objectives.")
    figure = Figure(figsize=(5.0 * len(pairs), 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(pairs), squeeze=False)[0]
    true_raw, found_raw = raw(true_points), raw(found_points)
    other_raw = None if others is None else raw(_as_points(others, "others"))
    for ax, (a, b) in zip(axes, pairs, strict=True):
        if other_raw is not None and len(other_raw):
            ax.scatter(other_raw[:, b], other_raw[:, a], s=6, color="0.75", label="seen")
        order = np.argsort(true_raw[:, b])
        ax.step(
            true_raw[order, b],
            true_raw[order, a],
            where="post",
            color="k",
            linewidth=1.0,
            label="true front",
        )
        ax.scatter(true_raw[:, b], true_raw[:, a], s=10, color="k")
        if len(found_raw):
            ax.scatter(found_raw[:, b], found_raw[:, a], s=22, color="C3", label="found")
        ax.set_xlabel(labels[b])
        ax.set_ylabel(labels[a])
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    if title:
        figure.suptitle(title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=dpi)
    return out


# -- a study's front against the true one -------------------------------------------------------
@dataclass(frozen=True)
class StudyFront:
    """What :func:`study_front` reports about a stored multi-objective study.

    Attributes:
        objectives: The study's objectives, in order.
        trials: The front's trials (``Study.pareto_front()``), best first by the first
            objective.
        points: Their oriented values, shape ``(len(trials), k)``.
        n_scored: Scored full-fidelity trials the front was taken from.
        true: The benchmark's true front over the cells that meet the study's constraints,
            when the study ran on a tabular evaluator; ``None`` otherwise.
        hypervolume: Of the study's front at ``true.reference`` (NaN without ``true`` or
            without ``moocore``).
        ratio: ``hypervolume / true.hypervolume`` (NaN when either is unknown).
        plot: The image written, if one was asked for.
    """

    objectives: tuple[Objective, ...]
    trials: list[Trial]
    points: np.ndarray
    n_scored: int
    true: TrueFront | None
    hypervolume: float
    ratio: float
    plot: Path | None


class _FeasibleColumns:
    """A benchmark's columns with the cells that break a constraint set to NaN (dropped)."""

    def __init__(self, bench: Any, dataset: str, constraints: Sequence[Any]) -> None:
        self._bench = bench
        self.name = getattr(bench, "name", "benchmark")
        self._mask: np.ndarray | None = None
        for c in constraints:
            column = np.asarray(bench.column(dataset, c.metric), dtype=np.float64)
            with np.errstate(invalid="ignore"):
                ok = np.asarray(c.satisfied_array(column))
            self._mask = ok if self._mask is None else self._mask & ok

    def column(self, dataset: str, metric: str, fidelity: int | None = None) -> np.ndarray:
        values = np.array(self._bench.column(dataset, metric, fidelity), dtype=np.float64)
        if self._mask is not None:
            values[~self._mask] = np.nan
        return values


def study_front(
    study: Any,
    *,
    reference: ReferenceKind = "nadir",
    plot: str | Path | None = None,
) -> StudyFront:
    """A study's Pareto front, and, on a tabular benchmark, how close it is to the true one.

    The true front is taken over the benchmark's cells that meet the study's constraints, at
    the fidelity of the study's evaluator; the hypervolume ratio uses its reference point
    (see :func:`reference_point`). With ``plot`` the front is drawn against the true front
    (the other scored trials faintly), one panel per pair of objectives.

    Args:
        study: A :class:`~nasforge.Study` (e.g. from ``nasforge.load_study``).
        reference: ``"nadir"`` or ``"median"``.
        plot: Image to write (PNG, SVG or PDF by its suffix), optional.

    Raises:
        UnsupportedOperationError: ``plot`` for a study of one objective.
    """
    objectives = tuple(study.objectives)
    trials = sorted(study.pareto_front(), key=lambda t: (-t.scores[0], t.number))
    scored = [
        t
        for t in study.trials
        if t.state is TrialState.COMPLETE and t.scores is not None and not t.fidelity
    ]
    k = len(objectives)
    points = np.array([t.scores for t in trials], dtype=np.float64).reshape(len(trials), k)
    others = np.array([t.scores for t in scored], dtype=np.float64).reshape(len(scored), k)
    true: TrueFront | None = None
    spec = dict(study.record.evaluator or {})
    if spec.get("name") == "tabular" and k >= 2:
        from nasforge import tabular

        bench = tabular.create(spec.get("benchmark") or "nb201")
        dataset = str(spec["dataset"])
        source = _FeasibleColumns(bench, dataset, study.constraints)
        true = true_front(
            source, dataset, objectives, fidelity=spec.get("fidelity"), reference=reference
        )
    hv = ratio = float("nan")
    if true is not None and len(points):
        hv = _safe_hypervolume(points, true.reference)
        ratio = hv / true.hypervolume if true.hypervolume > 0 else float("nan")
    written = None
    if plot is not None:
        if k < 2:
            raise UnsupportedOperationError(
                f"Study {study.name!r} has one objective ({objectives[0]}); a front plot needs "
                "two or more. Use `nasforge show` for a single-objective study."
            )
        reference_points = true.points if true is not None else points
        written = plot_front(
            points,
            reference_points if true is not None else np.empty((0, k)),
            plot,
            objectives=objectives,
            others=others,
            title=f"{study.name}: {len(trials)} on the front of {len(scored)} trials",
        )
    return StudyFront(objectives, trials, points, len(scored), true, hv, ratio, written)
