"""The BANANAS path encoding of NB201 cells: 84 indicators, one per input-to-output path."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasforge.errors import InvalidArchitectureError, UnknownNameError
from nasforge.spaces.nb201 import EDGES, N_PATHS, OPS, PATH_ROUTES

NONE, SKIP, C1, C3, POOL = range(5)


def paths_of(choices: tuple[int, ...]) -> set[tuple[int, ...]]:
    """Every operation sequence from node 0 to node 3, found by walking the DAG."""
    found: set[tuple[int, ...]] = set()

    def walk(node: int, ops: tuple[int, ...]) -> None:
        if node == 3:
            found.add(ops)
            return
        for edge, (src, dst) in enumerate(EDGES):
            if src == node and choices[edge] != NONE:
                walk(dst, (*ops, choices[edge]))

    walk(0, ())
    return found


def feature(ops: tuple[int, ...]) -> int:
    """Position of a path in the encoding: blocks by length, then base-4 digits op - 1."""
    offset = {1: 0, 2: 4, 3: 4 + 16}[len(ops)]
    return offset + sum((op - 1) * 4 ** (len(ops) - 1 - i) for i, op in enumerate(ops))


def test_84_features_four_one_edge_sixteen_two_edge_sixty_four_three_edge_paths(nb201):
    assert N_PATHS == 4 + 4**2 + 4**3 == 84
    assert "path" in nb201.encodings
    assert nb201.encode(nb201.sample(np.random.default_rng(0)), "path").shape == (84,)


def test_routes_are_the_four_ways_from_input_to_output():
    for route in PATH_ROUTES:
        nodes = [EDGES[route[0]][0]] + [EDGES[e][1] for e in route]
        assert nodes[0] == 0 and nodes[-1] == 3
        assert all(EDGES[a][1] == EDGES[b][0] for a, b in itertools.pairwise(route))
    assert len(PATH_ROUTES) == 4


def test_known_cell(nb201):
    # the cifar10 optimum: 0->3 skip, 0->1->3 conv3 conv3, 0->2->3 conv3 conv1,
    # 0->1->2->3 conv3 conv3 conv1
    arch = nb201.from_index(6111)
    assert arch.choices == (C3, C3, C3, SKIP, C3, C1)
    code = nb201.encode(arch, "path")
    expected = {feature((SKIP,)), feature((C3, C3)), feature((C3, C1)), feature((C3, C3, C1))}
    assert set(np.flatnonzero(code)) == expected == {0, 14, 13, 61}
    assert set(np.unique(code)) == {0.0, 1.0}


def test_none_cuts_paths(nb201):
    assert not nb201.encode(nb201.from_choices((NONE,) * 6), "path").any()
    full = nb201.from_choices((C3, C3, C3, SKIP, C3, C1))
    cut = nb201.from_choices((C3, C3, C3, SKIP, NONE, C1))  # 1->3 is none
    diff = nb201.encode(full, "path") - nb201.encode(cut, "path")
    assert set(np.flatnonzero(diff)) == {feature((C3, C3))}


def test_edges_on_no_path_do_not_matter(nb201):
    # 2->3 is none: edges 0->2 and 1->2 lead nowhere, whatever they carry
    codes = {
        tuple(nb201.encode(nb201.from_choices((C3, a, b, SKIP, C1, NONE)), "path"))
        for a in range(5)
        for b in range(5)
    }
    assert len(codes) == 1


def test_two_routes_with_the_same_operations_share_one_feature(nb201):
    arch = nb201.from_choices((C3, C3, SKIP, POOL, C1, C1))  # 0->1->3 == 0->2->3 == conv3 conv1
    code = nb201.encode(arch, "path")
    assert code[feature((C3, C1))] == 1
    assert code.sum() == 3  # pool, conv3-conv1, conv3-skip-conv1


def test_matches_a_walk_over_the_dag_for_every_cell(nb201):
    hit = np.zeros(N_PATHS)
    for arch in nb201:
        code = nb201.encode(arch, "path")
        expected = {feature(ops) for ops in paths_of(arch.choices)}
        assert set(np.flatnonzero(code)) == expected, arch.text
        hit += code
    assert np.all(hit > 0), "every one of the 84 paths occurs in some cell"


def test_errors(nb201):
    with pytest.raises(UnknownNameError, match="path"):
        nb201.encode(nb201.from_index(0), "paths")
    other = nb201.from_index(0)
    foreign = type(other)("darts", other.choices, other.text)
    with pytest.raises(InvalidArchitectureError):
        nb201.encode(foreign, "path")
    assert OPS[NONE] == "none"
