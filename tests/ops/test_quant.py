"""The quantized layers (computation, running range, calibration), policies and their errors,
and the bit costs counted by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.ops.quant import (
    QuantConv2d,
    QuantLinear,
    bops,
    calibrate,
    model_bits,
    policy_of,
    quantizable_layers,
    quantize_model,
    set_policy,
)

torch.set_num_threads(1)


def _data(*shape: int, seed: int = 0, spread: float = 3.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * spread


def _tiny() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(144, 10),
    )


def test_quantized_layer_computes_with_quantized_input_and_weight():
    torch.manual_seed(0)
    net = _tiny()
    q = quantize_model(net, ["int4", "int8"], act_policy=["int8", "int3"])
    conv = q[0]
    assert isinstance(conv, QuantConv2d) and isinstance(q[4], QuantLinear)
    assert torch.equal(conv.weight, net[0].weight) and net[0].__class__ is nn.Conv2d
    x = _data(2, 3, 8, 8)
    q.eval()
    calibrate(q, [x])
    lo, hi = float(x.min()), float(x.max())
    assert conv.act_min.item() == lo and conv.act_max.item() == hi
    s = (hi - lo) / 255
    z = round(-lo / s)
    xq = torch.fake_quantize_per_tensor_affine(x, s, z, 0, 255)
    w = net[0].weight.detach()
    ws = w.abs().amax(dim=(1, 2, 3)) / 7
    wq = torch.fake_quantize_per_channel_affine(w, ws, torch.zeros(4, dtype=torch.int32), 0, -8, 7)
    torch.testing.assert_close(conv(x), nn.functional.conv2d(xq, wq), rtol=0, atol=1e-5)
    # fp32 layers compute exactly as the float layers
    set_policy(q, "fp32")
    with torch.no_grad():
        assert torch.equal(q.eval()(x), net.eval()(x))


def test_running_range_is_an_average_in_training_and_exact_at_calibration():
    layer = QuantLinear(4, 2)
    assert not layer.observed
    a, b = _data(8, 4, seed=1), _data(8, 4, seed=2)
    layer.train()
    layer(a)
    assert layer.act_min.item() == a.min().item() and layer.act_max.item() == a.max().item()
    layer(b)
    expected = a.max() + 0.01 * (b.max() - a.max())
    torch.testing.assert_close(layer.act_max, expected)
    before = layer.act_max.clone()
    layer.eval()
    layer(b * 10)  # evaluation leaves the range alone
    assert torch.equal(layer.act_max, before)
    weight = layer.weight.detach().clone()
    assert calibrate(layer, [(a, None), (b, None)]) == 2
    assert layer.act_min.item() == min(a.min(), b.min()).item()
    assert layer.act_max.item() == max(a.max(), b.max()).item()
    assert torch.equal(layer.weight, weight) and not layer.training


def test_policies_and_their_errors():
    net = _tiny()
    assert [n for n, _ in quantizable_layers(net)] == ["0", "4"]
    q = quantize_model(net, 4)
    assert policy_of(q) == ("int4", "int4")
    assert [m.act_precision for _, m in quantizable_layers(q)] == ["int4", "int4"]
    set_policy(q, ["int2", "fp8_e4m3"], act_policy="int8")
    assert policy_of(q) == ("int2", "fp8_e4m3")
    q.train()(_data(2, 3, 8, 8)).sum().backward()  # trains through every precision
    assert q[0].weight.grad is not None and q[0].weight.grad.abs().sum() > 0
    with pytest.raises(InvalidConfigError, match=r"3 entries.*2 quantizable layers.*'0', '4'"):
        quantize_model(net, ["int8"] * 3)
    with pytest.raises(InvalidConfigError, match=r"1 entries.*2 quantizable"):
        set_policy(q, ["int8"])
    with pytest.raises(InvalidConfigError, match="choose one of"):
        quantize_model(net, ["int8", "int5"])
    kept = quantize_model(net, ["int2"], keep=("0",))
    assert type(kept[0]) is nn.Conv2d and policy_of(kept) == ("int2",)
    with pytest.raises(InvalidConfigError, match="does not have"):
        quantize_model(net, "int8", keep=("nope",))
    with pytest.raises(UnsupportedOperationError, match="no quantizable layer"):
        quantize_model(nn.Sequential(nn.ReLU(), nn.Flatten()), "int8")
    with pytest.raises(UnsupportedOperationError, match=r"'1' \(Conv1d\)"):
        quantize_model(nn.Sequential(nn.Linear(3, 3), nn.Conv1d(1, 1, 1)), "int8")
    with pytest.raises(UnsupportedOperationError, match="no quantized layer"):
        set_policy(net, "int8")


def test_model_bits_and_bops_by_hand():
    net = _tiny()
    q = quantize_model(net, ["int4", "int8"], act_policy=["int8", "int2"])
    # conv weight 4*3*3*3 = 108 at 4 bits; BN 8 parameters, linear 144*10 at 8 bits, bias 10
    assert model_bits(q) == 108 * 4 + 8 * 32 + 1440 * 8 + 10 * 32
    assert model_bits(net) == (108 + 8 + 1440 + 10) * 32
    # conv: 4*6*6 outputs x 27 inputs = 3888 MACs; linear: 10 x 144 = 1440 MACs
    assert bops(q, (3, 8, 8)) == 3888 * 4 * 8 + 1440 * 8 * 2
    assert bops(net, (3, 8, 8)) == (3888 + 1440) * 32 * 32
    depthwise = quantize_model(nn.Conv2d(4, 4, 3, groups=4, stride=2, padding=1), "int3")
    assert bops(depthwise, (4, 8, 8)) == 4 * 4 * 4 * 9 * 3 * 3
    with pytest.raises(InvalidConfigError, match="input shape"):
        bops(q, (0, 8))


def test_a_space_network_quantizes_trains_and_costs_less():
    from nasforge import spaces

    space = spaces.create("nb201")
    torch.manual_seed(0)
    net = space.build(space.from_index(6111), channels=4, cells_per_stage=1)
    layers = quantizable_layers(net)
    q = quantize_model(net, "int4", act_policy="int8")
    assert len(policy_of(q)) == len(layers)
    x = _data(4, 3, 8, 8)
    q.train()(x).sum().backward()
    assert all(m.weight.grad is not None for _, m in quantizable_layers(q))
    assert model_bits(q) < model_bits(net)
    assert bops(q, (3, 8, 8)) < bops(net, (3, 8, 8)) / 16


def test_quantize_model_keeps_the_device_and_dtype_of_the_layers():
    with torch.device("meta"):
        meta = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    quantized = quantize_model(meta, "int4")
    assert policy_of(quantized) == ("int4", "int4")
    assert all(p.device.type == "meta" for p in quantized.parameters())
    double = quantize_model(nn.Sequential(nn.Conv2d(3, 4, 3)).double(), "int8")
    assert double[0].weight.dtype == torch.float64
