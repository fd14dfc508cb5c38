"""The :class:`Evaluator` contract: how good is an architecture?"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from nasforge.architecture import Architecture
from nasforge.trial import Direction, Result

__all__ = ["Evaluator"]


class Evaluator(ABC):
    """Scores architectures. Subclasses implement :meth:`evaluate` and :attr:`metrics`.

    Attributes:
        space: Registry name of the space whose architectures it accepts (``None``: any).
        cost_unit: Unit of ``Result.cost`` (``"queries"`` for a tabular benchmark, where one
            full-fidelity look-up costs 1, or ``"seconds"``).
        takes_context: Whether :meth:`evaluate` takes a ``context`` keyword: a
            :class:`nasforge.reporting.TrialContext` through which it reports intermediate
            values and learns whether the study's stopping rule ends the trial early. A study
            always passes one to such an evaluator (``evaluate(arch, fidelity,
            context=ctx)``); the evaluation then returns ``Result(..., stopped=True)`` or
            lets :class:`nasforge.reporting.TrialStopped` propagate when it stopped early.
    """

    space: str | None = None
    cost_unit: str = "queries"
    takes_context: bool = False

    @property
    @abstractmethod
    def metrics(self) -> Mapping[str, Direction]:
        """The metrics :meth:`evaluate` returns and whether larger or smaller is better."""

    @abstractmethod
    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        """Evaluate ``arch`` at ``fidelity`` (``None``: the evaluator's full fidelity)."""

    @property
    def free_metric_names(self) -> tuple[str, ...]:
        """Names :meth:`free_metrics` can return (for validating constraints up front)."""
        return ()

    def free_metrics(self, arch: Architecture) -> Mapping[str, float]:
        """Metrics known without evaluating ``arch`` (parameters, FLOPs, table latency...).

        Strategies use them to reject candidates before spending a query (constraint-aware
        initialisation) or to pretrain predictors (NARS). Empty by default.
        """
        return {}

    def expected_cost(
        self, arch: Architecture, fidelity: Mapping[str, Any] | None = None
    ) -> float | None:
        """What evaluating ``arch`` at ``fidelity`` will cost, if known in advance.

        A study with a budget does not start an evaluation whose known cost would exceed
        what is left. ``None`` (the default) means unknown: the last evaluation may overshoot.
        """
        return None

    def spec(self) -> dict[str, Any] | None:
        """Registry name and keyword arguments that rebuild this evaluator, or ``None``.

        A study stores the spec so that ``load_study(...).optimize()`` resumes with the same
        evaluator, and refuses a different one.
        """
        return None
