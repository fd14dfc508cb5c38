"""The graph capability: architectures as DAGs of operations, and back."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge import spaces
from nasforge.errors import InvalidArchitectureError, UnsupportedOperationError
from nasforge.spaces.graph import ArchitectureGraph, graph_spaces
from nasforge.spaces.nb201 import EDGES, GRAPH_ADJACENCY, OPS


def test_nb201_round_trip_on_a_sample():
    space = spaces.create("nb201")
    rng = np.random.default_rng(0)
    for _ in range(300):
        arch = space.sample(rng)
        graph = space.graph(arch)
        assert space.from_graph(graph) == arch
        assert graph.ops[1:-1] == tuple(OPS[op] for op in arch.choices)


def test_nb201_graph_wiring_follows_the_cell():
    """Operation node e+1 (edge i->j) feeds operation node f+1 (edge j->k), the input feeds
    the edges leaving node 0 and the edges into node 3 feed the output."""
    space = spaces.create("nb201")
    graph = space.graph(
        space.parse(
            "|skip_connect~0|+|none~0|nor_conv_1x1~1|"
            "+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
        )
    )
    a = graph.adjacency
    assert a.shape == (8, 8) and not np.any(np.tril(a))
    for e, (i, j) in enumerate(EDGES, start=1):
        assert a[0, e] == (i == 0)
        assert a[e, 7] == (j == 3)
        for f, (k, _) in enumerate(EDGES, start=1):
            assert a[e, f] == (j == k)
    assert graph.ops[0] == "input" and graph.ops[-1] == "output"
    assert set(graph.vocabulary) == {"input", "output", *OPS}
    assert not graph.adjacency.flags.writeable


def test_nb201_from_graph_refuses_graphs_that_are_no_cell():
    space = spaces.create("nb201")
    good = space.graph(space.from_choices([3, 3, 4, 1, 3, 1]))
    rewired = np.array(GRAPH_ADJACENCY)
    rewired[0, 7] = 1
    with pytest.raises(InvalidArchitectureError, match="wired"):
        space.from_graph(ArchitectureGraph.of(rewired, good.ops, good.vocabulary))
    swapped = ("nor_conv_3x3", *good.ops[1:-1], "output")
    with pytest.raises(InvalidArchitectureError, match="'input' at node 0"):
        space.from_graph(ArchitectureGraph.of(good.adjacency, swapped, good.vocabulary))
    with pytest.raises(InvalidArchitectureError, match="ArchitectureGraph"):
        space.from_graph(good.adjacency)  # type: ignore[arg-type]


def test_graph_checks_its_matrix():
    with pytest.raises(InvalidArchitectureError, match="upper-triangular"):
        ArchitectureGraph.of([[0, 0], [1, 0]], ["a", "b"], ["a", "b"])
    with pytest.raises(InvalidArchitectureError, match="0 and 1"):
        ArchitectureGraph.of([[0, 2], [0, 0]], ["a", "b"], ["a", "b"])
    with pytest.raises(InvalidArchitectureError, match="vocabulary"):
        ArchitectureGraph.of([[0, 1], [0, 0]], ["a", "c"], ["a", "b"])
    with pytest.raises(InvalidArchitectureError, match="2 x 2"):
        ArchitectureGraph.of([[0, 1, 0]], ["a", "b"], ["a", "b"])


def test_spaces_without_graphs_refuse_naming_those_with():
    assert "nb201" in graph_spaces()
    space = spaces.create("mobilenet")
    assert not space.supports("graph") and spaces.create("nb201").supports("graph")
    with pytest.raises(UnsupportedOperationError, match=r"graph\(\).*Spaces with graphs: .*nb201"):
        space.graph(space.sample(np.random.default_rng(0)))
    with pytest.raises(UnsupportedOperationError, match="from_graph"):
        space.from_graph(spaces.create("nb201").graph(spaces.create("nb201").from_index(0)))


@pytest.mark.parametrize("name", ["darts", "bats", "dass"])
def test_darts_cells_round_trip(name):
    space = spaces.create(name)
    rng = np.random.default_rng(1)
    for _ in range(100):
        arch = space.sample(rng)
        graph = space.graph(arch)
        assert graph.n_nodes == 30 and space.from_graph(graph) == arch
    assert "graph" in dir(space) and space.supports("graph")


def test_darts_graph_wiring_and_refusals():
    space = spaces.create("darts")
    arch = space.named("darts-v2")
    graph = space.graph(arch)
    a = np.array(graph.adjacency)
    # normal cell: node 3's first edge (graph node 5) reads c_{k-2}; every sum feeds concat
    assert graph.ops[5] in space.genotype_ops and a[0, 5] == 1 and a[5, 7] == 1
    assert [int(a[s, 14]) for s in (4, 7, 10, 13)] == [1, 1, 1, 1]
    assert not np.any(a[:15, 15:]) and not np.any(a[15:, :15])  # the two cells stand apart
    both = a.copy()
    both[1, 5] = 1  # an operation reading two nodes
    with pytest.raises(InvalidArchitectureError, match="reads nodes"):
        space.from_graph(ArchitectureGraph.of(both, graph.ops, graph.vocabulary))
    same = a.copy()
    same[:, 6] = 0
    same[int(np.flatnonzero(a[:, 5])[0]), 6] = 1  # node 3's two edges read the same input
    with pytest.raises(InvalidArchitectureError):
        space.from_graph(ArchitectureGraph.of(same, graph.ops, graph.vocabulary))
    extra = a.copy()
    extra[4, 14] = 0  # a sum that does not reach the output
    with pytest.raises(InvalidArchitectureError, match="wired"):
        space.from_graph(ArchitectureGraph.of(extra, graph.ops, graph.vocabulary))
