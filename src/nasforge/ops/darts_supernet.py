"""The DARTS search network (see :mod:`nasforge.ops.supernet` for the mixed edge and the
interface).

Liu, H., Simonyan, K. and Yang, Y. "DARTS: Differentiable Architecture Search." ICLR 2019,
arXiv:1806.09055 (``cnn/model_search.py`` of the reference code): 8 operations on each of the
14 edges of a normal and a reduction cell; an architecture keeps two inputs per node and
never the ``none`` operation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError, unknown_name_message
from nasforge.ops import darts as darts_ops
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

__all__ = ["DartsSupernet"]

_NODES = ((0, 1), (2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12, 13))
#: The normal and the reduction cell: 14 edges each, two inputs kept per node, no ``none``.
GROUPS = tuple(
    DecisionGroup(
        name,
        tuple(darts_ops.OPS),
        14,
        nodes=_NODES,
        inputs_per_node=2,
        selectable=tuple(range(1, len(darts_ops.OPS))),
    )
    for name in ("normal", "reduce")
)


def _darts_search_op(name: str, channels: int, stride: int) -> nn.Module:
    return darts_ops.make_op(name, channels, stride, affine=False)


def _sharp_search_op(name: str, channels: int, stride: int) -> nn.Module:
    return sharp.darts_op(name, channels, stride, affine=False)


#: How the cells' convolutions are built (the ``conv`` setting): DARTS's, or sharpDARTS's
#: SharpSepConv (:mod:`nasforge.ops.sharp`).
CONVS = ("standard", "sharp")


def _darts_search_inputs(
    c_prev_prev: int, c_prev: int, channels: int, reduction_prev: bool
) -> tuple[nn.Module, nn.Module]:
    first: nn.Module = (
        darts_ops.FactorizedReduce(c_prev_prev, channels, affine=False)
        if reduction_prev
        else darts_ops.ReLUConvBN(c_prev_prev, channels, 1, affine=False)
    )
    return first, darts_ops.ReLUConvBN(c_prev, channels, 1, affine=False)


class _DartsSearchCell(nn.Module):
    """A search cell: every edge mixes the operations ``names`` (built by ``op`` from a
    name, channels and stride, without affine batch norm) from the two inputs built by
    ``inputs``; DARTS's operations and inputs by default."""

    def __init__(
        self,
        steps: int,
        multiplier: int,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        partial_channels: int,
        *,
        names: Sequence[str] = darts_ops.OPS,
        op: Callable[[str, int, int], nn.Module] = _darts_search_op,
        inputs: Callable[[int, int, int, bool], tuple[nn.Module, nn.Module]] = (
            _darts_search_inputs
        ),
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        self.preprocess0, self.preprocess1 = inputs(c_prev_prev, c_prev, channels, reduction_prev)
        width = channels // partial_channels
        edges: list[MixedEdge] = []
        for i in range(steps):
            for j in range(i + 2):
                stride = 2 if reduction and j < 2 else 1
                ops = []
                for name in names:
                    built = fast_pool(op(name, width, stride), width)
                    if "pool" in name:  # the search network adds a batch norm after pooling
                        built = nn.Sequential(built, nn.BatchNorm2d(width, affine=False))
                    ops.append(built)
                edge = MixedEdge(ops, tuple(names), partial_channels, stride)
                edge.site = (1 if reduction else 0, len(edges))
                edges.append(edge)
        self.edges = nn.ModuleList(edges)

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor | None,
        index: Sequence[int] | None,
        edge_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            total: torch.Tensor | None = None
            for j, h in enumerate(states):
                k = offset + j
                out = self.edges[k](
                    h,
                    None if weights is None else weights[k],
                    None if index is None else int(index[k]),
                    None if edge_weights is None else edge_weights[k],
                )
                total = out if total is None else total + out
            offset += len(states)
            assert total is not None
            states.append(total)
        return torch.cat(states[-self.multiplier :], dim=1)


class DartsSupernet(Supernet):
    """The DARTS search network (``Network`` of quark0/darts ``cnn/model_search.py``): a stem
    of ``3 C`` channels, ``layers`` cells with reduction cells at ``layers // 3`` and
    ``2 layers // 3``, 4 intermediate nodes per cell each mixing all its predecessors (14
    edges), 8 operations per edge; architecture parameters ``(14, 8)`` for the normal and
    the reduction cell.

    Args:
        num_classes: Outputs of the classifier.
        channels: ``C`` (16 at search time in DARTS).
        layers: Cells (8 at search time), at least 5 (see ``nasforge.ops.darts``).
        partial_channels: PC-DARTS's ``K``; must divide ``C``.
        space: The space whose architectures it derives (default ``DartsSpace()``).
        cell: Builds a search cell from :class:`_DartsSearchCell`'s positional arguments
            (a space of other operations passes ``_DartsSearchCell`` with its own ``names``,
            ``op`` and ``inputs``).
        conv: ``"standard"`` (DARTS's convolutions) or ``"sharp"`` (sharpDARTS's SharpSepConv
            in place of the ``sep_conv`` and ``dil_conv`` operations, same names; with the
            default ``cell`` only).
    """

    groups = GROUPS

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 16,
        layers: int = 8,
        partial_channels: int = 1,
        space: SearchSpace | None = None,
        *,
        cell: Callable[..., nn.Module] = _DartsSearchCell,
        conv: str = "standard",
    ) -> None:
        super().__init__()
        if conv not in CONVS:
            raise InvalidConfigError(unknown_name_message("supernet convolution", conv, CONVS))
        if conv == "sharp":
            if cell is not _DartsSearchCell:
                raise UnsupportedOperationError(
                    "conv='sharp' replaces the convolutions of DARTS's own search cell; this "
                    "supernet builds cells of its own operations."
                )
            cell = functools.partial(_DartsSearchCell, op=_sharp_search_op)
        self.conv = conv
        if space is None:
            from nasforge.spaces.darts import DartsSpace

            space = DartsSpace()
        self.space = space
        darts_ops._check_config(channels, num_classes, layers, 0.0)
        check_partial(channels, partial_channels)
        self.partial_channels = partial_channels
        steps = multiplier = 4
        stem = 3 * channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem)
        )
        reductions = darts_ops.reduction_layers(layers)
        c_prev_prev, c_prev, c_curr = stem, stem, channels
        reduction_prev = False
        cells = []
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            cells.append(
                cell(
                    steps,
                    multiplier,
                    c_prev_prev,
                    c_prev,
                    c_curr,
                    reduction,
                    reduction_prev,
                    partial_channels,
                )
            )
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, multiplier * c_curr
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(
        self,
        x: torch.Tensor,
        weights: Weights = None,
        index: Indices = None,
        edge_weights: Weights = None,
    ) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = 1 if cell.reduction else 0
            s0, s1 = (
                s1,
                cell(
                    s0,
                    s1,
                    None if weights is None else weights[kind],
                    None if index is None else index[kind],
                    None if edge_weights is None else edge_weights[kind],
                ),
            )
        logits: torch.Tensor = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        return logits

    def path(self, arch: Architecture) -> list[list[int]]:
        """The operation of every edge of the normal and the reduction cell; the edges the
        genotype does not use get ``none``."""
        choices = self.space.check(arch).choices
        out = []
        for kind in range(2):
            part = choices[16 * kind : 16 * (kind + 1)]
            index = [0] * 14
            for k, first in enumerate(edges[0] for edges in _NODES):
                for edge in range(2):
                    source, op = part[4 * k + 2 * edge], part[4 * k + 2 * edge + 1]
                    index[first + int(source)] = int(op) + 1  # GENOTYPE_OPS is OPS[1:]
            out.append(index)
        return out

    def from_path(self, index: Sequence[Sequence[int]]) -> Architecture:
        """The genotype of a path that keeps two edges per node, in the order of their
        inputs."""
        values: list[int] = []
        for row in index:
            for edges in _NODES:
                kept = [e for e in edges if row[e] != 0]
                for e in kept:
                    values.extend((e - edges[0], int(row[e]) - 1))
        return self.space.from_choices(values)

    def derive(
        self, weights: Sequence[torch.Tensor], edge_weights: Sequence[Any] | None = None
    ) -> Architecture:
        """DARTS's ``genotype()``: for each node the two incoming edges of largest
        non-``none`` weight (times the edge weight where edge normalisation is on, as in
        PC-DARTS), each with its largest non-``none`` operation; a node's edges are listed
        strongest first (ties: the lower input first)."""
        out: list[int] = []
        with torch.no_grad():
            for kind, w in enumerate(weights):
                w = w.detach().cpu().float()
                if edge_weights is not None and edge_weights[kind] is not None:
                    w = w * edge_weights[kind].detach().cpu().float()[:, None]
                real = w[:, 1:]  # every operation but none
                for edges in _NODES:
                    first = edges[0]
                    strength = [(-float(real[e].max()), e) for e in edges]
                    for _, e in sorted(strength)[:2]:
                        out.extend((e - first, int(real[e].argmax())))
        return self.space.from_choices(out)

    def operations(self, arch: Architecture) -> list[str]:
        """The 16 operations of the genotype (the unused edges are not counted)."""
        return [darts_ops.OPS[int(c) + 1] for c in self.space.check(arch).choices[1::2]]
