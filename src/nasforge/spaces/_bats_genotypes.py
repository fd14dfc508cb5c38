"""The BATS space's vocabulary: its operations, their places among DARTS's, the published
BATS cell, and the translation of names between the two spaces (private;
:mod:`nasforge.spaces.bats` is the space and re-exports the public names).

A BATS cell has the layout of a DARTS cell and 7 operations as DARTS does, position by
position: the two depthwise-separable convolutions become grouped convolutions, the two
dilated depthwise-separable convolutions dilated grouped convolutions, and the
parameter-free operations stay. So a BATS architecture is the DARTS choice tuple read with
other operation names, and the space reuses the DARTS machinery (validation, text, moves,
canonical form) by translating names at its edges.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from nasforge.spaces._darts_genotypes import GENOTYPE_OPS as DARTS_GENOTYPE_OPS
from nasforge.spaces._darts_genotypes import OPS as DARTS_OPS
from nasforge.spaces._darts_genotypes import Genotype, _genotype

#: The 8 operations of the BATS search network, in the places of DARTS's ``PRIMITIVES``.
OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "group_conv_3x3",
    "group_conv_5x5",
    "dil_group_conv_3x3",
    "dil_group_conv_5x5",
)
#: The 7 operations of a discrete BATS genotype; ``choices`` index into this tuple.
GENOTYPE_OPS: tuple[str, ...] = OPS[1:]

#: BATS name -> the DARTS name in the same place (and back).
TO_DARTS: Mapping[str, str] = MappingProxyType(dict(zip(OPS, DARTS_OPS, strict=True)))
FROM_DARTS: Mapping[str, str] = MappingProxyType(dict(zip(DARTS_OPS, OPS, strict=True)))
# DARTS operations that are not BATS operations: written in a BATS text, they must be refused
_FOREIGN = "not_in_bats__"
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# The published BATS cell (Bulat, Martinez and Tzimiropoulos, ECCV 2020, arXiv:2003.01711,
# the figure of the searched normal and reduction cells). The corpus nasforge was built with
# holds the paper's abstract but not its figures; the cell is the transcription ``BATS`` in
# lswzjuer/nas-pruning-quantize ``network_search/pbdarts/binary_genotypes.py``
# @5f062eb61c3b130b6dec04bd3d3de74009c6c544 (a public re-implementation of BATS's space,
# whose operation list is this module's OPS).
_BATS = _genotype(
    normal=[
        ("group_conv_5x5", 0),
        ("dil_group_conv_5x5", 1),
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 2),
        ("group_conv_5x5", 0),
        ("dil_group_conv_5x5", 2),
        ("group_conv_3x3", 0),
        ("dil_group_conv_5x5", 1),
    ],
    reduce=[
        ("max_pool_3x3", 0),
        ("group_conv_3x3", 1),
        ("group_conv_5x5", 0),
        ("avg_pool_3x3", 1),
        ("group_conv_5x5", 1),
        ("max_pool_3x3", 3),
        ("group_conv_5x5", 0),
        ("group_conv_5x5", 1),
    ],
)

#: The published cells by name (see the comment above).
GENOTYPES: Mapping[str, Genotype] = MappingProxyType({"bats": _BATS})


def to_darts_text(text: str) -> str:
    """``text`` with every BATS operation name replaced by the DARTS name in its place, and
    every DARTS-only name marked so that the DARTS parser refuses it."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        if word in TO_DARTS:
            return TO_DARTS[word]
        if word in DARTS_GENOTYPE_OPS:
            return _FOREIGN + word
        return word

    return _NAME_RE.sub(swap, text)


def from_darts_text(text: str) -> str:
    """``text`` (a DARTS architecture text or message) with BATS operation names."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        if word.startswith(_FOREIGN):
            return word[len(_FOREIGN) :]
        return FROM_DARTS.get(word, word)

    return _NAME_RE.sub(swap, text)


def to_darts_genotype(genotype: Genotype) -> Genotype:
    """The DARTS genotype with the same cells (names translated as :func:`to_darts_text`)."""

    def cell(pairs: object) -> object:
        if not isinstance(pairs, (list, tuple)):
            return pairs
        out: list[object] = []
        for pair in pairs:
            if isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str):
                out.append((to_darts_text(pair[0]), pair[1]))
            else:
                out.append(cell(pair))
        return out

    return Genotype(
        cell(genotype.normal),  # type: ignore[arg-type]
        genotype.normal_concat,
        cell(genotype.reduce),  # type: ignore[arg-type]
        genotype.reduce_concat,
    )


def from_darts_genotype(genotype: Genotype) -> Genotype:
    """The BATS genotype of a DARTS genotype of the same choices."""
    return _genotype(
        [(FROM_DARTS[op], i) for op, i in genotype.normal],
        [(FROM_DARTS[op], i) for op, i in genotype.reduce],
    )
