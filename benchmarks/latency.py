"""Costs and measured latency of NAS-Bench-201 networks, PyTorch eager against ONNX Runtime.

For three cells of NAS-Bench-201 (default: 6111, the best on CIFAR-10; 14452, the median of
the table's FLOPs; 1835, skip connections only, among the cheapest), built with
``NB201Network(ops, num_classes=10)`` (C=16, N=5, 32x32 inputs), prints

* parameters, MACs and FLOPs from ``nasforge.hardware.count_flops``, and the table's
  ``params_M`` and ``flops_M`` (which equal ``params_M`` and ``macs_M + 10 / 1e6``);
* ``nasforge.hardware.measure_latency`` for each backend (PyTorch eager, ONNX Runtime), batch
  size and thread count: median, 10th and 90th percentiles, mean and standard deviation, in
  milliseconds per batch; and for ONNX Runtime the largest absolute difference between its
  outputs and PyTorch's (must be below 1e-4).

Weights are PyTorch's default initialisation from a fixed seed; batch-norm statistics are
calibrated on a random batch so that outputs are of order 1, as a trained network's (see
``_calibrate_batch_norm``). The machine's load average is printed before and after: on a
shared machine compare medians taken under similar load.

Usage: python benchmarks/latency.py [--cells 6111 14452 1835] [--batch-sizes 1 64]
       [--threads 1 2] [--runs 50] [--runs-batched 10] [--warmup 10] [--backends torch onnxruntime]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

from nasforge.hardware.machine import load_average


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[6111, 14452, 1835])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=50, help="timed passes at batch size 1")
    parser.add_argument("--runs-batched", type=int, default=10, help="timed passes above 1")
    parser.add_argument("--warmup", type=int, default=10, help="untimed passes (3 above 1)")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    opts = parser.parse_args()

    import torch

    import nasforge
    from nasforge import hardware
    from nasforge.ops.nb201 import NB201Network

    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "not installed"
    print(
        f"settings: torch {torch.__version__}, onnxruntime {ort_version}, python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"input 3x32x32, 10 classes, runs {opts.runs} at batch 1 / {opts.runs_batched} above "
        f"(warm-up {opts.warmup} / 3), ONNX opset 17 (TorchScript exporter), "
        f"ORT_ENABLE_ALL, inter-op threads 1"
    )
    print(f"load average before: {load_average()}")
    space = nasforge.spaces.create("nb201")
    bench = nasforge.tabular.create("nb201")
    started = time.perf_counter()
    failures = 0
    for index in opts.cells:
        arch = space.from_index(index)
        with torch.random.fork_rng():
            torch.manual_seed(index)  # local to this block: weights repeatable, global RNG kept
            net = NB201Network(arch.choices, num_classes=10)
            _calibrate_batch_norm(net, torch.randn(8, 3, 32, 32))
        costs = hardware.count_flops(net, (3, 32, 32))
        print(f"\ncell {index} {arch}")
        table_params = bench.query(arch, "cifar10", "params_M")
        table_flops = bench.query(arch, "cifar10", "flops_M")
        print(
            f"  params {costs.params_M:.6f} M (table {table_params:.6f}) | MACs "
            f"{costs.macs_M:.5f} M (+10 classes' bias = {costs.macs_M + 1e-5:.5f}; table "
            f"flops_M {table_flops:.5f}) | FLOPs {costs.flops_M:.5f} M"
        )
        print(
            f"  {'backend':<12} {'batch':>5} {'thr':>3} {'median':>9} {'p10':>9} {'p90':>9} "
            f"{'mean':>9} {'std':>8} {'ms/img':>8}  max|ORT-torch|"
        )
        for backend in opts.backends:
            for batch in opts.batch_sizes:
                for threads in opts.threads:
                    result = hardware.measure_latency(
                        net,
                        (3, 32, 32),
                        batch_size=batch,
                        runs=opts.runs if batch == 1 else opts.runs_batched,
                        warmup=opts.warmup if batch == 1 else 3,
                        threads=threads,
                        backend=backend,
                    )
                    check = ""
                    if result.max_abs_diff is not None:
                        ok = result.max_abs_diff < 1e-4
                        failures += not ok
                        check = f"{result.max_abs_diff:.1e} {'ok' if ok else 'MISMATCH'}"
                    print(
                        f"  {backend:<12} {batch:>5} {threads:>3} {result.median_ms:>9.2f} "
                        f"{result.p10_ms:>9.2f} {result.p90_ms:>9.2f} {result.mean_ms:>9.2f} "
                        f"{result.std_ms:>8.2f} {result.median_ms / batch:>8.3f}  {check}"
                    )
    print(f"\nload average after: {load_average()}; {time.perf_counter() - started:.0f} s in all")
    print("times in ms per batch (ms/img: median / batch size)")
    if failures:
        raise SystemExit(f"{failures} ONNX Runtime result(s) differ from PyTorch by 1e-4 or more")


def _calibrate_batch_norm(net: Any, batch: Any) -> None:
    """Give batch norm the running statistics of ``batch``, as training would.

    With the initial statistics (mean 0, variance 1) an untrained network in evaluation
    mode does not normalise: the sums of a skip-only cell quadruple the activations in every
    cell, the outputs reach 1e7 and float32 rounding alone makes ONNX Runtime and PyTorch
    differ by more than 1e-4. Calibrated, the outputs are of order 1, like a trained
    network's, and the 1e-4 check is meaningful.
    """
    import torch
    from torch import nn

    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the calibration passes
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(batch)
    for norm in norms:
        norm.momentum = 0.1
    net.eval()


if __name__ == "__main__":
    main()
