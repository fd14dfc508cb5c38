"""Latency lookup tables on NAS-Bench-201: how well does an additive per-operation model fit?

Part 1, the benchmark's devices: for every latency column of NAS-Bench-201 (HW-NAS-Bench and
HELP devices, cifar10 input), fits :class:`nasforge.hardware.lut.LatencyLUT` (a constant plus
one latency per (edge, operation), least squares) on ``--train`` random cells and prints, on
all the other cells, the Spearman rank correlation and the mean and median relative error.

Part 2, this machine: builds ``--cells`` random NAS-Bench-201 networks (cifar10 size: 16
channels, 5 cells per stage, 32×32 input, batch 1), measures each with
:func:`nasforge.hardware.measure_latency` (PyTorch eager, one thread by default; median of
``--runs`` passes after ``--warmup``), fits a table on the first ``--machine-train`` cells and
reports the same figures on the rest. Measuring takes a while (about a second per cell on a
laptop CPU); skip it with ``--cells 0``. ``--device cuda`` measures on a GPU. On a machine
shared with other jobs the times are disturbed (the load average is printed before and
after): ``--statistic p10`` fits the 10th percentile of the passes, the least disturbed
ones, instead of the median; trust neither when the load exceeds the number of cores.

Usage:
    python benchmarks/latency_lut.py [--train 500] [--seed 0] [--cells 120]
        [--machine-train 80] [--runs 30] [--warmup 5] [--threads 1] [--device cpu]
        [--statistic median|p10]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from nasforge import __version__, spaces
from nasforge.architecture import Architecture
from nasforge.hardware.lut import LatencyLUT, device_report, evaluate
from nasforge.hardware.machine import load_average


def _devices(train: int, seed: int) -> None:
    print(f"\n== NAS-Bench-201 devices (cifar10): fit on {train} random cells (seed {seed})")
    print(f"  {'device':<16} {'held out':>8} {'Spearman':>9} {'mean rel err':>13} {'median':>8}")
    started = time.perf_counter()
    fits = device_report("nb201", "cifar10", n_train=train, seed=seed)
    for fit in fits:
        r = fit.report
        print(
            f"  {fit.device:<16} {r.n:>8} {r.spearman:>9.4f} {r.mean_relative_error:>13.4f} "
            f"{r.median_relative_error:>8.4f}"
        )
    spearmans = [f.report.spearman for f in fits]
    print(
        f"  {len(fits)} devices: Spearman median {np.median(spearmans):.4f}, min "
        f"{min(spearmans):.4f} ({time.perf_counter() - started:.1f} s)"
    )
    best = next(f for f in fits if f.device == "pixel3")
    print("  pixel3 table (ms added over 'none'; constant = the all-'none' cell):")
    print(f"    constant {best.lut.constant:.4f}")
    for name, row in best.lut.table().items():
        if name != "constant":
            print("    " + name + ": " + ", ".join(f"{k} {v:+.4f}" for k, v in row.items()))


def _machine(opts: argparse.Namespace) -> None:
    from nasforge.hardware import measure_latency

    space = spaces.create("nb201")
    rng = np.random.default_rng(opts.seed)
    archs: list[Architecture] = []
    seen: set[Architecture] = set()
    while len(archs) < opts.cells:
        arch = space.sample(rng)
        if arch not in seen:
            seen.add(arch)
            archs.append(arch)
    print(
        f"\n== this machine ({platform.processor() or platform.machine()}, {opts.device}, torch "
        f"eager, {opts.threads} thread(s), batch 1, {opts.statistic} of {opts.runs} passes after "
        f"{opts.warmup}); {opts.cells} random cells, fit on the first {opts.machine_train}"
    )
    print(f"  load average before: {load_average()}")
    started = time.perf_counter()
    latency = []
    for arch in archs:
        net = space.build(arch)
        result = measure_latency(
            net,
            (3, 32, 32),
            runs=opts.runs,
            warmup=opts.warmup,
            threads=opts.threads,
            device=opts.device,
        )
        latency.append(result.median_ms if opts.statistic == "median" else result.p10_ms)
    y = np.array(latency)
    print(
        f"  measured in {time.perf_counter() - started:.0f} s; latency median {np.median(y):.3f} "
        f"ms, range {y.min():.3f}..{y.max():.3f} ms; load average after: {load_average()}"
    )
    train = opts.machine_train
    lut = LatencyLUT.fit(space, archs[:train], y[:train], metric=f"latency_ms[{opts.device}]")
    inside = evaluate(lut, archs[:train], y[:train])
    held = evaluate(lut, archs[train:], y[train:])
    print(f"  {'cells':<10} {'n':>4} {'Spearman':>9} {'mean rel err':>13} {'median':>8}")
    for label, r in (("fitted", inside), ("held out", held)):
        print(
            f"  {label:<10} {r.n:>4} {r.spearman:>9.4f} {r.mean_relative_error:>13.4f} "
            f"{r.median_relative_error:>8.4f}"
        )
    print(f"  constant {lut.constant:.4f} ms; per edge (ms added over 'none'):")
    for name, row in lut.table().items():
        if name != "constant":
            print("    " + name + ": " + ", ".join(f"{k} {v:+.4f}" for k, v in row.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=int, default=500, help="cells to fit each device on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cells", type=int, default=120, help="cells measured here (0: skip)")
    parser.add_argument("--machine-train", type=int, default=80, help="of those, fitted on")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--statistic", default="median", choices=("median", "p10"))
    opts = parser.parse_args(argv)
    if opts.cells and not opts.machine_train < opts.cells:
        parser.error("--machine-train must be smaller than --cells (cells are held out)")
    import torch

    print(
        f"settings: train={opts.train} seed={opts.seed} cells={opts.cells} "
        f"machine_train={opts.machine_train} runs={opts.runs} warmup={opts.warmup} "
        f"threads={opts.threads} device={opts.device} statistic={opts.statistic}"
    )
    print(
        f"nasforge {__version__}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch.__version__}, {platform.platform()}"
    )
    _devices(opts.train, opts.seed)
    if opts.cells:
        _machine(opts)


if __name__ == "__main__":
    main()
