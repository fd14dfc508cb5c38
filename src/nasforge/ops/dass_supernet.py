"""The DASS search network: the DARTS supernet with sparse operations on every edge.

Mousavi, H., Loni, M., Alibeigi, M. and Daneshtalab, M. "DASS: Differentiable Architecture
Search for Sparse Neural Networks." ACM TECS 2023, arXiv:2207.06968. Each of the 14 edges of
the normal and the reduction cell mixes the 8 DARTS operations and the 4 sparse ones of
:mod:`nasforge.spaces.dass` (12 options); a sparse operation's convolutions are
:class:`~nasforge.ops.sparse.MaskedConv2d` at the supernet's ``sparsity``, their masks kept
by the search (:mod:`nasforge.oneshot.dass`). Everything else (cells, derivation of the two
strongest inputs per node, extraction) is :class:`~nasforge.ops.darts_supernet.DartsSupernet`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from torch import nn

from nasforge.ops import darts as darts_ops
from nasforge.ops.darts_supernet import _NODES, DartsSupernet
from nasforge.ops.sparse import MaskedConv2d, MaskedLinear, check_sparsity, sparsify
from nasforge.ops.supernet import DecisionGroup, MixedEdge, fast_pool
from nasforge.spaces.dass import OPS, SPARSE_OPS, dense_name

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace

__all__ = ["GROUPS", "DassSupernet", "make_search_op"]

#: The normal and the reduction cell: 14 edges of 12 options, two inputs kept per node.
GROUPS = tuple(
    DecisionGroup(
        name, OPS, 14, nodes=_NODES, inputs_per_node=2, selectable=tuple(range(1, len(OPS)))
    )
    for name in ("normal", "reduce")
)


def make_search_op(name: str, width: int, stride: int, sparsity: float) -> nn.Module:
    """The search-network form of option ``name`` on ``width`` channels: DARTS's operation
    without affine batch norm (pooling followed by a batch norm, as in the DARTS search
    network), its convolutions masked at ``sparsity`` for a sparse option."""
    op = fast_pool(darts_ops.make_op(dense_name(name), width, stride, affine=False), width)
    if "pool" in name:
        op = nn.Sequential(op, nn.BatchNorm2d(width, affine=False))
    if name in SPARSE_OPS:
        sparsify(op, sparsity)
    return op


class DassSupernet(DartsSupernet):
    """The DARTS search network (see :class:`~nasforge.ops.darts_supernet.DartsSupernet`)
    with DASS's 12 options per edge.

    Args:
        num_classes, channels, layers, partial_channels: As for ``DartsSupernet``.
        sparsity: The share of zero weights in the sparse options' convolutions, one of
            :data:`~nasforge.ops.sparse.SPARSITY_LEVELS` (0.0 leaves them dense).
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
        sparsity: float = 0.75,
        space: SearchSpace | None = None,
    ) -> None:
        share = check_sparsity(sparsity)
        if space is None:
            from nasforge.spaces.dass import DassSpace

            space = DassSpace()
        super().__init__(num_classes, channels, layers, partial_channels, space)
        self.sparsity = share
        reductions = darts_ops.reduction_layers(layers)
        width = channels // partial_channels
        for i, cell in enumerate(self.cells):
            if i in reductions:
                width *= 2
            edges = cast(nn.ModuleList, cell.edges)
            for k, edge in enumerate(edges):
                stride = cast(MixedEdge, edge).stride
                ops = [make_search_op(name, width, stride, share) for name in OPS]
                wider = MixedEdge(ops, OPS, partial_channels, stride)
                wider.site = cast(MixedEdge, edge).site
                edges[k] = wider

    def sparse_layers(self) -> list[tuple[str, MaskedConv2d | MaskedLinear]]:
        """The masked convolutions of the sparse options, with their module paths."""
        return [
            (name, m)
            for name, m in self.named_modules()
            if isinstance(m, (MaskedConv2d, MaskedLinear))
            and any(f".ops.{OPS.index(op)}." in name for op in SPARSE_OPS)
        ]

    def operations(self, arch: Architecture) -> list[str]:
        """The 16 operations of the genotype (the unused edges are not counted)."""
        return [OPS[int(c) + 1] for c in self.space.check(arch).choices[1::2]]
