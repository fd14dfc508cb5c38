"""BATS's binary operations, its binary evaluation network and its search network.

Bulat, A., Martinez, B. and Tzimiropoulos, G. "BATS: Binary ArchitecTure Search." ECCV 2020,
arXiv:2003.01711 (the binary-oriented search space; :mod:`nasforge.spaces.bats` describes
it). Built from :mod:`nasforge.ops.binary`:

* ``group_conv_kxk`` / ``dil_group_conv_kxk`` (:class:`BinaryGroupConv`): the sign of the
  input, a ``k x k`` grouped binary convolution (dilation 2 for the dilated ones), batch
  norm, a channel shuffle across the groups (ShuffleNet's, so that stacked grouped
  convolutions mix every channel), plus the real input as a Bi-Real shortcut (2x2 average
  pooling where the edge has stride 2). Real-valued activations carry the information that
  the signs lose; no ReLU (the sign is the non-linearity).
* ``max_pool_3x3``, ``avg_pool_3x3``, ``skip_connect`` and ``none``: DARTS's; the stride-2
  skip (``FactorizedReduce``) stays real, as the downsampling shortcuts of binary networks do.
* With ``operations="darts"``, the convolutions are DARTS's (separable and dilated separable,
  :mod:`nasforge.ops.darts`) binarised: every convolution binary, the ReLUs dropped (a sign
  after a ReLU would be constantly +1). This is the "DARTS space, binarised" baseline.

The cells' 1x1 input preprocessing is a binary convolution with batch norm; the stem, the
classifier and the auxiliary head are real (binary networks keep the first and last layers
real). :class:`BatsNetwork` and :class:`BatsSupernet` reuse the forward passes of the DARTS
networks (:class:`~nasforge.ops.darts.NetworkCIFAR`, drop-path included, and
:class:`~nasforge.ops.darts_supernet.DartsSupernet` with its derivation rule); only the
operations differ. Every binary layer has the switches of :func:`nasforge.ops.binary.set_binary`,
which BATS's staged search uses.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from nasforge.errors import InvalidArchitectureError, InvalidConfigError, unknown_name_message
from nasforge.ops import darts as darts_ops
from nasforge.ops.binary import BinaryConvBN, binarize
from nasforge.ops.darts_supernet import _NODES, DartsSupernet, _DartsSearchCell
from nasforge.ops.supernet import DecisionGroup, channel_shuffle
from nasforge.spaces._bats_genotypes import OPS, TO_DARTS

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace

__all__ = [
    "OPERATIONS",
    "OPS",
    "BatsCell",
    "BatsNetwork",
    "BatsSupernet",
    "BinaryGroupConv",
    "make_op",
]

#: The operation families: BATS's grouped binary convolutions, or DARTS's binarised.
OPERATIONS: tuple[str, ...] = ("bats", "darts")

#: The normal and the reduction cell of the search network (DARTS's shape, BATS's names).
GROUPS = tuple(
    DecisionGroup(
        name, OPS, 14, nodes=_NODES, inputs_per_node=2, selectable=tuple(range(1, len(OPS)))
    )
    for name in ("normal", "reduce")
)


class BinaryGroupConv(nn.Module):
    """Sign, grouped binary convolution, batch norm, channel shuffle, plus the real shortcut.

    Args:
        channels: Input and output channels.
        kernel, stride, padding, dilation: The convolution's.
        group_width: Channels per group (``channels // group_width`` groups).
        affine: Learnable batch-norm parameters.

    Raises:
        InvalidConfigError: ``channels`` is not a multiple of ``group_width``.
    """

    def __init__(
        self,
        channels: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int = 1,
        group_width: int = 4,
        affine: bool = True,
    ) -> None:
        super().__init__()
        _check_group_width(channels, group_width)
        self.groups = max(1, channels // group_width)
        self.block = BinaryConvBN(
            channels,
            channels,
            kernel,
            stride,
            padding,
            dilation,
            self.groups,
            shortcut=True,
            affine=affine,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.block.bn(self.block.conv(x))
        if self.groups > 1:
            y = channel_shuffle(y, self.groups)
        assert self.block.shortcut is not None
        out: torch.Tensor = y + self.block.shortcut(x)
        return out


def _check_group_width(channels: int, group_width: int) -> None:
    if isinstance(group_width, bool) or not isinstance(group_width, int) or group_width < 1:
        raise InvalidConfigError(f"group_width must be a positive integer, got {group_width!r}.")
    if channels >= group_width and channels % group_width:
        raise InvalidConfigError(
            f"A grouped convolution of {group_width} channels per group needs a channel count "
            f"divisible by {group_width}, got {channels}; pick channels (C) that are a "
            f"multiple of {group_width}, or another group_width."
        )


def _binarised_darts_op(name: str, channels: int, stride: int, affine: bool) -> nn.Module:
    """DARTS's convolution ``name`` (in its BATS place) with binary convolutions, no ReLU."""
    op = binarize(
        darts_ops.make_op(TO_DARTS[name], channels, stride, affine),
        keep_first=False,
        keep_last=False,
    )
    for module_name, module in list(op.named_modules()):
        if isinstance(module, nn.ReLU):
            parent_name, _, child = module_name.rpartition(".")
            parent = op.get_submodule(parent_name) if parent_name else op
            setattr(parent, child, nn.Identity())
    return op


def make_op(
    name: str,
    channels: int,
    stride: int = 1,
    *,
    operations: str = "bats",
    affine: bool = True,
    group_width: int = 4,
) -> nn.Module:
    """The BATS operation ``name`` (:data:`OPS`) on ``channels`` channels.

    Raises:
        InvalidArchitectureError: ``name`` is not one of :data:`OPS`.
        InvalidConfigError: ``operations`` is not one of :data:`OPERATIONS`.
    """
    if operations not in OPERATIONS:
        raise InvalidConfigError(unknown_name_message("operation family", operations, OPERATIONS))
    if name not in OPS:
        raise InvalidArchitectureError(unknown_name_message("BATS operation", name, OPS))
    if "conv" not in name:  # none, pooling, skip: DARTS's (the stride-2 skip real)
        return darts_ops.make_op(TO_DARTS[name], channels, stride, affine)
    if operations != "bats":  # DARTS's operations binarised (the ablation)
        return _binarised_darts_op(name, channels, stride, affine)
    kernel = 5 if name.endswith("5x5") else 3
    dilation = 2 if name.startswith("dil") else 1
    padding = dilation * (kernel - 1) // 2
    return BinaryGroupConv(channels, kernel, stride, padding, dilation, group_width, affine)


def _preprocess(c_in: int, c_out: int, affine: bool) -> nn.Module:
    """A cell input's 1x1 map to the cell's width: sign, binary 1x1 convolution, batch norm."""
    return BinaryConvBN(c_in, c_out, 1, shortcut=False, affine=affine)


def _inputs(
    c_prev_prev: int, c_prev: int, channels: int, reduction_prev: bool, affine: bool
) -> tuple[nn.Module, nn.Module]:
    first: nn.Module = (
        darts_ops.FactorizedReduce(c_prev_prev, channels, affine=affine)
        if reduction_prev
        else _preprocess(c_prev_prev, channels, affine)
    )
    return first, _preprocess(c_prev, channels, affine)


class BatsCell(darts_ops.DartsCell):
    """One cell of the binary evaluation network (:class:`~nasforge.ops.darts.DartsCell`'s
    forward, drop-path included, over BATS's operations).

    Args:
        ops, concat, c_prev_prev, c_prev, channels, reduction, reduction_prev: As
            :class:`~nasforge.ops.darts.DartsCell` (operation names from :data:`OPS`).
        operations, group_width: See :func:`make_op`.
    """

    def __init__(
        self,
        ops: Sequence[tuple[str, int]],
        concat: Sequence[int],
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
        operations: str = "bats",
        group_width: int = 4,
    ) -> None:
        super().__init__(
            ops,
            concat,
            c_prev_prev,
            c_prev,
            channels,
            reduction,
            reduction_prev,
            op=functools.partial(make_op, operations=operations, group_width=group_width),
            inputs=functools.partial(_inputs, affine=True),
        )


class BatsNetwork(darts_ops.NetworkCIFAR):
    """The binary evaluation network: DARTS's CIFAR layout (stem of ``3 C`` channels,
    reduction cells at ``layers // 3`` and ``2 layers // 3``, optional auxiliary head) with
    :class:`BatsCell` cells; :class:`~nasforge.ops.darts.NetworkCIFAR`'s forward.

    Args:
        genotype: The cells, with operation names from :data:`OPS`.
        channels, num_classes, layers, auxiliary, drop_path_prob: As
            :class:`~nasforge.ops.darts.NetworkCIFAR`.
        operations, group_width: See :func:`make_op`.

    Raises:
        InvalidConfigError: As :class:`~nasforge.ops.darts.NetworkCIFAR`, or a width the
            group width does not divide.
    """

    def __init__(
        self,
        genotype: darts_ops.GenotypeLike,
        *,
        channels: int = 36,
        num_classes: int = 10,
        layers: int = 20,
        auxiliary: bool = True,
        drop_path_prob: float = 0.0,
        operations: str = "bats",
        group_width: int = 4,
    ) -> None:
        super().__init__(
            genotype,
            channels=channels,
            num_classes=num_classes,
            layers=layers,
            auxiliary=auxiliary,
            drop_path_prob=drop_path_prob,
            cell=functools.partial(BatsCell, operations=operations, group_width=group_width),
        )


class BatsSupernet(DartsSupernet):
    """The BATS search network: DARTS's search network (its forward, paths and derivation:
    two strongest non-``none`` inputs per node) with BATS's binary operations on every edge.

    Args:
        num_classes: Outputs of the classifier.
        channels: ``C`` (a multiple of ``group_width``).
        layers: Cells, at least 5.
        operations: ``"bats"`` or ``"darts"`` (DARTS's operations binarised; the ablation of
            the binary-oriented space).
        group_width: Channels per group of the grouped convolutions.
        space: The space whose architectures it derives (default ``BatsSpace()``).
    """

    groups = GROUPS

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 16,
        layers: int = 8,
        operations: str = "bats",
        group_width: int = 4,
        space: SearchSpace | None = None,
    ) -> None:
        if space is None:
            from nasforge.spaces.bats import BatsSpace

            space = BatsSpace()
        if operations not in OPERATIONS:
            raise InvalidConfigError(
                unknown_name_message("operation family", operations, OPERATIONS)
            )
        _check_group_width(channels, group_width)
        op = functools.partial(
            make_op, operations=operations, affine=False, group_width=group_width
        )
        cell = functools.partial(
            _DartsSearchCell, names=OPS, op=op, inputs=functools.partial(_inputs, affine=False)
        )
        super().__init__(num_classes, channels, layers, 1, space, cell=cell)
        self.operations_family = operations

    def operations(self, arch: Architecture) -> list[str]:
        """The 16 operations of the genotype, BATS names."""
        return [OPS[int(c) + 1] for c in self.space.check(arch).choices[1::2]]
