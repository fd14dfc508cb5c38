"""Once-for-All's progressive shrinking.

Cai, H., Gan, C., Wang, T., Zhang, Z. and Han, S. "Once-for-All: Train One Network and
Specialize it for Efficient Deployment." ICLR 2020, arXiv:1908.09791, Section 3.2 and
Figure 3; the per-phase settings are those of the authors' ``train_ofa_net.py``
(mit-han-lab/once-for-all).

The supernet is trained from large to small, each phase adding one elastic dimension while
keeping the earlier ones elastic:

1. ``largest`` — the full network (depth 4, kernel 7, expansion 6), resolution elastic
   (every batch resized to one side drawn from the trained resolutions, in every phase);
2. ``kernel`` — elastic kernel {7, 5, 3} (kernel transformation matrices), depth and
   expansion at their maximum;
3. ``depth-1``, ``depth-2`` — elastic depth {4, 3}, then {4, 3, 2} (kernel elastic);
4. ``expand-1``, ``expand-2`` — elastic expansion {6, 4}, then {6, 4, 3} (kernel and depth
   elastic), the expanded channels sorted by importance at the start of each
   (``supernet.reorder_channels``).

From phase 2 on, each step distils from a frozen copy of the network phase 1 trained (its
largest sub-network, in eval mode): ``loss = CE(label smoothing) + kd_ratio * KD`` with KD
the soft cross-entropy against the teacher's softmax (``kd_ratio = 1.0`` and ``kd_type = ce``
in the authors' code), and the gradients of ``dynamic_batch_size`` sampled sub-networks are
accumulated before the optimiser steps (OFA's ``dynamic_batch_size``: 1 in the kernel phase,
2 in the depth phases, 4 in the expansion phases).

Epochs. The paper trains on ImageNet for 180 epochs (full network), 120 (kernel), 25 + 120
(depth) and 25 + 120 (expansion): 590 in all, so :meth:`ProgressiveShrinking.phases` splits a
budget of ``E`` epochs in the proportions 180 : 120 : 25 : 120 : 25 : 120 (largest
remainders, at least one epoch per phase; ``E >= 6``). The learning rates are the paper's
relative to the full network's 2.6 (batch 2048): 0.96 for the kernel phase, 0.08 and 0.24
for the first and second depth and expansion phases; the code's 5 warm-up epochs of 120
in the kernel and second depth and expansion phases scale with the phase's epochs.

Where this differs: the teacher is the phase-1 network of this run (the authors download
their trained full network); ``dynamic_batch_size`` defaults to 1 in every phase (a CPU
budget), ``dynamic_batch_size=None`` gives the code's 1, 2, 4; OFA draws a continuous image
size per batch, here one of the trained resolutions; a ``teacher`` given to
:func:`~nasforge.elastic.train_supernet` replaces the phase-1 copy.

Example:
    >>> from nasforge.elastic import create_schedule
    >>> [p.epochs for p in create_schedule("ofa").phases(12)]
    [4, 2, 1, 2, 1, 2]
    >>> [p.name for p in create_schedule("ofa").phases(12)]
    ['largest', 'kernel', 'depth-1', 'depth-2', 'expand-1', 'expand-2']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nasforge.elastic.base import Phase, Schedule, TrainContext, register_schedule
from nasforge.errors import InvalidConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["PAPER_EPOCHS", "ProgressiveShrinking", "split_epochs"]

#: The paper's ImageNet epochs per phase (Figure 3; ``train_ofa_net.py``).
PAPER_EPOCHS: tuple[int, ...] = (180, 120, 25, 120, 25, 120)
#: Learning rates of the paper (batch 2048): full network 2.6, then the shrinking phases.
_PAPER_LR = (2.6, 0.96, 0.08, 0.24, 0.08, 0.24)
#: Warm-up epochs of ``train_ofa_net.py`` per phase (of the paper's epochs).
_PAPER_WARMUP = (None, 5, 0, 5, 0, 5)
#: Sub-networks per step in ``train_ofa_net.py`` (``dynamic_batch_size``).
_PAPER_SUBNETS = (1, 1, 2, 2, 4, 4)
_KERNELS, _DEPTHS, _EXPANSIONS = (3, 5, 7), (2, 3, 4), (3, 4, 6)
_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("largest", {"kernels": (7,), "depths": (4,), "expansions": (6,)}),
    ("kernel", {"kernels": _KERNELS, "depths": (4,), "expansions": (6,)}),
    ("depth-1", {"kernels": _KERNELS, "depths": (3, 4), "expansions": (6,)}),
    ("depth-2", {"kernels": _KERNELS, "depths": _DEPTHS, "expansions": (6,)}),
    ("expand-1", {"kernels": _KERNELS, "depths": _DEPTHS, "expansions": (4, 6)}),
    ("expand-2", {"kernels": _KERNELS, "depths": _DEPTHS, "expansions": _EXPANSIONS}),
)


def split_epochs(total: int, weights: tuple[int, ...]) -> list[int]:
    """``total`` epochs split in proportion to ``weights``, at least 1 each (largest
    remainders; exact when ``total`` is a multiple of ``sum(weights)``).

    Raises:
        InvalidConfigError: ``total`` below the number of phases.
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < len(weights):
        raise InvalidConfigError(
            f"{len(weights)} phases need at least {len(weights)} epochs in all, got {total!r}; "
            f"give epochs >= {len(weights)}."
        )
    ideal = [total * w / sum(weights) for w in weights]
    counts = [max(1, math.floor(x)) for x in ideal]
    while sum(counts) < total:  # the largest shortfall first (earlier phase on a tie)
        i = max(range(len(counts)), key=lambda j: (ideal[j] - counts[j], -j))
        counts[i] += 1
    while sum(counts) > total:  # take back from the most over-served phase above 1
        i = max(
            (j for j in range(len(counts)) if counts[j] > 1),
            key=lambda j: (counts[j] - ideal[j], j),
        )
        counts[i] -= 1
    return counts


@register_schedule("ofa")
class ProgressiveShrinking(Schedule):
    """Once-for-All's progressive shrinking (see the module docstring).

    Args:
        kd_ratio: Weight of the distillation loss from phase 2 on (0 turns it off).
        dynamic_batch_size: Sub-networks whose gradients each step accumulates in phases 2
            to 6; ``None``: the authors' 1 (kernel), 2 (depth), 4 (expansion).
    """

    def __init__(self, *, kd_ratio: float = 1.0, dynamic_batch_size: int | None = 1) -> None:
        if not kd_ratio >= 0:
            raise InvalidConfigError(f"kd_ratio must not be negative, got {kd_ratio!r}.")
        if dynamic_batch_size is not None and (
            isinstance(dynamic_batch_size, bool) or dynamic_batch_size < 1
        ):
            raise InvalidConfigError(
                f"dynamic_batch_size must be a positive integer or None, got "
                f"{dynamic_batch_size!r}."
            )
        self.kd_ratio = float(kd_ratio)
        self.dynamic_batch_size = dynamic_batch_size
        self._teacher_state: dict[str, Any] | None = None

    def phases(self, epochs: int) -> list[Phase]:
        counts = split_epochs(epochs, PAPER_EPOCHS)
        out = []
        for i, ((name, options), count) in enumerate(zip(_OPTIONS, counts, strict=True)):
            paper_warmup = _PAPER_WARMUP[i]
            warmup = None if paper_warmup is None else round(count * paper_warmup / 120)
            out.append(
                Phase(
                    name,
                    count,
                    dict(options),
                    lr_scale=_PAPER_LR[i] / _PAPER_LR[0],
                    warmup_epochs=warmup,
                )
            )
        return out

    def subnets_per_step(self, phase: Phase) -> int:
        """Sub-networks trained per step in ``phase``."""
        index = [name for name, _ in _OPTIONS].index(phase.name)
        if index == 0:
            return 1
        return _PAPER_SUBNETS[index] if self.dynamic_batch_size is None else self.dynamic_batch_size

    # -- phases ------------------------------------------------------------------------------
    def begin_phase(self, ctx: TrainContext, phase: Phase) -> None:
        if phase.name == "largest":
            return
        self._ensure_teacher(ctx)
        if phase.name.startswith("expand-"):
            # OFA's re_organize_middle_weights: stage 0 before {6, 4}, 1 before {6, 4, 3}
            ctx.supernet.reorder_channels(int(phase.name.split("-")[1]) - 1)

    def resume_phase(self, ctx: TrainContext, phase: Phase) -> None:
        if phase.name != "largest":
            self._ensure_teacher(ctx)

    def _ensure_teacher(self, ctx: TrainContext) -> None:
        """``ctx.teacher``: the given one, else the frozen largest network of phase 1 (a copy
        of the supernet's now, or the saved one on resume)."""
        if ctx.teacher is not None or self.kd_ratio == 0:
            return
        net = ctx.supernet
        previous = net.active
        teacher = net.extract(net.largest())
        net.set_active(previous)
        if self._teacher_state is not None:  # resuming: phase 1's network, not today's
            teacher.load_state_dict(self._teacher_state)
        teacher.to(ctx.device).eval().requires_grad_(False)
        self._teacher_state = {k: v.detach().clone().cpu() for k, v in teacher.state_dict().items()}
        ctx.teacher = teacher

    def state_dict(self) -> dict[str, Any]:
        return {} if self._teacher_state is None else {"teacher": self._teacher_state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._teacher_state = dict(state["teacher"]) if "teacher" in state else None

    # -- one step ----------------------------------------------------------------------------
    def step(
        self, ctx: TrainContext, x: torch.Tensor, y: torch.Tensor, phase: Phase
    ) -> dict[str, float]:
        import torch

        net = ctx.supernet
        resolution = ctx.draw_resolution(phase)
        x = ctx.resize(x, resolution)
        distil = phase.name != "largest" and self.kd_ratio > 0 and ctx.teacher is not None
        soft = None
        if distil:
            with torch.no_grad():
                soft = ctx.teacher(x)
        count = self.subnets_per_step(phase)
        total = ce_total = kd_total = 0.0
        for _ in range(count):
            net.set_active(ctx.sample(phase, resolutions=(resolution,)))
            logits = net(x)
            ce = ctx.ce_loss(logits, y)
            loss = ce
            if soft is not None:
                kd = ctx.kd_loss(logits, soft)
                loss = ce + self.kd_ratio * kd
                kd_total += float(kd.detach())
            loss.backward()
            total += float(loss.detach())
            ce_total += float(ce.detach())
        stats = {"loss": total / count, "ce_loss": ce_total / count}
        if soft is not None:
            stats["kd_loss"] = kd_total / count
        return stats
