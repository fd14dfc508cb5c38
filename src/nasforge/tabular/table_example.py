"""The made-up benchmark table nasforge ships (``tabular/data/example_table.csv``) and the
function that makes it, for examples, tests and ``benchmarks/table_compare.py``.

Nothing in it was measured: a cell of five operation slots (3 to 5 options each, ``"none"``
among them), 500 architectures drawn from the 1200 of the product, each at 12 and 200 training
epochs. The accuracy is a smooth made-up function of the operations (each slot adds a
weighted quality of its operation, two convolutions at both ends add a bonus, and the sum
saturates) plus noise; the 12-epoch accuracy is lower, noisier and favours shallow cells.
``params_M`` follows the operations, ``train_seconds`` the parameters, depth and epochs.

Example:
    >>> table = example_table()
    >>> len(table), table["epochs"].unique().tolist()
    (1000, [200, 12])
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["OPTIONS", "example_table"]

#: The operation slots and their options.
OPTIONS: dict[str, tuple[str, ...]] = {
    "op1": ("none", "skip", "conv1x1", "conv3x3", "avgpool"),
    "op2": ("none", "skip", "conv3x3"),
    "op3": ("none", "conv3x3", "conv5x5", "sepconv"),
    "op4": ("none", "skip", "conv1x1", "conv3x3"),
    "op5": ("none", "skip", "conv1x1", "conv3x3", "avgpool"),
}
_QUALITY = {"none": 0.0, "skip": 0.6, "avgpool": 0.4, "conv1x1": 1.0, "conv3x3": 1.6,
            "conv5x5": 1.8, "sepconv": 1.7}  # fmt: skip
_PARAMS = {"none": 0.0, "skip": 0.0, "avgpool": 0.0, "conv1x1": 0.02, "conv3x3": 0.15,
           "conv5x5": 0.4, "sepconv": 0.05}  # fmt: skip
_WEIGHTS = (1.0, 0.8, 1.2, 0.7, 0.9)


def example_table(n_archs: int = 500, seed: int = 0) -> Any:
    """The made-up table as a pandas DataFrame: ``n_archs`` architectures drawn without
    replacement from the product of :data:`OPTIONS` with ``seed``, two rows each (200 then 12
    epochs); columns ``op1..op5, epochs, valid_acc, test_acc, params_M, train_seconds``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    names = list(OPTIONS)
    counts = [len(OPTIONS[n]) for n in names]
    total = int(np.prod(counts))
    picked = np.sort(rng.choice(total, size=min(n_archs, total), replace=False))
    rows: list[dict[str, Any]] = []
    for code in picked.tolist():
        ops = []
        for n, count in zip(reversed(names), reversed(counts), strict=True):
            ops.append(OPTIONS[n][code % count])
            code //= count
        ops.reverse()
        score = sum(w * _QUALITY[op] for w, op in zip(_WEIGHTS, ops, strict=True))
        if ops[0].startswith("conv") and ops[4].startswith("conv"):
            score += 0.8
        depth = sum(op != "none" for op in ops)
        full = 60.0 + 35.0 * (1.0 - np.exp(-score / 3.0)) + rng.normal(0.0, 0.3)
        params = 0.1 + sum(_PARAMS[op] for op in ops)
        short = full - 10.0 - 1.2 * depth
        for epochs in (200, 12):
            accuracy = full if epochs == 200 else short + rng.normal(0.0, 1.0)
            seconds = (20.0 + 300.0 * params + 15.0 * depth) * epochs / 200.0
            rows.append(
                {
                    **dict(zip(names, ops, strict=True)),
                    "epochs": epochs,
                    "valid_acc": round(accuracy + rng.normal(0.0, 0.4), 3),
                    "test_acc": round(accuracy + rng.normal(0.0, 0.4), 3),
                    "params_M": round(params, 3),
                    "train_seconds": round(seconds * (1.0 + rng.normal(0.0, 0.05)), 2),
                }
            )
    return pd.DataFrame(rows)
