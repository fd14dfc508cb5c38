"""A test-only space: a tiny macro network with a kernel and a width choice per layer.

Like :mod:`toy_chain`, it plugs into nasforge through this file alone, here with the shape of
the mobile macro spaces: each layer decides its convolution's kernel (3 or 5) and its width
(half or all of the channels). Its supernet has two decision groups (kernels, widths): the
kernel is a mixed edge over two convolutions, the width a mask over the output channels
(mixing weights give a soft mask, one path the mask of one width, as FBNetV2's channel
masking does), and :meth:`MacroSupernet.extract` slices the shared weights into the
discrete network.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError
from nasforge.ops.supernet import DecisionGroup, MixedEdge, Supernet
from nasforge.spaces.base import Decision, SearchSpace

NAME = "toy-macro"
KERNELS = (3, 5)
WIDTHS = (0.5, 1.0)
LAYERS = 3


def _width(channels: int, option: int) -> int:
    return max(1, round(channels * WIDTHS[option]))


def _conv(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


def _stride(layer: int) -> int:
    return 2 if layer == 1 else 1


class MacroNetwork(nn.Module):
    def __init__(self, choices: Sequence[int], channels: int, num_classes: int) -> None:
        super().__init__()
        layers, c_in = [], 3
        for i in range(LAYERS):
            kernel, width = KERNELS[choices[2 * i]], _width(channels, choices[2 * i + 1])
            layers.append(_conv(c_in, width, kernel, _stride(i)))
            c_in = width
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.layers(x), 1)
        return self.classifier(torch.flatten(x, 1))


class MacroSupernet(Supernet):
    def __init__(self, space: SearchSpace, num_classes: int = 10, channels: int = 8):
        super().__init__()
        self.space = space
        self.channels = channels
        self.groups = (
            DecisionGroup("kernel", tuple(f"k{k}" for k in KERNELS), LAYERS),
            DecisionGroup("width", tuple(f"w{w}" for w in WIDTHS), LAYERS),
        )
        edges, c_in = [], 3
        for i in range(LAYERS):
            ops = [_conv(c_in, channels, k, _stride(i)) for k in KERNELS]
            edges.append(MixedEdge(ops, self.groups[0].options, share_relu=False))
            c_in = channels
        self.edges = nn.ModuleList(edges)
        masks = torch.zeros(len(WIDTHS), channels)
        for o in range(len(WIDTHS)):
            masks[o, : _width(channels, o)] = 1.0
        self.register_buffer("masks", masks)
        self.classifier = nn.Linear(channels, num_classes)

    def _mask(self, i: int, weights: Any, index: Any) -> torch.Tensor:
        if index is not None:
            chosen = int(index[1][i])
            mask = self.masks[chosen]
            if weights is not None:  # straight-through: the others enter with their weight
                w = weights[1][i]
                mask = mask * w[chosen] + (w.sum() - w[chosen])
            return mask
        return weights[1][i] @ self.masks

    def forward(self, x, weights=None, index=None, edge_weights=None):
        for i, edge in enumerate(self.edges):
            x = edge(
                x,
                None if weights is None else weights[0][i],
                None if index is None else int(index[0][i]),
                None if edge_weights is None else edge_weights[0][i],
            )
            x = x * self._mask(i, weights, index)[None, :, None, None]
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))

    def path(self, arch: Architecture) -> list[list[int]]:
        choices = self.space.check(arch).choices
        return [list(choices[0::2]), list(choices[1::2])]

    def from_path(self, index: Sequence[Sequence[int]]) -> Architecture:
        return self.space.from_choices([c for pair in zip(*index, strict=True) for c in pair])

    def extract(self, arch: Architecture) -> nn.Module:
        """The discrete network of ``arch`` with the supernet's weights sliced to its widths."""
        choices = self.space.check(arch).choices
        num_classes = self.classifier.out_features
        net = MacroNetwork(choices, self.channels, num_classes)
        c_in = 3
        with torch.no_grad():
            for i, layer in enumerate(net.layers):
                source = self.edges[i].ops[choices[2 * i]]
                width = _width(self.channels, choices[2 * i + 1])
                layer[0].weight.copy_(source[0].weight[:width, :c_in])
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(layer[1], name).copy_(getattr(source[1], name)[:width])
                layer[1].num_batches_tracked.copy_(source[1].num_batches_tracked)
                c_in = width
            net.classifier.weight.copy_(self.classifier.weight[:, :c_in])
            net.classifier.bias.copy_(self.classifier.bias)
        return net.train(self.training)


@spaces.register(NAME)
class MacroSpace(SearchSpace):
    """Per layer a kernel (3, 5) and a width (half, all); text ``k3w1.0-k5w0.5-k3w1.0``."""

    name = NAME
    scale_keys = ("channels", None)  # the depth is fixed: no depth setting

    def decisions(self) -> tuple[Decision, ...]:
        return tuple(
            itertools.chain.from_iterable(
                (Decision(f"kernel{i}", KERNELS), Decision(f"width{i}", WIDTHS))
                for i in range(LAYERS)
            )
        )

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = tuple(int(c) for c in choices)
        if len(values) != 2 * LAYERS or not all(0 <= v < 2 for v in values):
            raise InvalidArchitectureError(
                f"{NAME} takes {2 * LAYERS} choices in 0..1, got {values}"
            )
        text = "-".join(
            f"k{KERNELS[k]}w{WIDTHS[w]}" for k, w in zip(values[0::2], values[1::2], strict=True)
        )
        return Architecture(NAME, values, text)

    def parse(self, text: str) -> Architecture:
        out: list[int] = []
        for part in text.split("-"):
            try:
                kernel, width = part[1:].split("w")
                out += [KERNELS.index(int(kernel)), WIDTHS.index(float(width))]
            except ValueError:
                raise InvalidArchitectureError(
                    f"malformed layer {part!r} in {text!r}, e.g. k3w1.0"
                ) from None
        return self.from_choices(out)

    def presets(self) -> dict[str, dict[str, Any]]:
        return {
            "paper": {"channels": 8},
            "search": {"channels": 8},
            "reduced": {"channels": 4, "resolution": 8},
        }

    def build(self, arch: Architecture, num_classes: int = 10, channels: int = 8) -> nn.Module:
        return MacroNetwork(self.check(arch).choices, channels, num_classes)

    def supernet(self, **settings: Any) -> MacroSupernet:
        return MacroSupernet(self, **settings)
