"""Crash safety: SIGKILL a regularized-evolution search at random moments, resume it, and
compare with the uninterrupted run (issue 9).

For each storage (SQLite; PostgreSQL on a throwaway server when its binaries are installed),
a child process runs a 300-query regularized-evolution search on the bundled NB201 table
(seed 11, population 20, tournament 5; each evaluation waits ``--delay`` seconds, 0.02 by
default, so that kills fall at every stage of a trial). It is killed with SIGKILL ``--kills``
times, at moments spread uniformly over the search (a trial count drawn uniformly, then a
uniform offset within a trial; a kill during start-up would touch nothing), and restarted
each time; after each kill
the record is checked: every trial that was finished before is still there, unchanged. At
the end the completed trials must equal those of an uninterrupted run (same architectures,
same results, same order).

    nice python benchmarks/fault_injection.py            # 20 kills, 300 queries
    nice python benchmarks/fault_injection.py --kills 5 --queries 100
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nasforge
from nasforge.trial import TrialState

CHILD = textwrap.dedent(
    """
    import sys, time
    import nasforge
    from nasforge.evaluators.tabular import TabularEvaluator

    class Waiting(TabularEvaluator):
        def evaluate(self, arch, fidelity=None):
            time.sleep(float(sys.argv[3]))
            return super().evaluate(arch, fidelity)

    study = nasforge.create_study(strategy="regularized-evolution", seed=11, storage=sys.argv[1],
        study_name="fault", load_if_exists=True,
        strategy_params={"population_size": 20, "tournament_size": 5})
    study.optimize(Waiting("nb201", "cifar10"), n_trials=int(sys.argv[2]))
    """
)


def reference(queries: int) -> list[tuple[str, float]]:
    study = nasforge.create_study(
        strategy="regularized-evolution",
        seed=11,
        strategy_params={"population_size": 20, "tournament_size": 5},
    )
    study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), n_trials=queries)
    return [(t.arch.text, t.metrics["valid_acc"]) for t in study.completed_trials]


def finished(url: str) -> dict[int, tuple[str, str, float | None]]:
    try:
        study = nasforge.load_study("fault", url)
    except nasforge.errors.NasforgeError:
        return {}
    return {
        t.number: (t.state.value, t.arch.text, t.metrics.get("valid_acc"))
        for t in study.trials
        if t.state.finished
    }


class _Counter:
    """Counts the recorded trials with plain reads (no lock: the child is not slowed)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.sa = sa
        self.engine = sa.create_engine(url)

    def count(self) -> int:
        try:
            with self.engine.connect() as conn:
                return int(
                    conn.execute(self.sa.text("SELECT count(*) FROM nasforge_trials")).scalar()
                )
        except self.sa.exc.DBAPIError:  # tables not created yet
            return 0

    def close(self) -> None:
        self.engine.dispose()


def running_in_record(url: str) -> int:
    store = nasforge.storage.get_storage(url)
    try:
        record = store.get_study("fault")
        if record is None:
            return 0
        return sum(t.state is TrialState.RUNNING for t in store.get_trials(record.study_id))
    finally:
        store.close()


def run(url: str, label: str, args: argparse.Namespace, script: Path) -> dict[str, object]:
    rng = random.Random(args.seed)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, str(script), url, str(args.queries), str(args.delay)]
    seen: dict[int, tuple[str, str, float | None]] = {}
    lost = changed = in_trial = 0
    recorded = 0
    per_trial = args.delay + 0.01  # refined from what the children achieve
    # the kill points, spread uniformly over the search: a trial count to reach, then a
    # uniform offset within one trial's time
    targets = sorted(rng.uniform(1, args.queries - 1) for _ in range(args.kills))
    counter = _Counter(url)
    started = time.perf_counter()
    kills = 0
    for target in targets:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        goal = max(int(target), recorded + 1)  # at least one new trial: past start-up
        while counter.count() < goal and proc.poll() is None:
            time.sleep(0.002)
        reached = time.perf_counter()
        offset = rng.uniform(0.0, per_trial)
        while time.perf_counter() - reached < offset and proc.poll() is None:
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        in_trial += running_in_record(url) > 0
        now = finished(url)
        lost += sum(1 for n in seen if n not in now)
        changed += sum(1 for n, v in seen.items() if n in now and now[n] != v)
        recorded = counter.count()
        seen = now
    counter.close()
    final = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if final.returncode != 0:
        raise SystemExit(f"{label}: the resumed search failed:\n{final.stderr}")
    study = nasforge.load_study("fault", url)
    got = [(t.arch.text, t.metrics["valid_acc"]) for t in study.completed_trials]
    want = reference(args.queries)
    return {
        "storage": label,
        "kills": kills,
        "kills during a trial": in_trial,
        "finished trials lost": lost,
        "finished trials changed": changed,
        "retried trials": sum(t.retry_of is not None for t in study.trials),
        "trials recorded": len(study.trials),
        "completed": len(got),
        "equal to uninterrupted run": got == want,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds per evaluation")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "child.py"
        script.write_text(CHILD)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                rows.append(run(f"sqlite:///{tmp}/fault.db", "sqlite", args, script))
                continue
            from nasforge.testing.postgres import TemporaryPostgres, unavailable_reason

            reason = unavailable_reason()
            if reason is not None:
                print(f"postgresql: skipped ({reason})")
                continue
            with TemporaryPostgres() as url:
                rows.append(run(url, "postgresql", args, script))
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
