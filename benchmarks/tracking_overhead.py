"""What tracking costs a search: milliseconds per trial added by ``TensorBoardCallback`` and
by ``MLflowCallback`` (an MLflow SQLite database), and the seconds a fresh process takes to
build each tracker (importing tensorboard's event writer, or mlflow).

A random search on the bundled NB201 table (cifar10) in memory, where an evaluation costs
well under a millisecond, so the figures are the trackers' own cost per trial. The trials
logged are read back (TensorBoard event files, MLflow runs) and counted.

Full run:  python benchmarks/tracking_overhead.py --trials 500 --repeats 3 --out OUT
Smoke:     python benchmarks/tracking_overhead.py --trials 20 --repeats 1 --out /tmp/tracking
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nasforge
from nasforge.tracking import MLflowCallback, TensorBoardCallback


def search(trials: int, seed: int, callbacks: list[Any]) -> tuple[float, Any]:
    """Seconds per trial of a search of ``trials`` trials (after two to warm up)."""
    study = nasforge.create_study(
        space="nb201", strategy="random", seed=seed, study_name=f"bench-{seed}"
    )
    evaluator = nasforge.evaluators.create("tabular", dataset="cifar10")
    study.optimize(evaluator, n_trials=2, callbacks=callbacks)
    start = time.perf_counter()
    study.optimize(evaluator, n_trials=trials + 2, callbacks=callbacks)
    return (time.perf_counter() - start) / trials, study


def startup(code: str, repeats: int) -> float:
    """Median seconds of ``python -c code`` in a fresh process, in an empty folder (MLflow's
    default store is a file in the working folder)."""
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            start = time.perf_counter()
            run = [sys.executable, "-c", code]
            subprocess.run(run, check=True, capture_output=True, cwd=folder)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("tracking-out"))
    opts = parser.parse_args()
    opts.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"trials": opts.trials, "repeats": opts.repeats}
    per_trial: dict[str, list[float]] = {"none": [], "tensorboard": [], "mlflow-sqlite": []}
    logged: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(opts.repeats):
            seed = 100 + repeat
            per_trial["none"].append(search(opts.trials, seed, [])[0])
            tensorboard = TensorBoardCallback(Path(tmp) / "runs")
            seconds, study = search(opts.trials, seed, [tensorboard])
            tensorboard.close()
            per_trial["tensorboard"].append(seconds)
            sessions = list(tensorboard.run_dir(study.name).glob("trial-*"))
            logged[f"tensorboard sessions, repeat {repeat}"] = len(sessions)
            uri = f"sqlite:///{Path(tmp) / f'mlflow{repeat}.db'}"
            mlflow = MLflowCallback(uri)
            seconds, study = search(opts.trials, seed, [mlflow])
            mlflow.close()
            per_trial["mlflow-sqlite"].append(seconds)
            from mlflow.tracking import MlflowClient

            client = MlflowClient(uri)
            experiment = client.get_experiment_by_name(study.name).experiment_id
            runs = client.search_runs([experiment], max_results=50000)
            logged[f"mlflow child runs, repeat {repeat}"] = len(runs) - 1
    base = statistics.median(per_trial["none"])
    print(
        f"settings: random search, nb201/cifar10 table, in memory, {opts.trials} trials, "
        f"{opts.repeats} repeats, python {sys.version.split()[0]}"
    )
    for name, values in per_trial.items():
        median = statistics.median(values)
        extra = median - base
        results[name] = {"ms_per_trial": median * 1e3, "extra_ms_per_trial": extra * 1e3}
        print(f"{name:14s} {median * 1e3:8.2f} ms per trial  (+{extra * 1e3:.2f} ms)")
    for key, count in logged.items():
        print(f"{key}: {count} (trials in the study: {opts.trials + 2})")
    results["logged"] = logged
    repeats = max(1, opts.repeats)
    build = {
        "tensorboard": startup(
            "from nasforge.tracking import TensorBoardCallback; TensorBoardCallback('tb')",
            repeats,
        ),
        "mlflow": startup(
            "from nasforge.tracking import MLflowCallback; MLflowCallback()", repeats
        ),
        "nothing (import nasforge)": startup("import nasforge", repeats),
    }
    for name, seconds in build.items():
        print(f"fresh process, build {name}: {seconds:.2f} s")
    results["startup_s"] = build
    (opts.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
