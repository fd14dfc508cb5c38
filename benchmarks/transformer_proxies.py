"""Training-free transformer proxies against inherited and trained accuracy on vit-cifar.

Reads the sub-networks that ``benchmarks/vit_ranking.py`` measured (``--results``: its
``OUT/results.json``, a JSON list of records, or ``{"subnets": [...]}``), each with ``arch``
(the text of a ``vit-cifar`` architecture) and, where measured, ``inherited_acc`` (accuracy
inherited from the super-transformer; ViTAS's private class tokens and attention maps in
vit_ranking's records), ``inherited_acc_shared`` (from the AutoFormer-style shared one) and
``alone_acc`` (the same architecture trained alone); a missing key skips that column. Builds
each architecture at initialisation (PyTorch's default initialisation drawn from ``--seed``),
scores it with every transformer proxy (TF-TAS's ``dss`` and its two terms,
LiteTransformerSearch's ``decoder_params``) and the plain parameter count ``params`` on one
fixed batch of CIFAR-10 training images, and prints the Spearman (and Kendall) correlation
of each proxy with each accuracy and the number of sub-networks each is over (the issue
asks for at least 30).

    OMP_NUM_THREADS=1 python benchmarks/transformer_proxies.py --results OUT/results.json \
        --data ../shared/data/cifar10/cifar10-jpeg.tar.gz

``--synthetic`` scores on a Gaussian batch instead (the transformer proxies are data-free:
only the image shape is read, so their scores do not change; ``params`` neither).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SPACE = "vit-cifar"
PROXIES = ("dss", "synaptic_diversity", "synaptic_saliency", "decoder_params", "params")
COLUMNS = (
    ("inherited_acc", "inherited"),
    ("inherited_acc_shared", "inherited shared"),
    ("alone_acc", "trained alone"),
)


def read_results(path: Path) -> list[dict[str, Any]]:
    """The records of a results file: a list of dicts, or a dict holding one under
    ``subnets`` (or ``records`` / ``results``); records without ``arch`` are refused."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        sys.exit(f"Cannot read the results file {path}: {exc}")
    if isinstance(data, dict):
        key = next((k for k in ("subnets", "records", "results") if k in data), None)
        if key is None:
            sys.exit(
                f"{path} holds a JSON object with keys {sorted(data)}; expected a list of "
                "records or an object with a 'subnets' list."
            )
        data = data[key]
    if not isinstance(data, list) or not all(isinstance(r, dict) and "arch" in r for r in data):
        sys.exit(f"{path}: every record needs an 'arch' (the architecture text of {SPACE}).")
    return data


def column(records: list[dict[str, Any]], key: str) -> np.ndarray:
    """The records' values of ``key`` as floats, NaN where missing or not a number."""
    out = []
    for record in records:
        value = record.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        out.append(float(value) if ok else float("nan"))
    return np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="JSON of benchmarks/vit_ranking.py")
    parser.add_argument("--data", default=str(SHARED / "cifar10" / "cifar10-jpeg.tar.gz"))
    parser.add_argument("--synthetic", action="store_true", help="a Gaussian batch, no data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and batch seed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--proxies", default=",".join(PROXIES), help="comma-separated")
    parser.add_argument("--out", default=None, help="also write scores and figures as JSON")
    args = parser.parse_args()

    import torch

    from nasforge import proxies, spaces
    from nasforge.proxies.batches import load_batch
    from nasforge.ranks import kendall, spearman

    torch.set_num_threads(args.threads)
    names = [proxies.create(n).name for n in args.proxies.split(",") if n.strip()]
    records = read_results(Path(args.results))
    space = spaces.create(SPACE)
    archs = [space.parse(str(r["arch"])) for r in records]
    classes, side = space.default_input
    data = None if args.synthetic else args.data
    batch = load_batch(data, dataset="cifar10", batch_size=args.batch_size, seed=args.seed)
    if batch.image_shape[1:] != (side, side) or batch.num_classes != classes:
        shape, n = batch.image_shape, batch.num_classes
        sys.exit(f"A batch of {shape} images, {n} classes, does not fit {SPACE}.")

    start = time.perf_counter()
    scores = {name: np.empty(len(archs)) for name in names}
    for index, arch in enumerate(archs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            model = space.build(arch, num_classes=classes)
        values = proxies.compute(model, names, batch, seed=args.seed)
        for name in names:
            scores[name][index] = values[name]
        if (index + 1) % 10 == 0 or index + 1 == len(archs):
            done = time.perf_counter() - start
            print(f"  {index + 1}/{len(archs)} sub-networks, {done:.0f} s", file=sys.stderr)

    print(
        f"# {len(archs)} sub-networks of {SPACE} from {args.results}; built at initialisation "
        f"(seed {args.seed}); proxies on {batch.source}; {time.perf_counter() - start:.1f} s"
    )
    header = f"{'proxy':>20}"
    present = []
    for key, label in COLUMNS:
        acc = column(records, key)
        known = ~np.isnan(acc)
        if known.sum() < 2:
            print(f"# no '{key}' in the records (or fewer than 2): column '{label}' skipped")
            continue
        present.append((key, label, acc, known))
        header += f" | {label + ' rho':>20} {'tau':>6} {'n':>4}"
    print(header)
    figures: dict[str, dict[str, Any]] = {}
    for name in names:
        line = f"{name:>20}"
        figures[name] = {}
        for key, _label, acc, known in present:
            rho = spearman(scores[name][known], acc[known])
            tau = kendall(scores[name][known], acc[known])
            n = int(known.sum())
            figures[name][key] = {"spearman": rho, "kendall": tau, "n": n}
            line += f" | {rho:>20.3f} {tau:>6.3f} {n:>4d}"
        print(line)
    if args.out:
        payload = {
            "space": SPACE,
            "results": str(args.results),
            "seed": args.seed,
            "batch": batch.source,
            "figures": figures,
            "scores": [
                {"arch": str(a), **{n: float(scores[n][i]) for n in names}}
                for i, a in enumerate(archs)
            ],
        }
        Path(args.out).write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
