"""A fingerprint of short one-shot searches, to check that a change leaves them bit for bit.

Runs every one-shot method for two epochs on synthetic images (NB201 and DARTS supernets, 4
channels, CPU, one thread) and writes, per run, every trial's architecture and metrics
(search statistics such as ``train_loss`` and ``param_free_weight``, and the evaluator's
metrics; wall times left out). Run it on two checkouts and compare the files:

    PYTHONPATH=old/src python benchmarks/oneshot_fingerprint.py --out old.json
    python benchmarks/oneshot_fingerprint.py --out new.json --compare old.json

DARTS runs are scored by the training evaluator on synthetic images with NAS-Bench-201's
recipe given explicitly (the DARTS space's own default recipe has an auxiliary head that 8x8
images cannot carry); DARTS-PT on DARTS is left out (36 decisions: minutes).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from nasforge import evaluators, oneshot
from nasforge.oneshot import SupernetSettings
from nasforge.train import SyntheticImages

METHODS = [
    ("darts", {}),
    ("darts", {"order": 2}),
    ("single-level-darts", {}),
    ("gdas", {}),
    ("pc-darts", {"k": 2, "warmup_epochs": 1}),
    (
        "spos",
        {"population": 4, "generations": 2, "top_k": 2, "recal_images": 16, "eval_images": 16},
    ),
    ("darts-pt", {"proj_intv": 1, "proj_images": 16}),
]


def fingerprint() -> dict[str, list[object]]:
    torch.set_num_threads(1)
    data = SyntheticImages(num_classes=4, n_train=96, n_test=4, size=8).load()
    out: dict[str, list[object]] = {}
    for space in ("nb201", "darts"):
        for method, params in METHODS:
            if space == "darts" and method == "darts-pt":
                continue
            evaluator = None
            if space == "darts":
                evaluator = evaluators.create(
                    "train",
                    dataset="synthetic",
                    space="darts",
                    synthetic={"num_classes": 4, "n_train": 16, "n_test": 4, "size": 8},
                    epochs=1,
                    channels=2,
                    layers=5,
                    recipe="nb201",
                    hardware=False,
                    device="cpu",
                    threads=1,
                )
            result = oneshot.search(
                method,
                data,
                space=space,
                params=params,
                settings=SupernetSettings(
                    channels=4, cells=1 if space == "nb201" else 5, batch_size=16
                ),
                epochs=2,
                device="cpu",
                evaluator=evaluator,
            )
            key = f"{space}/{method}/{json.dumps(params, sort_keys=True)}"
            out[key] = [
                (str(t.arch), {k: v for k, v in sorted(t.metrics.items()) if k != "search_seconds"})
                for t in result.study.trials
            ]
            print(f"{key}: {len(out[key])} trials", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write the fingerprint to")
    parser.add_argument("--compare", help="another fingerprint to compare with")
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="METRIC",
        help="leave a metric out of the comparison (repeatable), e.g. one whose definition "
        "changed between the checkouts",
    )
    args = parser.parse_args(argv)
    mine = fingerprint()
    with open(args.out, "w") as handle:
        json.dump(mine, handle, indent=1, sort_keys=True)
    if args.compare is None:
        return 0
    with open(args.compare) as handle:
        theirs = json.load(handle)

    def kept(runs: dict[str, list[object]], key: str) -> list[object] | None:
        if key not in runs:
            return None
        return [
            [arch, {k: v for k, v in metrics.items() if k not in args.ignore}]
            for arch, metrics in runs[key]  # type: ignore[misc]
        ]

    mine = json.loads(json.dumps(mine))  # tuples as lists, as read back
    differing = 0
    for key in sorted(set(mine) | set(theirs)):
        same = kept(mine, key) == kept(theirs, key)
        differing += not same
        print(f"{'same     ' if same else 'DIFFERENT'} {key}")
    print(f"{len(mine)} runs, {differing} differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
