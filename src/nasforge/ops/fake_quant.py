"""Fake quantization of a tensor at integer and FP8 precisions, with the straight-through
gradient: the primitive the quantized layers of :mod:`nasforge.ops.quant` are built on.

* **Integer quantization.** Jacob, B. et al. "Quantization and Training of Neural Networks
  for Efficient Integer-Arithmetic-Only Inference." CVPR 2018, arXiv:1712.05877, Section 2.1
  and Eq. (1): a real value is ``r = S (q - Z)`` with a real scale ``S`` and an integer zero
  point ``Z``; quantizing is ``q = clamp(round(r / S) + Z, qmin, qmax)``. The
  quantize-dequantize is PyTorch's own ``torch.fake_quantize_per_tensor_affine`` /
  ``torch.fake_quantize_per_channel_affine`` with the range of ``b`` bits
  (:func:`int_range`: ``[-2^(b-1), 2^(b-1) - 1]`` signed, ``[0, 2^b - 1]`` unsigned).
* **FP8.** Micikevicius, P. et al. "FP8 Formats for Deep Learning." arXiv:2209.05433 (2022),
  Table 1: E4M3 (largest finite value 448, no infinities) and E5M2 (largest finite 57344),
  used with a scaling factor per tensor. A tensor is divided by its scale, saturated to the
  format's finite range (PyTorch's ``float8_e4m3fn`` cast saturates too), cast to
  ``torch.float8_e4m3fn`` / ``torch.float8_e5m2`` and back, and multiplied by the scale.
* **Straight-through estimator.** Bengio, Y., Léonard, N. and Courville, A. "Estimating or
  Propagating Gradients Through Stochastic Neurons." arXiv:1308.3432 (2013), as Jacob et al.
  use it: the gradient passes through the rounding unchanged inside the clipping range and
  is zero outside it (PyTorch's fake-quantize operators have exactly this gradient; the FP8
  path implements it).
"""

from __future__ import annotations

from typing import Any

import torch

from nasforge.errors import InvalidConfigError

__all__ = [
    "FP8_DTYPES",
    "INT_BITS",
    "PRECISIONS",
    "check_precision",
    "fake_quantize",
    "int_range",
    "precision_bits",
]

#: Every precision a layer can have, from the fewest bits to full precision.
PRECISIONS: tuple[str, ...] = ("int2", "int3", "int4", "int8", "fp8_e4m3", "fp8_e5m2", "fp32")
#: The integer bit widths.
INT_BITS: tuple[int, ...] = (2, 3, 4, 8)
#: The PyTorch dtype of each FP8 precision.
FP8_DTYPES: dict[str, torch.dtype] = {
    "fp8_e4m3": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
}


def check_precision(precision: str | int) -> str:
    """The precision's name: ``8 -> "int8"``, ``32 -> "fp32"``, a name of :data:`PRECISIONS`.

    Raises:
        InvalidConfigError: Anything else; the message lists the supported precisions.

    Example:
        >>> check_precision(4), check_precision("fp8_e4m3"), check_precision(32)
        ('int4', 'fp8_e4m3', 'fp32')
    """
    if isinstance(precision, int) and not isinstance(precision, bool):
        if precision in INT_BITS:
            return f"int{precision}"
        if precision == 32:
            return "fp32"
    elif isinstance(precision, str) and precision in PRECISIONS:
        return precision
    raise InvalidConfigError(
        f"Unsupported precision {precision!r}; choose one of {list(PRECISIONS)} "
        f"(an integer bit width of {list(INT_BITS)} or 32 is read as int<bits> or fp32)."
    )


def precision_bits(precision: str | int) -> int:
    """Bits of one value at ``precision``: ``int4 -> 4``, ``fp8_* -> 8``, ``fp32 -> 32``.

    Example:
        >>> [precision_bits(p) for p in PRECISIONS]
        [2, 3, 4, 8, 8, 8, 32]
    """
    name = check_precision(precision)
    if name == "fp32":
        return 32
    if name in FP8_DTYPES:
        return 8
    return int(name[3:])


def int_range(bits: int, *, signed: bool) -> tuple[int, int]:
    """``(qmin, qmax)`` of ``bits``-bit integers: ``[-2^(b-1), 2^(b-1)-1]`` or ``[0, 2^b-1]``.

    Example:
        >>> int_range(8, signed=True), int_range(2, signed=False)
        ((-128, 127), (0, 3))
    """
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


class _FP8RoundTrip(torch.autograd.Function):
    """Scale, saturate, cast to FP8 and back; straight-through gradient inside the range."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> Any:
        largest = torch.finfo(dtype).max
        scaled = x / scale
        inside = scaled.abs() <= largest
        ctx.save_for_backward(inside)
        cast = scaled.clamp(-largest, largest).to(dtype).to(x.dtype)
        return cast * scale

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (inside,) = ctx.saved_tensors
        return grad * inside.to(grad.dtype), None, None


def fake_quantize(
    x: torch.Tensor,
    precision: str | int,
    *,
    scale: float | torch.Tensor,
    zero_point: int | torch.Tensor | None = None,
    axis: int | None = None,
    signed: bool = True,
) -> torch.Tensor:
    """Quantize and dequantize ``x`` at ``precision``, with the straight-through gradient.

    Integers: ``(clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale``,
    computed by ``torch.fake_quantize_per_tensor_affine`` (``axis=None``; ``scale`` a float
    or a one-element tensor) or ``torch.fake_quantize_per_channel_affine`` (``scale`` and
    ``zero_point`` one value per index of dimension ``axis``), with the range of
    :func:`int_range` (``signed`` picks it). The gradient is the incoming one where the
    quantized value lies inside ``[qmin, qmax]`` and zero where it was clipped.
    FP8: ``cast(clamp(x / scale, -max, max)) * scale`` with the format's largest finite
    ``max`` (``zero_point`` must be ``None``); gradient 1 inside ``[-max, max] * scale``.
    ``fp32``: ``x`` itself.

    Example:
        >>> import torch
        >>> fake_quantize(torch.tensor([0.26, -0.9, 3.0]), "int2", scale=0.5).tolist()
        [0.5, -1.0, 0.5]
    """
    name = check_precision(precision)
    if name == "fp32":
        return x
    if name in FP8_DTYPES:
        if zero_point is not None:
            raise InvalidConfigError(
                f"fake_quantize({name!r}): FP8 has no zero point (got {zero_point!r}); "
                "pass zero_point=None and only a scale."
            )
        s = torch.as_tensor(scale, dtype=x.dtype, device=x.device)
        if axis is not None:
            shape = [1] * x.dim()
            shape[axis] = -1
            s = s.reshape(shape)
        out: torch.Tensor = _FP8RoundTrip.apply(x, s, FP8_DTYPES[name])  # type: ignore[no-untyped-call]
        return out
    qmin, qmax = int_range(precision_bits(name), signed=signed)
    if axis is None:
        if isinstance(scale, torch.Tensor):
            zp = torch.as_tensor(0 if zero_point is None else zero_point, device=x.device)
            return torch.fake_quantize_per_tensor_affine(
                x, scale.float().reshape(()), zp.to(torch.int32).reshape(()), qmin, qmax
            )
        if isinstance(zero_point, torch.Tensor):
            zero_point = int(zero_point.item())
        return torch.fake_quantize_per_tensor_affine(
            x, float(scale), int(zero_point or 0), qmin, qmax
        )
    scales = torch.as_tensor(scale, dtype=torch.float32, device=x.device).reshape(-1)
    if zero_point is None:
        zps = torch.zeros(scales.numel(), dtype=torch.int32, device=x.device)
    else:
        zps = torch.as_tensor(zero_point, device=x.device).to(torch.int32).reshape(-1)
    return torch.fake_quantize_per_channel_affine(x, scales, zps, axis, qmin, qmax)
