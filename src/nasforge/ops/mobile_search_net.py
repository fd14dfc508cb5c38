"""The supernet of the MobileNet-style spaces (``mobilenet``, ``fbnet``): a fixed backbone
whose searchable layers each hold every candidate block, for ProxylessNAS and FBNet.

**ProxylessNAS backbone** (Cai, H., Zhu, L. and Han, S. "ProxylessNAS: Direct Neural
Architecture Search on Target Task and Hardware." ICLR 2019, arXiv:1812.00332, Section 4.2).
The widths, strides, squeeze-and-excitation and activations are those of a published network
of the ``mobilenet`` space (``backbone``, default ``proxylessnas-mobile``); the stem, the first
block (stage 0) and the head are fixed. Each stage holds up to ``depths`` blocks (default the
space's maximum, 4 per stage and 1 in the last, the paper's search backbone), and every
block chooses among MBConv with kernel {3, 5, 7} x expansion {3, 6} (the paper's six) plus the
zero layer where the shapes allow it (every block after the first of its stage), which is the
``mobilenet`` space's skipped block: 7 options there (group ``"block"``), 6 on the first block
of a stage (group ``"first"``). A path is a point of the space: the other decisions keep the
backbone's values.

**FBNet** (Wu, B. et al. "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable
Neural Architecture Search." CVPR 2019, arXiv:1812.03443, Tables 1-2): the macro-architecture
is fixed and each of its 22 layers holds the 9 blocks of Table 2 (group ``"layer"``; ``skip``
is the identity, or the authors' strided 1x1 convolution where the shape changes); the head
width is the ``head`` setting (Table 1's 1984 by default).

Every candidate is ``nasforge.ops.mobile.build_layer`` of the spec the space's ``layers()``
gives at that position, so :meth:`MobileSearchNet.extract` returns the ``MobileNetwork`` of
``space.build(arch)`` holding the supernet's weights, whose output equals the supernet's
one-path output. The per-layer latency tables of :mod:`nasforge.hardware.layer_lut` give
each candidate's latency (:meth:`MobileSearchNet.candidate_latency`): a path's latency is the
fixed part (stem, fixed blocks, head, the table's fixed part) plus its candidates'.

The forward takes, per decision group, as in :class:`~nasforge.ops.supernet.Supernet`:
``index[g][r]`` an option (one path) or a ProxylessNAS
:class:`~nasforge.ops.mobile_supernet.BinaryGate` (binarized paths); ``weights[g]`` a
``(rows, options)`` tensor mixing every candidate (FBNet's Gumbel-softmax weights, DARTS);
both, the straight-through form of GDAS.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasforge.architecture import Architecture
from nasforge.errors import (
    InfeasibleConstraintError,
    InvalidArchitectureError,
    InvalidConfigError,
    UnsupportedOperationError,
)
from nasforge.ops.mobile import LayerSpec, MobileNetwork, build_layer, init_weights
from nasforge.ops.mobile_supernet import BinarizedMixedLayer, BinaryGate
from nasforge.ops.supernet import DecisionGroup, Supernet

if TYPE_CHECKING:
    from nasforge.hardware.layer_lut import LayerLatencyTable
    from nasforge.spaces.base import SearchSpace

__all__ = [
    "FBNetSearchNet",
    "MobileMixedLayer",
    "MobileNetSearchNet",
    "MobileSearchNet",
    "init_weights",
    "resolve_table",
    "searched_supernet",
]

Candidates = tuple[LayerSpec | None, ...]


class MobileMixedLayer(BinarizedMixedLayer):
    """One searchable layer: ``candidates[i]`` is ``build_layer(specs[i])`` (``nn.Identity``
    where the spec is ``None``). ``forward(x, choice, weights)``: ``choice`` an int or a
    :class:`BinaryGate` runs that path (:class:`BinarizedMixedLayer`); ``weights`` alone
    mixes every candidate, ``sum_i w_i o_i(x)``; both give ``w_c o_c(x) + sum_{i != c} w_i``."""

    def __init__(self, specs: Candidates, names: Sequence[str]) -> None:
        super().__init__([nn.Identity() if s is None else build_layer(s) for s in specs], names)
        self.specs = specs

    def forward(
        self,
        x: torch.Tensor,
        choice: BinaryGate | int | None = None,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if weights is None:
            if choice is None:
                raise InvalidConfigError("A mixed layer needs an option index or weights.")
            return super().forward(x, choice)
        if choice is not None:
            c = self._index(int(choice))  # type: ignore[arg-type]
            out: torch.Tensor = self.candidates[c](x) * weights[c]
            return out + (weights.sum() - weights[c])
        total: torch.Tensor = self.candidates[0](x) * weights[0]
        for i in range(1, len(self)):
            total = total + self.candidates[i](x) * weights[i]
        return total


class MobileSearchNet(Supernet):
    """Shared machinery of the two mobile supernets: fixed front layers, one
    :class:`MobileMixedLayer` per searchable layer (``sites[k] = (group, row)`` in network
    order), a fixed head; latency terms from a per-layer table; extraction.

    Subclasses give the specs and :meth:`from_path` / :meth:`path`.

    Attributes:
        build_settings: The settings of ``space.layers`` / ``space.build`` it stands for.
        front, head: The fixed layers' specs.
    """

    param_free = frozenset({"zero", "skip"})

    def __init__(
        self,
        space: SearchSpace,
        front: Sequence[LayerSpec],
        rows: Sequence[tuple[int, Candidates]],
        head: LayerSpec,
        groups: tuple[DecisionGroup, ...],
        build_settings: Mapping[str, Any],
    ) -> None:
        super().__init__()
        self.space = space
        self.groups = groups
        self.build_settings = dict(build_settings)
        self.front_specs = tuple(front)
        self.head_spec = head
        self.front = nn.ModuleList(build_layer(s) for s in front)
        counts = [0] * len(groups)
        sites, layers = [], []
        for g, specs in rows:
            sites.append((g, counts[g]))
            counts[g] += 1
            layers.append(MobileMixedLayer(specs, groups[g].options))
        self.sites = tuple(sites)
        self.layers = nn.ModuleList(layers)
        #: The same layers, typed (``self.layers`` registers them).
        self.mixed: list[MobileMixedLayer] = layers
        self.head = build_layer(head)
        init_weights(self)

    # -- forward -------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        weights: Sequence[torch.Tensor | None] | None = None,
        index: Sequence[Sequence[Any]] | None = None,
        edge_weights: Sequence[Any] | None = None,
    ) -> torch.Tensor:
        if weights is None and index is None:
            raise InvalidConfigError(
                "The mobile supernet needs a path (index) or candidate weights per group."
            )
        for layer in self.front:
            x = layer(x)
        for (g, r), layer in zip(self.sites, self.mixed, strict=True):
            choice = None if index is None else index[g][r]
            w = None if weights is None or weights[g] is None else weights[g][r]  # type: ignore[index]
            x = layer(x, choice, w)
        out: torch.Tensor = self.head(x)
        return out

    # -- paths ---------------------------------------------------------------------------------
    def _check_index(self, index: Sequence[Sequence[int]]) -> list[list[int]]:
        shapes = self.arch_shapes
        ok = len(index) == len(shapes) and all(
            len(row) == rows and all(isinstance(i, int) and 0 <= i < n for i in row)
            for row, (rows, n) in zip(index, shapes, strict=False)
        )
        if not ok:
            raise InvalidConfigError(
                f"A path of this supernet has, per group, one option per row: shapes "
                f"{list(shapes)} (rows, options); got {index!r}."
            )
        return [list(row) for row in index]

    def specs(self, index: Sequence[Sequence[int]]) -> tuple[LayerSpec, ...]:
        """The layers of the network of path ``index`` (what ``space.layers`` gives)."""
        index = self._check_index(index)
        chosen = [
            layer.specs[index[g][r]] for (g, r), layer in zip(self.sites, self.mixed, strict=True)
        ]
        return (*self.front_specs, *(s for s in chosen if s is not None), self.head_spec)

    def largest(self) -> list[list[int]]:
        """The path whose every layer takes its candidate with the most parameters (the
        largest fixed network of the supernet)."""
        index = [[0] * rows for rows, _ in self.arch_shapes]
        for (g, r), layer in zip(self.sites, self.mixed, strict=True):
            sizes = [sum(p.numel() for p in c.parameters()) for c in layer.candidates]
            index[g][r] = max(range(len(sizes)), key=lambda i: (sizes[i], -i))
        return index

    def contains(self, arch: Architecture) -> bool:
        """Whether ``arch`` is a network of this supernet (``from_path(path(arch)) == arch``
        up to the canonical form)."""
        space = self.space
        try:
            return space.canonical(self.from_path(self.path(arch))) == space.canonical(arch)
        except InvalidArchitectureError:
            return False

    def extract(self, arch: Architecture) -> MobileNetwork:
        """``space.build(arch, **build_settings)`` holding the supernet's weights (its layers'
        state copied from the chosen candidates), in the supernet's train/eval mode.

        Raises:
            InvalidArchitectureError: ``arch`` is not a network of this supernet (a width,
                stage depth, squeeze-and-excitation... outside the backbone).
        """
        if not self.contains(arch):
            raise InvalidArchitectureError(
                f"{arch} is not a network of this supernet (its backbone fixes every decision "
                "but the searched blocks); derive architectures with from_path() or derive()."
            )
        index = self.path(arch)
        net: MobileNetwork = self.space.build(arch, **self.build_settings)
        sources: list[nn.Module] = list(self.front)
        for (g, r), layer in zip(self.sites, self.mixed, strict=True):
            if layer.specs[index[g][r]] is not None:
                sources.append(layer.candidates[index[g][r]])
        sources.append(self.head)
        if len(sources) != len(net.layers):
            raise InvalidArchitectureError(  # pragma: no cover - guarded by contains()
                f"{arch} builds {len(net.layers)} layers, its path {len(sources)}."
            )
        for target, source in zip(net.layers, sources, strict=True):
            target.load_state_dict(source.state_dict())
        net.train(self.training)
        return net

    # -- latency ---------------------------------------------------------------------------------
    def candidate_latency(self, table: LayerLatencyTable) -> tuple[list[torch.Tensor], float]:
        """Per group a ``(rows, options)`` tensor of each candidate's latency in ``table``
        (0 for an identity), and the fixed part: the table's ``fixed_ms`` plus the fixed
        layers' entries. A path's predicted latency is the fixed part plus its candidates'.

        Raises:
            InvalidConfigError: The table lacks a layer (the table names it).
        """
        rows = [torch.zeros(shape) for shape in self.arch_shapes]
        for k, ((g, r), layer) in enumerate(zip(self.sites, self.mixed, strict=True)):
            for i, spec in enumerate(layer.specs):
                if spec is not None:
                    rows[g][r, i] = table.latency(spec, position=k + len(self.front_specs))
        fixed = table.fixed_ms + sum(table.latency(s) for s in self.front_specs)
        fixed += table.latency(self.head_spec)
        return rows, float(fixed)

    def latency_range(self, table: LayerLatencyTable) -> tuple[float, float]:
        """The fastest and the slowest predicted latency of the supernet's networks."""
        rows, fixed = self.candidate_latency(table)
        low = fixed + sum(float(t.min(dim=-1).values.sum()) for t in rows)
        high = fixed + sum(float(t.max(dim=-1).values.sum()) for t in rows)
        return low, high

    def check_target(self, table: LayerLatencyTable, target_ms: float) -> None:
        """Refuse a latency target that no network of the supernet meets.

        Raises:
            InfeasibleConstraintError: ``target_ms`` is below the fastest reachable latency
                (named, with the slowest).
        """
        low, high = self.latency_range(table)
        if target_ms < low:
            raise InfeasibleConstraintError(
                f"No network of the supernet meets the latency target {target_ms:g} ms on "
                f"{table.name}: the fastest reachable is {low:.4g} ms (the slowest "
                f"{high:.4g} ms). Raise the target, or search a smaller setting (width_mult, "
                "resolution)."
            )

    def all_specs(self) -> list[LayerSpec]:
        """Every distinct layer of the supernet's networks (what a table must hold)."""
        specs = [*self.front_specs, self.head_spec]
        specs += [s for layer in self.mixed for s in layer.specs if s is not None]
        return list(dict.fromkeys(specs))


# -- mobilenet ----------------------------------------------------------------------------------
class MobileNetSearchNet(MobileSearchNet):
    """The ProxylessNAS supernet of the ``mobilenet`` space (see the module docstring).

    Args:
        space: The ``mobilenet`` space.
        num_classes, width_mult, resolution, stem_stride, first_stride, dropout: Settings of
            ``space.layers`` (default the space's ``search`` preset: width 1.0, 224x224).
        backbone: The published network whose widths, SE, activations, stem, first block and
            head are kept (``space.named``).
        kernels, expansions: The candidate blocks (default the paper's 3/5/7 and 3/6).
        depths: Blocks per stage 1..6 (default the space's maximum: 4, 4, 4, 4, 4, 1).

    Example:
        >>> from nasforge import spaces
        >>> net = MobileNetSearchNet(spaces.create("mobilenet"), width_mult=0.25,
        ...                          resolution=32, stem_stride=1, first_stride=1)
        >>> [(g.name, g.rows, len(g.options)) for g in net.groups]
        [('first', 6, 6), ('block', 15, 7)]
        >>> arch = net.from_path(net.largest())
        >>> str(arch).split(";")[2]
        's1=32:e6k7,e6k7,e6k7,e6k7'
    """

    def __init__(
        self,
        space: SearchSpace,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        resolution: int = 224,
        stem_stride: int = 2,
        first_stride: int = 2,
        dropout: float = 0.0,
        backbone: str = "proxylessnas-mobile",
        kernels: Sequence[int] = (3, 5, 7),
        expansions: Sequence[float] = (3, 6),
        depths: Sequence[int] | None = None,
    ) -> None:
        from nasforge.spaces import _mobilenet_text as text

        self.space = space
        names = [d.name for d in space.decisions()]
        self._position = {name: i for i, name in enumerate(names)}
        self._options = {d.name: d.options for d in space.decisions()}
        for label, given, valid in (
            ("kernels", tuple(kernels), text.KERNELS),
            ("expansions", tuple(expansions), text.EXPANSIONS),
        ):
            if not given or any(v not in valid for v in given) or len(set(given)) < len(given):
                raise InvalidConfigError(
                    f"{label} must be distinct values of {valid}, got {given!r}."
                )
        found: Any = space  # the mobilenet space: named(), layers()
        base = found.named(backbone)
        values = self._named_values(base)
        if depths is None:
            depths = [
                0 if values[f"s{s}_depth"] == 0 else text.max_depth(s)
                for s in range(1, text.N_STAGES + 1)
            ]
        depths = list(depths)
        if len(depths) != text.N_STAGES or any(
            d not in text.DEPTHS[s] for s, d in enumerate(depths)
        ):
            raise InvalidConfigError(
                f"depths must give stages 1..{text.N_STAGES} one of their depths "
                f"{[list(d) for d in text.DEPTHS]}, got {depths!r}."
            )
        for s, depth in enumerate(depths, start=1):
            last = max(0, values[f"s{s}_depth"] - 1)
            for b in range(values[f"s{s}_depth"], depth):  # blocks beyond the backbone's
                for field in ("se", "act"):
                    values[f"s{s}b{b}_{field}"] = values[f"s{s}b{last}_{field}"]
            values[f"s{s}_depth"] = depth
            for b in range(1, text.max_depth(s)):
                values[f"s{s}b{b}_skip"] = False
        self.blocks = tuple((k, e) for k in kernels for e in expansions)
        options = tuple(f"k{k}_e{e:g}" for k, e in self.blocks)
        self._values = values
        self.settings = {
            "num_classes": num_classes,
            "width_mult": width_mult,
            "resolution": resolution,
            "stem_stride": stem_stride,
            "first_stride": first_stride,
            "dropout": dropout,
        }
        full = found.layers(self._arch(values), **self.settings)  # every block present
        groups = (
            DecisionGroup("first", options, sum(1 for d in depths if d)),
            DecisionGroup("block", (*options, "zero"), sum(max(0, d - 1) for d in depths)),
        )
        rows: list[tuple[int, Candidates]] = []
        self._blocks: list[tuple[int, int]] = []  # (stage, block) of each row, network order
        k = 2  # full[0] is the stem, full[1] stage 0's block
        for s, depth in enumerate(depths, start=1):
            for b in range(depth):
                spec = full[k]
                k += 1
                cands: list[LayerSpec | None] = [
                    dataclasses.replace(spec, kernel=kk, expansion=e) for kk, e in self.blocks
                ]
                if b > 0:
                    cands.append(None)
                rows.append((0 if b == 0 else 1, tuple(cands)))
                self._blocks.append((s, b))
        super().__init__(space, full[:2], rows, full[-1], groups, self.settings)

    def _named_values(self, arch: Architecture) -> dict[str, Any]:
        pairs = zip(self._options.items(), arch.choices, strict=True)
        return {name: options[c] for (name, options), c in pairs}

    def _arch(self, values: Mapping[str, Any]) -> Architecture:
        choices = []
        for name, options in self._options.items():
            matches = [i for i, o in enumerate(options) if o == values[name]]
            if not matches:
                raise InvalidArchitectureError(f"{name} = {values[name]!r} is not an option.")
            choices.append(matches[0])
        return self.space.from_choices(choices)

    def from_path(self, index: Sequence[Sequence[int]]) -> Architecture:
        index = self._check_index(index)
        values = dict(self._values)
        for (g, r), (s, b) in zip(self.sites, self._blocks, strict=True):
            option = index[g][r]
            prefix = f"s{s}b{b}"
            if option == len(self.blocks):  # zero
                values[f"{prefix}_skip"] = True
            else:
                values[f"{prefix}_kernel"], values[f"{prefix}_expansion"] = self.blocks[option]
        return self._arch(values)

    def path(self, arch: Architecture) -> list[list[int]]:
        """The path of ``arch``. Decisions the supernet does not search (widths, SE,
        activations...) are not read; a block whose kernel and expansion are not candidates
        takes the nearest candidate (SPOS samples the whole space), so use :meth:`contains`
        to know whether the path builds ``arch`` itself."""
        values = self._named_values(self.space.check(arch))
        index = [[0] * rows for rows, _ in self.arch_shapes]
        for (g, r), (s, b) in zip(self.sites, self._blocks, strict=True):
            prefix = f"s{s}b{b}"
            gone = b >= values[f"s{s}_depth"] or values.get(f"{prefix}_skip", False)
            if gone and g == 1:
                index[g][r] = len(self.blocks)
                continue
            k, e = values[f"{prefix}_kernel"], values[f"{prefix}_expansion"]
            index[g][r] = min(
                range(len(self.blocks)),
                key=lambda i: (abs(self.blocks[i][0] - k), abs(self.blocks[i][1] - e)),
            )
        return index


# -- fbnet ----------------------------------------------------------------------------------------
class FBNetSearchNet(MobileSearchNet):
    """FBNet's supernet of the ``fbnet`` space: Table 1's macro-architecture with the 9
    blocks of Table 2 on each of its 22 layers (one group ``"layer"``).

    Args:
        space: The ``fbnet`` space.
        num_classes, width_mult, resolution, stem_stride, first_stride, dropout: Settings of
            ``space.layers`` (default its ``search`` preset).
        head: The head width (Table 1's 1984, or FBNet-A's 1504).

    Example:
        >>> from nasforge import spaces
        >>> net = FBNetSearchNet(spaces.create("fbnet"), width_mult=0.25, resolution=32,
        ...                      stem_stride=1, first_stride=1)
        >>> [(g.name, g.rows, len(g.options)) for g in net.groups]
        [('layer', 22, 9)]
    """

    def __init__(
        self,
        space: SearchSpace,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        resolution: int = 224,
        stem_stride: int = 2,
        first_stride: int = 2,
        dropout: float = 0.0,
        head: int = 1984,
    ) -> None:
        from nasforge.spaces import fbnet

        if head not in fbnet.HEAD_WIDTHS:
            raise InvalidConfigError(f"head must be one of {fbnet.HEAD_WIDTHS}, got {head!r}.")
        self.settings = {
            "num_classes": num_classes,
            "width_mult": width_mult,
            "resolution": resolution,
            "stem_stride": stem_stride,
            "first_stride": first_stride,
            "dropout": dropout,
        }
        self._head = fbnet.HEAD_WIDTHS.index(head)
        found: Any = space  # the fbnet space: layer_candidates(), layers()
        candidates = found.layer_candidates(**self.settings)
        first = [fbnet.BLOCKS.index("k3_e1")] * fbnet.N_LAYERS
        specs = found.layers(space.from_choices([*first, self._head]), **self.settings)
        groups = (DecisionGroup("layer", fbnet.BLOCKS, fbnet.N_LAYERS),)
        rows = [(0, tuple(c)) for c in candidates]
        super().__init__(space, specs[:1], rows, specs[-1], groups, self.settings)

    def from_path(self, index: Sequence[Sequence[int]]) -> Architecture:
        return self.space.from_choices([*self._check_index(index)[0], self._head])

    def path(self, arch: Architecture) -> list[list[int]]:
        """The 22 blocks of ``arch`` (its head width is not read: :meth:`contains`)."""
        return [list(self.space.check(arch).choices[:-1])]


def resolve_table(
    net: MobileSearchNet,
    table: Any,
    *,
    backend: str = "torch",
    threads: int = 1,
    runs: int = 5,
) -> LayerLatencyTable:
    """The per-layer latency table a hardware-aware search uses on ``net``.

    Args:
        net: The supernet.
        table: A :class:`~nasforge.hardware.layer_lut.LayerLatencyTable`, the path of its CSV,
            or ``None``: measure every layer of ``net`` on this machine with ``backend``
            (``runs`` timed passes each, batch 1, ``threads`` threads), calibrated on three
            networks of the supernet drawn with a fixed seed.

    Raises:
        InvalidConfigError: The table is not a table or a readable CSV, or lacks a layer of
            the supernet (the table's message names the layer).
    """
    from nasforge.hardware.layer_lut import LayerLatencyTable

    if table is None:
        from nasforge.hardware.layer_measure import measure_table

        generator = torch.Generator().manual_seed(0)
        paths = [
            [torch.randint(n, (rows,), generator=generator).tolist() for rows, n in net.arch_shapes]
            for _ in range(3)
        ]
        return measure_table(
            None,
            net.all_specs(),
            backend=backend,
            threads=threads,
            runs=runs,
            warmup=2,
            calibration=[list(net.specs(path)) for path in paths],
        )
    if not isinstance(table, LayerLatencyTable):
        if not isinstance(table, (str, os.PathLike)):
            raise InvalidConfigError(
                "table must be a LayerLatencyTable, the path of its CSV, or None (measure "
                f"one here), got {type(table).__name__}."
            )
        table = LayerLatencyTable.from_csv(Path(table))
    found: LayerLatencyTable = table
    missing = found.missing(net.all_specs())
    if missing:
        found.latency(missing[0])  # raises, naming the layer
    return found


def searched_supernet(state: Any, method: str) -> MobileSearchNet:
    """``state.supernet`` of a one-shot search when it is a mobile supernet, else a clear
    refusal (ProxylessNAS and FBNet need per-candidate latencies)."""
    if not isinstance(state.supernet, MobileSearchNet):
        raise UnsupportedOperationError(
            f"{method} searches the mobile supernets of the spaces 'mobilenet' and 'fbnet' "
            f"(per-layer latency tables); space {state.space.name!r} has "
            f"{type(state.supernet).__name__}."
        )
    return state.supernet
