"""Check the NAS-Bench-201 builder against the bundled table: params and FLOPs of every cell.

Builds the network of each of the 15,625 cells for each dataset (CIFAR-10: 10 classes, 32x32;
CIFAR-100: 100 classes, 32x32; ImageNet16-120: 120 classes, 16x16) on PyTorch's meta device
(shapes only, no arithmetic), counts parameters, counts FLOPs with
``torch.utils.flop_counter`` and compares with the table's ``params_M`` and ``flops_M``.
The table counts FLOPs as NAS-Bench-201 does: multiply-accumulates of convolutions and linear
layers plus the classifier's bias additions; ``torch.utils.flop_counter`` reports 2 FLOPs per
multiply-accumulate, so FLOPs_NB201 = flop_counter / 2 + num_classes.

Usage: python benchmarks/nb201_params_flops.py [--jobs 2] [--limit N]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16-120": (120, 16)}


def count(args: tuple[int, int]) -> list[tuple[str, int, float, float]]:
    start, stop = args
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import nasforge

    space = nasforge.spaces.create("nb201")
    out = []
    for index in range(start, stop):
        arch = space.from_index(index)
        for dataset, (classes, size) in DATASETS.items():
            with torch.device("meta"):
                net = space.build(arch, num_classes=classes).eval()
                params = sum(p.numel() for p in net.parameters()) / 1e6
                with FlopCounterMode(display=False) as counter:
                    net(torch.zeros(1, 3, size, size))
            flops = (counter.get_total_flops() / 2 + classes) / 1e6
            out.append((dataset, index, params, flops))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=15625, help="check the first N cells")
    opts = parser.parse_args()
    import nasforge

    bench = nasforge.tabular.create("nb201")
    chunks = [(i, min(i + 250, opts.limit)) for i in range(0, opts.limit, 250)]
    started = time.perf_counter()
    with ProcessPoolExecutor(opts.jobs) as pool:
        results = [row for part in pool.map(count, chunks) for row in part]
    elapsed = time.perf_counter() - started
    print(
        f"settings: {opts.limit} cells x {len(DATASETS)} datasets, meta device, "
        f"{opts.jobs} processes, {elapsed:.0f} s"
    )
    for dataset in DATASETS:
        rows = [r for r in results if r[0] == dataset]
        index = np.array([r[1] for r in rows])
        params = np.array([r[2] for r in rows])
        flops = np.array([r[3] for r in rows])
        ref_p = bench.column(dataset, "params_M")[index]
        ref_f = bench.column(dataset, "flops_M")[index]
        ok_p = np.isclose(params, ref_p, rtol=0, atol=5e-7)
        ok_f = np.isclose(flops, ref_f, rtol=0, atol=5e-6)
        print(
            f"{dataset:15s} params {ok_p.sum()}/{len(rows)} match "
            f"(max |diff| {np.abs(params - ref_p).max():.2e} M), "
            f"FLOPs {ok_f.sum()}/{len(rows)} match (max |diff| {np.abs(flops - ref_f).max():.2e} M)"
        )


if __name__ == "__main__":
    main()
