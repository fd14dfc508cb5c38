"""What a study's record and a comparison say, for the dashboard: the evaluator's label and
cost unit, the true front of a tabular benchmark, a comparison's entry in the overview."""

from __future__ import annotations

from typing import Any

from nasforge.dashboard._safe import num
from nasforge.trial import Objective

__all__ = ["comparison_entry", "cost_unit", "evaluator_label", "tabular_front"]


def comparison_entry(payload: dict[str, Any]) -> dict[str, Any]:
    strategies: list[str] = []
    for entries in payload["datasets"].values():
        strategies += [s for s in entries if s not in strategies]
    return {
        "id": payload["id"],
        "name": payload["name"],
        "benchmark": payload["benchmark"],
        "datasets": list(payload["datasets"]),
        "strategies": strategies,
    }


def evaluator_label(spec: dict[str, Any] | None) -> str | None:
    """``"tabular · cifar10"``: the evaluator's name and its dataset, if any."""
    if not spec:
        return None
    name = str(spec.get("name") or "evaluator")
    dataset = spec.get("dataset")
    if dataset is None and isinstance(spec.get("data"), str):
        dataset = spec["data"]
    return f"{name} · {dataset}" if dataset else name


def _tabular_benchmark(spec: dict[str, Any]) -> Any:
    from nasforge import tabular

    return tabular.create(
        str(spec.get("benchmark") or "nb201"), **dict(spec.get("benchmark_params") or {})
    )


def cost_unit(spec: dict[str, Any] | None) -> str | None:
    """The unit of the costs of a study's evaluator (``"queries"``, ``"seconds"``), from
    its spec; ``None`` when it cannot be told here."""
    if not spec:
        return None
    if isinstance(spec.get("cost_unit"), str):
        return str(spec["cost_unit"])
    name = spec.get("name")
    try:
        if name == "tabular":
            if spec.get("charge_queries"):
                return "queries"
            return str(_tabular_benchmark(spec).cost_unit)
        from nasforge.evaluators import _REGISTRY

        unit = getattr(_REGISTRY.get(str(name)), "cost_unit", None)
    except Exception:  # a plugin's evaluator that does not load here: unit unknown
        return None
    return unit if isinstance(unit, str) else None


def tabular_front(
    spec: dict[str, Any], x: Objective, y: Objective
) -> tuple[list[list[Any]], str] | None:
    """The front of the benchmark's whole table on ``(x, y)``, sorted by ``x``, and its
    label; ``None`` when the table lacks one of the metrics or cannot be read."""
    from nasforge.pareto import true_front

    try:
        bench = _tabular_benchmark(spec)
        front = true_front(bench, str(spec["dataset"]), [x, y], fidelity=spec.get("fidelity"))
    except Exception:  # a metric the table lacks, a table that does not load here...
        return None
    values = sorted(front.values().tolist())
    name = str(getattr(bench, "name", spec.get("benchmark") or "benchmark"))
    return [[num(a), num(b)] for a, b in values], f"true front of {name} · {spec['dataset']}"
