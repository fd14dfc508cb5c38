"""Constraints on metrics, written ``"params_M<=1.0"`` or ``"latency_ms[pixel3] < 20"``."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nasforge.errors import InvalidConfigError

__all__ = ["Constraint"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_PATTERN = re.compile(r"^\s*([A-Za-z_][\w\[\]\-.]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """An upper or lower bound on one metric.

    Example:
        >>> c = Constraint.parse("params_M<=0.5")
        >>> c.satisfied({"params_M": 0.4}), c.satisfied({"params_M": 0.6})
        (True, False)
        >>> c.violation({"params_M": 0.6})
        0.09999999999999998
    """

    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str | Constraint) -> Constraint:
        """Parse ``"metric<=value"`` (also ``<``, ``>=``, ``>``)."""
        if isinstance(text, Constraint):
            return text
        match = _PATTERN.match(str(text))
        if match is None:
            raise InvalidConfigError(
                f"Malformed constraint {text!r}; write 'metric<=value', e.g. 'params_M<=1.0' "
                "or 'latency_ms[pixel3]<20' (operators <=, <, >=, >)."
            )
        metric, op, value = match.groups()
        try:
            bound = float(value)
        except ValueError:
            raise InvalidConfigError(
                f"Malformed bound {value!r} in constraint {text!r}; it must be a number."
            ) from None
        return cls(metric, op, bound)

    @property
    def upper(self) -> bool:
        """Whether this is an upper bound (``<=`` or ``<``)."""
        return self.op.startswith("<")

    def satisfied(self, metrics: Mapping[str, float]) -> bool:
        """Whether ``metrics`` meet the constraint (a missing or NaN value does not)."""
        value = metrics.get(self.metric)
        if value is None or math.isnan(value):
            return False
        return _OPS[self.op](value, self.bound)

    def satisfied_array(self, values: Any) -> Any:
        """Element-wise :meth:`satisfied` for a NumPy array of the metric (NaN never meets it).

        Example:
            >>> import numpy as np
            >>> Constraint.parse("params_M<0.5").satisfied_array(np.array([0.4, 0.5, np.nan]))
            array([ True, False, False])
        """
        return _OPS[self.op](values, self.bound)

    def violation(self, metrics: Mapping[str, float]) -> float:
        """How far ``metrics`` are from meeting the constraint (0 when met, inf if missing)."""
        value = metrics.get(self.metric)
        if value is None or math.isnan(value):
            return math.inf
        if self.satisfied(metrics):
            return 0.0
        return value - self.bound if self.upper else self.bound - value

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"
