"""The DARTS (NASNet-style) cell search space and its published genotypes.

Liu, H., Simonyan, K. and Yang, Y. "DARTS: Differentiable Architecture Search." ICLR 2019,
arXiv:1806.09055. The cell is the one of NASNet (Zoph et al., CVPR 2018, arXiv:1707.07012) as
DARTS restricts it: two input nodes (0: the output of the cell two back, 1: of the previous
cell), four intermediate nodes 2..5, each the sum of two operations applied to two *different*
earlier nodes, and the cell's output the concatenation of nodes 2..5. An architecture is a
*normal* cell (stride 1) and a *reduction* cell (stride 2 on the edges from nodes 0 and 1),
each repeated through the network (:mod:`nasforge.ops.darts`).

Operations
----------
DARTS searches over 8 operations (:data:`OPS`, the order of its ``PRIMITIVES``); the ``none``
(zero) operation only takes part in the continuous relaxation and is never kept in a derived
genotype, so a discrete architecture uses the other 7, :data:`GENOTYPE_OPS`, numbered 0..6::

    0 max_pool_3x3  1 avg_pool_3x3  2 skip_connect  3 sep_conv_3x3  4 sep_conv_5x5
    5 dil_conv_3x3  6 dil_conv_5x5

Choices
-------
``Architecture.choices`` holds 32 integers: for each cell (normal, then reduce), for each
intermediate node ``k = 0..3`` (node index ``k + 2``), its two edges, each as
``(input, op)``::

    choices[16 * cell + 4 * k + 2 * edge]     = input of that edge, in 0..k+1
    choices[16 * cell + 4 * k + 2 * edge + 1] = operation, index into GENOTYPE_OPS (0..6)

The two inputs of a node must differ (as in every DARTS-derived genotype, and in the random
search baseline below). The order of a node's two edges is kept as given, so a published
genotype reads back exactly; :meth:`DartsSpace.canonical` merges the orders.

Text
----
``str(arch)`` writes each cell as its nodes separated by ``|``, each node as its two edges
``operation~input`` separated by ``,``, the two cells as ``normal=...;reduce=...``. DARTS V2
begins::

    normal=sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0,sep_conv_3x3~1|...;reduce=...

:meth:`DartsSpace.parse` reads that form (spaces around the separators are allowed), and
also the ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
reduce=[...], reduce_concat=[2, 3, 4, 5])`` text of the reference implementations: flat
lists of 8 pairs (quark0/darts, PC-DARTS) or lists of 4 pairs of pairs (D-X-Y/AutoDL-Projects,
whose ``connectN=None, connects=None`` are accepted), with the concat lists (or
``range(2, 6)``) equal to nodes 2..5. ``repr(space.to_genotype(arch))`` writes that text.

Size
----
Node ``k`` has ``(k + 2)(k + 1)`` ordered pairs of different inputs and ``7**2`` operation
pairs, so a cell has ``2880 * 7**8 = 16,602,626,880`` choice tuples and the space
``(2880 * 7**8)**2 = 275,647,219,316,498,534,400`` (about 2.8e20, :data:`SIZE`). Counting a
node's two edges as an unordered pair gives ``(180 * 7**8)**2``, about 1.08e18;
:meth:`DartsSpace.canonical` also merges relabellings of the
intermediate nodes, which leaves 382,128,166 classes per cell and about 1.46e17 in all
(counted with Burnside's lemma over the 24 relabellings; the test suite checks the count on
the cell topologies).

Sampling and mutation
---------------------
:meth:`DartsSpace.sample` draws, for each cell and node, two different inputs uniformly
without replacement and two operations uniformly and independently, as the random search
baseline of Li, L. and Talwalkar, A. "Random Search and Reproducibility for Neural
Architecture Search." UAI 2019, arXiv:1902.07638 (``sample_arch`` in liamcli/randomNAS_release
``benchmarks/cnn/darts/darts_wrapper_discrete.py`` @14b86a49859b7c6fe38d1169abb64d0cc268c212)
does. That code draws the operations from all 8 ``PRIMITIVES`` of its DARTS copy, ``none``
included; nasforge draws them from the 7 of a genotype.
:meth:`DartsSpace.mutate` applies one of the two mutations of AmoebaNet (Real, E., Aggarwal,
A., Huang, Y. and Le, Q. V. "Regularized Evolution for Image Classifier Architecture Search."
AAAI 2019, arXiv:1802.01548, Section 2.3), chosen with equal probability: the *hidden state
mutation* picks a cell, a node and one of its two edges, and moves the edge to another input
(one the node does not already read; node 2 reads both cell inputs, so the nodes 3..5 are
picked); the *op mutation* picks a cell, a node and an edge and replaces the operation by
another one. AmoebaNet's third, the identity mutation, is left out: ``mutate`` always changes
the architecture. :meth:`DartsSpace.neighbours` lists all 120 single changes (96 operation
changes, 24 input changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import permutations
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    UnknownNameError,
)
from nasforge.spaces._darts_genotypes import (
    _EDGE_OFFSET,
    _EXAMPLE,
    _N_EDGES,
    _PER_CELL,
    CELLS,
    CONCAT,
    GENOTYPE_OPS,
    GENOTYPES,
    N_CHOICES,
    N_NODES,
    N_OPS,
    OPS,
    PUBLISHED_PARAMS_M,
    SIZE,
    Genotype,
    _as_ints,
    _check_concat,
    _check_inputs,
    _choices_from_pairs,
    _genotype,
    _op_legend,
    _pairs_of,
    _parse_classic,
    _parse_compact,
    _short,
    _text,
    genotype_drawing,
)
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.graph import ArchitectureGraph

if TYPE_CHECKING:
    from nasforge.ops.darts import GenotypeLike, NetworkCIFAR

__all__ = [
    "CELLS",
    "CONCAT",
    "GENOTYPES",
    "GENOTYPE_OPS",
    "OPS",
    "PUBLISHED_PARAMS_M",
    "SIZE",
    "DartsSpace",
    "Genotype",
]


@spaces.register("darts")
class DartsSpace(SearchSpace):
    """The DARTS cell space (see the module docstring for choices, text, size and moves).

    Encodings: ``"onehot"``, 196 values: for each cell, the 14 candidate edges of the DARTS
    supernet (node 2: inputs 0, 1; node 3: 0, 1, 2; ...) times the 7 operations, 1 where the
    genotype keeps that edge with that operation (the layout of DARTS' architecture weights
    without the ``none`` column). It does not depend on the order of a node's two edges.

    Example:
        >>> space = DartsSpace()
        >>> arch = space.named("darts-v2")
        >>> str(arch).split("|")[:2]
        ['normal=sep_conv_3x3~0,sep_conv_3x3~1', 'sep_conv_3x3~0,sep_conv_3x3~1']
        >>> arch.choices[:8]
        (0, 3, 1, 3, 0, 3, 1, 3)
        >>> space.parse(str(arch)) == arch
        True
        >>> len(space.neighbours(arch)), space.encode(arch).shape
        (120, (196,))
        >>> swapped = space.parse(str(arch).replace(
        ...     "sep_conv_3x3~0,sep_conv_3x3~1", "sep_conv_3x3~1,sep_conv_3x3~0", 1))
        >>> swapped == arch, space.canonical(swapped) == space.canonical(arch)
        (False, True)
    """

    name = "darts"
    encodings = ("onehot",)
    #: The operations a genotype holds, by index (a subclass with another number of
    #: operations sets its own; moves, encodings and genotypes read it).
    genotype_ops: tuple[str, ...] = GENOTYPE_OPS

    # -- construction ------------------------------------------------------------------------
    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = _as_ints(choices)
        if values is None or len(values) != N_CHOICES:
            raise InvalidArchitectureError(
                f"A DARTS architecture is {N_CHOICES} integers (for the normal then the reduce "
                "cell, for nodes 2..5, two (input, operation) pairs), got "
                f"{_short(choices)}."
            )
        for cell, name in enumerate(CELLS):
            for k in range(N_NODES):
                base = cell * _PER_CELL + 4 * k
                for edge in range(2):
                    op = values[base + 2 * edge + 1]
                    if not 0 <= op < N_OPS:
                        raise InvalidArchitectureError(
                            f"In the {name} cell, edge {edge} of node {k + 2} has operation "
                            f"index {op}; valid indices are 0..{N_OPS - 1} "
                            f"({_op_legend()})."
                        )
                _check_inputs(name, k, values[base], values[base + 2])
        return Architecture(self.name, values, _text(values))

    def parse(self, text: str) -> Architecture:
        """The architecture written as ``text``: the compact form of ``str(arch)`` or the
        classic ``Genotype(...)`` text (see the module docstring).

        Raises:
            InvalidArchitectureError: The text is malformed; the message says where.
        """
        if not isinstance(text, str):
            raise InvalidArchitectureError(
                f"Expected a DARTS architecture string like {_EXAMPLE!r}, got "
                f"{type(text).__name__}."
            )
        stripped = text.strip()
        try:
            if stripped.startswith("Genotype"):
                normal, reduce = _parse_classic(stripped)
                return self.from_choices(_choices_from_pairs(normal, reduce))
            return self.from_choices(_parse_compact(stripped))
        except InvalidArchitectureError as error:
            message = str(error)
            raise InvalidArchitectureError(
                f"In DARTS architecture {_short(text)}: {message[:1].lower()}{message[1:]}"
            ) from None

    def from_genotype(self, genotype: GenotypeLike) -> Architecture:
        """The architecture of a genotype object (this module's :class:`Genotype`, or the
        ``Genotype`` namedtuple of the DARTS reference code).

        Raises:
            InvalidArchitectureError: Its cells are not 4 nodes of 2 edges over the 7
                operations, or it does not concatenate exactly nodes 2..5.
        """
        fields = ("normal", "normal_concat", "reduce", "reduce_concat")
        missing = [field for field in fields if not hasattr(genotype, field)]
        if missing:
            raise InvalidArchitectureError(
                f"Expected a genotype with fields {', '.join(fields)}; {_short(genotype)} has "
                f"no {', '.join(missing)}."
            )
        try:
            for cell in CELLS:
                _check_concat(cell, getattr(genotype, f"{cell}_concat"))
            normal = _pairs_of("normal", genotype.normal)
            reduce = _pairs_of("reduce", genotype.reduce)
            return self.from_choices(_choices_from_pairs(normal, reduce))
        except InvalidArchitectureError as error:
            message = str(error)
            raise InvalidArchitectureError(
                f"In genotype {_short(genotype)}: {message[:1].lower()}{message[1:]}"
            ) from None

    def to_genotype(self, arch: Architecture) -> Genotype:
        """The genotype of ``arch`` in the reference implementation's form."""
        values = self.check(arch).choices
        cells = []
        for cell in range(len(CELLS)):
            part = values[cell * _PER_CELL : (cell + 1) * _PER_CELL]
            ops = self.genotype_ops
            cells.append([(ops[part[i + 1]], part[i]) for i in range(0, _PER_CELL, 2)])
        return _genotype(cells[0], cells[1])

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """The normal and the reduction cell as graphs (inputs ``c_{k-2}``, ``c_{k-1}``,
        nodes ``0``..``3``, output ``c_{k}``), with the operations of :meth:`to_genotype`."""
        return genotype_drawing(self.to_genotype(arch))

    def graph(self, arch: Architecture) -> ArchitectureGraph:
        """Both cells as one graph with operations on nodes (the normal cell's 15 nodes,
        then the reduction cell's; the cells are not joined, each repeats through the
        network): the cell inputs ``c_{k-2}`` and ``c_{k-1}``, then per intermediate node its
        two operations and a ``sum`` node, then the ``concat`` output. An operation reads
        the cell input or the ``sum`` its edge comes from and feeds its node's ``sum``;
        every ``sum`` feeds ``concat``. A node's two edges keep their order.

        Example:
            >>> space = DartsSpace()
            >>> g = space.graph(space.named("darts-v2"))
            >>> g.n_nodes, g.ops[:5], space.from_graph(g) == space.named("darts-v2")
            (30, ('c_{k-2}', 'c_{k-1}', 'sep_conv_3x3', 'sep_conv_3x3', 'sum'), True)
        """
        values = self.check(arch).choices
        size = _GRAPH_CELL * len(CELLS)
        adjacency = np.zeros((size, size), dtype=np.int8)
        labels: list[str] = []
        for cell in range(len(CELLS)):
            base = cell * _GRAPH_CELL
            labels += ["c_{k-2}", "c_{k-1}"]
            for k in range(N_NODES):
                for edge in range(2):
                    at = cell * _PER_CELL + 4 * k + 2 * edge
                    node = base + 2 + 3 * k + edge
                    adjacency[_graph_source(base, values[at]), node] = 1
                    adjacency[node, base + 4 + 3 * k] = 1
                    labels.append(self.genotype_ops[values[at + 1]])
                labels.append("sum")
                adjacency[base + 4 + 3 * k, base + _GRAPH_CELL - 1] = 1
            labels.append("concat")
        vocabulary = ("c_{k-2}", "c_{k-1}", *self.genotype_ops, "sum", "concat")
        return ArchitectureGraph.of(adjacency, labels, vocabulary)

    def from_graph(self, graph: ArchitectureGraph) -> Architecture:
        """The architecture whose :meth:`graph` is ``graph``.

        Raises:
            InvalidArchitectureError: Not two cells of 15 nodes wired and labelled as
                :meth:`graph` writes them (e.g. an operation reading two nodes, or a node
                whose two operations read the same input).
        """
        if not isinstance(graph, ArchitectureGraph):
            raise InvalidArchitectureError(
                f"from_graph() takes an ArchitectureGraph, got {type(graph).__name__}."
            )
        if graph.n_nodes != _GRAPH_CELL * len(CELLS):
            raise InvalidArchitectureError(
                f"A DARTS architecture is a graph of {_GRAPH_CELL * len(CELLS)} nodes (two "
                f"cells of {_GRAPH_CELL}), got {graph.n_nodes}."
            )
        choices: list[int] = []
        for cell, name in enumerate(CELLS):
            base = cell * _GRAPH_CELL
            inputs = {_graph_source(base, source): source for source in range(N_NODES + 1)}
            for k in range(N_NODES):
                for edge in range(2):
                    node = base + 2 + 3 * k + edge
                    read = np.flatnonzero(graph.adjacency[:, node]).tolist()
                    if len(read) != 1 or read[0] not in inputs:
                        raise InvalidArchitectureError(
                            f"In the {name} cell, operation node {node} of node {k + 2} must "
                            f"read one cell input or earlier sum node, reads nodes {read}."
                        )
                    if graph.ops[node] not in self.genotype_ops:
                        raise InvalidArchitectureError(
                            f"In the {name} cell, node {node} must be an operation of "
                            f"{list(self.genotype_ops)}, got {graph.ops[node]!r}."
                        )
                    choices += [inputs[read[0]], self.genotype_ops.index(graph.ops[node])]
        arch = self.from_choices(choices)
        if self.graph(arch) != graph:
            raise InvalidArchitectureError(
                "The graph is not wired or labelled as DartsSpace.graph() writes DARTS cells "
                "(inputs, operations, sum and concat nodes in their places)."
            )
        return arch

    def named(self, name: str) -> Architecture:
        """A published genotype by name: ``"darts-v1"``, ``"darts-v2"``, ``"pc-darts"``,
        ``"gdas"`` (see :data:`GENOTYPES`).

        Raises:
            UnknownNameError: ``name`` is not one of them.
        """
        if name not in GENOTYPES:
            raise UnknownNameError("DARTS genotype", name, GENOTYPES)
        return self.from_genotype(GENOTYPES[name])

    # -- the SearchSpace contract ----------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        values: list[int] = []
        for _cell in CELLS:
            for k in range(N_NODES):
                inputs = rng.choice(k + 2, size=2, replace=False)
                ops = rng.integers(len(self.genotype_ops), size=2)
                values += [int(inputs[0]), int(ops[0]), int(inputs[1]), int(ops[1])]
        return self.from_choices(values)

    def mutate(
        self, arch: Architecture, rng: np.random.Generator, *, rate: float | None = None
    ) -> Architecture:
        """A random neighbour (``rate=None``: one input or one operation changed), or, with a
        ``rate``, each node's pair of inputs re-drawn with probability ``rate`` and then each
        of its two operations (SPOS's mutation over this space's structure)."""
        values = list(self.check(arch).choices)
        if rate is not None:
            for node in range(len(CELLS) * N_NODES):
                k, base = node % N_NODES, 4 * node
                if rng.random() < rate:
                    inputs = rng.choice(k + 2, size=2, replace=False)
                    values[base], values[base + 2] = int(inputs[0]), int(inputs[1])
                for edge in range(2):
                    if rng.random() < rate:
                        values[base + 2 * edge + 1] = int(rng.integers(len(self.genotype_ops)))
            return self.from_choices(values)
        cell = int(rng.integers(len(CELLS)))
        if rng.random() < 0.5:  # hidden state mutation: move one edge to another input
            k = int(rng.integers(1, N_NODES))
            edge = int(rng.integers(2))
            base = cell * _PER_CELL + 4 * k
            used = (values[base], values[base + 2])
            options = [i for i in range(k + 2) if i not in used]
            values[base + 2 * edge] = options[int(rng.integers(len(options)))]
        else:  # op mutation: another operation on one edge
            k = int(rng.integers(N_NODES))
            edge = int(rng.integers(2))
            position = cell * _PER_CELL + 4 * k + 2 * edge + 1
            new = int(rng.integers(len(self.genotype_ops) - 1))
            values[position] = new if new < values[position] else new + 1
        return self.from_choices(values)

    def crossover(
        self, first: Architecture, second: Architecture, rng: np.random.Generator
    ) -> Architecture:
        """Each node (its two inputs and operations) from either parent, with equal
        probability: a node is the unit that keeps a cell valid."""
        a, b = self.check(first).choices, self.check(second).choices
        out: list[int] = []
        for start in range(0, len(a), 4):
            source = a if rng.random() < 0.5 else b
            out.extend(source[start : start + 4])
        return self.from_choices(out)

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """The 120 architectures one operation or one input away from ``arch``: for each cell,
        node and edge, first the other operations, then the other inputs, in increasing order.
        """
        values = self.check(arch).choices
        result = []
        for cell in range(len(CELLS)):
            for k in range(N_NODES):
                base = cell * _PER_CELL + 4 * k
                used = (values[base], values[base + 2])
                for edge in range(2):
                    position = base + 2 * edge
                    for op in range(len(self.genotype_ops)):
                        if op != values[position + 1]:
                            result.append(self._replace(values, position + 1, op))
                    for source in range(k + 2):
                        if source not in used:
                            result.append(self._replace(values, position, source))
        return result

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        self.check_encoding(kind)
        values = self.check(arch).choices
        onehot = np.zeros((len(CELLS), _N_EDGES, len(self.genotype_ops)))
        for cell in range(len(CELLS)):
            for k in range(N_NODES):
                base = cell * _PER_CELL + 4 * k
                for edge in range(2):
                    source, op = values[base + 2 * edge], values[base + 2 * edge + 1]
                    onehot[cell, _EDGE_OFFSET[k] + source, op] = 1.0
        return onehot.ravel()

    def canonical(self, arch: Architecture) -> Architecture:
        """One representative of the architectures that compute the same functions as ``arch``.

        Merged, in each cell separately:

        * the order of a node's two edges (the node is their sum); the edges are sorted by
          input;
        * relabellings of the intermediate nodes that keep every node after its inputs (nodes
          that do not read each other can trade places). The cell's output then concatenates
          the same tensors in another order; every consumer of a cell output (the next cells'
          1x1 preprocessing or FactorizedReduce, the auxiliary head, global pooling and the
          classifier) applies a channel-wise map and then a linear map over channels, which
          absorbs the permutation, so the network computes the same set of functions with the
          same initial distribution of weights, its weights permuted.

        The representative is the smallest choice tuple of the class. Not merged: different
        operations, even where they coincide for special weights; nodes computing the same
        expression (two modules, two sets of weights); anything across the two cells (the
        normal and the reduction cell play different roles); the layout of the network
        around the cells. Parameters and FLOPs are the same within a class.
        """
        values = self.check(arch).choices
        out: list[int] = []
        for cell in range(len(CELLS)):
            out += _canonical_cell(values[cell * _PER_CELL : (cell + 1) * _PER_CELL])
        return self.from_choices(out)

    def build(
        self,
        arch: Architecture,
        num_classes: int = 10,
        channels: int = 36,
        layers: int = 20,
        auxiliary: bool = True,
        drop_path_prob: float = 0.0,
        **kwargs: Any,
    ) -> NetworkCIFAR:
        """The DARTS evaluation network of ``arch`` for 32x32 images
        (:class:`nasforge.ops.darts.NetworkCIFAR`; DARTS trains 36 channels, 20 layers, with
        the auxiliary head, drop-path 0.2).

        Raises:
            InvalidConfigError: A stage would be empty (``layers < 5``), ``channels < 1``...
            InvalidConfigError: An unknown keyword argument.
        """
        if kwargs:
            raise InvalidConfigError(
                f"DartsSpace.build() got unexpected keyword argument(s) {sorted(kwargs)}; "
                "it takes num_classes, channels, layers, auxiliary, drop_path_prob."
            )
        from nasforge.ops.darts import NetworkCIFAR

        return NetworkCIFAR(
            self.to_genotype(arch),
            channels=channels,
            num_classes=num_classes,
            layers=layers,
            auxiliary=auxiliary,
            drop_path_prob=drop_path_prob,
        )

    # -- model-side knowledge ----------------------------------------------------------------
    scale_keys = ("channels", "layers")

    def presets(self) -> dict[str, dict[str, Any]]:
        """``paper``: DARTS's CIFAR-10 evaluation network (36 channels, 20 layers, auxiliary
        head); ``search``: its search network (16 channels, 8 layers); ``reduced``: 8
        channels, 5 layers, 16x16 images, a tenth of the training images."""
        return {
            "paper": {"channels": 36, "layers": 20, "auxiliary": True},
            "search": {"channels": 16, "layers": 8},
            "reduced": {"channels": 8, "layers": 5, "resolution": 16, "data_fraction": 0.1},
        }

    def recipe(self) -> Any:
        """DARTS's CIFAR-10 evaluation (Liu et al., ICLR 2019, Section 3.3): SGD 0.025,
        momentum 0.9, weight decay 3e-4, batch 96, 600 epochs, cutout 16, gradient clipping
        5, auxiliary weight 0.4, drop-path 0.2."""
        from nasforge.train.recipe import Recipe

        return Recipe(
            lr=0.025,
            nesterov=False,
            weight_decay=3e-4,
            epochs=600,
            batch_size=96,
            cutout=16,
            grad_clip=5.0,
            auxiliary_weight=0.4,
            drop_path_prob=0.2,
        )

    def supernet(self, **settings: Any) -> Any:
        """The DARTS search network (:class:`nasforge.ops.darts_supernet.DartsSupernet`):
        ``num_classes``, ``channels``, ``layers``, ``partial_channels``."""
        from nasforge.ops.darts_supernet import DartsSupernet

        return DartsSupernet(space=self, **settings)

    @property
    def size(self) -> int:
        return SIZE

    # -- helpers -------------------------------------------------------------------------------
    def _replace(self, values: tuple[int, ...], position: int, value: int) -> Architecture:
        return self.from_choices((*values[:position], value, *values[position + 1 :]))


#: Nodes of a cell in :meth:`DartsSpace.graph`: 2 inputs, 4 x (2 operations + sum), concat.
_GRAPH_CELL = 2 + 3 * N_NODES + 1


def _graph_source(base: int, source: int) -> int:
    """The graph node of input ``source`` (0, 1: the cell inputs; else the sum node of
    intermediate node ``source``) in the cell whose nodes start at ``base``."""
    return base + source if source < 2 else base + 4 + 3 * (source - 2)


def _canonical_cell(part: Sequence[int]) -> list[int]:
    """The smallest choice tuple of one cell over edge orders and node relabellings."""
    nodes = [((part[4 * k], part[4 * k + 1]), (part[4 * k + 2], part[4 * k + 3])) for k in range(4)]
    best: list[int] | None = None
    for order in permutations(range(N_NODES)):  # order[p]: the old node placed at position p
        position = {old: new for new, old in enumerate(order)}
        if any(
            source >= 2 and position[source - 2] >= position[k]
            for k in range(N_NODES)
            for source, _ in nodes[k]
        ):
            continue
        candidate: list[int] = []
        for old in order:
            edges = sorted(
                (source if source < 2 else position[source - 2] + 2, op)
                for source, op in nodes[old]
            )
            candidate += [edges[0][0], edges[0][1], edges[1][0], edges[1][1]]
        if best is None or candidate < best:
            best = candidate
    assert best is not None  # the identity relabelling is always valid
    return best
