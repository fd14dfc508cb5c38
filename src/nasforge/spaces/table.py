"""The architectures of a benchmark table of one's own, as a search space (``"table"``).

Built from the same settings as :class:`nasforge.tabular.table.TableBenchmark` (the table's
path and columns: :func:`nasforge.tabular.table.table_params`), which a study records as its
``space_params``; :func:`nasforge.tabular.from_table` builds both with one call. See
:mod:`nasforge.tabular.table` for how a table that is not the full product of its columns is
searched (rows are sampled; neighbours differ in one column; other choices are projected to
the nearest row).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, abbreviate
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.tabular.table_data import FromTable, load

__all__ = ["TableSpace"]


@spaces.register("table")
class TableSpace(FromTable, SearchSpace):
    """The architectures of a table of measured results: one decision per architecture column.

    An architecture is one of the table's rows, written ``"col=value,col=value"`` in the
    order of the architecture columns. :meth:`from_choices` accepts any option of each
    decision and returns that row, or the nearest row (fewest columns differing; the first in
    the table's order among equals). The space has no networks to build: strategies that
    score networks (``training-free``, ``robot`` without a score file) and one-shot methods
    cannot search it.

    Args:
        path, arch_columns, metrics, fidelity, cost, dataset, free: The table and its
            columns, as for :class:`nasforge.tabular.table.TableBenchmark` (``path=None``:
            the made-up example table shipped with nasforge).

    Example:
        >>> space = TableSpace()  # the example table: 500 architectures of 5 operations
        >>> space.size, [d.name for d in space.decisions()]
        (500, ['op1', 'op2', 'op3', 'op4', 'op5'])
        >>> arch = space.sample(np.random.default_rng(0))
        >>> space.parse(arch.text) == arch
        True
    """

    name = "table"

    def decisions(self) -> tuple[Decision, ...]:
        return self.data.decisions

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        checked = self.check_choices(choices)
        return self.data.arch(self.name, self.data.nearest(checked))

    def parse(self, text: str) -> Architecture:
        row = self.data.index.get(str(text))
        if row is not None:
            return self.data.arch(self.name, row)
        values: dict[str, str] = {}
        for part in str(text).split(","):
            name, eq, value = part.partition("=")
            if not eq:
                raise InvalidArchitectureError(
                    f"A table architecture is written 'column=value,...'; got "
                    f"{abbreviate(text, 80)!r}. Example: {self.data.texts[0]!r}."
                )
            values[name.strip()] = value.strip()
        names = [d.name for d in self.decisions()]
        if sorted(values) != sorted(names):
            raise InvalidArchitectureError(
                f"A table architecture names the columns {names}, got {list(values)} in "
                f"{abbreviate(text, 80)!r}."
            )
        choices = []
        for decision in self.decisions():
            texts = [str(o) for o in decision.options]
            if values[decision.name] not in texts:
                raise InvalidArchitectureError(
                    f"{decision.name}={values[decision.name]} is not a value of the table's "
                    f"column {decision.name!r}; its values are {texts}."
                )
            choices.append(texts.index(values[decision.name]))
        nearest = self.data.texts[self.data.nearest(choices)]
        raise InvalidArchitectureError(
            f"{abbreviate(text, 80)!r} is not a row of the table {self.data.source}; the "
            f"nearest row is {nearest!r}."
        )

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """One block per architecture column (the columns' names are the table's own, so
        none are grouped), with the row's value."""
        from nasforge.spaces._drawing import decision_strip

        pairs = zip(self.decisions(), self.check(arch).choices, strict=True)
        return decision_strip([(d.name, d.options[c]) for d, c in pairs], grouped=False)

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A row drawn uniformly (one ``rng.integers(size)``)."""
        return self.data.arch(self.name, int(rng.integers(len(self.data.texts))))

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """The rows that differ from ``arch`` in one column (decision by decision, options in
        order); for a row with none, the rows at the smallest distance (table order)."""
        row = self._row(arch)
        table = self.data.choices
        differ = table != table[row]
        distance = np.count_nonzero(differ, axis=1)
        distance[row] = 0
        ones = np.flatnonzero(distance == 1)
        if len(ones):
            changed = np.argmax(differ[ones], axis=1)
            option = table[ones, changed]
            order = ones[np.lexsort((option, changed))]
        else:
            others = distance[distance > 0]
            if not len(others):
                return []
            order = np.flatnonzero(distance == others.min())
        return [self.data.arch(self.name, int(i)) for i in order]

    @property
    def size(self) -> int:
        return len(self.data.texts)

    def __iter__(self) -> Iterator[Architecture]:
        return (self.data.arch(self.name, i) for i in range(len(self.data.texts)))

    def _row(self, arch: Architecture) -> int:
        self.check(arch)
        return self.data.row(arch.text)

    def __repr__(self) -> str:
        return f"TableSpace({self.data.source!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"params": self.params}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.params = state["params"]
        self.data = load(self.params)
