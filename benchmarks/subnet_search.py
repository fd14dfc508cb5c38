"""Sub-network search on a trained elastic supernet under latency targets (issue 19's figures).

On a supernet folder trained by ``nasforge supernet train`` or
:func:`nasforge.elastic.train_supernet` (``ofa-cifar``; any ``ofa`` space works), the script:

a) measures a per-layer latency table of THIS machine (PyTorch eager, batch 1, one thread, the
   median of ``--runs`` passes after ``--warmup``, calibrated on ``--calibration`` whole sub-
   networks) for every layer a sub-network can have: the layers of the probe networks
   :class:`~nasforge.evaluators.supernet.SubnetCosts` prices the space with (the same set as
   ``OFASpace.layer_specs()``), checked to cover the layers of ``--check`` random sub-networks;
   every resolution of the space is in it (the search keeps to the trained ones). The table is
   written as ``<out>/cpu-torch-lut.csv`` (device ``cpu-torch-lut``; ``--table CSV`` reuses
   one, measuring only what it lacks) and checked against ``--table-check`` random sub-networks
   at the trained resolutions measured here (MAPE and mean signed error);
b) for three latency targets on that table, the 25th, 50th and 75th percentiles
   (``--percentiles``) of the table latencies of ``--candidates`` random sub-networks at the
   trained resolutions, runs :func:`nasforge.elastic.search.search_subnets` (Once-for-All's
   accuracy predictor and evolution) with ``latency_ms[cpu-torch-lut]<=T``, then measures the
   chosen sub-network here: ``supernet.extract(arch)`` timed by
   :func:`nasforge.hardware.measure_latency` as the table's layers were (PyTorch, batch 1,
   one thread, ``--warmup`` untimed passes), the median of ``--measure-runs`` passes;
c) runs one search under a latency measured here directly, ``latency_ms[cpu-torch]<=T`` with
   ``T`` the ``--measured-percentile`` target (the supernet evaluator times every measured
   sub-network; the evolution checks a ridge model fitted to those times), and measures the
   chosen one again as in b);
d) times :meth:`~nasforge.elastic.search.SubnetScorer.score` on ``--candidates`` random
   candidates (``random_rows``) with the scorer of a search of b) (predictor and table-latency
   constraint) and of c) (predictor and the measured-latency model): exactly the batched
   scoring each generation of the evolution does (the issue's bound: 1,000 in 60 s);
e) prints a Markdown table of every figure and writes ``<out>/subnet_search.json``.

Every search is a study in ``<out>/subnet_search.db`` (started afresh each run). The three
table searches and the measured one draw the same ``--measured`` random sub-networks (same
seed): a sub-network's inherited accuracy (after batch-norm recalibration, deterministic) is
measured once and reused by the later searches, so their wall time counts only what they
measured anew (printed).

The supernet's data: ``data.json`` in its folder (written by ``nasforge supernet train``),
else ``--data`` / ``--dataset`` (the CIFAR-10 archive by default), as ``nasforge supernet
search`` finds it.

Latency figures need a quiet machine (the load average is printed); ``--malloc steady`` (the
default) keeps PyTorch's freed activations in the heap, as ``benchmarks/mobile_latency_lut.py``
explains. Run with one thread everywhere:

    OMP_NUM_THREADS=1 python benchmarks/subnet_search.py --supernet DIR [--out DIR]

A smoke run (tiny settings; the figures mean nothing):

    OMP_NUM_THREADS=1 python benchmarks/subnet_search.py --supernet DIR --runs 3 \
        --measure-runs 5 --calibration 1 --measured 4 --population 8 --generations 3 \
        --top-k 2 --predictor-epochs 20 --valid-images 32 --recalibration-batches 1
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from nasforge import __version__
from nasforge.architecture import Architecture
from nasforge.evaluators.supernet import SubnetCosts, SupernetEvaluator
from nasforge.hardware.machine import load_average, steady_malloc

DEFAULT_DATA = "../shared/data/cifar10/cifar10-jpeg.tar.gz"
DATA_FILE = "data.json"  # what nasforge supernet train records of its data
MEASURED_METRIC = "latency_ms[cpu-torch]"


# -- the supernet's data and evaluators ---------------------------------------------------------
def data_source(folder: Path, data: str | None, dataset: str | None) -> dict[str, Any]:
    """How the supernet's images are read: ``--data``/``--dataset`` when given, else what
    ``nasforge supernet train`` recorded in the folder, else the CIFAR-10 archive."""
    path = folder / DATA_FILE
    if data is None and dataset is None and path.is_file():
        return dict(json.loads(path.read_text()))
    kind = dataset or "cifar10"
    if kind == "synthetic":
        return {"dataset": kind}
    return {"dataset": kind, "data": str(Path(data or DEFAULT_DATA).expanduser().resolve())}


class SharedAccuracy(SupernetEvaluator):
    """The supernet evaluator, with the inherited accuracy of each sub-network computed once
    and shared by every evaluator given the same ``memo`` (it is deterministic: fixed
    recalibration and validation images), so the searches do not measure it again."""

    def __init__(self, folder: Path, memo: dict[str, float], **params: Any) -> None:
        super().__init__(folder, **params)
        self.memo = memo
        self.fresh = 0

    def accuracy(self, arch: Architecture) -> float:
        if arch.text not in self.memo:
            self.memo[arch.text] = super().accuracy(arch)
            self.fresh += 1
        return self.memo[arch.text]


# -- a) the latency table -----------------------------------------------------------------------
def every_layer(costs: SubnetCosts) -> list[Any]:
    """The distinct layers of every sub-network: those of the probe networks of each
    resolution (every stage at its largest depth, one kernel and one expansion in every
    block), which :class:`SubnetCosts` prices the space with."""
    from nasforge.hardware.layer_lut import distinct_layers

    specs: list[Any] = []
    deepest = int(np.argmax(costs.depth_options))
    for r in range(len(costs.resolutions)):
        for k in range(costs.n_kernels):
            for e in range(costs.n_expansions):
                choices = np.zeros(len(costs.decisions), dtype=int)
                choices[costs.res_col] = r
                choices[costs.depth_cols] = deepest
                choices[costs.kernel_cols] = k
                choices[costs.expansion_cols] = e
                specs.extend(costs.layers(costs.space.from_choices(choices.tolist())))
    return distinct_layers(specs)


def latency_table(args: argparse.Namespace, costs: SubnetCosts, out: Path) -> tuple[Any, dict]:
    """Measure (or read and complete) the table of every layer; returns it and its figures."""
    from nasforge.hardware import LayerLatencyTable, measure_table

    specs = every_layer(costs)
    rng = np.random.default_rng(args.seed + 2)
    checked = [costs.space.sample(rng) for _ in range(args.check)]
    known = {s.key for s in specs}
    absent = {s.key for a in checked for s in costs.layers(a)} - known
    if absent:
        raise SystemExit(
            f"The enumerated layers miss {len(absent)} layers of random sub-networks (e.g. "
            f"{sorted(absent)[0]}): the space's blocks are not Once-for-All's skeleton."
        )
    base = None if args.table is None else LayerLatencyTable.from_csv(args.table)
    todo = specs if base is None else base.missing(specs)
    print(
        f"a) latency table: {len(specs)} distinct layers at resolutions "
        f"{list(costs.resolutions)} (cover the layers of {args.check} random sub-networks), "
        f"{len(todo)} to measure; PyTorch, batch 1, 1 thread, median of {args.runs} passes "
        f"after {args.warmup}; load average {load_average()}",
        flush=True,
    )
    started, last = time.perf_counter(), [time.perf_counter()]

    def progress(done: int, total: int, what: str) -> None:
        if time.perf_counter() - last[0] > 30 or done == total:
            last[0] = time.perf_counter()
            print(f"  measured {done}/{total} ({last[0] - started:.0f} s)", flush=True)

    if base is not None and not todo:
        table = base
    else:
        table = measure_table(
            costs.space,
            todo,
            backend="torch",
            threads=1,
            runs=args.runs,
            warmup=args.warmup,
            build=costs.build,
            calibration=args.calibration if base is None else 0,
            seed=args.seed + 1,
            table=base,
            progress=progress,
        )
    seconds = time.perf_counter() - started
    path = table.to_csv(out / f"{table.name}.csv")
    print(
        f"  {len(table)} entries, fixed part {table.fixed_ms:+.4f} ms, in-network factor "
        f"{table.factor:.3f} ({seconds:.0f} s): {path}"
    )
    figures = {
        "name": table.name,
        "csv": str(path),
        "layers": len(table),
        "measured_now": len(todo),
        "fixed_ms": table.fixed_ms,
        "factor": table.factor,
        "seconds": seconds,
        "resolutions": list(costs.resolutions),
    }
    return LayerLatencyTable.from_csv(path), figures


def table_error(
    evaluator: SupernetEvaluator, rows: np.ndarray, metric: str, args: argparse.Namespace
) -> dict[str, Any]:
    """The table against sub-networks measured here: the first ``--table-check`` of ``rows``
    (random, at the trained resolutions), each timed with ``--runs`` passes."""
    space, costs = evaluator.costs.space, evaluator.costs
    rows = rows[: args.table_check]
    predicted = costs.batch(rows)[metric]
    measured = np.array([measure_here(evaluator, space.from_choices(r.tolist()), args, args.runs)
                         for r in rows])  # fmt: skip
    error = (predicted - measured) / measured * 100
    figures = {
        "networks": len(rows),
        "mape": float(np.abs(error).mean()),
        "max_ape": float(np.abs(error).max()),
        "mean_signed": float(error.mean()),
        "measured_min": float(measured.min()),
        "measured_max": float(measured.max()),
    }
    print(
        f"  the table on {len(rows)} random sub-networks measured here ({measured.min():.3f}-"
        f"{measured.max():.3f} ms): MAPE {figures['mape']:.1f}%, worst {figures['max_ape']:.1f}%,"
        f" mean signed error {figures['mean_signed']:+.1f}%",
        flush=True,
    )
    return figures


# -- b), c) the searches ------------------------------------------------------------------------
def measure_here(
    evaluator: SupernetEvaluator,
    arch: Architecture,
    args: argparse.Namespace,
    runs: int | None = None,
) -> float:
    """Median latency (ms) of ``arch``'s extracted network here, timed as the table's layers
    were (PyTorch eager, batch 1, one thread, ``--warmup`` untimed passes, ``runs`` timed:
    ``--measure-runs`` by default)."""
    from nasforge.hardware import measure_latency

    net = evaluator.trained().supernet.extract(arch).eval()
    side = int(evaluator.costs.space.resolution(arch))
    timing = measure_latency(
        net, (3, side, side), runs=runs or args.measure_runs, warmup=args.warmup, threads=1,
        backend="torch",
    )  # fmt: skip
    return float(timing.median_ms)


def search(
    evaluator: SharedAccuracy,
    constraint: str,
    name: str,
    args: argparse.Namespace,
    storage: str,
) -> tuple[Any, float, int]:
    """One Once-for-All search; returns its result, wall seconds and fresh accuracies."""
    from nasforge.elastic.search import search_subnets

    before = evaluator.fresh
    started = time.perf_counter()
    result = search_subnets(
        evaluator,
        constraints=[constraint],
        storage=storage,
        study_name=name,
        measured=args.measured,
        population=args.population,
        generations=args.generations,
        top_k=args.top_k,
        predictor_epochs=args.predictor_epochs,
        seed=args.seed,
    )
    seconds = time.perf_counter() - started
    fresh = evaluator.fresh - before
    print(
        f"  {constraint}: {seconds:.1f} s ({len(result.study.trials)} sub-networks in the "
        f"study, {fresh} accuracies measured anew); chosen {result.arch.text}",
        flush=True,
    )
    return result, seconds, fresh


def row_of(result: Any, target: float, seconds: float, fresh: int) -> dict[str, Any]:
    metrics = result.metrics
    return {
        "target_ms": target,
        "arch": result.arch.text,
        "resolution": int(result.arch.text.split(";")[0].split("=")[1]),
        "valid_acc": metrics.get("valid_acc"),
        "predicted_acc": result.predicted,
        "macs_M": metrics.get("macs_M"),
        "search_s": seconds,
        "accuracies_measured": fresh,
        "trials": len(result.study.trials),
    }


# -- d) scoring 1,000 candidates ----------------------------------------------------------------
def time_scoring(scorer: Any, costs: SubnetCosts, args: argparse.Namespace) -> dict[str, Any]:
    """Seconds of ``scorer.score`` on ``--candidates`` random candidates (first call and the
    median of ``--score-repeats``), as each generation of the evolution scores them."""
    from nasforge.elastic.search import random_rows

    rows = random_rows(costs, args.candidates, np.random.default_rng(args.seed + 3))
    times, feasible = [], 0
    for _ in range(args.score_repeats):
        started = time.perf_counter()
        scores = scorer.score(rows)
        times.append(time.perf_counter() - started)
        feasible = int(np.sum(scores.feasible))
    return {
        "candidates": len(rows),
        "first_s": times[0],
        "median_s": float(np.median(times)),
        "feasible": feasible,
    }


# -- e) the report ------------------------------------------------------------------------------
def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| search | constraint | target ms | predicted (table) ms | measured ms | met | "
        "res | MACs M | valid_acc % (predicted) | search s (accuracies measured) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["searches"]:
        accuracy = f"{_f(row['valid_acc'], 2)} ({_f(row['predicted_acc'], 2)})"
        lines.append(
            f"| {row['label']} | `{row['constraint']}` | {_f(row['target_ms'])} | "
            f"{_f(row.get('predicted_ms'))} | {_f(row['measured_ms'])} | "
            f"{'yes' if row['met'] else 'NO'} | {row['resolution']} | {_f(row['macs_M'], 2)} | "
            f"{accuracy} | {_f(row['search_s'], 1)} ({row['accuracies_measured']}) |"
        )
    check = report["table"]["check"]
    lines += [
        "",
        f"Table {report['table']['name']}: {report['table']['layers']} layers; on "
        f"{check['networks']} random sub-networks measured here, MAPE {check['mape']:.1f}%, "
        f"worst {check['max_ape']:.1f}%, mean signed error {check['mean_signed']:+.1f}%.",
    ]
    lines += ["", "| scoring | candidates | first call s | median s | feasible | bound s |"]
    lines.append("|---|---|---|---|---|---|")
    for label, s in report["scoring"].items():
        lines.append(
            f"| {label} | {s['candidates']} | {s['first_s']:.4f} | {s['median_s']:.4f} | "
            f"{s['feasible']} | 60 |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--supernet", required=True, help="folder of a trained supernet")
    parser.add_argument("--data", default=None, help=f"its data (default: {DATA_FILE}, else "
                        f"{DEFAULT_DATA})")  # fmt: skip
    parser.add_argument("--dataset", default=None, help="cifar10, folder or synthetic")
    parser.add_argument("--out", default="/tmp/subnet_search", help="folder of the results")
    parser.add_argument("--table", default=None, help="reuse this table CSV (completed here)")
    parser.add_argument("--runs", type=int, default=50, help="timed passes per table entry")
    parser.add_argument("--warmup", type=int, default=10, help="untimed passes before")
    parser.add_argument("--measure-runs", type=int, default=200,
                        help="timed passes of a chosen sub-network")  # fmt: skip
    parser.add_argument("--calibration", type=int, default=5, help="calibration networks")
    parser.add_argument("--check", type=int, default=100,
                        help="random sub-networks whose layers the table must cover")  # fmt: skip
    parser.add_argument("--table-check", type=int, default=20,
                        help="random sub-networks measured to check the table")  # fmt: skip
    parser.add_argument("--percentiles", default="25,50,75", help="table-latency targets")
    parser.add_argument("--measured-percentile", type=float, default=50.0,
                        help="the target of the search under a latency measured here")  # fmt: skip
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--score-repeats", type=int, default=5)
    parser.add_argument("--measured", type=int, default=100, help="random sub-networks measured")
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--generations", type=int, default=500)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--predictor-epochs", type=int, default=300)
    parser.add_argument("--recalibration-batches", type=int, default=8)
    parser.add_argument("--valid-images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--malloc", choices=("steady", "default"), default="steady")
    args = parser.parse_args()
    allocator = steady_malloc() if args.malloc == "steady" else "default"

    import torch

    from nasforge.elastic._train import trained_resolutions

    torch.set_num_threads(1)
    folder = Path(args.supernet).expanduser().resolve()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "subnet_search.db"
    db.unlink(missing_ok=True)
    storage = f"sqlite:///{db}"
    source = data_source(folder, args.data, args.dataset)
    params = {
        **source,
        "recalibration_batches": args.recalibration_batches,
        "valid_images": args.valid_images,
    }
    memo: dict[str, float] = {}
    plain = SharedAccuracy(folder, memo, **params)
    trained = plain.trained()
    sides = trained_resolutions(trained.space, trained.settings)
    run = plain.manifest["run"]
    load_before = load_average()
    print(
        f"nasforge {__version__}, torch {torch.__version__}, {platform.processor() or '?'} "
        f"({os.cpu_count()} CPUs), Python {platform.python_version()}; malloc: {allocator}"
    )
    print(
        f"supernet {folder}: {run['schedule']} on {run['space']}, width {plain.width_mult}, "
        f"trained at {list(sides)} px, {plain.num_classes} classes; data {source}"
    )
    print(
        f"search: {args.measured} measured, population {args.population}, {args.generations} "
        f"generations, top {args.top_k}, predictor {args.predictor_epochs} epochs, "
        f"{args.recalibration_batches} recalibration batches, {args.valid_images} images, "
        f"seed {args.seed}"
    )
    table, table_figures = latency_table(args, plain.costs, out)
    metric = table.metric
    with_table = SharedAccuracy(folder, memo, **params, tables=[table_figures["csv"]])
    costs = with_table.costs
    # targets: percentiles of the table latency of random sub-networks at the trained sides
    from nasforge.elastic.search import random_rows

    rng = np.random.default_rng(args.seed)
    rows = random_rows(costs, args.candidates, rng)
    allowed = [costs.resolutions.index(s) for s in sides]
    rows[:, costs.res_col] = rng.choice(allowed, size=len(rows))
    latencies = costs.batch(rows)[metric]
    table_figures["check"] = table_error(with_table, rows, metric, args)
    percentiles = [float(p) for p in args.percentiles.split(",")]
    targets = [float(np.percentile(latencies, p)) for p in percentiles]
    print(
        f"b) targets on {metric}: percentiles {percentiles} of {len(rows)} random "
        f"sub-networks at {list(sides)} px (range {latencies.min():.3f}-"
        f"{latencies.max():.3f} ms): {[round(t, 4) for t in targets]}",
        flush=True,
    )
    searches, scorers = [], {}
    for p, target in zip(percentiles, targets, strict=True):
        constraint = f"{metric}<={target:.4f}"
        result, seconds, fresh = search(with_table, constraint, f"table-p{p:g}", args, storage)
        measured = measure_here(with_table, result.arch, args)
        row = row_of(result, float(f"{target:.4f}"), seconds, fresh)
        row.update(
            label=f"table p{p:g}",
            constraint=constraint,
            predicted_ms=result.constraints[metric],
            measured_ms=measured,
            met=measured <= row["target_ms"],
        )
        print(
            f"    predicted {row['predicted_ms']:.3f} ms, measured {measured:.3f} ms: "
            f"{'met' if row['met'] else 'NOT met'}",
            flush=True,
        )
        searches.append(row)
        scorers.setdefault("predictor + table latency", (result.scorer, costs))
    # c) a target on the latency measured here
    target = float(np.percentile(latencies, args.measured_percentile))
    here = SharedAccuracy(folder, memo, **params, measure=True, runs=args.runs)
    constraint = f"{MEASURED_METRIC}<={target:.4f}"
    print(f"c) target measured here: {constraint}", flush=True)
    result, seconds, fresh = search(here, constraint, "measured", args, storage)
    again = measure_here(here, result.arch, args)
    row = row_of(result, float(f"{target:.4f}"), seconds, fresh)
    in_search = result.constraints[MEASURED_METRIC]
    row.update(
        label=f"measured p{args.measured_percentile:g}",
        constraint=constraint,
        predicted_ms=None,
        measured_in_search_ms=in_search,
        measured_ms=again,
        met=again <= row["target_ms"],
    )
    print(
        f"    measured {in_search:.3f} ms in the search ({args.runs} passes), {again:.3f} ms "
        f"again ({args.measure_runs} passes): {'met' if row['met'] else 'NOT met'}",
        flush=True,
    )
    searches.append(row)
    scorers["predictor + measured-latency model"] = (result.scorer, here.costs)
    # d) scoring
    scoring = {}
    for label, (scorer, its_costs) in scorers.items():
        scoring[label] = time_scoring(scorer, its_costs, args)
        s = scoring[label]
        print(
            f"d) {label}: {s['candidates']} candidates scored in {s['first_s']:.4f} s (median "
            f"of {args.score_repeats}: {s['median_s']:.4f} s; {s['feasible']} feasible)"
        )
    report = {
        "settings": {
            **vars(args),
            "supernet": str(folder),
            "data": source,
            "trained_resolutions": list(sides),
            "width_mult": plain.width_mult,
            "schedule": run["schedule"],
            "space": run["space"],
            "malloc": allocator,
        },
        "machine": {
            "nasforge": __version__,
            "torch": torch.__version__,
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": load_average(),
        },
        "table": table_figures,
        "targets_from": {
            "percentiles": percentiles,
            "latency_min": float(latencies.min()),
            "latency_max": float(latencies.max()),
        },
        "searches": searches,
        "scoring": scoring,
    }
    text = markdown(report)
    print(f"\n{text}\n\nload average {load_before} before, {load_average()} after")
    (out / "subnet_search.md").write_text(text + "\n")
    path = out / "subnet_search.json"
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"written: {path}, {out / 'subnet_search.md'}, {table_figures['csv']}")


if __name__ == "__main__":
    main()
