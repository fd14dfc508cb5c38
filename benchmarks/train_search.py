"""A real-training search on CIFAR-10: 10 NAS-Bench-201 cells chosen by regularized evolution,
each trained with a reduced (EcoNAS-style) setting, recorded in SQLite; then the three best
networks are exported to ONNX (round trip checked) and timed with PyTorch and ONNX Runtime.

Settings (printed): the CIFAR-10 JPEG tarball in ``shared/data``, 25,000/25,000 train/valid
split, training on ``--data-fraction`` of the 25,000 at ``--resolution`` px with ``--channels``
and ``--cells``, NB201's recipe (SGD Nesterov, lr 0.1 cosine, weight decay 5e-4) for
``--epochs`` epochs, batch 128; validation and test accuracy on fixed 5,000-image subsets;
regularized evolution with population 5 and tournament 2 (so that trials 6-10 are mutants),
one CPU thread (on a shared machine two threads are slower).

    python benchmarks/train_search.py --db /tmp/train_search.db
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

import nasforge
from nasforge import evaluators
from nasforge.export import export_trial, load, to_onnx
from nasforge.hardware import measure_latency
from nasforge.train.checkpoint import ModelRecord
from nasforge.train.trainer import seeded

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/cifar10/cifar10-jpeg.tar.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--db", default=None, help="SQLite file (default: a temporary one).")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--data-fraction", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-runs", type=int, default=30)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="nasforge-train-search-"))
    db = Path(args.db) if args.db else folder / "search.db"
    url = f"sqlite:///{db}"
    evaluator = evaluators.create(
        "train",
        data=args.data,
        recipe={"batch_size": 128, "epochs": args.epochs},
        channels=args.channels,
        cells_per_stage=args.cells,
        resolution=args.resolution,
        data_fraction=args.data_fraction,
        valid_size=25_000,
        eval_limit=5_000,
        checkpoint_dir=db.with_name(db.name + "-checkpoints"),
        threads=args.threads,
        device="auto",
    )
    started = time.perf_counter()
    evaluator.check()
    print(f"# data ready in {time.perf_counter() - started:.1f} s; storage {url}")
    print(
        f"# setting: C={args.channels} N={args.cells} {args.resolution}px, "
        f"{args.data_fraction:g} of 25,000 training images, {args.epochs} epochs, batch 128, "
        f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f}"
    )
    study = nasforge.create_study(
        strategy="regularized-evolution",
        strategy_params={"population_size": 5, "tournament_size": 2},
        seed=args.seed,
        storage=url,
        study_name="train-search",
        evaluator=evaluator,
        load_if_exists=True,
    )
    search_started = time.perf_counter()
    study.optimize(evaluator, n_trials=args.trials)
    minutes = (time.perf_counter() - search_started) / 60
    print(
        f"# search: {len(study.trials)} trials in {minutes:.1f} min "
        f"(load average {os.getloadavg()[0]:.2f})"
    )

    reread = nasforge.load_study("train-search", url)  # print from the stored record
    print(
        f"{'#':>2} {'state':<8} {'valid':>6} {'test':>6} {'train':>6} {'sec':>6} "
        f"{'params_M':>8}  arch"
    )
    for trial in reread.trials:
        m = trial.metrics
        print(
            f"{trial.number:>2} {trial.state.value:<8} {m.get('valid_acc', float('nan')):6.2f} "
            f"{m.get('test_acc', float('nan')):6.2f} {m.get('train_acc', float('nan')):6.2f} "
            f"{trial.cost:6.1f} {m.get('params_M', float('nan')):8.4f}  {trial.arch.text}"
        )
    best = reread.best_trial
    print(
        f"# best: trial {best.number}, valid {best.metrics['valid_acc']:.2f}, "
        f"test {best.metrics['test_acc']:.2f}"
    )

    ranked = sorted(reread.completed_trials, key=lambda t: -(t.score or 0))[:3]
    print("# ONNX export of the 3 best (trained, reduced setting) and latency, batch 1, 1 thread")
    print(f"{'#':>2} {'max|diff|':>10} {'torch ms':>9} {'ORT ms':>8}  arch")
    for trial in ranked:
        result = export_trial(
            reread, folder / f"trial{trial.number}.onnx", format="onnx", trial=trial.number
        )
        module = load(
            export_trial(reread, folder / f"trial{trial.number}.pt", trial=trial.number).path
        )
        shape = (3, args.resolution, args.resolution)
        timings = [
            measure_latency(module, shape, backend=backend, runs=args.latency_runs, threads=1)
            for backend in ("torch", "onnxruntime")
        ]
        print(
            f"{trial.number:>2} {result.max_abs_diff:10.2e} {timings[0].median_ms:9.3f} "
            f"{timings[1].median_ms:8.3f}  {trial.arch.text}"
        )
    print(
        "# the same 3 cells at NAS-Bench-201's full size (C=16, N=5, 32 px; random weights, "
        "batch-norm statistics of random inputs)"
    )
    print(f"{'#':>2} {'max|diff|':>10} {'torch ms':>9} {'ORT ms':>8}  arch")
    for trial in ranked:
        with seeded(0):
            module = reread.space.build(trial.arch)  # C=16, N=5, 10 classes
            # batch-norm statistics from random inputs: untrained running statistics make the
            # signal vanish, every input then gives the same logits and the check is empty
            module.train()
            with torch.no_grad():
                for _ in range(4):
                    module(torch.randn(32, 3, 32, 32))
            module.eval()
        record = ModelRecord(
            space="nb201",
            arch=trial.arch.text,
            build={"num_classes": 10},
            state_dict=module.state_dict(),
            input_shape=(3, 32, 32),
            trained=False,
        )
        diff = to_onnx(record, folder / f"full{trial.number}.onnx")
        timings = [
            measure_latency(module, (3, 32, 32), backend=b, runs=args.latency_runs, threads=1)
            for b in ("torch", "onnxruntime")
        ]
        print(
            f"{trial.number:>2} {diff:10.2e} {timings[0].median_ms:9.3f} "
            f"{timings[1].median_ms:8.3f}  {trial.arch.text}"
        )
    print(f"# total {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
