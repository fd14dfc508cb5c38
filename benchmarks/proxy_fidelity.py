"""Fidelity of nasforge's zero-cost proxies to NAS-Bench-Suite-Zero's published scores.

Samples architectures of the reference table (``nb201_zero_cost_proxies.csv.gz``, see its
README), computes every proxy on them with real networks and one fixed batch of real
CIFAR-10 training images, and prints per proxy: our Spearman correlation with the benchmark's
test accuracy, the reference's on the same sample, their absolute difference (target <= 0.03)
and the Spearman correlation of our scores with the reference scores (aim >= 0.9).

    nice python3 benchmarks/proxy_fidelity.py --sample 200 --seed 0 \
        --data ../shared/data/cifar10/cifar10-jpeg.tar.gz --cache /tmp/nasforge-proxies
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reference", default=str(SHARED / "nb201" / "nb201_zero_cost_proxies.csv.gz")
    )
    parser.add_argument("--data", default=str(SHARED / "cifar10" / "cifar10-jpeg.tar.gz"))
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", default=None)
    parser.add_argument("--proxies", default=None, help="comma-separated (default: all)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from nasforge import proxies, tabular
    from nasforge.proxies.scores import compute_scores, read_reference, spearman

    general = [n for n in proxies.names() if not proxies.get(n).requires]
    names = args.proxies.split(",") if args.proxies else general
    ref = read_reference(args.reference, dataset=args.dataset, proxies=names)
    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(len(ref), size=min(args.sample, len(ref)), replace=False))
    sample = ref.subset(rows)
    bench = tabular.create("nb201")
    acc = np.array([bench.query(a, args.dataset, "test_acc") for a in sample.archs])
    data = None if args.data in ("", "none") else args.data
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % 20 == 0 or done == total:
            print(f"  {done}/{total} archs, {time.perf_counter() - start:.0f} s", file=sys.stderr)

    ours = compute_scores(
        "nb201",
        sample.archs,
        names,
        data=data,
        dataset=args.dataset,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        cache_dir=args.cache,
        progress=progress,
    )
    print(
        f"# {len(sample)} archs of {Path(args.reference).name} ({args.dataset}), sample seed "
        f"{args.seed}, batch {args.batch_size} from {data or 'synthetic'}, device {args.device}, "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(f"{'proxy':>10} {'ours~acc':>9} {'ref~acc':>8} {'|diff|':>7} {'ours~ref':>9}  met")
    met = 0
    for name in names:
        mine, theirs = ours.column(name), sample.column(name)
        a, b = spearman(mine, acc), spearman(theirs, acc)
        agree = spearman(mine, theirs)
        ok = abs(a - b) <= 0.03
        met += ok
        print(
            f"{name:>10} {a:9.3f} {b:8.3f} {abs(a - b):7.3f} {agree:9.3f}  {'yes' if ok else 'NO'}"
        )
    print(f"# within 0.03 of the reference: {met}/{len(names)}")


if __name__ == "__main__":
    main()
