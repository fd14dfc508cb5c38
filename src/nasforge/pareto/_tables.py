"""True fronts of tabular benchmarks, plots, and a study's front against the true one (see
:mod:`nasforge.pareto`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nasforge.errors import InvalidConfigError, MissingDependencyError, UnsupportedOperationError
from nasforge.pareto._hypervolume import ReferenceKind, hypervolume, reference_point
from nasforge.pareto._sorting import _as_points, front_indices, orient
from nasforge.trial import Objective, Trial, TrialState


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
