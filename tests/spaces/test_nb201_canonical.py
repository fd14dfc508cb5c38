"""Behaviour of the functional canonical form of NAS-Bench-201 cells.

Cells are op-index tuples in the edge order (0->1, 0->2, 1->2, 0->3, 1->3, 2->3) with
0=none, 1=skip_connect, 2=nor_conv_1x1, 3=nor_conv_3x3, 4=avg_pool_3x3.
"""

from __future__ import annotations

import itertools

import pytest

from nasforge.spaces._nb201_canonical import (
    NUM_CELLS,
    all_cells,
    canonical_ops,
    count_classes,
    count_paper_classes,
    functional_form,
    paper_unique_ops,
    paper_unique_str,
)

NONE, SKIP, CONV1, CONV3, POOL = range(5)
ZERO_CELL = (NONE,) * 6
ALL_CELLS = list(all_cells())
LINEAR = (NONE, SKIP, POOL)  # parameter-free ops: exactly zero on a zero input
CONVS = (CONV1, CONV3)


def test_space_has_all_cells_once() -> None:
    assert len(ALL_CELLS) == NUM_CELLS == 15_625
    assert len(set(ALL_CELLS)) == NUM_CELLS


@pytest.mark.parametrize("keep_bn_bias", [True, False])
def test_representative_is_a_valid_fixed_point_and_smallest(keep_bn_bias: bool) -> None:
    for cell in ALL_CELLS:
        rep = canonical_ops(cell, keep_bn_bias=keep_bn_bias)
        assert len(rep) == 6
        assert all(NONE <= op <= POOL for op in rep)
        assert canonical_ops(rep, keep_bn_bias=keep_bn_bias) == rep
        assert rep <= cell


@pytest.mark.parametrize("keep_bn_bias", [True, False])
def test_representative_computes_the_same_form(keep_bn_bias: bool) -> None:
    for cell in ALL_CELLS[::7]:
        rep = canonical_ops(cell, keep_bn_bias=keep_bn_bias)
        form = functional_form(cell, keep_bn_bias=keep_bn_bias)
        assert functional_form(rep, keep_bn_bias=keep_bn_bias) == form


def test_paper_representative_is_a_valid_fixed_point() -> None:
    for cell in ALL_CELLS:
        rep = paper_unique_ops(cell)
        assert paper_unique_ops(rep) == rep
        assert rep <= cell
    for cell in ALL_CELLS[::7]:
        assert paper_unique_str(paper_unique_ops(cell)) == paper_unique_str(cell)


def test_class_counts() -> None:
    assert count_classes() == 5234
    assert count_classes(keep_bn_bias=True) == 5234
    assert count_classes(keep_bn_bias=False) == 5044
    # NATS-Bench's get_unique_str: "6.5K" unique architectures in the NATS-Bench paper.
    assert count_paper_classes() == 6466


def test_nodes_1_and_2_swap_when_not_connected() -> None:
    for e01, e02, e03, e13, e23 in itertools.product(range(5), repeat=5):
        cell = (e01, e02, NONE, e03, e13, e23)
        swapped = (e02, e01, NONE, e03, e23, e13)
        assert canonical_ops(cell) == canonical_ops(swapped)
        assert canonical_ops(cell, keep_bn_bias=False) == canonical_ops(swapped, keep_bn_bias=False)


def test_parameter_free_edges_leaving_a_node_without_input_are_dead() -> None:
    # Node 1 receives nothing (0->1 is none): skip and pooling of it are zero.
    for e02, e03, e23 in itertools.product(range(5), repeat=3):
        base = canonical_ops((NONE, e02, NONE, e03, NONE, e23))
        for e12, e13 in itertools.product(LINEAR, repeat=2):
            assert canonical_ops((NONE, e02, e12, e03, e13, e23)) == base


def test_conv_of_a_node_without_input_is_batchnorm_shift() -> None:
    x_only = (NONE, NONE, NONE, SKIP, NONE, NONE)
    x_plus_shift_1x1 = (NONE, NONE, NONE, SKIP, CONV1, NONE)
    x_plus_shift_3x3 = (NONE, NONE, NONE, SKIP, CONV3, NONE)
    # Exact (default): conv -> BN of zeros is BN's learned shift, whatever the kernel size.
    assert canonical_ops(x_plus_shift_1x1) == canonical_ops(x_plus_shift_3x3)
    assert canonical_ops(x_plus_shift_1x1) != canonical_ops(x_only)
    # NAS-Bench-201's convention: conv of zeros is zero.
    assert canonical_ops(x_plus_shift_3x3, keep_bn_bias=False) == x_only
    for e02, e03, e23 in itertools.product(range(5), repeat=3):
        base = canonical_ops((NONE, e02, NONE, e03, NONE, e23), keep_bn_bias=False)
        for e12, e13 in itertools.product(range(5), repeat=2):
            cell = (NONE, e02, e12, e03, e13, e23)
            assert canonical_ops(cell, keep_bn_bias=False) == base


def test_edges_that_cannot_reach_the_output_are_dead() -> None:
    # 2->3 is none: whatever flows into node 2 is never used.
    for e01, e03, e13 in itertools.product(range(5), repeat=3):
        base = canonical_ops((e01, NONE, NONE, e03, e13, NONE))
        for e02, e12 in itertools.product(range(5), repeat=2):
            assert canonical_ops((e01, e02, e12, e03, e13, NONE)) == base


@pytest.mark.parametrize("keep_bn_bias", [True, False])
def test_cells_with_no_path_to_the_output_form_one_class(keep_bn_bias: bool) -> None:
    for e01, e02, e12 in itertools.product(range(5), repeat=3):
        cell = (e01, e02, e12, NONE, NONE, NONE)
        assert canonical_ops(cell, keep_bn_bias=keep_bn_bias) == ZERO_CELL
    # Paths that exist but carry only zeros: node 1 and node 2 receive nothing.
    for e12, e13, e23 in itertools.product(LINEAR, repeat=3):
        assert canonical_ops((NONE, NONE, e12, NONE, e13, e23)) == ZERO_CELL
    zero_conv_chain = (NONE, NONE, CONV3, NONE, CONV1, CONV3)
    assert canonical_ops(zero_conv_chain, keep_bn_bias=False) == ZERO_CELL
    assert canonical_ops(zero_conv_chain, keep_bn_bias=True) != ZERO_CELL


def test_pooling_distributes_over_a_sum() -> None:
    # pool(x + conv(x)) == pool(x) + pool(conv(x)), same single convolution.
    pooled_sum = (CONV3, SKIP, SKIP, NONE, NONE, POOL)
    sum_of_pooled = (CONV3, NONE, POOL, POOL, NONE, SKIP)
    assert canonical_ops(pooled_sum) == canonical_ops(sum_of_pooled)
    assert paper_unique_ops(pooled_sum) != paper_unique_ops(sum_of_pooled)


def test_one_shared_conv_is_not_two_independent_convs() -> None:
    shared = (CONV1, NONE, SKIP, NONE, SKIP, SKIP)  # 2 * c(x), one convolution
    independent = (NONE, CONV1, NONE, CONV1, NONE, SKIP)  # c_a(x) + c_b(x)
    assert canonical_ops(shared) == shared
    assert canonical_ops(shared) != canonical_ops(independent)
    assert functional_form(shared)[0] != ()
    assert paper_unique_ops(shared) == paper_unique_ops(independent)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((CONV3, 0, 0, 0, SKIP, 0), (CONV1, 0, 0, 0, SKIP, 0)),  # conv3x3 vs conv1x1
        ((0, 0, 0, POOL, 0, 0), (0, 0, 0, SKIP, 0, 0)),  # pool(x) vs x
        ((SKIP, 0, 0, SKIP, SKIP, 0), (0, 0, 0, SKIP, 0, 0)),  # 2x vs x
        ((CONV3, 0, 0, CONV3, SKIP, 0), (CONV3, 0, 0, 0, SKIP, 0)),  # two convs vs one
        ((CONV3, 0, 0, 0, POOL, 0), (POOL, 0, 0, 0, CONV3, 0)),  # pool(c(x)) vs c(pool(x))
        ((POOL, 0, 0, 0, POOL, 0), (0, 0, 0, POOL, 0, 0)),  # pool(pool(x)) vs pool(x)
        ((0, 0, CONV1, 0, 0, CONV1), (0, 0, 0, 0, 0, CONV1)),  # c(shift) vs shift
        ((0, 0, 0, SKIP, CONV3, CONV3), (0, 0, 0, SKIP, CONV3, 0)),  # two shifts vs one
    ],
)
def test_different_functions_stay_apart(first: tuple[int, ...], second: tuple[int, ...]) -> None:
    assert canonical_ops(first) != canonical_ops(second)
    assert functional_form(first) != functional_form(second)


def test_paper_rule_texts() -> None:
    assert paper_unique_str(ZERO_CELL) == "#+#+#"
    assert paper_unique_str((CONV3, 0, 0, 0, POOL, 0)) == "#+#+((0)@nor_conv_3x3)@avg_pool_3x3"
    # Both compute x; the paper rule keeps zero terms, so their texts differ.
    direct, through_node_2 = (0, 0, 0, SKIP, 0, 0), (0, SKIP, 0, 0, 0, SKIP)
    assert paper_unique_str(direct) == "#+#+0"
    assert paper_unique_str(through_node_2) == "#+#+#+0"
    assert canonical_ops(direct) == canonical_ops(through_node_2) == direct


def test_paper_merges_that_we_split_are_all_shared_convs() -> None:
    # Apart from the shared node-1 convolution, every merge of the paper rule is also ours
    # (with its convention that conv of zeros is zero).
    classes: dict[tuple[int, ...], set[tuple[int, ...]]] = {}
    for cell in ALL_CELLS:
        ours = canonical_ops(cell, keep_bn_bias=False)
        classes.setdefault(paper_unique_ops(cell), set()).add(ours)
        if ours != canonical_ops(paper_unique_ops(cell), keep_bn_bias=False):
            forms = (
                functional_form(cell, keep_bn_bias=False),
                functional_form(paper_unique_ops(cell), keep_bn_bias=False),
            )
            assert any(shared != () for shared, _ in forms)
    assert sum(len(ours) > 1 for ours in classes.values()) == 430


@pytest.mark.parametrize(
    "bad",
    [(0, 0, 0, 0, 0), (0, 0, 0, 0, 0, 0, 0), (0, 0, 0, 0, 0, 5), (-1, 0, 0, 0, 0, 0)],
)
def test_invalid_cells_raise_value_error(bad: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"NAS-Bench-201 cell|out of range"):
        canonical_ops(bad)
    with pytest.raises(ValueError):
        paper_unique_ops(bad)
    with pytest.raises(ValueError):
        functional_form(bad)


@pytest.mark.parametrize("bad", ["abcdef", (0.5, 0, 0, 0, 0, 0), None])
def test_non_integer_cells_raise_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="integer op indices"):
        canonical_ops(bad)  # type: ignore[arg-type]


def test_accepts_any_integer_sequence() -> None:
    assert canonical_ops([SKIP, 0, 0, 0, SKIP, 0]) == canonical_ops((0, 0, 0, SKIP, 0, 0))
