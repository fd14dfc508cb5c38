"""Memory and time of one search step at the standard NAS-Bench-201 supernet shape.

Shape: 16 channels, 5 cells per stage, 32x32 CIFAR-sized inputs, batch 64, 10 classes (the
search-time network of NAS-Bench-201). Each configuration runs in a fresh process (spawn) so
that its peak resident memory is its own. Figures per configuration:

* ``saved MB``: bytes of the tensors autograd keeps for the backward pass of one step
  (unique storages, counted with ``torch.autograd.graph.saved_tensors_hooks``): the memory a
  training step needs beyond the weights, the quantity PC-DARTS reduces;
* ``peak RSS +MB``: growth of the process's peak resident memory over one step (after the
  model is built), from ``resource.getrusage``; CPU only, includes allocator slack;
* ``step ms``: median wall time of a weight step (forward, backward, SGD update) over
  ``--steps`` steps after ``--warmup``, on ``--threads`` CPU threads (or the GPU).

Targets (issue 8): PC-DARTS peak memory at most 1/3 of DARTS's; a supernet step at most 2.5x
the step of the fixed all-``nor_conv_3x3`` network.

Run:  nice python benchmarks/oneshot_memory_speed.py [--device cuda]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time

CONFIGS = ("fixed-conv3x3", "darts", "pc-darts", "gdas", "spos")


def _measure(name: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    import torch

    from nasforge.oneshot.gdas import gumbel_hard
    from nasforge.ops.nb201 import NB201Network
    from nasforge.ops.supernet import NB201Supernet

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if name == "fixed-conv3x3":
        net = NB201Network((3,) * 6, channels=16, cells_per_stage=5)
    else:
        net = NB201Supernet(
            channels=16, cells_per_stage=5, partial_channels=4 if name == "pc-darts" else 1
        )
    net.to(device)
    alpha = (1e-3 * torch.randn(6, 5, device=device)).requires_grad_(True)
    beta = (1e-3 * torch.randn(6, device=device)).requires_grad_(True)
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def forward() -> torch.Tensor:
        if name == "fixed-conv3x3":
            return net(x)
        if name == "darts":
            return net(x, [alpha.softmax(-1)])
        if name == "pc-darts":
            parts = [beta[list(e)].softmax(-1) for e in net.node_edges[0]]
            return net(x, [alpha.softmax(-1)], None, [torch.cat(parts)])
        if name == "gdas":
            hard, index = gumbel_hard(alpha, 1.0, generator)
            return net(x, [hard], [index])
        index = torch.randint(0, 5, (6,), generator=generator).tolist()
        return net(x, None, [index])

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(forward(), y).backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    sync()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    queue.put(
        {
            "config": name,
            "saved_MB": sum(storages.values()) / 2**20,
            "peak_rss_MB": (rss_after - rss_before) / 1024,
            "gpu_peak_MB": gpu_peak,
            "step_ms": 1000 * statistics.median(times),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    context = mp.get_context("spawn")
    rows = []
    for name in CONFIGS:
        queue = context.Queue()
        process = context.Process(target=_measure, args=(name, args, queue))
        process.start()
        rows.append(queue.get())
        process.join()
    print(
        f"NB201 supernet, C=16, N=5, 32x32, batch {args.batch}, device {args.device}, "
        f"threads {args.threads}, median of {args.steps} steps ({sys.platform})"
    )
    print(f"{'config':>14} {'saved MB':>9} {'peak RSS +MB':>12} {'GPU peak MB':>11} {'step ms':>8}")
    for r in rows:
        gpu = "-" if r["gpu_peak_MB"] is None else f"{r['gpu_peak_MB']:.0f}"
        print(
            f"{r['config']:>14} {r['saved_MB']:9.0f} {r['peak_rss_MB']:12.0f} {gpu:>11} "
            f"{r['step_ms']:8.0f}"
        )
    by = {r["config"]: r for r in rows}
    ratio_saved = by["pc-darts"]["saved_MB"] / by["darts"]["saved_MB"]
    ratio_rss = by["pc-darts"]["peak_rss_MB"] / max(1e-9, by["darts"]["peak_rss_MB"])
    print(
        f"PC-DARTS / DARTS memory: saved tensors {ratio_saved:.2f}, peak RSS growth {ratio_rss:.2f}"
        " (target <= 0.33)"
    )
    for name in ("darts", "pc-darts", "gdas", "spos"):
        ratio = by[name]["step_ms"] / by["fixed-conv3x3"]["step_ms"]
        print(f"{name} step / fixed all-conv3x3 step: {ratio:.2f}x (target <= 2.5x)")


if __name__ == "__main__":
    main()
