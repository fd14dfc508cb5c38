"""A CIFAR ResNet with one width per convolution: the network whose channel numbers the
channel and pruning searches (:mod:`nasforge.sparse`) choose.

The skeleton is the CIFAR ResNet of He, K., Zhang, X., Ren, S. and Sun, J. "Deep Residual
Learning for Image Recognition." CVPR 2016, arXiv:1512.03385, Section 4.2: a 3x3 stem
convolution, three stages of ``blocks`` basic blocks (two 3x3 convolutions each) at strides
1, 2, 2 and full widths ``base``, ``2 base``, ``4 base``, global average pooling and a linear
classifier (ResNet-20 is ``blocks=3, base=16``). It is the network Dong and Yang prune in
"Network Pruning via Transformable Architecture Search" (NeurIPS 2019, arXiv:1905.09717,
Section 4.1).

Why not the ``mobilenet`` or ``ofa`` networks: their widths are per stage (one option list per
stage, the expanded width a ratio of the input), so a pruned network with its own channel
number at every convolution is not a point of either space; here every convolution's output
width is free.

A width configuration lists the output width of every convolution in order: the stem, then
per block its first and second convolution (``1 + 2 * 3 * blocks`` numbers,
:func:`full_widths`). A block's output width is that of its second convolution; its shortcut
is the identity when the stride is 1 and the widths agree, else a 1x1 convolution with batch
norm (after a 2x2 average pooling when the stride is 2), as the pruned networks of TAS's code
add one where the widths differ.

:class:`TASResNet` is the same network as TAS searches it (:mod:`nasforge.sparse.tas`): every
convolution at its full width with a batch norm per candidate width, learnable logits over the
candidates, Gumbel-softmax sampling (:func:`gumbel_pick`) and channel-wise interpolation
(:func:`channel_wise_interpolation`) of the sampled widths' feature maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidConfigError

__all__ = [
    "WIDTH_RATIOS",
    "CifarResNet",
    "ResNetLayout",
    "TASResNet",
    "channel_wise_interpolation",
    "full_widths",
    "gumbel_pick",
    "width_choices",
]


@dataclass(frozen=True)
class ResNetLayout:
    """The shape of a CIFAR ResNet apart from its widths.

    Attributes:
        blocks: Basic blocks per stage (3 stages).
        base: Full width of the first stage (the second and third are 2x and 4x).
        num_classes: Classes of the classifier.
        resolution: Side of the (square) input images.
    """

    blocks: int = 1
    base: int = 16
    num_classes: int = 10
    resolution: int = 32

    def __post_init__(self) -> None:
        for name in ("blocks", "base", "resolution"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(
                    f"ResNetLayout.{name} must be a positive integer, got {value!r}."
                )
        if self.resolution % 4:
            raise InvalidConfigError(
                f"ResNetLayout.resolution must be a multiple of 4 (two stride-2 stages), got "
                f"{self.resolution}."
            )
        if (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int)
            or self.num_classes < 2
        ):
            raise InvalidConfigError(
                f"ResNetLayout.num_classes must be >= 2, got {self.num_classes!r}."
            )

    @property
    def num_convs(self) -> int:
        """Convolutions with a searched width: the stem and two per block."""
        return 1 + 6 * self.blocks

    def strides(self) -> tuple[int, ...]:
        """The stride of each block (1 in the first stage, 2 at the start of the others)."""
        return tuple(
            2 if stage > 0 and i == 0 else 1 for stage in range(3) for i in range(self.blocks)
        )

    def conv_shapes(self, widths: Sequence[int]) -> list[tuple[int, int, int, int]]:
        """``(in_channels, out_channels, kernel, output side)`` of every convolution of the
        network of ``widths``, shortcut projections included (in module order)."""
        widths = self.check(widths)
        side = self.resolution
        shapes = [(3, widths[0], 3, side)]
        c_in = widths[0]
        for b, stride in enumerate(self.strides()):
            side = -(-side // stride)
            mid, out = widths[1 + 2 * b], widths[2 + 2 * b]
            shapes.append((c_in, mid, 3, side))
            shapes.append((mid, out, 3, side))
            if stride != 1 or c_in != out:
                shapes.append((c_in, out, 1, side))
            c_in = out
        return shapes

    def flops(self, widths: Sequence[int]) -> int:
        """Multiply-accumulates of one image: convolutions and the classifier (batch norm,
        ReLU and pooling are left out, as TAS counts)."""
        convs = sum(k * k * ci * co * side * side for ci, co, k, side in self.conv_shapes(widths))
        return int(convs + widths[-1] * self.num_classes)

    def params(self, widths: Sequence[int]) -> int:
        """Weights of the convolutions and the classifier (biases and batch norm left out)."""
        convs = sum(k * k * ci * co for ci, co, k, _ in self.conv_shapes(widths))
        return int(convs + widths[-1] * self.num_classes)

    def check(self, widths: Sequence[int]) -> tuple[int, ...]:
        """``widths`` as a tuple, checked.

        Raises:
            InvalidConfigError: The wrong number of widths, or one that is not a positive
                integer.
        """
        values = tuple(widths)
        if len(values) != self.num_convs:
            raise InvalidConfigError(
                f"A ResNet of {self.blocks} block(s) per stage needs {self.num_convs} widths "
                f"(the stem, then two per block), got {len(values)}: {values}."
            )
        bad = [w for w in values if isinstance(w, bool) or not isinstance(w, int) or w < 1]
        if bad:
            raise InvalidConfigError(f"Widths must be positive integers, got {bad} in {values}.")
        return values


def full_widths(layout: ResNetLayout) -> tuple[int, ...]:
    """The unpruned widths: ``base`` for the stem and the first stage, then 2x and 4x.

    Example:
        >>> full_widths(ResNetLayout(blocks=1, base=16))
        (16, 16, 16, 32, 32, 64, 64)
    """
    widths = [layout.base]
    for stage in range(3):
        widths += [layout.base * 2**stage] * (2 * layout.blocks)
    return tuple(widths)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out)
    )


class _Block(nn.Module):
    def __init__(self, c_in: int, mid: int, out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = _conv_bn(c_in, mid, 3, stride)
        self.conv_b = _conv_bn(mid, out, 3)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != out:
            pool: nn.Module = nn.AvgPool2d(2) if stride != 1 else nn.Identity()
            self.shortcut = nn.Sequential(pool, *_conv_bn(c_in, out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_b(torch.relu(self.conv_a(x)))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The CIFAR ResNet of ``layout`` with the convolution widths ``widths`` (default: full).

    Raises:
        InvalidConfigError: Widths of the wrong length or not positive integers.

    Example:
        >>> layout = ResNetLayout(blocks=1, base=4, resolution=8)
        >>> net = CifarResNet(layout, (2, 3, 4, 5, 6, 7, 8))
        >>> tuple(net(torch.zeros(2, 3, 8, 8)).shape), layout.params(net.widths)
        ((2, 10), 1708)
    """

    def __init__(self, layout: ResNetLayout, widths: Sequence[int] | None = None) -> None:
        super().__init__()
        self.layout = layout
        self.widths = layout.check(full_widths(layout) if widths is None else widths)
        self.stem = _conv_bn(3, self.widths[0], 3)
        blocks = []
        c_in = self.widths[0]
        for b, stride in enumerate(layout.strides()):
            mid, out = self.widths[1 + 2 * b], self.widths[2 + 2 * b]
            blocks.append(_Block(c_in, mid, out, stride))
            c_in = out
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(c_in, layout.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(torch.relu(self.stem(x)))
        logits: torch.Tensor = self.classifier(x.mean((2, 3)))
        return logits


# -- the search network of TAS (nasforge.sparse.tas) ----------------------------------------
#: Candidate widths as fractions of a convolution's full width (TAS's code).
WIDTH_RATIOS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def width_choices(full: int, ratios: Sequence[float] = WIDTH_RATIOS) -> tuple[int, ...]:
    """The candidate widths of a convolution of ``full`` channels: ``int(full * r)`` for each
    ratio, at least 1, without repeats, ascending.

    Example:
        >>> width_choices(16)
        (4, 6, 8, 9, 11, 12, 14, 16)
    """
    return tuple(sorted({max(1, int(full * r + 1e-9)) for r in ratios}))


def channel_wise_interpolation(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Channel-wise interpolation (TAS Eq. 4): ``x`` of ``c`` channels resized to
    ``channels``, output channel ``j`` the mean of input channels ``floor(j c / channels)``
    to ``ceil((j + 1) c / channels) - 1`` (adaptive average pooling along the channels)."""
    if x.shape[1] == channels:
        return x
    h, w = x.shape[-2:]
    return F.adaptive_avg_pool3d(x.unsqueeze(1), (channels, h, w)).squeeze(1)


def gumbel_pick(
    logits: torch.Tensor, tau: float, generator: torch.Generator, num: int = 2
) -> tuple[list[int], torch.Tensor]:
    """Draw ``num`` distinct candidates with Gumbel-perturbed logits (TAS Eq. 2-3).

    ``h = (log_softmax(logits) + g) / tau`` with ``g = -log(Exp(1))`` noise; the candidates
    are drawn without replacement from ``softmax(h)`` and weighted by the softmax of their
    entries of ``h`` (differentiable in ``logits``). Fewer candidates than ``num``: all.

    Returns:
        The indices and their weights (summing to 1).
    """
    num = min(num, logits.numel())
    noise = torch.empty(logits.shape).exponential_(generator=generator).clamp_min(1e-20)
    perturbed = (F.log_softmax(logits, dim=-1) - noise.log().to(logits.device)) / tau
    with torch.no_grad():
        probs = F.softmax(perturbed, dim=-1).cpu() + 1e-7
        index = torch.multinomial(probs, num, replacement=False, generator=generator).tolist()
    weights = F.softmax(perturbed[index], dim=-1)
    return index, weights


class _SearchConv(nn.Module):
    """One convolution of the search network: the full filters, a batch norm per width."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, ratios: Sequence[float]
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False)
        self.choices = width_choices(c_out, ratios)
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in self.choices)

    def forward(self, x: torch.Tensor, index: list[int], weights: torch.Tensor) -> torch.Tensor:
        widths = [self.choices[i] for i in index]
        top = max(widths)
        weight = self.conv.weight[:top, : x.shape[1]]
        y = F.conv2d(x, weight, None, self.conv.stride, self.conv.padding)
        parts = [
            weights[k] * channel_wise_interpolation(self.norms[i](y[:, :c]), top)
            for k, (i, c) in enumerate(zip(index, widths, strict=True))
        ]
        return torch.stack(parts).sum(0)


def _pad_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` with the narrower one padded with zero channels."""
    if a.shape[1] < b.shape[1]:
        a, b = b, a
    if a.shape[1] == b.shape[1]:
        return a + b
    return a + F.pad(b, (0, 0, 0, 0, 0, a.shape[1] - b.shape[1]))


class TASResNet(nn.Module):
    """The search network of TAS for the CIFAR ResNet of ``layout``: every convolution of
    width ``w`` has the candidates ``width_choices(w, ratios)`` and logits
    ``alpha[i]`` (initialised N(0, 0.01), as TAS's code).

    ``forward(x, picks)`` runs the network with, for convolution ``i``, the sampled candidates
    and weights ``picks[i]`` (see :meth:`sample`); ``picks=None`` runs the most probable widths.
    """

    def __init__(self, layout: ResNetLayout, ratios: Sequence[float] = WIDTH_RATIOS) -> None:
        super().__init__()
        self.layout = layout
        self.full = full_widths(layout)
        ratios = tuple(ratios)
        if not ratios or any(not 0.0 < r <= 1.0 for r in ratios):
            raise InvalidConfigError(f"Width ratios must be numbers in (0, 1], got {ratios}.")
        full = self.full
        self.convs = nn.ModuleList([_SearchConv(3, full[0], 3, 1, ratios)])
        self.shortcuts = nn.ModuleDict()
        c_in = full[0]
        for b, stride in enumerate(layout.strides()):
            mid, out = full[1 + 2 * b], full[2 + 2 * b]
            self.convs.append(_SearchConv(c_in, mid, 3, stride, ratios))
            self.convs.append(_SearchConv(mid, out, 3, 1, ratios))
            if stride != 1 or c_in != out:
                self.shortcuts[str(b)] = _SearchConv(c_in, out, 1, 1, ratios)
            c_in = out
        self.classifier = nn.Linear(c_in, layout.num_classes)
        #: The candidate widths of every convolution.
        self.choices: list[tuple[int, ...]] = [width_choices(w, ratios) for w in full]
        self.alphas = nn.ParameterList(
            nn.Parameter(torch.randn(len(choices)) * 0.01) for choices in self.choices
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas)

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.alphas}
        return [p for p in self.parameters() if id(p) not in arch]

    def sample(
        self, tau: float, generator: torch.Generator
    ) -> list[tuple[list[int], torch.Tensor]]:
        """Two candidates and their weights per convolution (:func:`gumbel_pick`)."""
        return [gumbel_pick(alpha, tau, generator) for alpha in self.alphas]

    def argmax_widths(self) -> tuple[int, ...]:
        """The most probable width of every convolution (the searched configuration)."""
        return tuple(
            choices[int(torch.argmax(alpha))]
            for choices, alpha in zip(self.choices, self.alphas, strict=True)
        )

    def expected_widths(self) -> list[torch.Tensor]:
        """``E[c_i] = sum_j softmax(alpha_i)_j c_ij`` of every convolution (differentiable)."""
        return [
            (F.softmax(alpha, dim=0) * alpha.new_tensor(choices, dtype=torch.float32)).sum()
            for choices, alpha in zip(self.choices, self.alphas, strict=True)
        ]

    def expected_cost(self, cost: str = "flops") -> torch.Tensor:
        """``E_cost``: every convolution's cost at the expected widths (stride-2 shortcuts
        with their block's output width), plus the classifier."""
        e = self.expected_widths()
        spatial = cost == "flops"
        side = self.layout.resolution
        total = e[0] * 27 * (side * side if spatial else 1)
        c_in = e[0]
        for b, stride in enumerate(self.layout.strides()):
            side = -(-side // stride)
            area = side * side if spatial else 1
            mid, out = e[1 + 2 * b], e[2 + 2 * b]
            total = total + 9 * area * (c_in * mid + mid * out)
            if str(b) in self.shortcuts:
                total = total + area * c_in * out
            c_in = out
        return total + c_in * self.layout.num_classes

    def forward(
        self, x: torch.Tensor, picks: Sequence[tuple[list[int], torch.Tensor]] | None = None
    ) -> torch.Tensor:
        if picks is None:
            best = [int(torch.argmax(a)) for a in self.alphas]
            picks = [([i], x.new_ones(1)) for i in best]
        out = torch.relu(self.convs[0](x, *picks[0]))
        for b in range(len(self.layout.strides())):
            a_pick, b_pick = picks[1 + 2 * b], picks[2 + 2 * b]
            y = self.convs[2 + 2 * b](torch.relu(self.convs[1 + 2 * b](out, *a_pick)), *b_pick)
            shortcut = out
            if str(b) in self.shortcuts:
                shortcut = self.shortcuts[str(b)](
                    F.avg_pool2d(out, 2) if out.shape[-1] > y.shape[-1] else out, *b_pick
                )
            out = torch.relu(_pad_add(y, shortcut))
        pooled = out.mean((2, 3))
        logits: torch.Tensor = F.linear(
            pooled, self.classifier.weight[:, : pooled.shape[1]], self.classifier.bias
        )
        return logits
