"""Check the NAS-Bench-201 builder against the bundled table: params and FLOPs of every cell.

For each of the 15,625 cells and each dataset (CIFAR-10: 10 classes, 32x32; CIFAR-100: 100
classes, 32x32; ImageNet16-120: 120 classes, 16x16) the network is built with
``space.build`` on PyTorch's meta device (shapes only, no arithmetic) and compared with the
table's ``params_M`` and ``flops_M``:

* parameters: counted on the built network of that dataset;
* FLOPs as NAS-Bench-201 counts them (multiply-accumulates of convolutions and linear layers
  plus the classifier's bias additions): each convolution of the built network contributes its
  weight size times its output positions, the output resolution following from where it sits
  (stem and cells keep their stage's resolution, a reduction block halves it); the classifier
  contributes its weight size and bias. No forward pass is needed, which makes the full check
  minutes instead of hours. The first ``--crosscheck`` cells of every dataset are also
  counted with ``torch.utils.flop_counter`` (a real forward) and must agree exactly.

Usage: python benchmarks/nb201_params_flops.py [--jobs 2] [--limit N] [--crosscheck 100]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16-120": (120, 16)}


def conv_macs(net, size: int) -> int:  # type: ignore[no-untyped-def]
    """MACs of every convolution of a built NB201 network for a ``size`` x ``size`` input."""
    import torch

    from nasforge.ops.nb201 import ResidualReduction

    def convs(module):  # type: ignore[no-untyped-def]
        return [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]

    total = sum(c.weight.numel() * size * size for c in convs(net.stem))
    resolution = size
    for block in net.cells:
        if isinstance(block, ResidualReduction):
            resolution //= 2  # conv_a has stride 2; conv_b and the shortcut see the output
        total += sum(c.weight.numel() * resolution * resolution for c in convs(block))
    return total


def count(args: tuple[int, int, int]) -> list[tuple[str, int, float, float, float | None]]:
    start, stop, crosscheck = args
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import nasforge

    torch.set_num_threads(1)
    space = nasforge.spaces.create("nb201")
    out = []
    for index in range(start, stop):
        arch = space.from_index(index)
        with torch.device("meta"):
            nets = {d: space.build(arch, num_classes=c).eval() for d, (c, _) in DATASETS.items()}
            convs = {size: conv_macs(nets["cifar10"], size) for size in (32, 16)}
            for dataset, (classes, size) in DATASETS.items():
                net = nets[dataset]
                params = sum(p.numel() for p in net.parameters()) / 1e6
                linear = net.classifier.weight.numel()
                flops = (convs[size] + linear + classes) / 1e6
                reference = None
                if index < crosscheck:
                    with FlopCounterMode(display=False) as counter:
                        net(torch.zeros(1, 3, size, size))
                    reference = (counter.get_total_flops() / 2 + classes) / 1e6
                out.append((dataset, index, params, flops, reference))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=15625, help="check the first N cells")
    parser.add_argument("--crosscheck", type=int, default=100)
    opts = parser.parse_args()
    import nasforge

    bench = nasforge.tabular.create("nb201")
    chunks = [(i, min(i + 125, opts.limit), opts.crosscheck) for i in range(0, opts.limit, 125)]
    started = time.perf_counter()
    with ProcessPoolExecutor(opts.jobs) as pool:
        results = [row for part in pool.map(count, chunks) for row in part]
    elapsed = time.perf_counter() - started
    print(
        f"settings: {opts.limit} cells x {len(DATASETS)} datasets, meta device, "
        f"{opts.jobs} processes, flop_counter cross-check on the first {opts.crosscheck} "
        f"cells, {elapsed:.0f} s"
    )
    for dataset in DATASETS:
        rows = [r for r in results if r[0] == dataset]
        index = np.array([r[1] for r in rows])
        params = np.array([r[2] for r in rows])
        flops = np.array([r[3] for r in rows])
        checked = [(r[3], r[4]) for r in rows if r[4] is not None]
        agree = sum(abs(a - b) < 1e-9 for a, b in checked)
        ref_p = bench.column(dataset, "params_M")[index]
        ref_f = bench.column(dataset, "flops_M")[index]
        ok_p = np.isclose(params, ref_p, rtol=0, atol=5e-7)
        ok_f = np.isclose(flops, ref_f, rtol=0, atol=5e-6)
        print(
            f"{dataset:15s} params {ok_p.sum()}/{len(rows)} match "
            f"(max |diff| {np.abs(params - ref_p).max():.2e} M), "
            f"FLOPs {ok_f.sum()}/{len(rows)} match "
            f"(max |diff| {np.abs(flops - ref_f).max():.2e} M); "
            f"equal to flop_counter on {agree}/{len(checked)}"
        )


if __name__ == "__main__":
    main()
