"""What each strategy of a comparison knows about functional equivalence.

A comparison is fair only when every strategy has the same knowledge of which architectures
compute the same function. That knowledge is a setting of the study (``dedupe``: a proposal
equal in function to an evaluated architecture is answered from the record, at no cost) and
strategies that take architectures up to function themselves (PNAS, WeakNAS: a
``canonical`` parameter) follow it unless told otherwise. :func:`dedupe_settings` turns the
comparison's ``dedupe`` argument into the settings to run, and :func:`knowledge` says, per
strategy, what it had, so that a row whose strategy was told otherwise says so.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nasforge import strategies as strategy_registry
from nasforge.errors import InvalidConfigError
from nasforge.spaces.base import SearchSpace

__all__ = ["Entry", "dedupe_settings", "entry_label", "knowledge"]

#: The values ``run_comparison(dedupe=...)`` and ``nasforge compare --dedupe`` accept.
DEDUPE_CHOICES = ("auto", "on", "off", "both")


@dataclass(frozen=True)
class Entry:
    """One row group of a comparison: a strategy run under one deduplication setting.

    Attributes:
        strategy: Registry name of the strategy (or one-shot method).
        dedupe: Whether its studies deduplicated (``None`` for a one-shot method, which
            makes no queries).
        knowledge: What the strategy knew of functional equivalence, in words (``"dedupe
            (canonical)"``, ``"none"``, ``"none; strategy canonical=True"``...).
    """

    strategy: str
    dedupe: bool | None
    knowledge: str


def dedupe_settings(dedupe: bool | str | None, space: SearchSpace) -> tuple[bool, ...]:
    """The deduplication settings a comparison runs: one, or both (on first).

    ``None`` or ``"auto"``: on where the space has a canonical form, off otherwise;
    ``True``/``"on"``, ``False``/``"off"``; ``"both"``: every strategy with it on, and every
    strategy with it off, side by side.

    Raises:
        InvalidConfigError: Another value.
        UnsupportedOperationError: Deduplication asked for on a space that has neither a
            canonical form nor a model builder to hash.
    """
    if dedupe is None or dedupe == "auto":
        return (space.dedupe_method == "canonical",)
    if isinstance(dedupe, bool):
        chosen: tuple[bool, ...] = (dedupe,)
    elif dedupe in ("on", "off"):
        chosen = (dedupe == "on",)
    elif dedupe == "both":
        chosen = (True, False)
    else:
        raise InvalidConfigError(
            f"dedupe must be one of {', '.join(map(repr, DEDUPE_CHOICES))} (or True/False), got "
            f"{dedupe!r}; 'both' runs every strategy with deduplication and without it."
        )
    if True in chosen:
        space.check_dedupe("Deduplication", "compare with dedupe='off' (--dedupe off)")
    return chosen


def entry_label(strategy: str, dedupe: bool, settings: tuple[bool, ...]) -> str:
    """The name of a strategy's rows: the strategy itself, or with both settings run,
    ``"pnas[dedupe]"`` / ``"pnas[no-dedupe]"``."""
    if len(settings) == 1:
        return strategy
    return f"{strategy}[{'dedupe' if dedupe else 'no-dedupe'}]"


def knowledge(strategy: str, params: Mapping[str, Any], dedupe: bool, space: SearchSpace) -> str:
    """What ``strategy`` built with ``params`` knows of functional equivalence when its
    studies run with ``dedupe``: the study's setting, and the strategy's own where it
    departs from it (a ``canonical`` parameter given explicitly)."""
    study = f"dedupe ({space.dedupe_method})" if dedupe else "none"
    own = params.get("canonical")
    if own is None or not _has_canonical(strategy):
        return study
    if bool(own) == dedupe:
        return study
    return f"{study}; strategy canonical={bool(own)}"


def _has_canonical(strategy: str) -> bool:
    """Whether the strategy takes a ``canonical`` parameter (its own use of functional keys)."""
    factory = strategy_registry.get(strategy)
    try:
        return "canonical" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a factory without a signature
        return False
