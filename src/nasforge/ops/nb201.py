"""The NAS-Bench-201 network: the benchmark's macro skeleton around a searched cell.

Dong, X. and Yang, Y. "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture
Search." ICLR 2020, arXiv:2001.00326, Section 2.1 and Figure 1: a 3x3 convolution stem with
``C`` channels and batch norm, three stages of ``N`` cells at ``C``, ``2C`` and ``4C`` channels,
joined by residual reduction blocks (stride 2), then batch norm, ReLU, global average pooling
and a linear classifier. Each cell is a DAG over 4 nodes; node ``j`` is the sum of the
operations of its incoming edges. Operations: ``none`` (zeros), ``skip_connect`` (identity),
``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU, convolution without bias, batch norm) and
``avg_pool_3x3`` (3x3 average pooling, padding 1, not counting the padding).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nasforge.errors import InvalidConfigError

__all__ = ["NB201Cell", "NB201Network", "ReLUConvBN", "ResidualReduction"]

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution without bias, batch norm: the benchmark's convolution operation.

    ``affine=False`` drops the batch norm's scale and shift, as the search networks
    (supernets) of DARTS and NAS-Bench-201 do (:mod:`nasforge.ops.supernet`)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, affine: bool = True
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class Zero(nn.Module):
    """The ``none`` operation: an all-zero output of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int, affine: bool = True) -> nn.Module:
    """One cell operation on ``channels`` channels, stride 1 (``affine``: see
    :class:`ReLUConvBN`)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, affine=affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, affine=affine)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 operation {name!r}; choose from {', '.join(OPS)}")


class NB201Cell(nn.Module):
    """A searched cell: 6 edges over 4 nodes, operations given by index into :data:`OPS`."""

    def __init__(self, ops: Sequence[int], channels: int) -> None:
        super().__init__()
        self.ops = tuple(int(o) for o in ops)
        self.edges = nn.ModuleList(make_op(OPS[o], channels) for o in self.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            total = None
            for k, (i, target) in enumerate(EDGES):
                if target == j:
                    out = self.edges[k](nodes[i])
                    total = out if total is None else total + out
            assert total is not None
            nodes.append(total)
        return nodes[3]


class ResidualReduction(nn.Module):
    """The residual block between stages: two 3x3 ReLU-conv-BN (the first with stride 2)
    beside a 2x2 average pooling followed by a 1x1 convolution."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.shortcut(x) + self.conv_b(self.conv_a(x))
        return out


class NB201Network(nn.Module):
    """The benchmark's network for one cell.

    Args:
        ops: The cell's 6 operation indices (``Architecture.choices`` of the ``nb201`` space).
        num_classes: Outputs of the classifier (10 for CIFAR-10, 100, 120 for ImageNet16-120).
        channels: ``C``, the width of the first stage (16 in the benchmark).
        cells_per_stage: ``N`` (5 in the benchmark).
    """

    def __init__(
        self,
        ops: Sequence[int],
        num_classes: int = 10,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> None:
        super().__init__()
        if channels < 1 or cells_per_stage < 0 or num_classes < 1:
            raise InvalidConfigError(
                f"channels and num_classes must be at least 1 and cells_per_stage at least 0, "
                f"got channels={channels}, num_classes={num_classes}, "
                f"cells_per_stage={cells_per_stage}"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(NB201Cell(ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.cells(self.stem(x)))
        logits: torch.Tensor = self.classifier(torch.flatten(self.pool(x), 1))
        return logits
