"""Early stopping of a user's own training function, run by ``nasforge worker`` processes on
SQLite and on Ray: the cost saved against full training, and whether the best architecture
found is the same.

The user's side lives in ``benchmarks/_byo_train.py``: a plain ``torch.utils.data.Dataset``
(a CIFAR-10 subset from /work/shared/data, or synthetic images when it is absent) and a
training function ``train(arch, context)`` that trains the NAS-Bench-201 network of an
architecture for a few epochs and reports its validation accuracy after each one. The
``function`` evaluator calls it by import path, so every worker process (and every Ray
worker) imports it itself.

For each executor -- two ``nasforge worker`` processes sharing one SQLite study, and one
``nasforge worker --executor ray --workers 2`` -- the same study (random search, same seed,
same trials: random proposals do not depend on results) runs once without a stopping rule
(full training) and once per rule (``asha``: rungs 1, 3, ... epochs, eta 3; ``median``:
Vizier's median rule after 3 completed trials, from epoch 2; by default asha and median on
SQLite and on Ray, ``--rules`` and ``--ray-rules`` choose). Figures: total training
cost (seconds of the evaluations, and epochs trained), the saving against full training,
the trials stopped, the best architecture and its accuracy, whether it is the best of full
training and, if not, its rank there.

The seconds are the evaluations' own, measured on shared cores (they move with the machine's
load: the same full training took 179 s under two workers on SQLite and 116 s on Ray);
the epochs trained are the steady figure. Measured (12 trials, 5 epochs, 1,000 CIFAR-10
images at 16 px, NB201 width 8, 2 workers of one thread): full training 55 epochs; asha
25 epochs (9 of 11 trainings stopped; 49% / 53% of the seconds saved on SQLite / Ray),
median 49 epochs (2 stopped; 34% / 46% of the seconds, which the load moved more than the
six epochs saved), the same on SQLite and on Ray. Every run with stopping found a best of
35.4%, equal to full training's best; the architecture differs because two tie at 35.4%
after full training and the first of them (15.2% after one epoch) is stopped
(``--report-only`` prints the figures of a finished run again).

Full run (about 10-12 minutes on two busy cores; one thread per worker):

    nice python benchmarks/early_stopping.py --out /work/ref/issue22/early_stopping

Smoke run (about two minutes):

    python benchmarks/early_stopping.py --smoke --out /tmp/early_stopping_smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CIFAR = Path("/work/shared/data/cifar10/cifar10-jpeg.tar.gz")


def make_data(path: Path, n_train: int, n_valid: int, resolution: int, seed: int) -> str:
    """Write the user's data: a CIFAR-10 subset at ``resolution`` px, or synthetic images."""
    import torch

    torch.set_num_threads(1)
    if CIFAR.exists():
        from nasforge.train import load_cifar10

        data = load_cifar10(CIFAR)
        order = torch.randperm(
            len(data.train.labels), generator=torch.Generator().manual_seed(seed)
        )
        mean = torch.tensor(data.mean).view(1, 3, 1, 1)
        std = torch.tensor(data.std).view(1, 3, 1, 1)

        def take(index: Any) -> tuple[Any, Any]:
            x = data.train.images[index].float() / 255
            x = torch.nn.functional.interpolate(
                x, size=resolution, mode="bilinear", antialias=True, align_corners=False
            )
            return ((x - mean) / std).contiguous(), data.train.labels[index].clone()

        train_x, train_y = take(order[:n_train])
        valid_x, valid_y = take(order[n_train : n_train + n_valid])
        source = f"CIFAR-10 subset ({CIFAR})"
    else:
        print(f"no CIFAR-10 at {CIFAR}: synthetic images instead", flush=True)
        gen = torch.Generator().manual_seed(seed)
        centres = torch.randn(10, 3, resolution, resolution, generator=gen)

        def draw(n: int) -> tuple[Any, Any]:
            y = torch.randint(0, 10, (n,), generator=gen)
            return centres[y] + 1.5 * torch.randn(n, 3, resolution, resolution, generator=gen), y

        (train_x, train_y), (valid_x, valid_y) = draw(n_train), draw(n_valid)
        source = "synthetic (10 Gaussian classes)"
    torch.save(
        {"train_x": train_x, "train_y": train_y, "valid_x": valid_x, "valid_y": valid_y}, path
    )
    return source


def run_workers(
    url: str,
    name: str,
    rule: str,
    params: dict[str, Any],
    args: Any,
    env: dict[str, str],
) -> float:
    """Run the study with ``nasforge worker``: two processes (sqlite) or one on Ray with two
    slots; the wall time in seconds."""
    command = [
        sys.executable, "-m", "nasforge", "worker", "--storage", url, "--study", name,
        "--strategy", "random", "--seed", str(args.seed), "--space", "nb201",
        "--evaluator", "function", "--evaluator-param", "fn=_byo_train:train",
        "--evaluator-param", "pass_model=false", "--trials", str(args.trials), "--quiet",
    ]  # fmt: skip
    if rule != "none":
        command += ["--stopping", rule]
        for key, value in params.items():
            command += ["--stopping-param", f"{key}={value}"]
    started = time.perf_counter()
    quiet = {"env": env, "stdout": subprocess.DEVNULL}
    if name.startswith("sqlite"):
        procs = [subprocess.Popen(command, **quiet) for _ in range(2)]  # type: ignore[call-overload]
    else:
        ray = ["--executor", "ray", "--workers", "2", "--cpus-per-trial", "1"]
        procs = [subprocess.Popen(command + ray, **quiet)]  # type: ignore[call-overload]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"{name}: a worker failed (exit codes {codes})")
    return time.perf_counter() - started


def summarise(url: str, name: str) -> dict[str, Any]:
    """Cost, epochs, states and the best trial of a finished study."""
    import nasforge
    from nasforge.trial import TrialState

    study = nasforge.load_study(name, url, read_only=True)
    assert study.record.study_id is not None
    reports = study.storage.get_reports(study.record.study_id)
    epochs = {n: max(steps) for n, steps in reports.items()}
    best = study.best_trial
    finals = {
        t.arch.text: t.metrics["valid_acc"] for t in study.trials if t.state is TrialState.COMPLETE
    }
    out = {
        "study": name,
        "trials": len(study.trials),
        "stopped": sum(t.state is TrialState.STOPPED and t.number in epochs for t in study.trials),
        "complete": sum(t.state is TrialState.COMPLETE for t in study.trials),
        "seconds": round(study.spent, 2),
        "epochs": int(sum(epochs.values())),
        "best_arch": best.arch.text,
        "best_acc": best.metrics["valid_acc"],
        "finals": finals,
        # a twin of a stopped architecture (dedupe) is answered STOPPED from the record, free
        "stopped_at": sorted(
            epochs[t.number]
            for t in study.trials
            if t.state is TrialState.STOPPED and t.number in epochs
        ),
    }
    study.storage.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="early_stopping_out", help="folder of results.json")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of full training")
    parser.add_argument("--train-images", type=int, default=1000)
    parser.add_argument("--valid-images", type=int, default=500)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--rules", default="asha,median", help="rules run on SQLite")
    parser.add_argument("--ray-rules", default="asha,median", help="rules run on Ray")
    parser.add_argument("--executors", default="sqlite,ray")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="4 trials, 3 epochs, 200 images")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="print the figures of the studies already in OUT (no training)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.trials, args.epochs, args.train_images, args.valid_images = 4, 3, 200, 100
        args.rules = args.ray_rules = "asha"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_path = out / "byo_data.pt"
    if args.report_only:
        source = json.loads((out / "results.json").read_text())["settings"]["data"]
    else:
        source = make_data(
            data_path, args.train_images, args.valid_images, args.resolution, args.seed
        )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        "BYO_DATA": str(data_path.resolve()),
        "BYO_EPOCHS": str(args.epochs),
        "BYO_CHANNELS": str(args.channels),
        "OMP_NUM_THREADS": "1",
    }
    params = {
        "asha": {"min_step": 1, "eta": 3, "max_step": args.epochs},
        "median": {"min_trials": 3, "warmup_steps": 2},
        "successive-halving": {"min_step": 1, "eta": 3, "max_step": args.epochs},
        "hyperband": {"min_step": 1, "max_step": args.epochs, "eta": 3},
    }
    db = out / "studies.db"
    url = f"sqlite:///{db.resolve()}"
    if args.report_only:  # the figures again from the studies of an earlier run
        walls = {
            f"{r['executor']}-{r['rule']}": r["wall_s"]
            for r in json.loads((out / "results.json").read_text())["rows"]
        }
    elif db.exists():
        db.unlink()  # a fresh record: the figures are this run's
    rows: list[dict[str, Any]] = []
    for executor in args.executors.split(","):
        full: dict[str, Any] | None = None
        rules = args.rules if executor == "sqlite" else args.ray_rules
        for rule in ["none", *rules.split(",")]:
            name = f"{executor}-{rule}"
            if args.report_only:
                wall = walls[name]
            else:
                wall = run_workers(url, name, rule, params.get(rule, {}), args, env)
            row = {"executor": executor, "rule": rule, "wall_s": round(wall, 1)}
            row |= summarise(url, name)
            if full is None:
                full = row
            else:
                row |= compare(row, full)
            rows.append(row)
            print(line(name, row), flush=True)
    for row in rows:
        row.pop("finals")
    settings = {k: v for k, v in vars(args).items() if k != "out"} | {"data": source}
    (out / "results.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=1))
    print(f"data: {source}; results in {out / 'results.json'}")


def compare(row: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """The saving against full training, and where the best found ranks in full training
    (ties share a rank: equal validation accuracies are common on a small split)."""
    finals = full["finals"]
    mine = finals[row["best_arch"]]
    return {
        "seconds_saved_pct": round(100 * (1 - row["seconds"] / full["seconds"]), 1),
        "epochs_saved_pct": round(100 * (1 - row["epochs"] / full["epochs"]), 1),
        "same_best": row["best_arch"] == full["best_arch"],
        "best_full_acc": mine,
        "best_rank_in_full": 1 + sum(v > mine for v in finals.values()),
        "best_acc_gap": round(full["best_acc"] - mine, 3),
    }


def line(name: str, row: dict[str, Any]) -> str:
    """One printed line of figures."""
    text = (
        f"{name:16s} {row['seconds']:7.1f} s {row['epochs']:4d} epochs, {row['stopped']} "
        f"stopped, best {row['best_acc']:.1f}%"
    )
    if "same_best" in row:
        if row["same_best"]:
            same = "yes"
        elif row["best_acc_gap"] == 0:
            same = f"no, but one tied with it in full training ({row['best_full_acc']:.1f}%)"
        else:
            same = (
                f"no: {row['best_full_acc']:.1f}% in full training, rank {row['best_rank_in_full']}"
            )
        text += (
            f", saved {row['seconds_saved_pct']}% of the seconds and {row['epochs_saved_pct']}% "
            f"of the epochs; same best architecture: {same}"
        )
    return text + f" (wall {row['wall_s']} s)"


if __name__ == "__main__":
    main()
