"""Wall time of a 100-query in-memory search with every registered strategy.

Each strategy searches NAS-Bench-201 (bundled table, ``valid_acc`` on cifar10 by default)
for ``--queries`` queries in an in-memory study, with its default parameters; the figure is
the median over ``--repeats`` seeds (after one warm-up run that loads the table and the
registries), in seconds per run and milliseconds per query. Strategies whose optional
dependency is not installed are listed as skipped. Aim (issue 5): BANANAS <= 10 s per
100-query run on 2 CPU cores, ideally about 2 s.

Usage: python benchmarks/strategy_overhead.py [--queries 100] [--repeats 3]
       [--dataset cifar10] [--strategies bananas,random]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import nasforge


def search(strategy: str, dataset: str, queries: int, seed: int) -> float:
    """Seconds of one in-memory study of ``queries`` queries."""
    evaluator = nasforge.evaluators.create("tabular", dataset=dataset, metrics=["valid_acc"])
    start = time.perf_counter()
    study = nasforge.create_study(strategy=strategy, seed=seed, evaluator=evaluator)
    study.optimize(evaluator, budget=queries)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--strategies", default=None, help="comma-separated; default: all")
    opts = parser.parse_args()
    names = opts.strategies.split(",") if opts.strategies else nasforge.strategies.names()
    thread_vars = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    threads = {k: os.environ[k] for k in thread_vars if k in os.environ}
    print(
        f"settings: nb201/{opts.dataset}, {opts.queries} queries, in-memory study, default "
        f"parameters, median of {opts.repeats} seeds after 1 warm-up; {os.cpu_count()} CPU "
        f"core(s), {threads or 'default BLAS threads'}, python {sys.version.split()[0]}"
    )
    print(f"{'strategy':32s} {'s/run':>8s} {'max s':>8s} {'ms/query':>9s}")
    for name in names:
        try:
            search(name, opts.dataset, opts.queries, seed=10_000)  # warm-up
            times = [search(name, opts.dataset, opts.queries, seed) for seed in range(opts.repeats)]
        except ImportError as exc:  # an optional dependency is missing
            print(f"{name:32s} skipped: {exc}")
            continue
        except Exception as exc:  # report and go on with the other strategies
            print(f"{name:32s} error: {type(exc).__name__}: {exc}")
            continue
        median = statistics.median(times)
        print(
            f"{name:32s} {median:8.3f} {max(times):8.3f} {median / opts.queries * 1e3:9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
