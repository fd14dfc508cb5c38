"""Behaviour of the generic functional hash (nasforge.spaces._functional_hash).

NB201 cells are op-index tuples in the edge order (0->1, 0->2, 1->2, 0->3, 1->3, 2->3) with
0=none, 1=skip_connect, 2=nor_conv_1x1, 3=nor_conv_3x3, 4=avg_pool_3x3.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.spaces._functional_hash import architecture_hash, module_hash
from nasforge.spaces._nb201_canonical import all_cells, canonical_ops
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.darts import DartsSpace
from nasforge.spaces.nb201 import NB201Space

NONE, SKIP, CONV1, CONV3, POOL = range(5)
SPACE = NB201Space()


def cell_hash(ops: tuple[int, ...]) -> str:
    return architecture_hash(SPACE, SPACE.from_choices(ops))


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ((0, 0, 0, 1, 0, 0), (1, 0, 1, 0, 0, 1), "a chain of skips is the identity"),
        ((0, 0, 0, 1, 0, 0), (0, 1, 0, 0, 0, 1), "skip through node 2"),
        ((3, 3, 3, 0, 0, 0), (0, 0, 0, 0, 0, 0), "nothing reaches the output: zero"),
        ((3, 1, 0, 0, 0, 1), (0, 0, 0, 1, 0, 0), "a convolution on a dead branch"),
        ((3, 2, 0, 0, 1, 4), (2, 3, 0, 0, 4, 1), "parallel nodes 1 and 2 swapped"),
        ((0, 0, 0, 0, 2, 0), (0, 0, 0, 0, 3, 0), "a conv of a zero node: BN shift, any kernel"),
        ((0, 0, 3, 0, 0, 4), (0, 0, 0, 0, 3, 0), "pooling the BN shift returns it"),
        ((1, 1, 4, 0, 0, 1), (0, 1, 0, 4, 0, 1), "pool distributes over the sum x + x"),
        ((0, 0, 0, 1, 1, 0), (0, 0, 0, 1, 4, 0), "skip and pool of a zero node are zero"),
    ],
)
def test_known_nb201_equivalents_hash_equal(
    a: tuple[int, ...], b: tuple[int, ...], why: str
) -> None:
    assert canonical_ops(a) == canonical_ops(b), why
    assert cell_hash(a) == cell_hash(b), why


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        ((2, 0, 1, 0, 1, 1), (0, 2, 0, 2, 0, 1), "one conv used twice is not two convs"),
        ((2, 0, 4, 0, 4, 1), (2, 2, 0, 0, 4, 4), "pool of a shared conv twice vs of two convs"),
        ((0, 0, 0, 2, 0, 0), (0, 0, 0, 3, 0, 0), "1x1 is not 3x3"),
        ((0, 1, 0, 1, 0, 1), (0, 0, 0, 1, 0, 0), "x + x is not x"),
        ((0, 0, 0, 0, 3, 3), (0, 0, 0, 0, 3, 0), "two BN shifts stay two"),
        ((0, 0, 3, 0, 0, 2), (0, 0, 0, 0, 3, 0), "a conv of a BN shift is not a BN shift"),
        ((4, 0, 0, 0, 4, 0), (0, 0, 0, 4, 0, 0), "pooling twice is not pooling once"),
        ((3, 0, 0, 0, 4, 0), (4, 0, 0, 0, 3, 0), "pool and conv do not commute"),
    ],
)
def test_known_nb201_differences_hash_apart(
    a: tuple[int, ...], b: tuple[int, ...], why: str
) -> None:
    assert canonical_ops(a) != canonical_ops(b), why
    assert cell_hash(a) != cell_hash(b), why


def test_agrees_with_canonical_classes_on_a_random_sample() -> None:
    """Pairs of cells in one canonical class hash equal; all other pairs hash apart."""
    classes: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for cell in all_cells():
        classes.setdefault(canonical_ops(cell), []).append(cell)
    rng = np.random.default_rng(0)
    cells = list(all_cells())
    sample: set[tuple[int, ...]] = set()
    for index in rng.choice(len(cells), size=120, replace=False):
        members = classes[canonical_ops(cells[index])]
        sample.add(cells[index])
        sample.add(members[int(rng.integers(len(members)))])  # a partner from its class
    hashes = {cell: cell_hash(cell) for cell in sample}
    assert sum(len(classes[canonical_ops(c)]) > 1 for c in sample) > 60  # pairs are tested
    for a, b in itertools.combinations(sorted(sample), 2):
        assert (hashes[a] == hashes[b]) == (canonical_ops(a) == canonical_ops(b)), (a, b)


class _Block(nn.Module):
    """``conv(x) + pool(x) + x`` with the additions in an order given by ``order``."""

    def __init__(self, order: tuple[int, ...], op: str = "pool") -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.other = nn.AvgPool2d(3, 1, 1) if op == "pool" else nn.MaxPool2d(3, 1, 1)
        self.order = order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        terms = [self.conv(x), self.other(x), x]
        total = terms[self.order[0]]
        for i in self.order[1:]:
            total = total + terms[i]
        return torch.relu(total)


def test_user_module_commutative_additions_hash_equal_and_ops_matter() -> None:
    shape = (1, 4, 8, 8)
    keys = {module_hash(_Block(order), shape) for order in itertools.permutations(range(3))}
    assert len(keys) == 1
    assert module_hash(_Block((0, 1, 2), op="max"), shape) not in keys
    assert module_hash(_Block((0, 1)), shape) not in keys  # a term dropped


def test_weight_values_and_modes_do_not_change_the_hash() -> None:
    block = _Block((0, 1, 2))
    before = module_hash(block, torch.randn(1, 4, 8, 8))
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.uniform_(-5, 5)
    block.train()
    assert module_hash(block, (1, 4, 8, 8)) == before
    assert block.training and block.conv.training  # the caller's mode is restored


class _Concat(nn.Module):
    def __init__(self, swap: bool, mix: bool) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 2, 3, padding=1), nn.Conv2d(3, 2, 1)
        self.mix = nn.Conv2d(4, 5, 1) if mix else nn.Identity()
        self.swap = swap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [self.b(x), self.a(x)] if self.swap else [self.a(x), self.b(x)]
        return self.mix(torch.relu(torch.cat(parts, dim=1)))


def test_channel_order_counts_only_where_a_layer_absorbs_it() -> None:
    shape = (1, 3, 8, 8)
    assert module_hash(_Concat(False, mix=True), shape) == module_hash(
        _Concat(True, mix=True), shape
    )
    assert module_hash(_Concat(False, mix=False), shape) != module_hash(
        _Concat(True, mix=False), shape
    )


def test_zero_and_subtraction_rules() -> None:
    class Expr(nn.Module):
        def __init__(self, kind: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1, bias=False)
            self.kind = kind

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.kind == 0:
                return x
            if self.kind == 1:
                return x + self.conv(x * 0.0) - 0  # conv without bias of zero is zero
            return (x - self.conv(x)) + self.conv(x)  # a - b + b is not simplified to a

    shape = (1, 2, 4, 4)
    assert module_hash(Expr(0), shape) == module_hash(Expr(1), shape)
    assert module_hash(Expr(0), shape) != module_hash(Expr(2), shape)


class _TwoLSTMs(nn.Module):
    def __init__(self, shared: bool) -> None:
        super().__init__()
        self.a = nn.LSTM(4, 4, batch_first=True)
        self.b = self.a if shared else nn.LSTM(4, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x)[0] + self.b(x)[0]  # type: ignore[no-any-return]


def test_modules_with_several_outputs_keep_their_instances_apart() -> None:
    shape = (1, 5, 4)
    assert module_hash(_TwoLSTMs(shared=True), shape) != module_hash(_TwoLSTMs(False), shape)


class _Branchy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x
        return -x


class _Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = _Branchy()
        self.conv = nn.Conv2d(1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.inner(x))


def test_untraceable_model_gives_a_clear_error_and_leaf_modules_fix_it() -> None:
    with pytest.raises(UnsupportedOperationError, match="leaf_modules"):
        module_hash(_Wrapper(), (1, 1, 4, 4))
    assert len(module_hash(_Wrapper(), (1, 1, 4, 4), leaf_modules=[_Branchy])) == 32


def test_bad_example_inputs_are_refused() -> None:
    with pytest.raises(InvalidConfigError, match="shape"):
        module_hash(_Block((0, 1, 2)), (1, 3, 8, 8))  # 3 channels into a 4-channel conv
    with pytest.raises(InvalidConfigError, match="tensor or a shape"):
        module_hash(_Block((0, 1, 2)), ["x"])  # type: ignore[list-item]


class _HashedNB201(NB201Space):
    """NB201 with a builder but without its canonical table."""

    canonical = SearchSpace.canonical


def test_functional_key_of_a_space_without_canonical_form_is_the_hash() -> None:
    space = _HashedNB201()
    assert space.dedupe_method == "hash"
    same = [space.from_choices(c) for c in ((3, 2, 0, 0, 1, 4), (2, 3, 0, 0, 4, 1))]
    other = space.from_choices((3, 3, 0, 0, 1, 4))
    keys = [space.functional_key(arch) for arch in (*same, other)]
    assert keys[0] == keys[1] != keys[2]
    assert isinstance(keys[0], str)


def test_darts_relabelled_genotype_hashes_equal_and_neighbour_apart() -> None:
    space = DartsSpace()
    reduce = (0, 0, 1, 1, 0, 2, 2, 6, 1, 4, 3, 5, 4, 3, 0, 1)
    # normal cell: nodes 2 and 3 read only the inputs, node 4 reads both, node 5 reads node 4
    normal = (0, 3, 1, 4, 0, 5, 1, 0, 2, 1, 3, 6, 4, 2, 0, 3)
    # nodes 2 and 3 trade places (node 4's inputs follow), node 4's edges in the other order
    relabelled = (0, 5, 1, 0, 0, 3, 1, 4, 2, 6, 3, 1, 4, 2, 0, 3)
    arch = space.from_choices(normal + reduce)
    other = space.from_choices(relabelled + reduce)
    assert other != arch and space.canonical(other) == space.canonical(arch)
    key = architecture_hash(space, arch)
    assert architecture_hash(space, other) == key
    neighbour = space.mutate(arch, np.random.default_rng(0))
    assert space.canonical(neighbour) != space.canonical(arch)
    assert architecture_hash(space, neighbour) != key
