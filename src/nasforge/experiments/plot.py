"""Plot the mean best-so-far trajectories of a :class:`~nasforge.experiments.Comparison`.

matplotlib is imported when a plot is drawn, never at import time, and only through its
object-oriented API with the Agg canvas, so drawing leaves the user's pyplot backend alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nasforge.experiments.results import Comparison

__all__ = ["CONFIDENCE", "plot_time", "plot_trajectories", "t_quantile"]

#: Coverage of the confidence bands: the mean over ``n`` seeds plus or minus Student's t
#: quantile with ``n - 1`` degrees of freedom times the standard error (with 2 seeds the
#: quantile is 12.7, not the normal 1.96: a normal band would be 6.5 times too narrow).
CONFIDENCE = 0.95


def plot_trajectories(comparison: Comparison, path: str | Path, *, dpi: int = 150) -> Path:
    """Draw one panel per dataset: the mean over seeds of the test accuracy of the
    best-by-validation architecture after each number of queries, one line per strategy, and
    a 95% confidence interval of the mean (Student's t over the seeds, see ``CONFIDENCE``).

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
    method, with a 95% confidence interval of the mean (Student's t over the seeds).

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
            # an accuracy lies in [0, 100]; with few seeds the band may overshoot it
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


def mean_and_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column, over the rows (seeds) measured there (NaN entries ignored): the mean (NaN
    where none was), the sample standard deviation (0 where fewer than two were) and the
    count."""
    counts = np.sum(~np.isnan(values), axis=0)
    safe = np.where(np.isnan(values), 0.0, values)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = safe.sum(axis=0) / counts
        squares = np.where(np.isnan(values), 0.0, (values - mean) ** 2).sum(axis=0)
        std = np.where(counts > 1, np.sqrt(squares / np.maximum(counts - 1, 1)), 0.0)
    return np.where(counts > 0, mean, np.nan), std, counts


def _mean_and_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over rows (seeds) and the half-width of its ``CONFIDENCE`` interval (Student's t
    with one degree of freedom less than the seeds measured there), ignoring NaN entries."""
    mean, std, counts = mean_and_std(values)
    quantile = np.zeros(counts.shape)
    for n in np.unique(counts[counts > 1]):
        quantile[counts == n] = t_quantile(0.5 + CONFIDENCE / 2, int(n) - 1)
    half = np.where(counts > 1, quantile * std / np.sqrt(np.maximum(counts, 1)), 0.0)
    return mean, half


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom.

    ``scipy.stats.t.ppf`` when scipy is installed; else the exact distribution function for
    integer degrees of freedom (Abramowitz and Stegun, "Handbook of Mathematical Functions",
    1964, 26.7.3-4: a finite sum in ``theta = atan(t / sqrt(df))``) inverted by bisection,
    and above 10,000 degrees of freedom the Cornish-Fisher expansion around the normal
    quantile (26.7.5), both to about 1e-12.

    Example:
        >>> round(t_quantile(0.975, 1), 3), round(t_quantile(0.975, 2), 3)
        (12.706, 4.303)
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie strictly between 0 and 1, got {p!r}.")
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"df must be an integer >= 1, got {df!r}.")
    try:
        from scipy import stats
    except ImportError:
        return _t_quantile(p, int(df))
    return float(stats.t.ppf(p, df))


def _t_quantile(p: float, df: int) -> float:
    """:func:`t_quantile` without scipy."""
    if p < 0.5:
        return -_t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    if df > 10_000:
        return _cornish_fisher(p, df)
    target = 2.0 * p - 1.0  # P(|T| <= t)
    low, high = 0.0, math.pi / 2
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if _t_central(middle, df) < target:
            low = middle
        else:
            high = middle
    return math.sqrt(df) * math.tan(0.5 * (low + high))


def _t_central(theta: float, df: int) -> float:
    """``P(|T| <= sqrt(df) tan(theta))`` for integer ``df`` (A&S 26.7.3-4)."""
    c2 = math.cos(theta) ** 2
    total, term = 1.0, 1.0
    if df % 2:  # odd: (2/pi) (theta + sin cos (1 + 2/3 c2 + 2*4/(3*5) c2^2 + ...))
        for j in range(1, (df - 1) // 2):
            term *= c2 * (2 * j) / (2 * j + 1)
            total += term
        tail = math.sin(theta) * math.cos(theta) * total if df > 1 else 0.0
        return 2.0 / math.pi * (theta + tail)
    for j in range(1, df // 2):  # even: sin (1 + 1/2 c2 + 1*3/(2*4) c2^2 + ...)
        term *= c2 * (2 * j - 1) / (2 * j)
        total += term
    return math.sin(theta) * total


def _cornish_fisher(p: float, df: int) -> float:
    """Student's t quantile for many degrees of freedom (A&S 26.7.5)."""
    from statistics import NormalDist

    x = NormalDist().inv_cdf(p)
    g1 = (x**3 + x) / 4
    g2 = (5 * x**5 + 16 * x**3 + 3 * x) / 96
    g3 = (3 * x**7 + 19 * x**5 + 17 * x**3 - 15 * x) / 384
    g4 = (79 * x**9 + 776 * x**7 + 1482 * x**5 - 1920 * x**3 - 945 * x) / 92160
    return x + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def _top(ax: object) -> float:
    """The highest y value drawn on ``ax`` (lines and bands)."""
    tops = [float(np.nanmax(line.get_ydata())) for line in ax.get_lines()]  # type: ignore[attr-defined]
    for collection in ax.collections:  # type: ignore[attr-defined]
        for p in collection.get_paths():
            if len(p.vertices):
                tops.append(float(np.nanmax(p.vertices[:, 1])))
    finite = [t for t in tops if np.isfinite(t)]
    return max(finite) if finite else 100.0
