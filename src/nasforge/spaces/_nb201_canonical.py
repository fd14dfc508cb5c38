"""Functional canonical form of NAS-Bench-201 cells.

A NAS-Bench-201 cell (Dong, X. and Yang, Y. "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search." ICLR 2020, arXiv:2001.00326) is a DAG over nodes 0
(input) to 3 (output). Each of its 6 edges ``i -> j`` carries one of 5 operations, and node
``j`` is the sum over its incoming edges of ``op(node i)``. Here a cell is a tuple of 6 op
indices in the edge order of the benchmark's text ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``::

    (0->1, 0->2, 1->2, 0->3, 1->3, 2->3)      0=none  1=skip_connect  2=nor_conv_1x1
                                              3=nor_conv_3x3  4=avg_pool_3x3

Many of the 5**6 = 15,625 cells compute the same function. :func:`functional_form` gives a
symbolic normal form of what the output node computes, and :func:`canonical_ops` maps every
cell to one member of its class (the smallest tuple in lexicographic order, so every edge
that can be ``none`` is ``none``). A search can then skip a cell whose class it has already
evaluated: the functional equivalence caching of Gillard, R., Jonany, S., Miao, Y., Munn, M.,
de Souza, C., Dungay, J., Liang, C., So, D. R., Le, Q. V. and Real, E. "Unified Functional
Hashing in Automatic Machine Learning." arXiv:2302.05433, 2023. Where that paper hashes the
outputs of a candidate on random inputs, we derive the normal form symbolically: the space is
small enough for exact reasoning, and equivalence then holds for every value of the weights,
not for one draw, with no hash collisions.

What the operations compute
---------------------------
In the benchmark's network (``InferCell`` and ``cell_operations.py`` of D-X-Y/AutoDL-Projects)
every cell edge maps C channels to C channels with stride 1, so

* ``none`` multiplies by zero;
* ``skip_connect`` is the identity;
* ``avg_pool_3x3`` is ``AvgPool2d(3, stride=1, padding=1, count_include_pad=False)`` with no
  preprocessing: linear, without parameters, and a map that is constant per channel is a
  fixed point of it;
* ``nor_conv_kxk`` is ReLU -> Conv2d (no bias) -> BatchNorm2d (affine). On an all-zero input
  the convolution gives zeros and BatchNorm gives its shift ``beta``, per channel: in train
  mode the batch mean and variance are 0, so the normalised value is 0; in eval mode the
  running mean of zeros stays 0. A convolution fed by a zero node is therefore *not* dead: it
  adds a learned per-channel constant (its kernel and scale get no gradient, its shift does),
  whatever its kernel size.

Merged: identities of the computed function for every weight value, up to which module holds
which weights
----------------------------------------------------------------------------------------------
* ``none``: a zero term vanishes from a sum (zero is the additive identity).
* ``skip_connect``: the terms of its input join the sum of its target node.
* Sums are commutative and associative; each node is a sorted multiset of terms. This swaps
  nodes 1 and 2 when edge 1->2 is ``none`` (or dead), and covers any other wiring that builds
  the same expression.
* ``avg_pool_3x3`` is linear: pooling a sum is the sum of the pooled terms, pooling zero is
  zero, and pooling the BatchNorm shift constant returns it.
* Whatever cannot reach the output vanishes, since the form describes node 3 only: edges into
  a node all of whose paths to node 3 pass a ``none`` edge, and skip and pooling edges leaving
  a node that is zero (all its inputs are zero, e.g. node 1 when edge 0->1 is ``none``).
* A convolution of a zero node is, with ``keep_bn_bias=True`` (the default, exact), one
  "BatchNorm shift" term, the same for 1x1 and 3x3. With ``keep_bn_bias=False`` it is zero,
  which is the convention of the benchmark's own rule below; it merges 190 more classes, and
  the benchmark's accuracies show no difference within them (see
  ``benchmarks/nb201_canonical_classes.py``), but it is not an identity.
* Every cell whose output is zero is in one class, represented by ``(0, 0, 0, 0, 0, 0)``.

Not merged: different functions, or equal only for special weights
-------------------------------------------------------------------
* One convolution used twice is not two convolutions. The module on edge 0->1 is the only one
  whose output can reach node 3 twice (through 1->3 and through 1->2->3). ``(2, 0, 1, 0, 1, 1)``
  computes ``2 c(x)`` with one 1x1 convolution, ``(0, 2, 0, 2, 0, 1)`` computes
  ``c_a(x) + c_b(x)`` with two: the form keeps the node-1 convolution as a shared sub-term
  whenever the output refers to it more than once.
* Repeated terms: ``x + x = 2x`` is not ``x``; ``c_a(x) + c_b(x)`` is not ``c(x)``; two
  BatchNorm shift terms stay two.
* ``nor_conv_1x1`` is not ``nor_conv_3x3``; pooling does not commute with a convolution (ReLU,
  BatchNorm), and pooling twice is not pooling once.
* A convolution of a BatchNorm shift constant: for a 1x1 kernel it is again a constant shift in
  train mode, but in eval mode only as far as the running statistics have converged. Kept apart
  (10 classes).
* Cost: the benchmark counts the parameters and FLOPs of dead convolutions, so parameters, FLOPs
  and latency differ within a class. Only the function is a class invariant.
* Network level: we look at one cell, not at the network around it.

The number in NAS-Bench-201 / NATS-Bench, and why ours differs
--------------------------------------------------------------
NATS-Bench (Dong, X., Liu, L., Musial, K. and Gabrys, B. "NATS-Bench: Benchmarking NAS
Algorithms for Architecture Topology and Size." IEEE TPAMI 2021, arXiv:2009.00437) lists
"6.5K" unique architectures for its topology search space, which is the NAS-Bench-201 space.
The count is 6,466, the number of distinct ``api.get_unique_str(index)``; that method returns
``to_unique_str(consider_zero=True)`` of the cell (D-X-Y/NATS-Bench ``api_topology.py``,
``genotype_utils.py``). :func:`paper_unique_str` re-implements the rule: node 0 is ``"0"``;
each incoming edge of node ``j`` gives ``"#"`` if its op is ``none`` or its source node's text
is exactly ``"#"``, the source text for ``skip_connect``, and ``"(source)@op"`` otherwise; the
texts are sorted and joined with ``"+"``. Compared with :func:`functional_form` it

* also makes skip the identity, sums commutative, and ops on a zero node 1 zero, convolutions
  included (our ``keep_bn_bias=False``);
* merges less: ``"#"`` stays a term, so ``x`` and ``x + 0`` differ (``(0, 0, 0, 1, 0, 0)`` gives
  ``"#+#+0"``, ``(0, 1, 0, 0, 0, 1)`` gives ``"#+#+#+0"``, both compute ``x``); node 2 fed only by
  zeros reads ``"#+#"``, not ``"#"``, so its outgoing ops are not zeroed; a sum passed on by a
  skip is pasted into the text, which flattens it only when the sorted orders happen to agree;
  pooling is not distributed over sums;
* merges more: it cannot tell a shared node-1 convolution from two independent ones
  (``(2, 0, 1, 0, 1, 1)`` and ``(0, 2, 0, 2, 0, 1)`` both give
  ``"#+#+(0)@nor_conv_1x1+(0)@nor_conv_1x1"``). These are its only merges that
  ``keep_bn_bias=False`` does not make: 430 of its classes hold cells that we separate, and the
  benchmark's accuracies differ across them about three times as much as within a class.

So neither partition refines the other. Counts over the 15,625 cells: 5,234 classes
(:func:`count_classes`, ``keep_bn_bias=True``), 5,044 (``keep_bn_bias=False``) and 6,466
(:func:`count_paper_classes`).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, TypeAlias

__all__ = [
    "EDGES",
    "NUM_CELLS",
    "OP_NAMES",
    "FunctionalForm",
    "all_cells",
    "canonical_ops",
    "count_classes",
    "count_paper_classes",
    "functional_form",
    "paper_unique_ops",
    "paper_unique_str",
]

#: The 6 edges ``(from, to)``, in the order of a cell's op tuple.
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: Operation names; a cell holds indices into this tuple.
OP_NAMES: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
#: Number of cells in the space, 5**6.
NUM_CELLS = len(OP_NAMES) ** len(EDGES)

_NONE, _SKIP, _CONV_1X1, _CONV_3X3, _AVG_POOL = range(len(OP_NAMES))
_CONVS = (_CONV_1X1, _CONV_3X3)
_E01, _E02, _E12, _E03, _E13, _E23 = range(len(EDGES))

#: A term of a sum: ``("input",)``, ``("bn_shift",)``, ``("node1",)`` (the shared node-1
#: convolution), ``("avg_pool_3x3", term)``, or ``(conv name, sum)``.
Term: TypeAlias = tuple[Any, ...]
#: A sum of terms, sorted; ``()`` is zero.
Sum: TypeAlias = tuple[Term, ...]
#: ``(shared, output)``: ``output`` is the sum computed by node 3. ``shared`` is ``()``, or,
#: when ``output`` uses the node-1 convolution more than once through ``("node1",)``, the sum
#: that this convolution computes.
FunctionalForm: TypeAlias = tuple[Sum, Sum]

_INPUT: Term = ("input",)
_BN_SHIFT: Term = ("bn_shift",)
_SHARED: Term = ("node1",)
_PAPER_ZERO = "#"


def all_cells() -> Iterator[tuple[int, ...]]:
    """All 15,625 cells, in lexicographic order of their op tuples.

    Example:
        >>> cells = list(all_cells())
        >>> len(cells), cells[0], cells[-1]
        (15625, (0, 0, 0, 0, 0, 0), (4, 4, 4, 4, 4, 4))
    """
    return itertools.product(range(len(OP_NAMES)), repeat=len(EDGES))


_LEGEND = ", ".join(f"{i}={name}" for i, name in enumerate(OP_NAMES))
_ORDER = ", ".join(f"{src}->{dst}" for src, dst in EDGES)


def _check_ops(ops: Sequence[int]) -> tuple[int, ...]:
    """``ops`` as a tuple of ints, or a ValueError that says what is wrong with it."""
    try:
        cell = tuple(operator.index(op) for op in ops)
    except TypeError:
        raise ValueError(
            f"A NAS-Bench-201 cell is a sequence of {len(EDGES)} integer op indices "
            f"({_LEGEND}), got {ops!r}."
        ) from None
    if len(cell) != len(EDGES):
        raise ValueError(
            f"A NAS-Bench-201 cell has {len(EDGES)} op indices, one per edge in the order "
            f"({_ORDER}); got {len(cell)}: {cell!r}."
        )
    for (src, dst), op in zip(EDGES, cell, strict=True):
        if not 0 <= op < len(OP_NAMES):
            raise ValueError(
                f"Op index {op} on edge {src}->{dst} of {cell!r} is out of range; use one of "
                f"{_LEGEND}."
            )
    return cell


def _sum(terms: Iterable[Term]) -> Sum:
    return tuple(sorted(terms))


def _apply(op: int, value: Sum, keep_bn_bias: bool) -> Sum:
    """The sum that edge op ``op`` computes from a node whose value is ``value``."""
    if op == _NONE:
        return ()
    if op == _SKIP:
        return value
    if op == _AVG_POOL:
        # Linear, so it distributes over the sum; a per-channel constant is a fixed point.
        return _sum(term if term == _BN_SHIFT else (OP_NAMES[op], term) for term in value)
    if not value:
        # ReLU -> Conv -> BatchNorm of zeros is BatchNorm's shift.
        return (_BN_SHIFT,) if keep_bn_bias else ()
    return ((OP_NAMES[op], value),)


def _evaluate(cell: tuple[int, ...], keep_bn_bias: bool, share_node1: bool) -> tuple[Sum, Sum]:
    """Values of node 1 and node 3; with ``share_node1``, node 3 refers to a node-1
    convolution as ``("node1",)``."""
    node0: Sum = (_INPUT,)
    node1 = _apply(cell[_E01], node0, keep_bn_bias)
    ref1 = (_SHARED,) if share_node1 and cell[_E01] in _CONVS else node1
    node2 = _sum(_apply(cell[_E02], node0, keep_bn_bias) + _apply(cell[_E12], ref1, keep_bn_bias))
    node3 = _sum(
        _apply(cell[_E03], node0, keep_bn_bias)
        + _apply(cell[_E13], ref1, keep_bn_bias)
        + _apply(cell[_E23], node2, keep_bn_bias)
    )
    return node1, node3


def _count_shared(expr: Term | Sum) -> int:
    if expr == _SHARED:
        return 1
    return sum(_count_shared(part) for part in expr if isinstance(part, tuple))


def _form(cell: tuple[int, ...], keep_bn_bias: bool) -> FunctionalForm:
    node1, output = _evaluate(cell, keep_bn_bias, share_node1=True)
    if _count_shared(output) >= 2:
        return node1, output
    return (), _evaluate(cell, keep_bn_bias, share_node1=False)[1]


def functional_form(ops: Sequence[int], *, keep_bn_bias: bool = True) -> FunctionalForm:
    """Symbolic normal form of the function that the cell's output node computes.

    Two cells have the same form exactly when they are in the same class of
    :func:`canonical_ops`; the module docstring lists what is and is not merged.

    Args:
        ops: 6 op indices in the edge order ``(0->1, 0->2, 1->2, 0->3, 1->3, 2->3)``.
        keep_bn_bias: if True, a convolution of a zero node is a learned constant (BatchNorm's
            shift), as in the benchmark's network; if False it is zero, as in the benchmark's
            own uniqueness rule.

    Returns:
        ``(shared, output)``, hashable nested tuples of strings: ``output`` is the sum computed
        by node 3; ``shared`` is ``()`` unless the node-1 convolution is used more than once.

    Raises:
        ValueError: if ``ops`` is not 6 integers in ``0..4``.

    Example:
        >>> functional_form((3, 0, 0, 0, 4, 0))  # pool(conv3x3(x))
        ((), (('avg_pool_3x3', ('nor_conv_3x3', (('input',),))),))
        >>> functional_form((0, 0, 0, 0, 3, 0))  # conv3x3 of the zero node 1
        ((), (('bn_shift',),))
        >>> functional_form((0, 0, 0, 0, 3, 0), keep_bn_bias=False)
        ((), ())
    """
    return _form(_check_ops(ops), bool(keep_bn_bias))


@lru_cache(maxsize=2)
def _representatives(keep_bn_bias: bool) -> dict[tuple[int, ...], tuple[int, ...]]:
    """Each cell mapped to the lexicographically smallest cell of its class."""
    first: dict[FunctionalForm, tuple[int, ...]] = {}
    return {cell: first.setdefault(_form(cell, keep_bn_bias), cell) for cell in all_cells()}


def canonical_ops(ops: Sequence[int], *, keep_bn_bias: bool = True) -> tuple[int, ...]:
    """The representative of the cell's functional-equivalence class.

    Cells that compute the same function, up to which module holds which weights, get the same
    representative (see the module docstring for what is and is not merged). The
    representative is the smallest cell of the class in lexicographic order of op tuples, so
    it is a valid cell, ``canonical_ops`` is idempotent, and every edge that can be ``none``
    is ``none``. The first call builds a table over all 15,625 cells (a fraction of a second).

    Args:
        ops: 6 op indices in the edge order ``(0->1, 0->2, 1->2, 0->3, 1->3, 2->3)``.
        keep_bn_bias: see :func:`functional_form`.

    Returns:
        The representative cell, a tuple of 6 op indices.

    Raises:
        ValueError: if ``ops`` is not 6 integers in ``0..4``.

    Example:
        >>> canonical_ops((3, 2, 0, 0, 1, 4))  # conv3x3(x) + pool(conv1x1(x))
        (0, 2, 0, 3, 0, 4)
        >>> canonical_ops((2, 3, 0, 0, 4, 1))  # the same with nodes 1 and 2 swapped
        (0, 2, 0, 3, 0, 4)
        >>> canonical_ops((3, 3, 3, 0, 0, 0))  # nothing reaches the output
        (0, 0, 0, 0, 0, 0)
    """
    return _representatives(bool(keep_bn_bias))[_check_ops(ops)]


@lru_cache(maxsize=2)
def count_classes(*, keep_bn_bias: bool = True) -> int:
    """Number of functional-equivalence classes among the 15,625 cells.

    Example:
        >>> count_classes(), count_classes(keep_bn_bias=False)
        (5234, 5044)
    """
    return len(set(_representatives(bool(keep_bn_bias)).values()))


def paper_unique_str(ops: Sequence[int]) -> str:
    """The cell's text under NAS-Bench-201's own uniqueness rule.

    Re-implements ``to_unique_str(consider_zero=True)``, which NATS-Bench's
    ``get_unique_str`` returns and whose 6,466 distinct values are the "6.5K" unique
    architectures of the NATS-Bench paper (see the module docstring).

    Args:
        ops: 6 op indices in the edge order ``(0->1, 0->2, 1->2, 0->3, 1->3, 2->3)``.

    Returns:
        The text of node 3.

    Raises:
        ValueError: if ``ops`` is not 6 integers in ``0..4``.

    Example:
        >>> paper_unique_str((3, 0, 0, 0, 4, 0))
        '#+#+((0)@nor_conv_3x3)@avg_pool_3x3'
        >>> paper_unique_str((0, 0, 0, 1, 0, 0)), paper_unique_str((0, 1, 0, 0, 0, 1))
        ('#+#+0', '#+#+#+0')
    """
    cell = _check_ops(ops)
    texts = ["0"]
    for node in (1, 2, 3):
        terms = []
        for (src, dst), op in zip(EDGES, cell, strict=True):
            if dst != node:
                continue
            source = texts[src]
            if op == _NONE or source == _PAPER_ZERO:
                terms.append(_PAPER_ZERO)
            elif op == _SKIP:
                terms.append(source)
            else:
                terms.append(f"({source})@{OP_NAMES[op]}")
        texts.append("+".join(sorted(terms)))
    return texts[3]


@lru_cache(maxsize=1)
def _paper_representatives() -> dict[tuple[int, ...], tuple[int, ...]]:
    first: dict[str, tuple[int, ...]] = {}
    return {cell: first.setdefault(paper_unique_str(cell), cell) for cell in all_cells()}


def paper_unique_ops(ops: Sequence[int]) -> tuple[int, ...]:
    """Representative of the cell's class under NAS-Bench-201's rule (:func:`paper_unique_str`).

    The smallest cell, in lexicographic order, with the same :func:`paper_unique_str`.

    Raises:
        ValueError: if ``ops`` is not 6 integers in ``0..4``.

    Example:
        >>> paper_unique_ops((2, 0, 1, 0, 1, 1))  # one conv used twice, merged with two convs
        (0, 2, 0, 2, 0, 1)
        >>> canonical_ops((2, 0, 1, 0, 1, 1))  # kept apart
        (2, 0, 1, 0, 1, 1)
    """
    return _paper_representatives()[_check_ops(ops)]


def count_paper_classes() -> int:
    """Number of classes under NAS-Bench-201's rule: the 6,466 of NATS-Bench.

    Example:
        >>> count_paper_classes()
        6466
    """
    return len(set(_paper_representatives().values()))
