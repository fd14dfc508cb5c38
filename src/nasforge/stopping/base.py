"""The :class:`StoppingRule` contract and the :class:`ReportHistory` it judges."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nasforge.errors import InvalidConfigError

__all__ = ["ReportHistory", "StoppingRule", "rung_steps"]


@dataclass(frozen=True)
class ReportHistory:
    """What the study's trials reported, as a rule reads it.

    Attributes:
        values: ``{trial number: {step: value}}`` of the study's first objective, turned so
            that larger is better (a minimised loss is negated), steps in increasing order.
            Steps whose report lacks the objective's metric, or holds NaN, are left out.
        complete: Numbers of the trials that finished COMPLETE (ran to the end).
    """

    values: Mapping[int, Mapping[int, float]]
    complete: frozenset[int] = field(default_factory=frozenset)

    def trial(self, number: int) -> Mapping[int, float]:
        """The reports of trial ``number`` (empty if none)."""
        return self.values.get(number, {})

    def value_at_rung(self, number: int, rung: int) -> float | None:
        """The value trial ``number`` reported on reaching step ``rung``: at its first
        reported step at or beyond ``rung`` (``None`` if it has not reached it)."""
        for step, value in sorted(self.trial(number).items()):
            if step >= rung:
                return value
        return None


class StoppingRule(ABC):
    """Decides, after a trial reports, whether to end it now.

    A rule is built from keyword parameters (checked in ``__init__``) and is a pure function
    of the :class:`ReportHistory` it is shown: every worker of a study rebuilds it from the
    stored spec and decides alike. Decisions are taken when a trial reports and are final: a
    finished trial is recorded COMPLETE or STOPPED, and a resumed study replays that record
    instead of deciding again.

    Attributes:
        uses_complete: Whether :meth:`should_stop` reads ``history.complete`` (the study
            then reads the trials' states for it).
    """

    uses_complete: bool = False

    @abstractmethod
    def should_stop(
        self, number: int, step: int, history: ReportHistory, previous: int | None = None
    ) -> bool:
        """Whether trial ``number``, which reported up to ``step``, stops now.

        Args:
            number: The trial.
            step: Its latest reported step.
            history: The reports of every trial of the study, this one's included.
            previous: The step at which this trial last asked (``None``: first time); rules
                that decide once per rung (ASHA) judge a rung only when it was crossed since.
        """

    def params(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this rule."""
        return {}

    def spec(self) -> dict[str, Any]:
        """``{"name": <registry name>, **params}``, stored with the study."""
        return {"name": getattr(type(self), "registry_name", type(self).__name__), **self.params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def check_positive(name: str, value: Any, *, integer: bool = False, above: float = 0.0) -> Any:
    """``value`` if it is a number above ``above`` (an integer with ``integer``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or value <= above:
        kind = "an integer" if integer else "a number"
        raise InvalidConfigError(f"{name} must be {kind} above {above:g}, got {value!r}.")
    return int(value) if integer else float(value)


def rung_steps(min_step: int, eta: float, start: int, max_step: int | None) -> Sequence[int]:
    """The steps ``min_step * eta**(start + k)`` for k = 0, 1, ... below ``max_step`` (at
    most 64 rungs when there is no ``max_step``; a trial never reports that far)."""
    out: list[int] = []
    k = 0
    while len(out) < 64:
        step = math.ceil(min_step * eta ** (start + k) - 1e-9)
        if max_step is not None and step >= max_step:
            break
        if not out or step > out[-1]:
            out.append(step)
        k += 1
    return out


def reached_rung(rungs: Sequence[int], step: int) -> int | None:
    """The highest of ``rungs`` (in increasing order) at or below ``step``."""
    below = [r for r in rungs if r <= step]
    return below[-1] if below else None


def stopped_at_rung(
    history: ReportHistory,
    number: int,
    rung: int,
    eta: float,
    peers: Iterable[int] | None = None,
) -> bool:
    """Whether trial ``number``'s value at ``rung`` falls outside the top ``max(1, floor(n /
    eta))`` of the ``n`` values recorded there by ``peers`` (all trials if ``None``; its own
    included); ties count in its favour, and a trial without a value there is not stopped."""
    mine = history.value_at_rung(number, rung)
    if mine is None:
        return False
    rivals = [
        v
        for other in (history.values if peers is None else peers)
        if (v := history.value_at_rung(other, rung)) is not None
    ]
    n_keep = max(1, math.floor(len(rivals) / eta + 1e-9))
    better = sum(1 for v in rivals if v > mine)
    return better >= n_keep
