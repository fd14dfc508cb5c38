"""Intermediate reports of a running evaluation, and stopping it early.

An evaluator that sets ``takes_context = True`` (the ``function`` evaluator, the training
evaluator) receives a :class:`TrialContext` in every call of ``evaluate``. It reports the
objective as the evaluation goes (one value per epoch, say) and asks whether the study's
stopping rule (``create_study(..., stopping="asha")``, see :mod:`nasforge.stopping`) wants
the trial ended::

    def train(model, context):
        for epoch in range(10):
            acc = fit_one_epoch(model)
            context.report(acc, step=epoch + 1)  # stored with the study
            if context.should_stop():
                raise TrialStopped()  # or return the last metrics
        return {"valid_acc": acc}

A trial stopped this way is recorded ``STOPPED`` with what it cost so far and the metrics
it last reported; it has no score, and the strategy is told it like a failed trial. Once
``should_stop()`` has answered True the trial is recorded STOPPED however the evaluation
ends (raising :class:`TrialStopped`, or returning).

Nothing here imports torch: the context is plain Python and travels to pool processes and
Ray workers (it carries where the study is stored, not the storage itself).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any, Protocol

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError

__all__ = ["ReportSink", "TrialContext", "TrialStopped"]

#: The metric a bare number is reported under when the context knows no objective.
DEFAULT_METRIC = "value"


class TrialStopped(Exception):
    """Ends an evaluation early: raise it from a training function (or let
    ``context.report(..., stop=True)`` raise it) when :meth:`TrialContext.should_stop` says
    so. The study records the trial ``STOPPED`` with the metrics last reported."""


class ReportSink(Protocol):
    """Where a context's reports go and who decides on them (the study supplies one)."""

    #: The objective's metric: a number reported alone is stored under this name.
    metric: str

    def write(self, number: int, step: int, values: Mapping[str, float]) -> None:
        """Store the values trial ``number`` reported at ``step``."""

    def decide(self, number: int, step: int, own: Mapping[int, Mapping[str, float]]) -> bool:
        """Whether the stopping rule stops trial ``number`` after its report at ``step``
        (``own``: all its reports so far)."""


class TrialContext:
    """What an evaluation knows about its trial, and the channel of its reports.

    Args:
        number: The trial's number in the study.
        arch: The architecture being evaluated.
        fidelity: The fidelity asked for (``None``: full).
        sink: Where reports go and who decides (the study passes its own); ``None`` keeps
            the reports in this object only and never stops (for calling an evaluator by
            hand).
        metric: The metric a bare number is reported under when there is no ``sink``
            (``"value"`` by default).

    Attributes:
        reports: Every report so far, ``{step: {metric: value}}``.
        stopped: Whether :meth:`should_stop` answered True (the evaluation should end).
        max_step: The step at which a full evaluation ends, when the evaluation knows it
            (e.g. its number of epochs). Evaluators may set it: nothing is stopped at or
            after it (it would save nothing), and a trial that ends by raising
            :class:`TrialStopped` from an evaluator whose cost is not in seconds costs the
            full cost times ``last step / max_step``.

    Example:
        >>> from nasforge.architecture import Architecture
        >>> ctx = TrialContext(0, Architecture("toy", (1,), "a"), metric="valid_acc")
        >>> ctx.report(0.5, step=1)
        >>> ctx.report({"valid_acc": 0.6, "loss": 1.2}, step=2)
        >>> ctx.last, ctx.should_stop()
        ({'valid_acc': 0.6, 'loss': 1.2}, False)
    """

    def __init__(
        self,
        number: int,
        arch: Architecture,
        fidelity: Mapping[str, Any] | None = None,
        *,
        sink: ReportSink | None = None,
        metric: str | None = None,
    ) -> None:
        self.number = int(number)
        self.arch = arch
        self.fidelity = fidelity
        self.reports: dict[int, dict[str, float]] = {}
        self.stopped = False
        self.max_step: int | None = None
        self._sink = sink
        self._metric = metric

    @property
    def metric(self) -> str:
        """The metric a bare number is reported under (the study's first objective)."""
        if self._metric is not None:
            return self._metric
        return self._sink.metric if self._sink is not None else DEFAULT_METRIC

    @property
    def last(self) -> dict[str, float]:
        """The values of the latest step reported (empty before the first report)."""
        if not self.reports:
            return {}
        return dict(self.reports[max(self.reports)])

    @property
    def last_step(self) -> int | None:
        """The latest step reported, or ``None``."""
        return max(self.reports) if self.reports else None

    def report(self, value: float | Mapping[str, float], step: int, *, stop: bool = False) -> None:
        """Store intermediate value(s) at ``step`` (an epoch, a number of samples...).

        Args:
            value: A number (the study's objective metric) or a mapping of metric values.
            step: A non-negative integer; reporting a step again replaces its values.
            stop: Ask the stopping rule right away and raise :class:`TrialStopped` when it
                says stop.

        Raises:
            InvalidConfigError: ``step`` is not a non-negative integer, or a value is not a
                number.
            TrialStopped: With ``stop=True``, when the rule stops the trial.
        """
        try:
            index = -1 if isinstance(step, bool) else operator.index(step)
        except TypeError:
            index = -1
        if index < 0:
            raise InvalidConfigError(
                "report(step=...) takes a non-negative integer (an epoch, an iteration), "
                f"got {step!r}."
            )
        step = index
        values = _values(value, self.metric)
        self.reports[step] = values
        if self._sink is not None:
            self._sink.write(self.number, step, values)
        if stop and self.should_stop():
            raise TrialStopped(f"trial {self.number} stopped by the study's rule at step {step}")

    def should_stop(self) -> bool:
        """Whether the study's stopping rule ends this trial now, judged on the reports of
        this trial and of the study's other trials (``False`` without a rule or before the
        first report). Once True, it stays True (and :attr:`stopped` is set)."""
        if self.stopped:
            return True
        if self._sink is None or not self.reports:
            return False
        step = max(self.reports)
        if self.max_step is not None and step >= self.max_step:
            return False  # the evaluation is over: stopping it saves nothing
        self.stopped = bool(self._sink.decide(self.number, step, self.reports))
        return self.stopped

    def __repr__(self) -> str:
        return (
            f"TrialContext(number={self.number}, arch={self.arch.text!r}, "
            f"reports={len(self.reports)}, stopped={self.stopped})"
        )


def _values(value: float | Mapping[str, float], metric: str) -> dict[str, float]:
    """The reported value(s) as ``{metric: float}``, checked."""
    items = value.items() if isinstance(value, Mapping) else ((metric, value),)
    out: dict[str, float] = {}
    for name, item in items:
        if isinstance(item, bool):
            raise InvalidConfigError(f"report(): metric {name!r} is a bool; report a number.")
        try:
            number = float(item)
        except (TypeError, ValueError):
            raise InvalidConfigError(
                f"report(): metric {name!r} must be a number, got {type(item).__name__} {item!r}."
            ) from None
        out[str(name)] = number
    if not out:
        raise InvalidConfigError("report() was given an empty mapping; report at least one metric.")
    return out
