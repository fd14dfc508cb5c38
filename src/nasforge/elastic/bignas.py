"""BigNAS: one stage of training with the sandwich rule and in-place distillation.

Yu, J., Jin, P., Liu, H., Bender, G., Kindermans, P.-J., Tan, M., Huang, T., Song, X.,
Pang, R. and Le, Q. "BigNAS: Scaling Up Neural Architecture Search with Big Single-Stage
Models." ECCV 2020, arXiv:2003.11142, Section 3.1. The whole elastic supernet is trained in
one phase; every step:

* **Sandwich rule**: the largest sub-network, the smallest and ``num_random`` (N, 2 by
  default) sub-networks drawn uniformly are run on the same batch, in that order, and their
  gradients accumulate before the one optimiser step.
* **In-place distillation**: the largest learns from the ground truth with label smoothing
  (the settings' ``label_smoothing``, 0.1 as the paper); every other sub-network learns from
  the largest's soft predictions, detached (``ctx.kd_loss``: soft cross-entropy), so no
  gradient flows back through the teacher.
* **Resolutions**: each sub-network takes its own input side (BigNAS samples the resolution
  with the child): the largest the highest trained side, the smallest the lowest, the
  random ones a side drawn with their architecture; the batch is resized for each.
* **Initialisation**: the last batch norm of every residual block starts with gamma = 0, so
  that every residual block starts as the identity (:func:`zero_init_residual_blocks`).
* **Regularisation only on the largest**: dropout (the settings' ``dropout``, before the
  classifier) is switched off while the other sub-networks run. Weight decay is the
  trainer's (:class:`~nasforge.elastic.TrainSettings` ``weight_decay``, which its optimiser
  spares on batch-norm weights and biases): applied once per step to every weight, it is the
  L2 penalty of the largest network alone (which holds every weight); the other
  sub-networks' losses add none (with a penalty in each child's loss, weights shared by
  more children would decay more).
* **Learning rate**: exponential decay "with constant ending": the rate falls exponentially
  from its initial value to ``lr_end`` (5%) of it, reached after ``decay_fraction`` of the
  epochs, and stays there (:func:`constant_ending_lr`). The paper decays by 0.97 every 2.4
  epochs; on short runs that barely decays, so the rate here is the one that reaches the
  floor at ``decay_fraction``. The schedule sets the optimiser's rate at every step,
  replacing the trainer's cosine (it keeps the trainer's linear warm-up).

Where this differs from the paper: SGD with Nesterov momentum (the trainer's) instead of
RMSProp; the sub-networks are those of the ``ofa``/``ofa-cifar`` elastic MobileNetV3
(kernel, depth, expansion, resolution), not BigNAS's own space with elastic widths.

Example:
    >>> from nasforge.elastic import create_schedule
    >>> schedule = create_schedule("bignas", num_random=2)
    >>> [(p.name, p.epochs) for p in schedule.phases(10)]
    [('sandwich', 10)]
    >>> round(constant_ending_lr(0.0), 3), round(constant_ending_lr(0.99), 3)
    (1.0, 0.05)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nasforge.elastic.base import Phase, Schedule, TrainContext, register_schedule
from nasforge.errors import InvalidConfigError, UnsupportedOperationError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["BigNAS", "constant_ending_lr", "zero_init_residual_blocks"]


def constant_ending_lr(
    progress: float, *, lr_end: float = 0.05, decay_fraction: float = 0.65
) -> float:
    """The learning-rate factor of BigNAS's "exponentially decaying with constant ending"
    schedule at ``progress`` (0 at the start of training, 1 at its end): ``lr_end **
    (progress / decay_fraction)`` until ``decay_fraction``, then ``lr_end``.

    The default 0.65 is where the paper's decay (0.97 every 2.4 epochs) reaches 5% of the
    initial rate in a 360-epoch run (after 236 epochs).

    Example:
        >>> [round(constant_ending_lr(p, lr_end=0.25, decay_fraction=0.5), 3)
        ...  for p in (0.0, 0.25, 0.5, 0.75)]
        [1.0, 0.5, 0.25, 0.25]
    """
    if progress >= decay_fraction:
        return lr_end
    return math.exp(math.log(lr_end) * max(0.0, progress) / decay_fraction)


def _residual_blocks(supernet: nn.Module) -> list[nn.Module]:
    """The blocks of ``supernet`` that add their input (``block.residual`` true)."""
    return [m for m in supernet.modules() if getattr(m, "residual", False) is True]


def zero_init_residual_blocks(supernet: nn.Module) -> int:
    """Set gamma of the last batch norm of every residual block of ``supernet`` to zero, so
    that each residual block computes the identity (BigNAS, Section 3.1, "Initialization");
    returns the number of blocks changed.

    A residual block is a module whose ``residual`` attribute is true (the blocks of
    :class:`~nasforge.ops.mobile.MobileNetwork` and of the elastic supernet); its last batch
    norm (in module order) is the one after its projection.

    Raises:
        UnsupportedOperationError: ``supernet`` has no residual block, or one without a
            batch norm.
    """
    import torch
    from torch import nn

    blocks = _residual_blocks(supernet)
    if not blocks:
        raise UnsupportedOperationError(
            f"{type(supernet).__name__} has no residual block (a module with residual=True); "
            "BigNAS's zero initialisation needs one. Pass zero_init=False to skip it."
        )
    with torch.no_grad():
        for block in blocks:
            norms = [m for m in block.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            if not norms:
                raise UnsupportedOperationError(
                    f"Residual block {type(block).__name__} has no batch norm to zero; "
                    "pass zero_init=False to skip BigNAS's zero initialisation."
                )
            norms[-1].weight.zero_()
    return len(blocks)


@contextlib.contextmanager
def _no_dropout(module: nn.Module) -> Iterator[None]:
    """Dropout off in ``module`` for the duration (BigNAS regularises only the largest)."""
    from torch import nn

    saved = [(m, m.p) for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    for m, _ in saved:
        m.p = 0.0
    try:
        yield
    finally:
        for m, p in saved:
            m.p = p


@register_schedule("bignas")
class BigNAS(Schedule):
    """BigNAS's single-stage training (see the module docstring).

    Args:
        num_random: N, the sub-networks drawn uniformly per step besides the largest and
            the smallest (2, as the paper).
        lr_end: The floor of the learning rate, as a share of the initial one (0.05).
        decay_fraction: Share of the epochs after which the rate stays at ``lr_end``.
        zero_init: Start every residual block as the identity (True).
    """

    def __init__(
        self,
        *,
        num_random: int = 2,
        lr_end: float = 0.05,
        decay_fraction: float = 0.65,
        zero_init: bool = True,
    ) -> None:
        if isinstance(num_random, bool) or not isinstance(num_random, int) or num_random < 0:
            raise InvalidConfigError(
                f"BigNAS num_random must be an integer >= 0, got {num_random!r}."
            )
        if not 0.0 < lr_end <= 1.0:
            raise InvalidConfigError(f"BigNAS lr_end must be in (0, 1], got {lr_end!r}.")
        if not 0.0 < decay_fraction <= 1.0:
            raise InvalidConfigError(
                f"BigNAS decay_fraction must be in (0, 1], got {decay_fraction!r}."
            )
        self.num_random = num_random
        self.lr_end = float(lr_end)
        self.decay_fraction = float(decay_fraction)
        self.zero_init = bool(zero_init)

    def phases(self, epochs: int) -> list[Phase]:
        return [Phase("sandwich", epochs)]

    def wrap(self, supernet: nn.Module, phase: Phase, ctx: TrainContext) -> nn.Module:
        if self.zero_init and not ctx.restoring:
            zero_init_residual_blocks(supernet)
        return supernet

    # -- learning rate ---------------------------------------------------------------------------
    def lr_factor(self, step: int, total: int, warmup: int) -> float:
        """The learning rate of ``step`` (0-based) of a phase of ``total`` steps, as a share
        of the phase's initial rate (the trainer sets it before every step): the linear
        warm-up over ``warmup`` steps, then :func:`constant_ending_lr` of the progress
        through the remaining steps."""
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return constant_ending_lr(progress, lr_end=self.lr_end, decay_fraction=self.decay_fraction)

    # -- training --------------------------------------------------------------------------------
    def archs(self, ctx: TrainContext, phase: Phase) -> list[Any]:
        """The sub-networks of one step, in order: the largest, the smallest and
        ``num_random`` drawn uniformly, each with its own resolution (the largest at the
        highest trained side, the smallest at the lowest)."""
        net = ctx.supernet
        sides = ctx.phase_resolutions(phase) or tuple(net.space.RESOLUTIONS)
        largest = _at_resolution(net.space, net.largest(), max(sides))
        smallest = _at_resolution(net.space, net.smallest(), min(sides))
        drawn = [ctx.sample(phase) for _ in range(self.num_random)]
        return [largest, smallest, *drawn]

    def step(
        self, ctx: TrainContext, x: torch.Tensor, y: torch.Tensor, phase: Phase
    ) -> dict[str, float]:
        net = ctx.supernet
        archs = self.archs(ctx, phase)
        teacher: torch.Tensor | None = None
        kd_total = 0.0
        loss_value = accuracy = 0.0
        for index, arch in enumerate(archs):
            net.set_active(arch)
            inputs = ctx.resize(x, net.active_resolution)
            if index == 0:
                logits = net(inputs)
                loss = ctx.ce_loss(logits, y)
                teacher = logits.detach()
                loss_value = float(loss.detach())
                accuracy = float((logits.detach().argmax(1) == y).float().mean())
            else:
                assert teacher is not None
                with _no_dropout(net):
                    logits = net(inputs)
                loss = ctx.kd_loss(logits, teacher)
                kd_total += float(loss.detach())
            loss.backward()
        students = len(archs) - 1
        return {
            "loss": loss_value,
            "accuracy": accuracy,
            "kd_loss": kd_total / students if students else 0.0,
        }


def _at_resolution(space: Any, arch: Any, side: int) -> Any:
    """``arch`` with its ``resolution`` decision set to ``side``.

    Raises:
        InvalidConfigError: ``side`` is not one of the space's resolutions.
    """
    names = [d.name for d in space.decisions()]
    index = names.index("resolution")
    options = space.decisions()[index].options
    if side not in options:
        raise InvalidConfigError(
            f"Resolution {side} is not one of space {space.name!r}'s resolutions "
            f"{list(options)}; train on those sides (TrainSettings.resolutions)."
        )
    choices = list(arch.choices)
    choices[index] = options.index(side)
    return space.from_choices(choices)
