"""Generic functional hashing checked against the hand-written canonical forms.

NAS-Bench-201: builds the network of every one of the 15,625 cells (the space's ``reduced``
preset: 8 channels, 1 cell per stage, 16x16 input), hashes it with
``nasforge.spaces._functional_hash.architecture_hash`` (torch.fx trace, symbolic normal form,
no weight read) and compares the partition of the cells by hash with the classes of
``nasforge.spaces._nb201_canonical.canonical_ops`` (``keep_bn_bias=True``, 5,234 classes).
Prints the number of classes each way, every canonical class the hash splits and every hash
class that merges canonical classes, with the cells' functional forms.

DARTS: for random genotypes (``DartsSpace.sample``), hashes the genotype, a random relabelling
of each cell's intermediate nodes with the edges of each node in random order (equal under
``DartsSpace.canonical``), and a random neighbour (``DartsSpace.mutate``); hash equality must
agree with canonical equality for every pair, and all the genotypes' classes must be distinct.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/functional_hash_classes.py
       [--limit N] [--every K] [--darts N] [--seed S]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence

import numpy as np

from nasforge.spaces._functional_hash import architecture_hash
from nasforge.spaces._nb201_canonical import all_cells, canonical_ops, functional_form
from nasforge.spaces.darts import DartsSpace
from nasforge.spaces.nb201 import NB201Space

Cell = tuple[int, ...]


def nb201(limit: int | None, every: int) -> int:
    space = NB201Space()
    cells = list(all_cells())[:limit:every]
    hashes: dict[Cell, str] = {}
    start = time.perf_counter()
    for i, cell in enumerate(cells, start=1):
        hashes[cell] = architecture_hash(space, space.from_choices(cell))
        if i % 1000 == 0 or i == len(cells):
            elapsed = time.perf_counter() - start
            print(f"  {i:6d}/{len(cells)} cells  {i / elapsed:6.1f} cells/s  {elapsed:6.1f} s")
    seconds = time.perf_counter() - start
    by_canonical: dict[Cell, set[str]] = {}
    by_hash: dict[str, set[Cell]] = {}
    for cell, key in hashes.items():
        by_canonical.setdefault(canonical_ops(cell), set()).add(key)
        by_hash.setdefault(key, set()).add(canonical_ops(cell))
    splits = {rep: keys for rep, keys in by_canonical.items() if len(keys) > 1}
    merges = {key: reps for key, reps in by_hash.items() if len(reps) > 1}
    print(
        f"NB201: {len(cells)} cells hashed in {seconds:.1f} s ({len(cells) / seconds:.1f} cells/s)"
    )
    print(f"  canonical classes (keep_bn_bias=True): {len(by_canonical)}")
    print(f"  hash classes:                          {len(by_hash)}")
    print(f"  canonical classes split by the hash:   {len(splits)}")
    print(f"  hash classes merging canonical ones:   {len(merges)}")
    for rep, keys in sorted(splits.items()):
        members = [c for c in cells if canonical_ops(c) == rep]
        print(f"  SPLIT {rep} form {functional_form(rep)}: {len(keys)} hashes")
        for key in sorted(keys):
            print(f"    {key}: {[c for c in members if hashes[c] == key][:6]}")
    for key, reps in sorted(merges.items()):
        print(f"  MERGED by hash {key}:")
        for rep in sorted(reps):
            print(f"    {rep} form {functional_form(rep)}")
    return len(splits) + len(merges)


def relabel(space: DartsSpace, choices: Sequence[int], rng: np.random.Generator) -> tuple[int, ...]:
    """A random relabelling of each cell's intermediate nodes and of each node's edge order."""
    out: list[int] = []
    for cell in range(2):
        part = choices[16 * cell : 16 * cell + 16]
        nodes = [
            ((part[4 * k], part[4 * k + 1]), (part[4 * k + 2], part[4 * k + 3])) for k in range(4)
        ]
        valid = []
        for order in itertools.permutations(range(4)):
            position = {old: new for new, old in enumerate(order)}
            if all(
                source < 2 or position[source - 2] < position[k]
                for k in range(4)
                for source, _ in nodes[k]
            ):
                valid.append((order, position))
        order, position = valid[int(rng.integers(len(valid)))]
        for old in order:
            edges = [(s if s < 2 else position[s - 2] + 2, op) for s, op in nodes[old]]
            if rng.random() < 0.5:
                edges.reverse()
            out += [edges[0][0], edges[0][1], edges[1][0], edges[1][1]]
    return tuple(out)


def darts(count: int, seed: int) -> int:
    space = DartsSpace()
    rng = np.random.default_rng(seed)
    failures = 0
    pairs = {"relabelled": [0, 0], "neighbour": [0, 0]}
    start = time.perf_counter()
    keys: dict[str, object] = {}
    for _ in range(count):
        arch = space.sample(rng)
        base = architecture_hash(space, arch)
        keys.setdefault(base, space.canonical(arch))
        if keys[base] != space.canonical(arch):
            failures += 1
            print(f"  MERGED distinct genotypes: {arch} and {keys[base]}")
        for kind, other in (
            ("relabelled", space.from_choices(relabel(space, arch.choices, rng))),
            ("neighbour", space.mutate(arch, rng)),
        ):
            same_canonical = space.canonical(other) == space.canonical(arch)
            same_hash = architecture_hash(space, other) == base
            pairs[kind][int(same_canonical)] += 1
            if same_canonical != same_hash:
                failures += 1
                print(
                    f"  DISAGREE ({kind}): canonical equal={same_canonical}, hash equal={same_hash}"
                )
                print(f"    {arch}\n    {other}")
    seconds = time.perf_counter() - start
    print(f"DARTS: {count} random genotypes (seed {seed}), {3 * count} hashes in {seconds:.1f} s")
    for kind, (distinct, equal) in pairs.items():
        print(f"  {kind:10s} pairs: {equal} canonically equal, {distinct} distinct")
    print(f"  pairs where hash equality disagrees with canonical equality: {failures}")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="hash only the first N NB201 cells")
    parser.add_argument("--every", type=int, default=1, help="hash every K-th NB201 cell")
    parser.add_argument("--darts", type=int, default=200, help="random DARTS genotypes (0: skip)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the DARTS genotypes")
    args = parser.parse_args()
    print("settings: architecture_hash defaults (the space's 'reduced' preset), one process")
    problems = nb201(args.limit, args.every)
    if args.darts:
        problems += darts(args.darts, args.seed)
    print("RESULT:", "agreement" if problems == 0 else f"{problems} disagreement(s)")


if __name__ == "__main__":
    main()
