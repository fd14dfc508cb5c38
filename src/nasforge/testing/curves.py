"""Made-up learning curves for testing early stopping without training anything.

:class:`CurveEvaluator` reports, for each architecture, a deterministic validation accuracy
per epoch that rises towards a final value fixed by the architecture (a hash of its
choices), and stops when the study's rule says so. Final values and curves do not cross:
the architecture that is best at epoch 1 is best at every epoch, so a rule that keeps the
leaders of each rung must keep the study's best architecture.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import Any

from nasforge.architecture import Architecture
from nasforge.evaluators.base import Evaluator
from nasforge.reporting import TrialContext, TrialStopped
from nasforge.trial import Direction, Result

__all__ = ["EPOCHS", "CurveEvaluator", "final_accuracy", "report_curve"]

#: Epochs of a full made-up training.
EPOCHS = 9


def final_accuracy(arch: Architecture) -> float:
    """The accuracy ``arch`` reaches after full training (40 to 95, from its choices)."""
    digest = zlib.crc32(f"{arch.space}:{arch.choices}".encode())
    return 40.0 + 55.0 * (digest % 10007) / 10006.0


class CurveEvaluator(Evaluator):
    """An evaluator with a context (``takes_context``) whose trials report a made-up curve.

    ``acc(epoch) = final * (1 - 0.5 ** epoch)`` for epochs 1 .. ``epochs``; the cost of a
    trial is the number of epochs it ran (``cost_unit = "epochs"``). With ``raise_stop``
    the evaluation raises :class:`TrialStopped` instead of returning a stopped result.

    Example:
        >>> from nasforge import spaces
        >>> arch = spaces.create("nb201").from_index(0)
        >>> result = CurveEvaluator(epochs=3).evaluate(arch)
        >>> result.cost, round(result.metrics["valid_acc"] / final_accuracy(arch), 3)
        (3.0, 0.875)
    """

    takes_context = True
    cost_unit = "epochs"

    def __init__(self, epochs: int = EPOCHS, *, raise_stop: bool = False) -> None:
        self.epochs = int(epochs)
        self.raise_stop = bool(raise_stop)

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(
        self,
        arch: Architecture,
        fidelity: Mapping[str, Any] | None = None,
        context: TrialContext | None = None,
    ) -> Result:
        context = context or TrialContext(0, arch, fidelity, metric="valid_acc")
        context.max_step = self.epochs
        final = final_accuracy(arch)
        acc = math.nan
        for epoch in range(1, self.epochs + 1):
            acc = final * (1.0 - 0.5**epoch)
            context.report({"valid_acc": acc}, step=epoch)
            if context.should_stop():
                if self.raise_stop:
                    raise TrialStopped()
                return Result({"valid_acc": acc}, cost=float(epoch), stopped=True)
        return Result({"valid_acc": acc}, cost=float(self.epochs))

    def expected_cost(
        self, arch: Architecture, fidelity: Mapping[str, Any] | None = None
    ) -> float | None:
        return float(self.epochs)


def report_curve(arch: Architecture, context: TrialContext) -> dict[str, float]:
    """The made-up training as a user's function for the ``function`` evaluator
    (``fn="nasforge.testing.curves:report_curve"``, ``pass_model=False``): reports
    ``valid_acc`` per epoch and raises :class:`TrialStopped` when the rule says so."""
    context.max_step = EPOCHS  # no stopping at the end: it would save nothing
    final = final_accuracy(arch)
    acc = math.nan
    for epoch in range(1, EPOCHS + 1):
        acc = final * (1.0 - 0.5**epoch)
        context.report(acc, step=epoch)
        if context.should_stop():
            raise TrialStopped()
    return {"valid_acc": acc}
