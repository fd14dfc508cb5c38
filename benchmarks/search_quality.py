"""Search quality of strategies on NAS-Bench-201: many seeds, three datasets, fixed budgets.

Runs :func:`nasforge.experiments.run_comparison` once at the largest budget and prints, per
dataset and budget, the mean ± std test accuracy of the best-by-validation architecture, the
share of runs that found the dataset's validation optimum, and the relative improvement over
random search (RI, Yang et al., ICLR 2020, arXiv:1912.12522), the mean test regret (the
table's best test accuracy minus the pick's) and what each strategy knew of functional
equivalence. Random search is always run as the baseline. ``--dedupe`` sets functional
deduplication for every strategy alike (``auto``, ``on``, ``off``, or ``both``: every strategy
with and without it, side by side). ``--first-seed`` moves the seeds, e.g. to the held-out
seeds 1000-1099 that strategies were never tuned on. With ``--out DIR`` it also writes
trials.csv, summary.csv, summary.json and trajectories.png there.

Usage:
    python benchmarks/search_quality.py [--strategies random,regularized-evolution]
        [--datasets cifar10,cifar100,imagenet16-120] [--seeds 200] [--first-seed 0]
        [--budgets 100,200] [--dedupe auto|on|off|both] [--benchmark nb201] [--jobs 2]
        [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from nasforge import __version__, tabular
from nasforge.experiments import run_comparison


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    return [int(part) for part in _names(text)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--strategies", type=_names, default=["random", "regularized-evolution"])
    parser.add_argument(
        "--datasets", type=_names, default=["cifar10", "cifar100", "imagenet16-120"]
    )
    parser.add_argument("--seeds", type=int, default=200, help="number of seeds (default 200)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds start here (default 0)")
    parser.add_argument("--dedupe", default="auto", choices=["auto", "on", "off", "both"])
    parser.add_argument("--fidelity", type=int, default=None, help="table epochs, e.g. 12")
    parser.add_argument("--budgets", type=_ints, default=[100, 200], help="queries, e.g. 100,200")
    parser.add_argument("--benchmark", default="nb201")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out", default=None, help="folder for the CSV, JSON and PNG files")
    opts = parser.parse_args(argv)

    budget = max(opts.budgets)
    print(
        f"settings: benchmark={opts.benchmark} strategies={','.join(opts.strategies)} "
        f"datasets={','.join(opts.datasets)} seeds={opts.first_seed}.."
        f"{opts.first_seed + opts.seeds - 1} budgets={','.join(map(str, opts.budgets))} (runs "
        f"of {budget} queries) dedupe={opts.dedupe} fidelity={opts.fidelity or 'full'} "
        f"jobs={opts.jobs}"
    )
    print(
        f"nasforge {__version__}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPU cores, {platform.machine()}"
    )
    start = time.perf_counter()
    comparison = run_comparison(
        opts.strategies,
        datasets=opts.datasets,
        seeds=range(opts.first_seed, opts.first_seed + opts.seeds),
        budget=budget,
        benchmark=opts.benchmark,
        dedupe=opts.dedupe,
        fidelity=opts.fidelity,
        n_jobs=opts.jobs,
        progress=_progress if sys.stderr.isatty() else None,
    )
    seconds = time.perf_counter() - start
    n_runs = len(comparison.strategies) * len(comparison.datasets) * len(comparison.seeds)

    rows = comparison.summary(opts.budgets)
    bench = tabular.create(opts.benchmark)
    width = max(len("strategy"), *(len(s) for s in comparison.strategies))
    for dataset in comparison.datasets:
        best_test = float(np.nanmax(bench.column(dataset, "test_acc", opts.fidelity)))
        for b in sorted(set(opts.budgets)):
            print()
            print(
                f"{opts.benchmark} {dataset}, {b} queries, {len(comparison.seeds)} seeds "
                f"(validation optimum {comparison.optima[dataset]:.3f}, best test in the "
                f"table {best_test:.3f})"
            )
            print(
                f"  {'strategy':<{width}}  {'test acc (mean ± std)':>21}  {'optimum':>8}  "
                f"{'regret':>6}  {'RI (%)':>7}  knowledge"
            )
            for row in rows:
                if row.dataset == dataset and row.budget == b:
                    accuracy = f"{row.mean_test:.3f} ± {row.std_test:.3f}"
                    print(
                        f"  {row.strategy:<{width}}  {accuracy:>21}  "
                        f"{100 * row.optimum_rate:>7.1f}%  {row.test_regret:>6.3f}  "
                        f"{row.ri:>+7.3f}  {row.knowledge}"
                    )
    print()
    queries = n_runs * budget
    print(
        f"wall time: {seconds:.1f} s for {n_runs} runs of {budget} queries "
        f"({queries} queries, {1e6 * seconds * opts.jobs / queries:.0f} µs per query and process)"
    )
    if opts.out:
        start = time.perf_counter()
        paths = comparison.write(opts.out)
        print(
            f"wrote {', '.join(str(p) for p in paths.values())} in "
            f"{time.perf_counter() - start:.1f} s"
        )


def _progress(done: int, total: int) -> None:
    print(f"\r{done}/{total} runs", end="\n" if done == total else "", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
