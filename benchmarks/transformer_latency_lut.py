"""Per-layer latency tables of transformer spaces: predicted vs measured whole networks.

Issue 20, item 5: the per-layer tables of :mod:`nasforge.hardware.layer_lut` (one entry per
:class:`~nasforge.ops.vit.TransformerLayerSpec`: patch or token embedding, each encoder block
by width x tokens x heads x Q-K-V dimension x MLP width, classifier or vocabulary head),
checked the way ``benchmarks/mobile_latency_lut.py`` checks convolution blocks.

For each backend (ONNX Runtime, PyTorch eager) and each ``--space``:

1. draws ``--k`` distinct random networks (``--seed``) and measures a table of every distinct
   layer they use with :func:`nasforge.hardware.measure_table` (each layer alone, batch 1,
   ``--threads`` threads, median of ``--runs`` passes after ``--warmup``), its in-network
   factor and fixed part calibrated on those same ``--k`` whole networks. ``--layers all``
   measures every layer the space can produce (``space.layer_specs()``) instead of the
   layers of the ``--k`` networks. ``--call subtract`` (the default here) takes the runtime's
   call off each layer's time alone (``measure_table(subtract_call=True)``, see
   :mod:`nasforge.hardware.layer_lut`); ``--call keep`` leaves it in (``measure_table``'s
   default);
2. draws ``--n`` other distinct random networks (``--seed + 1``, none of the ``--k``); the
   layers of theirs the table lacks are measured alone and added (the factor and fixed part
   stay those of step 1: no held-out network is ever timed whole before it is predicted);
3. measures the ``--n`` whole networks (``space.build``) the same way and prints the Spearman
   rank correlation and the mean absolute percentage error (MAPE) of predicted against
   measured latency, the worst error, the mean signed error, the factor, the fixed part, the
   table's size and the seconds taken by each step.

Spaces: ``vit-cifar`` (32x32 images, the default), ``vit`` (224x224; its random networks
reach DeiT-B's size, so ``--max-macs`` keeps those of at most that many million
multiply-accumulates, e.g. 2000 for networks about DeiT-Ti's 1.3 G) and ``llm`` (a byte-level
decoder-only language model on a sequence of its full context; its token embedding is timed
on random token ids). ``--space vit-cifar,llm`` runs several.

``--malloc steady`` (the default, glibc only) keeps freed memory in the process, so that
PyTorch eager does not page-fault its activations afresh on every pass (see
``benchmarks/mobile_latency_lut.py`` and :mod:`nasforge.hardware.layer_measure`). The load
average is printed before and after each backend: final figures belong to a quiet machine
(``--statistic p10`` takes the 10th percentile of the passes on a shared one).

Usage:
    python benchmarks/transformer_latency_lut.py [--space vit-cifar,llm] [--k 15] [--n 50]
        [--runs 50] [--warmup 10] [--threads 1] [--backend both|onnxruntime|torch]
        [--layers archs|all] [--seed 0] [--max-macs M] [--malloc steady|default]
        [--statistic median|p10] [--call subtract|keep] [--out tables/vit.csv]

The default run (vit-cifar and llm, 15 + 50 networks each, both backends) took 44 s on one
thread of the project's 2-core machine; DeiT-Ti-sized networks at 224x224 take about 50 ms
each (``--space vit --max-macs 2000 --k 5 --n 20``: about 5 minutes by estimate). Smoke run:
``--k 2 --n 3 --runs 2 --warmup 1``.

Figures of the default run on that machine while other jobs ran (load average 2.5 to 3.3),
held-out networks: ``vit-cifar`` ONNX Runtime Spearman 0.995, MAPE 3.3% (worst 25%);
PyTorch 0.981, 19.2% (mean signed error +18.5%); ``llm`` ONNX Runtime 0.913, 9.6%; PyTorch
0.820, 15.6%. PyTorch's sub-millisecond networks followed the load: ten ``llm`` networks
timed twice in a row after their table ran 0.77 to 1.53 times their predicted latency, then
0.77 to 2.28 times (one network 1.23 then 2.28). The final figures belong to a
quiet machine.
With ``--out x.csv`` each table is written to ``x-<space>-<backend>.csv``;
``LayerLatencyTable.from_csv`` reads it back.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from nasforge import __version__, spaces
from nasforge.architecture import Architecture
from nasforge.hardware import measure_network, measure_table
from nasforge.hardware.lut import prediction_errors
from nasforge.hardware.machine import load_average, steady_malloc

BACKENDS = ("onnxruntime", "torch")


def _distinct(
    space, n: int, seed: int, exclude: set[Architecture], max_macs: float | None
) -> list[Architecture]:
    """``n`` distinct random networks not in ``exclude`` (of at most ``max_macs`` million MACs
    where given, by the space's closed-form ``costs``)."""
    rng = np.random.default_rng(seed)
    out: list[Architecture] = []
    seen = set(exclude)
    for _ in range(1000 * max(n, 1)):
        if len(out) == n:
            return out
        arch = space.canonical(space.sample(rng))
        if arch in seen:
            continue
        seen.add(arch)
        if max_macs is None or space.costs(arch)["macs_M"] <= max_macs:
            out.append(arch)
    raise SystemExit(
        f"Found only {len(out)} of {n} distinct networks of {space.name!r}"
        + ("" if max_macs is None else f" within {max_macs} MMACs; raise --max-macs")
    )


def _run(backend: str, opts: argparse.Namespace, space, table_archs, held_out) -> dict:
    print(f"\n== {space.name} / {backend}: load average {load_average()}")
    started = time.perf_counter()
    last = [started]

    def progress(done: int, total: int, what: str) -> None:
        if time.perf_counter() - last[0] > 30 or done == total:
            last[0] = time.perf_counter()
            print(f"  measured {done}/{total} ({last[0] - started:.0f} s)", flush=True)

    timing = {
        "backend": backend,
        "threads": opts.threads,
        "runs": opts.runs,
        "warmup": opts.warmup,
        "statistic": opts.statistic,
        "subtract_call": opts.call == "subtract",
    }
    items = "all" if opts.layers == "all" else table_archs
    table = measure_table(space, items, calibration=table_archs, progress=progress, **timing)
    table_s = time.perf_counter() - started
    size = len(table)
    print(
        f"  table: {size} distinct layers, factor {table.factor:.4f}, fixed part "
        f"{table.fixed_ms:+.4f} ms ({table_s:.0f} s)"
    )
    lacking = {s.key for a in held_out for s in table.missing(space.layers(a))}
    if lacking:
        table = measure_table(space, held_out, calibration=0, table=table, **timing)
    extend_s = time.perf_counter() - started - table_s
    print(f"  {len(lacking)} layers of the held-out networks added ({extend_s:.0f} s)")
    if opts.out is not None:
        out = Path(opts.out)
        out = out.with_name(f"{out.stem}-{space.name}-{backend}{out.suffix}")
        print(f"  written to {table.to_csv(out)}")
    predicted, measured, depth = [], [], []
    for arch in held_out:
        layers = space.layers(arch)
        predicted.append(table.predict(layers))
        whole = measure_network(
            space,
            arch,
            backend=backend,
            threads=opts.threads,
            runs=opts.runs,
            warmup=opts.warmup,
        )
        measured.append(whole.p10_ms if opts.statistic == "p10" else whole.median_ms)
        depth.append(len(layers))
    m = np.asarray(measured)
    row = {
        "space": space.name,
        "backend": backend,
        **prediction_errors(predicted, measured),
        "factor": table.factor,
        "fixed": table.fixed_ms,
        "entries": size,
        "added": len(lacking),
        "table_s": table_s,
        "extend_s": extend_s,
        "seconds": time.perf_counter() - started,
    }
    print(
        f"  {len(m)} held-out networks ({min(depth)}-{max(depth)} layers, measured "
        f"{m.min():.3f}-{m.max():.3f} ms): Spearman {row['spearman']:.4f}, MAPE "
        f"{row['mape']:.2f}%, worst {row['max_ape']:.2f}%, mean signed error "
        f"{row['bias']:+.2f}% ({row['seconds']:.0f} s in all; load average {load_average()})"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--space", default="vit-cifar,llm", help="comma-separated: vit-cifar,vit,llm"
    )
    parser.add_argument("--k", type=int, default=15, help="networks whose layers make the table")
    parser.add_argument("--n", type=int, default=50, help="held-out networks to predict")
    parser.add_argument("--runs", type=int, default=50, help="timed passes per measurement")
    parser.add_argument("--warmup", type=int, default=10, help="untimed passes before")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", choices=("both", *BACKENDS), default="both")
    parser.add_argument("--layers", choices=("archs", "all"), default="archs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-macs", type=float, default=None, help="MMACs bound on networks")
    parser.add_argument("--malloc", choices=("steady", "default"), default="steady")
    parser.add_argument("--statistic", choices=("median", "p10"), default="median")
    parser.add_argument(
        "--call", choices=("subtract", "keep"), default="subtract", help="measure_table's "
        "subtract_call: take the runtime's call off each layer's time alone (subtract)"
    )  # fmt: skip
    parser.add_argument("--out", default=None, help="write each table to this CSV")
    opts = parser.parse_args()
    if opts.k < 1 or opts.n < 1:
        parser.error("--k and --n must be at least 1")
    backends = BACKENDS if opts.backend == "both" else (opts.backend,)
    allocator = steady_malloc() if opts.malloc == "steady" else "default"

    import torch

    # the ONNX exporter notes that the attention's scale is a traced constant (shapes are static)
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    print(
        f"nasforge {__version__}, torch {torch.__version__}, {platform.processor() or '?'} "
        f"({os.cpu_count()} CPUs), Python {platform.python_version()}"
    )
    rows = []
    for name in opts.space.split(","):
        space = spaces.create(name.strip())
        started = time.perf_counter()
        table_archs = _distinct(space, opts.k, opts.seed, set(), opts.max_macs)
        held_out = _distinct(space, opts.n, opts.seed + 1, set(table_archs), opts.max_macs)
        print(
            f"\n{space.name}: table from the layers of {opts.k} random networks (seed "
            f"{opts.seed}{', plus every layer of the space' if opts.layers == 'all' else ''}), "
            f"calibrated on them; {opts.n} held-out networks (seed {opts.seed + 1})"
            f"{'' if opts.max_macs is None else f' of at most {opts.max_macs:g} MMACs'}; "
            f"batch 1, {opts.threads} thread(s), {opts.statistic} of {opts.runs} passes after "
            f"{opts.warmup}; runtime call per layer: {opts.call}; malloc: {allocator}"
        )
        for backend in backends:
            rows.append(_run(backend, opts, space, table_archs, held_out))
        print(f"{space.name}: {time.perf_counter() - started:.0f} s")
    print(
        "\nspace        backend       n  Spearman   MAPE %  worst %  signed %  factor  "
        "fixed ms  layers  table s  total s"
    )
    for r in rows:
        print(
            f"{r['space']:<12} {r['backend']:<12} {r['n']:>2} {r['spearman']:>9.4f} "
            f"{r['mape']:>8.2f} {r['max_ape']:>8.2f} {r['bias']:>+9.2f} {r['factor']:>7.3f} "
            f"{r['fixed']:>+9.4f} {r['entries'] + r['added']:>7} {r['table_s']:>8.0f} "
            f"{r['seconds']:>8.0f}"
        )


if __name__ == "__main__":
    main()
