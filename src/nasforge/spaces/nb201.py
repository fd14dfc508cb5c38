"""The NAS-Bench-201 cell search space.

Dong, X. and Yang, Y. "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture
Search." ICLR 2020, arXiv:2001.00326. The same space is the topology search space (``tss``) of
NATS-Bench (Dong et al., TPAMI 2021, arXiv:2009.00437).

A cell is a DAG over 4 nodes (0 is the input, 3 the output); each of its 6 edges ``i -> j``
(``i < j``) carries one of 5 operations, so the space holds 5**6 = 15,625 cells. nasforge
writes a cell in the benchmark's canonical text::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

whose three groups list the incoming edges of nodes 1, 2 and 3 (``op~i`` is the edge from node
``i``). ``Architecture.choices`` holds the 6 operation indices in the same edge order:
``(0->1, 0->2, 1->2, 0->3, 1->3, 2->3)``, with operations numbered as in :data:`OPS`. The
benchmark's own index (0..15,624, the order of its release files) is available through
:meth:`NB201Space.index` and :meth:`NB201Space.from_index`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import numpy as np

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, unknown_name_message
from nasforge.spaces.base import SearchSpace
from nasforge.tabular.base import row_lookup

__all__ = ["EDGES", "OPS", "NB201Space"]

#: Operation names, in the order of the benchmark's search space definition.
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The 6 edges ``(from, to)`` in the order of ``Architecture.choices`` and of the text.
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
N_OPS = len(OPS)
N_EDGES = len(EDGES)
SIZE: int = N_OPS**N_EDGES
_OP_INDEX = {name: i for i, name in enumerate(OPS)}
_EDGE_RE = re.compile(r"^([A-Za-z0-9_]+)~(\d+)$")


def _code(choices: Sequence[int]) -> int:
    """Position of a cell in the lexicographic order of its op tuple."""
    code = 0
    for op in choices:
        code = code * N_OPS + op
    return code


@spaces.register("nb201")
class NB201Space(SearchSpace):
    """The 15,625 cells of NAS-Bench-201 (see the module docstring for the encoding).

    ``mutate`` changes the operation of one edge to another operation, chosen uniformly;
    ``neighbours`` lists all 24 such cells. Encodings: ``"onehot"`` (30 values, one block of
    5 per edge) and ``"ops"`` (the 6 operation indices).

    Example:
        >>> space = NB201Space()
        >>> text = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
        >>> text += "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
        >>> arch = space.parse(text)
        >>> arch.choices
        (3, 3, 4, 1, 3, 1)
        >>> space.index(arch)
        1
        >>> len(space.neighbours(arch))
        24
    """

    name = "nb201"
    encodings = ("onehot", "ops")

    # -- construction ------------------------------------------------------------------------
    def from_choices(self, choices: Sequence[int]) -> Architecture:
        try:
            ops = tuple(int(c) for c in choices)
        except (TypeError, ValueError):
            raise InvalidArchitectureError(
                f"An NB201 cell is 6 operation indices in 0..4, got {choices!r}."
            ) from None
        if len(ops) != N_EDGES or any(not 0 <= op < N_OPS for op in ops):
            raise InvalidArchitectureError(
                f"An NB201 cell is 6 operation indices in 0..4 (edges {_edge_names()}; "
                f"operations {', '.join(f'{i}={n}' for i, n in enumerate(OPS))}), got {choices!r}."
            )
        return Architecture(self.name, ops, _text(ops))

    def parse(self, text: str) -> Architecture:
        if not isinstance(text, str):
            raise InvalidArchitectureError(
                f"Expected an NB201 cell string like {_EXAMPLE!r}, got {type(text).__name__}."
            )
        stripped = text.strip()
        if not (stripped.startswith("|") and stripped.endswith("|")) or len(stripped) < 2:
            raise InvalidArchitectureError(
                f"Malformed NB201 cell string {text!r}: it must start and end with '|', "
                f"like {_EXAMPLE!r}."
            )
        groups = stripped[1:-1].split("|+|")
        if len(groups) != 3:
            raise InvalidArchitectureError(
                f"Malformed NB201 cell string {text!r}: expected 3 node groups separated by "
                f"'+' (nodes 1, 2 and 3), found {len(groups)}. Example: {_EXAMPLE!r}."
            )
        ops: list[int] = []
        for node, group in enumerate(groups, start=1):
            edges = group.split("|")
            if len(edges) != node:
                raise InvalidArchitectureError(
                    f"Malformed NB201 cell string {text!r}: node {node} must have {node} "
                    f"incoming edge(s) (from nodes 0..{node - 1}), found {len(edges)} in "
                    f"{'|' + group + '|'!r}."
                )
            for source, edge in enumerate(edges):
                match = _EDGE_RE.match(edge.strip())
                if match is None:
                    raise InvalidArchitectureError(
                        f"Malformed edge {edge!r} in NB201 cell string {text!r}: write "
                        f"'operation~input', e.g. 'nor_conv_3x3~{source}'."
                    )
                op_name, origin = match.group(1), int(match.group(2))
                if op_name not in _OP_INDEX:
                    raise InvalidArchitectureError(
                        f"In NB201 cell string {text!r}: "
                        + unknown_name_message("operation", op_name, OPS)
                    )
                if origin != source:
                    raise InvalidArchitectureError(
                        f"In NB201 cell string {text!r}: edge {edge!r} of node {node} must "
                        f"come from node {source} (write '{op_name}~{source}'); the edges of "
                        f"node {node} are listed in the order of their input nodes 0..{node - 1}."
                    )
                ops.append(_OP_INDEX[op_name])
        # text order is (0->1), (0->2, 1->2), (0->3, 1->3, 2->3) == EDGES
        return self.from_choices(ops)

    def from_index(self, index: int) -> Architecture:
        """The cell at position ``index`` (0..15,624) of the benchmark's release files."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InvalidArchitectureError(f"An NB201 index is an integer, got {index!r}.")
        if not 0 <= index < SIZE:
            raise InvalidArchitectureError(
                f"NB201 index {index} is out of range; valid indices are 0..{SIZE - 1}."
            )
        code = int(row_lookup("nb201", N_OPS)[0][index])
        return self.from_choices(_decode(code))

    def index(self, arch: Architecture) -> int:
        """The benchmark index of ``arch`` (its row in the NAS-Bench-201 release)."""
        return int(row_lookup("nb201", N_OPS)[1][_code(self.check(arch).choices)])

    # -- the SearchSpace contract ----------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        ops = rng.integers(N_OPS, size=N_EDGES)
        return self.from_choices(ops.tolist())

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        ops = list(self.check(arch).choices)
        edge = int(rng.integers(N_EDGES))
        new = int(rng.integers(N_OPS - 1))
        ops[edge] = new if new < ops[edge] else new + 1
        return self.from_choices(ops)

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        ops = self.check(arch).choices
        result = []
        for edge in range(N_EDGES):
            for op in range(N_OPS):
                if op != ops[edge]:
                    result.append(self.from_choices((*ops[:edge], op, *ops[edge + 1 :])))
        return result

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        self.check_encoding(kind)
        ops = np.asarray(self.check(arch).choices)
        if kind == "ops":
            return ops.astype(np.float64)
        onehot = np.zeros((N_EDGES, N_OPS))
        onehot[np.arange(N_EDGES), ops] = 1.0
        return onehot.ravel()

    def canonical(self, arch: Architecture) -> Architecture:
        """The representative of the cells that compute the same function as ``arch``.

        See :mod:`nasforge.spaces._nb201_canonical` for the equivalences that are merged.
        """
        from nasforge.spaces._nb201_canonical import canonical_ops

        return self.from_choices(canonical_ops(self.check(arch).choices))

    @property
    def size(self) -> int:
        return SIZE

    def __iter__(self) -> Iterator[Architecture]:
        """The cells in benchmark index order."""
        for index in range(SIZE):
            yield self.from_index(index)


def _decode(code: int) -> tuple[int, ...]:
    ops = []
    for _ in range(N_EDGES):
        code, op = divmod(code, N_OPS)
        ops.append(op)
    return tuple(reversed(ops))


def _text(ops: Sequence[int]) -> str:
    names = [f"{OPS[op]}~{src}" for op, (src, _) in zip(ops, EDGES, strict=True)]
    return f"|{names[0]}|+|{names[1]}|{names[2]}|+|{names[3]}|{names[4]}|{names[5]}|"


def _edge_names() -> str:
    return ", ".join(f"{i}->{j}" for i, j in EDGES)


_EXAMPLE = _text((3, 3, 4, 1, 3, 1))
