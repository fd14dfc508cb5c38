"""Mixed precision on a reduced setting: FLIQS's front against uniform precisions, and its
one-shot accuracies against the same policies trained alone (the no-retraining claim).

The network: one NAS-Bench-201 cell (three 3x3 convolutions and a skip; ``--cell``) at 8
channels, one cell per stage, 16x16 CIFAR-10 images (23 quantizable layers: stem, cell and
reduction convolutions, classifier), its float weights drawn once from ``--seed``. Every
training below starts from these weights with the same recipe (SGD, lr 0.05, batch 64, cosine,
``--epochs`` epochs) on the same training images (the CIFAR-10 subset less FLIQS's
validation split), and every accuracy is on the same ``--test-images`` test images.

1. **FLIQS** (:func:`nasforge.quant.fliqs.fliqs_search`, formats int2/int4/int8 for weights
   and activations of every layer, cost ``model_bits``) at each target of ``--targets``, given
   as average bits per weight (the model bits of that uniform width, interpolated between the
   uniform int2 and int8 networks). Each search gives a policy, measured one-shot: its own
   search's shared weights, recalibrated (batch norm, activation ranges), no retraining.
2. **Uniform int8/int4/int2** of the same network, measured both ways: one-shot on the shared
   weights of the search whose target is nearest to their cost, and trained alone with
   quantization-aware training.
3. **Policies trained alone**: the searched policies, the uniform ones and ``--random``
   policies drawn uniformly (one-shot: on the shared weights of the search whose target is
   nearest to the policy's cost) are trained alone with quantization-aware training; printed:
   both accuracies, Kendall's tau and Spearman's rho between them, the mean absolute gap.

Prints the front (accuracy vs model bits: searched and uniform), the one-shot vs trained-alone
table and its statistics, and writes ``OUT/results.json``; each search's measured policies
are trials of a study ``fliqs-<target>bits-seed<seed>`` of ``nb201+quant`` in
``OUT/studies.db`` (a rerun with the same OUT reopens them and records no epoch twice).

Full run (about 4 minutes, 249 s, on one thread of the project machine):
    OMP_NUM_THREADS=1 nice python benchmarks/mixed_precision.py \\
        --data /work/shared/data/cifar10/cifar10-jpeg.tar.gz --out /tmp/mixed_precision
Smoke (synthetic images, seconds):
    OMP_NUM_THREADS=1 python benchmarks/mixed_precision.py --smoke --out /tmp/mp_smoke
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge import spaces
from nasforge.ops.quant import model_bits, quantize_model
from nasforge.quant.fliqs import fliqs_search, policy_accuracy
from nasforge.ranks import kendall, spearman
from nasforge.spaces.quantized import QuantizedSpace
from nasforge.train import SyntheticImages, load_cifar10, train
from nasforge.train.data import DataSplits, split_train_valid, stratified_indices
from nasforge.train.trainer import evaluate_accuracy, seeded

CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
FORMATS = ("int2", "int4", "int8")


def load(args: argparse.Namespace) -> DataSplits:
    if args.smoke or not Path(args.data).exists():
        if not args.smoke:
            print(f"CIFAR-10 not found at {args.data}; falling back to synthetic images.")
        return SyntheticImages(
            num_classes=10, n_train=args.train_images, n_test=args.test_images,
            size=args.resolution, seed=args.seed,
        ).load()  # fmt: skip
    data = load_cifar10(args.data)
    train_index = stratified_indices(data.train.labels, args.train_images, args.seed)
    test_index = stratified_indices(data.test.labels, args.test_images, args.seed)
    return DataSplits(
        "cifar10",
        data.train.subset(train_index).resized(args.resolution),
        data.test.subset(test_index).resized(args.resolution),
        data.mean,
        data.std,
        source=data.source,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/work/shared/data/cifar10/cifar10-jpeg.tar.gz")
    parser.add_argument("--out", default="mixed_precision_out")
    parser.add_argument("--cell", default=CELL)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--train-images", type=int, default=3000)
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--warmup-epochs", type=int, default=1)
    parser.add_argument("--targets", type=float, nargs="+", default=[3.5, 5.0, 6.5])
    parser.add_argument("--random", type=int, default=2, help="random policies trained alone")
    parser.add_argument("--controller-lr", type=float, default=0.5)
    parser.add_argument("--cost-weight", type=float, default=-1.0)
    parser.add_argument("--entropy-weight", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny synthetic run")
    args = parser.parse_args()
    if args.smoke:
        args.train_images, args.test_images, args.resolution = 300, 100, 8
        args.epochs, args.warmup_epochs, args.targets, args.random = 2, 1, [3.0, 6.0], 1
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    data = load(args)
    space = spaces.create("nb201")
    arch = space.parse(args.cell)
    with seeded(args.seed):
        model = space.build(arch, channels=args.channels, cells_per_stage=1)
    quant_space = QuantizedSpace(space, FORMATS, settings={"cells_per_stage": 1})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(out / 'studies.db').resolve()}"
    uniform_bits = {f: float(model_bits(quantize_model(model, f))) for f in FORMATS}
    low, high = uniform_bits["int2"], uniform_bits["int8"]

    def average_bits(bits: float) -> float:
        return 2.0 + 6.0 * (bits - low) / (high - low)

    print(
        f"network: nb201 cell {args.cell} ({args.channels} channels, 1 cell per stage), "
        f"{args.resolution}px, {len(data.train)} training / {len(data.test)} test images "
        f"({data.name}); epochs {args.epochs} (warm-up {args.warmup_epochs}); uniform model "
        f"bits: " + ", ".join(f"{f} {b:.0f}" for f, b in uniform_bits.items())
    )

    # 1. FLIQS at each target
    searches: list[dict[str, Any]] = []
    for avg in args.targets:
        target = low + (avg - 2.0) / 6.0 * (high - low)
        t0 = time.perf_counter()
        result = fliqs_search(
            model, data, precisions=FORMATS, cost="model_bits", target=target,
            cost_weight=args.cost_weight, entropy_weight=args.entropy_weight,
            controller_lr=args.controller_lr, space=quant_space, arch=arch, storage=storage,
            study_name=f"fliqs-{avg:g}bits-seed{args.seed}",
            epochs=args.epochs, warmup_epochs=args.warmup_epochs, seed=args.seed,
        )  # fmt: skip
        searches.append(
            {
                "target_avg_bits": avg, "target": target, "result": result,
                "policy": list(result.policy), "model_bits": result.model_bits,
                "avg_bits": average_bits(result.model_bits), "oneshot_acc": result.test_acc,
                "final_entropy": result.history[-1]["entropy"],
                "seconds": time.perf_counter() - t0,
            }
        )  # fmt: skip
        print(
            f"FLIQS target {avg:.1f} bits: policy {','.join(p[3:] for p in result.policy)} "
            f"= {average_bits(result.model_bits):.2f} avg bits, one-shot test acc "
            f"{result.test_acc:.2f}% (entropy {result.history[-1]['entropy']:.3f}, "
            f"{time.perf_counter() - t0:.0f}s)"
        )

    def nearest(bits: float) -> dict[str, Any]:
        return min(searches, key=lambda s: abs(s["target"] - bits))

    # 2-3. the policies: searched, uniform, random
    rng = np.random.default_rng(args.seed + 1)
    n_layers = len(searches[0]["policy"])
    policies: list[tuple[str, list[str]]] = [(f"fliqs@{s['target_avg_bits']:g}", s["policy"])
                                             for s in searches]  # fmt: skip
    policies += [(f"uniform-{f}", [f] * n_layers) for f in FORMATS]
    policies += [
        (f"random-{i}", [FORMATS[k] for k in rng.integers(len(FORMATS), size=n_layers)])
        for i in range(args.random)
    ]
    valid_size = max(1, len(data.train) // 10)
    train_part, _ = split_train_valid(data.train, valid_size, args.seed)
    recipe = searches[0]["result"].recipe
    rows = []
    for name, policy in policies:
        bits = float(model_bits(quantize_model(model, policy)))
        own = next((s for s in searches if name == f"fliqs@{s['target_avg_bits']:g}"), None)
        source = own if own is not None else nearest(bits)
        if own is not None:
            oneshot = own["oneshot_acc"]
        else:
            oneshot = policy_accuracy(source["result"].supernet, policy, data)
        alone_net = quantize_model(model, policy)
        t0 = time.perf_counter()
        train(alone_net, train_part, recipe, mean=data.mean, std=data.std, seed=args.seed)
        alone = evaluate_accuracy(alone_net, data.test, mean=data.mean, std=data.std)
        rows.append(
            {
                "name": name, "policy": policy, "model_bits": bits, "avg_bits": average_bits(bits),
                "oneshot_acc": oneshot, "alone_acc": alone,
                "shared_weights_of": f"fliqs@{source['target_avg_bits']:g}",
            }
        )  # fmt: skip
        print(
            f"{name:>14}: {average_bits(bits):.2f} avg bits, one-shot {oneshot:6.2f}% "
            f"(weights of fliqs@{source['target_avg_bits']:g}), trained alone {alone:6.2f}% "
            f"({time.perf_counter() - t0:.0f}s)"
        )

    one = np.array([r["oneshot_acc"] for r in rows])
    alone = np.array([r["alone_acc"] for r in rows])
    stats = {
        "policies": len(rows),
        "kendall_tau": kendall(one, alone),
        "spearman_rho": spearman(one, alone),
        "mean_abs_gap": float(np.mean(np.abs(one - alone))),
        "mean_gap_oneshot_minus_alone": float(np.mean(one - alone)),
    }
    searched = [r for r in rows if r["name"].startswith("fliqs")]
    stats["searched_mean_abs_gap"] = float(
        np.mean([abs(r["oneshot_acc"] - r["alone_acc"]) for r in searched])
    )
    print("\nfront (accuracy vs model bits):")
    for r in sorted((r for r in rows if not r["name"].startswith("random")),
                    key=lambda r: r["model_bits"]):  # fmt: skip
        print(
            f"  {r['name']:>14}  {r['model_bits'] / 8 / 1024:7.2f} KiB  "
            f"({r['avg_bits']:.2f} avg bits)  one-shot {r['oneshot_acc']:6.2f}%  "
            f"trained alone {r['alone_acc']:6.2f}%"
        )
    print(
        f"\none-shot vs trained alone on {len(rows)} policies: Kendall tau "
        f"{stats['kendall_tau']:.3f}, Spearman {stats['spearman_rho']:.3f}, mean |gap| "
        f"{stats['mean_abs_gap']:.2f} points (searched policies: "
        f"{stats['searched_mean_abs_gap']:.2f}); mean one-shot - alone "
        f"{stats['mean_gap_oneshot_minus_alone']:+.2f}"
    )
    seconds = time.perf_counter() - began
    print(f"total {seconds:.0f}s")
    payload = {
        "settings": dict(vars(args)),
        "data": data.name,
        "uniform_model_bits": uniform_bits,
        "searches": [{k: v for k, v in s.items() if k != "result"} for s in searches],
        "policies": rows,
        "stats": stats,
        "seconds": seconds,
        "threads": args.threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    (out / "results.json").write_text(json.dumps(payload, indent=1, default=float))


if __name__ == "__main__":
    main()
