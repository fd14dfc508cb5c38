"""ENAS against random search with weight sharing on the same supernet: per epoch, the cell
each derives and its NAS-Bench-201 accuracy (bundled table, cifar10: valid = ``cifar10-valid``
validation accuracy, test = CIFAR-10 test accuracy of the 200-epoch network), side by side.

The question of Sciuto et al. ("Evaluating the Search Phase of Neural Architecture Search",
ICLR 2020, arXiv:1902.08142), who found ENAS no better than random sampling: ``enas`` (Pham
et al. 2018) and ``random-ws`` (Li & Talwalkar 2019) share every line but the sampler of the
paths (the controller, or uniform draws), train on the same batches (same seed) and derive
alike (the best of ``derive_samples`` sampled paths on one validation batch). Real CIFAR-10,
NAS-Bench-201's ``reduced`` preset (8 channels, 1 cell per stage, 16x16 images, 10% of the
training images split in halves, batch 64), the methods' default hyperparameters.

Besides the accuracies it prints, per epoch, the controller's mean reward (supernet accuracy
of its sampled paths on validation batches) and the entropy of its policy (summed over the
6 decisions; uniform: 6 ln 5 = 9.66), and at the end each method's mean over the second half
of the epochs, its last epoch and the number of distinct cells derived.

Full run (two seeds of 20 epochs: 7 minutes of one core as measured, enas 99-187 s and
random-ws 56-74 s per seed on a shared machine):
    nice python benchmarks/enas_vs_random.py --data /work/shared/data/cifar10/cifar10-jpeg.tar.gz \\
        --seeds 0,1 --threads 1 --out /work/ref/issue24/enas_vs_random
Smoke run:
    python benchmarks/enas_vs_random.py --data /work/shared/data/cifar10/cifar10-jpeg.tar.gz \\
        --epochs 1 --fraction 0.02 --out /tmp/enas_vs_random
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from nasforge import oneshot
from nasforge.oneshot import SupernetSettings
from nasforge.train import load_cifar10

METHODS = ("enas", "random-ws")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 (python release, folder, .tar.gz)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds, each runs both")
    parser.add_argument("--fraction", type=float, default=None, help="default: the preset's")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="/work/ref/issue24/enas_vs_random")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_cifar10(args.data)
    settings = SupernetSettings.reduced("nb201")
    if args.fraction is not None:
        settings = replace(settings, data_fraction=args.fraction)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"setting: {settings}, epochs {args.epochs}, seeds {seeds}, CPU, {args.threads} thread(s)"
    )
    rows: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    for seed in seeds:
        for method in METHODS:
            started = time.perf_counter()
            result = oneshot.search(
                method, data, settings=settings, epochs=args.epochs, seed=seed,
                device="cpu", threads=args.threads,
            )  # fmt: skip
            seconds[f"{method}/seed{seed}"] = time.perf_counter() - started
            for trial in result.study.trials:
                rows.append(
                    {"method": method, "seed": seed, "arch": str(trial.arch), **trial.metrics}
                )
            print(f"{method} seed {seed}: {seconds[f'{method}/seed{seed}']:.0f} s", flush=True)
        side_by_side([r for r in rows if r["seed"] == seed], args.epochs)
    summary = summarise(rows, args.epochs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"settings": {**vars(args), **settings.to_dict()}, "rows": rows,
               "seconds": seconds, "summary": summary}  # fmt: skip
    (out / "results.json").write_text(json.dumps(payload, indent=1))
    print(f"wrote {out / 'results.json'}")


def side_by_side(rows: list[dict[str, Any]], epochs: int) -> None:
    """One line per epoch: each method's derived cell, its table accuracies, and ENAS's
    controller reward and entropy."""
    by = {(r["method"], int(r["epoch"])): r for r in rows}
    print(f"{'epoch':>5} | {'enas valid':>10} {'test':>6} {'reward':>6} {'entropy':>7} | "
          f"{'random-ws valid':>15} {'test':>6} | cells (enas / random-ws)")  # fmt: skip
    for epoch in range(epochs):
        e, r = by.get(("enas", epoch), {}), by.get(("random-ws", epoch), {})
        reward, entropy = (
            e.get("controller_reward", math.nan),
            e.get("controller_entropy", math.nan),
        )
        print(
            f"{epoch:5d} | {e.get('valid_acc', math.nan):10.2f} {e.get('test_acc', math.nan):6.2f}"
            f" {reward:6.2f} {entropy:7.3f}"
            f" | {r.get('valid_acc', math.nan):15.2f} {r.get('test_acc', math.nan):6.2f}"
            f" | {e.get('arch', '-')} / {r.get('arch', '-')}",
            flush=True,
        )


def summarise(rows: list[dict[str, Any]], epochs: int) -> dict[str, Any]:
    """Per method (over seeds): mean test accuracy of the cells derived in the second half of
    the epochs, of the last epoch's, and the distinct cells derived per run."""
    out: dict[str, Any] = {}
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        later = [r["test_acc"] for r in mine if r["epoch"] >= epochs // 2]
        last = [r["test_acc"] for r in mine if r["epoch"] == epochs - 1]
        runs = {r["seed"] for r in mine}
        distinct = [len({r["arch"] for r in mine if r["seed"] == s}) for s in sorted(runs)]
        out[method] = {
            "mean_test_second_half": sum(later) / max(1, len(later)),
            "mean_test_last_epoch": sum(last) / max(1, len(last)),
            "distinct_cells_per_run": distinct,
        }
        print(
            f"{method}: test accuracy of the derived cell, mean over epochs >= {epochs // 2}: "
            f"{out[method]['mean_test_second_half']:.2f}; last epoch: "
            f"{out[method]['mean_test_last_epoch']:.2f}; distinct cells per run: {distinct}",
            flush=True,
        )
    return out


if __name__ == "__main__":
    main()
