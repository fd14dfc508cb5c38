"""Evaluate architectures by looking them up in a tabular benchmark (instant, offline)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nasforge import evaluators, tabular
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.evaluators.base import Evaluator
from nasforge.trial import Direction, Result

__all__ = ["TabularEvaluator"]


@evaluators.register("tabular")
class TabularEvaluator(Evaluator):
    """Answers each proposal from a :class:`~nasforge.tabular.TabularBenchmark`.

    Args:
        benchmark: Registry name of the benchmark (``"nb201"``).
        dataset: One of the benchmark's datasets (``"cifar10"``).
        metrics: The metrics to return; ``None`` returns every metric the benchmark has.
        fidelity: Default training budget (epochs) when a proposal names none; ``None`` is
            the benchmark's highest.
        benchmark_params: Keyword arguments of the benchmark (a table of one's own:
            ``benchmark="table"`` with its path and columns, see
            :func:`nasforge.tabular.from_table`).
        charge_queries: Charge each look-up one query (a lower fidelity its share) even where
            the benchmark records what each architecture cost in seconds (the comparison
            harness counts queries).

    A proposal may ask for another fidelity with ``{"epochs": 12}`` (the benchmark's
    ``fidelity_key``); its cost is then ``12 / 200`` of a full query (``cost_unit`` is
    ``"queries"``), or the seconds the table records for it (``cost_unit`` ``"seconds"``).

    Example:
        >>> from nasforge import spaces
        >>> ev = TabularEvaluator("nb201", "cifar10", metrics=["valid_acc", "test_acc"])
        >>> r = ev.evaluate(spaces.create("nb201").from_index(6111))
        >>> round(r.metrics["test_acc"], 2), r.cost
        (94.37, 1.0)
    """

    cost_unit = "queries"

    def __init__(
        self,
        benchmark: str = "nb201",
        dataset: str = "cifar10",
        *,
        metrics: Sequence[str] | None = None,
        fidelity: int | None = None,
        benchmark_params: Mapping[str, Any] | None = None,
        charge_queries: bool = False,
    ) -> None:
        self._benchmark_params = dict(benchmark_params or {})
        self.benchmark = tabular.create(benchmark, **self._benchmark_params)
        self.space = self.benchmark.space
        self.charge_queries = bool(charge_queries)
        self.cost_unit = "queries" if charge_queries else self.benchmark.cost_unit
        catalogue = self.benchmark.metrics(dataset, fidelity)  # validates dataset and fidelity
        self.dataset = dataset.lower()
        self.fidelity = fidelity
        self._benchmark_name = benchmark
        known = {m.name: m.direction for m in catalogue}
        if metrics is not None:
            if isinstance(metrics, str):
                metrics = [metrics]
            for name in metrics:
                if name not in known:
                    raise UnknownNameError(f"metric of {benchmark} {dataset}", name, known)
            known = {name: known[name] for name in metrics}
        self._selected = None if metrics is None else tuple(metrics)
        declared = self.benchmark.free
        self._free = tuple(
            m.name
            for m in catalogue
            if (m.name in declared if declared is not None else not _is_accuracy(m.name))
        )
        self._metrics = known

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return self._metrics

    def _epochs(self, fidelity: Mapping[str, Any] | None) -> int | None:
        if not fidelity:
            return self.fidelity
        key = self.benchmark.fidelity_key
        unknown = set(fidelity) - {key}
        if unknown:
            raise InvalidConfigError(
                f"A tabular benchmark fidelity has only {key!r} (one of "
                f"{list(self.benchmark.fidelities)}), got {dict(fidelity)!r}."
            )
        value = fidelity[key]
        return int(value) if float(value).is_integer() else value

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        epochs = self._epochs(fidelity)
        if self._selected is None:
            values = self.benchmark.query_all(arch, self.dataset, epochs)
        else:
            values = {}
            for name in self._selected:
                value = self.benchmark.query(arch, self.dataset, name, epochs)
                if not math.isnan(value):
                    values[name] = value
        return Result(values, cost=self._cost(arch, epochs))

    def expected_cost(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> float:
        return self._cost(arch, self._epochs(fidelity))

    def _cost(self, arch: Architecture, epochs: int | None) -> float:
        if self.charge_queries:
            return self.benchmark.cost(self.dataset, epochs)
        return self.benchmark.query_cost(arch, self.dataset, epochs)

    @property
    def free_metric_names(self) -> tuple[str, ...]:
        return self._free

    def free_metrics(self, arch: Architecture) -> dict[str, float]:
        """Cost metrics of the table (``params_M``, ``flops_M``, latency and energy): what a
        model builder or a device lookup table gives without training."""
        epochs = self.fidelity
        out = {}
        for name in self._free:
            value = self.benchmark.query(arch, self.dataset, name, epochs)
            if not math.isnan(value):
                out[name] = value
        return out

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": "tabular",
            "benchmark": self._benchmark_name,
            "dataset": self.dataset,
            "metrics": None if self._selected is None else list(self._selected),
            "fidelity": self.fidelity,
        }
        if self._benchmark_params:
            spec["benchmark_params"] = dict(self._benchmark_params)
        if self.charge_queries:
            spec["charge_queries"] = True
        return spec

    def __repr__(self) -> str:
        return f"TabularEvaluator({self._benchmark_name!r}, {self.dataset!r})"


def _is_accuracy(metric: str) -> bool:
    """Whether a metric of a benchmark that declares no free metrics is an accuracy (what
    training gives), by name: ``*_acc`` or ``*_acc_*``."""
    return metric.endswith("_acc") or "_acc_" in metric
