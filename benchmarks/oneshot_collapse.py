"""DARTS's collapse on NAS-Bench-201, shown: per epoch, the share of parameter-free edges
(none, skip, pooling) of the derived cell, the architecture weights' mass on them, and the
derived cell's NAS-Bench-201 accuracy (bundled table, cifar10: valid = ``cifar10-valid``
validation accuracy, test = CIFAR-10 test accuracy of the 200-epoch network), for DARTS,
single-level DARTS and DARTS-PT, on real CIFAR-10 images.

Reduced CPU setting by default (see ``--help``): 8 channels, 1 cell per stage, 16x16
images, a fraction of the CIFAR-10 training images split in halves (weights /
architecture), batch 64, NAS-Bench-201's DARTS hyperparameters. The published protocol is
``--channels 16 --cells 5 --resolution 32 --fraction 1 --epochs 50`` (a GPU's work).

Published NAS-Bench-201 cifar10 test accuracies beside which to read the results: DARTS
54.30 (Dong and Yang 2020, Table 5), GDAS 93.61 (same table), DARTS-PT 88.11 (Wang et al.
2021, Table 3).

With several methods including ``darts``, the last lines give each one's search time relative
to DARTS's, measured in the same run (run it on a quiet machine).

Run:  nice python benchmarks/oneshot_collapse.py --data ../shared/data/cifar10/cifar10-jpeg.tar.gz

With 10% of the images (the default) DARTS does not drift within 30 epochs; with half of them
and 50 epochs (``--fraction 0.5 --epochs 50 --threads 2``, about 16 minutes per method on two
free cores; run one method at a time, as two-thread runs side by side slow each other many
times over) it does, while single-level DARTS and DARTS-PT do not.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from nasforge import oneshot
from nasforge.oneshot import SupernetSettings
from nasforge.train import load_cifar10

PUBLISHED = {"darts": 54.30, "gdas": 93.61, "darts-pt": 88.11}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 (python release, folder, .tar.gz)")
    parser.add_argument("--methods", default="darts,single-level-darts,darts-pt")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--proj-intv", type=int, default=2, help="DARTS-PT epochs per decision")
    parser.add_argument("--proj-images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="Also write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_cifar10(args.data)
    settings = SupernetSettings(
        channels=args.channels,
        cells=args.cells,
        resolution=args.resolution,
        data_fraction=args.fraction,
    )
    device = torch.cuda.get_device_name() if args.device != "cpu" else "CPU (no GPU used)"
    print(f"setting: {settings}, epochs {args.epochs}, seed {args.seed}, device {device}")
    rows = []
    seconds: dict[str, float] = {}
    for method in args.methods.split(","):
        params = {}
        if method == "darts-pt":
            params = {"proj_intv": args.proj_intv, "proj_images": args.proj_images}
        started = time.perf_counter()

        def show(study, trial, method=method):
            m = trial.metrics
            print(
                f"{method:>18} epoch {int(m.get('epoch', -1)):3d}  free-edges "
                f"{m.get('param_free_share', float('nan')):.2f}  free-weight "
                f"{m.get('param_free_weight', float('nan')):.3f}  valid "
                f"{m.get('valid_acc', float('nan')):6.2f}  test "
                f"{m.get('test_acc', float('nan')):6.2f}"
                f"  {trial.arch}  t={m.get('search_seconds', 0):.0f}s",
                flush=True,
            )

        result = oneshot.search(
            method,
            data,
            params=params,
            settings=settings,
            epochs=args.epochs,
            seed=args.seed,
            device=args.device,
            threads=args.threads,
            callbacks=[show],
        )
        for trial in result.study.trials:
            rows.append({"method": method, "arch": str(trial.arch), **trial.metrics})
        summarise(method, [t.metrics for t in result.study.trials], args.epochs)
        last = result.study.trials[-1].metrics
        seconds[method] = time.perf_counter() - started
        print(
            f"{method}: final test {last.get('test_acc', float('nan')):.2f} "
            f"(published NB201 protocol: {PUBLISHED.get(method, 'n/a')}), "
            f"{seconds[method]:.0f} s",
            flush=True,
        )
    if "darts" in seconds:  # search time relative to DARTS, measured in this one run
        for method, spent in seconds.items():
            print(f"{method}: search time {spent / seconds['darts']:.2f} x DARTS's", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"settings": vars(args), "rows": rows, "seconds": seconds}, handle, indent=1)


def summarise(method: str, metrics: list[dict[str, float]], epochs: int) -> None:
    """The drift in a few numbers: over the supernet epochs from the fifth of the run on
    (the first ones derive from near-uniform weights), the mean, lowest and highest test
    accuracy of the derived cell, its mean share of parameter-free edges, and how many of
    all supernet epochs derived a cell with at least 4 of its 6 edges parameter-free."""
    search = [m for m in metrics if "test_acc" in m and m.get("epoch", epochs) < epochs]
    later = [m for m in search if m["epoch"] >= epochs // 5]
    if not later:
        return
    test = [m["test_acc"] for m in later]
    free = [m["param_free_share"] for m in later]
    heavy = sum(m["param_free_share"] >= 4 / 6 - 1e-9 for m in search)
    print(
        f"{method}: epochs {epochs // 5}-{epochs - 1}: derived cell's test accuracy mean "
        f"{sum(test) / len(test):.2f} (min {min(test):.2f}, max {max(test):.2f}), "
        f"parameter-free edge share mean {sum(free) / len(free):.2f}; cells with >= 4/6 "
        f"parameter-free edges in {heavy} of {len(search)} supernet epochs",
        flush=True,
    )


if __name__ == "__main__":
    main()
