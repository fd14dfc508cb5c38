"""Successive halving as an early-stopping rule on intermediate reports.

Successive halving (Karnin, Z., Koren, T. and Somekh, O., "Almost Optimal Exploration in
Multi-Armed Bandits", ICML 2013; Jamieson, K. and Talwalkar, A., "Non-stochastic Best Arm
Identification and Hyperparameter Optimization", AISTATS 2016, arXiv:1502.07943, Algorithm
"Successive Halving"): give every configuration a small budget, keep the best ``1/eta`` of
them, multiply their budget by ``eta``, and repeat. The budgets are the rungs
``min_step * eta**(s + k)`` (``s``: ``min_early_stopping_rate``, as Li et al. 2020 write
it).

Trials here run to the end in one evaluation call, so the rule decides when a trial reports,
as Optuna's ``SuccessiveHalvingPruner`` does: at a report at or beyond rung ``k`` (the
highest one reached) the trial goes on only while its value at that rung is in the top
``max(1, floor(n / eta))`` of the ``n`` values recorded at the rung so far, its own
included. It is judged again at each report until the next rung, so a trial that led a rung
early is stopped once ``eta`` times more trials beat it there -- the synchronous algorithm's
"keep the best 1/eta of the rung", reached as the rung fills. :mod:`asha` judges each rung
once, on arrival. The strategy ``successive-halving`` (a different thing) screens
architectures at reduced fidelities instead of stopping running trials.
"""

from __future__ import annotations

from typing import Any

from nasforge import stopping
from nasforge.errors import InvalidConfigError
from nasforge.stopping.base import (
    ReportHistory,
    StoppingRule,
    check_positive,
    reached_rung,
    rung_steps,
    stopped_at_rung,
)

__all__ = ["SuccessiveHalvingStopping"]


class _RungRule(StoppingRule):
    """Rungs ``min_step * eta**(s + k)`` below ``max_step``, shared by SH and ASHA."""

    def __init__(
        self,
        *,
        min_step: int = 1,
        eta: float = 3.0,
        min_early_stopping_rate: int = 0,
        max_step: int | None = None,
    ) -> None:
        self.min_step = check_positive("min_step", min_step, integer=True)
        self.eta = check_positive("eta", eta, above=1.0)
        self.min_early_stopping_rate = check_positive(
            "min_early_stopping_rate", min_early_stopping_rate, integer=True, above=-1
        )
        if max_step is not None:
            max_step = check_positive("max_step", max_step, integer=True)
            if max_step <= self.min_step:
                raise InvalidConfigError(
                    f"max_step ({max_step}) must be above min_step ({self.min_step})."
                )
        self.max_step = max_step
        self.rungs = tuple(
            rung_steps(self.min_step, self.eta, self.min_early_stopping_rate, self.max_step)
        )

    def params(self) -> dict[str, Any]:
        return {
            "min_step": self.min_step,
            "eta": self.eta,
            "min_early_stopping_rate": self.min_early_stopping_rate,
            "max_step": self.max_step,
        }


@stopping.register("successive-halving")
class SuccessiveHalvingStopping(_RungRule):
    """Keep a trial while it is in the top ``1/eta`` of the trials at its highest rung.

    Args:
        min_step: The first rung (the step of the smallest budget, ``r``).
        eta: The reduction factor: rungs grow by ``eta``, ``1/eta`` of a rung goes on.
        min_early_stopping_rate: ``s``: the first rung is ``min_step * eta**s``.
        max_step: The step of full training (no rung at or beyond it); ``None``: unknown.

    Example:
        >>> from nasforge.stopping import ReportHistory
        >>> rule = SuccessiveHalvingStopping(min_step=1, eta=2)
        >>> rule.rungs[:3]
        (1, 2, 4)
        >>> history = ReportHistory({0: {1: 0.9}, 1: {1: 0.8}, 2: {1: 0.1}})
        >>> [rule.should_stop(n, 1, history) for n in range(3)]
        [False, True, True]
    """

    def should_stop(
        self, number: int, step: int, history: ReportHistory, previous: int | None = None
    ) -> bool:
        rung = reached_rung(self.rungs, step)
        return rung is not None and stopped_at_rung(history, number, rung, self.eta)
