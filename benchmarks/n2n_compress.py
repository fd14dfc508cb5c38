"""N2N on reduced CIFAR-10: how small a student its two policies find, and how accurate it is.

Trains a small VGG-like teacher on real CIFAR-10 images (``nasforge.train.load_cifar10``),
then runs ``nasforge.growth.n2n`` (Ashok, Rhinehart, Beainy & Kitani, "N2N Learning: Network
to Network Compression via Policy Gradient Reinforcement Learning", ICLR 2018,
arXiv:1709.06030): a layer-removal policy, then a layer-shrinkage policy, REINFORCE on the
paper's reward ``C (2 - C) * acc_student / acc_teacher``, each student distilled from the
teacher's logits for a few epochs and scored on held-out validation images. The best student
is then distilled for as many epochs as the teacher was trained (the paper also trains its
final students longer) and both networks are tested on CIFAR-10 test images.

Prints and writes to OUT/results.json: the teacher's and the student's parameters, the
compression ``C = 1 - params_s / params_t`` and ratio, validation and test accuracies, the
removed layers and the widths of the shrunk ones, the per-iteration mean / best reward of both
stages and the removal policy's final keep probabilities.

Reduced CPU setting (see ``--help``): 16x16 images, 4,000 training and 1,000 validation images
drawn from the training set, 2,000 test images; teacher conv 32-32-32 / 64-64-64, fc 64-10
(about 0.12 M parameters) trained 10 epochs with Adam; N2N with 8 removal and 8 shrinkage
iterations of 4 rollouts, 2 distillation epochs per student. The paper's students are
trained for 5 epochs on full CIFAR-10 at 32 px, over many more iterations: read the figures as
the method working end to end at small scale, not as the paper's numbers.

Full run (about 14 minutes on one thread of the shared 2-core machine: teacher 3, search 10.5):
    nice python benchmarks/n2n_compress.py --threads 1 --out /work/ref/issue24/n2n_compress
Smoke run (under a minute):
    python benchmarks/n2n_compress.py --smoke --out /tmp/n2n_smoke
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.growth import n2n
from nasforge.growth.n2n_learning import distill
from nasforge.train import UserData, load_cifar10
from nasforge.train.augment import normalize
from nasforge.train.data import DataSplits, stratified_indices
from nasforge.train.trainer import num_threads, seeded

DATA = "/work/shared/data/cifar10/cifar10-jpeg.tar.gz"


def make_teacher(width: int, seed: int) -> nn.Module:
    """A VGG-like stack: two stages of three 3x3 convolutions (the second and third keep the
    width, so N2N may remove them), global pooling, two linear layers."""

    def conv(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    w, w2 = width, 2 * width
    with seeded(seed):
        return nn.Sequential(
            *conv(3, w), *conv(w, w), *conv(w, w), nn.MaxPool2d(2),
            *conv(w, w2), *conv(w2, w2), *conv(w2, w2), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(w2, w2), nn.ReLU(), nn.Linear(w2, 10),
        )  # fmt: skip


def tensors(splits: DataSplits, args: argparse.Namespace) -> dict[str, tuple[Any, Any]]:
    """Stratified training / validation subsets of the training images and a test subset,
    resized and normalised."""
    train_all = splits.train
    chosen = stratified_indices(train_all.labels, args.train_images + args.valid_images, args.seed)
    chosen = chosen[torch.randperm(len(chosen), generator=torch.Generator().manual_seed(args.seed))]
    parts = {
        "train": train_all.subset(chosen[: args.train_images]),
        "valid": train_all.subset(chosen[args.train_images :]),
        "test": splits.test.subset(stratified_indices(splits.test.labels, args.test_images, 0)),
    }
    out = {}
    for name, part in parts.items():
        part = part.resized(args.resolution)
        out[name] = (normalize(part.images, splits.mean, splits.std), part.labels)
    return out


def train_teacher(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace
) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=args.teacher_lr)
    steps = args.teacher_epochs * ((len(x) + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    for epoch in range(args.teacher_epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), args.batch):
            index = order[start : start + args.batch]
            batch = x[index]
            if torch.rand((), generator=generator) < 0.5:  # a flip per batch: cheap augmentation
                batch = batch.flip(3)
            loss = F.cross_entropy(model(batch), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
        print(f"  teacher epoch {epoch + 1}: loss {total / len(x):.3f}", flush=True)
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    out = torch.cat([model(x[s : s + 500]) for s in range(0, len(x), 500)])
    return float((out.argmax(1) == y).float().mean())


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DATA, help="CIFAR-10 (python release, folder, .tar.gz)")
    parser.add_argument("--out", default="n2n_compress_out", help="folder of results.json")
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--train-images", type=int, default=4000)
    parser.add_argument("--valid-images", type=int, default=1000)
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--width", type=int, default=32, help="teacher's first-stage channels")
    parser.add_argument("--teacher-epochs", type=int, default=10)
    parser.add_argument("--teacher-lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--removal-iterations", type=int, default=8)
    parser.add_argument("--shrink-iterations", type=int, default=8)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--student-epochs", type=int, default=2)
    parser.add_argument("--student-lr", type=float, default=1e-3)
    parser.add_argument("--final-epochs", type=int, default=None, help="default: teacher's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny settings, to check it runs")
    args = parser.parse_args()
    if args.smoke:
        args.train_images, args.valid_images, args.test_images = 300, 100, 200
        args.width, args.teacher_epochs = 8, 2
        args.removal_iterations = args.shrink_iterations = 2
        args.rollouts, args.student_epochs = 2, 1
    final_epochs = args.teacher_epochs if args.final_epochs is None else args.final_epochs
    logging.basicConfig(level=logging.INFO, format="  %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    with num_threads(args.threads):
        data = tensors(load_cifar10(args.data), args)
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = (
            data["train"],
            data["valid"],
            data["test"],
        )
        loaded = time.perf_counter() - start
        print(f"data: {len(x_train)} train / {len(x_valid)} valid / {len(x_test)} test images "
              f"at {args.resolution}px ({loaded:.0f} s)", flush=True)  # fmt: skip
        teacher = make_teacher(args.width, args.seed)
        train_teacher(teacher, x_train, y_train, args)
        teacher_time = time.perf_counter() - start
        search_start = time.perf_counter()
        result = n2n(
            teacher,
            UserData((x_train, y_train), (x_valid, y_valid)),
            removal_iterations=args.removal_iterations,
            shrink_iterations=args.shrink_iterations,
            rollouts=args.rollouts,
            student_epochs=args.student_epochs,
            student_lr=args.student_lr,
            batch_size=args.batch,
            seed=args.seed,
        )
        search_time = time.perf_counter() - search_start
        student = result.student
        searched_test = accuracy(student, x_test, y_test)
        distill(student, teacher, x_train, epochs=final_epochs, lr=args.student_lr,
                batch_size=args.batch, seed=args.seed)  # fmt: skip
    figures = {
        "teacher_params": params(teacher),
        "student_params": params(student),
        "compression": result.compression,
        "compression_ratio": result.compression_ratio,
        "teacher_valid_accuracy": result.teacher_accuracy,
        "student_valid_accuracy_search": result.student_accuracy,
        "teacher_test_accuracy": accuracy(teacher, x_test, y_test),
        "student_test_accuracy_search": searched_test,
        "student_test_accuracy_final": accuracy(student, x_test, y_test),
        "student_valid_accuracy_final": accuracy(student, x_valid, y_valid),
        "reward": result.reward,
        "found_in": f"{result.best.stage} iteration {result.best.iteration}",
        "removed": list(result.best.removed),
        "widths": dict(result.best.widths),
        "keep_probabilities": dict(result.keep_probabilities),
        "students_distilled": len({(s.removed, s.widths) for s in result.students}),
        "teacher_seconds": teacher_time,
        "search_seconds": search_time,
    }
    history = {
        stage: [
            {"iteration": it.iteration, "mean_reward": it.mean_reward,
             "best_reward": it.best_reward, "baseline": it.baseline, "rewards": list(it.rewards),
             "per_layer": dict(zip(it.layers, it.per_layer, strict=True))}
            for it in iterations
        ]
        for stage, iterations in (("removal", result.removal), ("shrinkage", result.shrinkage))
    }  # fmt: skip
    print("\nN2N on reduced CIFAR-10")
    for stage, rows in history.items():
        for row in rows:
            print(f"  {stage:9s} {row['iteration']:2d}: mean reward {row['mean_reward']:+.3f}, "
                  f"best {row['best_reward']:+.3f}")  # fmt: skip
    print(f"teacher: {figures['teacher_params']:,} params, valid "
          f"{100 * figures['teacher_valid_accuracy']:.1f}%, test "
          f"{100 * figures['teacher_test_accuracy']:.1f}%")  # fmt: skip
    print(f"student: {figures['student_params']:,} params ({figures['compression_ratio']:.2f}x "
          f"smaller, C = {figures['compression']:.3f}), found in {figures['found_in']}, "
          f"removed {figures['removed']}, widths {figures['widths']}")  # fmt: skip
    print(f"  after search ({args.student_epochs} distillation epochs): valid "
          f"{100 * figures['student_valid_accuracy_search']:.1f}%, test "
          f"{100 * figures['student_test_accuracy_search']:.1f}%")  # fmt: skip
    print(f"  after {final_epochs} more distillation epochs: valid "
          f"{100 * figures['student_valid_accuracy_final']:.1f}%, test "
          f"{100 * figures['student_test_accuracy_final']:.1f}%")  # fmt: skip
    print(f"time: teacher {teacher_time:.0f} s, search {search_time:.0f} s "
          f"({figures['students_distilled']} distinct students)")  # fmt: skip
    settings = {k: v for k, v in vars(args).items()} | {"final_epochs": final_epochs}
    (out / "results.json").write_text(
        json.dumps({"settings": settings, "figures": figures, "history": history}, indent=2)
    )
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
