"""Tabular benchmarks: measured results of every architecture of a space, shipped offline,
or a table of one's own (:func:`from_table`: a CSV or Parquet file, or a DataFrame)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


if TYPE_CHECKING:
    from nasforge.tabular.table import TableBenchmark, from_table, table_params

#: Names of :mod:`nasforge.tabular.table` offered here, imported on first use.
_TABLE = ("TableBenchmark", "from_table", "table_params")


def __getattr__(name: str) -> Any:
    if name in _TABLE:
        from nasforge.tabular import table

        return getattr(table, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
