"""SharpSepConv: sharpDARTS's one block for every convolution of a cell.

Hundt, A., Jain, V. and Hager, G. D. "sharpDARTS: Faster and More Accurate Differentiable
Architecture Search." arXiv:1903.09900, 2019, Section 3 (SharpSepConv) and Figure 2. DARTS's
convolutions are unbalanced: ``sep_conv`` stacks two ReLU / depthwise / pointwise / batch-norm
units, ``dil_conv`` only one, so they differ in depth and parameters and the search weighs
unlike things. SharpSepConv gives every convolution the same structure:

    ReLU, depthwise k x k (stride s, dilation d), pointwise 1x1 to ``C_mid``, batch norm,
    ReLU, depthwise k x k (stride 1, no dilation), pointwise 1x1 to ``C_out``, batch norm

with a middle width ``C_mid`` (``C_out`` by default; sharpDARTS's "flood" blocks take
``4 C_out``, its "choke" blocks a fixed smaller one). Only the first depthwise convolution
strides and dilates, as in the paper's code (``operations.py``): a dilated operation keeps
its receptive field without a second dilation.

:func:`nb201_op` and :func:`darts_op` build a space's operation with SharpSepConv in place of
its convolutions, keeping the space's operation names (so the derived architecture is an
architecture of the space): NAS-Bench-201's ``nor_conv_1x1`` and ``nor_conv_3x3`` become
SharpSepConv of kernel 1 and 3; DARTS's ``sep_conv_3x3`` / ``sep_conv_5x5`` of kernel 3 / 5,
``dil_conv_3x3`` / ``dil_conv_5x5`` of kernel 3 / 5 with dilation 2 (the mapping of the
paper's ``SharpSepConvDARTS`` search). The parameter-free operations are the space's own.
"""

from __future__ import annotations

import torch
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.ops import darts as darts_ops
from nasforge.ops import nb201 as nb201_ops

__all__ = ["DARTS_SHARP", "NB201_SHARP", "SharpSepConv", "darts_op", "nb201_op"]

#: NAS-Bench-201's convolutions as SharpSepConv: name -> (kernel, dilation).
NB201_SHARP: dict[str, tuple[int, int]] = {"nor_conv_1x1": (1, 1), "nor_conv_3x3": (3, 1)}
#: DARTS's convolutions as SharpSepConv: name -> (kernel, dilation).
DARTS_SHARP: dict[str, tuple[int, int]] = {
    "sep_conv_3x3": (3, 1),
    "sep_conv_5x5": (5, 1),
    "dil_conv_3x3": (3, 2),
    "dil_conv_5x5": (5, 2),
}


class SharpSepConv(nn.Module):
    """The SharpSepConv block (see the module docstring).

    Args:
        c_in: Input channels.
        c_out: Output channels.
        kernel: Side of both depthwise kernels (odd).
        stride: Stride of the first depthwise convolution.
        dilation: Dilation of the first depthwise convolution.
        affine: Whether the batch norms have scale and shift (``False`` in search networks).
        mid_mult: ``C_mid = int(c_out * mid_mult)`` when ``mid`` is not given.
        mid: ``C_mid`` itself.

    Raises:
        InvalidConfigError: An even or non-positive kernel, or a width, stride or dilation
            below 1.

    Example:
        >>> import torch
        >>> SharpSepConv(4, 8, 3, stride=2)(torch.zeros(2, 4, 8, 8)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 3,
        stride: int = 1,
        dilation: int = 1,
        affine: bool = True,
        mid_mult: float = 1.0,
        mid: int | None = None,
    ) -> None:
        super().__init__()
        c_mid = int(c_out * mid_mult) if mid is None else int(mid)
        if kernel < 1 or kernel % 2 == 0:
            raise InvalidConfigError(f"SharpSepConv needs an odd kernel >= 1, got {kernel!r}.")
        if min(c_in, c_out, c_mid, stride, dilation) < 1:
            raise InvalidConfigError(
                "SharpSepConv needs channels, middle width, stride and dilation of at least 1, "
                f"got c_in={c_in}, c_out={c_out}, c_mid={c_mid}, stride={stride}, "
                f"dilation={dilation}."
            )
        self.c_mid = c_mid
        # a leading out-of-place ReLU in ``op``: a mixed edge shares it among its operations
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                c_in,
                c_in,
                kernel,
                stride=stride,
                padding=dilation * (kernel - 1) // 2,
                dilation=dilation,
                groups=c_in,
                bias=False,
            ),
            nn.Conv2d(c_in, c_mid, 1, bias=False),
            nn.BatchNorm2d(c_mid, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_mid, c_mid, kernel, padding=(kernel - 1) // 2, groups=c_mid, bias=False),
            nn.Conv2d(c_mid, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.op(x)
        return out


def nb201_op(name: str, channels: int, affine: bool = True) -> nn.Module:
    """NAS-Bench-201's operation ``name`` (stride 1), its convolutions SharpSepConv."""
    if name in NB201_SHARP:
        kernel, dilation = NB201_SHARP[name]
        return SharpSepConv(channels, channels, kernel, dilation=dilation, affine=affine)
    return nb201_ops.make_op(name, channels, affine=affine)


def darts_op(name: str, channels: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """DARTS's operation ``name``, its convolutions SharpSepConv."""
    if name in DARTS_SHARP:
        kernel, dilation = DARTS_SHARP[name]
        return SharpSepConv(
            channels, channels, kernel, stride=stride, dilation=dilation, affine=affine
        )
    return darts_ops.make_op(name, channels, stride, affine=affine)
