"""A user's own model as a search space, searched on real images: the README's small CNN
(``nasforge.nn`` choices: stem width 16 or 32, stem kernel 3 or 5, an operation among a
convolution block, max pooling and skip, and 1 to 3 repeated blocks; 36 architectures) on a
CIFAR-10 subset at 16x16, searched

* by regularized evolution and by random search (``--trials`` each, every architecture
  trained ``--train-epochs`` epochs by the training evaluator on the subset's training half
  and scored on its validation half), and
* by DARTS and SPOS (``--oneshot-epochs`` supernet epochs on the same images split in halves
  for weights and architecture; no supernet written by hand: ``ModuleSpace.supernet()``),
  each derived architecture trained and scored by the same evaluator.

It prints every found architecture with its validation and test accuracy (the test accuracy
on ``--eval-limit`` CIFAR-10 test images), the seconds each search took, and writes
``OUT/results.json``. What it measures: that the model-as-space path works end to end on real
data, and how the architectures each method picks compare, not a ranking of the methods (the
space is small and one seed is noisy).

Full run (about 4.5 minutes of CPU on one free thread; 11 minutes of wall time on a shared
machine loaded about 4 times over)::

    nice python benchmarks/byo_model.py --data /work/shared/data/cifar10/cifar10-jpeg.tar.gz \
        --out /work/ref/issue22/byo_model

Smoke run (synthetic images, seconds)::

    python benchmarks/byo_model.py --smoke --out /tmp/byo_model

Figures of the full run (seed 0; valid/test accuracy in percent after 2 epochs of training):
regularized evolution width=32,kernel=3,op=pool,depth=3 35.90/35.75 (10 trained, 91 s CPU);
random width=32,kernel=5,op=pool,depth=3 34.55/35.50 (10 trained, 53 s); DARTS, 3 epochs,
width=32,kernel=5,op=conv,depth=3 32.00/32.95 (70 s); SPOS, 3 epochs and 3 generations,
width=32,kernel=3,op=pool,depth=3 35.90/35.75 (48 s). Short training favours the pooling
operation over the convolution block (fewer weights to fit in 2 epochs).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import nasforge
import nasforge.nn as nnf
from nasforge import oneshot
from nasforge.oneshot import SupernetSettings
from nasforge.spaces.module import ModuleSpace
from nasforge.train import SyntheticImages, load_cifar10


def block(width: Any) -> nn.Module:
    return nn.Sequential(nnf.Conv2d(width, width, 3, padding=1), nnf.BatchNorm2d(width), nn.ReLU())


class Net(nn.Module):
    """The README's model, with CIFAR-sized widths."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        width = nnf.ValueChoice([16, 32], label="width")
        kernel = nnf.ValueChoice([3, 5], label="kernel")
        self.stem = nn.Sequential(
            nnf.Conv2d(3, width, kernel, padding=kernel // 2), nnf.BatchNorm2d(width), nn.ReLU()
        )
        self.op = nnf.LayerChoice(
            {"conv": block(width), "pool": nn.MaxPool2d(3, 1, 1), "skip": nn.Identity()},
            label="op",
        )
        self.blocks = nnf.Repeat(lambda i: block(width), (1, 3), label="depth")
        self.head = nnf.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.op(self.stem(x))).mean((2, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/work/shared/data/cifar10/cifar10-jpeg.tar.gz")
    parser.add_argument("--out", default="byo_model_out")
    parser.add_argument("--smoke", action="store_true", help="Synthetic images, tiny budget")
    parser.add_argument("--trials", type=int, default=10, help="Trials of each black-box search")
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--oneshot-epochs", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=0.2, help="Share of CIFAR-10 train")
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--eval-limit", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    begun, begun_cpu = time.perf_counter(), time.process_time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    space = ModuleSpace(Net, name="byo_model:Net")
    common: dict[str, Any] = {
        "space": space,
        "recipe": {"epochs": args.train_epochs, "batch_size": 64, "lr": 0.05},
        "threads": 1,
        "device": "cpu",
        "hardware": False,
        "seed": args.seed,
    }
    if args.smoke:
        synthetic = {"num_classes": 4, "n_train": 128, "n_test": 32, "size": 8}
        evaluator = nasforge.evaluators.create(
            "train", dataset="synthetic", synthetic=synthetic, **common
        )
        data = SyntheticImages(**synthetic).load()  # type: ignore[arg-type]
        settings = SupernetSettings(batch_size=32)
        trials, oneshot_epochs, generations = 3, 1, 1
        print("smoke run: synthetic images")
    else:
        try:
            data = load_cifar10(args.data)
        except Exception as error:  # a missing or unreadable file: say what to give
            raise SystemExit(
                f"CIFAR-10 not readable at {args.data} ({error}); give --data, or --smoke."
            ) from None
        evaluator = nasforge.evaluators.create(
            "train",
            data=args.data,
            resolution=args.resolution,
            data_fraction=args.fraction,
            eval_limit=args.eval_limit,
            **common,
        )
        # the supernet trains on the same share of the training images, split in halves
        settings = SupernetSettings(
            resolution=args.resolution, data_fraction=args.fraction, batch_size=64
        )
        trials, oneshot_epochs, generations = args.trials, args.oneshot_epochs, 3
    print(
        f"space {space.name}: {space.size} architectures, decisions "
        f"{[(d.name, d.options) for d in space.decisions()]}"
    )
    rows: list[dict[str, Any]] = []

    def record(
        method: str, arch: Any, metrics: Any, seconds: float, cpu: float, trained: int
    ) -> None:
        row = {
            "method": method,
            "arch": str(arch),
            "valid_acc": float(metrics.get("valid_acc", float("nan"))),
            "test_acc": float(metrics.get("test_acc", float("nan"))),
            "search_seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "architectures_trained": trained,
        }
        rows.append(row)
        print(
            f"{method:>22}  {row['arch']:<36} valid {row['valid_acc']:6.2f}  test "
            f"{row['test_acc']:6.2f}  {row['search_seconds']:7.1f} s wall "
            f"{row['cpu_seconds']:7.1f} s CPU  ({trained} trained)"
        )

    for strategy in ("regularized-evolution", "random"):
        params = {"population_size": 5, "tournament_size": 3} if strategy != "random" else None
        started, cpu = time.perf_counter(), time.process_time()
        study = nasforge.create_study(
            space=space, strategy=strategy, seed=args.seed, strategy_params=params
        )
        study.optimize(evaluator, n_trials=trials)
        best = study.best_trial
        elapsed = time.perf_counter() - started
        record(strategy, best.arch, best.metrics, elapsed, time.process_time() - cpu, trials)

    searches = [
        ("darts", {}),
        ("spos", {"population": 6, "generations": generations, "top_k": 3}),
    ]
    for method, params in searches:
        started, cpu = time.perf_counter(), time.process_time()
        result = oneshot.search(
            method,
            data,
            space=space,
            params=params,
            settings=settings,
            epochs=oneshot_epochs,
            seed=args.seed,
            evaluator=evaluator,
            device="cpu",
            threads=1,
        )
        last = result.study.trials[-1]
        record(
            method,
            last.arch,
            last.metrics,
            time.perf_counter() - started,
            time.process_time() - cpu,
            len(result.study.trials),
        )
    summary: dict[str, Any] = {
        "settings": {
            "trials": trials,
            "train_epochs": args.train_epochs,
            "oneshot_epochs": oneshot_epochs,
            "fraction": None if args.smoke else args.fraction,
            "resolution": None if args.smoke else args.resolution,
            "seed": args.seed,
            "smoke": args.smoke,
            "threads": 1,
        },
        "rows": rows,
    }
    summary["total_seconds"] = round(time.perf_counter() - begun, 1)
    summary["total_cpu_seconds"] = round(time.process_time() - begun_cpu, 1)
    print(
        f"total: {summary['total_seconds']} s wall, {summary['total_cpu_seconds']} s CPU "
        "(one thread: the CPU time is the wall time of a run on a free core)"
    )
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
