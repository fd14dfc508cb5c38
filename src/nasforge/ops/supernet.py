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

Weights, indices and edge weights are lists with one entry per :class:`DecisionGroup` of the
supernet: a group is a set of decisions with the same options (one row of architecture
parameters each), e.g. the 6 edges of NB201's cells (every cell shares them, as in
NAS-Bench-201's search models), the 14 edges of DARTS's normal and reduction cells, or the
kernel choice of every layer of a macro network.

:class:`Supernet` is the interface the one-shot methods (:mod:`nasforge.oneshot`) talk to; a
space returns its own from ``space.supernet(**settings)`` (``nasforge.ops.nb201_supernet``,
``nasforge.ops.darts_supernet``), so that the methods never look at a space's name.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.ops.param_free import PARAM_FREE

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace

__all__ = [
    "PARAM_FREE",
    "AvgPool3x3",
    "DecisionGroup",
    "ExtractedNetwork",
    "MixedEdge",
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
        self.kernel: torch.Tensor
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


def fast_pool(op: nn.Module, channels: int) -> nn.Module:
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
        self.fixed = False
        #: ``(group, row)`` of the supernet decision this edge computes (set by the supernet
        #: that builds it; :meth:`Supernet.extract` prunes the edges that have one).
        self.site: tuple[int, int] | None = None

    def keep(self, index: int) -> None:
        """Keep only operation ``index`` (its weights as they are); the edge then computes
        that operation whatever index or weights it is given (:meth:`Supernet.extract`)."""
        kept = self.ops[index]
        self.ops = nn.ModuleList([kept])
        self.names = (self.names[index],)
        self._dense = (0,) if self.names[0] != "none" else ()
        self._relu_first = frozenset({0}) if index in self._relu_first else frozenset()
        self.fixed = True

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor | None,
        index: int | None = None,
        edge_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The edge's output; ``edge_weight`` (a scalar tensor) multiplies all of it."""
        if self.fixed:
            weights, index, edge_weight = None, 0, None
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


@dataclass(frozen=True)
class DecisionGroup:
    """Decisions of a supernet that share their options: one row of architecture parameters
    per decision, one column per option.

    Attributes:
        name: What the group decides (``"edges"``, ``"normal"``, ``"kernel"``...).
        options: The option names, in the order of the columns.
        rows: How many decisions the group has.
        nodes: The rows entering each node of a cell, node by node (edge normalisation
            normalises over them; ``inputs_per_node`` selects among them). Default: each row
            is a node of its own.
        inputs_per_node: An architecture keeps this many of a node's inputs (DARTS: 2);
            the supernet's ``derive`` keeps the strongest, DARTS-PT decides them by
            perturbation. ``None``: every row is kept.
        selectable: The options an architecture can hold (DARTS's genotypes cannot hold
            ``none``, which the supernet still mixes). Default: all.
    """

    name: str
    options: tuple[str, ...]
    rows: int
    nodes: tuple[tuple[int, ...], ...] = ()
    inputs_per_node: int | None = None
    selectable: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.nodes:
            object.__setattr__(self, "nodes", tuple((r,) for r in range(self.rows)))
        if self.selectable is None:
            object.__setattr__(self, "selectable", tuple(range(len(self.options))))

    @property
    def choosable(self) -> tuple[int, ...]:
        """:attr:`selectable`, never ``None`` (set by the constructor)."""
        assert self.selectable is not None
        return self.selectable


class Supernet(nn.Module):
    """The weight-sharing network of a space: what one-shot methods talk to.

    A space implements it for its own shape (cells of edges, layers of a macro network...)
    and returns it from ``space.supernet(**settings)``. The methods only use:

    * :attr:`groups`: the decisions, as :class:`DecisionGroup` (and :attr:`arch_shapes`,
      :attr:`node_edges`, :attr:`op_names` derived from them);
    * ``forward(x, weights=None, index=None, edge_weights=None)``, with one entry per group:
      ``weights[g]`` a ``(rows, options)`` tensor mixes every option (dense form), ``index[g]``
      names one option per row (one path; with ``weights`` the others enter with their
      weight's value, zero for straight-through one-hot weights), ``edge_weights[g]`` a
      ``(rows,)`` tensor scales each row's output (PC-DARTS's edge normalisation);
    * :meth:`path` (the index of an architecture), :meth:`derive` (the architecture of
      weights), :meth:`extract` (a stand-alone network with the inherited weights) and
      :meth:`operations` (the option names an architecture uses, for statistics).

    Subclasses set :attr:`space` and :attr:`groups` and implement ``forward``, :meth:`path`
    and :meth:`from_path`; the defaults of :meth:`derive`, :meth:`extract` and
    :meth:`operations` suit most spaces (a group that keeps ``inputs_per_node`` inputs per
    node needs its own :meth:`derive`).

    Attributes:
        space: The search space whose architectures it derives.
        groups: Its decision groups.
        partial_channels: PC-DARTS's ``K`` it was built with (1: every channel mixed).
        param_free: Option names that carry no parameters (for statistics).
    """

    space: SearchSpace
    groups: tuple[DecisionGroup, ...] = ()
    partial_channels: int = 1
    param_free: frozenset[str] = PARAM_FREE

    # -- derived views -------------------------------------------------------------------------
    @property
    def arch_shapes(self) -> tuple[tuple[int, int], ...]:
        """``(rows, options)`` of each group's architecture parameters."""
        return tuple((g.rows, len(g.options)) for g in self.groups)

    @property
    def node_edges(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """For each group, the rows entering each node."""
        return tuple(g.nodes for g in self.groups)

    def weight_parameters(self) -> list[nn.Parameter]:
        """The shared weights (every parameter of the supernet)."""
        return list(self.parameters())

    # -- architectures -------------------------------------------------------------------------
    def path(self, arch: Architecture) -> list[list[int]]:
        """The option of every row of every group for ``arch`` (the ``index`` of a one-path
        forward; rows an architecture does not use take an option that computes nothing)."""
        raise NotImplementedError(f"{type(self).__name__} does not define path()")

    def from_path(self, index: Sequence[Sequence[int]]) -> Architecture:
        """The architecture whose :meth:`path` is ``index``."""
        raise NotImplementedError(f"{type(self).__name__} does not define from_path()")

    def derive(
        self, weights: Sequence[torch.Tensor], edge_weights: Sequence[Any] | None = None
    ) -> Architecture:
        """The architecture the weights stand for: on every row the selectable option of
        largest weight (ties go to the lower index). An edge weight scales a whole row, so it
        does not change the choice here; a supernet whose groups keep only
        ``inputs_per_node`` inputs of each node ranks its edges in its own ``derive`` (as
        DARTS's does, by its genotype rule).
        """
        index: list[list[int]] = []
        with torch.no_grad():
            for g, group in enumerate(self.groups):
                allowed = list(group.choosable)
                real = weights[g].detach().cpu().float()[:, allowed]
                index.append([allowed[int(i)] for i in real.argmax(dim=-1).tolist()])
        return self.from_path(index)

    def operations(self, arch: Architecture) -> list[str]:
        """The option names ``arch`` uses, one per decision it makes."""
        return [
            group.options[i]
            for group, row in zip(self.groups, self.path(arch), strict=True)
            for i in row
        ]

    def param_free_share(self, arch: Architecture) -> float:
        """Share of ``arch``'s decisions that took a parameter-free option."""
        names = self.operations(arch)
        return sum(name in self.param_free for name in names) / max(1, len(names))

    def extract(self, arch: Architecture) -> nn.Module:
        """A stand-alone network of ``arch`` with the supernet's current weights: a copy in
        which every mixed edge keeps only its chosen operation. Its output equals the
        supernet's one-path output for ``arch`` (same mode, same batch-norm statistics)."""
        index = self.path(arch)
        net = copy.deepcopy(self)
        found = False
        for module in net.modules():
            if isinstance(module, MixedEdge) and module.site is not None:
                group, row = module.site
                module.keep(index[group][row])
                found = True
        if not found:
            raise NotImplementedError(
                f"{type(self).__name__} has no mixed edges with a site; override extract()"
            )
        return ExtractedNetwork(net, index)


class ExtractedNetwork(nn.Module):
    """One path of a supernet as a network of its own (:meth:`Supernet.extract`).

    Attributes:
        supernet: The pruned copy (one operation per edge).
        index: The path it computes.
    """

    def __init__(self, supernet: Supernet, index: Sequence[Sequence[int]]) -> None:
        super().__init__()
        self.supernet = supernet
        self.index = [list(row) for row in index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.supernet(x, None, self.index)
        return out


def check_partial(channels: int, partial: int) -> None:
    """Refuse a partial-channel ``K`` that is not a positive divisor of ``channels``."""
    if isinstance(partial, bool) or not isinstance(partial, int) or partial < 1:
        raise InvalidConfigError(f"partial_channels must be a positive integer, got {partial!r}.")
    if channels % partial:
        raise InvalidConfigError(
            f"partial_channels={partial} must divide the channels ({channels}); PC-DARTS uses "
            "K=4 with 16 channels."
        )


def __getattr__(name: str) -> Any:
    # the cell supernets live with their spaces' operations; kept importable from here
    if name == "NB201Supernet":
        from nasforge.ops.nb201_supernet import NB201Supernet

        return NB201Supernet
    if name == "DartsSupernet":
        from nasforge.ops.darts_supernet import DartsSupernet

        return DartsSupernet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
