"""The DASS search space: the DARTS cell space with sparse operations added as choices.

Mousavi, H., Loni, M., Alibeigi, M. and Daneshtalab, M. "DASS: Differentiable Architecture
Search for Sparse Neural Networks." ACM Transactions on Embedded Computing Systems 22(5s),
2023 (ESWEEK), arXiv:2207.06968. DASS finds that cells searched for dense networks lose
much accuracy once pruned, and widens the DARTS search space with *sparse* parametric
operations, whose weights are pruned while the supernet trains, so that the search can
prefer operations that keep their accuracy at a given sparsity (the paper's ``SparseConv``;
its ``SparseLinear`` is the classifier's counterpart, which nasforge keeps dense as pruning
usually does, :func:`nasforge.ops.sparse.prune_magnitude`).

Operations
----------
The 7 operations of a DARTS genotype (:mod:`nasforge.spaces.darts`) keep their indices 0..6;
the sparse forms of its four convolutions follow (:data:`SPARSE_OPS`; the paper names one
``SparseConv`` operation, which nasforge reads as a sparse form of each DARTS convolution,
kernel and dilation kept)::

    0 max_pool_3x3  1 avg_pool_3x3  2 skip_connect  3 sep_conv_3x3  4 sep_conv_5x5
    5 dil_conv_3x3  6 dil_conv_5x5  7 sparse_sep_conv_3x3  8 sparse_sep_conv_5x5
    9 sparse_dil_conv_3x3  10 sparse_dil_conv_5x5

A sparse operation is its dense operation (the same ReLU, depthwise, pointwise and batch
norm layers) with every convolution a :class:`nasforge.ops.sparse.MaskedConv2d` that keeps
the largest-magnitude share ``1 - sparsity`` of its weights; the sparsity is a setting of
the network, one of :data:`nasforge.ops.sparse.SPARSITY_LEVELS` (``build(arch,
sparsity=0.9)``, ``supernet(sparsity=0.9)``), not of the architecture. Every DARTS
genotype is a DASS architecture with the same choices (``space.named("darts-v2")``).

Choices, text, moves
--------------------
As in the DARTS space (32 integers, ``normal=op~input,...;reduce=...``) with operation
indices 0..10; the text names the sparse operations (``sparse_sep_conv_3x3~1``), and
:meth:`DassSpace.parse` also reads the ``Genotype(...)`` text. Sampling, mutation,
crossover, neighbours (184: 160 operation changes, 24 input changes), the one-hot encoding
(308 values: 2 cells x 14 edges x 11 operations) and the canonical form are DARTS's over the
11 operations. The space has ``(2880 * 11**8)**2``, about 3.6e24, choice tuples
(:data:`SIZE`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, unknown_name_message
from nasforge.spaces._darts_genotypes import (
    _PER_CELL,
    CELLS,
    GENOTYPE_OPS,
    N_CHOICES,
    _as_ints,
    _pairs_of,
    _short,
)
from nasforge.spaces._darts_genotypes import OPS as DARTS_OPS
from nasforge.spaces.darts import DartsSpace

if TYPE_CHECKING:
    from torch import nn

    from nasforge.ops.darts import GenotypeLike, NetworkCIFAR

__all__ = ["DASS_GENOTYPE_OPS", "OPS", "SIZE", "SPARSE_OPS", "DassSpace", "dense_name"]

#: DASS's sparse operations: the DARTS convolutions with magnitude-masked weights.
SPARSE_OPS: tuple[str, ...] = (
    "sparse_sep_conv_3x3",
    "sparse_sep_conv_5x5",
    "sparse_dil_conv_3x3",
    "sparse_dil_conv_5x5",
)
_PREFIX = "sparse_"
#: The supernet's options: DARTS's 8 (``none`` first) and the 4 sparse operations.
OPS: tuple[str, ...] = (*DARTS_OPS, *SPARSE_OPS)
#: The operations a DASS genotype holds, by index (every option but ``none``).
DASS_GENOTYPE_OPS: tuple[str, ...] = OPS[1:]
#: Choice tuples of the space: ``(2880 * 11**8)**2``.
SIZE = (2880 * len(DASS_GENOTYPE_OPS) ** 8) ** 2

_N_DENSE = len(GENOTYPE_OPS)
_DENSE_INDEX = {name: i for i, name in enumerate(GENOTYPE_OPS)}
_OP_TOKEN = re.compile(r"\b(?:sparse_)?(?:" + "|".join(GENOTYPE_OPS) + r")\b")
_NAMES = (re.compile(r"([A-Za-z0-9_]+)\s*~"), re.compile(r"\(\s*['\"]([A-Za-z0-9_]+)['\"]"))


def dense_name(op: str) -> str:
    """The dense operation of ``op`` (``sparse_sep_conv_3x3`` -> ``sep_conv_3x3``)."""
    return op[len(_PREFIX) :] if op in SPARSE_OPS else op


def _dense_values(values: Sequence[int]) -> list[int]:
    """The choices with each sparse operation replaced by its dense one."""
    out = list(values)
    for position in range(1, len(out), 2):
        if out[position] >= _N_DENSE:
            out[position] = _DENSE_INDEX[dense_name(DASS_GENOTYPE_OPS[out[position]])]
    return out


def _with_flags(values: Sequence[int], flags: Sequence[bool]) -> list[int]:
    """Dense choices with the operations flagged sparse replaced by their sparse forms."""
    out = list(values)
    for edge, sparse in enumerate(flags):
        if sparse:
            name = _PREFIX + GENOTYPE_OPS[out[2 * edge + 1]]
            out[2 * edge + 1] = DASS_GENOTYPE_OPS.index(name)
    return out


def _check_names(names: Sequence[str]) -> None:
    for name in names:
        if name not in DASS_GENOTYPE_OPS and name != "none":
            raise InvalidArchitectureError(
                unknown_name_message("DASS operation", name, DASS_GENOTYPE_OPS)
            )


@spaces.register("dass")
class DassSpace(DartsSpace):
    """The DARTS cell space with DASS's sparse operations (see the module docstring).

    Attributes:
        sparse_operations: The sparse options (what :mod:`nasforge.oneshot.dass` needs of a
            space).

    Example:
        >>> space = DassSpace()
        >>> arch = space.parse(str(space.named("darts-v2")).replace(
        ...     "sep_conv_3x3~1", "sparse_sep_conv_3x3~1", 1))
        >>> str(arch).split("|")[0], arch.choices[:4]
        ('normal=sep_conv_3x3~0,sparse_sep_conv_3x3~1', (0, 3, 1, 7))
        >>> space.parse(str(arch)) == arch, len(space.neighbours(arch))
        (True, 184)
    """

    name = "dass"
    genotype_ops = DASS_GENOTYPE_OPS
    sparse_operations: tuple[str, ...] = SPARSE_OPS

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = _as_ints(choices)
        if values is None or len(values) != N_CHOICES:
            return super().from_choices(choices)  # refused with DARTS's message
        for position in range(1, N_CHOICES, 2):
            op = values[position]
            if not 0 <= op < len(DASS_GENOTYPE_OPS):
                cell, offset = divmod(position, _PER_CELL)
                legend = ", ".join(f"{i}={name}" for i, name in enumerate(DASS_GENOTYPE_OPS))
                raise InvalidArchitectureError(
                    f"In the {CELLS[cell]} cell, edge {offset % 4 // 2} of node "
                    f"{offset // 4 + 2} has operation index {op}; valid indices are "
                    f"0..{len(DASS_GENOTYPE_OPS) - 1} ({legend})."
                )
        dense = super().from_choices(_dense_values(values))  # inputs checked as in DARTS
        flags = iter(v >= _N_DENSE for v in values[1::2])
        text = re.sub(
            r"[A-Za-z0-9_]+~", lambda m: (_PREFIX if next(flags) else "") + m[0], dense.text
        )
        return Architecture(self.name, values, text)

    def parse(self, text: str) -> Architecture:
        """The architecture written as ``text`` (the compact form of ``str(arch)``, or a
        ``Genotype(...)`` text), sparse operations named ``sparse_<operation>``.

        Raises:
            InvalidArchitectureError: The text is malformed or names an unknown operation.
        """
        if not isinstance(text, str):
            return super().parse(text)
        try:
            _check_names([n for pattern in _NAMES for n in pattern.findall(text)])
        except InvalidArchitectureError as error:
            raise InvalidArchitectureError(
                f"In DASS architecture {_short(text)}: {error}"
            ) from None
        dense = super().parse(_OP_TOKEN.sub(lambda m: dense_name(m[0]), text))
        # the same text with sparse operations written as skip_connect and the others as
        # max_pool_3x3 marks, position by position, which edges are sparse
        marked = super().parse(
            _OP_TOKEN.sub(lambda m: "skip_connect" if m[0] in SPARSE_OPS else "max_pool_3x3", text)
        )
        flags = [op == _DENSE_INDEX["skip_connect"] for op in marked.choices[1::2]]
        return self.from_choices(_with_flags(dense.choices, flags))

    def from_genotype(self, genotype: GenotypeLike) -> Architecture:
        """The architecture of a genotype object whose cells may name sparse operations.

        Raises:
            InvalidArchitectureError: As :meth:`DartsSpace.from_genotype`, or an unknown
                operation.
        """
        try:
            cells = {cell: _pairs_of(cell, getattr(genotype, cell)) for cell in CELLS}
            concat = {f"{c}_concat": getattr(genotype, f"{c}_concat") for c in CELLS}
        except (AttributeError, InvalidArchitectureError):
            return super().from_genotype(genotype)  # refused with DARTS's message
        _check_names([name for pairs in cells.values() for name, _ in pairs])
        flags = [name in SPARSE_OPS for cell in CELLS for name, _ in cells[cell]]
        dense = SimpleNamespace(
            **{cell: [(dense_name(n), i) for n, i in pairs] for cell, pairs in cells.items()},
            **concat,
        )
        return self.from_choices(_with_flags(super().from_genotype(dense).choices, flags))

    def sparse_edges(self, arch: Architecture) -> list[list[bool]]:
        """For the normal and the reduce cell, whether each of its 8 edges (node by node, in
        the order of the choices) holds a sparse operation."""
        ops = self.check(arch).choices[1::2]
        half = len(ops) // 2
        return [[op >= _N_DENSE for op in ops[:half]], [op >= _N_DENSE for op in ops[half:]]]

    def build(
        self,
        arch: Architecture,
        num_classes: int = 10,
        channels: int = 36,
        layers: int = 20,
        auxiliary: bool = True,
        drop_path_prob: float = 0.0,
        sparsity: float = 0.75,
        **kwargs: Any,
    ) -> NetworkCIFAR:
        """The DARTS evaluation network of ``arch`` (:meth:`DartsSpace.build`) whose sparse
        operations compute with magnitude masks at ``sparsity`` (their convolutions are
        :class:`~nasforge.ops.sparse.MaskedConv2d`, pruned at initialisation); the other
        layers are dense. To prune the whole network to one sparsity, pass it to
        :func:`nasforge.ops.sparse.prune_magnitude`.

        Raises:
            InvalidConfigError: ``sparsity`` is not a supported level (they are listed), or
                as :meth:`DartsSpace.build`.
        """
        from nasforge.ops.sparse import check_sparsity, sparsify

        share = check_sparsity(sparsity)
        dense = self.from_choices(_dense_values(self.check(arch).choices))
        net = super().build(
            dense,
            num_classes=num_classes,
            channels=channels,
            layers=layers,
            auxiliary=auxiliary,
            drop_path_prob=drop_path_prob,
            **kwargs,
        )
        flags = self.sparse_edges(arch)
        for cell in net.cells:
            ops = cast("nn.ModuleList", cell._ops)
            for op, sparse in zip(ops, flags[1 if cell.reduction else 0], strict=True):
                if sparse:
                    sparsify(op, share)
        return net

    def supernet(self, **settings: Any) -> Any:
        """The DASS search network (:class:`nasforge.ops.dass_supernet.DassSupernet`):
        ``num_classes``, ``channels``, ``layers``, ``partial_channels``, ``sparsity``."""
        from nasforge.ops.dass_supernet import DassSupernet

        return DassSupernet(space=self, **settings)

    @property
    def size(self) -> int:
        return SIZE
