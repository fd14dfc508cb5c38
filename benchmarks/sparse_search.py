"""Sparse search at 50%, 75% and 90% sparsity against magnitude pruning and random search at
equal training cost (issue 21), reduced CPU setting on a CIFAR-10 subset.

Network: the CIFAR ResNet of ``nasforge.ops.cifar_resnet`` (``--blocks`` basic blocks per
stage, first-stage width ``--base``; ResNet-8 at width 16 by default, 77k weights), on
``--train-images`` CIFAR-10 training images resized to ``--resolution`` pixels; accuracy is on
``--test-images`` CIFAR-10 test images. At each level ``s`` of ``--levels``:

* ``magnitude``: the dense network (``--dense-epochs``, trained once and shared) pruned layer
  by layer to ``s`` by weight magnitude (first convolution and classifier dense,
  ``nasforge.ops.sparse.prune_magnitude``), then fine-tuned for the rest of the budget;
* ``random-allocation``: ``--candidates`` random per-layer sparsity allocations totalling
  ``s`` over the same layers, each trained ``--candidate-epochs`` on 80% of the images and
  scored on the other 20%; the best retrained from its initialisation for the rest of the
  budget (unstructured, like magnitude pruning and DASS);
* ``random-width``: the same with random per-convolution widths keeping ``1 - s`` of the
  weights (structured, like TAS);
* ``tas``: TAS (``nasforge.sparse.tas``) with the parameter cost and target ratio ``1 - s``
  (structured sparsity at the same share of remaining weights), searching
  ``--search-epochs``, then training the searched widths from scratch with knowledge
  distillation from the dense network for the rest of the budget;
* ``dass``: DASS (``nasforge.oneshot``, method ``dass`` on space ``dass``) at sparsity ``s``
  for ``--search-epochs`` on ``--dass-search-fraction`` of the images, then the derived
  network built at ``s`` (every layer sparse) trained from scratch for the rest of the budget
  (``run_dass``).

Cost accounting: every method gets the same budget of ``--budget`` epochs' worth of training
images passed forward and backward (``budget x train-images``), counting everything it trains:
the dense network for the methods that start from it (magnitude pruning; TAS's teacher), the
supernet epochs of a search (a TAS or DASS search epoch passes every training image once,
half for the weights, half for the architecture), the random candidates, and the final
training. A teacher's forward passes in distillation and a supernet's extra width are not
weighed; the wall time of each method is printed beside it.

Columns: test accuracy, ``sparsity`` (share of the method's dense network's convolution and
classifier weights that are zero or absent: the ResNet's, or DASS's own network's),
``weights`` (the non-zero ones), ``images`` (training images seen, the cost) and wall
seconds.

Full run, TAS and the baselines at the three levels (11.5 minutes on one thread of the
project's 2-core machine while two other benchmarks ran: dense network 45 s, then per level
TAS 32-43 s beyond the shared dense network, magnitude 20 s, random search 21-45 s each):
    OMP_NUM_THREADS=1 nice python benchmarks/sparse_search.py \
        --data ../shared/data/cifar10/cifar10-jpeg.tar.gz --out OUT
DASS does not fit in the same 12 minutes: its supernet and its DARTS-cell network cost several
times the ResNet's time an image, so at the same image budget a level takes 136-174 s (three
levels 7.6 minutes, measured on the same machine alone); run it as a second command (its
dense reference is its own network):
    OMP_NUM_THREADS=1 nice python benchmarks/sparse_search.py \
        --data ../shared/data/cifar10/cifar10-jpeg.tar.gz --methods dass --out OUT-dass
Smoke run (about a minute): add ``--smoke`` (500 images, 8 px, width 8, budget 4, batch 32,
two candidates).
Without the CIFAR-10 archive it says so and runs on ``SyntheticImages`` instead.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from nasforge.ops.cifar_resnet import ResNetLayout, full_widths
from nasforge.ops.sparse import nonzero_params
from nasforge.sparse.baselines import (
    magnitude_pruning,
    random_sparse_search,
    train_dense,
    weight_sparsity,
)
from nasforge.sparse.tas import tas_search, train_pruned
from nasforge.train import Recipe, SyntheticImages, evaluate_accuracy, load_cifar10
from nasforge.train.data import DataSplits, stratified_indices

METHODS = ("dass", "tas", "magnitude", "random-allocation", "random-width")


def load(args: argparse.Namespace) -> DataSplits:
    """The CIFAR-10 subset (or synthetic images when the archive is absent)."""
    if Path(args.data).exists():
        full = load_cifar10(args.data)
        source = args.data
    else:
        print(f"CIFAR-10 not found at {args.data}; running on SyntheticImages instead.")
        full = SyntheticImages(
            num_classes=10, n_train=args.train_images, n_test=args.test_images, size=32
        ).load()
        source = "synthetic"
    train = full.train.subset(stratified_indices(full.train.labels, args.train_images, args.seed))
    test = full.test.subset(stratified_indices(full.test.labels, args.test_images, args.seed))
    train, test = train.resized(args.resolution), test.resized(args.resolution)
    return DataSplits(full.name, train, test, full.mean, full.std, source=source)


def recipe(args: argparse.Namespace, epochs: int) -> Recipe:
    return Recipe(lr=args.lr, epochs=epochs, batch_size=args.batch_size, weight_decay=5e-4)


def row(level, method, model, data, dense, images, seconds, **extra) -> dict:
    """A table row; ``dense``: the weights of the method's unpruned network."""
    acc = evaluate_accuracy(model, data.test, mean=data.mean, std=data.std)
    sparsity = weight_sparsity(model, dense)
    return {
        "level": level,
        "method": method,
        "test_acc": acc,
        "sparsity": sparsity,
        "weights": round((1 - sparsity) * dense),
        "nonzero_params": nonzero_params(model),
        "images": images,
        "seconds": seconds,
        **extra,
    }


def run_dass(args, level, data, budget, seed):
    """DASS through ``nasforge.oneshot`` (method ``dass`` on space ``dass``) at ``level``:
    ``--search-epochs`` of the sparse supernet (``--dass-channels``, ``--dass-layers``, the
    data's resolution, on ``--dass-search-fraction`` of the images; each epoch passes them
    once), then the derived network built at ``level`` (every convolution and the classifier
    sparse, DASS's SparseConv/SparseLinear, masks from its initial weights) and trained from
    scratch for the rest of the budget. Each epoch's derived architecture is recorded with
    its weight count (the study's metric, cheap) rather than trained."""
    from nasforge import oneshot, spaces
    from nasforge.evaluators.base import Evaluator
    from nasforge.train import train
    from nasforge.trial import Direction, Result

    started = time.perf_counter()
    space = spaces.create("dass")
    shape = {"channels": args.dass_channels, "layers": args.dass_layers, "auxiliary": False}

    class WeightsEvaluator(Evaluator):
        @property
        def metrics(self):
            return {"weights": Direction.MINIMIZE}

        def evaluate(self, arch, fidelity=None):
            net = space.build(arch, sparsity=level, **shape)
            return Result({"weights": float(sum(p.numel() for p in net.parameters()))})

    n = len(data.train)
    fraction = args.dass_search_fraction
    settings = oneshot.SupernetSettings(
        channels=args.dass_channels,
        cells=args.dass_layers,
        batch_size=args.batch_size,
        data_fraction=fraction,
    )
    result = oneshot.search(
        "dass",
        data,
        space="dass",
        params={"sparsity": level},
        settings=settings,
        epochs=args.search_epochs,
        seed=seed,
        evaluator=WeightsEvaluator(),
        objectives=("weights:min",),
        device="cpu",
        threads=args.threads,
    )
    search_seconds = time.perf_counter() - started
    if result.arch is None:
        raise RuntimeError(f"DASS derived no architecture: {result.failed}")
    search_images = args.search_epochs * (round(n * fraction) if fraction < 1 else n)
    model = space.build(result.arch, sparsity=level, **shape)  # every layer sparse
    epochs = (budget - search_images) // n
    train(model, data.train, recipe(args, epochs), mean=data.mean, std=data.std, seed=seed)
    extra = {"arch": str(result.arch), "search_seconds": search_seconds}
    return model, search_images + epochs * n, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/cifar10/cifar10-jpeg.tar.gz")
    parser.add_argument("--levels", default="0.5,0.75,0.9")
    parser.add_argument("--methods", default=",".join(METHODS[1:]), help=f"of {METHODS}")
    parser.add_argument("--train-images", type=int, default=3000)
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--base", type=int, default=16)
    parser.add_argument("--budget", type=int, default=10, help="epochs' worth of images each")
    parser.add_argument("--dense-epochs", type=int, default=5)
    parser.add_argument("--search-epochs", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--dass-channels", type=int, default=8)
    parser.add_argument("--dass-layers", type=int, default=5)
    parser.add_argument(
        "--dass-search-fraction",
        type=float,
        default=0.25,
        help="share of the training images DASS's supernet searches on (its epochs cost many "
        "times the ResNet's per image; the images it does not see go to the final training)",
    )
    parser.add_argument("--candidate-epochs", type=int, default=1)
    parser.add_argument("--arch-lr", type=float, default=0.02, help="TAS logits (paper 1e-3)")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="folder of results.json")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.train_images, args.test_images, args.resolution = 500, 200, 8
        args.budget, args.dense_epochs, args.search_epochs = 4, 2, 1
        args.candidates, args.base, args.batch_size = 2, 8, 32
    torch.set_num_threads(args.threads)
    levels = [float(s) for s in args.levels.split(",")]
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    data = load(args)
    n = len(data.train)
    layout = ResNetLayout(blocks=args.blocks, base=args.base, resolution=args.resolution)
    budget = args.budget * n
    full = layout.params(full_widths(layout))
    print(
        f"data {data.source}: {n} training / {len(data.test)} test images at "
        f"{args.resolution} px; ResNet blocks={args.blocks} base={args.base} "
        f"({layout.params(full_widths(layout))} weights); budget {args.budget} epochs = "
        f"{budget} images per method; {args.threads} thread(s)",
        flush=True,
    )
    rows = []
    dense = None
    dense_images = dense_seconds = 0
    if {"magnitude", "tas"} & set(methods):
        dense, run = train_dense(
            layout,
            data.train,
            recipe=recipe(args, args.dense_epochs),
            mean=data.mean,
            std=data.std,
            seed=args.seed,
        )
        dense_images, dense_seconds = run.images_seen, run.seconds
        rows.append(row(0.0, "dense", dense, data, full, dense_images, dense_seconds))
        print(f"dense: test {rows[-1]['test_acc']:.2f}% in {dense_seconds:.0f} s", flush=True)
    for level in levels:
        for method in methods:
            started = time.perf_counter()
            if method == "magnitude":
                assert dense is not None
                epochs = (budget - dense_images) // n
                model, run = magnitude_pruning(
                    dense,
                    data.train,
                    sparsity=level,
                    recipe=recipe(args, epochs),
                    mean=data.mean,
                    std=data.std,
                    seed=args.seed,
                )
                images = dense_images + run.images_seen
                extra = {}
            elif method.startswith("random"):
                candidate_images = args.candidates * args.candidate_epochs * (n - n // 5)
                epochs = (budget - candidate_images) // n
                model, result = random_sparse_search(
                    layout,
                    data.train,
                    sparsity=level,
                    kind=method.split("-")[1],
                    mean=data.mean,
                    std=data.std,
                    n_candidates=args.candidates,
                    candidate_recipe=recipe(args, args.candidate_epochs),
                    final_recipe=recipe(args, epochs),
                    seed=args.seed,
                )
                images = result.images_seen
                extra = {"valid_acc": list(result.valid_acc), "best": result.best}
            elif method == "tas":
                assert dense is not None
                search = tas_search(
                    layout,
                    data.train,
                    mean=data.mean,
                    std=data.std,
                    target_ratio=1 - level,
                    cost="params",
                    recipe=recipe(args, args.search_epochs),
                    arch_lr=args.arch_lr,
                    seed=args.seed,
                )
                epochs = (budget - dense_images - search.images_seen) // n
                model, record = train_pruned(
                    search.widths,
                    dense,
                    data.train,
                    layout=layout,
                    recipe=recipe(args, epochs),
                    mean=data.mean,
                    std=data.std,
                    seed=args.seed,
                )
                images = dense_images + search.images_seen + record.images_seen
                extra = {"widths": list(search.widths), "cost_ratio": search.cost_ratio}
            else:
                model, images, extra = run_dass(args, level, data, budget, args.seed)
            seconds = time.perf_counter() - started
            if method in ("magnitude", "tas"):
                seconds += dense_seconds
            own = full
            if method == "dass":  # its own network: every weight of its convolutions
                own = sum(
                    m.weight.numel()
                    for m in model.modules()
                    if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
                )
            rows.append(row(level, method, model, data, own, images, seconds, **extra))
            r = rows[-1]
            print(
                f"s={level:.2f} {method:>17}: test {r['test_acc']:6.2f}%  sparsity "
                f"{r['sparsity']:.3f}  weights {r['weights']:6d}  images {images:6d} "
                f"({images / n:.1f} epochs)  {seconds:5.0f} s",
                flush=True,
            )
    print()
    print(
        f"{'level':>5} {'method':>17} {'test %':>7} {'sparsity':>8} {'weights':>7} "
        f"{'images':>7} {'seconds':>7}"
    )
    for r in rows:
        print(
            f"{r['level']:5.2f} {r['method']:>17} {r['test_acc']:7.2f} {r['sparsity']:8.3f} "
            f"{r['weights']:7d} {r['images']:7d} {r['seconds']:7.0f}"
        )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        settings = {k: v for k, v in vars(args).items()}
        (out / "results.json").write_text(
            json.dumps({"settings": settings, "rows": rows}, indent=1)
        )
        print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
