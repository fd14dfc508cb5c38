"""Per-layer latency tables of the ``mobilenet`` space: predicted vs measured whole networks.

For each backend (ONNX Runtime, PyTorch eager): draws ``--n`` distinct random networks of the
``mobilenet`` space (``--seed``), measures a table of every distinct layer they use with
:func:`nasforge.hardware.measure_table` (each layer alone, batch 1, ``--threads`` threads,
median of ``--runs`` passes after ``--warmup``), its fixed part calibrated on
``--calibration`` further random networks (drawn with ``--seed + 1``, none of the evaluated
ones), then measures the ``--n`` whole networks the same way and prints the Spearman rank
correlation and the mean absolute percentage error of predicted against measured latency
(issue 18's targets: Spearman >= 0.95 and MAPE <= 10% over at least 50 networks at 224x224,
one thread), with the worst error, the mean signed error and the fixed part.

``--malloc steady`` (the default, Linux/glibc only) keeps freed memory in the process instead
of returning every large block to the system: PyTorch eager takes each activation tensor from
``malloc``, and by default glibc maps blocks above its mmap threshold afresh and unmaps them
when freed, so every pass page-faults its activations again, at a cost that depends on what
the process allocated before. On a 2-core machine that made the same network's PyTorch time
vary by up to 40% between two measurements in one process (CPU time, not wall time). ONNX
Runtime allocates from its own arena and is not affected. ``--malloc default`` leaves glibc
as it is (what a plain ``python`` process does); PyTorch's CPU performance guide recommends
a caching allocator (jemalloc, tcmalloc) for the same reason. On the project's shared 2-core
machine (load average about 1.5), 50 networks, PyTorch: Spearman 0.962 and MAPE 6.0% with
``steady``, 0.885 and 11.9% (worst network 114%) with ``default``; ONNX Runtime: 0.976 and
4.1%. Final figures belong to a quiet machine.

The machine should be quiet: the load average is printed before and after each backend. On a
shared one, ``--statistic p10`` takes the 10th percentile of the passes (the least delayed)
for the layers and the networks alike, instead of the median.

Usage:
    python benchmarks/mobile_latency_lut.py [--n 50] [--runs 20] [--warmup 5] [--threads 1]
        [--backend both|onnxruntime|torch] [--calibration 10] [--seed 0] [--resolution 224]
        [--width-mult 1.0] [--malloc steady|default] [--statistic median|p10]
        [--space mobilenet|fbnet] [--out tables/cpu.csv]

With ``--out x.csv`` each table is written to ``x-<backend>.csv`` (or ``x.csv`` for one
backend); ``LayerLatencyTable.from_csv`` reads it back.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from nasforge import __version__, spaces
from nasforge.architecture import Architecture
from nasforge.hardware import measure_network, measure_table
from nasforge.hardware.lut import prediction_errors
from nasforge.hardware.machine import load_average, steady_malloc

BACKENDS = ("onnxruntime", "torch")


def _distinct(space, n: int, seed: int, exclude: set[Architecture]) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    out: list[Architecture] = []
    seen = set(exclude)
    while len(out) < n:
        arch = space.canonical(space.sample(rng))
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    return out


def _run(backend: str, opts: argparse.Namespace, space, archs, calibration) -> dict:
    build = {"resolution": opts.resolution, "width_mult": opts.width_mult}
    print(f"\n== {backend}: load average {load_average()}")
    started = time.perf_counter()
    last = [started]

    def progress(done: int, total: int, what: str) -> None:
        if time.perf_counter() - last[0] > 30 or done == total:
            last[0] = time.perf_counter()
            print(f"  measured {done}/{total} ({last[0] - started:.0f} s)", flush=True)

    table = measure_table(
        space,
        archs,
        backend=backend,
        threads=opts.threads,
        runs=opts.runs,
        warmup=opts.warmup,
        statistic=opts.statistic,
        build=build,
        calibration=calibration,
        progress=progress,
    )
    table_seconds = time.perf_counter() - started
    print(
        f"  table: {len(table)} distinct layers, fixed part {table.fixed_ms:+.3f} ms "
        f"({table_seconds:.0f} s)"
    )
    if opts.out is not None:
        out = Path(opts.out)
        if len(opts.backends) > 1:
            out = out.with_name(f"{out.stem}-{backend}{out.suffix}")
        print(f"  written to {table.to_csv(out)}")
    predicted, measured, depth = [], [], []
    for arch in archs:
        layers = space.layers(arch, **build)
        predicted.append(table.predict(layers))
        timing = measure_network(
            space,
            arch,
            backend=backend,
            threads=opts.threads,
            runs=opts.runs,
            warmup=opts.warmup,
            build=build,
        )
        measured.append(timing.p10_ms if opts.statistic == "p10" else timing.median_ms)
        depth.append(len(layers))
    m = np.asarray(measured)
    row = {
        "backend": backend,
        **prediction_errors(predicted, measured),
        "fixed": table.fixed_ms,
        "entries": len(table),
        "min_ms": float(m.min()),
        "max_ms": float(m.max()),
        "seconds": time.perf_counter() - started,
    }
    print(
        f"  {len(m)} networks ({min(depth)}-{max(depth)} layers, measured {m.min():.2f}-"
        f"{m.max():.2f} ms): Spearman {row['spearman']:.4f}, MAPE {row['mape']:.2f}%, "
        f"worst {row['max_ape']:.2f}%, mean signed error {row['bias']:+.2f}% "
        f"({row['seconds']:.0f} s; load average {load_average()})"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50, help="networks to evaluate")
    parser.add_argument("--runs", type=int, default=20, help="timed passes per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed passes before")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", choices=("both", *BACKENDS), default="both")
    parser.add_argument("--calibration", type=int, default=10, help="networks to calibrate on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", default="mobilenet", help="a space with layers(): fbnet too")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--width-mult", type=float, default=1.0)
    parser.add_argument("--malloc", choices=("steady", "default"), default="steady")
    parser.add_argument("--statistic", choices=("median", "p10"), default="median")
    parser.add_argument("--out", default=None, help="write each table to this CSV")
    opts = parser.parse_args()
    opts.backends = BACKENDS if opts.backend == "both" else (opts.backend,)
    allocator = steady_malloc() if opts.malloc == "steady" else "default"

    import torch

    space = spaces.create(opts.space)
    archs = _distinct(space, opts.n, opts.seed, set())
    calibration = _distinct(space, opts.calibration, opts.seed + 1, set(archs))
    print(
        f"nasforge {__version__}, torch {torch.__version__}, {platform.processor() or '?'} "
        f"({os.cpu_count()} CPUs), Python {platform.python_version()}"
    )
    print(
        f"{opts.space}: {opts.n} random networks (seed {opts.seed}) at {opts.resolution}x"
        f"{opts.resolution}, width {opts.width_mult}, batch 1, {opts.threads} thread(s), "
        f"{opts.statistic} of {opts.runs} passes after {opts.warmup}; calibrated on "
        f"{opts.calibration} other networks (seed {opts.seed + 1}); malloc: {allocator}"
    )
    rows = [_run(backend, opts, space, archs, calibration) for backend in opts.backends]
    print("\nbackend       n  Spearman   MAPE %  worst %  signed %  fixed ms  layers")
    for r in rows:
        print(
            f"{r['backend']:<12} {r['n']:>2} {r['spearman']:>9.4f} {r['mape']:>8.2f} "
            f"{r['max_ape']:>8.2f} {r['bias']:>+9.2f} {r['fixed']:>+9.3f} {r['entries']:>7}"
        )


if __name__ == "__main__":
    main()
