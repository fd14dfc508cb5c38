"""Hyperband as an early-stopping rule: successive halving in several brackets.

Li, L., Jamieson, K., DeSalvo, G., Rostamizadeh, A. and Talwalkar, A., "Hyperband: A Novel
Bandit-Based Approach to Hyperparameter Optimization", JMLR 18(185), 2018, arXiv:1603.06560,
Algorithm 1: with maximum resource ``R`` and ``eta``, ``s_max = floor(log_eta(R / r))``;
bracket ``s`` (``s_max`` down to 0) runs successive halving on ``n_s = ceil((s_max + 1) /
(s + 1) * eta**s)`` configurations starting at resource ``R * eta**-s``. Aggressive brackets
(large ``s``) screen many configurations at a tiny budget; bracket 0 trains everything
fully, hedging against a first rung that misleads.

Trials here run to the end in one evaluation call, so the rule decides when a trial reports,
as Optuna's ``HyperbandPruner`` does: each trial is assigned to one bracket, with the share
``n_s / sum(n)`` of Algorithm 1, by its number (a low-discrepancy sequence, the same in every
worker and on resume); within its bracket it is judged by successive halving on the rungs
``R * eta**(k - s)``, k = 0 .. s-1, among the trials of the same bracket only.
"""

from __future__ import annotations

import math
from typing import Any

from nasforge import stopping
from nasforge.errors import InvalidConfigError
from nasforge.stopping.base import (
    ReportHistory,
    StoppingRule,
    check_positive,
    reached_rung,
    stopped_at_rung,
)

__all__ = ["HyperbandStopping"]

#: The golden ratio's fractional part: ``frac(n * _PHI)`` spreads trial numbers evenly.
_PHI = (math.sqrt(5.0) - 1.0) / 2.0


@stopping.register("hyperband")
class HyperbandStopping(StoppingRule):
    """Successive halving in Hyperband's brackets.

    Args:
        min_step: ``r``, the smallest budget (step) any bracket starts at.
        max_step: ``R``, the step of full training.
        eta: The reduction factor.

    Example:
        >>> rule = HyperbandStopping(min_step=1, max_step=9, eta=3)
        >>> rule.brackets  # (s, n_s, rungs)
        ((2, 9, (1, 3)), (1, 5, (3,)), (0, 3, ()))
        >>> sorted({rule.bracket_of(n) for n in range(17)})
        [0, 1, 2]
    """

    def __init__(self, *, min_step: int = 1, max_step: int = 27, eta: float = 3.0) -> None:
        self.min_step = check_positive("min_step", min_step, integer=True)
        self.max_step = check_positive("max_step", max_step, integer=True)
        self.eta = check_positive("eta", eta, above=1.0)
        if self.max_step <= self.min_step:
            raise InvalidConfigError(
                f"max_step ({self.max_step}) must be above min_step ({self.min_step}): "
                "Hyperband needs at least two budgets."
            )
        s_max = math.floor(math.log(self.max_step / self.min_step, self.eta) + 1e-9)
        brackets = []
        for s in range(s_max, -1, -1):
            n_s = math.ceil((s_max + 1) / (s + 1) * self.eta**s - 1e-9)
            rungs = tuple(
                sorted({math.ceil(self.max_step * self.eta ** (k - s) - 1e-9) for k in range(s)})
            )
            brackets.append((s, n_s, rungs))
        self.brackets: tuple[tuple[int, int, tuple[int, ...]], ...] = tuple(brackets)
        self._total = sum(n for _, n, _ in brackets)

    def bracket_of(self, number: int) -> int:
        """The bracket ``s`` of trial ``number`` (shares ``n_s / sum(n)``)."""
        point = (number * _PHI) % 1.0 * self._total
        for s, n_s, _ in self.brackets:
            if point < n_s:
                return s
            point -= n_s
        return self.brackets[-1][0]

    def should_stop(
        self, number: int, step: int, history: ReportHistory, previous: int | None = None
    ) -> bool:
        bracket = self.bracket_of(number)
        rungs = next(r for s, _, r in self.brackets if s == bracket)
        rung = reached_rung(rungs, step)
        if rung is None:
            return False
        peers = [other for other in history.values if self.bracket_of(other) == bracket]
        return stopped_at_rung(history, number, rung, self.eta, peers)

    def params(self) -> dict[str, Any]:
        return {"min_step": self.min_step, "max_step": self.max_step, "eta": self.eta}
