"""Layers of MobileNet-style networks: stem, inverted-residual (MBConv) block and head.

One :class:`LayerSpec` describes one layer at one input shape; :func:`build_layer` builds
exactly that layer and :class:`MobileNetwork` chains the layers of a network, so the cost of a
network is the sum of its layers' costs (what the per-layer latency tables of ProxylessNAS,
FBNet, Single-Path NAS and HURRICANE rest on). The spaces ``mobilenet`` and ``fbnet`` describe
their networks as tuples of specs (``space.layers(arch)``).

The block is the inverted residual of MobileNetV2 (Sandler, M., Howard, A., Zhu, M.,
Zhmoginov, A. and Chen, L.-C. "MobileNetV2: Inverted Residuals and Linear Bottlenecks."
CVPR 2018, arXiv:1801.04381, Table 1): a 1x1 expansion convolution with batch norm and the
activation (left out when the expansion is 1, as in MobileNetV2's first block), a ``k x k``
depthwise convolution with the block's stride, batch norm and the activation, an optional
squeeze-and-excitation on the expanded channels, a linear 1x1 projection with batch norm, and
the identity shortcut when the stride is 1 and the input and output widths are equal.

Options beyond MobileNetV2:

* **Squeeze-and-excitation** (Hu, J., Shen, L. and Sun, G. "Squeeze-and-Excitation
  Networks." CVPR 2018, arXiv:1709.01507) in two variants, :data:`SE_VARIANTS`:
  ``"mnasnet"`` squeezes to ``max(1, int(0.25 * in_channels))`` (a quarter of the *block's
  input* width), ReLU, sigmoid (Tan, M. et al. "MnasNet: Platform-Aware Neural Architecture
  Search for Mobile." CVPR 2019, arXiv:1807.11626; tensorflow/tpu ``mnasnet_model.py``,
  ``se_ratio=0.25`` of ``input_filters``); ``"mobilenetv3"`` squeezes to
  ``make_divisible(expanded / 4, 8)``, ReLU, hard sigmoid (Howard, A. et al. "Searching for
  MobileNetV3." ICCV 2019, arXiv:1905.02244, Section 5.3). Both use 1x1 convolutions with
  biases.
* **h-swish** (MobileNetV3) instead of ReLU; ``"relu6"`` (MobileNetV2, ProxylessNAS) is also
  accepted by :class:`LayerSpec`, with the same costs as ReLU.
* **Pointwise group convolutions** (``groups``), with a channel shuffle after the first 1x1
  convolution when ``groups > 1``, as FBNet's candidate blocks (Wu, B. et al. "FBNet:
  Hardware-Aware Efficient ConvNet Design via Differentiable Neural Architecture Search."
  CVPR 2019, arXiv:1812.03443, Figure 3). FBNet keeps the expansion convolution at
  expansion 1 (``always_expand=True``).

Expanded width: ``in_channels * expansion`` when that is a whole number (MobileNetV3-Large's
184 = 80 x 2.3 included), else :func:`make_divisible` of it.

Heads (``kind="head"``, everything after the last block): an optional 1x1 convolution to
``head_conv`` channels with batch norm and the activation, global average pooling, an optional
linear layer to ``head_hidden`` with the activation and no batch norm (MobileNetV3's
efficient last stage, Section 5.1), dropout (``dropout``, not part of :attr:`LayerSpec.key`:
it does not change the cost) and the linear classifier to ``out_channels`` classes.

Where this differs from the reference implementations: batch norm keeps PyTorch's defaults
(TensorFlow's references use momentum 0.99 and epsilon 1e-3), which changes neither shapes
nor costs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from nasforge.errors import InvalidConfigError, unknown_name_message

__all__ = [
    "ACTIVATIONS",
    "KINDS",
    "SE_VARIANTS",
    "LayerSpec",
    "MBConv",
    "MobileHead",
    "MobileNetwork",
    "SqueezeExcite",
    "Stem",
    "build_layer",
    "channel_shuffle",
    "expanded_channels",
    "init_weights",
    "make_divisible",
]

#: Layer kinds of :class:`LayerSpec`.
KINDS = ("stem", "mbconv", "head")
#: Squeeze-and-excitation variants (``"none"``: no squeeze-and-excitation).
SE_VARIANTS = ("none", "mnasnet", "mobilenetv3")
#: Activations.
ACTIVATIONS = ("relu", "relu6", "hswish")


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``,
    by default ``divisor``), one ``divisor`` more when rounding lost over 10%: the rule of
    the TensorFlow MobileNet and MnasNet references for scaled widths."""
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def expanded_channels(in_channels: int, expansion: float) -> int:
    """The width of an MBConv block's depthwise stage: ``in_channels * expansion`` when a
    whole number, else :func:`make_divisible` of it."""
    value = in_channels * expansion
    if abs(value - round(value)) < 1e-6:
        return round(value)
    return make_divisible(value)


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a mobile network at one input shape (a frozen, hashable value).

    Attributes:
        kind: ``"stem"``, ``"mbconv"`` or ``"head"`` (:data:`KINDS`).
        in_channels: Input width (3 for the stem).
        out_channels: Output width (the number of classes for the head).
        kernel: Kernel side of the stem's or the block's depthwise convolution (1 for heads).
        expansion: The block's expansion ratio (1 for stems and heads).
        stride: 1 or 2.
        se: Squeeze-and-excitation variant, one of :data:`SE_VARIANTS`.
        act: Activation, one of :data:`ACTIVATIONS`.
        resolution: Side of the (square) input in pixels.
        groups: Groups of the block's pointwise convolutions (channel shuffle when > 1).
        always_expand: Keep the block's 1x1 expansion convolution at expansion 1 (FBNet).
        head_conv: Head only: width of the 1x1 convolution before pooling (0: none).
        head_hidden: Head only: width of the linear layer after pooling (0: none).
        dropout: Head only: dropout before the classifier (not part of :attr:`key`).

    Raises:
        InvalidConfigError: An unknown kind, variant or activation, a non-positive width,
            an even kernel, a stride other than 1 or 2, or groups that do not divide the
            widths.

    Example:
        >>> spec = LayerSpec("mbconv", 24, 40, kernel=5, expansion=3, stride=2,
        ...                  se="mobilenetv3", resolution=56)
        >>> spec.key
        'mbconv:i24-o40-k5-e3-s2-se=mobilenetv3-relu-r56'
        >>> layer = build_layer(spec)
        >>> tuple(layer(torch.zeros(1, 24, 56, 56)).shape)
        (1, 40, 28, 28)
    """

    kind: str
    in_channels: int
    out_channels: int
    kernel: int = 3
    expansion: float = 1
    stride: int = 1
    se: str = "none"
    act: str = "relu"
    resolution: int = 224
    groups: int = 1
    always_expand: bool = False
    head_conv: int = 0
    head_hidden: int = 0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        for field, valid in (("kind", KINDS), ("se", SE_VARIANTS), ("act", ACTIVATIONS)):
            value = getattr(self, field)
            if value not in valid:
                problems.append(unknown_name_message(f"layer {field}", str(value), valid))
        for field in ("in_channels", "out_channels", "resolution", "groups", "kernel"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{field} must be a positive integer, got {value!r}.")
        if isinstance(self.kernel, int) and self.kernel % 2 == 0:
            problems.append(f"kernel must be odd (3, 5, 7...), got {self.kernel}.")
        if self.stride not in (1, 2):
            problems.append(f"stride must be 1 or 2, got {self.stride!r}.")
        if not (isinstance(self.expansion, (int, float)) and self.expansion >= 1):
            problems.append(f"expansion must be a number >= 1, got {self.expansion!r}.")
        if self.head_conv < 0 or self.head_hidden < 0 or not 0.0 <= self.dropout < 1.0:
            problems.append("head_conv and head_hidden must be >= 0 and dropout in [0, 1).")
        if not problems and self.kind == "mbconv" and self.groups > 1:
            middle = self.mid_channels
            bad = [w for w in (self.in_channels, middle, self.out_channels) if w % self.groups]
            if bad:
                problems.append(
                    f"groups={self.groups} must divide the block's widths "
                    f"{self.in_channels}, {middle}, {self.out_channels}."
                )
        if problems:
            raise InvalidConfigError(f"Invalid layer {self!r}: {' '.join(problems)}")

    @property
    def mid_channels(self) -> int:
        """Width of a block's depthwise stage (:func:`expanded_channels`)."""
        return expanded_channels(self.in_channels, self.expansion)

    @property
    def out_resolution(self) -> int:
        """Side of the output (1 for a head)."""
        if self.kind == "head":
            return 1
        return -(-self.resolution // self.stride)

    @property
    def residual(self) -> bool:
        """Whether a block adds its input (stride 1 and equal widths)."""
        return self.kind == "mbconv" and self.stride == 1 and self.in_channels == self.out_channels

    @property
    def key(self) -> str:
        """A short id of the layer's shape and choices (the key of latency tables)."""
        if self.kind == "stem":
            return (
                f"stem:i{self.in_channels}-o{self.out_channels}-k{self.kernel}-s{self.stride}"
                f"-{self.act}-r{self.resolution}"
            )
        if self.kind == "head":
            return (
                f"head:i{self.in_channels}-c{self.head_conv}-h{self.head_hidden}"
                f"-n{self.out_channels}-{self.act}-r{self.resolution}"
            )
        key = (
            f"mbconv:i{self.in_channels}-o{self.out_channels}-k{self.kernel}"
            f"-e{self.expansion:g}-s{self.stride}-se={self.se}-{self.act}-r{self.resolution}"
        )
        if self.groups > 1:
            key += f"-g{self.groups}"
        if self.always_expand:
            key += "-x"
        return key


def _activation(name: str) -> nn.Module:
    if name == "hswish":
        return nn.Hardswish()
    if name == "relu6":
        return nn.ReLU6()
    return nn.ReLU()


def _conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1
) -> list[nn.Module]:
    conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
    return [conv, nn.BatchNorm2d(c_out)]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle (Zhang, X. et al., CVPR 2018, arXiv:1707.01083): the
    channels of each group spread over all groups."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: pooled channels, 1x1 convolution to ``squeezed`` with ReLU,
    1x1 convolution back with ``gate`` (``"sigmoid"`` or ``"hsigmoid"``), channel scaling."""

    def __init__(self, channels: int, squeezed: int, gate: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.act = nn.ReLU()
        self.gate = nn.Hardsigmoid() if gate == "hsigmoid" else nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        out: torch.Tensor = x * self.gate(self.expand(self.act(self.reduce(scale))))
        return out


class Stem(nn.Sequential):
    """The stem: ``k x k`` convolution with the stride, batch norm, activation."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__(
            *_conv_bn(spec.in_channels, spec.out_channels, spec.kernel, spec.stride),
            _activation(spec.act),
        )
        self.spec = spec


class MBConv(nn.Module):
    """The inverted residual block of ``spec`` (see the module docstring)."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.spec = spec
        middle = spec.mid_channels
        self.groups = spec.groups
        self.expand: nn.Module | None = None
        if middle != spec.in_channels or spec.always_expand:
            self.expand = nn.Sequential(
                *_conv_bn(spec.in_channels, middle, 1, groups=spec.groups),
                _activation(spec.act),
            )
        self.depthwise = nn.Sequential(
            *_conv_bn(middle, middle, spec.kernel, spec.stride, groups=middle),
            _activation(spec.act),
        )
        self.se: nn.Module | None = None
        if spec.se == "mnasnet":
            self.se = SqueezeExcite(middle, max(1, int(spec.in_channels * 0.25)), "sigmoid")
        elif spec.se == "mobilenetv3":
            self.se = SqueezeExcite(middle, make_divisible(middle / 4), "hsigmoid")
        self.project = nn.Sequential(*_conv_bn(middle, spec.out_channels, 1, groups=spec.groups))
        self.residual = spec.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expand is not None:
            out = self.expand(out)
            if self.groups > 1:
                out = channel_shuffle(out, self.groups)
        out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        result: torch.Tensor = out + x if self.residual else out
        return result


class MobileHead(nn.Module):
    """The head of ``spec``: optional 1x1 convolution, pooling, optional hidden linear
    layer, dropout, classifier."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.spec = spec
        width = spec.in_channels
        self.conv: nn.Module | None = None
        if spec.head_conv:
            self.conv = nn.Sequential(*_conv_bn(width, spec.head_conv, 1), _activation(spec.act))
            width = spec.head_conv
        self.hidden: nn.Module | None = None
        if spec.head_hidden:
            self.hidden = nn.Sequential(nn.Linear(width, spec.head_hidden), _activation(spec.act))
            width = spec.head_hidden
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = nn.Linear(width, spec.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        x = x.mean((2, 3))
        if self.hidden is not None:
            x = self.hidden(x)
        logits: torch.Tensor = self.classifier(self.dropout(x))
        return logits


def build_layer(spec: LayerSpec) -> nn.Module:
    """The module of ``spec``: :class:`Stem`, :class:`MBConv` or :class:`MobileHead`."""
    if spec.kind == "stem":
        return Stem(spec)
    if spec.kind == "mbconv":
        return MBConv(spec)
    return MobileHead(spec)


def init_weights(module: nn.Module) -> None:
    """The initialisation of the mobile networks (:class:`MobileNetwork` and the search
    networks built from the same layers): Kaiming-normal convolutions (fan out), unit batch
    norms, linear layers N(0, 0.01), zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class MobileNetwork(nn.Module):
    """The layers of ``specs`` in order (``self.layers[i]`` is ``build_layer(specs[i])``).

    Weights start as the MobileNet references start them: convolutions Kaiming-normal
    (fan out), batch norms one and zero, linear layers normal with standard deviation 0.01,
    biases zero.

    Raises:
        InvalidConfigError: No layers, or a layer whose input does not match the previous
            layer's output (width or resolution).
    """

    def __init__(self, specs: Iterable[LayerSpec]) -> None:
        super().__init__()
        self.specs: tuple[LayerSpec, ...] = tuple(specs)
        if not self.specs:
            raise InvalidConfigError("A MobileNetwork needs at least one layer spec.")
        for before, after in zip(self.specs, self.specs[1:], strict=False):
            if before.kind == "head" or (before.out_channels, before.out_resolution) != (
                after.in_channels,
                after.resolution,
            ):
                raise InvalidConfigError(
                    f"Layer {after.key} does not follow layer {before.key}: it expects "
                    f"{after.in_channels} channels at {after.resolution}x{after.resolution}, "
                    f"the previous layer gives {before.out_channels} at "
                    f"{before.out_resolution}x{before.out_resolution}."
                )
        self.layers = nn.ModuleList(build_layer(spec) for spec in self.specs)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    @property
    def num_blocks(self) -> int:
        """The number of MBConv blocks."""
        return sum(spec.kind == "mbconv" for spec in self.specs)
