"""Load test of shared studies: 4 worker processes x 500 trials on one study (issue 9).

Each worker process joins one random-search study on the bundled NB201 table (no waiting:
the evaluation is a table lookup, so the storage is the bottleneck) and works until the
study holds ``workers x trials`` finished trials. Then:

* lost: numbers missing from the record, trials not COMPLETE, or fewer finished trials;
* duplicated: a trial number recorded twice, or a proposal evaluated twice. Random search's
  proposals do not depend on results, so the record must hold exactly the architectures of a
  single-process run with the same seed, in the same order (a strategy's own repeats are in
  both);
* storage overhead per trial: the time a worker spends reserving a trial (waiting for the
  study's lock, catching up with the other workers, asking, writing) plus recording its
  result (lock, write, reading back), measured in the workers, median and 99th percentile
  over all trials. With table lookups as evaluations the workers do nothing but this, so with
  several workers it is mostly the wait for the lock.

    nice python benchmarks/worker_load.py                 # SQLite and PostgreSQL
    nice python benchmarks/worker_load.py --trials 100 --backends sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

import nasforge

WORKER = textwrap.dedent(
    """
    import json, sys, time
    import nasforge
    from nasforge.study import Study

    url, total, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    spans = []

    def timed(method):
        def wrapper(self, *args, **kwargs):
            start = time.perf_counter()
            out = method(self, *args, **kwargs)
            if method.__name__ != "_next_step" or isinstance(out, tuple):  # a reservation
                spans.append((method.__name__, time.perf_counter() - start))
            return out
        return wrapper

    Study._next_step = timed(Study._next_step)
    Study._collect = timed(Study._collect)
    ev = nasforge.evaluators.create("tabular", dataset="cifar10")
    study = nasforge.create_study(strategy="random", seed=21, storage=url, study_name="load",
        evaluator=ev, load_if_exists=True)
    start = time.perf_counter()
    study.optimize(ev, n_trials=total)
    wall = time.perf_counter() - start
    mine = sum(1 for t in study.trials if t.worker == study._worker)
    json.dump({"spans": spans, "wall": wall, "mine": mine}, open(out, "w"))
    """
)


def run(url: str, label: str, workers: int, trials: int, tmp: Path) -> dict[str, object]:
    script = tmp / "worker.py"
    script.write_text(WORKER)
    total = workers * trials
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    nasforge.create_study(
        strategy="random",
        seed=21,
        storage=url,
        study_name="load",
        evaluator=nasforge.evaluators.create("tabular", dataset="cifar10"),
    )
    outs = [tmp / f"{label}-{i}.json" for i in range(workers)]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), url, str(total), str(out)], env=env, text=True
        )
        for out in outs
    ]
    for proc in procs:
        proc.wait()
        if proc.returncode != 0:
            raise SystemExit(f"{label}: a worker failed")
    wall = time.perf_counter() - started
    reports = [json.loads(out.read_text()) for out in outs]
    study = nasforge.load_study("load", url)
    numbers = [t.number for t in study.trials]
    alone = nasforge.create_study(strategy="random", seed=21).optimize(
        nasforge.evaluators.create("tabular", dataset="cifar10"), n_trials=total
    )
    lost = (
        (total - study.n_finished)
        + len(set(range(total)) - set(numbers))
        + sum(t.state.value != "COMPLETE" for t in study.trials)
    )
    duplicated = (
        (len(numbers) - len(set(numbers)))
        + sum(a.arch != b.arch for a, b in zip(study.trials, alone.trials, strict=False))
        + abs(len(study.trials) - total)
    )
    # storage overhead per trial: its reservation plus its result
    reserve = [s for r in reports for name, s in r["spans"] if name == "_next_step"]
    finish = [s for r in reports for name, s in r["spans"] if name == "_collect"]
    per_trial = np.array(reserve[: len(finish)]) + np.array(finish[: len(reserve)])
    ms = per_trial * 1000
    return {
        "storage": label,
        "workers": workers,
        "trials": len(study.trials),
        "per worker": "/".join(str(r["mine"]) for r in reports),
        "lost": lost,
        "duplicated": duplicated,
        "overhead median ms": round(float(np.median(ms)), 2),
        "overhead p99 ms": round(float(np.percentile(ms, 99)), 2),
        "reserve median ms": round(float(np.median(reserve)) * 1000, 2),
        "finish median ms": round(float(np.median(finish)) * 1000, 2),
        "trials/s": round(total / wall, 1),
        "wall s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--trials", type=int, default=500, help="trials per worker")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{tmp}/load.db"
                rows.append(run(url, "sqlite", args.workers, args.trials, tmp))
                continue
            from nasforge.testing.postgres import TemporaryPostgres, unavailable_reason

            reason = unavailable_reason()
            if reason is not None:
                print(f"postgresql: skipped ({reason})")
                continue
            with TemporaryPostgres() as url:
                rows.append(run(url, "postgresql", args.workers, args.trials, tmp))
    print(f"machine: {os.cpu_count()} CPU cores")
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
