"""HURRICANE: hardware-specific candidate operations and a two-stage one-shot search.

Zhang, L. L., Yang, Y., Jiang, Y., Zhu, W. and Liu, Y. "Fast Hardware-Aware Neural
Architecture Search." CVPR Workshops 2020, arXiv:1910.11609, Section 3. Two ideas:

1. **Hardware-aware search space** (Section 3.1): instead of one hand-picked set of
   candidate operations for every device, start from a large pool and keep, *per device*,
   the candidates with the best trade-off between representational capacity and latency
   measured on that device. Here the pool is every MBConv block of the ``mobilenet`` space
   (kernel {3, 5, 7} x expansion {1, 3, 4, 6}: 12 blocks, each priced at every searchable
   layer of the backbone by the device's per-layer latency table,
   :class:`~nasforge.hardware.layer_lut.LayerLatencyTable`), capacity is a block's
   multiply-adds, and a block's score is its capacity per millisecond over the backbone's
   layers, ``sum_l MACs(b, l) / sum_l LAT(b, l)``; the ``n_candidates`` best blocks are the
   device's candidates (:func:`hardware_candidates`). A device on which 7x7 depthwise
   convolutions are cheap keeps them; one on which they are slow drops them.
2. **Two-stage search** (Section 3.2): the supernet over those candidates (the ``mobilenet``
   space's mobile supernet, :class:`nasforge.ops.mobile_search_net.MobileNetSearchNet`,
   whose layers hold the candidates and the zero layer where a block may be skipped) is
   trained by single-path uniform sampling (SPOS: Guo et al., ECCV 2020, arXiv:1904.00420)
   first for the *later* layers (``later_share`` of the searchable layers, the deep end of
   the network), the earlier layers drawn at random, and an evolutionary search picks the
   later layers under the latency constraint with the earlier layers at their fastest
   candidates; then the later layers are fixed to that choice, the supernet trains on the
   earlier layers, and a second evolutionary search picks them under the same constraint.
   Each stage searches a much smaller space than the whole network, which is where the
   paper's savings over SPOS come from.

The evolution is SPOS's (population, ``top_k`` parents, half mutation with probability
``mutation_prob`` per searched layer, half uniform crossover), over the stage's layers
only; a candidate's score is the supernet's validation accuracy on its path after
recalibrating batch norm on training images; a candidate whose predicted latency exceeds
``target_ms`` is rejected before it is scored.

Recorded epochs: the training epochs of each stage record no trial; each generation of
each stage records the best architecture found so far (stage 1: its later layers with the
earlier layers at their fastest), with ``predicted_latency_ms`` and ``stage``.

Where this differs from the paper: the paper's pool mixes four block types (depthwise
separable, MBConv, ShuffleNetV2 and Xception-like blocks, with and without SE) on a
ShuffleNetV2-like backbone, and its exact score is its own; here the pool is the MBConv
blocks the ``mobilenet`` space has, on its ProxylessNAS backbone, and capacity is counted
in multiply-adds. Which layers count as "later" is a setting (``later_share``).

Example:
    >>> from nasforge import oneshot
    >>> method = oneshot.create("hurricane", n_candidates=4, generations=5)
    >>> method.total_epochs(10)
    20
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import (
    InfeasibleConstraintError,
    InvalidConfigError,
    UnknownNameError,
    UnsupportedOperationError,
)
from nasforge.hardware.layer_lut import LayerLatencyTable
from nasforge.oneshot._latency import check_target, table_label
from nasforge.oneshot.base import OneShotMethod, SupernetSettings

if TYPE_CHECKING:
    from nasforge.oneshot._data import SearchData
    from nasforge.oneshot._engine import SearchState
    from nasforge.ops.mobile import LayerSpec
    from nasforge.ops.mobile_search_net import MobileMixedLayer, MobileNetSearchNet
    from nasforge.spaces.base import SearchSpace

__all__ = ["POOL_EXPANSIONS", "POOL_KERNELS", "CandidateSelection", "Hurricane", "block_macs"]

#: The pool of candidate blocks: every MBConv kernel and expansion of the ``mobilenet`` space.
POOL_KERNELS: tuple[int, ...] = (3, 5, 7)
POOL_EXPANSIONS: tuple[float, ...] = (1, 3, 4, 6)

Block = tuple[int, float]
Path_ = list[list[int]]


def _mixed(net: MobileNetSearchNet) -> list[MobileMixedLayer]:
    """The supernet's searchable layers, typed."""
    from nasforge.ops.mobile_search_net import MobileMixedLayer

    return [layer for layer in net.layers if isinstance(layer, MobileMixedLayer)]


def block_macs(spec: LayerSpec) -> float:
    """Multiply-adds of an MBConv block (expansion, depthwise, squeeze-and-excitation,
    projection), the capacity measure of :func:`hardware_candidates`."""
    from nasforge.ops.mobile import make_divisible

    mid, side_in, side_out = spec.mid_channels, spec.resolution, spec.out_resolution
    macs = 0.0
    if mid != spec.in_channels or spec.always_expand:
        macs += spec.in_channels * mid * side_in**2 / spec.groups
    macs += mid * spec.kernel**2 * side_out**2
    if spec.se != "none":
        squeezed = (
            max(1, int(0.25 * spec.in_channels))
            if spec.se == "mnasnet"
            else make_divisible(mid / 4)
        )
        macs += 2 * mid * squeezed
    return macs + mid * spec.out_channels * side_out**2 / spec.groups


@dataclass(frozen=True)
class CandidateSelection:
    """The device's candidates and how the pool scored.

    Attributes:
        blocks: The kept ``(kernel, expansion)`` blocks, best score first.
        scores: Every pool block's score (capacity per ms), by block.
        latency_ms: Every pool block's latency summed over the searchable layers.
        device: The table's name.
    """

    blocks: tuple[Block, ...]
    scores: dict[Block, float]
    latency_ms: dict[Block, float]
    device: str


def hardware_candidates(
    layers: Sequence[LayerSpec],
    table: LayerLatencyTable,
    n_candidates: int = 4,
    kernels: Sequence[int] = POOL_KERNELS,
    expansions: Sequence[float] = POOL_EXPANSIONS,
) -> CandidateSelection:
    """Keep the ``n_candidates`` pool blocks with the most capacity per millisecond on the
    table's device (see the module docstring).

    Args:
        layers: The searchable layers of the backbone (any block of each: only its shape is
            read; kernel and expansion are replaced by each pool block's).
        table: The device's per-layer latency table.
        n_candidates: How many blocks to keep.
        kernels, expansions: The pool.

    Raises:
        InvalidConfigError: ``n_candidates`` outside ``1..len(pool)``, or the table lacks a
            pool block at a layer (the message names the layer and the block).
    """
    pool = [(k, e) for k in kernels for e in expansions]
    if isinstance(n_candidates, bool) or not isinstance(n_candidates, int):
        raise InvalidConfigError(f"n_candidates must be an integer, got {n_candidates!r}.")
    if not 1 <= n_candidates <= len(pool):
        raise InvalidConfigError(
            f"n_candidates must be in 1..{len(pool)} (the pool's blocks), got {n_candidates}."
        )
    capacity = dict.fromkeys(pool, 0.0)
    latency = dict.fromkeys(pool, 0.0)
    for position, layer in enumerate(layers):
        for block in pool:
            spec = dataclasses.replace(layer, kernel=block[0], expansion=block[1])
            if spec not in table:
                raise InvalidConfigError(
                    f"Latency table {table.name!r} has no entry for searchable layer "
                    f"{position} ({spec.in_channels}->{spec.out_channels} channels, stride "
                    f"{spec.stride}, {spec.resolution}x{spec.resolution}), choice kernel "
                    f"{block[0]} expansion {block[1]:g}: key {spec.key!r}. HURRICANE prices "
                    "every block of its pool at every layer; measure them or add the rows."
                )
            capacity[block] += block_macs(spec)
            latency[block] += table.latency(spec)
    scores = {b: capacity[b] / max(latency[b], 1e-12) for b in pool}
    ranked = sorted(pool, key=lambda b: (-scores[b], latency[b]))
    return CandidateSelection(tuple(ranked[:n_candidates]), scores, latency, table.name)


@oneshot.register("hurricane")
class Hurricane(OneShotMethod):
    """HURRICANE (Zhang et al. 2020) on the ``mobilenet`` space.

    Args:
        table: The device's per-layer latency table (a
            :class:`~nasforge.hardware.layer_lut.LayerLatencyTable` or its CSV); ``None``
            times every pool block of every layer on this machine (measured again on
            resume: give a table for a search that must resume bit for bit).
        target_ms: The latency constraint in the table's milliseconds (``None``: none).
        n_candidates: Candidate blocks kept for the device (4).
        later_share: Share of the searchable layers searched in the first stage (the last
            ones).
        stage1_share: Share of the training epochs spent on the first stage.
        preset: The space's preset of the supernet's width and strides (updated by the
            search settings' ``options``; the resolution is the data's).
        backbone: The published network of the space whose skeleton the supernet keeps.
        lr, lr_min, momentum, weight_decay, nesterov, grad_clip: The weights' SGD (cosine
            over the training epochs of both stages).
        population, generations, top_k, mutation_prob: The evolution of each stage.
        recal_images, eval_images: Training images that recalibrate batch norm and
            validation images that score a candidate (capped at the halves' sizes).

    Raises:
        InvalidConfigError: A value out of range, or a table that cannot be read.
    """

    default_epochs = 120
    share_weights = False

    def __init__(
        self,
        *,
        table: str | os.PathLike[str] | LayerLatencyTable | None = None,
        target_ms: float | None = None,
        n_candidates: int = 4,
        later_share: float = 0.4,
        stage1_share: float = 0.5,
        preset: str = "search",
        backbone: str = "proxylessnas-mobile",
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 4e-5,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        population: int = 50,
        generations: int = 20,
        top_k: int = 10,
        mutation_prob: float = 0.1,
        recal_images: int = 1024,
        eval_images: int = 2048,
    ) -> None:
        for name, value in (
            ("n_candidates", n_candidates),
            ("population", population),
            ("generations", generations),
            ("top_k", top_k),
            ("recal_images", recal_images),
            ("eval_images", eval_images),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(
                    f"HURRICANE {name} must be a positive integer, got {value!r}."
                )
        for name, share in (("later_share", later_share), ("stage1_share", stage1_share)):
            if not 0.0 < float(share) < 1.0:
                raise InvalidConfigError(f"{name} must be in (0, 1), got {share!r}.")
        if not 0.0 <= mutation_prob <= 1.0 or lr <= 0:
            raise InvalidConfigError(
                f"mutation_prob must be in [0, 1] and lr positive, got {mutation_prob!r}, {lr!r}."
            )
        if isinstance(table, (str, os.PathLike)):
            table = LayerLatencyTable.from_csv(Path(table))
        elif table is not None and not isinstance(table, LayerLatencyTable):
            raise InvalidConfigError(f"table must be a latency table or its CSV, got {table!r}.")
        self.table, self.target_ms = table, check_target(target_ms)
        self.n_candidates, self.later_share = n_candidates, float(later_share)
        self.stage1_share, self.preset, self.backbone = float(stage1_share), preset, backbone
        self.lr, self.lr_min, self.momentum = float(lr), float(lr_min), float(momentum)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)
        self.grad_clip = float(grad_clip)
        self.population, self.generations, self.top_k = population, generations, top_k
        self.mutation_prob = float(mutation_prob)
        self.recal_images, self.eval_images = recal_images, eval_images
        self.selection: CandidateSelection | None = None
        self.allowed: list[list[int]] = []  # per site, the options a path may take
        self.latency: list[list[float]] = []  # per site, each option's latency (ms)
        self.fixed_ms = 0.0
        self.sites: list[tuple[int, int]] = []
        self.later: set[int] = set()
        self.fastest: list[int] = []
        self.history: list[tuple[int, tuple[int, ...], float]] = []  # (stage, options, score)
        self.stage1_best: tuple[int, ...] | None = None
        self.w_optimizer: Any = None
        self._training = False

    def params(self) -> dict[str, Any]:
        return {
            "table": table_label(self.table),
            "target_ms": self.target_ms,
            "n_candidates": self.n_candidates,
            "later_share": self.later_share,
            "stage1_share": self.stage1_share,
            "preset": self.preset,
            "backbone": self.backbone,
            "lr": self.lr,
            "lr_min": self.lr_min,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
            "grad_clip": self.grad_clip,
            "population": self.population,
            "generations": self.generations,
            "top_k": self.top_k,
            "mutation_prob": self.mutation_prob,
            "recal_images": self.recal_images,
            "eval_images": self.eval_images,
        }

    def total_epochs(self, epochs: int) -> int:
        return epochs + 2 * self.generations

    # -- the hardware-specific supernet ----------------------------------------------------
    def network(
        self, space: SearchSpace, *, num_classes: int, resolution: int, options: Any = None
    ) -> MobileNetSearchNet:
        """The device's candidates (:attr:`selection`) and the supernet over them.

        Raises:
            InvalidConfigError: A table lacking a pool block (layer and block named), or
                settings the supernet does not take. Without a table, every pool block of
                every layer is timed on this machine (PyTorch, one thread): the device is
                this machine.
            InfeasibleConstraintError: No network of the candidates meets ``target_ms`` (the
                fastest reachable is named).
            UnsupportedOperationError: ``space`` has no published network ``backbone``.
        """
        from nasforge.ops.mobile_search_net import MobileNetSearchNet, resolve_table

        try:
            getattr(space, "named")(self.backbone)  # noqa: B009 - not every space has it
        except (AttributeError, UnknownNameError):
            raise UnsupportedOperationError(
                f"HURRICANE keeps the skeleton of the published network {self.backbone!r} and "
                f"searches its layers among MBConv blocks; space {space.name!r} has no such "
                "network. Search the 'mobilenet' space with it (backbone= one of its "
                "published networks), or use 'fbnet' or 'proxylessnas' on this space."
            ) from None
        presets = space.presets()
        if self.preset not in presets:
            raise UnknownNameError(f"preset of space {space.name!r}", self.preset, presets)
        keys = ("width_mult", "stem_stride", "first_stride", "dropout")
        build = {k: v for k, v in presets[self.preset].items() if k in keys}
        build.update({k: v for k, v in dict(options or {}).items() if k != "resolution"})
        build.update(num_classes=num_classes, resolution=resolution, backbone=self.backbone)
        if self.table is None:  # the device is this machine: time the pool's layers here
            pool = MobileNetSearchNet(
                space, kernels=POOL_KERNELS, expansions=POOL_EXPANSIONS, **build
            )
            self.table = resolve_table(pool, None)
        probe = MobileNetSearchNet(space, kernels=(3,), expansions=(3,), **build)
        shapes = [spec for layer in _mixed(probe) if (spec := layer.specs[0]) is not None]
        self.selection = hardware_candidates(shapes, self.table, self.n_candidates)
        kernels = tuple(sorted({k for k, _ in self.selection.blocks}))
        expansions = tuple(sorted({e for _, e in self.selection.blocks}))
        net = MobileNetSearchNet(space, kernels=kernels, expansions=expansions, **build)
        self._prepare(net)
        if self.target_ms is not None:
            low = self.fixed_ms + sum(min(row[o] for o in ok) for row, ok in self._rows())
            if self.target_ms < low:
                raise InfeasibleConstraintError(
                    f"No network of HURRICANE's candidates {list(self.selection.blocks)} meets "
                    f"the latency target {self.target_ms:g} ms on {self.table.name!r}: the "
                    f"fastest reachable is {low:.4g} ms. Raise target_ms to at least {low:.4g}."
                )
        return net

    def _rows(self) -> list[tuple[list[float], list[int]]]:
        return list(zip(self.latency, self.allowed, strict=True))

    def _prepare(self, net: MobileNetSearchNet) -> None:
        assert self.table is not None and self.selection is not None
        table = self.table
        self.fixed_ms = table.fixed_ms + sum(
            table.latency(spec) for spec in (*net.front_specs, net.head_spec)
        )
        self.sites = list(net.sites)
        zero = len(net.blocks)
        self.allowed, self.latency = [], []
        for (g, _), layer in zip(self.sites, _mixed(net), strict=True):
            options = [net.blocks.index(b) for b in self.selection.blocks]
            if g == 1:  # a block that may be skipped keeps the zero layer
                options.append(zero)
            self.allowed.append(sorted(options))
            self.latency.append([0.0 if s is None else table.latency(s) for s in layer.specs])
        n_later = max(1, round(self.later_share * len(self.sites)))
        self.later = set(range(len(self.sites) - n_later, len(self.sites)))
        self.fastest = [min(ok, key=row.__getitem__) for row, ok in self._rows()]

    def build_network(
        self, space: SearchSpace, settings: SupernetSettings, data: SearchData
    ) -> MobileNetSearchNet:
        return self.network(
            space,
            num_classes=data.num_classes,
            resolution=data.train.resolution,
            options=getattr(settings, "options", None),
        )

    def setup(self, state: SearchState) -> None:
        from nasforge.oneshot import _engine

        self.w_optimizer = _engine.weight_optimizer(
            state.supernet, self.lr, self.momentum, self.weight_decay, self.nesterov
        )

    # -- paths ---------------------------------------------------------------------------------
    def index(self, options: Sequence[int]) -> Path_:
        """The supernet path of one option per site."""
        shapes = [0] * (1 + max(g for g, _ in self.sites))
        for g, r in self.sites:
            shapes[g] = max(shapes[g], r + 1)
        index = [[0] * n for n in shapes]
        for (g, r), option in zip(self.sites, options, strict=True):
            index[g][r] = int(option)
        return index

    def predicted_latency(self, options: Sequence[int]) -> float:
        """The table's latency of the network of ``options`` (one per site)."""
        return self.fixed_ms + sum(row[o] for row, o in zip(self.latency, options, strict=True))

    def searched(self, stage: int) -> list[int]:
        """The sites stage ``stage`` (1 or 2) searches: the later ones first."""
        return (
            sorted(self.later)
            if stage == 1
            else [i for i in range(len(self.sites)) if i not in self.later]
        )

    def base(self, stage: int) -> list[int]:
        """The options of the sites a stage does not search: stage 1 the earlier layers'
        fastest candidates, stage 2 the first stage's choice of the later layers."""
        if stage == 1 or self.stage1_best is None:
            return list(self.fastest)
        return list(self.stage1_best)

    def _phase(self, epochs: int, epoch: int) -> tuple[str, int, int]:
        """``(kind, stage, number)``: ``kind`` ``"train"`` (number = training epoch of the
        whole schedule) or ``"evolve"`` (number = generation)."""
        first = min(epochs - 1, max(1, round(self.stage1_share * epochs))) if epochs > 1 else 1
        g = self.generations
        if epoch < first:
            return "train", 1, epoch
        if epoch < first + g:
            return "evolve", 1, epoch - first
        if epoch < epochs + g:
            return "train", 2, epoch - g
        return "evolve", 2, epoch - epochs - g

    # -- the search ----------------------------------------------------------------------------
    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        kind, stage, number = self._phase(state.epochs, epoch)
        self._training = kind == "train"
        if kind == "evolve":
            return self.generation(state, stage, number)

        from nasforge.oneshot import _engine
        from nasforge.train.schedule import cosine_annealing

        _engine.set_lr(
            self.w_optimizer,
            cosine_annealing(number, state.epochs, lr=self.lr, min_lr=self.lr_min),
        )
        net = state.supernet
        net.train()
        searched = set(self.searched(stage))
        base = self.base(stage)

        def draw() -> tuple[Any, tuple[int, ...]]:
            options = [
                ok[int(state.rng.integers(len(ok)))] if i in searched or stage == 1 else base[i]
                for i, ok in enumerate(self.allowed)
            ]
            return self.index(options), self._choices(state, options)

        stats = _engine.train_single_paths(state, self.w_optimizer, self.grad_clip, epoch, draw)
        return {**stats, "stage": float(stage)}

    def _choices(self, state: SearchState, options: Sequence[int]) -> tuple[int, ...]:
        net: MobileNetSearchNet = state.supernet  # type: ignore[assignment]
        return net.from_path(self.index(options)).choices

    def _feasible(self, options: Sequence[int]) -> bool:
        return self.target_ms is None or self.predicted_latency(options) <= self.target_ms

    def _child(self, state: SearchState, stage: int, number: int) -> list[int]:
        rng, searched = state.rng, self.searched(stage)
        child = self.base(stage)
        parents = [o for s, o, _ in sorted(self.history, key=lambda h: -h[2]) if s == stage]
        parents = parents[: self.top_k]
        if number == 0 or not parents:
            for i in searched:
                child[i] = self.allowed[i][int(rng.integers(len(self.allowed[i])))]
        elif rng.random() < 0.5:  # mutation
            child = list(parents[int(rng.integers(len(parents)))])
            for i in searched:
                if rng.random() < self.mutation_prob:
                    child[i] = self.allowed[i][int(rng.integers(len(self.allowed[i])))]
        else:  # crossover
            a, b = (parents[int(j)] for j in rng.integers(len(parents), size=2))
            child = [b[i] if i in searched and rng.random() < 0.5 else a[i] for i in range(len(a))]
        return child

    def generation(self, state: SearchState, stage: int, number: int) -> dict[str, float]:
        """Score one generation of stage ``stage`` on the supernet; return the best so far."""
        from nasforge.oneshot import _engine

        seen = {tuple(o) for s, o, _ in self.history if s == stage}
        fresh: list[tuple[int, ...]] = []
        attempts = 0
        while len(fresh) < self.population and attempts < 20 * self.population:
            attempts += 1
            child = tuple(self._child(state, stage, number))
            if child not in seen and self._feasible(child):
                seen.add(child)
                fresh.append(child)
        if not fresh and not any(s == stage for s, _, _ in self.history):
            fastest = list(self.base(stage))  # a tight target: the stage's fastest network
            for i in self.searched(stage):
                fastest[i] = self.fastest[i]
            fresh.append(tuple(fastest))
        recal = state.data.fixed(
            "train", min(self.recal_images, len(state.data.train)), state.device
        )
        count = min(self.eval_images, len(state.data.valid))
        batches = state.data.fixed("valid", count, state.device)
        for child in fresh:
            index = self.index(child)
            _engine.recalibrate_bn(state.supernet, recal, index)
            accuracy, _ = _engine.supernet_accuracy(
                state.supernet, batches, index=index, train_mode=False
            )
            self.history.append((stage, child, accuracy))
        best = self.best(stage)
        if stage == 1:
            self.stage1_best = best
        assert best is not None
        return {
            "supernet_acc": max(s for st, _, s in self.history if st == stage),
            "stage": float(stage),
            "generation": float(number),
            "candidates": float(len(fresh)),
            "predicted_latency_ms": self.predicted_latency(best),
            **({} if self.target_ms is None else {"latency_target_ms": float(self.target_ms)}),
        }

    def best(self, stage: int) -> tuple[int, ...] | None:
        """The best-scored options of stage ``stage`` so far."""
        scored = [(score, options) for s, options, score in self.history if s == stage]
        return max(scored, key=lambda h: h[0])[1] if scored else None

    def derive(self, state: SearchState) -> tuple[int, ...] | None:
        """After a generation, the best network so far (stage 2's once it has one); after
        a training epoch, none (no trial)."""
        best = self.best(2) or self.best(1)
        if best is None or self._training:
            return None
        return self._choices(state, best)

    def state_dict(self) -> dict[str, Any]:
        import torch

        return {
            "w_optimizer": self.w_optimizer.state_dict(),
            "history_stages": torch.tensor([s for s, _, _ in self.history], dtype=torch.long),
            "history_options": torch.tensor(
                [list(o) for _, o, _ in self.history], dtype=torch.long
            ),
            "history_scores": torch.tensor([s for _, _, s in self.history], dtype=torch.float64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        stages = state["history_stages"].tolist()
        options = state["history_options"].tolist()
        scores = state["history_scores"].tolist()
        self.history = [
            (int(s), tuple(int(v) for v in o), float(c))
            for s, o, c in zip(stages, options, scores, strict=True)
        ]
        self.stage1_best = self.best(1)
