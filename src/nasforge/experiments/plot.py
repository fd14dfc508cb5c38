"""Plot the mean best-so-far trajectories of a :class:`~nasforge.experiments.Comparison`.

matplotlib is imported when a plot is drawn, never at import time, and only through its
object-oriented API with the Agg canvas, so drawing leaves the user's pyplot backend alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nasforge.experiments.compare import Comparison

__all__ = ["plot_time", "plot_trajectories"]

#: Half-width of the confidence band in standard errors of the mean (95% under normality).
Z_95 = 1.96


def plot_trajectories(comparison: Comparison, path: str | Path, *, dpi: int = 150) -> Path:
    """Draw one panel per dataset: the mean over seeds of the test accuracy of the
    best-by-validation architecture after each number of queries, one line per strategy, and
    a band of ±1.96 standard errors of the mean (a 95% confidence interval).

    Args:
        comparison: The comparison to draw.
        path: Where to write the image (its suffix picks the format, e.g. ``.png``).
        dpi: Resolution of raster images.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    figure, axes = _panels(comparison)
    queries = np.arange(1, comparison.budget + 1)
    colours = [f"C{i % 10}" for i in range(len(comparison.strategies))]
    for ax, dataset in zip(axes, comparison.datasets, strict=True):
        lows = []
        for strategy, colour in zip(comparison.strategies, colours, strict=True):
            _, test = comparison.trajectories(strategy, dataset)
            mean, half = _mean_and_band(test)
            ax.plot(queries, mean, color=colour, linewidth=1.6, label=strategy)
            ax.fill_between(queries, mean - half, mean + half, color=colour, alpha=0.2, lw=0)
            # the first queries are far below the rest; start the axis where curves settle
            settle = min(len(mean) - 1, max(0, comparison.budget // 10 - 1))
            window = (mean - half)[settle:]
            if np.isfinite(window).any():
                lows.append(float(np.nanmin(window)))
        if lows:
            top = _top(ax)
            bottom = min(lows)
            pad = 0.05 * max(top - bottom, 1e-6)
            ax.set_ylim(bottom - pad, top + pad)
        ax.set_xlim(1, comparison.budget)
        ax.set_xlabel("queries (cumulative cost)")
        ax.set_ylabel("test accuracy of best-by-validation (%)")
        _finish_panel(ax, comparison, dataset)
    return _save(figure, path, dpi)


def plot_time(
    comparison: Comparison, path: str | Path, *, dpi: int = 150, points: int = 200
) -> Path:
    """Draw one panel per dataset: the mean over seeds of the test accuracy of what each
    run stood for after each wall time (log scale), one line per strategy or one-shot
    method, with a band of ±1.96 standard errors of the mean.

    A black-box run stands for its best-by-validation architecture so far, a one-shot run
    (dashed) for its latest derived architecture; a black-box query is charged
    ``comparison.seconds_per_query`` seconds on top of the wall time measured.

    Args:
        comparison: The comparison to draw.
        path: Where to write the image.
        dpi: Resolution of raster images.
        points: Times drawn per line, spaced evenly on the log axis.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    first, last = comparison.seconds_range()
    low = max(first, 1e-4)
    high = max(last, low * 10)
    grid = np.geomspace(low, high, points)
    figure, axes = _panels(comparison)
    for ax, dataset in zip(axes, comparison.datasets, strict=True):
        for i, strategy in enumerate(comparison.strategies):
            _, test = comparison.time_trajectories(strategy, dataset, grid)
            mean, half = _mean_and_band(test)
            colour = f"C{i % 10}"
            style = "--" if strategy in comparison.oneshot else "-"
            ax.plot(grid, mean, style, color=colour, linewidth=1.6, label=strategy)
            # an accuracy lies in [0, 100]; few seeds make the normal band overshoot it
            low, high = np.clip(mean - half, 0, 100), np.clip(mean + half, 0, 100)
            ax.fill_between(grid, low, high, color=colour, alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel(
            "wall time (s)"
            + (
                f", {comparison.seconds_per_query:g} s charged per query"
                if comparison.seconds_per_query
                else ""
            )
        )
        ax.set_ylabel("test accuracy (%)")
        _finish_panel(ax, comparison, dataset)
    return _save(figure, path, dpi)


def _panels(comparison: Comparison) -> tuple[Any, Any]:
    """A figure on the Agg canvas with one panel per dataset of ``comparison``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("Plotting needs matplotlib: pip install matplotlib") from None

    n_panels = len(comparison.datasets)
    figure = Figure(figsize=(5.2 * n_panels, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, n_panels, squeeze=False)[0]


def _finish_panel(ax: Any, comparison: Comparison, dataset: str) -> None:
    """Title, grid and legend of one dataset's panel."""
    ax.set_title(
        f"{comparison.benchmark} {dataset}: mean of {len(comparison.seeds)} seeds, 95% CI",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)


def _save(figure: Any, path: str | Path, dpi: int) -> Path:
    out = Path(path)
    figure.savefig(out, dpi=dpi)
    return out


def _mean_and_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over rows (seeds) and ``Z_95`` standard errors, ignoring NaN entries."""
    counts = np.sum(~np.isnan(values), axis=0)
    safe = np.where(np.isnan(values), 0.0, values)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = safe.sum(axis=0) / counts
        squares = np.where(np.isnan(values), 0.0, (values - mean) ** 2).sum(axis=0)
        std = np.sqrt(squares / (counts - 1))
        half = np.where(counts > 1, Z_95 * std / np.sqrt(counts), 0.0)
    mean = np.where(counts > 0, mean, np.nan)
    return mean, half


def _top(ax: object) -> float:
    """The highest y value drawn on ``ax`` (lines and bands)."""
    tops = [float(np.nanmax(line.get_ydata())) for line in ax.get_lines()]  # type: ignore[attr-defined]
    for collection in ax.collections:  # type: ignore[attr-defined]
        for p in collection.get_paths():
            if len(p.vertices):
                tops.append(float(np.nanmax(p.vertices[:, 1])))
    finite = [t for t in tops if np.isfinite(t)]
    return max(finite) if finite else 100.0
