"""Compare multi-objective searches: hypervolume of the front found, against the true front.

Every strategy is run with many seeds, on one dataset of a tabular benchmark, for the same
objectives and the same query budget, each run in an in-memory study
(``nasforge.create_study(objectives=[...])``) answered by the tabular evaluator. At each
budget ``b`` a run is judged by the front of the trials it made within ``b`` queries: the
**hypervolume ratio** ``HV(found) / HV(true front)``, where the true front is that of every
cell of the benchmark (:func:`nasforge.pareto.true_front`) and both volumes use one reference
point computed from the table (:func:`nasforge.pareto.reference_point`: ``"nadir"`` by
default, or the stricter ``"median"``). A ratio of 1 means the run found the whole front.
Reported as mean ± standard deviation over seeds, with the share of the true front's points
found (``recall``).

**Protocol: what the search sees and what is reported.** By default a run searches the
objectives it is judged on (``report_objectives=None``): on NAS-Bench-201 with
``test_acc:max`` the study optimises test accuracy and the true front is the test-accuracy
front, so the ratio measures search quality alone and a perfect search reaches 1. With
``report_objectives`` (same length, e.g. search ``valid_acc:max``, report ``test_acc:max``,
the protocol of the NAS-Bench-201 paper) the run's front is chosen by what the search saw and
judged by the reported metrics against the true front of those; then even a perfect search
stays below 1, by how much validation and test accuracy disagree.

Strategies that must know the number of objectives before their first trial (those taking an
``n_objectives`` parameter, such as ``optuna-nsga2``) get it filled in unless it is given.

Example:
    >>> from nasforge.experiments.pareto import run_pareto_comparison
    >>> result = run_pareto_comparison(
    ...     ["nsga2"], objectives=["test_acc:max", "params_M:min"], seeds=2, budget=30, n_jobs=1
    ... )
    >>> [(r.strategy, r.budget, r.n_runs) for r in result.summary([30])]
    [('nsga2', 30, 2), ('random', 30, 2)]
"""

from __future__ import annotations

import csv
import inspect
import logging
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from nasforge import evaluators, spaces, tabular
from nasforge import strategies as strategy_registry
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.experiments._tasks import (
    check_budgets,
    check_names,
    check_seeds,
    chunk_size,
    run_tasks,
    worker_count,
)
from nasforge.pareto import ReferenceKind, TrueFront, front_indices, hypervolume, true_front
from nasforge.study import create_study
from nasforge.trial import Objective, TrialState

__all__ = ["ParetoComparison", "ParetoSummaryRow", "run_pareto_comparison"]

logger = logging.getLogger(__name__)

#: The baseline strategy; always run.
BASELINE = "random"
#: Budgets (queries) reported by default, where they do not exceed the budget.
DEFAULT_BUDGETS = (50, 100, 200)
_TOL = 1e-9


@dataclass(frozen=True)
class ParetoSummaryRow:
    """How one strategy did within a budget, over all seeds.

    Attributes:
        strategy: Registry name of the strategy.
        budget: Queries each run had; trials beyond it are left out.
        reference: The reference point choice of the hypervolume (``"nadir"``/``"median"``).
        n_runs: Runs (seeds).
        mean_ratio: Mean over runs of ``HV(front found) / HV(true front)``.
        std_ratio: Its sample standard deviation (``ddof=1``); 0 for one run.
        min_ratio: The worst run's ratio.
        mean_front_size: Mean number of non-dominated trials of a run.
        recall: Mean share of the true front's distinct points that a run evaluated.
    """

    strategy: str
    budget: int
    reference: str
    n_runs: int
    mean_ratio: float
    std_ratio: float
    min_ratio: float
    mean_front_size: float
    recall: float


@dataclass(frozen=True)
class _Run:
    """One run: the benchmark row of each trial (-1 when it has no scores) and its cost."""

    seed: int
    rows: np.ndarray
    cost: np.ndarray


@dataclass(frozen=True)
class _Task:
    index: int
    benchmark: str
    space: str
    dataset: str
    strategy: str
    params: Mapping[str, Any]
    objectives: tuple[str, ...]
    metrics: tuple[str, ...]
    budget: int
    seeds: tuple[int, ...]


class ParetoComparison:
    """The outcome of :func:`run_pareto_comparison`; not meant to be built by hand.

    Attributes:
        strategies: The strategies compared, ``"random"`` last when not asked for (unless
            ``baseline=False``).
        objectives: What the studies optimised.
        report_objectives: What the fronts are judged on (``objectives`` by default).
        dataset, benchmark: Where.
        seeds: The seeds; each strategy ran once per seed.
        budget: Queries per run.
        strategy_params: Parameters each strategy was built with.
        true_front: The true front of ``report_objectives`` (reference ``"nadir"``).
    """

    def __init__(
        self,
        *,
        strategies: tuple[str, ...],
        objectives: tuple[Objective, ...],
        report_objectives: tuple[Objective, ...],
        dataset: str,
        benchmark: str,
        seeds: tuple[int, ...],
        budget: int,
        strategy_params: Mapping[str, Mapping[str, Any]],
        runs: Mapping[str, Sequence[_Run]],
    ) -> None:
        self.strategies = strategies
        self.objectives = objectives
        self.report_objectives = report_objectives
        self.dataset = dataset
        self.benchmark = benchmark
        self.seeds = seeds
        self.budget = budget
        self.strategy_params = {k: dict(v) for k, v in strategy_params.items()}
        self._runs = {k: tuple(v) for k, v in runs.items()}
        bench = tabular.create(benchmark)
        self.true_front: TrueFront = true_front(bench, dataset, report_objectives)
        self._fronts: dict[str, TrueFront] = {"nadir": self.true_front}
        self._search = _oriented_columns(bench, dataset, objectives)
        self._report = _oriented_columns(bench, dataset, report_objectives)
        self._targets = np.unique(np.round(self.true_front.points, 9), axis=0)

    def front(self, reference: ReferenceKind = "nadir") -> TrueFront:
        """The true front with the reference point ``reference``."""
        if reference not in self._fronts:
            self._fronts[reference] = self.true_front.with_reference(reference)
        return self._fronts[reference]

    # -- per run ------------------------------------------------------------------------------
    def runs(self, strategy: str) -> tuple[_Run, ...]:
        if strategy not in self._runs:
            raise InvalidConfigError(
                f"This comparison has no runs of {strategy!r}; its strategies are "
                f"{list(self.strategies)}."
            )
        return self._runs[strategy]

    def found(self, strategy: str, seed: int, budget: int | None = None) -> np.ndarray:
        """The front a run found within ``budget`` queries, in oriented reported values:
        its trials not dominated in the *searched* objectives (distinct cells)."""
        for run in self.runs(strategy):
            if run.seed == seed:
                return self._found(run, self.budget if budget is None else budget)
        raise InvalidConfigError(f"No run of {strategy!r} has seed {seed}.")

    def _found(self, run: _Run, budget: int) -> np.ndarray:
        within = np.cumsum(run.cost) <= budget + _TOL
        rows = np.unique(run.rows[within & (run.rows >= 0)])
        if len(rows) == 0:
            return np.zeros((0, len(self.report_objectives)))
        search = self._search[rows]
        rows = rows[~np.isnan(search).any(axis=1)]
        best = rows[front_indices(self._search[rows])]
        return np.asarray(self._report[best])

    def ratios(self, strategy: str, budget: int, reference: ReferenceKind = "nadir") -> np.ndarray:
        """The hypervolume ratio of each run (in the order of :attr:`seeds`)."""
        tf = self.front(reference)
        return np.array(
            [
                hypervolume(self._found(run, budget), tf.reference) / tf.hypervolume
                for run in self.runs(strategy)
            ]
        )

    # -- summaries ----------------------------------------------------------------------------
    def default_budgets(self) -> list[int]:
        return sorted({b for b in DEFAULT_BUDGETS if b <= self.budget} | {self.budget})

    def summary(
        self,
        budgets: Sequence[int] | None = None,
        reference: ReferenceKind = "nadir",
    ) -> list[ParetoSummaryRow]:
        """One row per budget and strategy (budgets outer)."""
        chosen = self.default_budgets() if budgets is None else check_budgets(budgets, self.budget)
        tf = self.front(reference)
        rows = []
        for budget in chosen:
            for strategy in self.strategies:
                ratios, sizes, recalls = [], [], []
                for run in self.runs(strategy):
                    found = self._found(run, budget)
                    ratios.append(hypervolume(found, tf.reference) / tf.hypervolume)
                    sizes.append(len(found))
                    recalls.append(self._recall(found))
                r = np.array(ratios)
                rows.append(
                    ParetoSummaryRow(
                        strategy=strategy,
                        budget=budget,
                        reference=reference,
                        n_runs=len(r),
                        mean_ratio=float(r.mean()),
                        std_ratio=float(r.std(ddof=1)) if len(r) > 1 else 0.0,
                        min_ratio=float(r.min()),
                        mean_front_size=float(np.mean(sizes)),
                        recall=float(np.mean(recalls)),
                    )
                )
        return rows

    def _recall(self, found: np.ndarray) -> float:
        if len(found) == 0:
            return 0.0
        rounded = np.round(found, 9)
        hits = [bool(np.any(np.all(rounded == target, axis=1))) for target in self._targets]
        return float(np.mean(hits))

    def to_json(self, budgets: Sequence[int] | None = None) -> dict[str, Any]:
        """Settings and both summaries (``"nadir"`` and ``"median"`` references) as JSON data."""
        return {
            "benchmark": self.benchmark,
            "dataset": self.dataset,
            "objectives": [str(o) for o in self.objectives],
            "report_objectives": [str(o) for o in self.report_objectives],
            "budget": self.budget,
            "n_seeds": len(self.seeds),
            "seeds": list(self.seeds),
            "strategy_params": self.strategy_params,
            "true_front_size": len(self.true_front.rows),
            "references": {
                kind: [float(v) for v in self.front(kind).reference] for kind in ("nadir", "median")
            },
            "summary": [
                asdict(row)
                for kind in ("nadir", "median")
                for row in self.summary(budgets, reference=kind)
            ],
        }

    def write(self, out: str | Path, budgets: Sequence[int] | None = None) -> dict[str, Path]:
        """Write ``summary.csv`` (both references), ``summary.json`` and ``fronts.png`` (the
        front each strategy found with the first seed, against the true front) into ``out``."""
        import json

        from nasforge.pareto import plot_front

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        data = self.to_json(budgets)
        paths = {
            "summary": folder / "summary.csv",
            "json": folder / "summary.json",
        }
        with paths["summary"].open("w", newline="") as handle:
            writer = csv.writer(handle)
            columns = [f.name for f in fields(ParetoSummaryRow)]
            writer.writerow(columns)
            for row in data["summary"]:
                writer.writerow([row[c] for c in columns])
        paths["json"].write_text(json.dumps(data, indent=2))
        if len(self.report_objectives) >= 2:
            for strategy in self.strategies:
                path = folder / f"front-{strategy}.png"
                plot_front(
                    self.found(strategy, self.seeds[0]),
                    self.true_front,
                    path,
                    title=f"{strategy}, seed {self.seeds[0]}, {self.budget} queries",
                )
                paths[f"plot-{strategy}"] = path
        return paths


def run_pareto_comparison(
    strategies: Sequence[str],
    *,
    objectives: Sequence[str | Objective] = ("test_acc:max", "latency_ms[edgegpu]:min"),
    report_objectives: Sequence[str | Objective] | None = None,
    dataset: str = "cifar10",
    benchmark: str = "nb201",
    seeds: int | Sequence[int] = 50,
    budget: int = 200,
    strategy_params: Mapping[str, Mapping[str, Any]] | None = None,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    baseline: bool = True,
) -> ParetoComparison:
    """Run every strategy with every seed for ``objectives``; see the module docstring.

    Args:
        strategies: Registry names; ``"random"`` is added as the baseline (see ``baseline``).
        objectives: What every study optimises, e.g. ``["test_acc:max", "params_M:min"]``.
        report_objectives: What the found fronts are judged on (same length); ``None``:
            ``objectives``.
        dataset: Dataset of the benchmark.
        benchmark: Registry name of a tabular benchmark.
        seeds: A number of seeds (``50`` runs seeds 0..49) or a list of seeds.
        budget: Queries of each run.
        strategy_params: Parameters per strategy, ``{"nsga2": {"population_size": 20}}``.
        n_jobs: Worker processes (``None``: one per CPU core; 1 runs here).
        progress: Called as ``progress(done, total)`` in runs.
        baseline: Add ``"random"`` when it is not among ``strategies`` (turn off to tune
            one strategy's parameters without rerunning the baseline each time).

    Raises:
        InvalidConfigError, UnknownNameError: A name, objective or parameter is invalid.
    """
    names = check_names(strategies, "strategies", "strategies=['nsga2']")
    if baseline and BASELINE not in names:
        names = (*names, BASELINE)
    parsed = tuple(Objective.parse(o) for o in objectives)
    if not parsed:
        raise InvalidConfigError("Give at least one objective, e.g. 'test_acc:max'.")
    reported = (
        parsed
        if report_objectives is None
        else tuple(Objective.parse(o) for o in report_objectives)
    )
    if len(reported) != len(parsed):
        raise InvalidConfigError(
            f"report_objectives must name one objective per searched objective "
            f"({len(parsed)}), got {len(reported)}."
        )
    seed_list = check_seeds(seeds)
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < 1:
        raise InvalidConfigError(f"budget must be a positive whole number, got {budget!r}.")
    if n_jobs is not None and (isinstance(n_jobs, bool) or n_jobs < 1):
        raise InvalidConfigError(f"n_jobs must be a positive number or None, got {n_jobs!r}.")
    params = {name: dict(value) for name, value in (strategy_params or {}).items()}
    stray = sorted(set(params) - set(names))
    if stray:
        raise InvalidConfigError(
            f"strategy_params names {stray}, which are not compared; the strategies are "
            f"{list(names)}."
        )
    bench = tabular.create(benchmark)
    space = spaces.create(bench.space)
    for name in names:
        factory = strategy_registry.get(name)
        own = params.setdefault(name, {})
        if "n_objectives" in inspect.signature(factory).parameters:
            own.setdefault("n_objectives", len(parsed))
        strategy_registry.create(name, space, seed=0, **own)
    metrics = tuple(dict.fromkeys(o.metric for o in (*parsed, *reported)))
    evaluator = evaluators.create(
        "tabular", benchmark=benchmark, dataset=dataset, metrics=list(metrics)
    )
    dataset = str(getattr(evaluator, "dataset", dataset))

    n_workers = worker_count(n_jobs)
    total = len(names) * len(seed_list)
    chunk = chunk_size(total, n_workers)
    tasks = [
        _Task(
            index=index,
            benchmark=benchmark,
            space=bench.space,
            dataset=dataset,
            strategy=name,
            params=params[name],
            objectives=tuple(str(o) for o in parsed),
            metrics=metrics,
            budget=int(budget),
            seeds=seed_list[i : i + chunk],
        )
        for index, (name, i) in enumerate(
            (name, i) for name in names for i in range(0, len(seed_list), chunk)
        )
    ]
    logger.info(
        "pareto comparison of %s for %s on %s %s: %d seeds, budget %d, %d tasks",
        list(names),
        [str(o) for o in parsed],
        benchmark,
        dataset,
        len(seed_list),
        budget,
        len(tasks),
    )
    results = run_tasks(_run_chunk, tasks, n_workers, total, progress)
    runs: dict[str, list[_Run]] = {name: [] for name in names}
    for task, chunk_runs in zip(tasks, results, strict=True):
        runs[task.strategy].extend(chunk_runs)
    return ParetoComparison(
        strategies=names,
        objectives=parsed,
        report_objectives=reported,
        dataset=dataset,
        benchmark=benchmark,
        seeds=seed_list,
        budget=int(budget),
        strategy_params=params,
        runs=runs,
    )


def _run_chunk(task: _Task) -> list[_Run]:
    """Run the seeds of one task (in a worker process, or in this one)."""
    row_of = _row_lookup(tabular.create(task.benchmark))
    evaluator = evaluators.create(
        "tabular", benchmark=task.benchmark, dataset=task.dataset, metrics=list(task.metrics)
    )
    out = []
    for seed in task.seeds:
        study = create_study(
            space=task.space,
            strategy=task.strategy,
            seed=seed,
            objectives=task.objectives,
            study_name=f"pareto-{task.strategy}-seed{seed}",
            strategy_params=task.params,
        )
        study.optimize(evaluator, budget=task.budget)
        trials = study.trials
        rows = np.array(
            [
                row_of(t.arch)
                if t.state is TrialState.COMPLETE and t.scores is not None and not t.fidelity
                else -1
                for t in trials
            ],
            dtype=np.int64,
        )
        cost = np.array([t.cost for t in trials], dtype=np.float64)
        out.append(_Run(seed, rows, cost))
    return out


def _row_lookup(bench: Any) -> Callable[[Architecture], int]:
    """Architecture to benchmark row: the benchmark's ``row`` where it has one, else the
    position in the space's enumeration (the order of the benchmark's columns)."""
    row = getattr(bench, "row", None)
    if callable(row):
        return lambda arch: int(row(arch))
    index = {arch: i for i, arch in enumerate(spaces.create(bench.space))}
    return index.__getitem__


def _oriented_columns(bench: Any, dataset: str, objectives: Sequence[Objective]) -> np.ndarray:
    columns = np.stack(
        [np.asarray(bench.column(dataset, o.metric), dtype=np.float64) for o in objectives],
        axis=1,
    )
    signs = np.array([o.oriented(1.0) for o in objectives])
    return np.asarray(columns * signs)
