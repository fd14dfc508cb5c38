"""The DASS search network: the DARTS supernet built from sparse layers.

Mousavi, H., Loni, M., Alibeigi, M. and Daneshtalab, M. "DASS: Differentiable Architecture
Search for Sparse Neural Networks." ACM TECS 22(5s), 2023, arXiv:2207.06968. The search
network is DARTS's (:class:`~nasforge.ops.darts_supernet.DartsSupernet`: 14 edges of 8
options in the normal and the reduction cell, two strongest inputs kept per node) with every
convolution and linear layer, stem and classifier included, a
:class:`~nasforge.ops.sparse.SparseConv2d` / :class:`~nasforge.ops.sparse.SparseLinear`: the
parametric options of every edge are sparse (the ``Network`` of the authors'
``DASS/model_search.py``, built with ``SubnetConv``/``SubnetLinear``). The layers start at
``sparsity`` (0 by default: dense, the search's pre-training step); :mod:`nasforge.oneshot.dass`
changes it between its steps. Derivation and extraction are DARTS's; an extracted network
keeps the sparse layers with their weights, scores and masks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge.ops.darts_supernet import GROUPS, DartsSupernet
from nasforge.ops.sparse import SparseConv2d, SparseLinear, check_sparsity, sparse_layers, to_sparse

if TYPE_CHECKING:
    from nasforge.spaces.base import SearchSpace

__all__ = ["DassSupernet"]


class DassSupernet(DartsSupernet):
    """The DARTS search network with DASS's sparse layers (see the module docstring).

    Args:
        num_classes, channels, layers, partial_channels: As for ``DartsSupernet``.
        sparsity: The share of zero weights every sparse layer starts at, one of
            :data:`~nasforge.ops.sparse.SPARSITY_LEVELS` or 0.0 (dense).
        space: The DASS space (default: a new one).

    Raises:
        InvalidConfigError: An unsupported sparsity (the levels are listed), or as
            ``DartsSupernet``.
    """

    groups = GROUPS

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 16,
        layers: int = 8,
        partial_channels: int = 1,
        sparsity: float = 0.0,
        space: SearchSpace | None = None,
    ) -> None:
        share = check_sparsity(sparsity)
        if space is None:
            from nasforge.spaces.dass import DassSpace

            space = DassSpace()
        super().__init__(num_classes, channels, layers, partial_channels, space)
        self.sparsity = share
        to_sparse(self, share)

    def sparse_layers(self) -> list[tuple[str, SparseConv2d | SparseLinear]]:
        """The sparse layers of the network, with their module paths."""
        return sparse_layers(self)
