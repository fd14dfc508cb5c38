"""Learning-rate schedules shared by the trainer and the one-shot methods (plain Python)."""

from __future__ import annotations

import math

__all__ = ["cosine_annealing", "cosine_power_annealing"]


def cosine_annealing(step: int, total: int, *, lr: float, min_lr: float = 0.0) -> float:
    """The learning rate at ``step`` of ``total`` on a cosine from ``lr`` down to ``min_lr``.

    Loshchilov, I. and Hutter, F. "SGDR: Stochastic Gradient Descent with Warm Restarts."
    ICLR 2017, arXiv:1608.03983 (Equation 5, one cycle, no restart):
    ``min_lr + (lr - min_lr) * (1 + cos(pi * step / total)) / 2``, computed in that order
    (``pi * step`` first), and ``lr`` itself when ``total <= 1``. DARTS and the other
    one-shot methods step it once per epoch (``step`` = epoch, ``total`` = epochs). A
    ``step`` past ``total`` follows the cosine back up, as the formula does.

    :func:`~nasforge.train.recipe.cosine_warmup_lr` divides before multiplying by pi
    (``pi * (step / total)``), which rounds differently in the last bit for about a fifth
    of the steps; its cosine part is otherwise this schedule.

    Example:
        >>> [round(cosine_annealing(e, 4, lr=1.0), 3) for e in range(5)]
        [1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if total <= 1:
        return lr
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * step / total)) / 2


def cosine_power_annealing(
    step: int,
    total: int,
    *,
    lr: float,
    min_lr: float = 0.0,
    power: float = 2.0,
    warmup: int = 0,
) -> float:
    """The learning rate at ``step`` of ``total`` on Cosine Power Annealing.

    Hundt, A., Jain, V. and Hager, G. D. "sharpDARTS: Faster and More Accurate
    Differentiable Architecture Search." arXiv:1903.09900, 2019 (Section 3, Cosine Power
    Annealing): the cosine of :func:`cosine_annealing`, ``c = (1 + cos(pi * step / total)) / 2``
    (from 1 down to 0), is raised as an exponent of the power ``p`` and rescaled to run from
    ``lr`` down to ``min_lr``::

        min_lr + (lr - min_lr) * (p ** (c + 1) - p) / (p ** 2 - p)

    A larger ``p`` decays faster at the start and slower at the end (towards exponential
    decay); ``p = 1`` is the limit of the formula, cosine annealing itself (``c``). The
    paper's search uses ``p = 2`` (``train_search.py`` of its code), its ImageNet training
    ``p = 10``. As :func:`cosine_annealing`, ``step`` is 0-based (``lr`` at step 0) and
    ``lr`` is returned when the annealed span is at most one step.

    ``warmup`` steps first ramp linearly from ``min_lr + (lr - min_lr) / (warmup + 1)`` up
    towards ``lr``, as the paper's code does (its search warms up for 5 epochs); the annealing
    then runs over the remaining ``total - warmup`` steps, starting at ``lr``.

    Raises:
        InvalidConfigError: ``power`` is below 1 or ``warmup`` negative.

    Example:
        >>> [round(cosine_power_annealing(e, 4, lr=1.0, power=10), 3) for e in range(5)]
        [1.0, 0.682, 0.24, 0.045, 0.0]
    """
    if not power >= 1.0:  # NaN too
        from nasforge.errors import InvalidConfigError

        raise InvalidConfigError(
            f"power must be at least 1 (1 is cosine annealing), got {power!r}."
        )
    if warmup < 0:
        from nasforge.errors import InvalidConfigError

        raise InvalidConfigError(f"warmup must be a number of steps >= 0, got {warmup!r}.")
    if step < warmup:
        return min_lr + (lr - min_lr) * (step + 1) / (warmup + 1)
    step, total = step - warmup, total - warmup
    if total <= 1:
        return lr
    c = (1 + math.cos(math.pi * step / total)) / 2
    share = c if power == 1.0 else (power ** (c + 1) - power) / (power**2 - power)
    return min_lr + (lr - min_lr) * share
