"""Seconds per architecture of each zero-cost proxy on NAS-Bench-201 networks.

Builds ``--archs`` random NB201 networks (16 channels, 5 cells per stage, as the benchmark)
and times each proxy alone on a batch of 64 (synthetic CIFAR-sized images unless ``--data``),
then all proxies together through ``nasforge.proxies.compute`` (shared passes). Prints the
median seconds per architecture.

    nice python3 benchmarks/proxy_cost.py --archs 10 --threads 1
    python3 benchmarks/proxy_cost.py --archs 20 --device cuda
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from nasforge import proxies, spaces
    from nasforge.proxies.batches import load_batch

    space = spaces.create("nb201")
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.archs)]
    batch = load_batch(args.data, batch_size=args.batch_size, seed=args.seed).to(args.device)
    names = [n for n in proxies.names() if not proxies.get(n).requires]
    alone: dict[str, list[float]] = {n: [] for n in names}
    together: list[float] = []
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    # warm-up
    proxies.compute(space.build(archs[0]).to(args.device), names, batch)
    for arch in archs:
        model = space.build(arch).to(args.device)
        for name in names:
            sync()
            start = time.perf_counter()
            proxies.create(name).score(model, batch)
            sync()
            alone[name].append(time.perf_counter() - start)
        sync()
        start = time.perf_counter()
        proxies.compute(model, names, batch)
        sync()
        together.append(time.perf_counter() - start)
    device = args.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name()})"
    else:
        device += f" ({platform.processor() or platform.machine()}, {args.threads} thread(s))"
    print(
        f"# NB201 networks (C=16, N=5), {args.archs} random archs, batch {args.batch_size}, "
        f"{device}, torch {torch.__version__}"
    )
    print(f"{'proxy':>10} {'s/arch':>8}")
    for name in names:
        print(f"{name:>10} {statistics.median(alone[name]):8.3f}")
    print(f"{'all (shared passes)':>10} {statistics.median(together):8.3f}")
    print(f"# sum of proxies run alone: {sum(statistics.median(v) for v in alone.values()):.3f}")


if __name__ == "__main__":
    main()
