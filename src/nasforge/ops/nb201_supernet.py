"""The NAS-Bench-201 supernet: the benchmark's skeleton with a mixed edge on every edge of
every cell (see :mod:`nasforge.ops.supernet` for the mixed edge and the interface).

Dong, X. and Yang, Y. "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture
Search." ICLR 2020, arXiv:2001.00326: the search models share one ``(6, 5)`` set of
architecture parameters across cells and use batch norm without affine parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from nasforge.errors import InvalidConfigError, unknown_name_message
from nasforge.ops import nb201 as nb201_ops
from nasforge.ops import sharp
from nasforge.ops.supernet import (
    DecisionGroup,
    Indices,
    MixedEdge,
    Supernet,
    Weights,
    check_partial,
    fast_pool,
)

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace

__all__ = ["NB201Supernet"]

#: The one decision group: the operation of each of the 6 edges.
GROUPS = (
    DecisionGroup(
        "edges",
        tuple(nb201_ops.OPS),
        len(nb201_ops.EDGES),
        nodes=((0,), (1, 2), (3, 4, 5)),
    ),
)


#: How the cells' convolutions are built (the ``conv`` setting): the benchmark's
#: ReLU-conv-BN, or sharpDARTS's SharpSepConv (:mod:`nasforge.ops.sharp`).
CONVS = ("standard", "sharp")


class _NB201SearchCell(nn.Module):
    def __init__(
        self,
        channels: int,
        partial_channels: int,
        track_running_stats: bool,
        conv: str = "standard",
    ) -> None:
        super().__init__()
        width = channels // partial_channels
        make_op = sharp.nb201_op if conv == "sharp" else nb201_ops.make_op
        edges: list[MixedEdge] = []
        for _ in nb201_ops.EDGES:
            ops = [fast_pool(make_op(name, width, affine=False), width) for name in nb201_ops.OPS]
            for op in ops:
                for m in op.modules():
                    if isinstance(m, nn.BatchNorm2d) and not track_running_stats:
                        m.track_running_stats = False
                        m.running_mean = m.running_var = m.num_batches_tracked = None
            edge = MixedEdge(ops, nb201_ops.OPS, partial_channels)
            edge.site = (0, len(edges))
            edges.append(edge)
        self.edges = nn.ModuleList(edges)

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor | None,
        index: Sequence[int] | None,
        edge_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            total: torch.Tensor | None = None
            for k, (i, target) in enumerate(nb201_ops.EDGES):
                if target != j:
                    continue
                out = self.edges[k](
                    nodes[i],
                    None if weights is None else weights[k],
                    None if index is None else int(index[k]),
                    None if edge_weights is None else edge_weights[k],
                )
                total = out if total is None else total + out
            assert total is not None
            nodes.append(total)
        return nodes[3]


class NB201Supernet(Supernet):
    """The NAS-Bench-201 search network: the benchmark's skeleton (stem, three stages of
    ``cells_per_stage`` cells joined by residual reduction blocks, head) with a mixed edge
    on each of the 6 edges of every cell. Every cell shares the architecture parameters
    (one ``(6, 5)`` tensor, edges and operations in the order of ``nasforge.spaces.nb201``).

    Args:
        num_classes: Outputs of the classifier.
        channels: ``C`` of the first stage (16 at search time in NAS-Bench-201).
        cells_per_stage: ``N`` (5 at search time).
        partial_channels: PC-DARTS's ``K`` (1: every channel is mixed); must divide ``C``.
        track_running_stats: Whether the cells' batch norms keep running statistics.
        conv: ``"standard"`` (the benchmark's convolutions) or ``"sharp"`` (sharpDARTS's
            SharpSepConv in place of ``nor_conv_1x1`` and ``nor_conv_3x3``, same names).

    Example:
        >>> net = NB201Supernet(channels=4, cells_per_stage=1)
        >>> w = torch.full((6, 5), 0.2)
        >>> net(torch.zeros(2, 3, 8, 8), [w]).shape
        torch.Size([2, 10])
    """

    groups = GROUPS

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 16,
        cells_per_stage: int = 5,
        partial_channels: int = 1,
        track_running_stats: bool = True,
        space: SearchSpace | None = None,
        *,
        conv: str = "standard",
    ) -> None:
        super().__init__()
        if conv not in CONVS:
            raise InvalidConfigError(unknown_name_message("supernet convolution", conv, CONVS))
        self.conv = conv
        if space is None:
            from nasforge.spaces.nb201 import NB201Space

            space = NB201Space()
        self.space = space
        check_partial(channels, partial_channels)
        if channels < 1 or cells_per_stage < 1 or num_classes < 1:
            raise InvalidConfigError(
                "channels, cells_per_stage and num_classes must be at least 1, got "
                f"channels={channels}, cells_per_stage={cells_per_stage}, "
                f"num_classes={num_classes}."
            )
        self.partial_channels = partial_channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(nb201_ops.ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(
                _NB201SearchCell(c, partial_channels, track_running_stats, conv)
                for _ in range(cells_per_stage)
            )
        self.cells = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(
        self,
        x: torch.Tensor,
        weights: Weights = None,
        index: Indices = None,
        edge_weights: Weights = None,
    ) -> torch.Tensor:
        w = None if weights is None else weights[0]
        i = None if index is None else index[0]
        e = None if edge_weights is None else edge_weights[0]
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, w, i, e) if isinstance(cell, _NB201SearchCell) else cell(x)
        x = self.head(x)
        logits: torch.Tensor = self.classifier(torch.flatten(self.pool(x), 1))
        return logits

    def path(self, arch: Architecture) -> list[list[int]]:
        """The operation of each edge (every cell runs the same)."""
        return [[int(c) for c in self.space.check(arch).choices]]

    def from_path(self, index: Sequence[Sequence[int]]) -> Architecture:
        return self.space.from_choices([int(c) for c in index[0]])
