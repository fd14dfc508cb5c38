"""A test-only space: a chain of layers with one operation choice each.

It exists to show that a new space plugs into nasforge through its own file alone: it declares
its decisions (sampling, mutation, crossover, neighbours and the one-hot encoding follow),
builds networks with its own presets, and gives one-shot methods a supernet through the
:class:`~nasforge.ops.supernet.Supernet` interface. Nothing outside this file names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError
from nasforge.ops.supernet import DecisionGroup, MixedEdge, Supernet
from nasforge.spaces.base import Decision, SearchSpace

NAME = "toy-chain"
OPS = ("conv_3x3", "conv_1x1", "skip_connect", "avg_pool_3x3")
LAYERS = 3


def make_op(name: str, channels: int) -> nn.Module:
    """One candidate operation on ``channels`` channels (shape kept)."""
    if name == "conv_3x3":
        return nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
    if name == "conv_1x1":
        return nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels)
        )
    if name == "skip_connect":
        return nn.Identity()
    return nn.AvgPool2d(3, 1, padding=1, count_include_pad=False)


class _Skeleton(nn.Module):
    """Stem, ``repeats`` copies of the chain, head; ``layer(r, i)`` builds layer ``i`` of copy
    ``r``."""

    def __init__(self, channels: int, repeats: int, num_classes: int, layer: Any) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        self.layers = nn.ModuleList(layer(r, i) for r in range(repeats) for i in range(LAYERS))
        self.classifier = nn.Linear(channels, num_classes)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class ChainNetwork(_Skeleton):
    def __init__(self, choices: Sequence[int], channels: int, repeats: int, num_classes: int):
        super().__init__(
            channels, repeats, num_classes, lambda r, i: make_op(OPS[choices[i]], channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


class ChainSupernet(Supernet):
    """Every operation on every layer (batch norm without affine parameters is not needed
    here: the toy keeps the discrete network's layers)."""

    def __init__(
        self, space: SearchSpace, num_classes: int = 10, channels: int = 8, repeats: int = 1
    ):
        super().__init__()
        self.space = space
        self.groups = (DecisionGroup("layers", OPS, LAYERS),)

        def layer(r: int, i: int) -> MixedEdge:
            edge = MixedEdge([make_op(name, channels) for name in OPS], OPS)
            edge.site = (0, i)
            return edge

        self.net = _Skeleton(channels, repeats, num_classes, layer)

    def forward(self, x, weights=None, index=None, edge_weights=None):
        x = self.net.stem(x)
        for k, edge in enumerate(self.net.layers):
            i = k % LAYERS
            x = edge(
                x,
                None if weights is None else weights[0][i],
                None if index is None else int(index[0][i]),
                None if edge_weights is None else edge_weights[0][i],
            )
        return self.net.head(x)

    def path(self, arch: Architecture) -> list[list[int]]:
        return [list(self.space.check(arch).choices)]

    def from_path(self, index: Sequence[Sequence[int]]) -> Architecture:
        return self.space.from_choices(index[0])


@spaces.register(NAME)
class ChainSpace(SearchSpace):
    """``LAYERS`` layers, each one of :data:`OPS`; text ``conv_3x3>skip_connect>conv_1x1``."""

    name = NAME
    scale_keys = ("channels", "repeats")

    def decisions(self) -> tuple[Decision, ...]:
        return tuple(Decision(f"layer{i}", OPS) for i in range(LAYERS))

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = tuple(int(c) for c in choices)
        if len(values) != LAYERS or not all(0 <= v < len(OPS) for v in values):
            raise InvalidArchitectureError(
                f"{NAME} takes {LAYERS} choices in 0..{len(OPS) - 1}, got {values}"
            )
        return Architecture(NAME, values, ">".join(OPS[v] for v in values))

    def parse(self, text: str) -> Architecture:
        names = text.split(">")
        unknown = [n for n in names if n not in OPS]
        if unknown:
            raise InvalidArchitectureError(
                f"unknown operation(s) {unknown} in {text!r}; choose from {OPS}"
            )
        return self.from_choices([OPS.index(n) for n in names])

    def presets(self) -> dict[str, dict[str, Any]]:
        return {
            "paper": {"channels": 8, "repeats": 2},
            "search": {"channels": 8, "repeats": 1},
            "reduced": {"channels": 4, "repeats": 1, "resolution": 8},
        }

    def build(
        self, arch: Architecture, num_classes: int = 10, channels: int = 8, repeats: int = 2
    ) -> nn.Module:
        return ChainNetwork(self.check(arch).choices, channels, repeats, num_classes)

    def supernet(self, **settings: Any) -> ChainSupernet:
        return ChainSupernet(self, **settings)
