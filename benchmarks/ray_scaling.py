"""Ray scaling: W = 1, 2, 4, 8 concurrent Ray tasks on an evaluator that waits 0.5 s per
trial (an accelerator-bound evaluation as seen from the search loop) (issue 9).

One study per W (random search on the bundled NB201 table, SQLite storage), ``--per-worker``
trials per task slot, through ``RayExecutor(max_workers=W)`` on a local Ray instance started
once with 8 logical CPUs (each trial reserves 1 CPU). The evaluations only wait, so they
overlap even on a machine with fewer cores; CPU-bound evaluations would be limited by the
cores. Printed: Ray start-up time, wall time per W, speed-up over W = 1 (target >= 0.9 W),
and the overhead per trial: wall time beyond ``trials x 0.5 s / W``, divided by the trials a
slot ran.

    nice python benchmarks/ray_scaling.py
    nice python benchmarks/ray_scaling.py --widths 1,2 --per-worker 4
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import nasforge
from nasforge.evaluators.tabular import TabularEvaluator
from nasforge.execution.ray_executor import RayExecutor


class Waiting(TabularEvaluator):
    """The tabular result after waiting ``wait`` seconds; travels pickled to Ray workers."""

    def __init__(self, wait: float = 0.5) -> None:
        super().__init__("nb201", "cifar10")
        self.wait = wait

    def spec(self) -> None:  # type: ignore[override]
        return None

    def __getstate__(self) -> dict[str, float]:
        return {"wait": self.wait}

    def __setstate__(self, state: dict[str, float]) -> None:
        self.__init__(state["wait"])  # type: ignore[misc]

    def evaluate(self, arch, fidelity=None):  # type: ignore[no-untyped-def]
        time.sleep(self.wait)
        return super().evaluate(arch, fidelity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1,2,4,8")
    parser.add_argument("--per-worker", type=int, default=8, help="trials per task slot")
    parser.add_argument("--wait", type=float, default=0.5)
    parser.add_argument(
        "--as-they-arrive",
        action="store_true",
        help="optimize(in_order=False): take results as they arrive instead of in ask order",
    )
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        executor = RayExecutor(num_cpus=max(widths), cpus_per_trial=1)
        startup = time.perf_counter() - started
        # warm the worker processes (imports, the table) so that W = 1 is not penalised
        warm = nasforge.create_study(strategy="random", seed=99)
        warm.optimize(Waiting(0.0), n_trials=2 * max(widths), executor=executor)
        warmup = time.perf_counter() - started - startup
        for width in widths:
            executor.max_workers = width
            n = width * args.per_worker
            study = nasforge.create_study(
                strategy="random", seed=width, storage=f"sqlite:///{tmp}/ray{width}.db"
            )
            begin = time.perf_counter()
            study.optimize(
                Waiting(args.wait), n_trials=n, executor=executor, in_order=not args.as_they_arrive
            )
            wall = time.perf_counter() - begin
            assert study.n_finished == n and all(t.state.value == "COMPLETE" for t in study.trials)
            ideal = n * args.wait / width
            rows.append((width, n, wall, ideal))
        executor.shutdown()
    base = rows[0][1] / rows[0][2]  # trials per second at the first width
    print(f"machine: {os.cpu_count()} CPU cores; Ray {__import__('ray').__version__}")
    print(f"ray start-up: {startup:.2f} s; first tasks (worker processes start): {warmup:.2f} s")
    for width, n, wall, ideal in rows:
        speedup = (n / wall) / base * rows[0][0]
        overhead = (wall - ideal) / (n / width)
        print(
            f"W={width}: {n} trials in {wall:.2f} s (ideal {ideal:.2f} s)  speed-up "
            f"{speedup:.2f} (target >= {0.9 * width:.1f})  overhead/trial {overhead * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
