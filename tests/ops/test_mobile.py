"""The MobileNet layers: residual exactly at stride 1 with equal widths, squeeze-and-excitation
variants, expanded widths, group convolutions with channel shuffle, heads, spec checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.hardware.costs import count_params
from nasforge.ops.mobile import (
    LayerSpec,
    MBConv,
    MobileNetwork,
    build_layer,
    channel_shuffle,
    expanded_channels,
    make_divisible,
)


def _params(spec: LayerSpec) -> int:
    return count_params(build_layer(spec))


def _silence_body(block: MBConv) -> None:
    """Make the block's body output zeros (the projection's batch norm scales by 0)."""
    bn = block.project[-1]
    assert isinstance(bn, nn.BatchNorm2d)
    nn.init.zeros_(bn.weight)
    nn.init.zeros_(bn.bias)


@pytest.mark.parametrize(
    ("c_in", "c_out", "stride"),
    [(24, 24, 1), (24, 24, 2), (24, 32, 1), (24, 32, 2), (16, 16, 1)],
)
def test_residual_exactly_when_stride_one_and_equal_widths(c_in, c_out, stride):
    spec = LayerSpec("mbconv", c_in, c_out, 3, 6, stride, resolution=8)
    block = build_layer(spec)
    _silence_body(block)
    block.eval()
    x = torch.randn(2, c_in, 8, 8)
    with torch.no_grad():
        y = block(x)
    residual = stride == 1 and c_in == c_out
    assert spec.residual is residual
    if residual:  # the body adds zeros to the input
        torch.testing.assert_close(y, x)
    else:
        assert y.shape == (2, c_out, 8 // stride, 8 // stride)
        assert torch.count_nonzero(y) == 0


def test_se_variants_squeeze_as_their_papers_do():
    """MnasNet squeezes to a quarter of the block's input width (tensorflow/tpu
    mnasnet_model.py: ``max(1, int(input_filters * se_ratio))``), MobileNetV3 to
    ``make_divisible(expanded / 4, 8)`` (Howard et al. 2019, Section 5.3; torchvision's
    72 -> 24, 120 -> 32, 480 -> 120, 672 -> 168); both with biases on the two 1x1
    convolutions."""
    base = LayerSpec("mbconv", 24, 40, 5, 3, 2, resolution=56)  # expanded: 72
    plain = _params(base)
    mnas = _params(LayerSpec("mbconv", 24, 40, 5, 3, 2, se="mnasnet", resolution=56))
    v3 = _params(LayerSpec("mbconv", 24, 40, 5, 3, 2, se="mobilenetv3", resolution=56))
    assert mnas - plain == (72 * 6 + 6) + (6 * 72 + 72)  # squeeze 6 = 24 / 4
    assert v3 - plain == (72 * 24 + 24) + (24 * 72 + 72)  # squeeze 24 = make_divisible(18)
    for expanded, squeezed in ((72, 24), (120, 32), (480, 120), (672, 168)):
        assert make_divisible(expanded / 4) == squeezed
    gated = build_layer(LayerSpec("mbconv", 24, 40, 5, 3, 2, se="mobilenetv3", resolution=56))
    assert isinstance(gated.se.gate, nn.Hardsigmoid)
    gated = build_layer(LayerSpec("mbconv", 24, 40, 5, 3, 2, se="mnasnet", resolution=56))
    assert isinstance(gated.se.gate, nn.Sigmoid)


def test_mbconv_parameters_follow_its_widths():
    # 1x1 expand 24->144 + BN, 3x3 depthwise + BN, 1x1 project 144->32 + BN
    spec = LayerSpec("mbconv", 24, 32, 3, 6, 2, resolution=56)
    expected = 24 * 144 + 2 * 144 + 144 * 9 + 2 * 144 + 144 * 32 + 2 * 32
    assert _params(spec) == expected
    # expansion 1: no expansion convolution (MobileNetV2's first block)
    first = LayerSpec("mbconv", 32, 16, 3, 1, 1, resolution=112)
    assert _params(first) == 32 * 9 + 2 * 32 + 32 * 16 + 2 * 16
    # FBNet keeps it at expansion 1
    kept = LayerSpec("mbconv", 32, 16, 3, 1, 1, resolution=112, always_expand=True)
    assert _params(kept) == _params(first) + 32 * 32 + 2 * 32


def test_expanded_channels_exact_when_whole_else_divisible_by_eight():
    assert expanded_channels(80, 2.3) == 184  # MobileNetV3-Large
    assert expanded_channels(80, 2.5) == 200
    assert expanded_channels(24, 6) == 144
    assert expanded_channels(10, 2.3) == 23  # whole: kept
    assert expanded_channels(10, 2.35) == 24  # 23.5 -> 24
    assert make_divisible(18) == 24  # rounding to 16 would lose more than 10%
    assert make_divisible(33.6) == 32


def test_group_convolutions_and_channel_shuffle():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    grouped = LayerSpec("mbconv", 16, 16, 3, 3, 1, groups=2, resolution=8)
    plain = LayerSpec("mbconv", 16, 16, 3, 3, 1, resolution=8)
    assert _params(plain) - _params(grouped) == (16 * 48 + 48 * 16) // 2
    block = build_layer(grouped).eval()
    with torch.no_grad():
        assert block(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)
    with pytest.raises(InvalidConfigError, match="groups=3 must divide"):
        LayerSpec("mbconv", 16, 16, 3, 3, 1, groups=3)


def test_heads():
    conv = LayerSpec("head", 320, 1000, 1, resolution=7, head_conv=1280)
    assert _params(conv) == 320 * 1280 + 2 * 1280 + 1280 * 1000 + 1000
    efficient = LayerSpec(
        "head", 160, 1000, 1, act="hswish", resolution=7, head_conv=960, head_hidden=1280
    )
    assert _params(efficient) == (160 * 960 + 2 * 960 + 960 * 1280 + 1280 + 1280 * 1000 + 1000)
    with torch.no_grad():
        assert build_layer(efficient)(torch.randn(2, 160, 7, 7)).shape == (2, 1000)


def test_spec_keys_are_distinct_and_ignore_dropout():
    specs = [
        LayerSpec("mbconv", 24, 24, k, e, 1, se=se, act=act, resolution=56)
        for k in (3, 5, 7)
        for e in (1, 3, 6)
        for se in ("none", "mnasnet", "mobilenetv3")
        for act in ("relu", "hswish")
    ]
    assert len({spec.key for spec in specs}) == len(specs)
    a = LayerSpec("head", 320, 10, 1, resolution=1, head_conv=1280, dropout=0.2)
    b = LayerSpec("head", 320, 10, 1, resolution=1, head_conv=1280)
    assert a.key == b.key and a != b


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "conv"}, "Unknown layer kind 'conv'"),
        ({"se": "squeeze"}, "choose from mnasnet, mobilenetv3, none"),
        ({"act": "gelu"}, "Unknown layer act"),
        ({"kernel": 4}, "kernel must be odd"),
        ({"stride": 3}, "stride must be 1 or 2"),
        ({"in_channels": 0}, "in_channels must be a positive integer"),
        ({"expansion": 0.5}, "expansion must be a number >= 1"),
    ],
)
def test_bad_specs_are_refused(kwargs, match):
    settings = {"kind": "mbconv", "in_channels": 16, "out_channels": 16, **kwargs}
    with pytest.raises(InvalidConfigError, match=match):
        LayerSpec(**settings)


def test_network_chains_layers_and_refuses_mismatches():
    stem = LayerSpec("stem", 3, 16, 3, 1, 2, resolution=32)
    block = LayerSpec("mbconv", 16, 24, 3, 6, 2, resolution=16)
    head = LayerSpec("head", 24, 10, 1, resolution=8, head_conv=64)
    net = MobileNetwork([stem, block, head]).eval()
    assert net.specs == (stem, block, head) and net.num_blocks == 1
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(InvalidConfigError, match="expects 24 channels at 8x8, the previous"):
        MobileNetwork([stem, LayerSpec("mbconv", 24, 24, 3, 6, 1, resolution=8)])
    with pytest.raises(InvalidConfigError, match="at least one"):
        MobileNetwork([])
