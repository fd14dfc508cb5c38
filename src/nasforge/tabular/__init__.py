"""Tabular benchmarks: measured results of every architecture of a space, shipped offline."""

from __future__ import annotations

from typing import Any

from nasforge.registry import Registry
from nasforge.tabular.base import MetricInfo, TabularBenchmark, load_table

__all__ = ["MetricInfo", "TabularBenchmark", "create", "load_table", "names", "register"]

_REGISTRY: Registry[TabularBenchmark] = Registry("benchmark", __name__)
register = _REGISTRY.register


def create(name: str, **kwargs: Any) -> TabularBenchmark:
    """The benchmark registered as ``name`` (``"nb201"``)."""
    return _REGISTRY.create(name, **kwargs)


def names() -> list[str]:
    """Names of the registered benchmarks."""
    return _REGISTRY.names()
