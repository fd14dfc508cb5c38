"""Architectures as directed acyclic graphs: the ``graph`` capability of a space.

A space that has it writes an architecture as an :class:`ArchitectureGraph`
(:meth:`SearchSpace.graph <nasforge.spaces.base.SearchSpace.graph>`) and reads one back
(:meth:`SearchSpace.from_graph <nasforge.spaces.base.SearchSpace.from_graph>`); graph
generators such as the ``diffusion-nag`` strategy work on these graphs. Operations sit on the
nodes (the encoding of NAS-Bench-101 and of the graph generators that followed it, e.g.
DiffusionNAG, An et al., ICLR 2024, arXiv:2305.16943): node ``i`` applies ``ops[i]`` to the
sum of its predecessors, and ``adjacency[i, j] = 1`` feeds node ``i`` into node ``j``. Nodes
are in a topological order, so the adjacency is strictly upper-triangular.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import InvalidArchitectureError

if TYPE_CHECKING:
    from nasforge.spaces.base import SearchSpace

__all__ = ["ArchitectureGraph", "graph_spaces"]


@dataclass(frozen=True, eq=False)
class ArchitectureGraph:
    """A directed acyclic graph with an operation on every node.

    Attributes:
        adjacency: ``n x n`` read-only array of 0/1 (``int8``), strictly upper-triangular:
            ``adjacency[i, j] = 1`` when node ``i`` feeds node ``j``.
        ops: The label of each node, one of ``vocabulary`` (``"input"`` and ``"output"``
            for the graph's ends, operation names for the others).
        vocabulary: Every label a node of the space's graphs can carry, in a fixed order
            (the columns of :meth:`onehot`).

    Example:
        >>> g = ArchitectureGraph.of([[0, 1], [0, 0]], ["input", "output"], ["input", "output"])
        >>> g.onehot().tolist(), g == ArchitectureGraph.of(g.adjacency, g.ops, g.vocabulary)
        ([[1.0, 0.0], [0.0, 1.0]], True)
    """

    adjacency: np.ndarray
    ops: tuple[str, ...]
    vocabulary: tuple[str, ...]

    @classmethod
    def of(cls, adjacency: Any, ops: Sequence[str], vocabulary: Sequence[str]) -> ArchitectureGraph:
        """A graph from any 0/1 square matrix and labels, checked.

        Raises:
            InvalidArchitectureError: The matrix is not square, not 0/1, not strictly
                upper-triangular, or of another size than ``ops``; a label is not in
                ``vocabulary``.
        """
        try:
            matrix = np.asarray(adjacency, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArchitectureError(
                f"A graph's adjacency is a square 0/1 matrix, got {type(adjacency).__name__}."
            ) from None
        n = len(ops)
        if matrix.shape != (n, n):
            raise InvalidArchitectureError(
                f"A graph of {n} node labels needs a {n} x {n} adjacency matrix, got shape "
                f"{matrix.shape}."
            )
        if not np.all((matrix == 0) | (matrix == 1)):
            raise InvalidArchitectureError("A graph's adjacency holds only 0 and 1.")
        if np.any(np.tril(matrix)):
            raise InvalidArchitectureError(
                "A graph's adjacency must be strictly upper-triangular (nodes in topological "
                "order, no self-loop)."
            )
        unknown = sorted({str(op) for op in ops} - set(vocabulary))
        if unknown:
            raise InvalidArchitectureError(
                f"Node label(s) {unknown} are not in the vocabulary {list(vocabulary)}."
            )
        frozen = matrix.astype(np.int8)
        frozen.setflags(write=False)
        return cls(frozen, tuple(str(op) for op in ops), tuple(vocabulary))

    @property
    def n_nodes(self) -> int:
        return len(self.ops)

    def onehot(self) -> np.ndarray:
        """The ``n x len(vocabulary)`` node-type matrix: row ``i`` is 1 at ``ops[i]``."""
        index = {label: i for i, label in enumerate(self.vocabulary)}
        out = np.zeros((self.n_nodes, len(self.vocabulary)))
        out[np.arange(self.n_nodes), [index[op] for op in self.ops]] = 1.0
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArchitectureGraph):
            return NotImplemented
        return (
            self.ops == other.ops
            and self.vocabulary == other.vocabulary
            and np.array_equal(self.adjacency, other.adjacency)
        )

    def __hash__(self) -> int:
        return hash((self.ops, self.vocabulary, self.adjacency.tobytes()))


def graph_spaces() -> list[str]:
    """Names of the registered spaces that write their architectures as graphs (sorted)."""
    from nasforge import spaces
    from nasforge.spaces.base import SearchSpace

    return sorted(
        name
        for name in spaces.names()
        if getattr(spaces.get(name), "graph", SearchSpace.graph) is not SearchSpace.graph
    )


def graph_refusal(space: SearchSpace, asker: str | None = None) -> str:
    """The one-line message refusing ``asker`` (``None``: the space's own ``graph()``) on
    ``space``, which has no graphs; it names the capability and the spaces that have it."""
    what = f"{asker} needs the capability graph(), and s" if asker else "S"
    return (
        f"{what}earch space {space.name!r} does not write its architectures as directed "
        f"graphs of operations (graph(), from_graph()). Spaces with graphs: "
        f"{', '.join(graph_spaces())}."
    )
