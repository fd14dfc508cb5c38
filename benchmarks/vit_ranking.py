"""Ranking fidelity of the super-transformer (issue 20), reduced CPU setting: inherited
accuracy against stand-alone accuracy, with and without ViTAS's private class tokens and
attention maps.

The ``vit-cifar`` super-transformer (patch 4 or 8, 32x32 CIFAR-10, embedding 64-128, depth
4-6) is trained twice with the same seed and budget, AutoFormer's uniform sampling by default
(``--sampling sandwich`` for BigNAS's rule): once with ``private=True`` (ViTAS, Su et al.,
arXiv:2106.13700: a class token and attention maps per choice) and once with
``private=False`` (everything shared, as AutoFormer, Chen et al., ICCV 2021,
arXiv:2107.00651). ``--archs`` sub-networks are drawn uniformly (seeded, distinct); each is
measured with its inherited weights on both super-transformers and trained alone from
scratch with the same recipe (AdamW, warm-up and cosine, label smoothing 0.1;
``--alone-epochs``) on the same training half; all accuracies are on the same held-out half.
The script prints each super-transformer's wall time and Kendall's tau and Spearman's rho
of inherited against stand-alone accuracy for both variants side by side, and writes
``OUT/results.json``: one record per sub-network with ``arch``, ``inherited_acc``
(private), ``inherited_acc_shared``, ``alone_acc``, ``params_M``, ``macs_M`` (read by
``benchmarks/transformer_proxies.py``).

Stand-alone results are cached in ``OUT/alone.json`` and the super-transformers in
``OUT/<variant>-...`` (an interrupted run resumes), so a second run only measures. Run on a
quiet machine:
    nice python benchmarks/vit_ranking.py --data ../shared/data/cifar10/cifar10-jpeg.tar.gz \
        --epochs 30 --data-fraction 0.2 --alone-epochs 5 --archs 30
Smoke run (under a minute): --epochs 1 --data-fraction 0.01 --alone-epochs 1 --archs 4

Cost on the project's shared 2-core machine (one thread, batch 64, loaded by other jobs): a
super-transformer step takes 0.15-0.25 s, so the defaults (78 steps per epoch, 30 epochs)
train each super-transformer in about 6-10 minutes; a stand-alone step of a sub-network takes
0.07-0.4 s, so the 30 stand-alone runs of 5 epochs take roughly half an hour (cached).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.ranks import kendall, spearman
from nasforge.train import load_cifar10
from nasforge.transformer import (
    ViTTrainSettings,
    subnet_accuracy,
    train_alone,
    train_super_vit,
    training_data,
)

SPACE = "vit-cifar"


def draw(space: object, count: int, seed: int) -> list[Architecture]:
    """``count`` distinct canonical sub-networks drawn uniformly."""
    rng = np.random.default_rng(seed)
    out: dict[Architecture, None] = {}
    while len(out) < count:
        out[space.canonical(space.sample(rng))] = None  # type: ignore[attr-defined]
    return list(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/cifar10/cifar10-jpeg.tar.gz")
    parser.add_argument("--out", default="/tmp/vit_ranking")
    parser.add_argument("--epochs", type=int, default=30, help="super-transformer epochs")
    parser.add_argument("--alone-epochs", type=int, default=5)
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--data-fraction", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument("--sampling", default="uniform", choices=["uniform", "sandwich"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = spaces.create(SPACE)
    settings = ViTTrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_epochs=min(args.warmup_epochs, args.epochs - 1),
        data_fraction=args.data_fraction,
        seed=args.seed,
        sampling=args.sampling,
    )
    print(f"settings: {vars(args)}\nrecipe: {settings.to_dict()}", flush=True)
    data = load_cifar10(args.data)
    split = training_data(space, data, settings)
    print(
        f"CIFAR-10: {len(split.train)} training and {len(split.valid)} held-out images, "
        f"{split.steps_per_epoch} steps per epoch",
        flush=True,
    )
    archs = draw(space, args.archs, args.seed)
    costs = [space.costs(a, num_classes=10) for a in archs]

    inherited: dict[str, list[float]] = {}
    tag = f"{args.sampling}-e{args.epochs}-f{args.data_fraction}-b{args.batch_size}-s{args.seed}"
    for private in (True, False):
        name = "private" if private else "shared"
        began = time.perf_counter()
        trained = train_super_vit(
            space, out / f"{name}-{tag}", settings.replace(private=private), data=data,
            device="cpu", threads=args.threads,
        )  # fmt: skip
        seconds = time.perf_counter() - began
        history = trained.metadata["history"]
        spent = sum(h["seconds"] for h in history)
        print(
            f"super-transformer private={private}: {len(history)} epochs, last loss "
            f"{history[-1]['loss']:.3f}, {spent:.0f} s training (wall {seconds:.0f} s this run)",
            flush=True,
        )
        inherited[name] = [
            subnet_accuracy(trained, a, split, images=len(split.valid)) for a in archs
        ]

    cache = out / "alone.json"
    alone: dict[str, float] = json.loads(cache.read_text()) if cache.exists() else {}
    recipe = settings.replace(epochs=args.alone_epochs, warmup_epochs=0)
    began = time.perf_counter()
    for k, arch in enumerate(archs):
        key = f"{arch.text}|{tag}|alone{args.alone_epochs}"
        if key not in alone:
            alone[key] = train_alone(space, arch, recipe, split, images=len(split.valid))
            cache.write_text(json.dumps(alone, indent=1, sort_keys=True))
            print(f"alone {k + 1}/{len(archs)}: {alone[key]:.2f}%  {arch.text}", flush=True)
    truth = [alone[f"{a.text}|{tag}|alone{args.alone_epochs}"] for a in archs]
    print(f"stand-alone training: {time.perf_counter() - began:.0f} s this run")

    records = [
        {
            "arch": a.text,
            "inherited_acc": inherited["private"][i],
            "inherited_acc_shared": inherited["shared"][i],
            "alone_acc": truth[i],
            "params_M": costs[i]["params_M"],
            "macs_M": costs[i]["macs_M"],
        }
        for i, a in enumerate(archs)
    ]
    (out / "results.json").write_text(json.dumps(records, indent=1) + "\n")
    print(
        f"\n{len(archs)} sub-networks, stand-alone {args.alone_epochs} epochs: "
        f"{min(truth):.1f}-{max(truth):.1f}%"
    )
    print(f"{'super-transformer':<28}{'inherited %':>16}{'Kendall tau':>14}{'Spearman':>10}")
    for name, label in (("private", "ViTAS private (True)"), ("shared", "AutoFormer shared")):
        values = inherited[name]
        print(
            f"{label:<28}{min(values):>7.1f}-{max(values):<8.1f}"
            f"{kendall(values, truth):>14.3f}{spearman(values, truth):>10.3f}"
        )
    params = [c["params_M"] for c in costs]
    print(
        f"{'params_M (baseline)':<28}{'':>16}{kendall(params, truth):>14.3f}"
        f"{spearman(params, truth):>10.3f}"
    )
    print(f"results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
