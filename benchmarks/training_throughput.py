"""Training throughput of NAS-Bench-201 networks on this CPU: images per second of a training
step (forward, backward, SGD step with Nesterov momentum), full and reduced (EcoNAS) settings.

Each setting runs ``--warmup`` untimed steps, then times steps one by one until ``--min-seconds``
have passed (and at least ``--min-steps`` steps); the figure is ``batch / median step time``.
The batches are random tensors already in memory, so data loading is not included; one line
per setting also times the whole :func:`nasforge.train.trainer.train` loop (augmentation on
uint8 tensors included) on synthetic images.

Caveat: the machine is shared. The load average is printed before and after; with other jobs
running, the two-thread figures suffer most (a step waits for its slowest thread).

    python benchmarks/training_throughput.py            # all settings, threads 1 and 2
    python benchmarks/training_throughput.py --quick    # fewer settings
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from nasforge import spaces
from nasforge.train import Recipe, SyntheticImages
from nasforge.train.trainer import num_threads, seeded, train

#: NAS-Bench-201 cell 6111 (3 convolutions 3x3, a 1x1, a skip): a typical good cell.
ARCH_INDEX = 6111
#: (label, channels, cells per stage, resolution, batch size)
SETTINGS = [
    ("full C16 N5 32px", 16, 5, 32, 64),
    ("full C16 N5 32px", 16, 5, 32, 128),
    ("C16 N1 32px", 16, 1, 32, 128),
    ("C8 N1 32px", 8, 1, 32, 128),
    ("C16 N5 16px", 16, 5, 16, 128),
    ("C8 N1 16px", 8, 1, 16, 128),
    ("C4 N1 16px", 4, 1, 16, 128),
    ("C8 N1 8px", 8, 1, 8, 128),
]


def step_throughput(
    channels: int, cells: int, resolution: int, batch: int, args: argparse.Namespace
) -> tuple[float, int]:
    space = spaces.create("nb201")
    with seeded(0):
        net = space.build(space.from_index(ARCH_INDEX), channels=channels, cells_per_stage=cells)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((batch, 3, resolution, resolution), generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)

    def step() -> None:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < args.min_steps or time.perf_counter() - started < args.min_seconds:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times), len(times)


def loop_throughput(channels: int, cells: int, resolution: int, batch: int) -> float:
    """Images/s of the whole training loop (augmentation included) for 2 epochs."""
    data = SyntheticImages(n_train=4 * batch, n_test=10, size=resolution).load()
    space = spaces.create("nb201")
    with seeded(0):
        net = space.build(space.from_index(ARCH_INDEX), channels=channels, cells_per_stage=cells)
    recipe = Recipe(epochs=2, batch_size=batch, lr=0.05)
    result = train(net, data.train, recipe, mean=data.mean, std=data.std, seed=0)
    return 2 * len(data.train) / result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="Comma-separated thread counts.")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--min-steps", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="Only three settings.")
    args = parser.parse_args()
    settings = SETTINGS[1:2] + SETTINGS[5:7] if args.quick else SETTINGS
    threads = [int(t) for t in args.threads.split(",")]
    print(f"# torch {torch.__version__}, {os.cpu_count()} CPUs, NB201 cell {ARCH_INDEX}")
    print(f"# load average before: {os.getloadavg()[0]:.2f} (1 min)")
    print(f"# timed: >= {args.min_steps} steps and >= {args.min_seconds:g} s, median step")
    print(f"{'setting':<18} {'batch':>5} {'threads':>7} {'img/s':>9} {'steps':>5}")
    for label, channels, cells, resolution, batch in settings:
        for count in threads:
            with num_threads(count):
                rate, steps = step_throughput(channels, cells, resolution, batch, args)
            print(f"{label:<18} {batch:>5} {count:>7} {rate:>9.1f} {steps:>5}", flush=True)
    for count in threads:
        with num_threads(count):
            rate = loop_throughput(8, 1, 16, 128)
        print(
            f"# whole train() loop (augmentation included), C8 N1 16px, batch 128, "
            f"{count} thread(s): {rate:.1f} img/s",
            flush=True,
        )
    print(f"# load average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
