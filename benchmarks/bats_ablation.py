"""BATS's stabilising ingredients, ablated: the searched binary cell with and without each.

Searches binary cells on real CIFAR-10 images with BATS (``nasforge.oneshot.bats``; Bulat,
Martinez and Tzimiropoulos, ECCV 2020, arXiv:2003.01711) four times, same seed, data and
budget:

* ``full``: the binary-oriented space (grouped binary convolutions), the temperature
  ``T = 0.2`` on the architecture softmax, binary activations first then binary weights;
* ``no-binary-space``: DARTS's operations binarised instead of BATS's
  (``SupernetSettings(options={"operations": "darts"})``);
* ``no-temperature``: ``T = 1`` (DARTS's softmax);
* ``no-staged``: activations and weights binary from the first epoch.

Per epoch it prints the share of parameter-free operations (none, skip, pooling) among the 16
operations of the derived cells (``param_free_share``) and the architecture weights' mass on
them (``param_free_weight``), as ``benchmarks/oneshot_collapse.py`` shows DARTS's collapse;
then it trains each final cell as a binary network for a few epochs
(``evaluators.create("train", space="bats", ...)``, the operations it was searched with) and
prints its validation and test accuracy. Figures go to OUT/results.json.

Reduced CPU setting (see ``--help``): search network 4 channels, 5 cells, 16x16 images, 400
training images split in halves (weights / architecture), batch 40, 12 epochs (weights
binary from epoch 6 on in the staged variants), the architecture's Adam at 3e-3 (10x DARTS's
rate: the run has 60 architecture steps where DARTS has about 20,000); final network 8
channels, 5 cells, 2,000 training images, 2 epochs of the space's binary recipe, accuracy on
1,000 validation and 1,000 test images. BATS's own protocol (searching on CIFAR-10 at 32 px
for many epochs, training for hundreds) is a GPU's work; at this size the final accuracies
differ by less than the noise of a 2-epoch training, and the architecture weights have moved
little: read the figures as the pipeline working, not as a replication of the paper's gaps.

Full run (about 8 minutes on one thread of the shared 2-core machine; 5 minutes with 8
epochs and 320 images):
    nice python benchmarks/bats_ablation.py --out /work/ref/issue21/bats_ablation
Longer run (400 architecture steps; about 27 minutes on two threads): the full BATS cell
trained best (test 27.4% against 26.0 without the temperature, 26.1 without staging, 16.9 in
the binarised DARTS space; one seed, 3 training epochs):
    nice python benchmarks/bats_ablation.py --search-images 1000 --batch 25 --epochs 20 \
        --train-epochs 3 --threads 2 --out /work/ref/issue21/bats_ablation_long
Smoke run (under a minute):
    python benchmarks/bats_ablation.py --smoke --out /tmp/bats_smoke
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nasforge import evaluators, oneshot
from nasforge.architecture import Architecture
from nasforge.evaluators.base import Evaluator
from nasforge.oneshot import SupernetSettings
from nasforge.spaces.bats import darts_names
from nasforge.train import load_cifar10
from nasforge.trial import Direction, Result

DATA = "/work/shared/data/cifar10/cifar10-jpeg.tar.gz"

#: Each variant: the method's hyperparameters and the supernet's options.
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "full": ({}, {}),
    "no-binary-space": ({}, {"operations": "darts"}),
    "no-temperature": ({"temperature": 1.0}, {}),
    "no-staged": ({"staged": False}, {}),
}


class CellOps(Evaluator):
    """The derived cell's count of operations with weights (no training): the per-epoch
    record of the search; the accuracy comes from the final training."""

    space = "bats"

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"weighted_ops": Direction.MAXIMIZE}

    def evaluate(self, arch: Architecture, fidelity: Any = None) -> Result:
        return Result({"weighted_ops": float(sum(op >= 3 for op in arch.choices[1::2]))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DATA, help="CIFAR-10 (python release, folder, .tar.gz)")
    parser.add_argument("--out", default="bats_ablation_out", help="folder of results.json")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--epochs", type=int, default=12, help="search epochs")
    parser.add_argument("--channels", type=int, default=4, help="search network's C")
    parser.add_argument("--layers", type=int, default=5, help="cells of both networks")
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--search-images", type=int, default=400)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--train-channels", type=int, default=8, help="final network's C")
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--eval-images", type=int, default=1000)
    parser.add_argument(
        "--arch-lr",
        type=float,
        default=3e-3,
        help="Adam rate of the architecture parameters (DARTS: 3e-4 over ~20k steps; this "
        "run has a few dozen, so 10x, the same for every variant)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny settings, to check it runs")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.search_images, args.batch = 2, 64, 32
        args.train_epochs, args.train_images, args.eval_images = 1, 200, 200
        args.resolution = 16
    torch.set_num_threads(args.threads)
    if not Path(args.data).exists():
        raise SystemExit(
            f"CIFAR-10 not found at {args.data!r}; give --data (see "
            "/work/shared/data/cifar10/README*)."
        )
    data = load_cifar10(args.data)
    n_train = len(data.train)
    settings_of = {
        name: SupernetSettings(
            channels=args.channels,
            cells=args.layers,
            resolution=args.resolution,
            data_fraction=args.search_images / n_train,
            batch_size=args.batch,
            options=options,
        )
        for name, (_, options) in VARIANTS.items()
    }
    print(
        f"search: C={args.channels}, {args.layers} cells, {args.resolution}px, "
        f"{args.search_images} images (halves), batch {args.batch}, {args.epochs} epochs; "
        f"final training: C={args.train_channels}, {args.train_epochs} epochs on "
        f"{args.train_images} images; seed {args.seed}, {args.threads} thread(s)",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    summary: dict[str, dict[str, Any]] = {}
    for name in args.variants.split(","):
        params, options = VARIANTS[name]
        started = time.perf_counter()

        def text(arch: Any, options: dict[str, Any] = options) -> str:
            """The cell with the operations it computes (DARTS's for ``no-binary-space``)."""
            return darts_names(str(arch)) if options.get("operations") == "darts" else str(arch)

        def show(study: Any, trial: Any, name: str = name) -> None:
            m = trial.metrics
            print(
                f"{name:>16} epoch {int(m['epoch'])}  free-ops {m['param_free_share']:.3f}  "
                f"free-weight {m.get('param_free_weight', math.nan):.3f}  binary-weights "
                f"{int(m.get('binary_weights', 1))}  {text(trial.arch)}",
                flush=True,
            )

        result = oneshot.search(
            "bats",
            data,
            space="bats",
            params={"arch_lr": args.arch_lr, **params},
            settings=settings_of[name],
            epochs=args.epochs,
            seed=args.seed,
            evaluator=CellOps(),
            objectives=("weighted_ops:max",),
            device="cpu",
            threads=args.threads,
            callbacks=[show],
        )
        search_seconds = time.perf_counter() - started
        trials = result.study.trials
        for trial in trials:
            rows.append({"variant": name, "arch": text(trial.arch), **trial.metrics})
        final = result.arch
        assert final is not None
        trainer = evaluators.create(
            "train",
            data=args.data,
            space="bats",
            preset="reduced",
            epochs=args.train_epochs,
            channels=args.train_channels,
            layers=args.layers,
            build={"operations": options.get("operations", "bats")},
            resolution=args.resolution,
            data_fraction=args.train_images / (n_train / 2),
            eval_limit=args.eval_images,
            test=True,
            seed=args.seed,
            threads=args.threads,
            device="cpu",
        )
        trained = trainer.evaluate(final).metrics
        summary[name] = {
            "final_arch": text(final),
            "param_free_share": [t.metrics["param_free_share"] for t in trials],
            "param_free_weight": [t.metrics.get("param_free_weight") for t in trials],
            "valid_acc": trained["valid_acc"],
            "test_acc": trained.get("test_acc"),
            "search_seconds": search_seconds,
            "train_seconds": time.perf_counter() - started - search_seconds,
        }
        print(
            f"{name:>16} final cell: free-ops {trials[-1].metrics['param_free_share']:.3f}, "
            f"binary training: valid {trained['valid_acc']:.2f} test "
            f"{trained.get('test_acc', math.nan):.2f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    print("\nvariant           free-ops share per epoch          final valid  final test")
    for name, s in summary.items():
        shares = " ".join(f"{v:.2f}" for v in s["param_free_share"])
        print(f"{name:<16}  {shares:<32}  {s['valid_acc']:10.2f}  {s['test_acc']:10.2f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps({"settings": vars(args), "summary": summary, "rows": rows}, indent=1)
    )


if __name__ == "__main__":
    main()
