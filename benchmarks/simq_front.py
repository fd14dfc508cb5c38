"""SimQ-NAS's joint sub-network and quantization-policy search against uniform precisions of
the same architectures (issue 21's mixed-precision front), reduced CPU setting on CIFAR-10.

What it measures:

a) trains (or reuses, from ``--cache``) an ``ofa-cifar`` elastic supernet: width
   ``--width``, ``--resolution`` px, ``--data-fraction`` of CIFAR-10's training images split
   in halves (weights / measurement), the ``uniform`` schedule for ``--epochs`` epochs;
b) runs :func:`nasforge.quant.simq.search_quantized_subnets`: ``--evaluations`` (architecture,
   per-layer policy) pairs measured after post-training quantization (every layer one of
   ``--precisions``: int4, int8 or fp32 by default; ``--precisions int8,fp32`` is SimQ-NAS's
   own INT8/FP32 choice), LINAS iterations of ``--population``
   with ridge predictors and NSGA-II on them (``--inner-evaluations`` predictions each);
   objectives: held-out accuracy (max) and model size in bits (min);
c) for every architecture of the found front, measures the same sub-network with uniform
   policies, every layer fp32, int8 (SimQ-NAS's baseline: the fully INT8 network), int4 and
   int2, quantized and calibrated the same way;
d) prints, per LINAS iteration, the accuracy and size of the pairs measured and Kendall's
   tau of the predictors on them; a Markdown table (accuracy and kbit of each searched pair
   beside its uniform versions), how many searched pairs the uniform-int8 version of their
   architecture dominates and how many uniform-int8 networks a searched pair dominates, the
   hypervolume of each family on (accuracy, -kbit) from a common reference point, and writes
   ``<out>/results.json``.

Full run (7.2 CPU minutes on one thread of the project's shared machine: about 3.5 to train
the supernet once, cached in ``<out>/supernet``, the search of 100 pairs and the baselines the
rest; 16 minutes of wall time there while other jobs held the cores):

    OMP_NUM_THREADS=1 nice python benchmarks/simq_front.py --out /work/ref/issue21/simq_front

With ``--precisions int4,int8`` (same cached supernet) the searched pairs lead: 7 of 7 on the
joint front, e.g. 31.2% at 2,843 kbit against 31.1% at 4,465 kbit for the same sub-network in
uniform int8; with fp32 among the options the search spends bits on fp32 layers that
post-training int8 does not need.

Smoke run (seconds; the figures mean nothing):

    OMP_NUM_THREADS=1 python benchmarks/simq_front.py --smoke --out /tmp/simq_smoke
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge import spaces
from nasforge.elastic import TrainSettings, train_supernet
from nasforge.ops.quant import policy_of
from nasforge.pareto import dominates, front_indices
from nasforge.quant.simq import QuantizedSubnetEvaluator, search_quantized_subnets

SPACE = "ofa-cifar"
DEFAULT_DATA = "../shared/data/cifar10/cifar10-jpeg.tar.gz"
UNIFORM = ("fp32", "int8", "int4", "int2")


def load_data(path: str, smoke: bool) -> Any:
    from nasforge.train import load_cifar10
    from nasforge.train.data import SyntheticImages

    if not smoke and Path(path).exists():
        return load_cifar10(path)
    if not smoke:
        print(
            f"CIFAR-10 not found at {path!r}: using SyntheticImages (the figures are not CIFAR's)"
        )
    return SyntheticImages(num_classes=10, n_train=512, n_test=16, size=16).load()


def hypervolume_2d(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (accuracy up, kbit down) above ``ref`` = (acc, kbit)."""
    kept = sorted((k, a) for a, k in points if a > ref[0] and k < ref[1])
    area, best = 0.0, ref[0]
    for i, (kbit, acc) in enumerate(kept):
        best = max(best, acc)
        right = kept[i + 1][0] if i + 1 < len(kept) else ref[1]
        area += (right - kbit) * (best - ref[0])
    return area


def iteration_figures(trials: list[Any]) -> list[dict[str, Any]]:
    """Per LINAS iteration: the accuracy and size of its measured pairs, and how well the
    predictors ranked them (Kendall's tau of predicted against measured, within the batch)."""
    from nasforge.ranks import kendall

    out = []
    for it in sorted({int(t.metrics["simq_iteration"]) for t in trials}):
        batch = [t.metrics for t in trials if int(t.metrics["simq_iteration"]) == it]
        acc = [m["accuracy"] for m in batch]
        mbit = [m["model_bits"] / 1e6 for m in batch]
        line: dict[str, Any] = {
            "iteration": it, "pairs": len(batch), "acc_mean": float(np.mean(acc)),
            "acc_max": max(acc), "mbit_min": min(mbit), "mbit_mean": float(np.mean(mbit)),
        }  # fmt: skip
        if all("predicted_accuracy" in m for m in batch) and len(batch) > 1:
            for name in ("accuracy", "model_bits"):
                guess = [m[f"predicted_{name}"] for m in batch]
                line[f"tau_{name}"] = kendall(guess, [m[name] for m in batch])
        out.append(line)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--out", default="simq_front_out")
    parser.add_argument("--cache", default=None, help="supernet folder (default <out>/supernet)")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--data-fraction", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--precisions", default="int4,int8,fp32")
    parser.add_argument("--evaluations", type=int, default=100)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--inner-evaluations", type=int, default=2000)
    parser.add_argument("--valid-images", type=int, default=1000)
    parser.add_argument("--calibration-batches", type=int, default=4)
    parser.add_argument("--recalibration-batches", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny settings, synthetic data")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.evaluations, args.population = 1, 8, 4
        args.inner_evaluations, args.valid_images = 40, 64
        args.calibration_batches = args.recalibration_batches = 1
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(args.cache) if args.cache else out / "supernet"
    data = load_data(args.data, args.smoke)
    settings = TrainSettings.preset(
        SPACE, "reduced", width_mult=args.width, epochs=args.epochs,
        resolutions=(args.resolution,), data_fraction=1.0 if args.smoke else args.data_fraction,
        seed=args.seed, **({"steps_per_epoch": 2, "batch_size": 32} if args.smoke else {}),
    )  # fmt: skip
    began = time.perf_counter()
    train_supernet(SPACE, "uniform", data, folder, settings, device="cpu", threads=1)
    train_s = time.perf_counter() - began
    print(f"a) supernet {SPACE} width {args.width} at {args.resolution} px, uniform schedule, "
          f"{args.epochs} epochs: {folder} ({train_s:.0f} s this call)", flush=True)  # fmt: skip

    began = time.perf_counter()
    result = search_quantized_subnets(
        folder, data, precisions=args.precisions.split(","), evaluations=args.evaluations,
        population=args.population, inner_evaluations=args.inner_evaluations, seed=args.seed,
        valid_images=args.valid_images, calibration_batches=args.calibration_batches,
        recalibration_batches=args.recalibration_batches,
        storage=f"sqlite:///{out / 'simq.db'}", study_name=f"simq-seed{args.seed}",
    )  # fmt: skip
    search_s = time.perf_counter() - began
    trials = [t for t in result.study.trials if t.scores is not None]
    print(f"b) SimQ-NAS: {len(trials)} pairs measured ({args.precisions} per layer), "
          f"{len(result.iterations)} LINAS iterations, front of {len(result.front)} "
          f"({search_s:.0f} s)", flush=True)  # fmt: skip
    per_iteration = iteration_figures(trials)
    for line in per_iteration:
        print("   " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in line.items()))  # fmt: skip

    began = time.perf_counter()
    joint = result.space
    every = spaces.create(f"{SPACE}+quant", precisions=list(dict.fromkeys(UNIFORM)))
    ev = result.evaluator
    baseline = QuantizedSubnetEvaluator(
        ev.supernet, every, ev.data, recalibration_batches=ev.recalibration_batches,
        calibration_batches=ev.calibration_batches, valid_images=ev.valid_images,
    )  # fmt: skip
    front = sorted(result.front, key=lambda t: t.metrics["model_bits"])
    rows = []
    for trial in front:
        base, policy = joint.split(trial.arch)
        present = policy_of(ev.quantized(trial.arch)[0])  # the layers the sub-network has
        row: dict[str, Any] = {
            "arch": base.text,
            "policy": list(policy),
            "layers": {p: present.count(p) for p in joint.precisions},
            "searched": (trial.metrics["accuracy"], trial.metrics["model_bits"] / 1e3),
        }
        for precision in UNIFORM:
            arch = every.canonical(every.join(base, (precision,) * len(every.slots)))
            m = baseline.evaluate(arch).metrics
            row[precision] = (m["accuracy"], m["model_bits"] / 1e3)
        rows.append(row)
    base_s = time.perf_counter() - began
    print(f"c) uniform fp32/int8/int4/int2 of the {len(rows)} front architectures "
          f"({base_s:.0f} s)\n", flush=True)  # fmt: skip

    mix = "/".join(joint.precisions)
    print(f"| sub-network | {mix} layers | searched acc % / kbit | fp32 | int8 | int4 | int2 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = " | ".join(f"{r[k][0]:.1f} / {r[k][1]:.0f}" for k in ("searched", *UNIFORM))
        counts = "/".join(str(n) for n in r["layers"].values())
        print(f"| {_short(r['arch'])} | {counts} | {cells} |")
    beaten = sum(dominates(_oriented(r["int8"]), _oriented(r["searched"])) for r in rows)
    beats = sum(
        any(dominates(_oriented(s["searched"]), _oriented(r["int8"])) for s in rows) for r in rows
    )
    everything = [r[k] for r in rows for k in ("searched", *UNIFORM)]
    ref = (min(a for a, _ in everything) - 1.0, max(k for _, k in everything) * 1.05)
    volumes = {k: hypervolume_2d([r[k] for r in rows], ref) for k in ("searched", *UNIFORM)}
    union = np.array([_oriented(r[k]) for r in rows for k in ("searched", *UNIFORM)])
    on_front = [("searched", *UNIFORM)[i % 5] for i in front_indices(union)]
    print(
        f"\nuniform int8 of the same sub-network dominates {beaten}/{len(rows)} searched "
        f"pairs; a searched pair dominates {beats}/{len(rows)} uniform-int8 networks"
    )
    print("hypervolume (accuracy points x kbit, reference "
          f"{ref[0]:.1f} %, {ref[1]:.0f} kbit): "
          + ", ".join(f"{k} {v:.0f}" for k, v in volumes.items()))  # fmt: skip
    print("members of the joint front by family: "
          + ", ".join(f"{k} {on_front.count(k)}" for k in ("searched", *UNIFORM)))  # fmt: skip
    results = {
        "settings": vars(args),
        "seconds": {"train_this_call": train_s, "search": search_s, "baselines": base_s},
        "iterations": result.iterations,
        "per_iteration": per_iteration,
        "trials": [
            {"arch": t.arch.text, **{k: float(v) for k, v in t.metrics.items()}} for t in trials
        ],
        "front": rows,
        "int8_dominates_searched": beaten,
        "searched_dominates_int8": beats,
        "hypervolume": volumes,
        "hypervolume_reference": ref,
        "joint_front_members": {k: on_front.count(k) for k in ("searched", *UNIFORM)},
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out / 'results.json'}")


def _oriented(point: tuple[float, float]) -> tuple[float, float]:
    return (point[0], -point[1])


def _short(text: str) -> str:
    """``res=16;s1=e3k3,e3k3;s2=...`` as its blocks per stage, ``d=2,4,2,3,1``."""
    stages = [part.split("=", 1)[1] for part in text.split(";") if part.startswith("s")]
    return "d=" + ",".join(str(len(stage.split(","))) for stage in stages)


if __name__ == "__main__":
    main()
