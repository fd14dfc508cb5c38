"""Trials, proposals, results and objectives: the records a study keeps."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError

__all__ = ["Direction", "Objective", "Proposal", "Result", "Trial", "TrialState"]


class TrialState(enum.Enum):
    """Life cycle of a trial: written RUNNING when it starts, COMPLETE or FAILED when it ends,
    or STOPPED when the study's stopping rule ended it early (see :mod:`nasforge.stopping`:
    a STOPPED trial has its cost and last reported metrics but no score)."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def finished(self) -> bool:
        return self is not TrialState.RUNNING


class Direction(enum.Enum):
    """Whether larger or smaller values of a metric are better."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"

    @classmethod
    def parse(cls, text: str | Direction) -> Direction:
        """Accept ``max``/``maximize``/``min``/``minimize`` in any case."""
        if isinstance(text, Direction):
            return text
        key = str(text).strip().lower()
        if key in ("max", "maximize", "maximise"):
            return cls.MAXIMIZE
        if key in ("min", "minimize", "minimise"):
            return cls.MINIMIZE
        raise InvalidConfigError(
            f"Unknown direction {text!r}; write 'max' (maximize) or 'min' (minimize)."
        )


@dataclass(frozen=True)
class Objective:
    """A metric to optimise and its direction, e.g. ``Objective("valid_acc", "max")``."""

    metric: str
    direction: Direction = Direction.MAXIMIZE

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", Direction.parse(self.direction))
        if not self.metric:
            raise InvalidConfigError("An objective needs a metric name, e.g. 'valid_acc:max'.")

    @classmethod
    def parse(cls, text: str | Objective) -> Objective:
        """Parse ``"metric:max"`` or ``"metric:min"`` (``"metric"`` alone means max)."""
        if isinstance(text, Objective):
            return text
        metric, sep, direction = str(text).rpartition(":")
        if not sep:
            return cls(str(text).strip())
        return cls(metric.strip(), Direction.parse(direction))

    def oriented(self, value: float) -> float:
        """The value turned so that larger is better."""
        return value if self.direction is Direction.MAXIMIZE else -value

    def __str__(self) -> str:
        return f"{self.metric}:{'max' if self.direction is Direction.MAXIMIZE else 'min'}"


@dataclass(frozen=True)
class Proposal:
    """What a strategy wants evaluated next: an architecture and, optionally, a fidelity.

    ``fidelity`` maps fidelity parameters to values (``{"epochs": 12}``); ``None`` asks the
    evaluator for its full fidelity.
    """

    arch: Architecture
    fidelity: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Result:
    """What an evaluation measured.

    Attributes:
        metrics: Metric name to value. Metrics the evaluator cannot provide for this
            architecture are left out rather than set to NaN.
        cost: What the evaluation cost, in the evaluator's ``cost_unit`` (one full benchmark
            query is 1.0; seconds for real training).
        seconds: Wall time the evaluation took, measured.
        stopped: Whether the evaluation ended early because the study's stopping rule said
            so (:meth:`nasforge.reporting.TrialContext.should_stop`); ``metrics`` are then
            the last reported ones and ``cost`` what was spent until then.
        reports: The intermediate values reported along the way, ``{step: {metric:
            value}}`` (filled in by the study; ``None`` when the evaluator reported none).
    """

    metrics: Mapping[str, float]
    cost: float = 1.0
    seconds: float = 0.0
    stopped: bool = False
    reports: Mapping[int, Mapping[str, float]] | None = None


@dataclass
class Trial:
    """One evaluation of one architecture in a study.

    ``number`` counts the trials of a study from 0 in the order they were started.
    ``scores`` are the study's objective values turned so that larger is better (``None``
    until the trial is COMPLETE); strategies read ``score`` (the first one). A trial answered
    from the record of a functionally identical one (``dedupe``) names it in
    ``duplicate_of`` and cost nothing.

    ``asked_after`` and ``finish_seq`` order the study's history when several workers share
    it: trials finish in a study-wide sequence (``finish_seq`` 1, 2, ...), and a trial was
    proposed after the finishes numbered up to ``asked_after`` had been told to the strategy.
    Replaying asks (by ``number``) and tells (by ``finish_seq``) in that interleaving rebuilds
    the strategy exactly as the workers saw it.
    """

    number: int
    arch: Architecture
    state: TrialState = TrialState.RUNNING
    fidelity: Mapping[str, Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    cost: float = 0.0
    seconds: float = 0.0
    scores: tuple[float, ...] | None = None
    fail_reason: str | None = None
    retryable: bool = False
    retry_of: int | None = None
    duplicate_of: int | None = None
    worker: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    asked_after: int | None = None
    finish_seq: int | None = None

    @property
    def score(self) -> float | None:
        """The first objective, larger is better; ``None`` unless COMPLETE."""
        return None if self.scores is None else self.scores[0]

    @property
    def proposal(self) -> Proposal:
        return Proposal(self.arch, self.fidelity)

    def value(self, metric: str) -> float:
        """A metric of this trial, NaN when it was not measured."""
        return self.metrics.get(metric, math.nan)
