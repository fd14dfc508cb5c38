"""The median stopping rule of Google Vizier.

Golovin, D., Solnik, B., Moitra, S., Kochanski, G., Karro, J. and Sculley, D., "Google
Vizier: A Service for Black-Box Optimization", KDD 2017, section 3.2.2 (Automated Early
Stopping, "Median Stopping Rule"): a pending trial is stopped at step ``s`` if its best
objective value up to ``s`` is strictly worse than the median of the running averages, up to
``s``, of the objective values reported by the completed trials. It needs no model of the
learning curves and no parameters beyond when to start judging.

Here the decision is taken when the trial reports (trials run to the end in one evaluation
call), on the reports stored with the study by every worker. As in Vizier only COMPLETE
trials (run to the end) make up the median; ``min_trials`` of them with a report at or
before ``s`` are needed before anything is stopped, and nothing is stopped before
``warmup_steps`` (Optuna's ``MedianPruner`` offers the same two guards).
"""

from __future__ import annotations

import statistics
from typing import Any

from nasforge import stopping
from nasforge.stopping.base import ReportHistory, StoppingRule, check_positive

__all__ = ["MedianStopping"]


@stopping.register("median")
class MedianStopping(StoppingRule):
    """Stop a trial whose best value is below the median of completed trials' running means.

    The running means are taken up to the step the trial reached.

    Args:
        min_trials: Completed trials (with reports up to the step) needed before stopping.
        warmup_steps: Never stop at a step below this.

    Example:
        >>> from nasforge.stopping import ReportHistory
        >>> rule = MedianStopping(min_trials=2)
        >>> done = {0: {1: 0.5, 2: 0.7}, 1: {1: 0.6, 2: 0.8}}
        >>> history = ReportHistory({**done, 2: {1: 0.2, 2: 0.3}}, frozenset(done))
        >>> rule.should_stop(2, 2, history), rule.should_stop(2, 1, history)
        (True, True)
        >>> rule.should_stop(2, 2, ReportHistory({**done, 2: {1: 0.9}}, frozenset(done)))
        False
    """

    uses_complete = True

    def __init__(self, *, min_trials: int = 5, warmup_steps: int = 0) -> None:
        self.min_trials = check_positive("min_trials", min_trials, integer=True)
        self.warmup_steps = check_positive("warmup_steps", warmup_steps, integer=True, above=-1)

    def should_stop(
        self, number: int, step: int, history: ReportHistory, previous: int | None = None
    ) -> bool:
        if step < self.warmup_steps:
            return False
        own = [v for s, v in history.trial(number).items() if s <= step]
        if not own:
            return False
        averages = []
        for other in sorted(history.complete):
            if other == number:
                continue
            upto = [v for s, v in history.trial(other).items() if s <= step]
            if upto:
                averages.append(sum(upto) / len(upto))
        if len(averages) < self.min_trials:
            return False
        return max(own) < statistics.median(averages)

    def params(self) -> dict[str, Any]:
        return {"min_trials": self.min_trials, "warmup_steps": self.warmup_steps}
