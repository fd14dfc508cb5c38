"""Runs from plain settings: what a command-line command does besides printing.

Each function takes the options a user types (names, numbers, paths), validates them, calls
the core API (:func:`nasforge.create_study`, :mod:`nasforge.oneshot`, the registries) and
returns plain data: a study ready to run, a JSON-ready summary, a table of scores. The
``nasforge`` commands print what these return; scripts can call them directly.

Modules: :mod:`~nasforge.runs.search` (open and run a search, progress callbacks),
:mod:`~nasforge.runs.oneshot`, :mod:`~nasforge.runs.summary`, :mod:`~nasforge.runs.catalog`
(what ``nasforge list`` shows), :mod:`~nasforge.runs.profile`, :mod:`~nasforge.runs.proxies`.
Nothing here is imported by ``import nasforge``, and the names below are imported when first
used, so that ``nasforge --help`` loads none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasforge.runs.search import (
        OpenedSearch,
        SearchProgress,
        open_search,
        open_training_search,
        run_search,
    )
    from nasforge.runs.summary import search_summary, studies_summary, study_summary

__all__ = [
    "OpenedSearch",
    "SearchProgress",
    "open_search",
    "open_training_search",
    "run_search",
    "search_summary",
    "studies_summary",
    "study_summary",
]

_HOMES = {
    "OpenedSearch": "search",
    "SearchProgress": "search",
    "open_search": "search",
    "open_training_search": "search",
    "run_search": "search",
    "search_summary": "summary",
    "studies_summary": "summary",
    "study_summary": "summary",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
