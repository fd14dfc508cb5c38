"""Functional classes of the NAS-Bench-201 cells, checked against the benchmark's accuracies.

Prints how many classes the 15,625 cells fall into under nasforge's functional canonical form
(``nasforge.spaces._nb201_canonical``, with the BatchNorm-shift term kept and with it taken as
zero) and under NAS-Bench-201's own rule (NATS-Bench ``get_unique_str``, 6,466 classes).

If the accuracy table is there, it then prints two kinds of evidence. First, for each rule and
accuracy column, how much the accuracy varies inside a class, next to how much it varies over
the whole space: cells that compute the same function differ only by training noise. Second,
inside the classes that one rule merges and another splits, the mean absolute accuracy gap
between two cells that the other rule also puts together ("same") and between two cells that
it separates ("split"). Where the extra merges are functional, "split" is about as small as
"same"; where they are not, it is larger. Gaps are averaged per class first, so that large
classes do not dominate, and pairs with exactly equal accuracies are left out: the benchmark
trained cells that differ only in parameter-free dead edges with identical random streams, so
their results tie exactly, which would flatter "same".

Usage: PYTHONPATH=src python benchmarks/nb201_canonical_classes.py [--csv PATH]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path

from nasforge.spaces._nb201_canonical import (
    EDGES,
    NUM_CELLS,
    OP_NAMES,
    all_cells,
    canonical_ops,
    count_classes,
    count_paper_classes,
    paper_unique_ops,
)

Cell = tuple[int, ...]

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared/data/nb201/nb201_accuracy.csv.gz"
METRICS = ("cifar10_valid_acc", "cifar100_valid_acc", "imagenet16_valid_acc")
COST = "params_M_cifar10"
TIE = 1e-9

RULES: dict[str, Callable[[Cell], Cell]] = {
    "ours": canonical_ops,
    "ours-zero": lambda cell: canonical_ops(cell, keep_bn_bias=False),
    "paper": paper_unique_ops,
}
RULE_TEXT = {
    "ours": "canonical_ops, keep_bn_bias=True (default)",
    "ours-zero": "canonical_ops, keep_bn_bias=False",
    "paper": "paper_unique_ops (NATS-Bench get_unique_str)",
}
# (coarse rule, fine rule, what the coarse rule merges that the fine one does not)
CONTRASTS = (
    ("ours", "paper", "our merges the paper rule does not make"),
    ("paper", "ours-zero", "paper merges of one shared conv with two independent convs"),
    ("ours-zero", "ours", "conv of a zero node taken as zero, not as BN shift"),
)


def parse_arch(text: str) -> Cell:
    """An NB201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` as an op tuple in EDGES order."""
    groups = text.split("+")
    if len(groups) != 3:
        raise ValueError(f"Expected 3 node groups separated by '+', got {text!r}")
    ops: dict[tuple[int, int], int] = {}
    for node, group in enumerate(groups, start=1):
        for item in group.strip("|").split("|"):
            name, _, source = item.partition("~")
            ops[(int(source), node)] = OP_NAMES.index(name)
    if set(ops) != set(EDGES):
        raise ValueError(f"Expected the edges {EDGES}, got {sorted(ops)} in {text!r}")
    return tuple(ops[edge] for edge in EDGES)


def load(path: Path) -> dict[Cell, dict[str, float]]:
    """The accuracy and cost columns of the table, keyed by cell."""
    rows: dict[Cell, dict[str, float]] = {}
    with gzip.open(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            rows[parse_arch(row["arch"])] = {key: float(row[key]) for key in (*METRICS, COST)}
    if set(rows) != set(all_cells()):
        raise ValueError(f"{path} does not hold each of the {NUM_CELLS} cells exactly once")
    return rows


def classes(rule: Callable[[Cell], Cell]) -> dict[Cell, list[Cell]]:
    members: dict[Cell, list[Cell]] = {}
    for cell in all_cells():
        members.setdefault(rule(cell), []).append(cell)
    return members


def spread_line(groups: Mapping[Cell, list[Cell]], values: Mapping[Cell, float]) -> str:
    overall = statistics.pstdev(values.values())
    multi = [[values[cell] for cell in group] for group in groups.values() if len(group) > 1]
    sds = [statistics.pstdev(group) for group in multi]
    spreads = sorted(max(group) - min(group) for group in multi)
    total = len(values) * overall**2
    within = sum(len(group) * statistics.pvariance(group) for group in multi)
    return (
        f"{len(multi):6d} {overall:7.2f} {statistics.fmean(sds):8.3f} "
        f"{100 * within / total:7.3f}% {statistics.median(spreads):7.2f} "
        f"{spreads[int(0.95 * len(spreads))]:7.2f} {spreads[-1]:7.2f}"
    )


def contrast(
    coarse: Mapping[Cell, list[Cell]],
    fine: Mapping[Cell, Cell],
    values: Mapping[Cell, float],
) -> tuple[int, float, float, float, float]:
    """Per-class mean |gap| of "same" and "split" pairs, and their shares of exact ties."""
    same_means: list[float] = []
    split_means: list[float] = []
    ties = {"same": [0, 0], "split": [0, 0]}
    for group in coarse.values():
        same: list[float] = []
        split: list[float] = []
        for a, b in itertools.combinations(group, 2):
            kind = "same" if fine[a] == fine[b] else "split"
            gap = abs(values[a] - values[b])
            ties[kind][0] += gap < TIE
            ties[kind][1] += 1
            if gap >= TIE:
                (same if kind == "same" else split).append(gap)
        if same and split:
            same_means.append(statistics.fmean(same))
            split_means.append(statistics.fmean(split))
    return (
        len(same_means),
        statistics.fmean(same_means),
        statistics.fmean(split_means),
        ties["same"][0] / max(ties["same"][1], 1),
        ties["split"][0] / max(ties["split"][1], 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="nb201_accuracy.csv.gz")
    args = parser.parse_args()

    print("NAS-Bench-201 functional classes (nasforge.spaces._nb201_canonical)")
    print(f"  cells                                                {NUM_CELLS:6d}")
    counts = {
        "ours": count_classes(),
        "ours-zero": count_classes(keep_bn_bias=False),
        "paper": count_paper_classes(),
    }
    for name, count in counts.items():
        print(f"  classes, {RULE_TEXT[name]:44s} {count:6d}")

    if not args.csv.exists():
        print(f"\nNo accuracy table at {args.csv}; pass --csv to check the classes against one.")
        return
    rows = load(args.csv)
    labels = {name: {cell: rule(cell) for cell in all_cells()} for name, rule in RULES.items()}
    groups = {name: classes(label.__getitem__) for name, label in labels.items()}
    print(f"\nAccuracy table: {args.csv} (mean over the benchmark's seeds, 200 epochs)")
    print("Inside classes of 2+ cells: number of such classes, overall sd of the metric, mean")
    print("within-class sd, within-class share of the total sum of squares, and the median,")
    print("95th percentile and maximum of the within-class range (max - min), in points.")
    header = "classes  all sd  mean sd  within%  median     p95     max"
    for metric in METRICS:
        values = {cell: row[metric] for cell, row in rows.items()}
        print(f"\n  {metric:22s}  {'':9s} {header}")
        for name in RULES:
            print(f"  {'':22s}  {name:9s} {spread_line(groups[name], values)}")

    print("\nClasses one rule merges and another splits: mean |accuracy gap| of pairs that the")
    print("finer rule also merges (same) or separates (split); exact ties left out, their")
    print("shares shown.")
    for coarse, fine, text in CONTRASTS:
        print(f"\n  {coarse} vs {fine}: {text}")
        for metric in METRICS:
            values = {cell: row[metric] for cell, row in rows.items()}
            n, same, split, tie_same, tie_split = contrast(groups[coarse], labels[fine], values)
            print(
                f"    {metric:22s} classes {n:4d}  same {same:6.3f}  split {split:6.3f}  "
                f"split/same {split / same:5.2f}  ties same {tie_same:5.1%} split {tie_split:5.1%}"
            )

    params = {cell: row[COST] for cell, row in rows.items()}
    ranges = [
        max(params[c] for c in g) - min(params[c] for c in g) for g in groups["ours"].values()
    ]
    print(
        f"\nCost is not a class invariant (dead convolutions still count): {COST} differs inside"
        f" {sum(r > 0 for r in ranges)} of {len(ranges)} classes, by up to {max(ranges):.3f} M."
    )


if __name__ == "__main__":
    main()
