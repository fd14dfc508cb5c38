"""Every registered strategy compared on a made-up benchmark table of 500 architectures,
plugged in with one call (nasforge.tabular.from_table).

What it measures: the comparison harness (nasforge.experiments.run_comparison, the protocol of
Yang et al., "NAS evaluation is frustratingly hard", ICLR 2020, arXiv:1912.12522) on a table
that is not one of nasforge's benchmarks: for each strategy, the mean ± std over seeds of the
test accuracy of the architecture it picks by validation accuracy within the query budget,
the optimum rate (share of runs that found the table's best validation accuracy) and RI, the
relative improvement over random search.

The table is nasforge.tabular.table_example.example_table(): five operation slots with 3 to
5 options each (1200 combinations), 500 architectures drawn from them, each at 12 and 200
epochs, a smooth made-up accuracy with noise, params_M and train_seconds. It is written as
CSV and as Parquet under OUT, and both files are read with one from_table call each (checked
to give the same space and results). training-free and robot rank candidates by a
zero-cost proxy: the table has no networks to score, so they read a score file written from
the table's params_M column (parameter count, the "params" proxy); mnasnet-reward trades
accuracy for params_M (a free metric of the table). The multi-objective strategies (nsga2,
mo-local-search, optuna-nsga2) run on the single objective, as in any comparison.

Full run (10 seeds x 50 queries, every strategy, one thread; about 3 minutes):
    OMP_NUM_THREADS=1 python benchmarks/table_compare.py --out OUT
Smoke run (2 seeds x 20 queries):
    OMP_NUM_THREADS=1 python benchmarks/table_compare.py --smoke --out /tmp/table_compare

Writes OUT/table.csv, OUT/table.parquet, OUT/proxies.csv, OUT/results.json (the summary) and
the comparison's files (trials.csv, summary.csv...) under OUT/comparison.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("table_compare_out"))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--archs", type=int, default=500, help="architectures in the table")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="2 seeds x 20 queries")
    args = parser.parse_args()
    if args.smoke:
        args.seeds, args.budget = 2, 20

    import torch

    torch.set_num_threads(1)
    import pandas as pd

    import nasforge
    from nasforge.experiments import run_comparison
    from nasforge.tabular import from_table
    from nasforge.tabular.table_example import example_table

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    table = example_table(n_archs=args.archs, seed=0)
    table.to_csv(out / "table.csv", index=False)
    table.to_parquet(out / "table.parquet")
    columns = {
        "metrics": ["valid_acc:max", "test_acc:max", "params_M:min"],
        "fidelity": "epochs",
        "cost": "train_seconds",
        "free": ["params_M"],
    }
    started = time.perf_counter()
    space, evaluator = from_table(out / "table.parquet", **columns)  # the one call
    plugged = time.perf_counter() - started
    space_csv, evaluator_csv = from_table(out / "table.csv", **columns)
    probe = space.sample(__import__("numpy").random.default_rng(0))
    assert space_csv.decisions() == space.decisions() and space_csv.size == space.size
    assert evaluator_csv.evaluate(space_csv.parse(probe.text)) == evaluator.evaluate(probe)
    print(
        f"table: {len(table)} rows, {space.size} architectures, decisions "
        + ", ".join(f"{d.name} ({len(d.options)})" for d in space.decisions())
        + f"; fidelities {evaluator.benchmark.fidelities}; plugged in with one call in "
        f"{plugged * 1000:.0f} ms (CSV and Parquet agree)"
    )

    bench = evaluator.benchmark
    proxies = pd.DataFrame(
        {
            "arch": [a.text for a in space],
            "dataset": "table",
            "params": [bench.query(a, "table", "params_M") for a in space],
        }
    )
    proxies.to_csv(out / "proxies.csv", index=False)
    scores = {"scores": str((out / "proxies.csv").resolve()), "dataset": "table"}
    strategy_params = {
        "mnasnet-reward": {"metric": "params_M"},
        "training-free": {**scores, "proxies": ["params"]},
        "robot": {**scores, "proxies": ["params"]},
    }
    names = nasforge.strategies.names()
    started = time.perf_counter()
    comparison = run_comparison(
        names,
        datasets=["table"],
        seeds=args.seeds,
        budget=args.budget,
        benchmark="table",
        benchmark_params=space.params,
        strategy_params={k: v for k, v in strategy_params.items() if k in names},
        n_jobs=args.workers,
    )
    seconds = time.perf_counter() - started
    rows = comparison.summary([args.budget])
    best_valid = comparison.optima["table"]
    best_test = comparison.test_optima["table"]
    print(
        f"\n{args.seeds} seeds x {args.budget} queries per strategy ({seconds:.0f} s); table "
        f"optimum: valid {best_valid:.3f}, test {best_test:.3f}"
    )
    print(f"{'strategy':24s} {'test acc (mean ± std)':>22s} {'opt %':>7s} {'RI %':>7s}")
    for row in sorted(rows, key=lambda r: -r.mean_test):
        print(
            f"{row.strategy:24s} {row.mean_test:13.2f} ± {row.std_test:5.2f} "
            f"{100 * row.optimum_rate:7.0f} {row.ri:7.2f}"
        )
    comparison.write(out / "comparison")
    results = {
        "settings": {"seeds": args.seeds, "budget": args.budget, "archs": space.size,
                     "rows": len(table), "columns": columns, "strategy_params": strategy_params},
        "seconds": seconds,
        "optimum": {"valid_acc": best_valid, "test_acc": best_test},
        "summary": [
            {"strategy": r.strategy, "mean_test": r.mean_test, "std_test": r.std_test,
             "optimum_rate": r.optimum_rate, "ri": r.ri, "n_runs": r.n_runs}
            for r in rows
        ],
    }  # fmt: skip
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
