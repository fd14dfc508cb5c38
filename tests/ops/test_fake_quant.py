"""Fake quantization against PyTorch's quantize-dequantize references (every bit width, FP8
against the dtype cast) and its straight-through gradients."""

from __future__ import annotations

import warnings

import pytest
import torch

from nasforge.errors import InvalidConfigError
from nasforge.ops.fake_quant import (
    FP8_DTYPES,
    INT_BITS,
    PRECISIONS,
    check_precision,
    fake_quantize,
    int_range,
    precision_bits,
)

torch.set_num_threads(1)


def _data(*shape: int, seed: int = 0, spread: float = 3.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * spread


def _formula(x: torch.Tensor, s: torch.Tensor, z: torch.Tensor, qmin: int, qmax: int):
    return (torch.clamp(torch.round(x / s) + z, qmin, qmax) - z) * s


def _quantize_reference(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated; still the reference
        return fn(*args).dequantize()


def test_int8_per_channel_equals_torch_quantize_dequantize():
    x = _data(6, 3, 5, 5)
    scale = x.abs().amax(dim=(1, 2, 3)) / 127
    zero = torch.tensor([0, 3, -5, 0, 1, -2])
    ours = fake_quantize(x, "int8", scale=scale, zero_point=zero, axis=0)
    ref = _quantize_reference(torch.quantize_per_channel, x, scale.double(), zero, 0, torch.qint8)
    assert torch.equal(ours, ref)
    # the axis may be another dimension
    ours1 = fake_quantize(x, 8, scale=scale[:3], axis=1)
    ref1 = _quantize_reference(
        torch.quantize_per_channel,
        x,
        scale[:3].double(),
        torch.zeros(3, dtype=torch.long),
        1,
        torch.qint8,
    )
    assert torch.equal(ours1, ref1)


@pytest.mark.parametrize("scale", [0.0371, torch.tensor(0.0371)])
def test_int8_per_tensor_equals_torch_quantize_dequantize(scale):
    x = _data(4, 3, 7, 7)
    unsigned = fake_quantize(x, "int8", scale=scale, zero_point=131, signed=False)
    ref = _quantize_reference(torch.quantize_per_tensor, x, 0.0371, 131, torch.quint8)
    assert torch.equal(unsigned, ref)
    signed = fake_quantize(x, "int8", scale=scale, zero_point=-7)
    ref = _quantize_reference(torch.quantize_per_tensor, x, 0.0371, -7, torch.qint8)
    assert torch.equal(signed, ref)


@pytest.mark.parametrize("bits", INT_BITS)
@pytest.mark.parametrize("signed", [True, False])
def test_low_bit_equals_torch_fake_quantize_and_the_formula(bits, signed):
    qmin, qmax = int_range(bits, signed=signed)
    assert qmax - qmin == 2**bits - 1
    x = _data(5, 4, 6, 6, seed=bits)
    # per tensor
    s, z = 0.21, (qmin + qmax) // 2
    ours = fake_quantize(x, f"int{bits}", scale=s, zero_point=z, signed=signed)
    assert torch.equal(ours, torch.fake_quantize_per_tensor_affine(x, s, z, qmin, qmax))
    expected = _formula(x, torch.tensor(s), torch.tensor(z), qmin, qmax)
    assert torch.equal(ours, expected)
    assert ours.unique().numel() <= 2**bits
    # per channel, along dimension 0
    scales = torch.tensor([0.1, 0.35, 0.9, 2.0, 0.05])
    zeros = torch.tensor([qmin, z, qmax, z, z], dtype=torch.int32)
    ours = fake_quantize(x, bits, scale=scales, zero_point=zeros, axis=0, signed=signed)
    ref = torch.fake_quantize_per_channel_affine(x, scales, zeros, 0, qmin, qmax)
    assert torch.equal(ours, ref)
    shape = (5, 1, 1, 1)
    expected = _formula(x, scales.view(shape), zeros.view(shape).float(), qmin, qmax)
    assert torch.equal(ours, expected)


@pytest.mark.parametrize("name", sorted(FP8_DTYPES))
def test_fp8_equals_the_dtype_cast_round_trip(name):
    dtype = FP8_DTYPES[name]
    x = _data(3, 64, seed=5)
    assert torch.equal(fake_quantize(x, name, scale=1.0), x.to(dtype).float())
    assert torch.equal(fake_quantize(x, name, scale=0.25), (x / 0.25).to(dtype).float() * 0.25)
    scales = torch.tensor([0.5, 1.0, 4.0])
    per_channel = fake_quantize(x, name, scale=scales, axis=0)
    assert torch.equal(per_channel, (x / scales[:, None]).to(dtype).float() * scales[:, None])
    top = torch.finfo(dtype).max
    big = torch.tensor([2 * top, -3 * top, top])
    assert fake_quantize(big, name, scale=1.0).tolist() == [top, -top, top]  # saturates


def test_gradients_are_straight_through():
    # int4 signed range [-8, 7], scale 0.5, zero point 0: the range is [-4, 3.5]
    x = torch.tensor([-9.0, -4.0, -1.26, 0.1, 3.4, 3.9, 20.0], requires_grad=True)
    fake_quantize(x, "int4", scale=0.5).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    # int2 signed range [-2, 1]: -7 / 4 rounds to -2 (kept), 9 / 4 to 2 (clipped)
    per_channel = torch.tensor([[-9.0, 0.3], [-7.0, 9.0]], requires_grad=True)
    fake_quantize(per_channel, "int2", scale=torch.tensor([1.0, 4.0]), axis=0).sum().backward()
    assert per_channel.grad.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    for name, dtype in FP8_DTYPES.items():
        top = torch.finfo(dtype).max
        y = torch.tensor([-2 * top, -1.0, 0.3, top, 1.5 * top], requires_grad=True)
        upstream = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
        (fake_quantize(y, name, scale=1.0) * upstream).sum().backward()
        assert y.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0]


def test_precision_names_and_errors():
    assert [check_precision(b) for b in INT_BITS] == ["int2", "int3", "int4", "int8"]
    assert check_precision(32) == "fp32"
    assert [precision_bits(p) for p in PRECISIONS] == [2, 3, 4, 8, 8, 8, 32]
    for bad in (5, 16, "int16", "fp16", True, None):
        with pytest.raises(InvalidConfigError, match=r"int2.*int3.*int4.*int8.*fp8_e4m3.*fp32"):
            check_precision(bad)
    with pytest.raises(InvalidConfigError, match="zero point"):
        fake_quantize(torch.ones(2), "fp8_e5m2", scale=1.0, zero_point=0)
