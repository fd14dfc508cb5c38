"""EcoNAS's question on real CIFAR-10: do short, reduced training runs rank NAS-Bench-201 cells
as their full 200-epoch training does?

Zhou et al., "EcoNAS: Finding Proxies for Economical Neural Architecture Search", CVPR 2020,
arXiv:2001.01233, measure how the ranking of architectures trained with fewer channels (c),
a lower resolution (r), fewer training images (s) and fewer epochs (e) correlates with their
ranking after full training. This script trains a fixed sample of NB201 cells with a few
such settings (through the training evaluator's fidelity parameters) and reports Kendall's
tau-b between the short run's validation accuracy and the benchmark's 200-epoch ``cifar10``
``valid_acc`` and ``test_acc``, with the seconds per architecture. Settings run from the
cheapest; the script stops starting settings once ``--max-minutes`` have passed.

Sample: the 15,625 cells are cut into ``--n-archs`` equal-count bins by their table
``valid_acc`` (quantile bins, so the sample spans the accuracy range the way the space does;
equal-width bins would over-sample the easily ranked broken cells), one cell is drawn per bin
with a fixed seed, and a cell functionally identical to one already drawn is redrawn.

Data: the CIFAR-10 JPEG tarball in ``shared/data`` (extracted and decoded once into the user
cache), split 25,000 train / 25,000 validation as NB201's ``cifar10-valid``; the short runs
train on ``data_fraction`` of the 25,000 and are validated on a fixed 5,000 of the
validation half. Recipe: NB201's (SGD, Nesterov 0.9, lr 0.1 cosine to 0, weight decay
5e-4, crop + flip), batch 128.

    nohup python benchmarks/econas_proxy.py --out /tmp/econas.json > /tmp/econas.log &
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from nasforge import evaluators, spaces, tabular

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/cifar10/cifar10-jpeg.tar.gz"

#: (name, fidelity) from the cheapest; EcoNAS's notation c (channels), r, s, e in the name.
SETTINGS: list[tuple[str, dict[str, float]]] = [
    (
        "c4 N1 r16 s0.1 e2",
        {"channels": 4, "cells_per_stage": 1, "resolution": 16, "data_fraction": 0.1, "epochs": 2},
    ),
    (
        "c8 N1 r16 s0.1 e4",
        {"channels": 8, "cells_per_stage": 1, "resolution": 16, "data_fraction": 0.1, "epochs": 4},
    ),
    (
        "c8 N1 r16 s0.2 e6",
        {"channels": 8, "cells_per_stage": 1, "resolution": 16, "data_fraction": 0.2, "epochs": 6},
    ),
    (
        "c8 N1 r32 s0.2 e4",
        {"channels": 8, "cells_per_stage": 1, "resolution": 32, "data_fraction": 0.2, "epochs": 4},
    ),
    (
        "c8 N1 r16 s0.5 e10",
        {"channels": 8, "cells_per_stage": 1, "resolution": 16, "data_fraction": 0.5, "epochs": 10},
    ),
    (
        "c16 N1 r16 s0.5 e10",
        {
            "channels": 16,
            "cells_per_stage": 1,
            "resolution": 16,
            "data_fraction": 0.5,
            "epochs": 10,
        },
    ),
]


def kendall_tau_b(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b (ties counted as in scipy.stats.kendalltau's default)."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx = np.sign(x[i] - x[j])
            dy = np.sign(y[i] - y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else math.nan


def sample_architectures(n: int, seed: int) -> list[int]:
    """Benchmark indices of ``n`` cells, one per equal-count bin of table valid_acc."""
    bench = tabular.create("nb201")
    space = spaces.create("nb201")
    valid = bench.column("cifar10", "valid_acc")
    order = np.argsort(valid, kind="stable")
    order = order[~np.isnan(valid[order])]
    bins = np.array_split(order, n)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    seen = set()
    for members in bins:
        for index in rng.permutation(members):
            key = space.canonical(space.from_index(int(index))).choices
            if key not in seen:
                seen.add(key)
                chosen.append(int(index))
                break
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--n-archs", type=int, default=24)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--settings", default="all", help="Comma-separated setting numbers.")
    parser.add_argument(
        "--threads", type=int, default=1, help="Default 1: on a shared machine, more lose."
    )
    parser.add_argument("--eval-limit", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-minutes", type=float, default=30.0)
    parser.add_argument("--out", default=None, help="Write the per-cell results as JSON here.")
    args = parser.parse_args()

    bench = tabular.create("nb201")
    space = spaces.create("nb201")
    valid_200 = bench.column("cifar10", "valid_acc")
    test_200 = bench.column("cifar10", "test_acc")
    indices = sample_architectures(args.n_archs, args.sample_seed)
    picked = (
        SETTINGS if args.settings == "all" else [SETTINGS[int(i)] for i in args.settings.split(",")]
    )
    evaluator = evaluators.create(
        "train",
        data=args.data,
        recipe={"batch_size": args.batch_size},
        valid_size=25_000,
        eval_limit=args.eval_limit,
        test=False,
        hardware=False,
        threads=args.threads,
        device="cpu",
    )
    started = time.perf_counter()
    evaluator.load()
    print(f"# data loaded in {time.perf_counter() - started:.1f} s; {len(indices)} NB201 cells")
    print(
        "# cells (benchmark index: table valid_acc): "
        + ", ".join(f"{i}:{valid_200[i]:.1f}" for i in indices)
    )
    print(
        f"# threads {args.threads}, load average {os.getloadavg()[0]:.2f}, "
        f"batch {args.batch_size}, validation on {args.eval_limit} images"
    )
    results: dict[str, object] = {"cells": indices, "settings": {}}
    summary = []
    for name, fidelity in picked:
        elapsed = (time.perf_counter() - started) / 60
        if elapsed > args.max_minutes:
            print(f"# skipping {name}: {elapsed:.1f} min spent of --max-minutes {args.max_minutes}")
            continue
        accs, seconds = [], []
        for index in indices:
            result = evaluator.evaluate(space.from_index(index), fidelity)
            accs.append(float(result.metrics["valid_acc"]))
            seconds.append(result.cost)
        tau_valid = kendall_tau_b(accs, [float(valid_200[i]) for i in indices])
        tau_test = kendall_tau_b(accs, [float(test_200[i]) for i in indices])
        per_arch = float(np.mean(seconds))
        summary.append((name, tau_valid, tau_test, per_arch))
        print(
            f"{name:<20} tau(valid_200)={tau_valid:+.3f} tau(test_200)={tau_test:+.3f} "
            f"{per_arch:6.1f} s/arch  short-run valid acc {min(accs):.1f}..{max(accs):.1f}  "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        results["settings"][name] = {  # type: ignore[index]
            "fidelity": fidelity,
            "valid_acc": accs,
            "seconds": seconds,
            "tau_valid": tau_valid,
            "tau_test": tau_test,
        }
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1))
    good = [s for s in summary if s[1] >= 0.5]
    if good:
        cheapest = min(good, key=lambda s: s[3])
        print(
            f"# cheapest setting with tau >= 0.5: {cheapest[0]} "
            f"(tau {cheapest[1]:.3f}, {cheapest[3]:.1f} s per architecture)"
        )
    else:
        print("# no setting reached tau >= 0.5")
    print(f"# total {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
