"""Uniform single-path sampling on an elastic supernet: the baseline of the elastic schedules.

Guo, Z., Zhang, X., Mu, H., Heng, W., Liu, Z., Wei, Y. and Sun, J. "Single Path One-Shot
Neural Architecture Search with Uniform Sampling." ECCV 2020, arXiv:1904.00420, Section 3.2
(Eq. 5: each step trains one path drawn from a uniform distribution over the whole space).

Every step draws one sub-network uniformly over all options of every decision of the space
(resolution, depths, kernels, expansions, within the trained resolutions), resizes the batch
to its resolution and trains it with the cross-entropy; one phase holds the whole budget. It
trains the same :class:`~nasforge.ops.elastic.ElasticMobileNet` as Once-for-All, so the two
differ only in how sub-networks are drawn and taught (no progressive order, no distillation)
— which is what the ranking comparison of the elastic schedules measures.

Where this differs: SPOS trains a choice-block supernet of ShuffleNetV2 blocks (and a
channel search) on ImageNet with its own optimiser settings; here the path is a sub-network
of the elastic supernet and the optimiser is the trainer's (SGD, cosine), as for every
schedule.

Example:
    >>> from nasforge.elastic import create_schedule
    >>> [(p.name, p.epochs, p.options) for p in create_schedule("uniform").phases(5)]
    [('uniform', 5, {})]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge.elastic.base import Phase, Schedule, TrainContext, register_schedule

if TYPE_CHECKING:
    import torch

__all__ = ["UniformSampling"]


@register_schedule("uniform")
class UniformSampling(Schedule):
    """SPOS's uniform single-path sampling (see the module docstring). No parameters."""

    def __init__(self) -> None:
        pass

    def phases(self, epochs: int) -> list[Phase]:
        return [Phase("uniform", epochs, {})]

    def step(
        self, ctx: TrainContext, x: torch.Tensor, y: torch.Tensor, phase: Phase
    ) -> dict[str, float]:
        net = ctx.supernet
        net.set_active(ctx.sample(phase))
        logits = net(ctx.resize(x, int(net.active_resolution)))
        loss = ctx.ce_loss(logits, y)
        loss.backward()
        return {"loss": float(loss.detach())}
