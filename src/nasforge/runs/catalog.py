"""What ``nasforge list`` shows: the registries' entries and a benchmark's datasets, devices
and metrics, as JSON-ready dictionaries. Listing a registry never fails on one broken entry.

Example:
    >>> catalog("metrics", dataset="cifar10", fidelity=12)["fidelity"]
    12
    >>> [row["name"] for row in catalog("benchmarks")["benchmarks"]]
    ['nb201', 'table']
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any

from nasforge.errors import UnknownNameError

__all__ = ["LIST_TARGETS", "catalog"]

#: What :func:`catalog` lists.
LIST_TARGETS = (
    "benchmarks",
    "datasets",
    "devices",
    "evaluators",
    "metrics",
    "spaces",
    "stopping",
    "strategies",
)


def _doc(obj: Any) -> str:
    doc = inspect.getdoc(obj if isinstance(obj, type) else type(obj)) or ""
    return doc.splitlines()[0] if doc else ""


def _parameters(factory: Any) -> dict[str, Any]:
    """The keyword-only parameters of a registered class and their defaults (``seed``
    left out), read from its signature: nothing is built."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name != "seed"
    }


def _spaces(**_: Any) -> dict[str, Any]:
    import nasforge

    rows = []
    for name in nasforge.spaces.names():
        row: dict[str, Any] = {"name": name, "size": None, "description": ""}
        with contextlib.suppress(Exception):  # a listing never fails on one entry
            space = nasforge.spaces.create(name)  # a space is a light object: its size
            row.update(size=space.size, description=_doc(space))
        rows.append(row)
    return {"spaces": rows}


def _strategies(**_: Any) -> dict[str, Any]:
    """Black-box strategies, then one-shot methods (``kind``), from their classes: listing
    constructs nothing (some strategies compute proxies or fit models when built)."""
    from nasforge import oneshot, strategies

    rows = []
    for kind, registry in (("black-box", strategies), ("one-shot", oneshot)):
        for name in registry.names():
            row: dict[str, Any] = {"name": name, "kind": kind, "parameters": {}, "description": ""}
            with contextlib.suppress(Exception):  # a listing never fails on one entry
                factory = registry.get(name)
                row.update(parameters=_parameters(factory), description=_doc(factory))
            rows.append(row)
    return {"strategies": rows}


def _benchmarks(**_: Any) -> dict[str, Any]:
    import nasforge

    rows = []
    for name in nasforge.tabular.names():
        bench = nasforge.tabular.create(name)
        rows.append(
            {
                "name": name,
                "space": bench.space,
                "datasets": list(bench.datasets),
                "fidelities": list(bench.fidelities),
            }
        )
    return {"benchmarks": rows}


def _evaluators(**_: Any) -> dict[str, Any]:
    import nasforge

    return {"evaluators": [{"name": name} for name in nasforge.evaluators.names()]}


def _stopping(**_: Any) -> dict[str, Any]:
    from nasforge import stopping

    rows = []
    for name in stopping.names():
        rule = stopping.get(name)
        rows.append({"name": name, "description": _doc(rule), "parameters": _parameters(rule)})
    return {"stopping": rows}


def _devices(*, benchmark: str, **_: Any) -> dict[str, Any]:
    import nasforge

    bench = nasforge.tabular.create(benchmark)
    devices: list[str] = list(getattr(bench, "devices", list)())
    rows = [{"name": d, "metric": f"latency_ms[{d}]"} for d in devices]
    return {"benchmark": benchmark, "devices": rows}


def _datasets(*, benchmark: str, **_: Any) -> dict[str, Any]:
    import nasforge

    bench = nasforge.tabular.create(benchmark)
    rows = [
        {"name": name, "fidelities": list(bench.fidelities), "metrics": len(bench.metrics(name))}
        for name in bench.datasets
    ]
    return {"benchmark": benchmark, "datasets": rows}


def _metrics(*, benchmark: str, dataset: str, fidelity: int | None) -> dict[str, Any]:
    import nasforge

    bench = nasforge.tabular.create(benchmark)
    rows = [
        {
            "name": info.name,
            "direction": "max" if info.direction.value == "maximize" else "min",
            "unit": info.unit,
            "description": info.description,
        }
        for info in bench.metrics(dataset, fidelity)
    ]
    used = (
        fidelity if fidelity is not None else (max(bench.fidelities) if bench.fidelities else None)
    )
    return {"benchmark": benchmark, "dataset": dataset.lower(), "fidelity": used, "metrics": rows}


_LISTERS: dict[str, Callable[..., dict[str, Any]]] = {
    "benchmarks": _benchmarks,
    "datasets": _datasets,
    "devices": _devices,
    "evaluators": _evaluators,
    "metrics": _metrics,
    "spaces": _spaces,
    "stopping": _stopping,
    "strategies": _strategies,
}


def catalog(
    what: str, *, benchmark: str = "nb201", dataset: str = "cifar10", fidelity: int | None = None
) -> dict[str, Any]:
    """The rows of ``what`` (one of :data:`LIST_TARGETS`) under the key ``what``; a
    benchmark's datasets, devices and metrics also name the benchmark (and for metrics the
    dataset and the fidelity used).

    Raises:
        UnknownNameError: ``what`` is not listable, or an unknown benchmark, dataset or
            fidelity.
    """
    if what not in _LISTERS:
        raise UnknownNameError("thing to list", what, LIST_TARGETS)
    return _LISTERS[what](benchmark=benchmark, dataset=dataset, fidelity=fidelity)
