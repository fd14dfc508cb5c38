"""Drawings of architectures: the plain JSON data from which the dashboard draws one
(:meth:`nasforge.spaces.base.SearchSpace.drawing`; private helpers of the spaces).

Two kinds. A *cells* drawing is one or more cells, each a graph of nodes and edges, every edge
an operation marked parameter-free or not (from :data:`nasforge.ops.param_free.PARAM_FREE`,
the set the supernets count)::

    {"kind": "cells", "cells": [{"name": "cell", "nodes": [{"id", "label", "role"}, ...],
     "edges": [{"source", "target", "op", "param_free"}, ...]}], "settings": {}}

with roles ``"input"``, ``"node"`` and ``"output"``. A *strip* drawing is a macro network as a
row of blocks, each with the values of its choices, and the settings of the whole network::

    {"kind": "strip", "blocks": [{"label": "stage 2 · layer 1", "group": "s2",
     "choices": {"kernel": 5, "expand": 6}, "skipped": False}, ...], "settings": {...}}

Every value of ``choices`` and ``settings`` is a ``str``, ``int``, ``float`` or ``bool``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nasforge.ops.param_free import PARAM_FREE

__all__ = [
    "Scalar",
    "block",
    "cells",
    "decision_strip",
    "edge",
    "node",
    "plain",
    "strip",
    "text_strip",
    "with_settings",
]

Scalar = str | int | float | bool
#: The layer part of a decision name: what comes before its first ``_`` or ``.``
#: (``s2b1_kernel`` -> ``s2b1``, ``recipe.lr`` -> ``recipe``).
_PREFIX = re.compile(r"^([^_.]+)[_.](.+)$")


def plain(value: Any) -> Scalar:
    """``value`` as a JSON scalar: a ``bool``, ``int``, ``str`` or finite ``float`` as it is (a
    NumPy scalar as its Python value), anything else (``nan``, a tuple...) as its text."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (bool, int, float, str)):
        try:
            value = item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)


def _scalars(values: Mapping[str, Any] | None) -> dict[str, Scalar]:
    return {str(k): plain(v) for k, v in (values or {}).items()}


def node(node_id: str, label: str, role: str = "node") -> dict[str, Any]:
    """A node of a cell; ``role`` is ``"input"``, ``"node"`` or ``"output"``."""
    return {"id": node_id, "label": label, "role": role}


def edge(source: str, target: str, op: str) -> dict[str, Any]:
    """An edge of a cell carrying operation ``op`` (``"concat"`` for an output's inputs),
    marked parameter-free when ``op`` is one of :data:`PARAM_FREE`."""
    return {"source": source, "target": target, "op": op, "param_free": op in PARAM_FREE}


def cells(
    graphs: Iterable[tuple[str, Sequence[dict[str, Any]], Sequence[dict[str, Any]]]],
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A cells drawing of ``(name, nodes, edges)`` graphs."""
    return {
        "kind": "cells",
        "cells": [{"name": n, "nodes": list(v), "edges": list(e)} for n, v, e in graphs],
        "settings": _scalars(settings),
    }


def block(
    label: str, choices: Mapping[str, Any], *, group: str = "", skipped: bool = False
) -> dict[str, Any]:
    """A block of a strip: ``skipped`` for a layer present in the choices but computing the
    identity (or nothing) in the network."""
    return {"label": label, "group": group, "choices": _scalars(choices), "skipped": skipped}


def strip(
    blocks: Iterable[dict[str, Any]], settings: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A strip drawing of ``blocks`` (:func:`block`) and the network's ``settings``."""
    return {"kind": "strip", "blocks": list(blocks), "settings": _scalars(settings)}


def text_strip(text: str) -> dict[str, Any]:
    """The drawing of an architecture known only by its text: one block holding it."""
    return strip([block("architecture", {"text": text})])


def decision_strip(values: Sequence[tuple[str, Any]], *, grouped: bool = True) -> dict[str, Any]:
    """The strip of a product space's decisions, ``(name, value)`` in order: one block per
    decision (label: its name, choices ``{name: value}``), or with ``grouped`` one block per
    layer prefix that two or more decisions share (``stem_width`` and ``stem_act`` make the
    block ``stem`` with choices ``{"width": ..., "act": ...}``; a name equal to the prefix
    keeps its name)."""
    prefixes = [_prefix(name) if grouped else name for name, _ in values]
    counts = {p: prefixes.count(p) for p in prefixes}
    members: dict[str, list[tuple[str, Any]]] = {}
    for prefix, (name, value) in zip(prefixes, values, strict=True):
        key = prefix if counts[prefix] > 1 else name
        members.setdefault(key, []).append((name, value))
    blocks = []
    for label, items in members.items():
        choices: dict[str, Any] = {}
        for name, value in items:
            field = name[len(label) + 1 :] if len(name) > len(label) else name
            choices[name if field in choices else field] = value
        blocks.append(block(label, choices))
    return strip(blocks)


def _prefix(name: str) -> str:
    match = _PREFIX.match(name)
    return match.group(1) if match else name


def with_settings(drawing: dict[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """``drawing`` (either kind) with ``settings`` added to its settings (a form's own
    choices: a recipe, precisions)."""
    merged = dict(drawing.get("settings") or {})
    merged.update(_scalars(settings))
    return {**drawing, "settings": merged}
