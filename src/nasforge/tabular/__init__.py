"""Tabular benchmarks: measured results of every architecture of a space, shipped offline,
or a table of one's own (:func:`from_table`: a CSV or Parquet file, or a DataFrame)."""

from __future__ import annotations

from typing import Any

from nasforge.registry import Registry
from nasforge.tabular.base import MetricInfo, TabularBenchmark, load_table

__all__ = [
    "MetricInfo",
    "TableBenchmark",
    "TabularBenchmark",
    "create",
    "from_table",
    "load_table",
    "names",
    "register",
    "table_params",
]

_REGISTRY: Registry[TabularBenchmark] = Registry("benchmark", __name__)
register = _REGISTRY.register


def create(name: str, **kwargs: Any) -> TabularBenchmark:
    """The benchmark registered as ``name`` (``"nb201"``)."""
    return _REGISTRY.create(name, **kwargs)


def names() -> list[str]:
    """Names of the registered benchmarks."""
    return _REGISTRY.names()


# after register exists: the table module registers itself as "table" (numpy only at import)
from nasforge.tabular.table import TableBenchmark, from_table, table_params  # noqa: E402
