"""JSON-safe values for the dashboard's payloads: no NaN or infinity (they become ``None``),
floats rounded to 6 significant digits, dates as ISO text, anything else as plain data."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["iso", "num", "plain"]


def num(value: Any) -> float | int | None:
    """A number as JSON can hold it: ``None`` for NaN, infinity or a missing value, an int
    as it is, a float rounded to 6 significant digits.

    Example:
        >>> num(94.37123456), num(float("nan")), num(3), num(None)
        (94.3712, None, 3, None)
    """
    if type(value) is float:  # the usual case, first
        return float(f"{value:.6g}") if value - value == 0.0 else None
    if value is None or isinstance(value, bool):
        return None if value is None else int(value)
    if isinstance(value, int):
        return value
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def iso(value: datetime | None) -> str | None:
    """A date as ISO 8601 text (``None`` stays ``None``)."""
    return None if value is None else value.isoformat()


def plain(value: Any) -> Any:
    """``value`` as JSON-safe data: mappings with text keys, lists, text, booleans, numbers
    (through :func:`num`) and ``None``; anything else becomes its text.

    Example:
        >>> plain({"a": (1, float("inf")), 2: {"b": 0.123456789}})
        {'a': [1, None], '2': {'b': 0.123457}}
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)):
        return num(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if hasattr(value, "item"):  # a numpy scalar
        try:
            return plain(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)
