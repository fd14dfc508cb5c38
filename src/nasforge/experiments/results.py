"""The results of a comparison: every trial of every run, summaries (mean, spread, optimum
rate, relative improvement over random search), trajectories and the files they are written
to. :func:`nasforge.experiments.compare.run_comparison` builds a :class:`Comparison`; see that
module for the protocol.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.constraints import Constraint
from nasforge.errors import InvalidConfigError
from nasforge.experiments._knowledge import Entry
from nasforge.experiments._tasks import (
    check_budgets,
)

__all__ = ["BASELINE", "DEFAULT_BUDGETS", "TRIAL_COLUMNS", "Comparison", "SummaryRow"]

logger = logging.getLogger(__name__)

#: The baseline strategy of the relative improvement; always run.
BASELINE = "random"


#: Budgets (queries) reported by default, where they do not exceed the comparison's budget.
DEFAULT_BUDGETS = (10, 25, 50, 100, 200)


#: Columns of the tidy trial table (:meth:`Comparison.trial_rows`, ``trials.csv``).
TRIAL_COLUMNS = (
    "benchmark",
    "dataset",
    "strategy",
    "seed",
    "trial",
    "arch",
    "fidelity",
    "valid_acc",
    "test_acc",
    "cost",
    "cum_cost",
    "best_valid",
    "best_test",
    "seconds",
)


#: Two accuracies closer than this are equal (the "optimum found" test).
_TOL = 1e-9


#: What each run records: the objective and the metric it is judged by.
_METRICS = ("valid_acc", "test_acc")


@dataclass(frozen=True)
class SummaryRow:
    """How one strategy did on one dataset within a budget, over all seeds.

    Attributes:
        dataset: Dataset of the benchmark.
        strategy: Registry name of the strategy.
        budget: Queries (cost units) each run had; trials beyond it are left out.
        n_runs: Runs (seeds) that completed at least one trial within the budget.
        mean_test: Mean over runs of the test accuracy of the run's best-by-validation
            architecture among its queries within the budget.
        std_test: Sample standard deviation (``ddof=1``) of that accuracy; 0 for one run.
        mean_valid: Mean over runs of the best validation accuracy within the budget.
        optimum_rate: Share of runs (0..1) whose best validation accuracy equals the best
            validation accuracy of any architecture of the dataset.
        ri: Relative improvement over random search at the same dataset and budget,
            ``100 * (mean_test - random_mean_test) / random_mean_test`` (Yang et al., 2020).
        mean_seconds: Mean over runs of the wall time spent by the end of the budget (its
            last trial within the budget), with ``seconds_per_query`` charged per query;
            for a one-shot method, the whole search time.
        test_regret: Mean over runs of the test regret: the best test accuracy of any
            (feasible) architecture of the dataset minus the test accuracy of the run's
            pick. Where the validation optimum is not the test optimum (imagenet16-120),
            the optimum rate alone misleads; the regret does not.
        dedupe: Whether the runs' studies deduplicated (``None``: a one-shot method).
        knowledge: What the strategy knew of functional equivalence (see
            :func:`nasforge.experiments._knowledge.knowledge`).

    A one-shot method's row describes its final derived architecture at every budget (it
    makes no queries).
    """

    dataset: str
    strategy: str
    budget: int
    n_runs: int
    mean_test: float
    std_test: float
    mean_valid: float
    optimum_rate: float
    ri: float
    mean_seconds: float = math.nan
    test_regret: float = math.nan
    dedupe: bool | None = None
    knowledge: str = ""


@dataclass(frozen=True)
class _Run:
    """The compact record of one search run, cheap to send back from a worker process."""

    seed: int
    archs: tuple[str, ...]
    fidelity: tuple[str, ...]  # "" for full fidelity, else e.g. "epochs=12"
    valid: np.ndarray
    test: np.ndarray
    cost: np.ndarray
    eligible: np.ndarray  # scored at full fidelity (not failed, screened or infeasible)
    seconds: np.ndarray  # wall seconds the run had spent when the trial's result was known
    latest: bool = False  # one-shot: the run stands for its latest architecture, not the best


@dataclass
class _Curves:
    """Best-so-far accuracies of every seed at each whole number of queries ``1..budget``."""

    valid: np.ndarray  # (n_seeds, budget), NaN before the first completed trial
    test: np.ndarray


class Comparison:
    """The outcome of :func:`run_comparison`: every trial of every run, and their summaries.

    Built by :func:`run_comparison`; not meant to be constructed by hand.

    Attributes:
        strategies: The strategies compared, in the order asked for, followed by ``"random"``
            when it was not asked for (it is always run as the baseline of RI).
        datasets: The datasets searched.
        seeds: The seeds of the runs; each strategy and dataset was run once per seed.
        budget: Queries (cost units of the tabular evaluator) of each run.
        benchmark: Registry name of the tabular benchmark.
        strategy_params: The parameters each strategy was built with.
        dedupe: The deduplication setting of every run (``True``/``False``), or ``"both"``
            when every strategy was run with it and without it (then :attr:`strategies`
            holds ``"<strategy>[dedupe]"`` and ``"<strategy>[no-dedupe]"``).
        entries: For each name of :attr:`strategies`, the strategy, its setting and what it
            knew (:class:`~nasforge.experiments._knowledge.Entry`).
        optima: For each dataset, the best validation accuracy of any architecture.
        test_optima: For each dataset, the best test accuracy of any architecture (the
            reference of the test regret).
        fidelity: The training epochs of the table searched (``None``: the full training).
        oneshot: Those of :attr:`strategies` that are one-shot methods.
        seconds_per_query: Seconds charged per query (cost unit) on the time axis.
        oneshot_settings: Supernet settings and epochs of the one-shot runs (empty if none).
    """

    def __init__(
        self,
        *,
        strategies: tuple[str, ...],
        datasets: tuple[str, ...],
        seeds: tuple[int, ...],
        budget: int,
        benchmark: str,
        strategy_params: Mapping[str, Mapping[str, Any]],
        optima: Mapping[str, float],
        runs: Mapping[tuple[str, str], Sequence[_Run]],
        entries: Mapping[str, Entry],
        dedupe: bool | str = False,
        test_optima: Mapping[str, float] | None = None,
        fidelity: int | None = None,
        oneshot: tuple[str, ...] = (),
        seconds_per_query: float = 0.0,
        oneshot_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.strategies = strategies
        self.datasets = datasets
        self.seeds = seeds
        self.budget = budget
        self.benchmark = benchmark
        self.strategy_params = {k: dict(v) for k, v in strategy_params.items()}
        self.optima = dict(optima)
        self.dedupe = dedupe
        self.entries = dict(entries)
        self.test_optima = dict(test_optima or {})
        self.fidelity = fidelity
        self.oneshot = oneshot
        self.seconds_per_query = float(seconds_per_query)
        self.oneshot_settings = dict(oneshot_settings or {})
        self._runs = {key: tuple(value) for key, value in runs.items()}
        self._curves: dict[tuple[str, str], _Curves] = {}

    # -- per-run trajectories ---------------------------------------------------------------
    def trajectories(self, strategy: str, dataset: str) -> tuple[np.ndarray, np.ndarray]:
        """Best-so-far validation and test accuracy of each seed after ``1..budget`` queries.

        Returns:
            ``(best_valid, best_test)``, each of shape ``(len(seeds), budget)``: column ``q``
            holds, for each seed, the accuracies of the best-by-validation architecture among
            the trials whose cumulative cost is at most ``q + 1`` (NaN before the first
            completed trial).
        """
        key = (strategy, dataset)
        if key not in self._runs:
            raise InvalidConfigError(
                f"This comparison has no runs of strategy {strategy!r} on dataset {dataset!r}; "
                f"its strategies are {list(self.strategies)} and datasets {list(self.datasets)}."
            )
        curves = self._curves.get(key)
        if curves is None:
            grid = np.arange(1, self.budget + 1, dtype=np.float64)
            valid = np.full((len(self.seeds), self.budget), np.nan)
            test = np.full((len(self.seeds), self.budget), np.nan)
            for i, run in enumerate(self._runs[key]):
                best_valid, best_test = _picked(run)
                last = np.searchsorted(np.cumsum(run.cost), grid + _TOL, side="right") - 1
                seen = last >= 0
                valid[i, seen] = best_valid[last[seen]]
                test[i, seen] = best_test[last[seen]]
            curves = self._curves[key] = _Curves(valid, test)
        return curves.valid, curves.test

    def time_trajectories(
        self, strategy: str, dataset: str, seconds: Sequence[float] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """What each seed's run stood for after each wall time in ``seconds``.

        A black-box run stands for its best-by-validation architecture among the trials
        finished by then; a one-shot run for its latest derived architecture. A run's time
        is the wall time it had spent (measured) plus :attr:`seconds_per_query` per query.

        Returns:
            ``(valid, test)``, each of shape ``(len(seeds), len(seconds))``, NaN before a
            run's first result.
        """
        self.trajectories(strategy, dataset)  # checks the pair
        grid = np.asarray(seconds, dtype=np.float64)
        valid = np.full((len(self.seeds), len(grid)), np.nan)
        test = np.full((len(self.seeds), len(grid)), np.nan)
        for i, run in enumerate(self._runs[(strategy, dataset)]):
            when, run_valid, run_test = self._timeline(run)
            last = np.searchsorted(when, grid, side="right") - 1
            seen = last >= 0
            valid[i, seen] = run_valid[last[seen]]
            test[i, seen] = run_test[last[seen]]
        return valid, test

    def seconds_range(self) -> tuple[float, float]:
        """The earliest and the latest time a result of any run was known (charged)."""
        times = [
            when[np.isfinite(run_valid)]
            for runs in self._runs.values()
            for run in runs
            for when, run_valid, _ in [self._timeline(run)]
        ]
        known = np.concatenate(times) if times else np.empty(0)
        if known.size == 0:
            return 0.0, 1.0
        return float(known.min()), float(known.max())

    def _timeline(self, run: _Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The run's trials in the order their results were known: (time, valid, test)
        of what the run stood for after each."""
        order = np.argsort(run.seconds, kind="stable")
        columns = ("valid", "test", "cost", "eligible", "seconds")
        ordered = replace(run, **{name: getattr(run, name)[order] for name in columns})
        when = ordered.seconds + self.seconds_per_query * np.cumsum(ordered.cost)
        picked_valid, picked_test = _picked(ordered)  # reads only the reordered columns
        return when, picked_valid, picked_test

    def _run_seconds(self, run: _Run, budget: int) -> float:
        """Charged wall time of ``run`` at its last trial within ``budget`` queries."""
        within = np.cumsum(run.cost) <= budget + _TOL
        if not within.any():
            return math.nan
        charged = run.seconds + self.seconds_per_query * np.cumsum(run.cost)
        return float(np.max(charged[within]))

    # -- summaries ----------------------------------------------------------------------------
    def default_budgets(self) -> list[int]:
        """Those of 10, 25, 50, 100, 200 queries within the budget, and the budget itself."""
        return sorted({b for b in DEFAULT_BUDGETS if b <= self.budget} | {self.budget})

    def summary(self, budgets: Sequence[int] | None = None) -> list[SummaryRow]:
        """One row per dataset, budget and strategy (in that order of nesting).

        Args:
            budgets: Query budgets to summarise at, each between 1 and :attr:`budget`;
                ``None`` gives :meth:`default_budgets`.

        Raises:
            InvalidConfigError: A budget is not a whole number between 1 and :attr:`budget`.
        """
        chosen = self.default_budgets() if budgets is None else check_budgets(budgets, self.budget)
        rows = []
        for dataset in self.datasets:
            optimum = self.optima[dataset]
            for b in chosen:
                stats = {s: self._stats(s, dataset, b, optimum) for s in self.strategies}
                best_test = self.test_optima.get(dataset, math.nan)
                for strategy in self.strategies:
                    s = stats[strategy]
                    baseline = stats[self.baseline(strategy)]["mean_test"]
                    ri = 100.0 * (s["mean_test"] - baseline) / baseline
                    entry = self.entries[strategy]
                    rows.append(
                        SummaryRow(
                            dataset,
                            strategy,
                            b,
                            ri=ri,
                            test_regret=best_test - s["mean_test"],
                            dedupe=entry.dedupe,
                            knowledge=entry.knowledge,
                            **s,
                        )
                    )
        return rows

    def baseline(self, strategy: str) -> str:
        """The random-search rows ``strategy``'s RI is measured against: those of the same
        deduplication setting (the first setting's for a one-shot method)."""
        setting = self.entries[strategy].dedupe
        randoms = [
            label
            for label, entry in self.entries.items()
            if entry.strategy == BASELINE and (setting is None or entry.dedupe == setting)
        ]
        return randoms[0] if randoms else BASELINE

    def _stats(self, strategy: str, dataset: str, budget: int, optimum: float) -> dict[str, Any]:
        valid_all, test_all = self.trajectories(strategy, dataset)
        valid, test = valid_all[:, budget - 1], test_all[:, budget - 1]
        ok = ~np.isnan(valid)
        valid, test = valid[ok], test[ok]
        n = int(ok.sum())
        if n == 0:
            nan = math.nan
            return {
                "n_runs": 0,
                "mean_test": nan,
                "std_test": nan,
                "mean_valid": nan,
                "optimum_rate": nan,
                "mean_seconds": nan,
            }
        times = [self._run_seconds(run, budget) for run in self._runs[(strategy, dataset)]]
        return {
            "n_runs": n,
            "mean_test": float(np.mean(test)),
            "std_test": float(np.std(test, ddof=1)) if n > 1 else 0.0,
            "mean_valid": float(np.mean(valid)),
            "optimum_rate": float(np.mean(valid >= optimum - _TOL)),
            "mean_seconds": float(np.nanmean(times)) if np.isfinite(times).any() else math.nan,
        }

    def to_json(self) -> dict[str, Any]:
        """The summary as plain JSON data (NaN written as ``None``).

        ``{"benchmark", "budget", "n_seeds", "seeds", "strategy_params", "datasets":
        {dataset: {strategy: {"mean_test", "std_test", "mean_valid", "optimum_rate", "ri",
        "n_runs", "by_budget": {"10": {...same keys...}, ...}}}}, "strategies": ...}``, where
        the top-level values are at :attr:`budget`, ``by_budget`` holds every budget of
        :meth:`default_budgets`, and ``"strategies"`` repeats the first dataset's entry.
        """
        per_dataset: dict[str, dict[str, dict[str, Any]]] = {
            d: {
                s: {"dedupe": self.entries[s].dedupe, "knowledge": self.entries[s].knowledge}
                for s in self.strategies
            }
            for d in self.datasets
        }
        by_budget: dict[str, dict[str, dict[str, Any]]] = {
            d: {s: {} for s in self.strategies} for d in self.datasets
        }
        for row in self.summary():
            values = _json_values(row)
            by_budget[row.dataset][row.strategy][str(row.budget)] = values
            if row.budget == self.budget:
                per_dataset[row.dataset][row.strategy].update(values)
        for dataset, entries in per_dataset.items():
            for strategy, entry in entries.items():
                entry["by_budget"] = by_budget[dataset][strategy]
        return {
            "benchmark": self.benchmark,
            "budget": self.budget,
            "n_seeds": len(self.seeds),
            "seeds": list(self.seeds),
            "strategy_params": self.strategy_params,
            "dedupe": self.dedupe,
            "test_optima": self.test_optima,
            "fidelity": self.fidelity,
            "oneshot": list(self.oneshot),
            "oneshot_settings": self.oneshot_settings,
            "seconds_per_query": self.seconds_per_query,
            "datasets": per_dataset,
            "strategies": per_dataset[self.datasets[0]],
        }

    # -- the tidy table -----------------------------------------------------------------------
    def trial_rows(self) -> Iterator[dict[str, Any]]:
        """One dictionary per trial, with the keys of :data:`TRIAL_COLUMNS`.

        Ordered by strategy, dataset, seed and trial number. ``best_valid``/``best_test`` are
        the accuracies of what the run stands for after the trial: the best-by-validation
        trial so far, or for a one-shot method the latest derived architecture (NaN before
        the first completed trial); ``seconds`` is the wall time the run had spent when the
        trial's result was known (measured, without ``seconds_per_query``); metrics a trial
        lacks are NaN.
        """
        for strategy in self.strategies:
            for dataset in self.datasets:
                for run in self._runs[(strategy, dataset)]:
                    best_valid, best_test = _picked(run)
                    cum_cost = np.cumsum(run.cost)
                    for i, arch in enumerate(run.archs):
                        yield {
                            "benchmark": self.benchmark,
                            "dataset": dataset,
                            "strategy": strategy,
                            "seed": run.seed,
                            "trial": i,
                            "arch": arch,
                            "fidelity": run.fidelity[i],
                            "valid_acc": float(run.valid[i]),
                            "test_acc": float(run.test[i]),
                            "cost": float(run.cost[i]),
                            "cum_cost": float(cum_cost[i]),
                            "best_valid": float(best_valid[i]),
                            "best_test": float(best_test[i]),
                            "seconds": float(run.seconds[i]),
                        }

    # -- files --------------------------------------------------------------------------------
    def write(self, out: str | Path) -> dict[str, Path]:
        """Write the comparison into the folder ``out`` (created if needed).

        Files: ``trials.csv`` (the tidy table, missing values empty), ``summary.csv`` (one
        :class:`SummaryRow` per line, default budgets), ``summary.json`` (:meth:`to_json`),
        ``trajectories.png`` (mean best-so-far test accuracy against queries, with 95%
        confidence bands) and, where time means something (one-shot methods in the
        comparison, or a ``seconds_per_query`` charge), ``time.png`` (the same against wall
        time, log scale); a comparison of table look-ups alone spends no time worth plotting.

        Returns:
            The paths, keyed ``"trials"``, ``"summary"``, ``"json"``, ``"plot"`` and (with
            ``time.png``) ``"time_plot"``.
        """
        from nasforge.experiments.plot import plot_time, plot_trajectories

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "trials": folder / "trials.csv",
            "summary": folder / "summary.csv",
            "json": folder / "summary.json",
            "plot": folder / "trajectories.png",
        }
        if self.has_time:
            paths["time_plot"] = folder / "time.png"
        with paths["trials"].open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(TRIAL_COLUMNS)
            for row in self.trial_rows():
                writer.writerow([_csv_value(row[c]) for c in TRIAL_COLUMNS])
        with paths["summary"].open("w", newline="") as handle:
            writer = csv.writer(handle)
            columns = [f.name for f in fields(SummaryRow)]
            writer.writerow(columns)
            for summary_row in self.summary():
                values = asdict(summary_row)
                writer.writerow([_csv_value(values[c]) for c in columns])
        paths["json"].write_text(json.dumps(self.to_json(), indent=2) + "\n")
        plot_trajectories(self, paths["plot"])
        if "time_plot" in paths:
            plot_time(self, paths["time_plot"])
        return paths

    @property
    def has_time(self) -> bool:
        """Whether wall time means something here: one-shot methods train for it, or each
        query is charged ``seconds_per_query``."""
        return bool(self.oneshot) or self.seconds_per_query > 0

    def __repr__(self) -> str:
        return (
            f"Comparison(benchmark={self.benchmark!r}, strategies={list(self.strategies)}, "
            f"datasets={list(self.datasets)}, seeds={len(self.seeds)}, budget={self.budget})"
        )


def _satisfied(constraint: Constraint, column: np.ndarray) -> np.ndarray:
    """Which entries of a benchmark column meet ``constraint`` (NaN never does)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(constraint.satisfied_array(column))


def _picked(run: _Run) -> tuple[np.ndarray, np.ndarray]:
    """Validation and test accuracy of what ``run`` stands for after each trial: its
    best-by-validation trial so far, or (one-shot) its latest eligible trial."""
    if not run.latest:
        return _best_so_far(run.valid, run.test, run.eligible)
    if len(run.valid) == 0:
        return run.valid.copy(), run.test.copy()
    ok = run.eligible & ~np.isnan(run.valid)
    holder = np.maximum.accumulate(np.where(ok, np.arange(len(ok)), -1))
    valid = np.where(holder >= 0, run.valid[np.maximum(holder, 0)], np.nan)
    test = np.where(holder >= 0, run.test[np.maximum(holder, 0)], np.nan)
    return valid.astype(np.float64), test.astype(np.float64)


def _best_so_far(
    valid: np.ndarray, test: np.ndarray, full: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Running best validation accuracy and the test accuracy of the trial that holds it.

    Ties go to the earliest trial (as in ``Study.best_trial``); NaN validation values and
    trials at a reduced fidelity (``full`` false: screening results) never win; both outputs
    are NaN until the first eligible trial.
    """
    if full is not None:
        valid = np.where(full, valid, np.nan)
    if len(valid) == 0:
        return valid.copy(), test.copy()
    scores = np.where(np.isnan(valid), -np.inf, valid)
    running = np.maximum.accumulate(scores)
    improved = np.empty(len(scores), dtype=bool)
    improved[0] = True
    improved[1:] = running[1:] > running[:-1]
    holder = np.maximum.accumulate(np.where(improved, np.arange(len(scores)), 0))
    best_valid = valid[holder].astype(np.float64)
    best_test = test[holder].astype(np.float64)
    none_yet = running == -np.inf
    best_valid[none_yet] = np.nan
    best_test[none_yet] = np.nan
    return best_valid, best_test


def _json_values(row: SummaryRow) -> dict[str, Any]:
    def clean(value: float) -> float | None:
        return None if math.isnan(value) else value

    return {
        "mean_test": clean(row.mean_test),
        "std_test": clean(row.std_test),
        "mean_valid": clean(row.mean_valid),
        "optimum_rate": clean(row.optimum_rate),
        "ri": clean(row.ri),
        "mean_seconds": clean(row.mean_seconds),
        "test_regret": clean(row.test_regret),
        "n_runs": row.n_runs,
    }


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value
