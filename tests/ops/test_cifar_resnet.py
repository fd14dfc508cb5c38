"""The CIFAR ResNet with one width per convolution: its cost formulas against the built
network, its shortcuts, and refused widths."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nasforge.errors import InvalidConfigError
from nasforge.ops.cifar_resnet import CifarResNet, ResNetLayout, full_widths

LAYOUT = ResNetLayout(blocks=2, base=4, num_classes=5, resolution=16)


@pytest.mark.parametrize("widths", [None, (3, 2, 3, 1, 4, 5, 8, 6, 7, 9, 16, 12, 16)])
def test_params_and_flops_match_the_built_network(widths):
    net = CifarResNet(LAYOUT, widths)
    weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert LAYOUT.params(net.widths) == weights
    with FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, 16, 16))
    assert 2 * LAYOUT.flops(net.widths) == counter.get_total_flops()


def test_shortcuts_project_only_where_stride_or_width_changes():
    net = CifarResNet(LAYOUT, (4, 3, 4, 2, 5, 8, 8, 8, 8, 16, 16, 16, 16))
    kinds = [type(block.shortcut).__name__ for block in net.blocks]
    # stage 1: same width, then 4 -> 5; stages 2 and 3 open with stride 2
    assert kinds == ["Identity", "Sequential", "Sequential", "Identity", "Sequential", "Identity"]
    assert full_widths(LAYOUT) == (4, 4, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16)


def test_bad_widths_and_layouts_are_refused():
    with pytest.raises(InvalidConfigError, match="needs 13 widths"):
        CifarResNet(LAYOUT, (4, 4))
    with pytest.raises(InvalidConfigError, match="positive integers"):
        CifarResNet(LAYOUT, (4, 0, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16))
    with pytest.raises(InvalidConfigError, match="multiple of 4"):
        ResNetLayout(resolution=30)
