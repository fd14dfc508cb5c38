"""Latency lookup tables: the additive per-operation latency model, fitted by least squares.

A lookup table predicts the latency of an architecture as a constant plus one entry per
decision, the latency of the option taken there:

    LAT(arch) ≈ c + Σ_d t[d, choice_d]

the model of MnasNet's and FBNet's latency tables and of HURRICANE's per-block latency
(Tan et al., "MnasNet", CVPR 2019, arXiv:1807.11626; Wu et al., "FBNet: Hardware-Aware
Efficient ConvNet Design via Differentiable Neural Architecture Search", CVPR 2019,
arXiv:1812.03443; Zhang et al., "Fast Hardware-Aware Neural Architecture Search", CVPRW 2020,
arXiv:1910.11609). Those papers measure each operator alone on the device; here the entries
are fitted by least squares from latencies of whole architectures (a device column of a
tabular benchmark, or times measured on this machine), which needs no operator-level
benchmark and also absorbs what the architectures share (stem, reductions, classifier) into
the constant.

**Identifiability.** With a constant, the options of a decision are only known up to a
shift, so the first option of every decision is fixed at 0 (on NAS-Bench-201 that is
``none``, the zero operation): ``t[d, o]`` is the latency that choosing option ``o`` on
decision ``d`` adds over option 0, and ``c`` is the predicted latency of the architecture
that takes option 0 everywhere.

**How good is it?** :func:`device_report` fits a table per device on a random sample of
cells and reports, on the held-out cells, the Spearman rank correlation and the mean relative
error against the benchmark. ``benchmarks/latency_lut.py`` prints it for every device of
NAS-Bench-201, and for latencies measured on this machine with
:func:`nasforge.hardware.measure_latency`.

This module needs only numpy (torch is not imported by it).

Example:
    >>> import numpy as np
    >>> from nasforge import spaces
    >>> space = spaces.create("nb201")
    >>> rng = np.random.default_rng(0)
    >>> archs = [space.sample(rng) for _ in range(200)]
    >>> lat = [1.0 + sum(0.5 * c for c in a.choices) for a in archs]  # exactly additive
    >>> lut = LatencyLUT.fit(space, archs, lat)
    >>> arch = space.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|")
    >>> round(lut.constant, 6), round(float(lut.predict(arch)), 6)  # 1 + 0.5 * (3 + 1)
    (1.0, 3.0)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.ranks import spearman
from nasforge.spaces.base import SearchSpace

if TYPE_CHECKING:
    from nasforge.tabular.base import TabularBenchmark

__all__ = [
    "DeviceFit",
    "LUTReport",
    "LatencyLUT",
    "device_report",
    "evaluate",
    "fit_table",
    "mean_relative_error",
    "prediction_errors",
    "spearman",
]


@dataclass(frozen=True)
class LatencyLUT:
    """An additive latency model: a constant plus one entry per (decision, option).

    Attributes:
        space: Name of the search space.
        decisions: Name of each decision (NAS-Bench-201: ``edge0``..``edge5``).
        options: The options of each decision, in choice order.
        constant: ``c``, the predicted latency of the architecture taking option 0 everywhere.
        entries: ``t[d, o]``, shape ``(n_decisions, max_options)``; column 0 is 0 and options
            a decision does not have are NaN.
        metric: What is predicted (``"latency_ms[pixel3]"``), for reports.
    """

    space: str
    decisions: tuple[str, ...]
    options: tuple[tuple[Any, ...], ...]
    constant: float
    entries: np.ndarray
    metric: str = "latency"

    # -- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        space: SearchSpace,
        archs: Sequence[Architecture] | np.ndarray,
        latencies: Sequence[float] | np.ndarray,
        *,
        metric: str = "latency",
    ) -> LatencyLUT:
        """Fit the table to measured latencies by least squares.

        Args:
            space: A product space (``space.decisions()``, e.g. NAS-Bench-201).
            archs: The measured architectures, or their choices as an integer array of shape
                ``(n, n_decisions)``.
            latencies: Their latencies, one per architecture (NaN ones are dropped).
            metric: Name of what was measured, kept for reports.

        Raises:
            InvalidConfigError: Fewer architectures than unknowns, or an option never seen
                (its entry could not be fitted; add architectures that take it).
            UnsupportedOperationError: The space has no ``decisions()``.
        """
        decisions = space.decisions()
        sizes = [len(d.options) for d in decisions]
        choices = _choices(space, archs, sizes)
        y = np.asarray(latencies, dtype=np.float64).reshape(-1)
        if len(y) != len(choices):
            raise InvalidConfigError(
                f"Got {len(choices)} architectures but {len(y)} latencies; give one each."
            )
        keep = np.isfinite(y)
        choices, y = choices[keep], y[keep]
        unknowns = 1 + sum(n - 1 for n in sizes)
        if len(y) < unknowns:
            raise InvalidConfigError(
                f"An additive table of space {space.name!r} has {unknowns} unknowns; fit it "
                f"on at least that many measured architectures (got {len(y)})."
            )
        for d, n in enumerate(sizes):
            unseen = sorted(set(range(1, n)) - set(np.unique(choices[:, d]).tolist()))
            if unseen:
                names = [decisions[d].options[o] for o in unseen]
                raise InvalidConfigError(
                    f"No measured architecture takes option(s) {names} on decision "
                    f"{decisions[d].name!r}, so their latency cannot be fitted; measure more "
                    "(random) architectures."
                )
        x = _design(choices, sizes)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        entries = np.full((len(sizes), max(sizes)), np.nan)
        position = 1
        for d, n in enumerate(sizes):
            entries[d, 0] = 0.0
            entries[d, 1:n] = coef[position : position + n - 1]
            position += n - 1
        entries.setflags(write=False)
        return cls(
            space=space.name,
            decisions=tuple(d.name for d in decisions),
            options=tuple(tuple(d.options) for d in decisions),
            constant=float(coef[0]),
            entries=entries,
            metric=metric,
        )

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, archs: Architecture | Sequence[Architecture] | np.ndarray) -> np.ndarray:
        """Predicted latency of one architecture (a 0-d array) or of many (shape ``(n,)``).

        ``archs`` may also be an integer array of choices, shape ``(n, n_decisions)``.
        """
        sizes = [len(o) for o in self.options]
        single = isinstance(archs, Architecture)
        if isinstance(archs, Architecture):
            choices = np.asarray([archs.choices], dtype=np.int64)
        elif isinstance(archs, np.ndarray):
            choices = np.asarray(archs, dtype=np.int64).reshape(-1, len(sizes))
        else:
            choices = np.asarray([a.choices for a in archs], dtype=np.int64)
            choices = choices.reshape(-1, len(sizes))
        for d, n in enumerate(sizes):
            if len(choices) and not (choices[:, d].min() >= 0 and choices[:, d].max() < n):
                raise InvalidConfigError(
                    f"Decision {self.decisions[d]!r} has options 0..{n - 1}; got "
                    f"{sorted(set(choices[:, d].tolist()))}."
                )
        values = self.constant + self.entries[np.arange(len(sizes)), choices].sum(axis=1)
        return np.asarray(values[0] if single else values)

    def table(self) -> dict[str, dict[str, float]]:
        """The entries as ``{decision: {option: latency}}`` (plus ``{"constant": c}``)."""
        out: dict[str, dict[str, float]] = {"constant": {"": self.constant}}
        for d, name in enumerate(self.decisions):
            out[name] = {str(o): float(self.entries[d, i]) for i, o in enumerate(self.options[d])}
        return out


# -- accuracy of a table ------------------------------------------------------------------------
@dataclass(frozen=True)
class LUTReport:
    """How well a table predicts held-out latencies.

    Attributes:
        n: Architectures compared.
        spearman: Spearman rank correlation of predicted and actual latency.
        mean_relative_error: Mean of ``|predicted - actual| / actual``.
        median_relative_error: Their median (robust to the few cells of almost no latency,
            e.g. NAS-Bench-201 cells whose output does not depend on their input, which some
            devices run in microseconds).
    """

    n: int
    spearman: float
    mean_relative_error: float
    median_relative_error: float


@dataclass(frozen=True)
class DeviceFit:
    """A table fitted for one device of a tabular benchmark and its held-out accuracy."""

    device: str
    metric: str
    n_train: int
    lut: LatencyLUT
    report: LUTReport


def mean_relative_error(
    predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray
) -> float:
    """Mean of ``|predicted - actual| / |actual|``."""
    p = np.asarray(predicted, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    return float(np.mean(np.abs(p - a) / np.abs(a)))


def prediction_errors(
    predicted: Sequence[float] | np.ndarray, measured: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """How well latency predictions rank and match measurements: ``n``, ``spearman`` (NaN for
    fewer than two), ``mape`` and ``max_ape`` (mean and worst ``|p - m| / m`` in percent)
    and ``bias`` (mean signed ``(p - m) / m`` in percent).

    Example:
        >>> errors = prediction_errors([1.1, 1.8], [1.0, 2.0])
        >>> {k: round(v, 6) for k, v in errors.items()}
        {'n': 2, 'spearman': 1.0, 'mape': 10.0, 'max_ape': 10.0, 'bias': 0.0}
    """
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    ape = np.abs(p - m) / m * 100
    return {
        "n": len(m),
        "spearman": spearman(p, m) if len(m) > 1 else float("nan"),
        "mape": float(ape.mean()),
        "max_ape": float(ape.max()),
        "bias": float(((p - m) / m * 100).mean()),
    }


def evaluate(lut: LatencyLUT, archs: Any, actual: Sequence[float] | np.ndarray) -> LUTReport:
    """Compare ``lut``'s predictions for ``archs`` with the ``actual`` latencies."""
    y = np.asarray(actual, dtype=np.float64)
    predicted = lut.predict(archs)
    keep = np.isfinite(y)
    p, a = predicted[keep], y[keep]
    return LUTReport(
        n=int(keep.sum()),
        spearman=spearman(p, a),
        mean_relative_error=mean_relative_error(p, a),
        median_relative_error=float(np.median(np.abs(p - a) / np.abs(a))),
    )


# -- tables of a tabular benchmark --------------------------------------------------------------
@functools.cache
def _benchmark_choices(benchmark: str) -> np.ndarray:
    """The choices of every row of a tabular benchmark, shape ``(n_rows, n_decisions)``
    (a benchmark's columns follow the order in which its space enumerates architectures)."""
    from nasforge import spaces, tabular

    space = spaces.create(tabular.create(benchmark).space)
    choices = np.array([a.choices for a in space], dtype=np.int64)
    choices.setflags(write=False)
    return choices


def fit_table(
    benchmark: str,
    dataset: str,
    metric: str,
    *,
    n_train: int | None = 500,
    seed: int = 0,
) -> tuple[LatencyLUT, np.ndarray]:
    """Fit a table to a column of a tabular benchmark (e.g. ``latency_ms[pixel3]``).

    Args:
        benchmark: Registry name (``"nb201"``).
        dataset: Its dataset (the input size of the latency: ``"cifar10"`` is 32×32).
        metric: The column, ``latency_ms[device]`` or another cost.
        n_train: Cells drawn at random (without replacement) to fit on; ``None`` fits on all.
        seed: Seed of that draw.

    Returns:
        ``(lut, held_out)``: the table, and the benchmark rows not used to fit it.
    """
    from nasforge import spaces, tabular

    bench: TabularBenchmark = tabular.create(benchmark)
    space = spaces.create(bench.space)
    y = np.asarray(bench.column(dataset, metric), dtype=np.float64)
    choices = _benchmark_choices(benchmark)
    rows = np.flatnonzero(np.isfinite(y))
    if n_train is not None:
        if n_train < 1:
            raise InvalidConfigError(f"n_train must be at least 1 (or None), got {n_train}.")
        rng = np.random.default_rng(seed)
        train = np.sort(rng.choice(rows, size=min(n_train, len(rows)), replace=False))
    else:
        train = rows
    held_out = np.setdiff1d(rows, train)
    lut = LatencyLUT.fit(space, choices[train], y[train], metric=metric)
    return lut, held_out


def device_report(
    benchmark: str = "nb201",
    dataset: str = "cifar10",
    devices: Sequence[str] | None = None,
    *,
    n_train: int = 500,
    seed: int = 0,
) -> list[DeviceFit]:
    """Fit a table per device on ``n_train`` random cells; judge it on all the others.

    Args:
        benchmark: Registry name of a benchmark with ``devices()`` (``"nb201"``).
        dataset: Its dataset.
        devices: Device names (``latency_ms[device]``); ``None``: every device.
        n_train: Cells to fit each table on.
        seed: Seed of the draw of those cells.
    """
    from nasforge import tabular

    bench = tabular.create(benchmark)
    names = list(devices) if devices is not None else list(bench.devices())  # type: ignore[attr-defined]
    choices = _benchmark_choices(benchmark)
    out = []
    for device in names:
        metric = f"latency_ms[{device}]"
        lut, held_out = fit_table(benchmark, dataset, metric, n_train=n_train, seed=seed)
        actual = np.asarray(bench.column(dataset, metric), dtype=np.float64)[held_out]
        report = evaluate(lut, choices[held_out], actual)
        out.append(DeviceFit(device, metric, n_train, lut, report))
    return out


# -- helpers ------------------------------------------------------------------------------------
def _choices(space: SearchSpace, archs: Any, sizes: Sequence[int]) -> np.ndarray:
    if isinstance(archs, np.ndarray):
        choices = np.asarray(archs, dtype=np.int64)
    else:
        choices = np.asarray([space.check(a).choices for a in archs], dtype=np.int64)
    if choices.ndim != 2 or choices.shape[1] != len(sizes):
        raise InvalidConfigError(
            f"Expected choices of {len(sizes)} decisions per architecture, got shape "
            f"{choices.shape}."
        )
    return choices


def _design(choices: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Constant column, then one indicator per (decision, option >= 1)."""
    columns = [np.ones(len(choices))]
    for d, n in enumerate(sizes):
        for option in range(1, n):
            columns.append((choices[:, d] == option).astype(np.float64))
    return np.stack(columns, axis=1)
