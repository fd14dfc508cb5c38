"""The NAS-Bench-201 space: conversions, sampling, mutation, neighbours, encodings, errors."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.errors import InvalidArchitectureError, UnknownNameError
from nasforge.spaces.nb201 import EDGES, OPS

BEST_C10 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)


def test_round_trip_string_tuple_index_for_every_cell(nb201):
    seen_text, seen_choices = set(), set()
    for index in range(nb201.size):
        arch = nb201.from_index(index)
        assert nb201.index(arch) == index
        assert nb201.parse(str(arch)) == arch
        assert nb201.from_choices(arch.choices) == arch
        seen_text.add(str(arch))
        seen_choices.add(arch.choices)
    assert len(seen_text) == len(seen_choices) == 15625 == nb201.size


def test_iteration_follows_benchmark_index(nb201):
    first = [a for _, a in zip(range(3), nb201, strict=False)]
    assert first == [nb201.from_index(i) for i in range(3)]


def test_known_index_and_text(nb201):
    arch = nb201.parse(BEST_C10)
    assert nb201.index(arch) == 6111
    assert arch.choices == (3, 3, 3, 1, 3, 2)
    assert str(arch) == BEST_C10
    # whitespace around the string is tolerated
    assert nb201.parse(f"  {BEST_C10}\n") == arch


def test_sample_is_uniform_and_seeded(nb201):
    a = [nb201.sample(np.random.default_rng(3)) for _ in range(5)]
    b = [nb201.sample(np.random.default_rng(3)) for _ in range(5)]
    assert a == b
    rng = np.random.default_rng(0)
    counts = np.zeros((6, 5))
    for _ in range(5000):
        counts[np.arange(6), nb201.sample(rng).choices] += 1
    assert np.all(np.abs(counts / 5000 - 0.2) < 0.03)


def test_mutate_changes_exactly_one_edge(nb201):
    rng = np.random.default_rng(1)
    arch = nb201.parse(BEST_C10)
    children = set()
    for _ in range(500):
        child = nb201.mutate(arch, rng)
        diff = [i for i in range(6) if child.choices[i] != arch.choices[i]]
        assert len(diff) == 1
        children.add(child)
    assert children == set(nb201.neighbours(arch))


def test_neighbours_are_the_24_one_edge_changes(nb201):
    arch = nb201.from_index(123)
    nbrs = nb201.neighbours(arch)
    assert len(nbrs) == len(set(nbrs)) == 24
    assert arch not in nbrs
    for n in nbrs:
        assert sum(a != b for a, b in zip(n.choices, arch.choices, strict=True)) == 1


def test_onehot_encoding(nb201):
    arch = nb201.parse(BEST_C10)
    x = nb201.encode(arch, "onehot")
    assert x.shape == (30,)
    assert x.reshape(6, 5).sum(axis=1).tolist() == [1] * 6
    assert x.reshape(6, 5).argmax(axis=1).tolist() == list(arch.choices)
    assert nb201.encode(arch, "ops").tolist() == list(arch.choices)
    with pytest.raises(UnknownNameError, match="onehot"):
        nb201.encode(arch, "path-encoding")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "expected 3 node groups"),
        (BEST_C10.replace("nor_conv_1x1~2", "conv_1x1~2"), "Did you mean 'nor_conv_1x1'"),
        (BEST_C10.replace("skip_connect~0", "skip_connect~1"), "must come from node 0"),
        (
            BEST_C10.replace("|nor_conv_3x3~0|+", "|nor_conv_3x3~0|none~0|+", 1),
            "node 1 must have 1",
        ),
        (BEST_C10.strip("|"), "must start and end with '|'"),
        (BEST_C10.replace("nor_conv_3x3~0", "nor_conv_3x3-0", 1), "operation~input"),
        ("", "must start and end"),
    ],
)
def test_malformed_strings_get_clear_errors(nb201, text, message):
    with pytest.raises(InvalidArchitectureError, match=message):
        nb201.parse(text)


def test_bad_choices_and_index(nb201):
    with pytest.raises(InvalidArchitectureError, match="6 operation indices"):
        nb201.from_choices((0, 1, 2))
    with pytest.raises(InvalidArchitectureError, match="6 operation indices"):
        nb201.from_choices((0, 1, 2, 3, 4, 5))
    with pytest.raises(InvalidArchitectureError, match=r"0\.\.15624"):
        nb201.from_index(15625)
    with pytest.raises(InvalidArchitectureError, match="integer"):
        nb201.from_index("7")  # type: ignore[arg-type]


def test_architecture_from_another_space_is_refused(nb201):
    from nasforge.architecture import Architecture

    alien = Architecture("darts", (0, 0, 0, 0, 0, 0), "x")
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'darts'"):
        nb201.neighbours(alien)


def test_edges_and_ops_constants():
    assert len(EDGES) == 6 and all(i < j for i, j in EDGES)
    assert OPS[0] == "none" and len(OPS) == 5
