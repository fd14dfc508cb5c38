"""Ranking fidelity of the elastic supernet schedules (issue 19), reduced CPU setting.

For each schedule (``uniform``: SPOS's single-path uniform sampling, the baseline; ``ofa``:
progressive shrinking; ``bignas``: sandwich rule; ``few-shot``: K sub-supernets split from
the uniform parent; ``dna``: block-wise distillation), the script trains the ``ofa-cifar``
supernet (width 0.25, 16x16 images by default, ``--data-fraction`` of CIFAR-10's training
images split in halves) and compares, on the same sub-networks spread over the MACs range,
the accuracy each sub-network inherits (after batch-norm recalibration; DNA: minus its
summed block loss) with the accuracy of the same architecture trained alone with a short
fixed recipe (the same SGD settings, epochs ``--alone-epochs``), on the same validation
half. It prints Kendall's tau
per schedule with its wall time, and BigNAS's claim (its largest and smallest sub-networks
against the same architectures trained alone for the same epochs).

The "few-shot parent" row is the few-shot run's supernet before its split (phase 1). Run on
a quiet machine (results and supernets are cached in ``--out``; a second run only measures):
    nice python benchmarks/elastic_ranking.py --data ../shared/data/cifar10/cifar10-jpeg.tar.gz \
        --epochs 12 --alone-epochs 10 --data-fraction 0.2 --resolution 16
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.elastic import TrainSettings, create_schedule, load_supernet, train_supernet
from nasforge.elastic._train import make_optimizer, phase_lr, subnet_accuracy, training_data
from nasforge.hardware.costs import count_flops
from nasforge.oneshot._data import SearchData
from nasforge.ranks import kendall, spearman
from nasforge.train import load_cifar10

SPACE = "ofa-cifar"


def pick_archs(
    space: Any, count: int, width: float, seed: int, resolution: int
) -> list[Architecture]:
    """``count`` sub-networks at ``resolution`` spread over the MACs range: the k-th draws every
    depth, kernel and expansion near the ``k / (count - 1)`` quantile of its options (with
    noise), so the first is the smallest network and the last the largest."""
    rng = np.random.default_rng(seed)
    archs = []
    for k in range(count):
        level = k / max(1, count - 1)
        values = {}
        for decision in space.decisions():
            n = len(decision.options)
            if decision.name == "resolution":
                values[decision.name] = resolution
                continue
            noise = 0.0 if k in (0, count - 1) else rng.normal(0.0, 0.6)
            index = int(np.clip(round(level * (n - 1) + noise), 0, n - 1))
            values[decision.name] = decision.options[index]
        archs.append(_with_values(space, values))
    macs = [
        count_flops(
            space.build(a, num_classes=10, width_mult=width), (3, resolution, resolution)
        ).macs_M
        for a in archs
    ]
    return [a for _, a in sorted(zip(macs, archs, strict=True), key=lambda item: item[0])]


def _with_values(space: Any, values: dict[str, Any]) -> Architecture:
    choices = [d.options.index(values[d.name]) for d in space.decisions()]
    return space.canonical(space.from_choices(choices))


def train_alone(
    space: Any, arch: Architecture, split: SearchData, settings: TrainSettings, epochs: int
) -> tuple[float, nn.Module]:
    """Top-1 accuracy (percent) on the validation half of ``arch`` trained alone, and the
    trained network."""
    torch.manual_seed(settings.seed)
    net = space.build(arch, num_classes=10, width_mult=settings.width_mult)
    optimizer = make_optimizer(net, settings, settings.lr)
    generator = torch.Generator().manual_seed(settings.seed)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    steps = split.steps_per_epoch
    net.train()
    for epoch in range(epochs):
        for step, (x, y) in enumerate(split.batches("train", generator, torch.device("cpu"))):
            lr = phase_lr(settings.lr, epoch * steps + step, epochs * steps, 0)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad()
            loss_fn(net(x), y).backward()
            optimizer.step()
    net.eval()
    hits = seen = 0
    with torch.no_grad():
        for x, y in split.fixed("valid", len(split.valid), torch.device("cpu")):
            hits += int((net(x).argmax(1) == y).sum())
            seen += int(y.shape[0])
    return 100.0 * hits / seen, net


def inherited(
    trained: Any, archs: list[Architecture], split: SearchData, teacher: nn.Module | None
) -> list[float]:
    schedule = trained.schedule
    out = []
    for arch in archs:
        if schedule.name == "dna":
            from nasforge.elastic.base import TrainContext

            ctx = TrainContext(
                supernet=trained.supernet,
                data=split,
                optimizer=None,
                device=torch.device("cpu"),
                rng=np.random.default_rng(0),
                generator=torch.Generator().manual_seed(0),
                teacher=teacher,
                settings=trained.settings,
                space=trained.space,
                resolutions=(trained.space.resolution(arch),),
            )
            batches = split.fixed("valid", 512, torch.device("cpu"))
            value = schedule.score(ctx, arch, batches)
            out.append(float(value))
        else:
            out.append(
                subnet_accuracy(
                    trained.supernet, arch, split, recalibrate_batches=8, images=len(split.valid)
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/cifar10/cifar10-jpeg.tar.gz")
    parser.add_argument("--out", default="/tmp/elastic_ranking")
    parser.add_argument("--epochs", type=int, default=12, help="supernet epoch budget")
    parser.add_argument("--alone-epochs", type=int, default=8)
    parser.add_argument("--archs", type=int, default=12)
    parser.add_argument("--schedules", default="uniform,ofa,bignas,few-shot,dna")
    parser.add_argument("--data-fraction", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = spaces.create(SPACE)
    settings = TrainSettings.preset(
        SPACE,
        "reduced",
        epochs=args.epochs,
        resolutions=(args.resolution,),
        data_fraction=args.data_fraction,
        seed=args.seed,
    )
    data = load_cifar10(args.data)
    split = training_data(SPACE, data, settings)
    archs = pick_archs(space, args.archs, settings.width_mult, args.seed, args.resolution)
    resolution = args.resolution
    macs = [
        count_flops(
            space.build(a, num_classes=10, width_mult=settings.width_mult),
            (3, resolution, resolution),
        ).macs_M
        for a in archs
    ]
    cache = out / "alone.json"
    alone: dict[str, float] = json.loads(cache.read_text()) if cache.exists() else {}
    began = time.perf_counter()
    teacher_path = out / f"teacher-e{args.alone_epochs}.pt"
    for arch in archs:
        key = f"{arch}|{args.alone_epochs}"
        if key not in alone or (arch == archs[-1] and not teacher_path.exists()):
            alone[key], net = train_alone(space, arch, split, settings, args.alone_epochs)
            cache.write_text(json.dumps(alone, indent=1))
            print(f"alone {alone[key]:.2f}%  {arch}", flush=True)
            if arch == archs[-1]:  # the largest: DNA's teacher
                torch.save(net.state_dict(), teacher_path)
    alone_s = time.perf_counter() - began
    truth = [alone[f"{a}|{args.alone_epochs}"] for a in archs]
    print(
        f"\n{len(archs)} sub-networks, MACs {min(macs):.1f}-{max(macs):.1f} M, trained alone "
        f"{args.alone_epochs} epochs: {min(truth):.1f}-{max(truth):.1f}% ({alone_s:.0f} s)"
    )
    rows = []
    for name in args.schedules.split(","):
        folder = out / f"{name}-e{args.epochs}"
        began = time.perf_counter()
        teacher = None
        if name == "dna":  # the largest sub-network trained alone is the teacher
            teacher = space.build(archs[-1], num_classes=10, width_mult=settings.width_mult)
            teacher.load_state_dict(torch.load(teacher_path))
            teacher.eval()
        schedule = create_schedule(name)
        train_supernet(
            SPACE, schedule, data, folder, settings, teacher=teacher, threads=args.threads
        )
        cost = time.perf_counter() - began
        history = json.loads((folder / "manifest.json").read_text()).get("history", [])
        train_s = sum(float(h.get("seconds", 0.0)) for h in history)
        trained = load_supernet(folder)
        scores = inherited(trained, archs, split, teacher)
        tau, rho = kendall(scores, truth), spearman(scores, truth)
        rows.append((name, tau, rho, train_s, scores))
        print(
            f"{name:9s} tau {tau:+.3f}  rho {rho:+.3f}  training {train_s:7.0f} s "
            f"(this call {cost:.0f} s)",
            flush=True,
        )
        if name == "few-shot":  # its one-shot parent: the supernet before the split
            parent = load_supernet(folder, phase=1)
            parent_scores = inherited(parent, archs, split, None)
            parent_s = sum(float(h.get("seconds", 0.0)) for h in history if h["phase"] == 1)
            ptau, prho = kendall(parent_scores, truth), spearman(parent_scores, truth)
            rows.append(("few-shot parent", ptau, prho, parent_s, parent_scores))
            print(f"  parent  tau {ptau:+.3f}  rho {prho:+.3f}  training {parent_s:7.0f} s")
        if name == "bignas":
            for label, i in (("smallest", 0), ("largest", len(archs) - 1)):
                gap = scores[i] - truth[i]
                print(
                    f"  bignas {label}: inherited {scores[i]:.2f}% vs alone {truth[i]:.2f}% "
                    f"(gap {gap:+.2f} points)"
                )
    print("\n| schedule | Kendall tau | Spearman | supernet training s |")
    print("|---|---|---|---|")
    for name, tau, rho, train_s, _ in rows:
        print(f"| {name} | {tau:.3f} | {rho:.3f} | {train_s:.0f} |")
    result = {
        "archs": [str(a) for a in archs],
        "macs_M": macs,
        "alone": truth,
        "schedules": {
            n: {"tau": t, "rho": r, "seconds": s, "scores": sc} for n, t, r, s, sc in rows
        },
    }
    (out / f"result-e{args.epochs}.json").write_text(json.dumps(result, indent=1))
    if any(math.isnan(t) for _, t, *_ in rows):
        print("some tau is NaN (constant scores)")


if __name__ == "__main__":
    main()
