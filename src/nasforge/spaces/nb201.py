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
from typing import Any

import numpy as np

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, unknown_name_message
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.spaces.graph import ArchitectureGraph
from nasforge.tabular.base import row_lookup

__all__ = [
    "EDGES",
    "GRAPH_ADJACENCY",
    "GRAPH_VOCABULARY",
    "N_PATHS",
    "OPS",
    "PATH_ROUTES",
    "NB201Space",
    "path_encoding",
]

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
    5 per edge), ``"ops"`` (the 6 operation indices) and ``"path"`` (84 indicators, one per
    possible input-to-output path; see :func:`path_encoding`).

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
    encodings = ("onehot", "ops", "path")

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

    def mutate(
        self, arch: Architecture, rng: np.random.Generator, *, rate: float | None = None
    ) -> Architecture:
        if rate is not None:  # each edge re-drawn with probability rate (decisions())
            return super().mutate(arch, rng, rate=rate)
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
        if kind == "path":
            return path_encoding(ops)
        onehot = np.zeros((N_EDGES, N_OPS))
        onehot[np.arange(N_EDGES), ops] = 1.0
        return onehot.ravel()

    def decisions(self) -> tuple[Decision, ...]:
        """Six decisions ``edge0``..``edge5`` (the edges of :data:`EDGES`) over :data:`OPS`."""
        return tuple(Decision(f"edge{i}", OPS) for i in range(N_EDGES))

    def canonical(self, arch: Architecture) -> Architecture:
        """The representative of the cells that compute the same function as ``arch``.

        See :mod:`nasforge.spaces._nb201_canonical` for the equivalences that are merged.
        """
        from nasforge.spaces._nb201_canonical import canonical_ops

        return self.from_choices(canonical_ops(self.check(arch).choices))

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """The cell as a graph: nodes 0 (input) to 3 (output) and the 6 edges of
        :data:`EDGES` with their operations, ``none`` included, in the order of the text.

        Example:
            >>> space = NB201Space()
            >>> cell = space.drawing(space.from_index(1))["cells"][0]
            >>> [(e["source"], e["target"], e["op"], e["param_free"]) for e in cell["edges"]][3]
            ('0', '3', 'skip_connect', True)
        """
        from nasforge.spaces import _drawing

        roles = ("input", "node", "node", "output")
        labels = ("input", "1", "2", "output")
        nodes = [_drawing.node(str(i), labels[i], roles[i]) for i in range(4)]
        pairs = zip(self.check(arch).choices, EDGES, strict=True)
        edges = [_drawing.edge(str(i), str(j), OPS[op]) for op, (i, j) in pairs]
        return _drawing.cells([("cell", nodes, edges)])

    def graph(self, arch: Architecture) -> ArchitectureGraph:
        """The cell with its operations on nodes, as NAS-Bench-201's graph generators and
        predictors take it (MetaD2A, DiffusionNAG): node 0 is the input, nodes 1..6 the
        operations of the edges of :data:`EDGES` in order, node 7 the output; an operation
        node reads the operations entering the edge's source (the input for source 0) and
        feeds those leaving its target (the output for target 3). The adjacency is the
        same for every cell (:data:`GRAPH_ADJACENCY`); only the operations vary.

        Example:
            >>> g = NB201Space().graph(NB201Space().from_index(1))
            >>> g.ops[:3], int(g.adjacency[1, 3]), NB201Space().from_graph(g).choices
            (('input', 'nor_conv_3x3', 'nor_conv_3x3'), 1, (3, 3, 4, 1, 3, 1))
        """
        ops = ("input", *(OPS[op] for op in self.check(arch).choices), "output")
        return ArchitectureGraph.of(GRAPH_ADJACENCY, ops, GRAPH_VOCABULARY)

    def from_graph(self, graph: ArchitectureGraph) -> Architecture:
        """The cell whose :meth:`graph` is ``graph``.

        Raises:
            InvalidArchitectureError: Not 8 nodes in NAS-Bench-201's wiring, or the input,
                the output or an operation not where the cell has them.
        """
        if not isinstance(graph, ArchitectureGraph):
            raise InvalidArchitectureError(
                f"from_graph() takes an ArchitectureGraph, got {type(graph).__name__}."
            )
        if graph.n_nodes != N_EDGES + 2 or not np.array_equal(graph.adjacency, GRAPH_ADJACENCY):
            raise InvalidArchitectureError(
                f"An NB201 cell is a graph of {N_EDGES + 2} nodes wired as "
                "NB201Space.graph() writes them (GRAPH_ADJACENCY); got another wiring of "
                f"{graph.n_nodes} nodes."
            )
        ends = (graph.ops[0], graph.ops[-1])
        middle = graph.ops[1:-1]
        if ends != ("input", "output") or any(op not in _OP_INDEX for op in middle):
            raise InvalidArchitectureError(
                f"An NB201 cell graph has 'input' at node 0, 'output' at node 7 and an "
                f"operation of {list(OPS)} at nodes 1..6; got {list(graph.ops)}."
            )
        return self.from_choices([_OP_INDEX[op] for op in middle])

    def build(
        self,
        arch: Architecture,
        num_classes: int = 10,
        channels: int = 16,
        cells_per_stage: int = 5,
        **kwargs: Any,
    ) -> Any:
        """The benchmark's network of ``arch`` (:class:`nasforge.ops.nb201.NB201Network`).

        With the defaults (16 channels, 5 cells per stage) its parameters, MACs and FLOPs equal
        the table's ``params_M``, ``macs_M`` and ``flops_M`` (``2 * macs_M``;
        ``benchmarks/nb201_params_flops.py``); smaller
        ``channels`` / ``cells_per_stage`` give EcoNAS-style reduced-cost proxies.

        Raises:
            InvalidConfigError: An unknown keyword, or a setting that leaves a layer empty.
        """
        if kwargs:
            raise InvalidConfigError(
                f"NB201Space.build() got unknown argument(s) {sorted(kwargs)}; it takes "
                "num_classes, channels, cells_per_stage."
            )
        from nasforge.ops.nb201 import NB201Network

        return NB201Network(
            self.check(arch).choices,
            num_classes=num_classes,
            channels=channels,
            cells_per_stage=cells_per_stage,
        )

    # -- model-side knowledge ----------------------------------------------------------------
    scale_keys = ("channels", "cells_per_stage")

    def presets(self) -> dict[str, dict[str, Any]]:
        """``paper`` and ``search``: the benchmark's network and NAS-Bench-201's search
        models (16 channels, 5 cells per stage); ``reduced``: 8 channels, 1 cell per stage,
        16x16 images, a tenth of the training images."""
        return {
            "paper": {"channels": 16, "cells_per_stage": 5},
            "search": {"channels": 16, "cells_per_stage": 5},
            "reduced": {
                "channels": 8,
                "cells_per_stage": 1,
                "resolution": 16,
                "data_fraction": 0.1,
            },
        }

    def supernet(self, **settings: Any) -> Any:
        """The NAS-Bench-201 search network
        (:class:`nasforge.ops.nb201_supernet.NB201Supernet`): ``num_classes``, ``channels``,
        ``cells_per_stage``, ``partial_channels``, ``track_running_stats``."""
        from nasforge.ops.nb201_supernet import NB201Supernet

        return NB201Supernet(space=self, **settings)

    @property
    def size(self) -> int:
        return SIZE

    def __iter__(self) -> Iterator[Architecture]:
        """The cells in benchmark index order."""
        for index in range(SIZE):
            yield self.from_index(index)


def _graph_adjacency() -> np.ndarray:
    n = N_EDGES + 2
    matrix = np.zeros((n, n), dtype=np.int8)
    for e, (source, target) in enumerate(EDGES, start=1):
        for f, (_, into) in enumerate(EDGES, start=1):
            matrix[f, e] |= into == source  # an operation entering the source feeds it
        matrix[0, e] = source == 0
        matrix[e, n - 1] = target == 3  # node 3 is the cell's output
    matrix.setflags(write=False)
    return matrix


#: The wiring of every cell's :meth:`NB201Space.graph` (8 x 8: input, 6 operations, output).
GRAPH_ADJACENCY: np.ndarray = _graph_adjacency()
#: The labels of the graph's nodes.
GRAPH_VOCABULARY: tuple[str, ...] = ("input", *OPS, "output")


#: The four routes from the input (node 0) to the output (node 3), as positions in
#: ``Architecture.choices``: 0->3, 0->1->3, 0->2->3 and 0->1->2->3.
PATH_ROUTES: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
#: Operations a path can be made of: every operation but ``none``, which cuts the edge.
_PATH_OPS = N_OPS - 1
#: Number of path features: 4 paths of one operation, 4**2 of two, 4**3 of three.
N_PATHS: int = sum(_PATH_OPS**length for length in (1, 2, 3))
_PATH_OFFSET = {1: 0, 2: _PATH_OPS, 3: _PATH_OPS + _PATH_OPS**2}


def path_encoding(choices: Sequence[int] | np.ndarray) -> np.ndarray:
    """The BANANAS path encoding of a cell: which input-to-output paths it contains.

    White, C., Neiswanger, W. and Savani, Y. "BANANAS: Bayesian Optimization with Neural
    Architectures for Neural Architecture Search." AAAI 2021, arXiv:1910.11858, Section 4
    (path encoding). A path is the sequence of operations met from the input to the output;
    the encoding holds one indicator per possible sequence. An NB201 cell has four routes
    from node 0 to node 3 (:data:`PATH_ROUTES`), of one, two, two and three edges; a route
    whose edges include ``none`` carries no signal and is not a path. With the 4 other
    operations there are ``4 + 4**2 + 4**3 = 84`` possible paths (:data:`N_PATHS`), so the
    vector has 84 entries: first the 4 one-operation paths, then the 16 two-operation paths,
    then the 64 three-operation paths, each block in lexicographic order of the operation
    indices (``skip_connect`` < ``nor_conv_1x1`` < ``nor_conv_3x3`` < ``avg_pool_3x3``, as in
    :data:`OPS`). The two two-edge routes share their features: two cells that differ only by
    which of them holds a sequence have the same encoding (as in the paper, the encoding is
    not one-to-one). Edges on no path, and cells without any path, encode as zeros.

    The reference implementations (naszilla's ``Cell201.encode_paths``, NASLib's
    ``encode_paths`` for NAS-Bench-201) count ``none`` as a fifth operation and always set
    the four routes' indicators, giving ``5 + 25 + 125 = 155`` features of which paths
    through ``none`` are some; nasforge leaves those out, as the paper's definition does.

    Args:
        choices: The 6 operation indices of a cell (``Architecture.choices``).

    Returns:
        A float vector of :data:`N_PATHS` zeros and ones.
    """
    encoding = np.zeros(N_PATHS)
    for route in PATH_ROUTES:
        ops = [int(choices[edge]) for edge in route]
        if 0 in ops:  # a none edge: no path along this route
            continue
        index = 0
        for op in ops:
            index = index * _PATH_OPS + (op - 1)
        encoding[_PATH_OFFSET[len(route)] + index] = 1.0
    return encoding


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
