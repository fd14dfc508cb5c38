"""Your own benchmark table: a CSV or Parquet file (or a pandas DataFrame) of architectures and
their measured metrics becomes a search space and a tabular benchmark with one call.

Each row of the table is one architecture (at one fidelity, on one dataset): some columns
describe the architecture (``arch_columns``: each becomes a decision whose options are the
column's distinct values), the others hold its metrics (any number: accuracies, parameters,
latency...). Optional columns say at which training budget the row was measured
(``fidelity``, e.g. ``epochs``: several rows per architecture, the largest is the full
fidelity), on which dataset (``dataset``), and what the row cost to measure (``cost``, e.g.
``train_seconds``: a look-up then costs that many seconds instead of one query).

The space holds exactly the architectures of the table. When the table is not the full
product of its columns' values, sampling draws rows, the neighbours of an architecture are
the rows that differ from it in one column (or, for a row with none, the nearest rows), and a
choice of options that is not a row (a strategy that samples each decision on its own:
``reinforce``, ``manas``, the Optuna samplers, crossover) is projected to the nearest row:
the fewest columns changed (Hamming distance), ties broken by the row order of the table.

The settings are plain values (:func:`table_params`), recorded by a study as its
``space_params`` and by the evaluator's spec, so a study resumes in another process (``nasforge
worker``) and the command line takes the same table (``--table results.csv``). A DataFrame
lives only in the process that holds it: save it (``df.to_parquet(path)``) to resume elsewhere.

This is the tabular-benchmark protocol of NAS-Bench-101 (Ying, C. et al. "NAS-Bench-101:
Towards Reproducible Neural Architecture Search." ICML 2019, arXiv:1902.09635, Section 2) and
NAS-Bench-201 (Dong and Yang, ICLR 2020, arXiv:2001.00326, Section 2.4): every architecture's
metrics are measured once, at several training budgets, and a search only looks them up.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"op": ["conv", "pool", "conv"], "width": [16, 16, 32],
    ...                    "acc": [90.0, 80.0, 93.0]})
    >>> space, evaluator = from_table(df, metrics=["acc:max"])
    >>> space.size, [d.options for d in space.decisions()]
    (3, [('conv', 'pool'), (16, 32)])
    >>> evaluator.evaluate(space.parse("op=conv,width=32")).metrics
    {'acc': 93.0}
    >>> space.from_choices([1, 1]).text  # not a row: the first of the nearest rows
    'op=pool,width=16'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nasforge import tabular
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, UnknownNameError
from nasforge.tabular.base import MetricInfo, TabularBenchmark
from nasforge.tabular.table_data import EXAMPLE_TABLE, FromTable, TableData, load, table_params

__all__ = ["EXAMPLE_TABLE", "TableBenchmark", "TableData", "from_table", "load", "table_params"]


# -- the benchmark ----------------------------------------------------------------------------
@tabular.register("table")
class TableBenchmark(FromTable, TabularBenchmark):
    """The metrics of a user's table of architectures (CSV, Parquet or a DataFrame).

    Args:
        path: The table: a ``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet`` or ``.pq`` file, or
            ``"frame:<hash>"`` from :func:`table_params` for a DataFrame. ``None``: the
            made-up example table shipped with nasforge.
        arch_columns: The columns that describe an architecture (default: every column that
            is not a metric, fidelity, cost or dataset column).
        metrics: The metric columns and their directions (``["valid_acc:max",
            "latency_ms:min"]`` or ``{"valid_acc": "max"}``; default: every column that is
            not an architecture, fidelity or dataset column, maximised).
        fidelity: A column of training budgets (e.g. ``"epochs"``): several rows per
            architecture; the largest value is the full fidelity, and a proposal names
            another as ``{"<column>": value}``.
        cost: A column of what each row cost to measure, in seconds (e.g. training time): a
            look-up costs that many seconds (``cost_unit = "seconds"``). Without it a look-up
            costs one query at full fidelity (a lower fidelity its share of the largest).
        dataset: A column naming the dataset of each row (default: one dataset, ``"table"``).
        free: Metric columns known without training (parameters, FLOPs, latency), which
            strategies may read at no cost (``mnasnet-reward``, constraints checked up
            front).

    Raises:
        InvalidConfigError: An unknown file type, an empty table, a named column the table
            lacks (the message lists the table's columns), values of a metric that are not
            numbers, an architecture repeated at one fidelity and dataset (its rows and values
            are named), or a row without its architecture.
        MissingDependencyError: pandas (or pyarrow for Parquet) is not installed.
    """

    name = "table"
    space = "table"

    def _loaded(self) -> None:
        self.datasets = self.data.datasets
        self.fidelities = self.data.fidelities  # type: ignore[assignment]
        if self.params["fidelity"] is not None:
            self.fidelity_key = self.params["fidelity"]
        if self.params["cost"] is not None:
            self.cost_unit = "seconds"
        self.free = tuple(self.params["free"])

    @property
    def space_params(self) -> dict[str, Any]:
        return dict(self.params)

    def _resolve(self, dataset: str, fidelity: float | None) -> tuple[int, int]:
        lowered = [d.lower() for d in self.datasets]
        if not isinstance(dataset, str) or dataset.lower() not in lowered:
            raise UnknownNameError(
                f"dataset of table {self.data.source}", str(dataset), self.datasets
            )
        index = lowered.index(dataset.lower())
        if fidelity is None or not self.fidelities:
            if fidelity is not None:
                raise InvalidConfigError(
                    f"The table {self.data.source} has no fidelity column; ask it without a "
                    f"fidelity, got {fidelity!r}."
                )
            return index, 0
        if fidelity not in self.fidelities:
            raise UnknownNameError(
                f"fidelity ({self.fidelity_key}) of table {self.data.source}",
                str(fidelity),
                [str(f) for f in self.fidelities],
            )
        return index, self.fidelities.index(fidelity)

    def metrics(self, dataset: str, fidelity: int | None = None) -> list[MetricInfo]:
        self._resolve(dataset, fidelity)
        return [
            MetricInfo(name, direction, "", f"column {name!r} of {self.data.source}")
            for name, direction in self.data.directions.items()
        ]

    def row(self, arch: Architecture) -> int:
        """The architecture's index in the table (the order its rows first appear)."""
        if not isinstance(arch, Architecture) or arch.space != self.space:
            raise InvalidArchitectureError(
                f"The table benchmark answers for architectures of space {self.space!r}, got "
                f"{arch!r}."
            )
        return self.data.row(arch.text)

    def column(self, dataset: str, metric: str, fidelity: int | None = None) -> np.ndarray:
        d, f = self._resolve(dataset, fidelity)
        if metric not in self.data.values:
            raise UnknownNameError(f"metric of table {self.data.source}", metric, self.data.values)
        values: np.ndarray = self.data.values[metric][d, f]
        return values

    def query(
        self, arch: Architecture, dataset: str, metric: str, fidelity: int | None = None
    ) -> float:
        return float(self.column(dataset, metric, fidelity)[self.row(arch)])

    def query_all(
        self, arch: Architecture, dataset: str, fidelity: int | None = None
    ) -> dict[str, float]:
        d, f = self._resolve(dataset, fidelity)
        row = self.row(arch)
        values = {m: float(v[d, f, row]) for m, v in self.data.values.items()}
        return self._finite(values)

    def query_cost(self, arch: Architecture, dataset: str, fidelity: int | None = None) -> float:
        if self.data.cost is None:
            return self.cost(dataset, fidelity)
        d, f = self._resolve(dataset, fidelity)
        seconds = float(self.data.cost[d, f, self.row(arch)])
        if math.isnan(seconds):
            raise InvalidArchitectureError(
                f"Architecture {arch.text!r} has no row in the table {self.data.source} on "
                f"{dataset!r}" + (f" at {self.fidelity_key}={fidelity}." if fidelity else ".")
            )
        return seconds

    def __repr__(self) -> str:
        return f"TableBenchmark({self.data.source!r})"


# -- the one call -----------------------------------------------------------------------------
def from_table(
    source: Any = None,
    *,
    arch_columns: Sequence[str] | None = None,
    metrics: Sequence[str] | Mapping[str, str] | None = None,
    fidelity: str | None = None,
    cost: str | None = None,
    dataset: str | None = None,
    free: Sequence[str] | None = None,
    evaluate: Sequence[str] | None = None,
) -> tuple[Any, Any]:
    """A benchmark table as a search space and an evaluator that looks results up in it.

    Args:
        source: A CSV/Parquet path or a pandas DataFrame (``None``: the example table).
        arch_columns, metrics, fidelity, cost, dataset, free: see :class:`TableBenchmark`.
        evaluate: The metrics the evaluator returns (default: all).

    Returns:
        ``(space, evaluator)``: the ``"table"`` space (``space.params`` are its
        ``space_params``) and a ``"tabular"`` evaluator on the table's first dataset. A
        study records both: ``nasforge.create_study(space=space, evaluator=evaluator)`` (the
        space's ``params`` become the study's ``space_params``).
    """
    from nasforge import evaluators, spaces

    params = table_params(
        source,
        arch_columns=arch_columns,
        metrics=metrics,
        fidelity=fidelity,
        cost=cost,
        dataset=dataset,
        free=free,
    )
    space = spaces.create("table", **params)
    bench = TableBenchmark(**params)
    evaluator = evaluators.create(
        "tabular",
        benchmark="table",
        dataset=bench.datasets[0],
        metrics=None if evaluate is None else list(evaluate),
        benchmark_params=params,
    )
    return space, evaluator
