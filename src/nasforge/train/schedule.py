"""Learning-rate schedules shared by the trainer and the one-shot methods (plain Python)."""

from __future__ import annotations

import math

__all__ = ["cosine_annealing"]


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
