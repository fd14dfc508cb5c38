"""The DARTS operations, evaluation cell and CIFAR network.

Liu, H., Simonyan, K. and Yang, Y. "DARTS: Differentiable Architecture Search." ICLR 2019,
arXiv:1806.09055, Section 3.1 and Appendix A.2: the network that trains a discrete genotype
from scratch. Its layout follows NASNet (Zoph, B., Vasudevan, V., Shlens, J. and Le, Q. V.
"Learning Transferable Architectures for Scalable Image Recognition." CVPR 2018,
arXiv:1707.07012): a 3x3 convolution stem with ``3 C`` channels and batch norm, ``layers``
cells of which the ones at positions ``layers // 3`` and ``2 * layers // 3`` are reduction
cells (stride 2, channels doubled), an auxiliary classifier on the output of the second
reduction cell, global average pooling and a linear classifier.

Checked against the reference implementation (quark0/darts, ``cnn/model.py``,
``cnn/operations.py``, ``cnn/utils.py``; the same files are copied in
xiaomi-automl/FairDARTS ``darts/``):

* ``sep_conv_kxk`` applies (ReLU, depthwise ``k x k`` convolution, pointwise convolution,
  batch norm) twice; only the first depthwise convolution has the stride.
* ``dil_conv_kxk`` applies it once, with dilation 2 (padding 2 for 3x3, 4 for 5x5).
* ``max_pool_3x3`` and ``avg_pool_3x3`` (not counting padding) have **no** batch norm in the
  evaluation network; the search network of DARTS adds one, which this module does not.
* ``skip_connect`` is the identity, or :class:`FactorizedReduce` where the edge has stride 2
  (an input of a reduction cell).
* Each cell first maps its two inputs to ``C`` channels: the previous cell's output by a 1x1
  :class:`ReLUConvBN`, the one before it likewise, or by :class:`FactorizedReduce` when the
  previous cell was a reduction cell (its spatial size is then twice as large).
* Drop-path (NASNet's ScheduledDropPath; the schedule is the trainer's) zeroes the output of an
  edge for a whole image with probability ``drop_path_prob`` and scales the kept ones by
  ``1 / (1 - drop_path_prob)``, on every edge except the identity, in training mode only.

Where this module differs: every ReLU is out of place (the reference's auxiliary head uses
in-place ReLUs, which modify the cell output it reads; the results are the same), drop-path is
not in place, its random draws can come from a ``torch.Generator`` given as the network's
``generator`` attribute, and the network takes the genotype's ops and inputs from any object
with ``normal``, ``normal_concat``, ``reduce`` and ``reduce_concat`` (the reference's
``Genotype`` namedtuple, or :class:`nasforge.spaces.darts.Genotype`). Module and parameter
names follow the reference (``stem``, ``cells.<i>.preprocess0``, ``cells.<i>._ops.<j>.op``,
``auxiliary_head.features``, ``classifier``...), so state dicts can be compared name by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import nn

from nasforge.errors import InvalidArchitectureError, InvalidConfigError, unknown_name_message

__all__ = [
    "OPS",
    "AuxiliaryHeadCIFAR",
    "DartsCell",
    "DilConv",
    "FactorizedReduce",
    "GenotypeLike",
    "NetworkCIFAR",
    "ReLUConvBN",
    "SepConv",
    "Zero",
    "drop_path",
    "make_op",
    "reduction_layers",
]

#: The 8 operations of DARTS, in the order of the reference's ``PRIMITIVES``.
OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


class GenotypeLike(Protocol):
    """What the network needs of a genotype: the ``(op, input)`` pairs and concatenated nodes.

    ``normal`` and ``reduce`` list two ``(operation name, input index)`` pairs per intermediate
    node, node by node; input 0 is the cell's first input (the output of the cell two back),
    1 its second (the previous cell), ``j >= 2`` the intermediate node ``j``. ``*_concat`` lists
    the nodes whose outputs are concatenated into the cell's output.
    """

    @property
    def normal(self) -> Sequence[tuple[str, int]]: ...

    @property
    def normal_concat(self) -> Sequence[int]: ...

    @property
    def reduce(self) -> Sequence[tuple[str, int]]: ...

    @property
    def reduce_concat(self) -> Sequence[int]: ...


def _relu_sep_bn(
    c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int, affine: bool
) -> list[nn.Module]:
    """ReLU, depthwise ``kernel x kernel`` convolution, pointwise convolution, batch norm."""
    return [
        nn.ReLU(inplace=False),
        nn.Conv2d(
            c_in,
            c_in,
            kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=c_in,
            bias=False,
        ),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out, affine=affine),
    ]


class ReLUConvBN(nn.Module):
    """ReLU, convolution without bias, batch norm (the cells' 1x1 input preprocessing)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)  # type: ignore[no-any-return]


class DilConv(nn.Module):
    """ReLU, dilated depthwise convolution, pointwise convolution, batch norm."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            *_relu_sep_bn(c_in, c_out, kernel, stride, padding, dilation, affine)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)  # type: ignore[no-any-return]


class SepConv(nn.Module):
    """Two (ReLU, depthwise, pointwise, batch norm) stacks; the first carries the stride."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            *_relu_sep_bn(c_in, c_in, kernel, stride, padding, 1, affine),
            *_relu_sep_bn(c_in, c_out, kernel, 1, padding, 1, affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)  # type: ignore[no-any-return]


class Zero(nn.Module):
    """The ``none`` operation: zeros of the output's shape (subsampled when ``stride > 1``)."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the spatial size without losing pixels: two 1x1 stride-2 convolutions, the second
    shifted by one pixel, concatenated (``c_out / 2`` channels each), then batch norm."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise InvalidConfigError(
                f"FactorizedReduce needs an even number of output channels, got {c_out}."
            )
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1)
        return self.bn(out)  # type: ignore[no-any-return]


def make_op(name: str, channels: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """The DARTS operation ``name`` on ``channels`` channels with the given stride.

    Raises:
        InvalidArchitectureError: ``name`` is not one of :data:`OPS`.
    """
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, affine)
    if name == "sep_conv_3x3":
        return SepConv(channels, channels, 3, stride, 1, affine)
    if name == "sep_conv_5x5":
        return SepConv(channels, channels, 5, stride, 2, affine)
    if name == "dil_conv_3x3":
        return DilConv(channels, channels, 3, stride, 2, 2, affine)
    if name == "dil_conv_5x5":
        return DilConv(channels, channels, 5, stride, 4, 2, affine)
    raise InvalidArchitectureError(unknown_name_message("DARTS operation", name, OPS))


def drop_path(
    x: torch.Tensor, drop_prob: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero each sample of ``x`` with probability ``drop_prob``; scale the others up to keep the
    expectation. Returns a new tensor (the reference works in place)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)
    mask.bernoulli_(keep, generator=generator)
    return x / keep * mask


class DartsCell(nn.Module):
    """One cell of the evaluation network.

    Args:
        ops: Two ``(operation, input)`` pairs per intermediate node, node by node (see
            :class:`GenotypeLike`).
        concat: The nodes whose outputs form the cell's output, concatenated in this order.
        c_prev_prev: Channels of the cell's first input (the cell two back, or the stem).
        c_prev: Channels of its second input (the previous cell, or the stem).
        channels: ``C``, the channels of every node of this cell.
        reduction: Whether the cell halves the spatial size (stride 2 on edges from inputs).
        reduction_prev: Whether the previous cell was a reduction cell (the first input is
            then twice as large and goes through :class:`FactorizedReduce`).
        op: Builds an operation from its name, channels and stride (default
            :func:`make_op`; another operation set, such as BATS's binary one, gives its own).
        inputs: Builds the two input maps from ``(c_prev_prev, c_prev, channels,
            reduction_prev)`` (default: :class:`FactorizedReduce` or :class:`ReLUConvBN`
            for the first, :class:`ReLUConvBN` for the second).
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
        *,
        op: Callable[[str, int, int], nn.Module] = make_op,
        inputs: Callable[[int, int, int, bool], tuple[nn.Module, nn.Module]] | None = None,
    ) -> None:
        super().__init__()
        pairs = [(str(name), int(index)) for name, index in ops]
        if not pairs or len(pairs) % 2:
            raise InvalidArchitectureError(
                f"A DARTS cell lists two (operation, input) pairs per node, got {len(pairs)} "
                f"pairs: {pairs!r}."
            )
        steps = len(pairs) // 2
        for position, (name, index) in enumerate(pairs):
            node = position // 2 + 2
            if not 0 <= index < node:
                raise InvalidArchitectureError(
                    f"Edge {(name, index)!r} of node {node} takes input {index}; node {node} "
                    f"can only read inputs 0..{node - 1}."
                )
        nodes = tuple(int(i) for i in concat)
        if not nodes or any(not 0 <= i < steps + 2 for i in nodes):
            raise InvalidArchitectureError(
                f"The concatenated nodes {list(concat)!r} must be a non-empty list of nodes "
                f"0..{steps + 1}."
            )
        self.reduction = reduction
        self.steps = steps
        self.multiplier = len(nodes)
        self._concat = nodes
        self._indices = tuple(index for _, index in pairs)
        self.preprocess0: nn.Module
        self.preprocess1: nn.Module
        if inputs is not None:
            self.preprocess0, self.preprocess1 = inputs(
                c_prev_prev, c_prev, channels, reduction_prev
            )
        else:
            if reduction_prev:
                self.preprocess0 = FactorizedReduce(c_prev_prev, channels)
            else:
                self.preprocess0 = ReLUConvBN(c_prev_prev, channels, 1)
            self.preprocess1 = ReLUConvBN(c_prev, channels, 1)
        self._ops = nn.ModuleList(
            op(name, channels, 2 if reduction and index < 2 else 1) for name, index in pairs
        )

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        drop_prob: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        drop = self.training and drop_prob > 0.0
        for step in range(self.steps):
            total: torch.Tensor | None = None
            for position in (2 * step, 2 * step + 1):
                op = self._ops[position]
                h = op(states[self._indices[position]])
                if drop and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob, generator)
                total = h if total is None else total + h
            assert total is not None
            states.append(total)
        return torch.cat([states[i] for i in self._concat], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """The auxiliary classifier of NASNet/DARTS on an 8x8 feature map (a 32x32 input).

    ReLU, 5x5 average pooling with stride 3 (to 2x2), 1x1 convolution to 128 channels, batch
    norm, ReLU, 2x2 convolution to 768 channels, batch norm, ReLU, linear classifier.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))  # type: ignore[no-any-return]


def reduction_layers(layers: int) -> tuple[int, int]:
    """Positions of the two reduction cells among ``layers`` cells: ``layers // 3`` and
    ``2 * layers // 3``; the auxiliary head reads the output of the second."""
    return layers // 3, 2 * layers // 3


class NetworkCIFAR(nn.Module):
    """The DARTS evaluation network for CIFAR (32x32 images).

    Args:
        genotype: The cells (see :class:`GenotypeLike`).
        channels: ``C``, the channels of each node in the first stage (36 in DARTS; the stem
            has ``3 C``, the stages ``C``, ``2 C`` and ``4 C``).
        num_classes: Outputs of the classifiers.
        layers: Number of cells (20 in DARTS): ``(layers - 2) / 3`` normal cells per stage,
            rounded as in the reference, at least one per stage, so at least 5.
        auxiliary: Whether to build the auxiliary head (weighted 0.4 in DARTS' training loss).
        drop_path_prob: Drop-path probability; the trainer updates the attribute of the same
            name during training (DARTS: ``0.2 * epoch / epochs``).
        cell: Builds a cell from :class:`DartsCell`'s positional arguments (default
            :class:`DartsCell`; a network of other operations gives its cell class).

    In training mode with ``auxiliary``, ``forward`` returns ``(logits, aux_logits)``;
    otherwise (evaluation mode, or no auxiliary head) it returns ``logits``. The attribute
    ``generator`` (default ``None``, torch's default generator) draws the drop-path masks.

    Raises:
        InvalidConfigError: ``channels``, ``layers``, ``num_classes`` or ``drop_path_prob`` is
            out of range (a stage without normal cells, no channels...).
        InvalidArchitectureError: The genotype is malformed.

    Example:
        >>> from nasforge.spaces.darts import GENOTYPES
        >>> net = NetworkCIFAR(GENOTYPES["darts-v2"])  # 36 channels, 20 layers
        >>> sum(p.numel() for name, p in net.named_parameters() if "auxiliary" not in name)
        3349342
    """

    def __init__(
        self,
        genotype: GenotypeLike,
        *,
        channels: int = 36,
        num_classes: int = 10,
        layers: int = 20,
        auxiliary: bool = True,
        drop_path_prob: float = 0.0,
        cell: Callable[..., DartsCell] = DartsCell,
    ) -> None:
        super().__init__()
        _check_config(channels, num_classes, layers, drop_path_prob)
        self._layers = layers
        self._auxiliary = auxiliary
        self.drop_path_prob = float(drop_path_prob)
        self.generator: torch.Generator | None = None
        stem_channels = 3 * channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 3, padding=1, bias=False), nn.BatchNorm2d(stem_channels)
        )
        reductions = reduction_layers(layers)
        c_prev_prev, c_prev, c_curr = stem_channels, stem_channels, channels
        c_auxiliary = 0
        reduction_prev = False
        cells: list[DartsCell] = []
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            ops, concat = (
                (genotype.reduce, genotype.reduce_concat)
                if reduction
                else (genotype.normal, genotype.normal_concat)
            )
            built = cell(ops, concat, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            cells.append(built)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, built.multiplier * c_curr
            if i == reductions[1]:
                c_auxiliary = c_prev
        self.cells = nn.ModuleList(cells)
        if auxiliary:
            self.auxiliary_head = AuxiliaryHeadCIFAR(c_auxiliary, num_classes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        aux_logits: torch.Tensor | None = None
        aux_layer = reduction_layers(self._layers)[1]
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob, self.generator)
            if i == aux_layer and self._auxiliary and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits: torch.Tensor = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        if aux_logits is not None:
            return logits, aux_logits
        return logits


def _check_config(channels: int, num_classes: int, layers: int, drop_path_prob: float) -> None:
    for name, value in (("channels", channels), ("num_classes", num_classes), ("layers", layers)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidConfigError(f"{name} must be an integer, got {value!r}.")
    if channels < 1:
        raise InvalidConfigError(
            f"channels (C, the width of the first stage) must be at least 1, got {channels}."
        )
    if num_classes < 1:
        raise InvalidConfigError(f"num_classes must be at least 1, got {num_classes}.")
    first, second = reduction_layers(layers)
    stages = (first, second - first - 1, layers - second - 1)
    if layers < 1 or min(stages) < 1:
        empty = [str(s + 1) for s, n in enumerate(stages) if n < 1]
        raise InvalidConfigError(
            f"layers={layers} leaves stage(s) {', '.join(empty)} without a normal cell "
            f"(reduction cells at positions {first} and {second}, normal cells per stage "
            f"{max(stages[0], 0)}, {max(stages[1], 0)}, {max(stages[2], 0)}); use layers >= 5 "
            "(DARTS uses 20 on CIFAR, 8 in its search network)."
        )
    if not 0.0 <= float(drop_path_prob) < 1.0:
        raise InvalidConfigError(f"drop_path_prob must be in [0, 1), got {drop_path_prob!r}.")
