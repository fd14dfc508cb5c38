"""Single-Path NAS's search network on the ``mobilenet`` space: one superkernel per layer.

Stamoulis, D., Ding, R., Wang, D., Lymberopoulos, D., Priyantha, B., Liu, J. and Marculescu,
D. "Single-Path NAS: Designing Hardware-Efficient ConvNets in less than 4 Hours." ECML-PKDD
2019, arXiv:1904.02877, Sections 3 and 4. The search network is the paper's MobileNetV2-like
backbone: a fixed stem, a fixed first block (expansion 1, 3x3, 16 channels), five stages of
four searchable MBConv layers (24, 40, 80, 96 and 192 channels, strides 2, 2, 2, 1, 2), a
fixed last block (expansion 6, 3x3, 320 channels) and the head, i.e. the skeleton of the
authors' ``train-final/parse_netarch.py`` and of the ``single-path-nas`` network of
:class:`nasforge.spaces.mobilenet.MobileNetSpace` with every stage at depth 4. Each of the 20
searchable layers is one :class:`nasforge.ops.superkernel.SuperKernelMBConv` (kernel 3 or 5,
expansion 3 or 6, and skip where the layer has a shortcut: not for the first layer of a
stage); the fixed layers are built from the space's :class:`~nasforge.ops.mobile.LayerSpec`
by :func:`~nasforge.ops.mobile.build_layer`.

The network is not a :class:`nasforge.ops.supernet.Supernet` (a superkernel is not a mixture
of candidates): it answers what Single-Path NAS needs, its layers' decisions
(:meth:`SinglePathNetwork.derive`, a point of the space), its runtime ``R`` from a per-layer
latency table (:meth:`SinglePathNetwork.runtime_tables`, :meth:`SinglePathNetwork.runtime`)
and the stand-alone network of the decisions (:meth:`SinglePathNetwork.extract`, equal to
``space.build`` of :meth:`~SinglePathNetwork.derive` with the superkernels' weights).

Weights start as :class:`~nasforge.ops.mobile.MobileNetwork`'s (Kaiming normal, fan out):
the depthwise kernels' squared ring and group norms are then about 1 at any width, so the
thresholds, which start at 0 (every indicator on: the largest network), are within reach of
the indicators' sigmoid relaxation.

Example:
    >>> import torch
    >>> from nasforge import spaces
    >>> space = spaces.create("mobilenet")
    >>> net = SinglePathNetwork(space, num_classes=10, width_mult=0.25, resolution=32,
    ...                         stem_stride=1, first_stride=1)
    >>> len(net.superkernels), net.decisions()[0]
    (20, (5, 6))
    >>> tuple(net(torch.zeros(2, 3, 32, 32)).shape)
    (2, 10)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.ops.mobile import LayerSpec, MobileNetwork, build_layer, init_weights
from nasforge.ops.superkernel import SuperKernelMBConv, single_path_runtime

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.hardware.layer_lut import LayerLatencyTable
    from nasforge.spaces.base import SearchSpace

__all__ = [
    "BACKBONE",
    "SEARCH_DEPTH",
    "SEARCH_STAGES",
    "SinglePathNetwork",
]

#: The published network whose skeleton (widths, strides, stem, first and last block, head)
#: the search network keeps.
BACKBONE = "single-path-nas"
#: The stages whose layers are searched, and their depth (the paper's 5 x 4 = 20 layers).
SEARCH_STAGES: tuple[int, ...] = (1, 2, 3, 4, 5)
SEARCH_DEPTH = 4
#: Settings of ``space.layers`` the network takes.
BUILD_KEYS = ("num_classes", "width_mult", "resolution", "stem_stride", "first_stride", "dropout")

RuntimeTables = list[dict[tuple[int, float], float]]


class SinglePathNetwork(nn.Module):
    """The Single-Path NAS search network of a ``mobilenet`` space (see the module docstring).

    Args:
        space: The ``mobilenet`` space (anything with its decisions, ``named`` and ``layers``).
        kernels: Kernel sides of the superkernels (paper: ``(3, 5)``).
        expansions: Expansion ratios of the superkernels (paper: ``(3, 6)``).
        squared_norm: Compare ``||w||^2`` with the thresholds (paper); ``False``: ``||w||``.
        **build: Settings of ``space.layers`` (``num_classes``, ``width_mult``,
            ``resolution``, ``stem_stride``, ``first_stride``, ``dropout``).

    Attributes:
        superkernels: The 20 searchable layers, in order.
        positions: Their ``(stage, block)`` in the space.
        build: The settings of ``space.layers`` the network was built with.

    Raises:
        UnsupportedOperationError: The space is not shaped like ``mobilenet`` (lacks the
            decisions, the backbone network or ``layers``).
        InvalidConfigError: An unknown setting, or kernels/expansions the space does not offer.
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        kernels: Sequence[int] = (3, 5),
        expansions: Sequence[float] = (3, 6),
        squared_norm: bool = True,
        **build: Any,
    ) -> None:
        super().__init__()
        unknown = sorted(set(build) - set(BUILD_KEYS))
        if unknown:
            raise InvalidConfigError(
                f"SinglePathNetwork got unknown setting(s) {unknown}; it takes {list(BUILD_KEYS)}."
            )
        self.space: Any = space  # the mobilenet space (its layers() is not on SearchSpace)
        self.build = dict(build)
        self.kernels, self.expansions = tuple(kernels), tuple(expansions)
        self.positions = [(s, b) for s in SEARCH_STAGES for b in range(SEARCH_DEPTH)]
        self._decisions = self._check_space(space)
        self._backbone = list(self._backbone_choices())
        found: Any = space  # its layers() (checked by _check_space) is not on SearchSpace
        specs = found.layers(space.from_choices(self._backbone), **self.build)
        searched = len(self.positions)
        if len(specs) != searched + 4 or any(s.kind != "mbconv" for s in specs[2:-2]):
            raise UnsupportedOperationError(
                f"Space {space.name!r} did not lay the backbone out as stem, first block, "
                f"{searched} searchable blocks, last block and head; Single-Path NAS needs the "
                "mobilenet space's skeleton."
            )
        self.fixed_specs: tuple[LayerSpec, ...] = (specs[0], specs[1], specs[-2], specs[-1])
        self.stem = build_layer(specs[0])
        self.first = build_layer(specs[1])
        self.superkernels = nn.ModuleList(
            SuperKernelMBConv(
                spec.in_channels,
                spec.out_channels,
                spec.stride,
                self.kernels,
                self.expansions,
                act=spec.act,
                resolution=spec.resolution,
                # skip only where the space has it: not the first block of a stage, even
                # when a stride-1 first block of the CIFAR settings has a shortcut
                allow_skip=b > 0 and spec.residual,
                squared_norm=squared_norm,
            )
            for spec, (_, b) in zip(specs[2:-2], self.positions, strict=True)
        )
        self.last = build_layer(specs[-2])
        self.head = build_layer(specs[-1])
        init_weights(self)  # as MobileNetwork starts its weights

    # -- the space ------------------------------------------------------------------------------
    def _check_space(self, space: SearchSpace) -> dict[str, Any]:
        needed = [f"s{s}_depth" for s in SEARCH_STAGES]
        for s, b in self.positions:
            needed += [f"s{s}b{b}_kernel", f"s{s}b{b}_expansion"]
            needed += [f"s{s}b{b}_skip"] if b > 0 else []
        found = {d.name: d for d in space.decisions()} if space.supports("decisions") else {}
        missing = [name for name in needed if name not in found]
        if missing or not callable(getattr(space, "layers", None)):
            raise UnsupportedOperationError(
                f"Single-Path NAS searches the 'mobilenet' space (its decisions "
                f"{needed[:3]}... and layers()); space {space.name!r} lacks "
                f"{missing[:4] if missing else 'layers()'}."
            )
        for what, values in (("kernel", self.kernels), ("expansion", self.expansions)):
            options = found[f"s1b0_{what}"].options
            bad = [v for v in values if v not in options]
            if bad:
                raise InvalidConfigError(
                    f"The superkernels' {what}s {bad} are not options of space {space.name!r} "
                    f"(its {what}s: {list(options)})."
                )
        return found

    def _backbone_choices(self) -> tuple[int, ...]:
        """The backbone network with every searched stage at depth 4 and every block the
        largest one (the superkernels' full size)."""
        named = getattr(self.space, "named", None)
        if named is None:
            raise UnsupportedOperationError(
                f"Space {self.space.name!r} has no named({BACKBONE!r}) network to take the "
                "Single-Path NAS backbone from."
            )
        choices = list(named(BACKBONE).choices)
        self._set(choices, "s{}_depth", SEARCH_STAGES, SEARCH_DEPTH)
        for position in self.positions:
            self._set_block(choices, position, (self.kernels[-1], self.expansions[-1]))
        return tuple(choices)

    def _index(self, name: str) -> int:
        return [d.name for d in self.space.decisions()].index(name)

    def _set(self, choices: list[int], pattern: str, stages: Sequence[int], value: Any) -> None:
        for stage in stages:
            name = pattern.format(stage)
            choices[self._index(name)] = self._decisions[name].options.index(value)

    def _set_block(
        self, choices: list[int], position: tuple[int, int], block: tuple[int, float] | None
    ) -> None:
        stage, b = position
        prefix = f"s{stage}b{b}"
        kernel, expansion = block if block is not None else (self.kernels[0], self.expansions[0])
        for field, value in (("kernel", kernel), ("expansion", expansion)):
            name = f"{prefix}_{field}"
            choices[self._index(name)] = self._decisions[name].options.index(value)
        if b > 0:
            name = f"{prefix}_skip"
            choices[self._index(name)] = self._decisions[name].options.index(block is None)

    @property
    def layers_(self) -> list[SuperKernelMBConv]:
        """The superkernels, typed."""
        return [layer for layer in self.superkernels if isinstance(layer, SuperKernelMBConv)]

    # -- decisions --------------------------------------------------------------------------------
    def decisions(self) -> list[tuple[int, float] | None]:
        """Each searchable layer's block under the thresholds: ``(kernel, expansion)`` or
        ``None`` (skipped)."""
        return [layer.decision() for layer in self.layers_]

    def arch_of(self, blocks: Sequence[tuple[int, float] | None]) -> Architecture:
        """The architecture of the space whose searched layers are ``blocks``."""
        if len(blocks) != len(self.positions):
            raise InvalidConfigError(
                f"Give one block per searchable layer ({len(self.positions)}), got {len(blocks)}."
            )
        choices = list(self._backbone)
        for position, block in zip(self.positions, blocks, strict=True):
            self._set_block(choices, position, block)
        arch: Architecture = self.space.from_choices(choices)
        return arch

    def derive(self) -> Architecture:
        """The architecture the thresholds select now (a point of the space)."""
        return self.arch_of(self.decisions())

    def param_free_share(self, arch: Architecture | None = None) -> float:
        """Share of the searchable layers that are skipped (the parameter-free choice)."""
        blocks = self.decisions() if arch is None else self._blocks_of(arch)
        return sum(block is None for block in blocks) / len(blocks)

    def _blocks_of(self, arch: Architecture) -> list[tuple[int, float] | None]:
        values = {
            d.name: d.options[c] for d, c in zip(self.space.decisions(), arch.choices, strict=True)
        }
        out: list[tuple[int, float] | None] = []
        for stage, b in self.positions:
            prefix = f"s{stage}b{b}"
            skipped = b >= values[f"s{stage}_depth"] or bool(values.get(f"{prefix}_skip"))
            out.append(
                None if skipped else (values[f"{prefix}_kernel"], values[f"{prefix}_expansion"])
            )
        return out

    # -- runtime ----------------------------------------------------------------------------------
    def runtime_tables(self, table: LayerLatencyTable) -> tuple[RuntimeTables, float]:
        """Each searchable layer's ``{(kernel, expansion): ms}`` from a per-layer latency
        table, and the fixed part: the table's fixed part plus the stem, the first and last
        blocks and the head.

        Raises:
            InvalidConfigError: The table lacks an entry; the message names the layer (its
                position, stage and block) and the choice.
        """
        tables: RuntimeTables = []
        for i, (layer, (stage, b)) in enumerate(zip(self.layers_, self.positions, strict=True)):
            entries = {}
            for kernel in self.kernels:
                for expansion in self.expansions:
                    spec = layer.spec(kernel, expansion)
                    if spec not in table:
                        raise InvalidConfigError(
                            f"Latency table {table.name!r} has no entry for searchable layer "
                            f"{i} (stage {stage}, block {b}), choice kernel {kernel} expansion "
                            f"{expansion:g}: key {spec.key!r}. Measure the space's layers "
                            "(nasforge.hardware.measure_table) or add the row to the CSV."
                        )
                    entries[(kernel, expansion)] = table.latency(spec)
            tables.append(entries)
        fixed = table.fixed_ms
        for position, spec in zip(
            ("stem", "first block", "last block", "head"), self.fixed_specs, strict=True
        ):
            if spec not in table:
                raise InvalidConfigError(
                    f"Latency table {table.name!r} has no entry for the fixed {position} "
                    f"{spec.key!r}; measure it or add the row to the CSV."
                )
            fixed += table.latency(spec)
        return tables, fixed

    def all_specs(self) -> list[LayerSpec]:
        """Every distinct layer of the networks the search can derive (what a latency table
        for it must hold: :func:`nasforge.hardware.measure_table` ``(None, net.all_specs())``
        measures just these)."""
        specs = [*self.fixed_specs]
        for layer in self.layers_:
            specs += [layer.spec(k, e) for k in self.kernels for e in self.expansions]
        return list(dict.fromkeys(specs))

    def runtime(self, tables: RuntimeTables, fixed: float) -> torch.Tensor:
        """The network's runtime ``R`` under the current indicators (differentiable)."""
        return single_path_runtime(self.layers_, tables, fixed)

    def runtime_range(self, tables: RuntimeTables, fixed: float) -> tuple[float, float]:
        """The fastest and the slowest runtime any choice of the layers reaches."""
        low = high = fixed
        for layer, entries in zip(self.layers_, tables, strict=True):
            values = list(entries.values()) + ([0.0] if layer.allow_skip else [])
            low, high = low + min(values), high + max(values)
        return low, high

    # -- computation ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(self.stem(x))
        for layer in self.superkernels:
            x = layer(x)
        out: torch.Tensor = self.head(self.last(x))
        return out

    def extract(self) -> MobileNetwork:
        """The network of :meth:`derive` as ``space.build`` makes it, holding the
        superkernels' weights (the centre of each kernel, the first channels): its output
        equals this network's in eval mode (and in train mode, dropout aside)."""
        arch = self.derive()
        built = MobileNetwork(self.space.layers(arch, **self.build))
        modules = [self.stem, self.first]
        for layer in self.layers_:
            if layer.decision() is not None:
                modules.append(layer.extract())
        modules += [self.last, self.head]
        if len(modules) != len(built.layers):
            raise InvalidConfigError(  # pragma: no cover - the space and the network disagree
                f"The derived network has {len(built.layers)} layers, the superkernels "
                f"select {len(modules)}."
            )
        for target, source in zip(built.layers, modules, strict=True):
            target.load_state_dict(source.state_dict())
        built.train(self.training)
        return built.to(next(self.parameters()).device)

    def threshold_parameters(self) -> list[nn.Parameter]:
        """The thresholds of every superkernel."""
        return [p for layer in self.layers_ for p in layer.threshold_parameters()]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the thresholds."""
        thresholds = {id(p) for p in self.threshold_parameters()}
        return [p for p in self.parameters() if id(p) not in thresholds]
