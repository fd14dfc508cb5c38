"""BATS's binary operations against their definitions, the binary evaluation network's
layers, and the search network as the one-shot methods use it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.ops.bats import BatsSupernet, BinaryGroupConv, make_op
from nasforge.ops.binary import BinaryConv2d, BinaryConvBN, binary_layers, set_binary
from nasforge.ops.darts import FactorizedReduce
from nasforge.ops.supernet import channel_shuffle
from nasforge.spaces.bats import BatsSpace


def _signs(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t >= 0, 1.0, -1.0)


@pytest.mark.parametrize(("name", "dilation"), [("group_conv_3x3", 1), ("dil_group_conv_5x5", 2)])
def test_group_conv_is_sign_grouped_binary_conv_bn_shuffle_plus_real_input(name, dilation):
    torch.manual_seed(0)
    op = make_op(name, 8, 1, group_width=4)
    assert isinstance(op, BinaryGroupConv) and op.groups == 2
    conv = op.block.conv
    assert conv.groups == 2 and conv.dilation == (dilation, dilation)
    op.eval()
    with torch.no_grad():
        op.block.bn.running_mean.uniform_(-0.5, 0.5)
        op.block.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 8, 6, 6)
    alpha = conv.weight.abs().mean(dim=(1, 2, 3), keepdim=True)
    by_hand = nn.functional.conv2d(
        _signs(x),
        alpha * _signs(conv.weight),
        padding=conv.padding,
        dilation=conv.dilation,
        groups=2,
    )
    expected = channel_shuffle(op.block.bn(by_hand), 2) + x  # the shortcut is the real input
    assert torch.allclose(op(x), expected, atol=1e-5)


def test_strided_group_conv_has_an_average_pooled_real_shortcut():
    op = make_op("group_conv_5x5", 8, 2)
    assert isinstance(op, BinaryGroupConv)
    x = torch.randn(2, 8, 8, 8)
    op.eval()
    branch = channel_shuffle(op.block.bn(op.block.conv(x)), op.groups)
    assert torch.allclose(op(x) - branch, nn.functional.avg_pool2d(x, 2), atol=1e-6)


def test_binarised_darts_operation_has_binary_convolutions_and_no_relu():
    op = make_op("group_conv_3x3", 8, 1, operations="darts")
    convs = [m for m in op.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(isinstance(m, BinaryConv2d) for m in convs)
    assert any(m.groups == 8 for m in convs)  # the depthwise convolution DARTS has
    assert not any(isinstance(m, nn.ReLU) for m in op.modules())


def test_evaluation_network_is_binary_inside_the_cells_and_real_at_the_ends():
    space = BatsSpace()
    net = space.build(space.named("bats"), channels=8, layers=5, auxiliary=False)
    assert type(net.stem[0]) is nn.Conv2d and type(net.classifier) is nn.Linear
    for cell in net.cells:
        assert isinstance(cell.preprocess1, BinaryConvBN)
        for op in cell._ops:
            for module in op.modules():
                if isinstance(module, nn.Conv2d) and not isinstance(module, BinaryConv2d):
                    # only the stride-2 skip's factorized reduction is real
                    assert any(
                        isinstance(m, FactorizedReduce) and module in m.modules()
                        for m in op.modules()
                    )
    # every binary convolution sees signs: its input, seen by a hook, is replaced by signs
    seen: list[torch.Tensor] = []
    hooks = [
        layer.register_forward_hook(lambda m, i, o: seen.append(i[0]))
        for _, layer in binary_layers(net)
    ]
    net.eval()(torch.randn(2, 3, 16, 16))
    for hook in hooks:
        hook.remove()
    assert len(seen) == len(list(binary_layers(net)))
    first = next(layer for _, layer in binary_layers(net))
    x = seen[0]
    out = first(x)
    alpha = first.weight.abs().mean(dim=(1, 2, 3), keepdim=True)
    expected = first._conv_forward(_signs(x), alpha * _signs(first.weight), None)
    assert torch.allclose(out, expected, atol=1e-5)


def test_supernet_mixes_binary_ops_derives_bats_cells_and_switches_binarisation():
    torch.manual_seed(0)
    net = BatsSupernet(num_classes=4, channels=4, layers=5)
    assert net.arch_shapes == ((14, 8), (14, 8))
    x = torch.randn(2, 3, 8, 8)
    weights = [torch.softmax(torch.randn(14, 8), dim=-1) for _ in range(2)]
    assert net(x, weights).shape == (2, 4)
    arch = net.derive(weights)
    assert arch.space == "bats" and len(net.operations(arch)) == 16
    genotype = BatsSpace().to_genotype(arch)
    assert net.operations(arch) == [op for op, _ in (*genotype.normal, *genotype.reduce)]
    net.eval()
    extracted = net.extract(arch)
    assert torch.allclose(extracted(x), net(x, None, net.path(arch)), atol=1e-6)
    set_binary(net, activations=True, weights=False)
    layers = [layer for _, layer in binary_layers(net)]
    assert layers and all(m.binary_activations and not m.binary_weights for m in layers)
    darts_ops = BatsSupernet(num_classes=4, channels=4, layers=5, operations="darts")
    assert sum(1 for _ in binary_layers(darts_ops)) > 0
