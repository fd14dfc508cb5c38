"""Training-free search on NAS-Bench-201 with a small query budget (RoBoT's protocol).

Runs ``robot`` and ``training-free`` (ranking by proxy scores from a precomputed table, by
default NAS-Bench-Suite-Zero's published scores) beside ``regularized-evolution`` and
``optuna-tpe`` through ``nasforge.experiments.run_comparison``: every run spends at most
``--budget`` queries of the benchmark's validation accuracy, and the figure is the mean test
accuracy of the best-by-validation architecture over ``--seeds`` seeds. RoBoT (Chen et al.,
ICLR 2024) reports 94.36 on CIFAR-10.

    nice python3 benchmarks/training_free_search.py --seeds 50 --budget 20
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scores", default=str(SHARED / "nb201" / "nb201_zero_cost_proxies.csv.gz")
    )
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--explore", type=int, default=10, help="robot's explore_queries")
    parser.add_argument("--robot-proxies", default=None, help="comma list (default: RoBoT's six)")
    parser.add_argument("--exploit", default="best-weights", help="robot's exploit: or ridge")
    args = parser.parse_args()

    from nasforge.experiments import run_comparison

    table = {"scores": args.scores, "dataset": args.dataset}
    params = {
        "robot": dict(table, explore_queries=args.explore, exploit=args.exploit),
        "training-free": dict(table, proxies=["nwot"]),
    }
    if args.robot_proxies:
        params["robot"]["proxies"] = args.robot_proxies.split(",")
    strategies = ["robot", "training-free", "regularized-evolution", "optuna-tpe"]
    start = time.perf_counter()
    comparison = run_comparison(
        strategies,
        datasets=[args.dataset],
        seeds=args.seeds,
        budget=args.budget,
        strategy_params={k: v for k, v in params.items() if k in strategies and v},
        n_jobs=args.jobs,
    )
    print(
        f"# NB201 {args.dataset}, {args.seeds} seeds, {args.budget} queries of valid_acc; "
        f"proxy scores from {Path(args.scores).name}; robot {params['robot']}; "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(f"{'strategy':>22} {'mean test':>10} {'std':>6} {'mean valid':>11}")
    for row in comparison.summary([args.budget]):
        print(
            f"{row.strategy:>22} {row.mean_test:10.2f} {row.std_test:6.2f} {row.mean_valid:11.2f}"
        )


if __name__ == "__main__":
    main()
