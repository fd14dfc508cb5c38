"""What every sub-network of an ``ofa`` space costs: parameters, MACs, FLOPs and per-layer
table latency, one architecture at a time or whole populations at once (private; public
through :mod:`nasforge.evaluators.supernet`).

A sub-network's cost is the sum of its layers' costs (Cai et al., "Once-for-All: Train One
Network and Specialize it for Efficient Deployment", ICLR 2020, arXiv:1908.09791,
Section 3.3, prices latency so with a lookup table). Imports torch only to count a layer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    UnknownNameError,
    UnsupportedOperationError,
)
from nasforge.hardware.layer_lut import LayerLatencyTable

if TYPE_CHECKING:
    from nasforge.ops.mobile import LayerSpec

__all__ = ["COST_METRICS", "SubnetCosts", "latency_metric", "layer_costs", "measured_metric"]

#: The cost metrics of every sub-network (millions), as the training evaluator names them.
COST_METRICS: tuple[str, ...] = ("params_M", "macs_M", "flops_M")


# -- costs --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16384)
def layer_costs(spec: LayerSpec) -> tuple[float, float]:
    """Parameters and multiply-accumulates (millions) of one layer alone, on an input of its
    shape. A network of layers costs the sum of its layers' costs.

    The MACs are those :func:`nasforge.hardware.count_flops` counts for these layers (their
    convolutions and linear layers: ``k*k*C_in/groups*C_out*H_out*W_out`` and
    ``in*out``; biases, activations and pooling not counted), taken from the output shapes of
    one pass on a zero image (the flop counter's dispatch, on the meta device or not, takes
    some 40 ms a layer: too slow for a search that prices every layer of a space; the tests
    check the two agree).
    """
    import torch
    from torch import nn

    from nasforge.hardware import count_params
    from nasforge.ops.mobile import build_layer

    layer = build_layer(spec).eval()
    macs = [0]

    def count(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            macs[0] += output.numel() * per_output
        elif isinstance(module, nn.Linear):
            macs[0] += output.numel() * module.in_features

    hooks = [
        m.register_forward_hook(count)
        for m in layer.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            layer(torch.zeros((1, spec.in_channels, spec.resolution, spec.resolution)))
    finally:
        for hook in hooks:
            hook.remove()
    return count_params(layer) / 1e6, macs[0] / 1e6


class SubnetCosts:
    """Parameters, MACs, FLOPs and table latency of the sub-networks of an ``ofa`` space.

    A sub-network is its stem, first block and head (fixed at each resolution) plus the
    active blocks of its stages, each a layer whose shape depends only on the resolution,
    the stage, the block's place and its kernel and expansion. So every cost is the sum of
    a base (per resolution) and of per-block entries, and :meth:`batch` prices thousands of
    architectures (rows of choices) with a few array look-ups. :meth:`of` prices one from
    ``space.layers(arch)`` directly; the two agree.

    The populations are of the resolutions in use (``resolutions``, e.g. those the supernet
    was trained at): :meth:`batch` and :meth:`extreme` price those only, so a latency table
    needs entries for their layers only; :meth:`of` prices any sub-network. The layout of the
    rows (:attr:`resolutions`, the choice indices of the ``resolution`` decision) keeps every
    resolution of the space; :attr:`allowed` holds the indices in use.

    Args:
        space: An ``ofa`` space (:class:`~nasforge.spaces.ofa.OFASpace`).
        num_classes, width_mult, dropout: The sub-networks' settings (the supernet's).
        tables: Per-layer latency tables by device name (``latency_ms[<name>]``).
        resolutions: The input sides in use (default all of the space's).

    Raises:
        InvalidConfigError: A resolution that is not an option of the space (the valid ones
            are listed).
    """

    def __init__(
        self,
        space: Any,
        *,
        num_classes: int | None = None,
        width_mult: float = 1.0,
        dropout: float = 0.0,
        tables: Mapping[str, LayerLatencyTable] | None = None,
        resolutions: Sequence[int] | None = None,
    ) -> None:
        self.space = space
        self.build = {"num_classes": num_classes, "width_mult": width_mult, "dropout": dropout}
        self._settings = (num_classes, width_mult, dropout)
        self.tables = dict(tables or {})
        self.names: tuple[str, ...] = (*COST_METRICS, *(latency_metric(n) for n in self.tables))
        decisions = space.decisions()
        position = {d.name: i for i, d in enumerate(decisions)}
        self.decisions = decisions
        self.res_col = position["resolution"]
        self.resolutions = tuple(int(r) for r in decisions[self.res_col].options)
        used = self.resolutions if resolutions is None else tuple(resolutions)
        wrong = [r for r in used if r not in self.resolutions]
        if wrong or not used:
            raise InvalidConfigError(
                f"resolutions {list(used)} are not (all) input sides of space {space.name!r}; "
                f"choose from {list(self.resolutions)}."
            )
        #: The resolutions in use, and their choice indices.
        self.in_use: tuple[int, ...] = tuple(sorted({int(r) for r in used}))
        self.allowed = np.array([self.resolutions.index(r) for r in self.in_use])
        self.stages = sum(1 for d in decisions if d.name.endswith("_depth"))
        self.depth_cols = np.array([position[f"s{i}_depth"] for i in range(1, self.stages + 1)])
        self.depth_options = np.array(decisions[self.depth_cols[0]].options)
        self.max_depth = int(self.depth_options.max())
        shape = (self.stages, self.max_depth)
        self.kernel_cols = np.array(
            [position[f"s{i + 1}b{j}_kernel"] for i in range(shape[0]) for j in range(shape[1])]
        ).reshape(shape)
        self.expansion_cols = np.array(
            [position[f"s{i + 1}b{j}_expansion"] for i in range(shape[0]) for j in range(shape[1])]
        ).reshape(shape)
        self.n_kernels = len(decisions[int(self.kernel_cols[0, 0])].options)
        self.n_expansions = len(decisions[int(self.expansion_cols[0, 0])].options)
        self._base: dict[str, np.ndarray] | None = None
        self._blocks: dict[str, np.ndarray] | None = None

    def restricted(self, resolutions: Sequence[int] | None) -> SubnetCosts:
        """The same costs for populations of other resolutions (``None``: all)."""
        return SubnetCosts(
            self.space,
            num_classes=self._settings[0],
            width_mult=self._settings[1],
            dropout=self._settings[2],
            tables=self.tables,
            resolutions=resolutions,
        )

    # -- one architecture ----------------------------------------------------------------------
    def layers(self, arch: Architecture) -> tuple[LayerSpec, ...]:
        """The layers of ``arch``'s network at these settings."""
        return tuple(self.space.layers(arch, **self.build))

    def _price(self, specs: Sequence[LayerSpec]) -> dict[str, float]:
        params = math.fsum(layer_costs(spec)[0] for spec in specs)
        macs = math.fsum(layer_costs(spec)[1] for spec in specs)
        out = {"params_M": params, "macs_M": macs, "flops_M": 2.0 * macs}
        for name, table in self.tables.items():
            out[latency_metric(name)] = table.predict(specs)
        return out

    def of(self, arch: Architecture) -> dict[str, float]:
        """Every cost of ``arch`` (by metric name)."""
        return self._price(self.layers(arch))

    # -- many architectures --------------------------------------------------------------------
    def _fill(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The base ``[resolution]`` and block ``[resolution, stage, block, kernel,
        expansion]`` entries of every metric, from the layers of probe networks (every
        stage at its largest depth, one kernel and expansion everywhere), for the
        resolutions in use (NaN at the others)."""
        if self._base is not None and self._blocks is not None:
            return self._base, self._blocks
        n_res = len(self.resolutions)
        dims = (n_res, self.stages, self.max_depth, self.n_kernels, self.n_expansions)
        base = {name: np.full(n_res, np.nan) for name in self.names}
        blocks = {name: np.full(dims, np.nan) for name in self.names}
        depth_choice = int(np.argmax(self.depth_options))
        expected = 3 + self.stages * self.max_depth
        for r in self.allowed.tolist():
            for k in range(self.n_kernels):
                for e in range(self.n_expansions):
                    choices = np.zeros(len(self.decisions), dtype=int)
                    choices[self.res_col] = r
                    choices[self.depth_cols] = depth_choice
                    choices[self.kernel_cols] = k
                    choices[self.expansion_cols] = e
                    specs = self.layers(self.space.from_choices(choices.tolist()))
                    if len(specs) != expected:
                        raise UnsupportedOperationError(
                            f"Space {self.space.name!r}: the largest depth gives {len(specs)} "
                            f"layers, not stem, first block, {self.stages}x{self.max_depth} "
                            "blocks and head; SubnetCosts prices only Once-for-All's skeleton."
                        )
                    fixed = self._price([specs[0], specs[1], specs[-1]])
                    for name in self.names:
                        base[name][r] = fixed[name]
                    for i in range(self.stages):
                        for j in range(self.max_depth):
                            one = self._price([specs[2 + i * self.max_depth + j]])
                            for name in self.names:
                                # a table's fixed part belongs to the base only
                                offset = self._fixed(name)
                                blocks[name][r, i, j, k, e] = one[name] - offset
        self._base, self._blocks = base, blocks
        return base, blocks

    def _fixed(self, name: str) -> float:
        for device, table in self.tables.items():
            if latency_metric(device) == name:
                return table.fixed_ms
        return 0.0

    def active(self, choices: np.ndarray) -> np.ndarray:
        """``[n, stage, block]``: whether each block is within its stage's depth."""
        depths = self.depth_options[choices[:, self.depth_cols]]
        return np.asarray(np.arange(self.max_depth)[None, None, :] < depths[:, :, None])

    def batch(self, choices: np.ndarray) -> dict[str, np.ndarray]:
        """Every cost of each row of ``choices`` (``[n, decisions]`` choice indices).

        Raises:
            InvalidArchitectureError: A row at a resolution not in use.
        """
        base, blocks = self._fill()
        choices = np.asarray(choices, dtype=int)
        res = choices[:, self.res_col]
        outside = ~np.isin(res, self.allowed)
        if outside.any():
            side = self.resolutions[int(res[outside][0])]
            raise InvalidArchitectureError(
                f"A sub-network at resolution {side} is outside the resolutions in use "
                f"{list(self.in_use)}; price it with of(arch), or use costs of its "
                "resolutions (restricted())."
            )
        mask = self.active(choices)
        stage = np.arange(self.stages)[None, :, None]
        place = np.arange(self.max_depth)[None, None, :]
        kernel = choices[:, self.kernel_cols]
        expansion = choices[:, self.expansion_cols]
        out = {}
        for name in self.names:
            entries = blocks[name][res[:, None, None], stage, place, kernel, expansion]
            out[name] = base[name][res] + (entries * mask).sum(axis=(1, 2))
        return out

    def extreme(self, metric: str, *, lowest: bool = True) -> tuple[float, Architecture]:
        """The lowest (or highest) value of ``metric`` over every sub-network at the
        resolutions in use, and a sub-network that reaches it (each stage's depth and blocks
        chosen independently)."""
        if metric not in self.names:
            raise UnknownNameError("cost metric", metric, self.names)
        base, blocks = self._fill()
        pick = np.argmin if lowest else np.argmax
        table = blocks[metric].reshape(*blocks[metric].shape[:3], -1)
        best_block = (table.min if lowest else table.max)(axis=-1)  # [res, stage, block]
        which_block = pick(table, axis=-1)
        cumulative = np.cumsum(best_block, axis=-1)  # [res, stage, depth-1]
        depth_index = self.depth_options - 1
        per_depth = cumulative[:, :, depth_index]  # [res, stage, depth option]
        depth_pick = pick(per_depth, axis=-1)
        stage_best = np.take_along_axis(per_depth, depth_pick[..., None], axis=-1)[..., 0]
        totals = base[metric] + stage_best.sum(axis=-1)
        r = int(self.allowed[pick(totals[self.allowed])])
        choices = np.zeros(len(self.decisions), dtype=int)
        choices[self.res_col] = r
        for i in range(self.stages):
            choices[self.depth_cols[i]] = int(depth_pick[r, i])
            for j in range(int(self.depth_options[depth_pick[r, i]])):
                k, e = divmod(int(which_block[r, i, j]), self.n_expansions)
                choices[self.kernel_cols[i, j]] = k
                choices[self.expansion_cols[i, j]] = e
        return float(totals[r]), self.space.from_choices(choices.tolist())


def latency_metric(device: str) -> str:
    """``latency_ms[<device>]``."""
    return f"latency_ms[{device}]"


def measured_metric(device: str) -> str:
    """``measured_latency_ms[<device>]``."""
    return f"measured_latency_ms[{device}]"
