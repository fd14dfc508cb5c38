"""Hardware-aware one-shot search on CIFAR-10 (issue 18 item 4): ProxylessNAS, FBNet and
Single-Path NAS with a latency target from a per-layer latency table measured here.

Per method it prints: the target, the predicted (table) and measured (PyTorch or ONNX
Runtime, batch 1) latency of the derived network, its test accuracy after a short
stand-alone training with one recipe for all (``nasforge.train.train``), and the cost of a
search step relative to a training step of the largest fixed network of the search space
(the same batch size; a ProxylessNAS or FBNet step takes one batch of each half, weights and
architecture).

Reduced CPU setting (default): the spaces' ``reduced`` presets (width 0.25, 32x32, strides
of the CIFAR networks), a fraction of the training images; each method well under 15
minutes on 2 cores. ``--gpu``: the published search settings as far as CIFAR-10 allows
(width 1.0, images resized to 224x224, ImageNet strides; ProxylessNAS 40 warm-up + 120
epochs, batch 256, an architecture step every 5; FBNet 10 warm-up + 80 epochs, batch 192;
every training image unless ``--data-fraction``), on CUDA (``benchmarks/mobile_oneshot_gpu.sh``;
give the epochs with ``--epochs``).

Run:  nice python benchmarks/mobile_oneshot.py --data ../shared/data/cifar10/cifar10-jpeg.tar.gz
      (add --methods proxylessnas,fbnet,single-path-nas, --target-ms 3, --epochs 4 ...)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from nasforge import oneshot, spaces
from nasforge.evaluators.latency_table import LatencyTableEvaluator
from nasforge.hardware import measure_latency
from nasforge.hardware.layer_measure import measure_table
from nasforge.oneshot import SupernetSettings
from nasforge.ops.mobile_search_net import resolve_table
from nasforge.train import load_cifar10
from nasforge.train.data import DataSplits, stratified_indices
from nasforge.train.recipe import Recipe
from nasforge.train.trainer import evaluate_accuracy, num_threads, seeded, train

#: Search epochs of the reduced CPU setting: FBNet trains every candidate and, with one
#: warm-up epoch of four, collapsed to skip layers (24% accuracy); eight with two warm-up
#: epochs derived an 11-block network at its target in 13 minutes.
CPU_EPOCHS = {"proxylessnas": 4, "fbnet": 8, "single-path-nas": 4}

#: The space each method searches by default.
SPACES = {"proxylessnas": "mobilenet", "fbnet": "fbnet", "single-path-nas": "mobilenet"}


def method_params(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """The method's hyperparameters in this benchmark's setting."""
    if method == "proxylessnas":
        warm = 40 if args.gpu else max(1, args.epochs // 4)
        return {"warmup_epochs": warm, "arch_every": 5 if args.gpu else 1, "lam": args.lam}
    if method == "fbnet":
        return {"warmup_epochs": 10 if args.gpu else max(1, args.epochs // 4), "unit": "us"}
    if method == "single-path-nas":  # the paper's lambda is too weak for a few CPU epochs
        return {"preset": "search" if args.gpu else "reduced", "lam": 0.02 if args.gpu else 0.2}
    return {}


def load_data(args: argparse.Namespace) -> DataSplits:
    data = load_cifar10(args.data)
    test = data.test.subset(stratified_indices(data.test.labels, args.test_images, 0))
    return DataSplits(data.name, data.train, test, data.mean, data.std, data.source)


def step_ratio(space: Any, net: Any, arch_seconds: float, steps: int, args: Any) -> dict:
    """A search step's time over a training step of the largest fixed network."""
    largest = space.build(net.from_path(net.largest()), **net.build_settings)
    device = torch.device(args.device)
    largest.to(device).train()
    optimizer = torch.optim.SGD(largest.parameters(), lr=0.01, momentum=0.9)
    res = net.build_settings["resolution"]
    x = torch.randn(args.batch_size, 3, res, res, device=device)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    times = []
    for i in range(12):
        began = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(largest(x), y).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - began)
    fixed = statistics.median(times)
    search = arch_seconds / max(1, steps)
    return {"search_step_s": search, "fixed_step_s": fixed, "ratio": search / fixed}


def run_method(method: str, data: DataSplits, args: argparse.Namespace) -> dict[str, Any]:
    space = spaces.create(args.space or SPACES[method])
    preset = SupernetSettings.standard(space) if args.gpu else SupernetSettings.reduced(space)
    options = dict(preset.options)
    if args.gpu:
        options.update(resolution=224, stem_stride=2, first_stride=2, width_mult=1.0)
    settings = SupernetSettings(
        resolution=options["resolution"],
        data_fraction=args.data_fraction,
        batch_size=(256 if method == "proxylessnas" else 192) if args.gpu else args.batch_size,
        options=options,
    )
    build = {"num_classes": len(data.classes), **options}
    params = method_params(method, args)
    began = time.perf_counter()
    if method == "single-path-nas":  # its network is not the space's supernet
        from nasforge.oneshot.single_path_nas import SinglePathNAS

        layers = (
            SinglePathNAS(**params)
            .network(
                space,
                num_classes=build["num_classes"],
                resolution=build["resolution"],
                options=options,
            )
            .all_specs()
        )  # the layers its search can derive, not every layer of the space
        table = measure_table(
            space, layers, backend=args.backend, threads=1, runs=args.runs, build=build
        )
        net = None
    else:
        net = space.supernet(**build)
        table = resolve_table(net, None, backend=args.backend, runs=args.runs)
    table_s = time.perf_counter() - began
    if net is not None:
        low, high = net.latency_range(table)
    else:  # Single-Path NAS's own network: its runtime range from the same table
        from nasforge.oneshot.single_path_nas import SinglePathNAS

        probe = SinglePathNAS(table=table, **params).network(
            space,
            num_classes=build["num_classes"],
            resolution=build["resolution"],
            options=options,
        )
        low, high = probe.runtime_range(*probe.runtime_tables(table))
    target = args.target_ms or low + args.target_share * (high - low)
    evaluator = LatencyTableEvaluator(space, [table], build=build)
    result = oneshot.search(
        method,
        data,
        space=space,
        params={**params, "table": table, "target_ms": target},
        settings=settings,
        epochs=args.epochs,
        seed=args.seed,
        evaluator=evaluator,
        objectives=(f"{table.metric}:min",),
        device=args.device,
        threads=args.threads,
    )
    arch = result.arch
    model = space.build(arch, **build)
    predicted = table.predict(space.layers(arch, **build))
    shape = (3, build["resolution"], build["resolution"])
    measured = measure_latency(model, shape, runs=args.runs * 4, backend=args.backend).median_ms
    recipe = Recipe(lr=0.05, weight_decay=4e-5, epochs=args.train_epochs, batch_size=64)
    train_images = data.train.subset(
        stratified_indices(
            data.train.labels, round(len(data.train) * settings.data_fraction), args.seed
        )
    )
    if build["resolution"] != train_images.resolution:
        train_images = train_images.resized(build["resolution"])
    test_images = data.test
    if build["resolution"] != test_images.resolution:
        test_images = test_images.resized(build["resolution"])
    with seeded(args.seed), num_threads(args.threads):
        trained = train(
            model,
            train_images,
            recipe,
            mean=data.mean,
            std=data.std,
            seed=args.seed,
            device=args.device,
        )
        accuracy = evaluate_accuracy(
            model, test_images, mean=data.mean, std=data.std, device=args.device
        )
    search_s = result.seconds
    steps = args.epochs * (len(train_images) // 2 // settings.batch_size)
    if net is not None:
        cost = step_ratio(space, net, search_s, steps, args)
    else:
        from nasforge.oneshot.single_path_nas import relative_step_cost

        cost = relative_step_cost(space, table=table, batch_size=settings.batch_size)
    return {
        "method": method,
        "space": space.name,
        "arch": str(arch),
        "target_ms": target,
        "predicted_ms": predicted,
        "measured_ms": measured,
        "test_acc": accuracy,
        "train_acc": trained.train_acc,
        "search_s": search_s,
        "table_s": table_s,
        "step_cost": cost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/cifar10/cifar10-jpeg.tar.gz")
    parser.add_argument("--methods", default="proxylessnas,fbnet")
    parser.add_argument("--space", default=None, help="one space for every method")
    parser.add_argument(
        "--epochs", type=int, default=None, help="search epochs (default: CPU_EPOCHS per method)"
    )
    parser.add_argument("--train-epochs", type=int, default=3)
    parser.add_argument(
        "--data-fraction", type=float, default=None, help="default 0.06 (1.0 with --gpu)"
    )
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--target-ms", type=float, default=None)
    parser.add_argument(
        "--target-share",
        type=float,
        default=0.3,
        help="without --target-ms: fastest + share x (slowest - fastest) of the supernet",
    )
    parser.add_argument("--lam", type=float, default=0.5, help="ProxylessNAS's latency weight")
    parser.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"])
    parser.add_argument("--runs", type=int, default=10, help="timed passes per layer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu", action="store_true", help="published full-size settings")
    parser.add_argument("--json", default=None, help="write the results here too")
    args = parser.parse_args()
    if args.gpu and args.device == "cpu":
        args.device = "cuda"
    if args.data_fraction is None:
        args.data_fraction = 1.0 if args.gpu else 0.06  # FBNet's 8 epochs in ~13 min
    data = load_data(args)
    print(
        f"settings: {'gpu (published)' if args.gpu else 'reduced CPU'}, epochs "
        f"{args.epochs or CPU_EPOCHS}, "
        f"data fraction {args.data_fraction}, batch {args.batch_size}, backend {args.backend}, "
        f"threads {args.threads}, stand-alone training {args.train_epochs} epochs, seed "
        f"{args.seed}"
    )
    results = []
    for method in args.methods.split(","):
        began = time.perf_counter()
        name = method.strip()
        epochs = args.epochs or CPU_EPOCHS.get(name, 4)
        out = run_method(name, data, argparse.Namespace(**{**vars(args), "epochs": epochs}))
        out["wall_s"] = time.perf_counter() - began
        results.append(out)
        cost = out["step_cost"]
        print(
            f"{out['method']:16s} {out['space']:9s} target {out['target_ms']} ms  predicted "
            f"{out['predicted_ms']:.3f} ms  measured {out['measured_ms']:.3f} ms  test acc "
            f"{out['test_acc']:.2f}%  step cost {cost['ratio']:.2f}x the largest network "
            f"({cost['search_step_s'] * 1e3:.0f} vs {cost['fixed_step_s'] * 1e3:.0f} ms)  "
            f"search {out['search_s']:.0f} s, table {out['table_s']:.0f} s, all "
            f"{out['wall_s']:.0f} s"
        )
        print(f"  derived: {out['arch']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
