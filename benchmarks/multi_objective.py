"""Multi-objective search quality on NAS-Bench-201: hypervolume ratio to the true front.

For each pair of objectives, runs :func:`nasforge.experiments.pareto.run_pareto_comparison`
with every strategy and seed, and prints, at 100 and 200 queries, the mean ± std over seeds of
``HV(front found) / HV(true front)`` for two reference points (``nadir``: the true front's
nadir moved out by 10 % of its range, the usual choice; ``median``: the table's median in both
objectives, stricter), the worst run's ratio, the share of the true front's points found and
the size of the front found.

Protocol: by default the studies search the objectives they are judged on (cifar10
``test_acc``; the true front is that of test accuracy over all 15,625 cells). ``--protocol
valid`` searches ``valid_acc`` and judges the fronts found by their test accuracy instead (the
NAS-Bench-201 protocol); ``both`` prints the two.

Strategies: ``nsga2`` (nasforge), ``mnasnet-reward`` (soft reward over
``regularized-evolution``, ``T`` = the table's median of the cost metric), ``optuna-nsga2``
(Optuna's NSGAIISampler, its defaults), ``mo-local-search`` (Pareto local search) and
``random``.

``--tune`` instead runs a grid of NSGA-II settings (population size, offspring per
generation, crossover probability) without the other strategies, as used to choose the
defaults of ``nsga2``.

Usage:
    python benchmarks/multi_objective.py [--seeds 100] [--jobs 2] [--protocol test|valid|both]
        [--first-seed 0] [--out DIR] [--tune]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from nasforge import __version__, tabular
from nasforge.experiments.pareto import ParetoComparison, run_pareto_comparison

PAIRS = (
    ("test_acc:max", "latency_ms[edgegpu]:min"),
    ("test_acc:max", "latency_ms[pixel3]:min"),
    ("test_acc:max", "params_M:min"),
)
STRATEGIES = ("nsga2", "mnasnet-reward", "optuna-nsga2", "mo-local-search")
BUDGETS = (100, 200)
TUNE_GRID: dict[str, tuple[Any, ...]] = {
    "population_size": (8, 12, 20, 30),
    "offspring_size": (1, 4, None),
    "crossover_prob": (0.5, 0.9),
}


def _cost_metric(objectives: tuple[str, ...]) -> str:
    return objectives[1].rsplit(":", 1)[0]


def _run(
    strategies: tuple[str, ...],
    objectives: tuple[str, ...],
    report: tuple[str, ...] | None,
    seeds: list[int],
    jobs: int,
    params: dict[str, dict[str, Any]],
    baseline: bool = True,
) -> ParetoComparison:
    return run_pareto_comparison(
        list(strategies),
        objectives=list(objectives),
        report_objectives=None if report is None else list(report),
        dataset="cifar10",
        seeds=seeds,
        budget=max(BUDGETS),
        strategy_params=params,
        n_jobs=jobs,
        baseline=baseline,
    )


def _print_table(
    result: ParetoComparison, *, label: str | None = None, header: bool = True
) -> None:
    nadir = {(r.strategy, r.budget): r for r in result.summary(BUDGETS, reference="nadir")}
    median = {(r.strategy, r.budget): r for r in result.summary(BUDGETS, reference="median")}
    if header:
        print(
            f"  {'strategy':<18} {'HV nadir @100':>16} {'HV nadir @200':>16} {'min@200':>8} "
            f"{'HV median @100':>16} {'HV median @200':>16} {'recall@200':>10} {'|front|':>7}"
        )

    def cell(table: dict[tuple[str, int], Any], strategy: str, budget: int) -> str:
        row = table[(strategy, budget)]
        return f"{row.mean_ratio:.4f} ± {row.std_ratio:.4f}"

    top = max(BUDGETS)
    for strategy in result.strategies:
        last = nadir[(strategy, top)]
        print(
            f"  {label or strategy:<18} {cell(nadir, strategy, 100):>16} "
            f"{cell(nadir, strategy, top):>16} {last.min_ratio:>8.4f} "
            f"{cell(median, strategy, 100):>16} {cell(median, strategy, top):>16} "
            f"{last.recall:>10.3f} {last.mean_front_size:>7.1f}"
        )


def _compare(opts: argparse.Namespace, seeds: list[int]) -> None:
    bench = tabular.create("nb201")
    protocols = ("test", "valid") if opts.protocol == "both" else (opts.protocol,)
    for pair in PAIRS:
        cost = _cost_metric(pair)
        target = float(np.median(bench.column("cifar10", cost)))
        params: dict[str, dict[str, Any]] = {
            "mnasnet-reward": {
                "base": "regularized-evolution",
                "metric": cost,
                "target": target,
                "reward": "soft",
            }
        }
        for protocol in protocols:
            searched = pair if protocol == "test" else ("valid_acc:max", pair[1])
            report = None if protocol == "test" else pair
            started = time.perf_counter()
            result = _run(STRATEGIES, searched, report, seeds, opts.jobs, params)
            seconds = time.perf_counter() - started
            tf = result.true_front
            print(
                f"\n== search {', '.join(searched)}; judged on {', '.join(pair)} "
                f"(cifar10, {len(seeds)} seeds, {seconds:.0f} s)"
            )
            nadir = _raw(result, tf.reference)
            median = _raw(result, result.front("median").reference)
            print(
                f"  true front: {len(tf.rows)} cells; reference nadir {nadir}, median {median}; "
                f"mnasnet-reward T = {target:.4g} ({cost} median)"
            )
            _print_table(result)
            # Optuna's default population (50) leaves 4 generations in 200 queries; also
            # show it with nasforge's NSGA-II population size
            small = _run(
                ("optuna-nsga2",),
                searched,
                report,
                seeds,
                opts.jobs,
                {"optuna-nsga2": {"population_size": 12}},
                baseline=False,
            )
            _print_table(small, label="optuna-nsga2 (12)", header=False)
            if opts.out:
                folder = Path(opts.out) / f"{cost}-{protocol}"
                result.write(folder, budgets=list(BUDGETS))


def _raw(result: ParetoComparison, point: np.ndarray) -> str:
    values = [o.oriented(float(v)) for o, v in zip(result.report_objectives, point, strict=True)]
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _tune(opts: argparse.Namespace, seeds: list[int]) -> None:
    keys = list(TUNE_GRID)
    print(
        "columns: per pair (edgegpu, pixel3, params): HV ratio nadir@100 nadir@200 "
        "median@100 median@200; last: mean of the nadir columns, mean of the median ones"
    )
    for values in itertools.product(*TUNE_GRID.values()):
        setting = dict(zip(keys, values, strict=True))
        if (
            setting["offspring_size"] is not None
            and setting["offspring_size"] >= setting["population_size"]
        ):
            continue
        nadir: list[float] = []
        median: list[float] = []
        cells = []
        for pair in PAIRS:
            result = _run(("nsga2",), pair, None, seeds, opts.jobs, {"nsga2": setting}, False)
            for reference, store in (("nadir", nadir), ("median", median)):
                for row in result.summary(BUDGETS, reference=reference):  # type: ignore[arg-type]
                    store.append(row.mean_ratio)
                    cells.append(f"{row.mean_ratio:.4f}")
        print(
            f"  {setting}: {' '.join(cells)} | {np.mean(nadir):.4f} {np.mean(median):.4f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=100, help="number of seeds (default 100)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds start here")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--protocol", choices=("test", "valid", "both"), default="test")
    parser.add_argument("--out", default=None, help="folder for summary files and plots")
    parser.add_argument("--tune", action="store_true", help="grid over NSGA-II settings")
    opts = parser.parse_args(argv)
    seeds = list(range(opts.first_seed, opts.first_seed + opts.seeds))
    print(
        f"settings: nb201 cifar10, budgets {BUDGETS}, seeds {seeds[0]}..{seeds[-1]}, "
        f"jobs={opts.jobs}, protocol={opts.protocol}{', tune' if opts.tune else ''}"
    )
    from importlib.metadata import version

    print(
        f"nasforge {__version__}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"optuna {version('optuna')}, moocore {version('moocore')}, {sys.platform}"
    )
    started = time.perf_counter()
    if opts.tune:
        _tune(opts, seeds)
    else:
        _compare(opts, seeds)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
