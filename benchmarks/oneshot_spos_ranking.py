"""SPOS as an evaluator: Kendall's tau between supernet-estimated accuracy and NAS-Bench-201
table accuracy on many architectures.

Trains a SPOS supernet (uniform single-path sampling) in a reduced CPU setting on real
CIFAR-10 images, then scores ``--archs`` architectures drawn uniformly from the 15,625 cells
(seeded) with the supernet (batch-norm recalibration on training images, accuracy on
validation images, as SPOS's evolution scores candidates), and compares the ranking with
the table's ``cifar10`` validation accuracy (``cifar10-valid``, 200 epochs). Diagnostics
printed beside it (never used to choose a setting): tau between the supernet's estimate and
each architecture's share of parameter-free edges (the small supernet's bias), and the
table's own tau with that share and with the parameter count, for scale.

Run:  nice python benchmarks/oneshot_spos_ranking.py \
        --data ../shared/data/cifar10/cifar10-jpeg.tar.gz
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nasforge import oneshot, spaces, tabular
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.train import load_cifar10


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b (ties counted as in scipy's default)."""
    n = len(a)
    concordant = discordant = ties_a = ties_b = 0
    for i in range(n):
        da = np.sign(a[i + 1 :] - a[i])
        db = np.sign(b[i + 1 :] - b[i])
        prod = da * db
        concordant += int((prod > 0).sum())
        discordant += int((prod < 0).sum())
        ties_a += int(((da == 0) & (db != 0)).sum())
        ties_b += int(((db == 0) & (da != 0)).sum())
    denom = np.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return float((concordant - discordant) / denom) if denom else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--archs", type=int, default=60)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--recal-images", type=int, default=512)
    parser.add_argument("--eval-images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_cifar10(args.data)
    settings = SupernetSettings(
        channels=args.channels,
        cells=args.cells,
        resolution=args.resolution,
        data_fraction=args.fraction,
    )
    method = oneshot.create(
        "spos",
        generations=1,
        population=1,
        recal_images=args.recal_images,
        eval_images=args.eval_images,
    )
    started = time.perf_counter()
    search_data = _engine.SearchData.from_splits(data, settings, args.seed)
    device = torch.device(args.device)
    with _engine.seeded(args.seed):
        net = _engine.build_supernet("nb201", settings, data.num_classes)
    net.to(device)
    space = spaces.create("nb201")
    state = _engine.SearchState(
        supernet=net,
        data=search_data,
        device=device,
        generator=torch.Generator().manual_seed(args.seed),
        rng=np.random.default_rng(args.seed),
        epochs=args.epochs,
        space=space,
    )
    method.setup(state)
    for epoch in range(args.epochs):
        stats = method.train_epoch(state, epoch)
        print(
            f"epoch {epoch}: loss {stats['train_loss']:.3f} acc {stats['train_acc']:.1f}",
            flush=True,
        )
    trained = time.perf_counter() - started
    rng = np.random.default_rng(args.seed + 1)
    bench = tabular.create("nb201")
    archs = []
    seen = set()
    while len(archs) < args.archs:
        arch = space.sample(rng)
        if arch.choices not in seen:
            seen.add(arch.choices)
            archs.append(arch)
    estimated = np.array([method.estimate(state, a.choices) for a in archs])
    table = np.array([bench.query(a, "cifar10", "valid_acc") for a in archs])
    tau = kendall_tau(estimated, table)
    # diagnostics (not used to choose any setting): how much the supernet's ranking follows
    # the share of parameter-free edges, and how well the parameter count alone ranks
    free = np.array([net.param_free_share(a) for a in archs])
    params = np.array([bench.query(a, "cifar10", "params_M") for a in archs])
    print(
        f"SPOS reduced setting ({settings}, {args.epochs} epochs, recal {args.recal_images} / "
        f"eval {args.eval_images} images, device {args.device}): Kendall tau = {tau:.3f} on "
        f"{len(archs)} architectures (table: cifar10 valid_acc, 200 epochs); supernet "
        f"training {trained:.0f} s, scoring {time.perf_counter() - started - trained:.0f} s"
    )
    print(
        f"diagnostics: tau(supernet, parameter-free share) = {kendall_tau(estimated, free):.3f}, "
        f"tau(table, parameter-free share) = {kendall_tau(table, free):.3f}, "
        f"tau(table, params) = {kendall_tau(table, params):.3f}"
    )
    top = int(np.argmax(estimated))
    print(
        f"best by supernet: {archs[top]} table valid {table[top]:.2f} (best sampled "
        f"{table.max():.2f}, mean {table.mean():.2f})"
    )


if __name__ == "__main__":
    main()
