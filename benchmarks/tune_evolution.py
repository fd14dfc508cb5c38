"""Grid over regularized evolution's population and tournament sizes on NAS-Bench-201.

Prints, for each (population_size, tournament_size), the mean test accuracy of the
best-by-validation architecture and the share of runs that found the dataset's validation
optimum, at 100 and 200 queries, averaged over seeds and the three datasets.

Usage: python benchmarks/tune_evolution.py [--seeds 100] [--grid 10x10,30x20]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import nasforge


def run(args: tuple[str, int, int, int, int]) -> tuple[str, int, int, np.ndarray]:
    dataset, population, tournament, seeds, budget = args
    bench = nasforge.tabular.create("nb201")
    best_valid = float(np.nanmax(bench.column(dataset, "valid_acc")))
    ev = nasforge.evaluators.create("tabular", dataset=dataset, metrics=["valid_acc", "test_acc"])
    out = np.zeros((seeds, 2, 2))  # seed, budget index (100, 200), (test, hit)
    for seed in range(seeds):
        study = nasforge.create_study(
            strategy="regularized-evolution",
            seed=seed,
            strategy_params={"population_size": population, "tournament_size": tournament},
        )
        study.optimize(ev, n_trials=budget)
        for b, limit in enumerate((100, 200)):
            best = max(study.trials[:limit], key=lambda t: t.metrics["valid_acc"])
            out[seed, b] = best.metrics["test_acc"], best.metrics["valid_acc"] >= best_valid - 1e-9
    return dataset, population, tournament, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--datasets", default="cifar10,cifar100,imagenet16-120")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--grid",
        default="10x3,10x5,10x10,20x3,20x5,20x10,20x20,30x5,30x10,30x20,50x10,50x20",
        help="population x tournament pairs, comma separated",
    )
    opts = parser.parse_args()
    grid = [tuple(int(v) for v in pair.split("x")) for pair in opts.grid.split(",")]
    datasets = opts.datasets.split(",")
    tasks = [(d, p, s, opts.seeds, 200) for (p, s) in grid for d in datasets]
    start = time.perf_counter()
    with ProcessPoolExecutor(opts.jobs) as pool:
        results = list(pool.map(run, tasks))
    table: dict[tuple[int, int], list[np.ndarray]] = {}
    for _, p, s, out in results:
        table.setdefault((p, s), []).append(out)
    print(f"seeds={opts.seeds} datasets={datasets} ({time.perf_counter() - start:.0f} s)")
    print("  P   S | test@100 opt@100 | test@200 opt@200   (means over datasets)")
    for (p, s), outs in sorted(table.items()):
        arr = np.stack(outs)  # dataset, seed, budget, (test, hit)
        m = arr.mean(axis=(0, 1))
        print(f"{p:3d} {s:3d} | {m[0, 0]:8.3f} {m[0, 1]:6.1%} | {m[1, 0]:8.3f} {m[1, 1]:6.1%}")


if __name__ == "__main__":
    main()
