"""The :class:`TabularBenchmark` contract and the loader of the tables shipped in the package."""

from __future__ import annotations

import functools
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.trial import Direction

__all__ = ["MetricInfo", "TabularBenchmark", "load_table", "row_lookup"]


@functools.cache
def load_table(name: str) -> Mapping[str, np.ndarray]:
    """The arrays of the shipped table ``name`` (``nasforge/tabular/data/<name>.npz``).

    The file is opened once; each array is decompressed on first access and then kept.
    """
    path = resources.files("nasforge.tabular").joinpath("data").joinpath(f"{name}.npz")
    with resources.as_file(path) as real:
        return _LazyArrays(Path(real))


@functools.cache
def row_lookup(name: str, radix: int, key: str = "ops") -> tuple[np.ndarray, np.ndarray]:
    """Map between rows of table ``name`` and the choices they hold.

    ``table[key]`` lists each row's choices (one integer in ``0..radix-1`` per decision).
    Returns ``(codes, rows)``: ``codes[row]`` is the row's choices read as a base-``radix``
    number, and ``rows[code]`` the row that holds those choices, so both directions are O(1).
    """
    choices = load_table(name)[key].astype(np.int64)
    powers = radix ** np.arange(choices.shape[1] - 1, -1, -1)
    codes = choices @ powers
    rows = np.full(radix ** choices.shape[1], -1, dtype=np.int64)
    rows[codes] = np.arange(len(codes))
    codes.setflags(write=False)
    rows.setflags(write=False)
    return codes, rows


class _LazyArrays(Mapping[str, np.ndarray]):
    """Arrays of an ``.npz`` file, each read on first use.

    The open archive is private to the process that opened it: a forked child (a process
    pool) shares the parent's file offset, so concurrent reads would corrupt each other; the
    child reopens the file instead.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pid = os.getpid()
        self._npz = np.load(path)
        self._files = tuple(self._npz.files)
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        array = self._cache.get(key)
        if array is None:
            if os.getpid() != self._pid:  # forked: never read through the parent's handle
                self._npz = np.load(self._path)
                self._pid = os.getpid()
            array = self._cache[key] = self._npz[key]
            array.setflags(write=False)
        return array

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


class MetricInfo:
    """Name, direction, unit and description of a metric a benchmark provides."""

    __slots__ = ("description", "direction", "name", "unit")

    def __init__(self, name: str, direction: Direction, unit: str, description: str) -> None:
        self.name = name
        self.direction = direction
        self.unit = unit
        self.description = description

    def __repr__(self) -> str:
        return f"MetricInfo({self.name!r}, {self.direction.value}, {self.unit!r})"


class TabularBenchmark(ABC):
    """Results that were measured once for every architecture of a space, looked up in O(1).

    Attributes:
        name: Registry name of the benchmark.
        space: Registry name of the search space whose architectures it covers.
        datasets: The datasets it has results for.
        fidelities: The training budgets it has results for (e.g. epochs), highest first.
    """

    name: str = ""
    space: str = ""
    datasets: tuple[str, ...] = ()
    fidelities: tuple[int, ...] = ()
    #: The key of a proposal's fidelity (``{"epochs": 12}``).
    fidelity_key: str = "epochs"
    #: The unit of :meth:`query_cost`: ``"queries"``, or ``"seconds"`` for a table that
    #: records each architecture's training time.
    cost_unit: str = "queries"
    #: The metrics known without training (parameters, FLOPs, device latency) that an
    #: evaluator offers as free metrics; ``None``: every metric that is not an accuracy.
    free: tuple[str, ...] | None = None

    @property
    def space_params(self) -> dict[str, Any]:
        """Keyword arguments that build :attr:`space` for this benchmark (``{}``; a user's
        table names its file and columns)."""
        return {}

    @abstractmethod
    def metrics(self, dataset: str, fidelity: int | None = None) -> list[MetricInfo]:
        """The metrics :meth:`query` answers for ``dataset`` at ``fidelity``."""

    @abstractmethod
    def query(
        self, arch: Architecture, dataset: str, metric: str, fidelity: int | None = None
    ) -> float:
        """One metric of one architecture; NaN where the benchmark has no value."""

    @abstractmethod
    def query_all(
        self, arch: Architecture, dataset: str, fidelity: int | None = None
    ) -> dict[str, float]:
        """Every metric of one architecture that has a value."""

    @abstractmethod
    def column(self, dataset: str, metric: str, fidelity: int | None = None) -> np.ndarray:
        """One metric for every architecture, in the benchmark's index order (read-only)."""

    def cost(self, dataset: str, fidelity: int | None = None) -> float:
        """What one query costs, in full-fidelity queries (a 12-epoch query of a 200-epoch
        benchmark costs 12/200)."""
        if fidelity is None or not self.fidelities:
            return 1.0
        return fidelity / max(self.fidelities)

    def query_cost(self, arch: Architecture, dataset: str, fidelity: int | None = None) -> float:
        """What looking ``arch`` up costs, in :attr:`cost_unit`: by default :meth:`cost`, the
        same for every architecture."""
        return self.cost(dataset, fidelity)

    @staticmethod
    def _finite(values: Mapping[str, float]) -> dict[str, float]:
        return {k: v for k, v in values.items() if not math.isnan(v)}
