"""EAS on reduced CIFAR-10: the accuracy gained per grown step, against spending the same
compute training the parent longer.

A small plain CNN (the kind EAS starts from: convolutions, batch norm, ReLU, pooling, a
linear classifier; Cai et al., AAAI 2018, arXiv:1707.04873, Section 4.1) is trained for
``--parent-epochs`` on a class-balanced subset of CIFAR-10's training images at
``--resolution`` px. Then :func:`nasforge.growth.eas` grows it for ``--steps`` steps with
``grow_from="best"`` (each step transforms the best network so far): ``--networks``
networks per step, each with ``--wider`` Net2Wider and ``--deeper`` Net2Deeper decisions and
``--train-epochs`` epochs of training. The baseline continues training the parent in runs
of ``--train-epochs`` epochs with the same recipe (the same restart of the cosine schedule
as each grown network gets).

Figures, per step ``t``: the best validation accuracy EAS has found; the parent trained
``t * train_epochs`` more epochs (the same epochs as the grown network's own lineage:
equal compute per network); and the parent trained ``t * networks * train_epochs`` more
epochs (all the training EAS spent up to that step: equal total compute). At the end: the
test accuracy of EAS's best network and of both baselines, and the parameters of each.

Full run (about 12 minutes of one core):
  OMP_NUM_THREADS=1 nice python benchmarks/eas_growth.py --threads 1 \\
      --data /work/shared/data/cifar10/cifar10-jpeg.tar.gz --out /work/ref/issue24/eas_growth
Smoke run (seconds, synthetic images):
  python benchmarks/eas_growth.py --synthetic --train-images 300 --steps 1 --networks 2 \\
      --parent-epochs 1 --out /tmp/eas_smoke
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import time
from pathlib import Path

import torch
from torch import nn

from nasforge import growth
from nasforge.train import (
    DataSplits,
    Recipe,
    SyntheticImages,
    evaluate_accuracy,
    load_cifar10,
    split_train_valid,
    train,
)
from nasforge.train.data import stratified_indices


def parent_network(width: int, classes: int) -> nn.Sequential:
    """conv(w)-pool-conv(2w)-pool-conv(4w)-GAP-linear, each convolution with BN and ReLU."""
    layers: list[nn.Module] = []
    c_in = 3
    for i, c_out in enumerate((width, 2 * width, 4 * width)):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)]
        layers.append(nn.ReLU())
        if i < 2:
            layers.append(nn.MaxPool2d(2))
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes)]
    return nn.Sequential(*layers)


def reduced(args: argparse.Namespace) -> DataSplits:
    if args.synthetic:
        return SyntheticImages(
            n_train=args.train_images, n_test=args.test_images, size=args.resolution
        ).load()
    full = load_cifar10(args.data)
    train_part = full.train.subset(
        stratified_indices(full.train.labels, args.train_images, args.seed)
    )
    test_part = full.test.subset(stratified_indices(full.test.labels, args.test_images, 1))
    return DataSplits(
        "cifar10-subset",
        train_part.resized(args.resolution),
        test_part.resized(args.resolution),
        full.mean,
        full.std,
        source=f"{full.source} ({args.train_images}/{args.test_images} images)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/work/shared/data/cifar10/cifar10-jpeg.tar.gz")
    parser.add_argument("--synthetic", action="store_true", help="synthetic images instead")
    parser.add_argument("--train-images", type=int, default=6000)
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--valid-images", type=int, default=1000)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--width", type=int, default=16, help="parent's first convolution")
    parser.add_argument("--parent-epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--networks", type=int, default=4, help="networks per step")
    parser.add_argument("--wider", type=int, default=1, help="Net2Wider decisions per net")
    parser.add_argument("--deeper", type=int, default=1, help="Net2Deeper decisions per net")
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="/work/ref/issue24/eas_growth")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    data = reduced(args)
    fit, valid = split_train_valid(data.train, args.valid_images, args.seed)
    recipe = Recipe(lr=args.lr, batch_size=64, weight_decay=5e-4, epochs=args.parent_epochs)
    norm = {"mean": data.mean, "std": data.std}

    def accuracy(model: nn.Module, part: object) -> float:
        return evaluate_accuracy(model, part, **norm)  # type: ignore[arg-type]

    with torch.random.fork_rng():
        torch.manual_seed(args.seed)
        parent = parent_network(args.width, data.num_classes)
    train(parent, fit, recipe, seed=args.seed, **norm)
    parent_valid = accuracy(parent, valid)
    print(
        f"parent: {sum(p.numel() for p in parent.parameters())} params, valid {parent_valid:.2f}%"
    )

    # EAS sees the same fit/valid split: its data is the fit images plus the valid images
    # given back as its validation split (split_train_valid with the same seed and size).
    result = growth.eas(
        parent,
        data,
        steps=args.steps,
        networks_per_step=args.networks,
        wider_actions=args.wider,
        deeper_actions=args.deeper,
        train_epochs=args.train_epochs,
        recipe=Recipe(lr=args.lr, batch_size=64, weight_decay=5e-4),
        valid_size=args.valid_images,
        filter_widths=tuple(args.width * k for k in (1, 2, 3, 4, 6, 8, 12, 16)),
        grow_from="best",
        seed=args.seed,
    )
    eas_seconds = time.perf_counter() - started
    best_per_step = result.best_per_step()

    chunk = Recipe(lr=args.lr, batch_size=64, weight_decay=5e-4, epochs=args.train_epochs)
    longer = copy.deepcopy(parent)
    baseline = [parent_valid]
    lineage_model = None
    for run in range(1, args.steps * args.networks + 1):
        train(longer, fit, chunk, seed=args.seed + 1000 + run, **norm)
        baseline.append(accuracy(longer, valid))
        if run == args.steps:
            lineage_model = copy.deepcopy(longer)
    rows = []
    print("step  EAS best valid  parent +t*E (lineage)  parent +t*N*E (total)  grown by")
    for t in range(args.steps + 1):
        improved = [g for g in result.history if g.step == t and g.accuracy == best_per_step[t]]
        row = {
            "step": t,
            "eas_best_valid": best_per_step[t],
            "parent_equal_lineage_valid": baseline[t],
            "parent_equal_total_valid": baseline[t * args.networks],
            "transformations": list(improved[0].transformations) if improved and t else [],
            "epochs_eas_total": t * args.networks * args.train_epochs,
        }
        rows.append(row)
        print(
            f"{t:4d}  {row['eas_best_valid']:14.2f}  {row['parent_equal_lineage_valid']:21.2f}"
            f"  {row['parent_equal_total_valid']:21.2f}  {'; '.join(row['transformations'])}"
        )
    best = result.best_model
    assert best is not None and lineage_model is not None
    final = {
        "eas_best": {
            "valid": result.best.accuracy if result.best else None,
            "test": accuracy(best, data.test),
            "params": sum(p.numel() for p in best.parameters()),
            "layers": result.best.architecture if result.best else "",
        },
        "parent": {"test": accuracy(parent, data.test), "params": result.parent.params},
        "parent_equal_lineage": {"test": accuracy(lineage_model, data.test)},
        "parent_equal_total": {"test": accuracy(longer, data.test)},
    }
    for name, entry in final.items():
        print(
            f"{name:22s} test {entry['test']:.2f}%  "
            + (f"params {entry['params']}" if "params" in entry else "")
        )
    gained = [b - a for a, b in itertools.pairwise(best_per_step)]
    print(f"EAS valid gain per step: {[round(g, 2) for g in gained]}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "settings": vars(args),
        "parent_valid": parent_valid,
        "steps": rows,
        "final": final,
        "gain_per_step": gained,
        "history": [
            {
                "step": g.step,
                "sample": g.sample,
                "valid": g.accuracy,
                "params": g.params,
                "transformations": list(g.transformations),
                "trained": g.trained,
                "layers": g.architecture,
            }
            for g in result.history
        ],
        "baselines": result.baselines,
        "eas_epochs": result.epochs,
        "seconds_eas": eas_seconds,
        "seconds_total": time.perf_counter() - started,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2))
    print(f"wrote {out / 'results.json'} ({payload['seconds_total']:.0f} s)")


if __name__ == "__main__":
    main()
