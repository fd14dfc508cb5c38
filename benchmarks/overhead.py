"""Wall time of a 100-query regularized-evolution search on the bundled NB201 benchmark,
in memory and with SQLite storage, and the start-up time of ``nasforge --help``.

Aims (issue 4): memory < 0.3 s, SQLite < 2 s, ``nasforge --help`` < 0.5 s.

Usage: python benchmarks/overhead.py [--repeats 10] [--queries 100]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nasforge


def search(storage: str | None, queries: int, seed: int) -> float:
    start = time.perf_counter()
    study = nasforge.create_study(
        strategy="regularized-evolution", seed=seed, storage=storage, study_name=f"s{seed}"
    )
    study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), budget=queries)
    return time.perf_counter() - start


def startup(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--queries", type=int, default=100)
    opts = parser.parse_args()
    search(None, opts.queries, seed=-1 % 1000)  # warm the caches (table, registries)
    memory = [search(None, opts.queries, seed) for seed in range(opts.repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        sqlite_new = []
        for seed in range(opts.repeats):
            sqlite_new.append(search(url, opts.queries, seed))
    print(
        f"settings: regularized-evolution, nb201/cifar10, {opts.queries} queries, "
        f"{opts.repeats} repeats, python {sys.version.split()[0]}"
    )
    print(f"in memory        median {statistics.median(memory):.3f} s  max {max(memory):.3f} s")
    print(
        f"SQLite (new db)  median {statistics.median(sqlite_new):.3f} s  "
        f"max {max(sqlite_new):.3f} s"
    )
    print(
        f"per query        memory {statistics.median(memory) / opts.queries * 1e3:.2f} ms, "
        f"SQLite {statistics.median(sqlite_new) / opts.queries * 1e3:.2f} ms"
    )
    exe = shutil.which("nasforge")
    if exe:
        print(f"nasforge --help  median {startup([exe, '--help'], opts.repeats):.3f} s")
    print(
        f"python -m nasforge --help  median "
        f"{startup([sys.executable, '-m', 'nasforge', '--help'], opts.repeats):.3f} s"
    )
    print(
        f"python -c 'import nasforge'  median "
        f"{startup([sys.executable, '-c', 'import nasforge'], opts.repeats):.3f} s"
    )


if __name__ == "__main__":
    main()
