"""Build the NAS-Bench-201 table shipped inside the package from ../shared/data/nb201.

Usage: python scripts/build_nb201_data.py [SOURCE_DIR]

Reads the three CSV tables (accuracy, HW-NAS-Bench, HELP latency) described in the source
folder's README and writes ``src/nasforge/tabular/data/nb201.npz``: one array per column in
NAS-Bench-201 index order, plus ``ops`` (15,625 x 6 op indices in nasforge's order). Values
are stored as float64 and are not changed; missing values (HW-NAS-Bench ``edgetpu`` for some
cells) are NaN. HELP columns that duplicate an HW-NAS-Bench cifar10 column exactly are dropped.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "nasforge" / "tabular" / "data" / "nb201.npz"


def parse(text: str) -> tuple[int, ...]:
    ops = []
    for node in text.strip("|").split("|+|"):
        for edge in node.split("|"):
            op, _ = edge.split("~")
            ops.append(OPS.index(op))
    return tuple(ops)


def read(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    archs = [r["arch"] for r in rows]
    assert [int(r["arch_index"]) for r in rows] == list(range(len(rows))), path
    cols = {k: [r[k] for r in rows] for k in rows[0] if k not in ("arch_index", "arch")}
    return archs, cols


def floats(values: list[str]) -> np.ndarray:
    return np.array([float(v) if v != "" else np.nan for v in values], dtype=np.float64)


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "nb201"
    archs, acc = read(src / "nb201_accuracy.csv.gz")
    hw_archs, hw = read(src / "hw_nas_bench_nb201.csv.gz")
    help_archs, helpl = read(src / "help_latency_nb201.csv.gz")
    assert archs == hw_archs == help_archs, "the three tables must list the same cells in order"
    arrays: dict[str, np.ndarray] = {"ops": np.array([parse(a) for a in archs], dtype=np.uint8)}
    for name, values in acc.items():
        if name != "naslib_ops":
            arrays[f"acc/{name}"] = floats(values)
    for name, values in hw.items():
        arrays[f"hw/{name}"] = floats(values)
    for name, values in helpl.items():
        column = floats(values)
        device = name.removeprefix("lat_ms_")
        twin = arrays.get(f"hw/cifar10_{device}_latency")
        if twin is not None and np.array_equal(twin, column, equal_nan=True):
            continue  # identical to the HW-NAS-Bench cifar10 column
        arrays[f"help/{device}"] = column
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB, {len(arrays)} arrays), sha256 {digest}")


if __name__ == "__main__":
    main()
