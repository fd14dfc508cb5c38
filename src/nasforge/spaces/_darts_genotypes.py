"""The DARTS space's vocabulary: operations, the genotype form, the published genotypes and
the parsing and printing of architecture text (private; :mod:`nasforge.spaces.darts` is the
space and re-exports the public names)."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from nasforge.errors import (
    InvalidArchitectureError,
    unknown_name_message,
)

#: The 8 operations of DARTS, in the order of its ``PRIMITIVES`` (``none`` first).
OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
#: The 7 operations of a discrete genotype; ``choices`` index into this tuple.
GENOTYPE_OPS: tuple[str, ...] = OPS[1:]
#: The two cell types, in the order of ``choices`` and of the text.
CELLS: tuple[str, ...] = ("normal", "reduce")
#: The concatenated nodes of every cell: all four intermediate nodes.
CONCAT: tuple[int, ...] = (2, 3, 4, 5)
N_NODES = 4
N_OPS = len(GENOTYPE_OPS)
_PER_CELL = 4 * N_NODES
N_CHOICES = len(CELLS) * _PER_CELL
_CELL_SIZE = math.prod((k + 2) * (k + 1) for k in range(N_NODES)) * N_OPS ** (2 * N_NODES)
#: The number of architectures (choice tuples) of the space.
SIZE: int = _CELL_SIZE ** len(CELLS)
#: First row of node ``k`` in the per-cell edge list of the one-hot encoding (14 edges).
_EDGE_OFFSET: tuple[int, ...] = tuple(sum(j + 2 for j in range(k)) for k in range(N_NODES))
_N_EDGES = sum(k + 2 for k in range(N_NODES))
_OP_INDEX = {name: i for i, name in enumerate(GENOTYPE_OPS)}
_EDGE_RE = re.compile(r"^([A-Za-z0-9_]+)\s*~\s*(\d+)$")
_EXTRA_FIELDS = ("connectN", "connects")  # AutoDL-Projects' Genotype; accepted when None


class Genotype(NamedTuple):
    """A genotype in the form of the DARTS reference implementation.

    ``normal`` and ``reduce`` hold two ``(operation, input)`` pairs per intermediate node,
    node by node; ``*_concat`` the nodes concatenated into the cell's output. ``repr`` of a
    genotype is the classic text, which :meth:`DartsSpace.parse` reads.
    """

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]


def _genotype(normal: Sequence[tuple[str, int]], reduce: Sequence[tuple[str, int]]) -> Genotype:
    return Genotype(tuple(normal), CONCAT, tuple(reduce), CONCAT)


# The published genotypes, verified against the reference repositories (read through the
# project's code search; commits are the ones stored there):
# * darts-v1 (first order) and darts-v2 (second order): ``DARTS_V1`` and ``DARTS_V2`` of
#   quark0/darts ``cnn/genotypes.py`` (the stored commit 8876e793763398e3ee62ac1823fa0a3c14e8c2c5
#   holds V1 under the name ``DARTS``); the same two in yuhuixu1993/PC-DARTS ``genotypes.py``
#   @283b086cc3d567aacf448511cd0b28d13a728f49 and liamcli/darts ``cnn/genotypes.py``
#   @17bd21d43a8088fbef4894bbdd306f4b9f407271. DARTS Table 1: 3.3M parameters each,
#   3.00 +- 0.14 % (first order) and 2.76 +- 0.09 % (second order) test error on CIFAR-10.
# * pc-darts: ``PC_DARTS_cifar`` of yuhuixu1993/PC-DARTS ``genotypes.py``
#   @283b086cc3d567aacf448511cd0b28d13a728f49 (Xu et al., ICLR 2020, arXiv:1907.05737,
#   Table 1: 3.6M, 2.57 +- 0.07 %).
# * gdas: ``GDAS_V1`` of D-X-Y/AutoDL-Projects ``lib/nas_infer_model/DXYs/genotypes.py``
#   @bb2f405961d73b5bf3a757178793aa1fc7038ca2, flattened from its pairs-per-node form; it
#   matches the search output ``DMS_V1`` in ``lib/nas/genotypes.py``
#   @13e908f4df865fc3bb7415e52bce72731154c45a (Dong and Yang, CVPR 2019, arXiv:1910.04465:
#   3.4M, 2.93 %). xiaomi-automl/FairDARTS ``fairdarts/genotypes.py`` copies it with the last
#   reduce edge reading node 2 instead of node 1; nasforge follows the authors' repository.
# Built at 36 channels and 20 layers (auxiliary head excluded), darts-v2, pc-darts and gdas
# have the published counts (3.35M, 3.63M, 3.37M); darts-v1 has 3.17M where DARTS reports
# 3.3M for its first-order cell (benchmarks/darts_params.py prints the counts).
_DARTS_V1 = _genotype(
    normal=[
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("skip_connect", 2),
    ],
    reduce=[
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("avg_pool_3x3", 0),
    ],
)
_DARTS_V2 = _genotype(
    normal=[
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ],
    reduce=[
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ],
)
_PC_DARTS = _genotype(
    normal=[
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 0),
        ("dil_conv_3x3", 1),
        ("sep_conv_5x5", 0),
        ("sep_conv_3x3", 1),
        ("avg_pool_3x3", 0),
        ("dil_conv_3x3", 1),
    ],
    reduce=[
        ("sep_conv_5x5", 1),
        ("max_pool_3x3", 0),
        ("sep_conv_5x5", 1),
        ("sep_conv_5x5", 2),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 3),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 2),
    ],
)
_GDAS = _genotype(
    normal=[
        ("skip_connect", 0),
        ("skip_connect", 1),
        ("skip_connect", 0),
        ("sep_conv_5x5", 2),
        ("sep_conv_3x3", 3),
        ("skip_connect", 0),
        ("sep_conv_5x5", 4),
        ("sep_conv_3x3", 3),
    ],
    reduce=[
        ("sep_conv_5x5", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_5x5", 2),
        ("sep_conv_5x5", 1),
        ("dil_conv_5x5", 2),
        ("sep_conv_3x3", 1),
        ("sep_conv_5x5", 0),
        ("sep_conv_5x5", 1),
    ],
)

#: The published genotypes by name (sources in the comment above this mapping's definition).
GENOTYPES: Mapping[str, Genotype] = MappingProxyType(
    {"darts-v1": _DARTS_V1, "darts-v2": _DARTS_V2, "pc-darts": _PC_DARTS, "gdas": _GDAS}
)
#: Parameters (millions, auxiliary head excluded) that the papers report for each genotype
#: at 36 channels and 20 layers on CIFAR-10.
PUBLISHED_PARAMS_M: Mapping[str, float] = MappingProxyType(
    {"darts-v1": 3.3, "darts-v2": 3.3, "pc-darts": 3.6, "gdas": 3.4}
)


def _check_inputs(cell: str, k: int, first: int, second: int) -> None:
    node = k + 2
    for source in (first, second):
        if not 0 <= source <= k + 1:
            raise InvalidArchitectureError(
                f"In the {cell} cell, node {node} takes input {source}, but node {node} can "
                f"only read nodes 0..{node - 1} (0 and 1 are the cell's inputs"
                + (f", 2..{node - 1} earlier intermediate nodes)." if node > 2 else ").")
            )
    if first == second:
        raise InvalidArchitectureError(
            f"In the {cell} cell, both edges of node {node} read node {first}; the two inputs "
            "of a DARTS node must differ."
        )


def _parse_compact(text: str) -> list[int]:
    bodies: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, body = part.partition("=")
        key = key.strip()
        if not sep:
            raise InvalidArchitectureError(
                f"expected 'normal=...;reduce=...', but {part.strip()!r} has no '='. "
                f"Example: {_EXAMPLE!r}."
            )
        if key not in CELLS:
            raise InvalidArchitectureError(
                unknown_name_message("cell type", key, CELLS) + " Write 'normal=...;reduce=...'."
            )
        if key in bodies:
            raise InvalidArchitectureError(f"the {key} cell is given twice.")
        bodies[key] = body
    missing = [cell for cell in CELLS if cell not in bodies]
    if missing:
        raise InvalidArchitectureError(
            f"the {' and '.join(missing)} cell is missing; write 'normal=...;reduce=...', "
            f"e.g. {_EXAMPLE!r}."
        )
    pairs: dict[str, list[tuple[str, int]]] = {}
    for cell in CELLS:
        nodes = bodies[cell].split("|")
        if len(nodes) != N_NODES:
            raise InvalidArchitectureError(
                f"the {cell} cell has {len(nodes)} node(s) separated by '|'; a DARTS cell has "
                f"{N_NODES} intermediate nodes (2..5)."
            )
        pairs[cell] = []
        for k, node in enumerate(nodes):
            edges = node.split(",")
            if len(edges) != 2:
                raise InvalidArchitectureError(
                    f"node {k + 2} of the {cell} cell has {len(edges)} edge(s) in "
                    f"{node.strip()!r}; each node has exactly 2, 'op~input,op~input'."
                )
            for edge in edges:
                match = _EDGE_RE.match(edge.strip())
                if match is None:
                    raise InvalidArchitectureError(
                        f"malformed edge {edge.strip()!r} in node {k + 2} of the {cell} cell: "
                        f"write 'operation~input', e.g. 'sep_conv_3x3~{k + 1}'."
                    )
                pairs[cell].append((match.group(1), int(match.group(2))))
    return _choices_from_pairs(pairs["normal"], pairs["reduce"])


def _parse_classic(text: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """The normal and reduce pairs of a ``Genotype(...)`` text."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise InvalidArchitectureError(
            f"it is not a valid Genotype(...) expression ({error.msg}, column "
            f"{error.offset}); write e.g. {repr(_DARTS_V2)[:60]!r}..."
        ) from None
    call = tree.body
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "Genotype"
    ):
        raise InvalidArchitectureError("expected one call Genotype(normal=..., reduce=...).")
    order = ("normal", "normal_concat", "reduce", "reduce_concat")
    if len(call.args) > len(order):
        raise InvalidArchitectureError(
            f"Genotype takes at most {len(order)} positional fields ({', '.join(order)}), "
            f"got {len(call.args)}."
        )
    fields: dict[str, ast.expr] = dict(zip(order, call.args, strict=False))
    for keyword in call.keywords:
        if keyword.arg is None or keyword.arg in fields:
            raise InvalidArchitectureError(
                f"Genotype field {keyword.arg or '**'!r} is given twice or unpacked."
            )
        fields[keyword.arg] = keyword.value
    unknown = [name for name in fields if name not in order + _EXTRA_FIELDS]
    if unknown:
        raise InvalidArchitectureError(
            unknown_name_message("Genotype field", unknown[0], order + _EXTRA_FIELDS)
        )
    for name in _EXTRA_FIELDS:
        if name in fields and _literal(fields[name], name) is not None:
            raise InvalidArchitectureError(
                f"Genotype field {name} must be None (its cell wiring is not part of the DARTS "
                "space)."
            )
    for cell in CELLS:
        if cell not in fields:
            raise InvalidArchitectureError(f"the Genotype has no {cell} cell.")
        concat = f"{cell}_concat"
        _check_concat(cell, _concat_value(fields[concat]) if concat in fields else CONCAT)
    normal = _pairs_of("normal", _literal(fields["normal"], "normal"))
    reduce = _pairs_of("reduce", _literal(fields["reduce"], "reduce"))
    return normal, reduce


def _literal(node: ast.expr, field: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InvalidArchitectureError(
            f"Genotype field {field} must be a literal (lists, tuples, strings, integers), got "
            f"{ast.unparse(node)[:60]!r}."
        ) from None


def _concat_value(node: ast.expr) -> Any:
    """The value of a concat field: a literal list, or ``range(a, b)``."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and not node.keywords
    ):
        bounds = [_literal(arg, "range") for arg in node.args]
        if 1 <= len(bounds) <= 3 and all(type(b) is int for b in bounds):
            return list(range(*bounds))
    return _literal(node, "concat")


def _check_concat(cell: str, value: Any) -> None:
    try:
        nodes = tuple(value)
    except TypeError:
        nodes = None
    if nodes != CONCAT:
        raise InvalidArchitectureError(
            f"the {cell} cell concatenates nodes {value!r}; in the DARTS space every cell "
            f"concatenates all its intermediate nodes, {list(CONCAT)}."
        )


def _pairs_of(cell: str, value: Any) -> list[tuple[str, int]]:
    """Check and flatten a cell's ``(op, input)`` pairs: 8 pairs, or 4 pairs of pairs."""
    if not isinstance(value, (list, tuple)):
        raise InvalidArchitectureError(
            f"the {cell} cell must be a list of (operation, input) pairs, got {_short(value)}."
        )
    items = list(value)
    if len(items) == N_NODES and all(
        isinstance(node, (list, tuple)) and len(node) == 2 and not isinstance(node[0], str)
        for node in items
    ):
        items = [edge for node in items for edge in node]  # AutoDL-Projects: pairs per node
    pairs: list[tuple[str, int]] = []
    for edge in items:
        if not (
            isinstance(edge, (list, tuple))
            and len(edge) == 2
            and isinstance(edge[0], str)
            and type(edge[1]) is int
        ):
            raise InvalidArchitectureError(
                f"each edge of the {cell} cell is a pair ('operation', input), got {_short(edge)}."
            )
        pairs.append((edge[0], edge[1]))
    if len(pairs) != 2 * N_NODES:
        raise InvalidArchitectureError(
            f"the {cell} cell lists {len(pairs)} (operation, input) pair(s); a DARTS cell has "
            f"{N_NODES} nodes of 2 edges each, {2 * N_NODES} pairs."
        )
    return pairs


def _choices_from_pairs(
    normal: Sequence[tuple[str, int]], reduce: Sequence[tuple[str, int]]
) -> list[int]:
    values: list[int] = []
    for cell, pairs in zip(CELLS, (normal, reduce), strict=True):
        for position, (op, source) in enumerate(pairs):
            values += [source, _op_index(op, cell, position // 2 + 2)]
    return values


def _op_index(name: str, cell: str, node: int) -> int:
    if name in _OP_INDEX:
        return _OP_INDEX[name]
    where = f"node {node} of the {cell} cell: "
    if name == "none":
        raise InvalidArchitectureError(
            where + "'none' (the zero operation) takes part in DARTS' continuous relaxation "
            "only and is never kept in a discrete genotype; choose from "
            f"{', '.join(GENOTYPE_OPS)}."
        )
    message = unknown_name_message("operation", name, GENOTYPE_OPS)
    raise InvalidArchitectureError(where + message[:1].lower() + message[1:])


def _as_ints(choices: Any) -> tuple[int, ...] | None:
    try:
        items = list(choices)
    except TypeError:
        return None
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            return None
        out.append(int(item))
    return tuple(out)


def _text(values: Sequence[int]) -> str:
    cells = []
    for cell, name in enumerate(CELLS):
        nodes = []
        for k in range(N_NODES):
            base = cell * _PER_CELL + 4 * k
            nodes.append(
                f"{GENOTYPE_OPS[values[base + 1]]}~{values[base]},"
                f"{GENOTYPE_OPS[values[base + 3]]}~{values[base + 2]}"
            )
        cells.append(f"{name}={'|'.join(nodes)}")
    return ";".join(cells)


def genotype_drawing(genotype: Genotype) -> dict[str, Any]:
    """The drawing of a genotype's two cells (:meth:`SearchSpace.drawing`): inputs
    ``c_{k-2}`` and ``c_{k-1}`` (the outputs of the two previous cells), intermediate nodes
    ``0``..``3`` (genotype inputs 2..5) with the operations of their two edges, and the
    output ``c_{k}`` fed by ``concat`` edges from the concatenated nodes."""
    from nasforge.spaces import _drawing

    names = ["c_{k-2}", "c_{k-1}", *(str(k) for k in range(N_NODES))]
    graphs = []
    for cell in CELLS:
        nodes = [_drawing.node(n, n, "input") for n in names[:2]]
        nodes += [_drawing.node(n, n) for n in names[2:]]
        nodes.append(_drawing.node("c_{k}", "c_{k}", "output"))
        edges = [
            _drawing.edge(names[source], str(i // 2), op)
            for i, (op, source) in enumerate(getattr(genotype, cell))
        ]
        concat = getattr(genotype, f"{cell}_concat")
        edges += [_drawing.edge(names[j], "c_{k}", "concat") for j in concat]
        graphs.append((cell, nodes, edges))
    return _drawing.cells(graphs)


def _op_legend() -> str:
    return ", ".join(f"{i}={name}" for i, name in enumerate(GENOTYPE_OPS))


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_EXAMPLE = _text(_choices_from_pairs(_DARTS_V2.normal, _DARTS_V2.reduce))
