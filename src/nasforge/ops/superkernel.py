"""Single-Path NAS: one superkernel MBConv layer per searchable layer, its runtime model and
its runtime-aware loss.

Stamoulis, D., Ding, R., Wang, D., Lymberopoulos, D., Priyantha, B., Liu, J. and Marculescu,
D. "Single-Path NAS: Designing Hardware-Efficient ConvNets in less than 4 Hours." ECML-PKDD
2019, arXiv:1904.02877, Section 3. Instead of one path per candidate, every layer holds the
weights of its largest candidate (the largest kernel and expansion) once, and the candidates
are subsets of them:

* **kernel**: the ``3x3`` kernel is the centre of the ``5x5`` superkernel, ``w_5x5 = w_3x3 +
  w_5x5\\3x3``; the decision is ``w_k = w_3x3 + 1(||w_5x5\\3x3||^2 > t_k=5) * w_5x5\\3x3``
  (Section 3). More kernels nest the same way (``(3, 5, 7)``: the ``7x7`` ring counts only
  when the ``5x5`` ring does);
* **expansion**: the channels of the expanded layer are groups, the first ``in * e_1`` of them
  the layer of the smallest expansion (expansion 3 is the first half of expansion 6), and
  ``w_k,e = 1(||w_k,50%||^2 > t_e=3) * (w_k,50% + 1(||w_k,100%\\50%||^2 > t_e=6) *
  w_k,100%\\50%)``: dropping the first group drops the whole block, leaving the identity
  shortcut ("skip"), which is offered only where the block has a shortcut (stride 1, equal
  widths), as in the paper;
* the indicator ``1(x > 0)`` of ``x = ||w||^2 - t`` is exact in the forward pass and relaxed
  to ``sigmoid(x)`` in the backward pass (straight-through, as in the authors' code), so the
  thresholds ``t`` and the weights both receive gradient. Thresholds start at 0 (every
  indicator on: the largest layer), as in the authors' code;
* the layer's runtime follows the same indicators: ``R = 1_e3 * (R_k,3 + 1_e6 * (R_k,6 -
  R_k,3))`` with ``R_k,e = R_3x3,e + 1_k5 * (R_5x5,e - R_3x3,e)`` (the paper's nested form,
  with ``R_3x3,e / R_5x5,e`` as the kernel ratio per expansion) from a per-layer table of the
  four (kernel, expansion) runtimes, so it equals the table's entry of the chosen block and is
  differentiable through the relaxation (:meth:`SuperKernelMBConv.runtime`); the network's
  runtime ``R`` is their sum plus the fixed layers (:func:`single_path_runtime`), and the loss
  is ``CE + lambda * log(R)`` (:func:`single_path_loss`; ``lambda`` 0.020 in the authors'
  published search command).

Each step therefore trains one network, the superkernel layer, at the cost of the largest
candidate: one ``1x1`` expansion, one depthwise convolution and one projection per layer.

Where this differs from the paper and the authors' code (``nas-search/superkernel.py``):

* the expansion groups are switched off on the *activations* of the depthwise stage (after its
  batch norm and activation) and the skip decision on the block's output, where the authors
  mask the depthwise kernel: a zeroed kernel group still passes its batch norm's shift to the
  projection, so the masked layer would not equal the smaller block; here it does, exactly
  (:meth:`SuperKernelMBConv.extract`). The indicators still read the kernel's group norms;
* the authors' code uses the plain norm ``||w||`` and one kernel ratio taken at full
  expansion; this module follows the paper's squared norm (``squared_norm=False`` gives the
  code's) and its per-expansion ratio. The dropout the code applies to the indicators during
  its warm-up is left out.

Example:
    >>> import torch
    >>> layer = SuperKernelMBConv(8, 8, kernels=(3, 5), expansions=(3, 6), resolution=16)
    >>> layer.decision()  # thresholds start at 0: the largest block
    (5, 6)
    >>> table = {(3, 3): 1.0, (5, 3): 1.5, (3, 6): 2.0, (5, 6): 3.0}
    >>> layer.runtime(table).item()
    3.0
    >>> tuple(layer(torch.randn(2, 8, 16, 16)).shape)
    (2, 8, 16, 16)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

import torch
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.ops.mobile import ACTIVATIONS, LayerSpec, MBConv, build_layer, expanded_channels

__all__ = [
    "SuperKernelMBConv",
    "indicator",
    "single_path_loss",
    "single_path_runtime",
]

RuntimeTable = Mapping[tuple[int, float], float]


def indicator(x: torch.Tensor) -> torch.Tensor:
    """``1(x > 0)`` in value, with the gradient of ``sigmoid(x)`` (the paper's relaxation)."""
    soft = torch.sigmoid(x)
    return (x > 0).to(x.dtype) + (soft - soft.detach())  # exactly 0 or 1 in value


def _act(name: str) -> nn.Module:
    if name == "hswish":
        return nn.Hardswish()
    if name == "relu6":
        return nn.ReLU6()
    return nn.ReLU()


def _conv_bn_of(stage: nn.Module) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """The convolution and batch norm that begin a stage of :class:`MBConv`."""
    conv, bn = stage[0], stage[1]  # type: ignore[index]
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    return conv, bn


def _copy_bn(target: nn.BatchNorm2d, source: nn.BatchNorm2d, keep: slice) -> None:
    with torch.no_grad():
        target.weight.copy_(source.weight[keep])
        target.bias.copy_(source.bias[keep])
        assert target.running_mean is not None and source.running_mean is not None
        assert target.running_var is not None and source.running_var is not None
        target.running_mean.copy_(source.running_mean[keep])
        target.running_var.copy_(source.running_var[keep])
        if target.num_batches_tracked is not None and source.num_batches_tracked is not None:
            target.num_batches_tracked.copy_(source.num_batches_tracked)
    target.momentum, target.eps = source.momentum, source.eps


class SuperKernelMBConv(nn.Module):
    """One searchable MBConv layer of Single-Path NAS (see the module docstring).

    Args:
        in_channels, out_channels: The block's widths.
        stride: 1 or 2 (of the depthwise convolution).
        kernels: Kernel sides to choose from, increasing and odd (paper: ``(3, 5)``).
        expansions: Expansion ratios, increasing, each above 1 (paper: ``(3, 6)``); the
            expanded widths are :func:`nasforge.ops.mobile.expanded_channels`.
        act: ``"relu"``, ``"relu6"`` or ``"hswish"``.
        resolution: Input side, for the extracted block's :class:`LayerSpec`.
        allow_skip: Offer "skip" (drop the block); default: where the block has a shortcut.
        squared_norm: Compare ``||w||^2`` with the thresholds (paper); ``False``: ``||w||``
            (the authors' code).

    Attributes:
        kernel_thresholds: ``t_k`` of each ring beyond the smallest kernel.
        expansion_thresholds: ``t_e`` of each channel group (the first is the skip
            decision; unused when skip is not offered).

    Raises:
        InvalidConfigError: Kernels not odd and increasing, expansions not above 1 and
            increasing (or widths that do not grow), a bad stride or activation, or skip
            asked for a block without a shortcut.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        kernels: Sequence[int] = (3, 5),
        expansions: Sequence[float] = (3, 6),
        act: str = "relu",
        resolution: int = 224,
        allow_skip: bool | None = None,
        squared_norm: bool = True,
    ) -> None:
        super().__init__()
        kernels, expansions = tuple(kernels), tuple(expansions)
        problems = []
        if not kernels or any(
            isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0 for k in kernels
        ):
            problems.append(f"kernels must be odd positive integers, got {kernels!r}.")
        elif any(a >= b for a, b in pairwise(kernels)):
            problems.append(f"kernels must increase, got {kernels!r}.")
        if not expansions or any(
            isinstance(e, bool) or not isinstance(e, (int, float)) or not e > 1 for e in expansions
        ):
            problems.append(
                f"expansions must be numbers above 1, got {expansions!r} (expansion 1 has no "
                "expansion convolution, so it cannot be a channel group of a larger one)."
            )
        if stride not in (1, 2):
            problems.append(f"stride must be 1 or 2, got {stride!r}.")
        if act not in ACTIVATIONS:
            problems.append(f"act must be one of {ACTIVATIONS}, got {act!r}.")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}.")
        if problems:
            raise InvalidConfigError("Invalid superkernel layer: " + " ".join(problems))
        widths = tuple(expanded_channels(in_channels, e) for e in expansions)
        if any(a >= b for a, b in pairwise((in_channels, *widths))):
            raise InvalidConfigError(
                f"Expansions {expansions!r} give expanded widths {widths} at {in_channels} "
                "input channels; each must be wider than the input and the last."
            )
        self.residual = stride == 1 and in_channels == out_channels
        if allow_skip is None:
            allow_skip = self.residual
        if allow_skip and not self.residual:
            raise InvalidConfigError(
                f"Skip needs a shortcut (stride 1, equal widths); this block has stride "
                f"{stride} and widths {in_channels} -> {out_channels}."
            )
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.kernels, self.expansions, self.widths = kernels, expansions, widths
        self.act_name, self.resolution = act, resolution
        self.allow_skip, self.squared_norm = bool(allow_skip), bool(squared_norm)
        wide, side = widths[-1], kernels[-1]
        self.expand_conv = nn.Conv2d(in_channels, wide, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(wide)
        self.dw_conv = nn.Conv2d(wide, wide, side, stride, side // 2, groups=wide, bias=False)
        self.dw_bn = nn.BatchNorm2d(wide)
        self.project_conv = nn.Conv2d(wide, out_channels, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_channels)
        self.act = _act(act)
        self.kernel_thresholds = nn.Parameter(torch.zeros(len(kernels) - 1))
        self.expansion_thresholds = nn.Parameter(torch.zeros(len(expansions)))
        masks = torch.zeros(len(kernels), 1, 1, side, side)
        for j, k in enumerate(kernels):
            lo = (side - k) // 2
            masks[j, ..., lo : lo + k, lo : lo + k] = 1.0
        masks[1:] -= masks[:-1].clone()  # rings: each square less the one inside it
        self.rings: torch.Tensor
        self.register_buffer("rings", masks, persistent=False)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, stride={self.stride}, "
            f"kernels={self.kernels}, expansions={self.expansions}, skip={self.allow_skip}"
        )

    # -- decisions --------------------------------------------------------------------------
    def threshold_parameters(self) -> list[nn.Parameter]:
        """The thresholds (trained with the weights, on the same loss, in the paper)."""
        return [self.kernel_thresholds, self.expansion_thresholds]

    def _norm(self, w: torch.Tensor) -> torch.Tensor:
        return (w * w).sum() if self.squared_norm else torch.linalg.vector_norm(w)

    def indicators(self) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """The kernel indicators (one per ring), the expansion indicators (one per channel
        group; the first is constant 1 without skip) and the depthwise kernel they select."""
        weight = self.dw_conv.weight
        parts = [weight * ring for ring in self.rings]
        kernel_on = [
            indicator(self._norm(parts[j]) - self.kernel_thresholds[j - 1])
            for j in range(1, len(parts))
        ]
        inner: torch.Tensor | None = None
        for j in range(len(parts) - 1, 0, -1):
            inner = kernel_on[j - 1] * (parts[j] if inner is None else parts[j] + inner)
        kernel = parts[0] if inner is None else parts[0] + inner
        bounds = (0, *self.widths)
        groups_on = []
        for j in range(len(self.widths)):
            if j == 0 and not self.allow_skip:
                groups_on.append(torch.ones((), dtype=weight.dtype, device=weight.device))
                continue
            norm = self._norm(kernel[bounds[j] : bounds[j + 1]])
            groups_on.append(indicator(norm - self.expansion_thresholds[j]))
        return kernel_on, groups_on, kernel

    @property
    def choices(self) -> tuple[tuple[int, float] | None, ...]:
        """The blocks the layer can become, ``(kernel, expansion)``, and ``None`` for skip."""
        blocks: list[tuple[int, float] | None] = [
            (k, e) for e in self.expansions for k in self.kernels
        ]
        return (*blocks, None) if self.allow_skip else tuple(blocks)

    def decision(self) -> tuple[int, float] | None:
        """The block the thresholds select now: ``(kernel, expansion)``, or ``None`` (skip)."""
        with torch.no_grad():
            kernel_on, groups_on, _ = self.indicators()
        k = 0
        while k < len(kernel_on) and bool(kernel_on[k] > 0.5):
            k += 1
        if not bool(groups_on[0] > 0.5):
            return None
        e = 0
        while e + 1 < len(groups_on) and bool(groups_on[e + 1] > 0.5):
            e += 1
        return self.kernels[k], self.expansions[e]

    def chosen_index(self) -> int:
        """The position of :meth:`decision` in :attr:`choices`."""
        return self.choices.index(self.decision())

    # -- computation ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, groups_on, kernel = self.indicators()
        wide = self.widths[-1]
        h = self.act(self.expand_bn(self.expand_conv(x)))
        h = nn.functional.conv2d(h, kernel, None, self.stride, self.kernels[-1] // 2, 1, wide)
        h = self.act(self.dw_bn(h))
        if len(self.widths) > 1:
            gates, on = [], groups_on[0].new_ones(())
            for j, width in enumerate(self.widths):
                if j > 0:
                    on = on * groups_on[j]
                gates.append(on.expand(width - (self.widths[j - 1] if j else 0)))
            h = h * torch.cat(gates).view(1, -1, 1, 1)
        out = self.project_bn(self.project_conv(h))
        if self.allow_skip:
            out = out * groups_on[0]
        result: torch.Tensor = out + x if self.residual else out
        return result

    def runtime(self, table: RuntimeTable, skip: float = 0.0) -> torch.Tensor:
        """The layer's runtime under the current indicators (differentiable through their
        relaxation): the table's entry of the chosen block, ``skip`` when skipped.

        Args:
            table: Runtime of every ``(kernel, expansion)`` block of this layer.
            skip: Runtime of the skipped layer (0: nothing runs).

        Raises:
            InvalidConfigError: The table lacks a block, or an entry is negative or not
                finite.
        """
        kernel_on, groups_on, _ = self.indicators()
        per_expansion = []
        for e in self.expansions:
            r = [self._entry(table, k, e) for k in self.kernels]
            inner: torch.Tensor | float = 0.0
            for j in range(len(r) - 1, 0, -1):
                inner = kernel_on[j - 1] * (r[j] - r[j - 1] + inner)
            per_expansion.append(r[0] + inner)
        inner = 0.0
        for j in range(len(per_expansion) - 1, 0, -1):
            inner = groups_on[j] * (per_expansion[j] - per_expansion[j - 1] + inner)
        total = per_expansion[0] + inner
        if self.allow_skip:
            total = skip + groups_on[0] * (total - skip)
        weight = self.dw_conv.weight
        return torch.as_tensor(total, dtype=weight.dtype, device=weight.device)

    def _entry(self, table: RuntimeTable, kernel: int, expansion: float) -> float:
        try:
            value = float(table[(kernel, expansion)])
        except KeyError:
            raise InvalidConfigError(
                f"The runtime table of layer {self.spec(kernel, expansion).key} has no entry "
                f"for kernel {kernel}, expansion {expansion:g}; it needs every (kernel, "
                f"expansion) of {[c for c in self.choices if c is not None]}."
            ) from None
        if not value >= 0.0 or value == float("inf"):
            raise InvalidConfigError(
                f"Runtime of kernel {kernel}, expansion {expansion:g} must be finite and >= 0, "
                f"got {value!r}."
            )
        return value

    # -- derivation -------------------------------------------------------------------------
    def spec(self, kernel: int, expansion: float) -> LayerSpec:
        """The :class:`LayerSpec` of the block ``(kernel, expansion)`` of this layer."""
        return LayerSpec(
            "mbconv",
            self.in_channels,
            self.out_channels,
            kernel=kernel,
            expansion=expansion,
            stride=self.stride,
            act=self.act_name,
            resolution=self.resolution,
        )

    def extract(self, choice: tuple[int, float] | str | None = "current") -> nn.Module:
        """The block ``choice`` (default: :meth:`decision`) as a stand-alone module with the
        superkernel's weights: a :class:`nasforge.ops.mobile.MBConv` (built by
        ``build_layer(self.spec(kernel, expansion))``) with the centre of the kernel and the
        first channels, or ``nn.Identity`` for skip. In the layer's train/eval mode; its
        output equals the layer's when the thresholds select ``choice``.

        Raises:
            InvalidConfigError: ``choice`` is not one of :attr:`choices`.
        """
        if isinstance(choice, str) and choice == "current":
            choice = self.decision()
        if choice not in self.choices:
            raise InvalidConfigError(
                f"Unknown block {choice!r} of this layer; choose from {self.choices}."
            )
        if choice is None:
            return nn.Identity()
        kernel, expansion = choice
        block = build_layer(self.spec(kernel, expansion))
        assert isinstance(block, MBConv) and isinstance(block.expand, nn.Sequential)
        width = self.widths[self.expansions.index(expansion)]
        keep, lo = slice(0, width), (self.kernels[-1] - kernel) // 2
        pairs = [_conv_bn_of(stage) for stage in (block.expand, block.depthwise, block.project)]
        with torch.no_grad():
            pairs[0][0].weight.copy_(self.expand_conv.weight[keep])
            pairs[1][0].weight.copy_(
                self.dw_conv.weight[keep, :, lo : lo + kernel, lo : lo + kernel]
            )
            pairs[2][0].weight.copy_(self.project_conv.weight[:, keep])
        _copy_bn(pairs[0][1], self.expand_bn, keep)
        _copy_bn(pairs[1][1], self.dw_bn, keep)
        _copy_bn(pairs[2][1], self.project_bn, slice(None))
        block.train(self.training)
        return block.to(self.dw_conv.weight.device)


def single_path_runtime(
    layers: Sequence[SuperKernelMBConv],
    tables: Sequence[RuntimeTable],
    fixed: float = 0.0,
    skip: float = 0.0,
) -> torch.Tensor:
    """The network's runtime ``R``: ``fixed`` (stem, head, unsearched layers) plus every
    superkernel layer's :meth:`~SuperKernelMBConv.runtime` from its own table.

    Raises:
        InvalidConfigError: Not one table per layer, or a negative ``fixed``.
    """
    if len(layers) != len(tables):
        raise InvalidConfigError(
            f"Got {len(tables)} runtime tables for {len(layers)} superkernel layers; give one "
            "table per layer."
        )
    if not fixed >= 0.0:
        raise InvalidConfigError(f"The fixed runtime must be >= 0, got {fixed!r}.")
    device = layers[0].dw_conv.weight.device if layers else None
    total = torch.tensor(float(fixed), device=device)
    for layer, table in zip(layers, tables, strict=True):
        total = total + layer.runtime(table, skip)
    return total


def single_path_loss(ce: torch.Tensor, runtime: torch.Tensor, lam: float = 0.02) -> torch.Tensor:
    """Single-Path NAS's runtime-aware loss ``CE + lam * log(R)`` (Section 3).

    Raises:
        InvalidConfigError: A negative ``lam`` or a runtime that is not positive.
    """
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or lam < 0:
        raise InvalidConfigError(f"lam must be a number >= 0, got {lam!r}.")
    if not bool((runtime > 0).all()):
        raise InvalidConfigError(
            f"log(R) needs a positive runtime, got {float(runtime.detach()):.4g}; add the "
            "fixed layers' runtime or give every block a positive table entry."
        )
    return ce + lam * runtime.log()
