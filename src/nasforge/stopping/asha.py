"""ASHA: asynchronous successive halving, as an early-stopping rule.

Li, L., Jamieson, K., Rostamizadeh, A., Gonina, E., Ben-tzur, J., Hardt, M., Recht, B. and
Talwalkar, A., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020,
arXiv:1810.05934, Algorithm 2: rungs ``k`` hold the configurations that reached resource
``r * eta**(s + k)``; a configuration is promoted from rung ``k`` when it is in the top
``1/eta`` of the values recorded at rung ``k`` so far -- without waiting for the rung to
fill, so no worker ever idles.

Trials here run to the end in one evaluation call, so promotion is decided when a trial
reports, as Optuna's ``SuccessiveHalvingPruner`` (its ASHA) does: on the first report at or
beyond a rung, the trial goes on if its value there ranks in the top ``max(1, floor(n /
eta))`` of the ``n`` values recorded at that rung by every worker (its own included), and is
stopped otherwise. A promotion is never revoked: unlike :mod:`successive_halving`, a trial is
judged once per rung. The paper's ASHA can resume a paused configuration when later ones
make room at a rung; a trial stopped here ends for good.
"""

from __future__ import annotations

from nasforge import stopping
from nasforge.stopping.base import ReportHistory, reached_rung, stopped_at_rung
from nasforge.stopping.successive_halving import _RungRule

__all__ = ["ASHAStopping"]


@stopping.register("asha")
class ASHAStopping(_RungRule):
    """Promote a trial past a rung only if it arrives in the top ``1/eta`` there.

    Args:
        min_step: The first rung (``r``).
        eta: The reduction factor.
        min_early_stopping_rate: ``s``: the first rung is ``min_step * eta**s``.
        max_step: The step of full training (no rung at or beyond it); ``None``: unknown.

    Example:
        >>> from nasforge.stopping import ReportHistory
        >>> rule = ASHAStopping(min_step=1, eta=2)
        >>> history = ReportHistory({0: {1: 0.9, 2: 0.9}, 1: {1: 0.1}})
        >>> rule.should_stop(1, 1, history)  # arrives at rung 1 below the leader
        True
        >>> rule.should_stop(0, 2, history, previous=1)  # first at rung 2
        False
    """

    def should_stop(
        self, number: int, step: int, history: ReportHistory, previous: int | None = None
    ) -> bool:
        rung = reached_rung(self.rungs, step)
        if rung is None:
            return False
        crossed = previous is None or previous < rung
        return crossed and stopped_at_rung(history, number, rung, self.eta)
