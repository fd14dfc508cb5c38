"""Channel and pruning searches for sparse networks, and the baselines they must beat.

* :mod:`~nasforge.sparse.tas`: Transformable Architecture Search (Dong and Yang, NeurIPS 2019,
  arXiv:1905.09717): learned width distributions with Gumbel-softmax sampling, channel-wise
  interpolation and the FLOPs (or parameter) cost loss, then knowledge distillation from the
  unpruned network (:func:`~nasforge.sparse.tas.tas_search`,
  :func:`~nasforge.sparse.tas.train_pruned`).
* :mod:`~nasforge.sparse.baselines`: uniform magnitude pruning (train dense, prune, fine-tune)
  and random search over per-layer sparsity allocations or width configurations at the same
  target and training cost.

The network is the CIFAR ResNet with one width per convolution of
:mod:`nasforge.ops.cifar_resnet`. Importing this package does not import torch; the names
below load their module when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasforge.sparse.baselines import (
        RandomSearchResult,
        SparseRun,
        magnitude_pruning,
        random_allocation,
        random_sparse_search,
        random_widths,
        train_dense,
        weight_sparsity,
    )
    from nasforge.sparse.tas import (
        TASResult,
        kd_loss,
        tas_search,
        train_pruned,
    )

__all__ = [
    "RandomSearchResult",
    "SparseRun",
    "TASResult",
    "kd_loss",
    "magnitude_pruning",
    "random_allocation",
    "random_sparse_search",
    "random_widths",
    "tas_search",
    "train_dense",
    "train_pruned",
    "weight_sparsity",
]

_HOME = {
    "RandomSearchResult": "baselines",
    "SparseRun": "baselines",
    "magnitude_pruning": "baselines",
    "random_allocation": "baselines",
    "random_sparse_search": "baselines",
    "random_widths": "baselines",
    "train_dense": "baselines",
    "weight_sparsity": "baselines",
    "TASResult": "tas",
    "kd_loss": "tas",
    "tas_search": "tas",
    "train_pruned": "tas",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'nasforge.sparse' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nasforge.sparse.{home}"), name)
