"""The DARTS space: text and choices, canonical form, moves, encodings, errors, published
genotypes and the evaluation network (parameters, forward pass, drop-path)."""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, UnknownNameError
from nasforge.ops.darts import OPS as NET_OPS
from nasforge.ops.darts import DartsCell, NetworkCIFAR, drop_path
from nasforge.spaces.darts import (
    GENOTYPE_OPS,
    GENOTYPES,
    OPS,
    PUBLISHED_PARAMS_M,
    SIZE,
    DartsSpace,
    Genotype,
)

# The published genotypes as their repositories write them (see GENOTYPES for the sources).
CLASSIC = {
    "darts-v1": (
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
        "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
        "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], "
        "reduce_concat=[2, 3, 4, 5])"
    ),
    "darts-v2": (
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
        "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
        "reduce_concat=[2, 3, 4, 5])"
    ),
    "pc-darts": (
        "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), "
        "('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), "
        "('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), "
        "('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), "
        "('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], "
        "reduce_concat=range(2, 6))"
    ),
    "gdas": """Genotype(
  normal=[
    (('skip_connect', 0), ('skip_connect', 1)),
    (('skip_connect', 0), ('sep_conv_5x5', 2)),
    (('sep_conv_3x3', 3), ('skip_connect', 0)),
    (('sep_conv_5x5', 4), ('sep_conv_3x3', 3))],
  normal_concat=[2, 3, 4, 5],
  reduce=[
    (('sep_conv_5x5', 0), ('sep_conv_3x3', 1)),
    (('sep_conv_5x5', 2), ('sep_conv_5x5', 1)),
    (('dil_conv_5x5', 2), ('sep_conv_3x3', 1)),
    (('sep_conv_5x5', 0), ('sep_conv_5x5', 1))],
  reduce_concat=[2, 3, 4, 5],
  connectN=None, connects=None
)""",
}
DARTS_V2_TEXT = (
    "normal=sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0,sep_conv_3x3~1|"
    "sep_conv_3x3~1,skip_connect~0|skip_connect~0,dil_conv_3x3~2;"
    "reduce=max_pool_3x3~0,max_pool_3x3~1|skip_connect~2,max_pool_3x3~1|"
    "max_pool_3x3~0,skip_connect~2|skip_connect~2,max_pool_3x3~1"
)
# Parameters of the 36-channel, 20-layer network (without, with the auxiliary head).
PARAMS = {
    "darts-v1": (3_169_414, 3_645_840),
    "darts-v2": (3_349_342, 3_825_768),
    "pc-darts": (3_634_678, 4_111_104),
    "gdas": (3_368_782, 3_845_208),
}


@pytest.fixture(scope="module")
def darts() -> DartsSpace:
    space = spaces.create("darts")
    assert isinstance(space, DartsSpace)
    return space


@pytest.fixture(scope="module")
def samples(darts: DartsSpace) -> list[Architecture]:
    rng = np.random.default_rng(7)
    return [darts.sample(rng) for _ in range(200)]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Small convolutions run much faster on one thread than on several contended ones.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def positions_changed(a: Architecture, b: Architecture) -> list[int]:
    return [i for i, (x, y) in enumerate(zip(a.choices, b.choices, strict=True)) if x != y]


# -- text, choices, genotypes -----------------------------------------------------------------
def test_round_trips(darts: DartsSpace, samples: list[Architecture]) -> None:
    for arch in samples:
        assert darts.parse(str(arch)) == arch
        assert darts.from_choices(arch.choices) == arch
        assert str(darts.from_choices(arch.choices)) == str(arch)
        genotype = darts.to_genotype(arch)
        assert darts.from_genotype(genotype) == arch
        assert darts.parse(repr(genotype)) == arch
        assert len(arch.choices) == 32


def test_known_text_and_choices(darts: DartsSpace) -> None:
    arch = darts.named("darts-v2")
    assert str(arch) == DARTS_V2_TEXT
    assert darts.parse(DARTS_V2_TEXT) == arch
    assert arch.choices[:8] == (0, 3, 1, 3, 0, 3, 1, 3)
    assert arch.choices[16:20] == (0, 0, 1, 0)  # max_pool_3x3 is operation 0
    spaced = " " + DARTS_V2_TEXT.replace(",", " , ").replace("|", " | ").replace(";", " ;\n ")
    assert darts.parse(spaced.replace("~", " ~ ")) == arch


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_published_genotypes_parse_from_their_classic_text(darts: DartsSpace, name: str) -> None:
    arch = darts.parse(CLASSIC[name])
    assert arch == darts.named(name)
    assert darts.to_genotype(arch) == GENOTYPES[name]


def test_named_genotypes_and_the_reference_namedtuple(darts: DartsSpace) -> None:
    from collections import namedtuple

    Reference = namedtuple("Reference", "normal normal_concat reduce reduce_concat")
    Partial = namedtuple("Partial", "normal reduce")
    v1 = GENOTYPES["darts-v1"]
    ported = Reference(list(v1.normal), [2, 3, 4, 5], list(v1.reduce), range(2, 6))
    assert darts.from_genotype(ported) == darts.named("darts-v1")
    assert isinstance(darts.to_genotype(darts.named("gdas")), Genotype)
    assert sorted(GENOTYPES) == ["darts-v1", "darts-v2", "gdas", "pc-darts"]
    with pytest.raises(UnknownNameError, match="Did you mean 'pc-darts'"):
        darts.named("pcdarts")
    with pytest.raises(InvalidArchitectureError, match="has no normal_concat, reduce_concat"):
        darts.from_genotype(Partial(v1.normal, v1.reduce))  # type: ignore[arg-type]
    bad = v1._replace(normal=(*v1.normal[:-1], ("conv_7x1_1x7", 2)))
    with pytest.raises(InvalidArchitectureError, match=r"In genotype .*unknown operation"):
        darts.from_genotype(bad)
    assert NET_OPS == OPS  # the network builder knows the space's operations by name


# -- canonical form ---------------------------------------------------------------------------
def test_canonical_merges_swapped_inputs(darts: DartsSpace, samples: list[Architecture]) -> None:
    arch = darts.named("darts-v1")  # its first node lists input 1 before input 0
    choices = list(arch.choices)
    choices[0:4] = choices[2:4] + choices[0:2]
    other = darts.from_choices(choices)
    assert other != arch
    assert darts.canonical(other) == darts.canonical(arch)
    for sample in samples:
        canonical = darts.canonical(sample)
        assert darts.canonical(canonical) == canonical
        values = canonical.choices
        assert all(values[i] < values[i + 2] for i in range(0, 32, 4)), "edges sorted by input"
        # every reordering of every node's two edges has the same canonical form
        flipped = list(sample.choices)
        for i in range(0, 32, 4):
            flipped[i : i + 4] = flipped[i + 2 : i + 4] + flipped[i : i + 2]
        assert darts.canonical(darts.from_choices(flipped)) == canonical


def test_canonical_merges_relabelled_nodes(darts: DartsSpace) -> None:
    # nodes 2 and 3 read only the cell inputs: they can trade places (node 4 follows them)
    a = darts.parse(
        "normal=sep_conv_3x3~0,skip_connect~1|max_pool_3x3~0,dil_conv_5x5~1|"
        "avg_pool_3x3~2,sep_conv_5x5~3|skip_connect~4,sep_conv_3x3~2;" + DARTS_V2_TEXT.split(";")[1]
    )
    b = darts.parse(
        "normal=max_pool_3x3~0,dil_conv_5x5~1|sep_conv_3x3~0,skip_connect~1|"
        "avg_pool_3x3~3,sep_conv_5x5~2|skip_connect~4,sep_conv_3x3~3;" + DARTS_V2_TEXT.split(";")[1]
    )
    assert a != b
    assert darts.canonical(a) == darts.canonical(b)
    # a different operation is a different class
    c = darts.parse(str(b).replace("dil_conv_5x5", "dil_conv_3x3"))
    assert darts.canonical(c) != darts.canonical(a)


def test_relabelled_nodes_compute_the_same_function(darts: DartsSpace) -> None:
    # the cells of test_canonical_merges_relabelled_nodes: b is a with nodes 2 and 3 swapped,
    # so b's normal cells output the blocks of nodes 2 and 3 in the other order
    reduce = DARTS_V2_TEXT.split(";")[1]
    a = darts.parse(
        "normal=sep_conv_3x3~0,skip_connect~1|max_pool_3x3~0,dil_conv_5x5~1|"
        "avg_pool_3x3~2,sep_conv_5x5~3|skip_connect~4,sep_conv_3x3~2;" + reduce
    )
    b = darts.parse(
        "normal=max_pool_3x3~0,dil_conv_5x5~1|sep_conv_3x3~0,skip_connect~1|"
        "avg_pool_3x3~3,sep_conv_5x5~2|skip_connect~4,sep_conv_3x3~3;" + reduce
    )
    net_a = darts.build(a, channels=4, layers=5, auxiliary=False).eval()
    net_b = darts.build(b, channels=4, layers=5, auxiliary=False).eval()
    state = {}
    for key, value in net_a.state_dict().items():
        match = re.match(r"cells\.(\d+)\._ops\.([0-3])\.(.*)", key)
        if match and not net_a.cells[int(match.group(1))].reduction:
            j = int(match.group(2))  # the edges of node 2 (0, 1) trade places with node 3's
            key = f"cells.{match.group(1)}._ops.{j + 2 if j < 2 else j - 2}.{match.group(3)}"
        state[key] = value
    for i, cell in enumerate(net_a.cells):
        if cell.reduction:
            continue
        width = state[f"cells.{i}.preprocess1.op.2.weight"].shape[0]  # C: one node's block
        order = torch.arange(4 * width)
        order[: 2 * width] = torch.cat([order[width : 2 * width], order[:width]])
        consumers = [f"cells.{i + 1}.preprocess1.op.1.weight"]
        consumers += [
            f"cells.{i + 2}.preprocess0.{name}.weight" for name in ("op.1", "conv_1", "conv_2")
        ]
        consumers += ["classifier.weight"] if i == len(net_a.cells) - 1 else []
        for key in consumers:
            if key in state:
                state[key] = state[key][:, order]
    net_b.load_state_dict(state)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(net_a(x), net_b(x))


def test_canonical_class_count_of_cell_topologies(darts: DartsSpace) -> None:
    # With one operation, the 2880 ordered wirings of a cell fall into 79 classes: the orbits
    # of the 24 node relabellings counted with Burnside's lemma (as in the module docstring).
    reduce = darts.named("darts-v2").choices[16:]
    wirings = itertools.product(
        *[itertools.permutations(range(k + 2), 2) for k in range(4)],
    )
    classes = set()
    count = 0
    for wiring in wirings:
        normal = [v for first, second in wiring for v in (first, 0, second, 0)]
        classes.add(darts.canonical(darts.from_choices(normal + list(reduce))))
        count += 1
    assert count == 2880
    assert len(classes) == 79


def test_swapped_inputs_compute_the_same_function(darts: DartsSpace) -> None:
    arch = darts.named("pc-darts")
    choices = list(arch.choices)
    choices[4:8] = choices[6:8] + choices[4:6]  # swap the edges of node 3 of the normal cell
    swapped = darts.from_choices(choices)
    net_a = darts.build(arch, channels=4, layers=5, auxiliary=False).eval()
    net_b = darts.build(swapped, channels=4, layers=5, auxiliary=False).eval()
    state = net_a.state_dict()
    renamed = {}
    for key, value in state.items():
        match = re.match(r"cells\.(\d+)\._ops\.([23])\.(.*)", key)
        if match and not net_a.cells[int(match.group(1))].reduction:
            key = f"cells.{match.group(1)}._ops.{5 - int(match.group(2))}.{match.group(3)}"
        renamed[key] = value
    net_b.load_state_dict(renamed)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(net_a(x), net_b(x))


def test_canonical_keeps_parameter_counts(darts: DartsSpace, samples: list[Architecture]) -> None:
    for arch in samples[:5]:
        with torch.device("meta"):
            a = darts.build(arch, channels=8, layers=5)
            b = darts.build(darts.canonical(arch), channels=8, layers=5)
        assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())


# -- sampling, moves, size, encodings ------------------------------------------------------------
def test_sample_is_seeded_valid_and_uniform(darts: DartsSpace) -> None:
    a = [darts.sample(np.random.default_rng(3)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = np.random.default_rng(0)
    ops = np.zeros(len(GENOTYPE_OPS))
    last_node_pairs: dict[tuple[int, ...], int] = {}
    n = 3000
    for _ in range(n):
        values = darts.sample(rng).choices
        ops += np.bincount(values[1::2], minlength=len(GENOTYPE_OPS))
        pair = tuple(sorted((values[12], values[14])))
        last_node_pairs[pair] = last_node_pairs.get(pair, 0) + 1
    assert np.all(np.abs(ops / ops.sum() - 1 / 7) < 0.01)
    assert len(last_node_pairs) == 10  # node 5: the 10 unordered pairs of inputs 0..4
    assert all(abs(c / n - 0.1) < 0.025 for c in last_node_pairs.values())


def test_mutate_changes_exactly_one_thing(darts: DartsSpace, samples: list[Architecture]) -> None:
    rng = np.random.default_rng(1)
    arch = samples[0]
    neighbours = set(darts.neighbours(arch))
    kinds = set()
    for _ in range(600):
        child = darts.mutate(arch, rng)
        changed = positions_changed(arch, child)
        assert len(changed) == 1
        kinds.add("op" if changed[0] % 2 else "input")
        assert child in neighbours
    assert kinds == {"op", "input"}
    for sample in samples[:20]:
        assert len(positions_changed(sample, darts.mutate(sample, rng))) == 1


def test_neighbours_are_all_single_changes(darts: DartsSpace, samples: list[Architecture]) -> None:
    for arch in samples[:20]:
        nbrs = darts.neighbours(arch)
        # 2 cells x 4 nodes x 2 edges x 6 other operations, and for node k (0..3) k other
        # inputs per edge: 2 x 2 x (0 + 1 + 2 + 3)
        assert len(nbrs) == len(set(nbrs)) == 96 + 24 == 120
        assert arch not in nbrs
        assert all(len(positions_changed(arch, n)) == 1 for n in nbrs)
    assert darts.neighbours(samples[0]) == darts.neighbours(samples[0])


def test_size(darts: DartsSpace) -> None:
    per_cell = math.prod((k + 2) * (k + 1) * 7**2 for k in range(4))
    assert darts.size == SIZE == per_cell**2 == 275_647_219_316_498_534_400
    assert not darts.supports("iter")
    with pytest.raises(Exception, match="cannot be enumerated"):
        iter(darts)


def test_onehot_encoding(darts: DartsSpace, samples: list[Architecture]) -> None:
    for arch in samples[:20]:
        x = darts.encode(arch, "onehot")
        assert x.shape == (196,)
        assert x.sum() == 16
        grid = x.reshape(2, 14, 7)
        for cell in range(2):
            for k, start in enumerate((0, 2, 5, 9)):
                rows = grid[cell, start : start + k + 2]
                assert rows.sum() == 2 and rows.sum(axis=1).max() == 1
        flipped = list(arch.choices)
        flipped[0:4] = flipped[2:4] + flipped[0:2]
        assert np.array_equal(darts.encode(darts.from_choices(flipped)), x)
    with pytest.raises(UnknownNameError, match="onehot"):
        darts.encode(samples[0], "adjacency")


# -- errors -----------------------------------------------------------------------------------
BAD_TEXTS = [
    ("normal=" + DARTS_V2_TEXT.split(";")[0][7:], r"the reduce cell is missing"),
    (DARTS_V2_TEXT.replace("normal=", "normall="), r"Did you mean 'normal'"),
    (DARTS_V2_TEXT + ";" + DARTS_V2_TEXT.split(";")[1], r"reduce cell is given twice"),
    (DARTS_V2_TEXT.replace("|skip_connect~0,dil_conv_3x3~2", "", 1), r"has 3 node\(s\).* 4"),
    (
        DARTS_V2_TEXT.replace("sep_conv_3x3~0,sep_conv_3x3~1", "sep_conv_3x3~0", 1),
        r"node 2 of the normal cell has 1 edge\(s\)",
    ),
    (DARTS_V2_TEXT.replace("dil_conv_3x3~2", "dil_conv_3x3-2"), r"malformed edge 'dil_conv_3x3-2'"),
    (
        DARTS_V2_TEXT.replace("dil_conv_3x3", "sep_conv_7x7"),
        r"unknown operation 'sep_conv_7x7'; choose from .*avg_pool_3x3.*Did you mean",
    ),
    (DARTS_V2_TEXT.replace("dil_conv_3x3", "none"), r"'none' .*never kept"),
    (
        DARTS_V2_TEXT.replace("sep_conv_3x3~1", "sep_conv_3x3~2", 1),
        r"node 2 takes input 2, but node 2 can only read nodes 0..1",
    ),
    (
        DARTS_V2_TEXT.replace("dil_conv_3x3~2", "dil_conv_3x3~6"),
        r"node 5 takes input 6, but node 5 can only read nodes 0..4",
    ),
    (
        DARTS_V2_TEXT.replace("sep_conv_3x3~1", "sep_conv_3x3~0", 1),
        r"both edges of node 2 read node 0",
    ),
    ("", r"has no '='"),
    (
        CLASSIC["darts-v2"].replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[4, 5]"),
        r"normal cell concatenates nodes \[4, 5\]",
    ),
    (
        CLASSIC["darts-v2"].replace("('dil_conv_3x3', 2)], normal", "], normal"),
        r"normal cell lists 7 .* 8 pairs",
    ),
    (CLASSIC["darts-v2"].replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', x)"), r"literal"),
    (CLASSIC["darts-v2"].replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 2, 0.5)"), r"pair"),
    (CLASSIC["darts-v2"].replace("reduce_concat", "reduce_concatt"), r"Genotype field"),
    (CLASSIC["gdas"].replace("connects=None", "connects=[1]"), r"connects must be None"),
    (CLASSIC["darts-v2"][:-1], r"not a valid Genotype"),
    (CLASSIC["darts-v2"].replace("reduce=", "reduce_cell="), r"Genotype field"),
]


@pytest.mark.parametrize(("text", "message"), BAD_TEXTS)
def test_malformed_texts_are_rejected_with_clear_messages(
    darts: DartsSpace, text: str, message: str
) -> None:
    with pytest.raises(InvalidArchitectureError, match=message) as info:
        darts.parse(text)
    assert str(info.value).startswith("In DARTS architecture")


def test_bad_choices_and_objects(darts: DartsSpace) -> None:
    good = list(darts.named("darts-v2").choices)
    with pytest.raises(InvalidArchitectureError, match="32 integers"):
        darts.from_choices(good[:-1])
    with pytest.raises(InvalidArchitectureError, match="32 integers"):
        darts.from_choices([*good[:-1], True])
    with pytest.raises(InvalidArchitectureError, match="32 integers"):
        darts.from_choices(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArchitectureError, match=r"operation index 7; valid .*0..6"):
        darts.from_choices([*good[:-1], 7])
    with pytest.raises(InvalidArchitectureError, match="reduce cell, node 2 takes input 5"):
        darts.from_choices([*good[:16], 5, *good[17:]])
    with pytest.raises(InvalidArchitectureError, match="got int"):
        darts.parse(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'nb201'"):
        darts.neighbours(spaces.create("nb201").sample(np.random.default_rng(0)))
    assert darts.from_choices(list(np.asarray(good))) == darts.named("darts-v2")


def test_build_rejects_bad_settings(darts: DartsSpace) -> None:
    arch = darts.named("darts-v2")
    with pytest.raises(InvalidConfigError, match=r"layers=4 leaves stage\(s\) 2 without"):
        darts.build(arch, layers=4)
    with pytest.raises(InvalidConfigError, match=r"stage\(s\) 1, 2, 3"):
        darts.build(arch, layers=2)
    with pytest.raises(InvalidConfigError, match="channels"):
        darts.build(arch, channels=0)
    with pytest.raises(InvalidConfigError, match="drop_path_prob"):
        darts.build(arch, drop_path_prob=1.0)
    with pytest.raises(InvalidConfigError, match="num_classes"):
        darts.build(arch, num_classes=0)
    with pytest.raises(InvalidConfigError, match="unexpected keyword"):
        darts.build(arch, cells_per_stage=3)


# -- the network ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_parameters_of_the_published_networks(darts: DartsSpace, name: str) -> None:
    with torch.device("meta"):
        net = darts.build(darts.named(name))  # 36 channels, 20 layers, auxiliary head
    total = sum(p.numel() for p in net.parameters())
    # DARTS' count_parameters_in_MB leaves out the parameters named "auxiliary"
    without_aux = sum(p.numel() for n, p in net.named_parameters() if "auxiliary" not in n)
    assert (without_aux, total) == PARAMS[name]
    published = PUBLISHED_PARAMS_M[name]
    if name == "darts-v1":
        # DARTS Table 1 gives 3.3M for the first-order cell too, but the DARTS_V1 genotype of
        # the reference repositories builds 3.17M parameters in the reference network (the
        # second-order cell, built the same way, gives its 3.35M exactly).
        assert round(without_aux / 1e6, 1) == 3.2 and abs(without_aux / 1e6 - published) < 0.15
    else:
        assert round(without_aux / 1e6, 1) == published


def test_forward_shapes_with_and_without_auxiliary(darts: DartsSpace) -> None:
    arch = darts.named("gdas")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net = darts.build(arch, channels=8, layers=5, num_classes=7)
    assert [type(c).__name__ for c in net.cells] == ["DartsCell"] * 5
    assert [c.reduction for c in net.cells] == [False, True, False, True, False]
    net.train()
    logits, aux = net(x)
    assert logits.shape == aux.shape == (2, 7)
    net.eval()
    with torch.no_grad():
        out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7)
    plain = darts.build(arch, channels=8, layers=5, auxiliary=False).train()
    out = plain(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    assert not hasattr(plain, "auxiliary_head")


def test_drop_path_is_active_only_in_training(darts: DartsSpace) -> None:
    arch = darts.named("darts-v2")
    net = darts.build(arch, channels=4, layers=5, auxiliary=False, drop_path_prob=0.0)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net.eval()
    with torch.no_grad():
        reference = net(x)
        net.drop_path_prob = 0.6
        torch.testing.assert_close(net(x), reference)  # evaluation: no drop-path
        net.train()
        net.drop_path_prob = 0.0
        net.generator = torch.Generator().manual_seed(0)
        clean = net(x)
        net.drop_path_prob = 0.6
        dropped = net(x)
        net.generator = torch.Generator().manual_seed(5)
        dropped_again = net(x)
        net.generator = torch.Generator().manual_seed(5)
        torch.testing.assert_close(net(x), dropped_again)  # the generator decides the masks
    assert not torch.allclose(clean, dropped)
    assert not torch.allclose(dropped, dropped_again)


def test_drop_path_spares_identity_edges() -> None:
    ops = [("skip_connect", 0), ("skip_connect", 1)] * 4
    cell = DartsCell(ops, [2, 3, 4, 5], 6, 6, 6, reduction=False, reduction_prev=False).train()
    s = torch.randn(3, 6, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(cell(s, s, 0.9), cell(s, s, 0.0))
    x = torch.ones(1000, 2, 1, 1)
    out = drop_path(x, 0.25, torch.Generator().manual_seed(0))
    kept = out[:, 0, 0, 0]
    assert all(v == 0.0 or v == pytest.approx(1 / 0.75) for v in torch.unique(kept).tolist())
    assert abs(float((kept > 0).float().mean()) - 0.75) < 0.05
    assert torch.equal(out[:, 0], out[:, 1])  # one decision per sample
    assert drop_path(x, 0.0) is x


def test_darts_cell_rejects_a_malformed_genotype() -> None:
    with pytest.raises(InvalidArchitectureError, match="node 2 takes input 3"):
        DartsCell([("sep_conv_3x3", 3), ("skip_connect", 0)], [2], 4, 4, 4, False, False)
    with pytest.raises(InvalidArchitectureError, match="Did you mean 'sep_conv_3x3'"):
        DartsCell([("sep_conv_3x4", 1), ("skip_connect", 0)], [2], 4, 4, 4, False, False)
    genotype = GENOTYPES["darts-v2"]
    net = NetworkCIFAR(genotype, channels=4, layers=5)
    assert len(net.cells) == 5


def test_space_module_does_not_import_torch() -> None:
    code = (
        "import sys, nasforge; from nasforge import spaces; "
        "s = spaces.create('darts'); s.canonical(s.named('gdas')); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
