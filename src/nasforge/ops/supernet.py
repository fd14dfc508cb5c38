"""Supernets: every candidate operation of a cell space on every edge, with shared weights.

A supernet holds one :class:`MixedEdge` per edge of its cells; a mixed edge holds every
candidate operation, built by the same functions as the discrete networks
(:func:`nasforge.ops.nb201.make_op`, :func:`nasforge.ops.darts.make_op`), with batch norm
without affine parameters as in the search networks of DARTS (Liu et al., ICLR 2019,
arXiv:1806.09055, ``cnn/model_search.py``) and NAS-Bench-201 (Dong and Yang, ICLR 2020,
arXiv:2001.00326, whose search models pass ``affine=False``). The supernet holds *no*
architecture parameters: a one-shot method (:mod:`nasforge.oneshot`) owns them and passes, on
every forward, the weights of each edge's operations in one of three forms:

* **dense** (DARTS, single-level DARTS, DARTS-PT): ``weights[e]`` is a vector over the
  operations and the edge computes ``sum_o weights[e, o] * op_o(x)``. ``none`` outputs zeros,
  so its term is left out (its weight still gets gradient through the softmax);
* **one path** (GDAS, SPOS): ``index[e]`` names one operation; the edge computes only it,
  ``weights[e, i] * op_i(x) + sum_{o != i} weights[e, o]``. With GDAS's straight-through
  one-hot weights the other terms are zero in value but carry the gradient to every
  architecture parameter, as in the GDAS reference (``forward_gdas`` of D-X-Y's NAS-Bench-201
  search cell); with ``weights=None`` (SPOS) the edge is just ``op_i(x)``;
* **partial channels** (PC-DARTS, Xu et al., ICLR 2020, arXiv:1907.05737): built with
  ``partial_channels=K``, each edge applies the dense mixture to the first ``C / K`` channels,
  passes the others through (max-pooled where the edge has stride 2), concatenates and
  shuffles the channels in ``K`` groups. ``edge_weights`` (edge normalisation) scales each
  edge's output before a node sums its inputs.

:class:`MixedEdge` computes these functions with a few savings that leave them unchanged
(to rounding; see its docstring): ``none`` is not run, one ReLU serves every operation that
begins with one, the weighted sum is accumulated in place, 3x3 average pooling runs as a
depthwise convolution (:class:`AvgPool3x3`), and the edge weight is folded into the mixture
so that a partial-channel edge keeps only ``1/K`` of its width for the backward pass.

Weights, indices and edge weights are lists with one entry per cell type: one for NB201
(every cell shares one set of architecture parameters, as in NAS-Bench-201's search models),
two for DARTS (normal, reduce).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.ops import darts as darts_ops
from nasforge.ops import nb201 as nb201_ops

__all__ = [
    "AvgPool3x3",
    "DartsSupernet",
    "MixedEdge",
    "NB201Supernet",
    "Supernet",
    "channel_shuffle",
]

Weights = Sequence[torch.Tensor | None] | None
Indices = Sequence[Sequence[int]] | None


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``x`` in ``groups`` groups (ShuffleNet's shuffle)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class AvgPool3x3(nn.Module):
    """3x3 average pooling, padding 1, not counting the padding: the function of
    ``nn.AvgPool2d(3, stride, padding=1, count_include_pad=False)``, computed as a depthwise
    convolution with a kernel of ones times the reciprocal of each window's count of real
    pixels. On the CPU this is several times faster than PyTorch's pooling kernel forward
    and backward (the pooling was a third of a DARTS supernet step); outputs agree to
    rounding (about ``1e-7``). The kernel is a buffer left out of state dicts.

    Args:
        channels: Channels of the input.
        stride: 1 or 2.
    """

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.stride = stride
        self.register_buffer("kernel", torch.ones(channels, 1, 3, 3), persistent=False)
        self._scale: dict[tuple[Any, ...], torch.Tensor] = {}

    def extra_repr(self) -> str:
        return f"channels={self.channels}, stride={self.stride}"

    def _reciprocal_count(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.shape[-2], x.shape[-1], x.device, x.dtype)
        scale = self._scale.get(key)
        if scale is None:
            ones = torch.ones(1, 1, x.shape[-2], x.shape[-1], device=x.device, dtype=x.dtype)
            count = nn.functional.conv2d(ones, self.kernel[:1], stride=self.stride, padding=1)
            scale = self._scale[key] = count.reciprocal()
        return scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = nn.functional.conv2d(
            x, self.kernel.to(x.dtype), stride=self.stride, padding=1, groups=self.channels
        )
        return total * self._reciprocal_count(x)


def _fast_pool(op: nn.Module, channels: int) -> nn.Module:
    """``op``, or :class:`AvgPool3x3` where ``op`` is the 3x3 count-excluding average pool."""
    if (
        isinstance(op, nn.AvgPool2d)
        and op.kernel_size in (3, (3, 3))
        and op.padding in (1, (1, 1))
        and op.stride in (1, 2, (1, 1), (2, 2))
        and not op.count_include_pad
        and not op.ceil_mode
        and op.divisor_override is None
    ):
        stride = op.stride if isinstance(op.stride, int) else op.stride[0]
        return AvgPool3x3(channels, stride)
    return op


def _leading_relu(op: nn.Module) -> tuple[nn.Sequential, nn.ReLU] | None:
    """The ``nn.Sequential`` of ``op`` (itself or its ``op`` attribute, as in the DARTS
    operations) and its first module, when that is an out-of-place ReLU."""
    seq = op if isinstance(op, nn.Sequential) else getattr(op, "op", None)
    if isinstance(seq, nn.Sequential) and len(seq) > 1:
        first = seq[0]
        if isinstance(first, nn.ReLU) and not first.inplace:
            return seq, first
    return None


class MixedEdge(nn.Module):
    """All candidate operations of one edge (see the module docstring for the three forms).

    Computation, the same function as summing the builders' operations, done cheaper:

    * ``none`` is never run in the dense form (zero output; its weight stays in the softmax);
    * the weighted sum is accumulated in place, without stacking the operations' outputs;
    * operations that begin with a ReLU (the convolutions) share one ReLU of the input: their
      leading ``nn.ReLU`` is replaced by ``nn.Identity`` and the edge applies the ReLU once
      (state dicts are unchanged: a ReLU has no parameters). Call the operations through
      the edge, which applies it;
    * the count-excluding 3x3 average pool is :class:`AvgPool3x3`;
    * an edge weight (PC-DARTS's edge normalisation) is folded into the operation weights and
      applied to the passed-through channels before the concatenation, so no full-width
      copy of the edge's output is kept for the backward pass.

    Args:
        ops: The candidate operations, in the order of the space's operation names; they act
            on ``channels // partial_channels`` channels.
        names: Their names (``"none"`` marks the zero operation).
        partial_channels: ``K`` of PC-DARTS (1: every channel goes through the mixture).
        stride: The edge's stride (2 on the inputs of a DARTS reduction cell).
        share_relu: Hoist the leading ReLU of the operations that have one (see above).
    """

    def __init__(
        self,
        ops: Sequence[nn.Module],
        names: Sequence[str],
        partial_channels: int = 1,
        stride: int = 1,
        share_relu: bool = True,
    ) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.names = tuple(names)
        self.partial = int(partial_channels)
        self.stride = stride
        self._dense = tuple(i for i, name in enumerate(self.names) if name != "none")
        relu_first = []
        if share_relu:
            for i, op in enumerate(self.ops):
                found = _leading_relu(op)
                if found is not None:
                    found[0][0] = nn.Identity()
                    relu_first.append(i)
        self._relu_first = frozenset(relu_first)
        if self.partial > 1 and stride > 1:
            self.pass_pool: nn.Module | None = nn.MaxPool2d(2, 2)
        else:
            self.pass_pool = None

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor | None,
        index: int | None = None,
        edge_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The edge's output; ``edge_weight`` (a scalar tensor) multiplies all of it."""
        if self.partial > 1:
            width = x.shape[1] // self.partial
            head, tail = x[:, :width], x[:, width:]
            mixed = self._mix(head, weights, index, edge_weight)
            if self.pass_pool is not None:
                tail = self.pass_pool(tail)
            if edge_weight is not None:
                tail = tail * edge_weight
            # channel_shuffle(cat([mixed, tail]), K) written in one copy: output channel
            # j * K + g is channel j of group g (group 0 is the mixture, 1..K-1 the tail)
            n, _, h, w = mixed.shape
            groups = tail.reshape(n, self.partial - 1, width, h, w).transpose(1, 2)
            out = torch.cat([mixed.unsqueeze(2), groups], dim=2)
            return out.view(n, width * self.partial, h, w)
        return self._mix(x, weights, index, edge_weight)

    def _run(self, i: int, x: torch.Tensor, relu: torch.Tensor | None = None) -> torch.Tensor:
        """Operation ``i`` on ``x`` (``relu``: ``relu(x)`` when already computed)."""
        if i in self._relu_first:
            if relu is None:
                relu = torch.relu(x)
            out: torch.Tensor = self.ops[i](relu)
            return out
        out = self.ops[i](x)
        return out

    def _mix(
        self,
        x: torch.Tensor,
        weights: torch.Tensor | None,
        index: int | None,
        edge_weight: torch.Tensor | None,
    ) -> torch.Tensor:
        if index is not None:
            out = self._run(index, x)
            if weights is not None:
                rest = weights.sum() - weights[index]
                out = out * weights[index] + rest
            if edge_weight is not None:
                out = out * edge_weight
            return out
        if weights is None:
            raise InvalidConfigError(
                "A mixed edge needs operation weights (dense) or an operation index (one path)."
            )
        if edge_weight is not None:
            weights = weights * edge_weight
        relu = torch.relu(x) if self._relu_first.intersection(self._dense) else None
        total: torch.Tensor | None = None
        for i in self._dense:
            out = self._run(i, x, relu)
            if total is None:
                total = out * weights[i]
            else:
                total.addcmul_(out, weights[i])
        if total is None:  # only the zero operation: zeros of the output's shape
            total = self.ops[0](x) * weights.sum()
        return total


class Supernet(nn.Module):
    """What the one-shot methods need of a supernet (both spaces implement it).

    Attributes:
        space: Registry name of the space whose architectures it derives.
        op_names: The operation names of each cell type's edges.
        arch_shapes: ``(edges, operations)`` of each cell type's architecture parameters.
        node_edges: For each cell type, the edges (positions) entering each computed node,
            node by node (for edge normalisation and DARTS's top-2 selection).
    """

    space: str = ""
    op_names: tuple[str, ...] = ()
    arch_shapes: tuple[tuple[int, int], ...] = ()
    node_edges: tuple[tuple[tuple[int, ...], ...], ...] = ()

    def weight_parameters(self) -> list[nn.Parameter]:
        """The shared weights (every parameter of the supernet)."""
        return list(self.parameters())


class _NB201SearchCell(nn.Module):
    def __init__(self, channels: int, partial_channels: int, track_running_stats: bool) -> None:
        super().__init__()
        width = channels // partial_channels
        edges = []
        for _ in nb201_ops.EDGES:
            ops = [
                _fast_pool(nb201_ops.make_op(name, width, affine=False), width)
                for name in nb201_ops.OPS
            ]
            for op in ops:
                for m in op.modules():
                    if isinstance(m, nn.BatchNorm2d) and not track_running_stats:
                        m.track_running_stats = False
                        m.running_mean = m.running_var = m.num_batches_tracked = None
            edges.append(MixedEdge(ops, nb201_ops.OPS, partial_channels))
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

    Example:
        >>> net = NB201Supernet(channels=4, cells_per_stage=1)
        >>> w = torch.full((6, 5), 0.2)
        >>> net(torch.zeros(2, 3, 8, 8), [w]).shape
        torch.Size([2, 10])
    """

    space = "nb201"
    op_names = nb201_ops.OPS
    arch_shapes = ((len(nb201_ops.EDGES), len(nb201_ops.OPS)),)
    node_edges = (((0,), (1, 2), (3, 4, 5)),)

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 16,
        cells_per_stage: int = 5,
        partial_channels: int = 1,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        _check_partial(channels, partial_channels)
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
                _NB201SearchCell(c, partial_channels, track_running_stats)
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


class _DartsSearchCell(nn.Module):
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
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        if reduction_prev:
            self.preprocess0: nn.Module = darts_ops.FactorizedReduce(
                c_prev_prev, channels, affine=False
            )
        else:
            self.preprocess0 = darts_ops.ReLUConvBN(c_prev_prev, channels, 1, affine=False)
        self.preprocess1 = darts_ops.ReLUConvBN(c_prev, channels, 1, affine=False)
        width = channels // partial_channels
        edges = []
        for i in range(steps):
            for j in range(i + 2):
                stride = 2 if reduction and j < 2 else 1
                ops = []
                for name in darts_ops.OPS:
                    op = _fast_pool(darts_ops.make_op(name, width, stride, affine=False), width)
                    if "pool" in name:  # the search network adds a batch norm after pooling
                        op = nn.Sequential(op, nn.BatchNorm2d(width, affine=False))
                    ops.append(op)
                edges.append(MixedEdge(ops, darts_ops.OPS, partial_channels, stride))
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
    """

    space = "darts"
    op_names = darts_ops.OPS
    arch_shapes = ((14, len(darts_ops.OPS)), (14, len(darts_ops.OPS)))
    node_edges = (
        ((0, 1), (2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12, 13)),
        ((0, 1), (2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12, 13)),
    )

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 16,
        layers: int = 8,
        partial_channels: int = 1,
    ) -> None:
        super().__init__()
        darts_ops._check_config(channels, num_classes, layers, 0.0)
        _check_partial(channels, partial_channels)
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
                _DartsSearchCell(
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


def _check_partial(channels: int, partial: int) -> None:
    if isinstance(partial, bool) or not isinstance(partial, int) or partial < 1:
        raise InvalidConfigError(f"partial_channels must be a positive integer, got {partial!r}.")
    if channels % partial:
        raise InvalidConfigError(
            f"partial_channels={partial} must divide the channels ({channels}); PC-DARTS uses "
            "K=4 with 16 channels."
        )
