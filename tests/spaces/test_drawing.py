"""SearchSpace.drawing: the JSON data the dashboard draws an architecture from, for every
registered space, the forms and the user's spaces."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError
from nasforge.ops.param_free import PARAM_FREE
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.spaces.define_by_run import DefineByRunSpace

SCALARS = (str, int, float, bool)
FORMS = ("nb201+recipe", "nb201+binary", "mobilenet+recipe")


def check_schema(drawing: dict[str, Any]) -> None:
    """The schema of the dashboard's drawings (see nasforge.spaces._drawing)."""
    json.dumps(drawing, allow_nan=False)  # plain JSON, no NaN
    assert drawing["kind"] in ("cells", "strip")
    assert isinstance(drawing["settings"], dict)
    assert all(isinstance(v, SCALARS) for v in drawing["settings"].values())
    if drawing["kind"] == "cells":
        assert set(drawing) == {"kind", "cells", "settings"} and drawing["cells"]
        for cell in drawing["cells"]:
            assert set(cell) == {"name", "nodes", "edges"} and isinstance(cell["name"], str)
            ids = [n["id"] for n in cell["nodes"]]
            assert len(set(ids)) == len(ids)
            for node in cell["nodes"]:
                assert set(node) == {"id", "label", "role"}
                assert node["role"] in ("input", "node", "output")
                assert isinstance(node["label"], str) and node["label"]
            roles = {n["role"] for n in cell["nodes"]}
            assert {"input", "output"} <= roles
            for edge in cell["edges"]:
                assert set(edge) == {"source", "target", "op", "param_free"}
                assert edge["source"] in ids and edge["target"] in ids
                assert edge["param_free"] is (edge["op"] in PARAM_FREE)
        return
    assert set(drawing) == {"kind", "blocks", "settings"} and drawing["blocks"]
    for block in drawing["blocks"]:
        assert set(block) == {"label", "group", "choices", "skipped"}
        assert isinstance(block["label"], str) and block["label"]
        assert isinstance(block["group"], str) and isinstance(block["skipped"], bool)
        assert block["choices"] and all(isinstance(v, SCALARS) for v in block["choices"].values())


@pytest.mark.parametrize("name", [*spaces.names(), *FORMS])
def test_every_space_draws_sampled_architectures_as_plain_json(name):
    space = spaces.create(name)
    rng = np.random.default_rng(0)
    for arch in space.sample_distinct(rng, 4):
        drawing = space.drawing(arch)
        check_schema(drawing)
        assert json.loads(json.dumps(drawing)) == drawing
        assert space.drawing(space.parse(arch.text)) == drawing


@pytest.mark.parametrize("name", spaces.names())
def test_an_architecture_of_another_space_is_refused(name):
    space = spaces.create(name)
    other = "darts" if name != "darts" else "nb201"
    foreign = spaces.create(other).sample(np.random.default_rng(1))
    with pytest.raises(InvalidArchitectureError, match=other):
        space.drawing(foreign)
    with pytest.raises(InvalidArchitectureError):
        space.drawing(foreign.text)  # type: ignore[arg-type]


def test_nb201_draws_one_cell_of_six_edges_in_the_order_of_the_text():
    space = spaces.create("nb201")
    for arch in space.sample_distinct(np.random.default_rng(2), 10):
        (cell,) = space.drawing(arch)["cells"]
        assert [n["id"] for n in cell["nodes"]] == ["0", "1", "2", "3"]
        assert [n["role"] for n in cell["nodes"]] == ["input", "node", "node", "output"]
        written = re.findall(r"([a-z_0-9]+)~(\d)", arch.text)
        assert [e["op"] for e in cell["edges"]] == [op for op, _ in written]
        assert [e["source"] for e in cell["edges"]] == [src for _, src in written]
        assert [e["target"] for e in cell["edges"]] == ["1", "2", "2", "3", "3", "3"]
    dead = space.parse("|none~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|")
    edges = space.drawing(dead)["cells"][0]["edges"]
    assert [e["param_free"] for e in edges] == [True, True, False, True, True, True]


@pytest.mark.parametrize(
    ("name", "published", "conv"),
    [
        ("darts", "darts-v2", "sep_conv"),
        ("bats", "bats", "group_conv"),
        ("dass", "dass-99", "dil_conv"),
    ],
)
def test_darts_shaped_spaces_draw_both_cells_with_the_genotypes_inputs(name, published, conv):
    space = spaces.create(name)
    for arch in [*space.sample_distinct(np.random.default_rng(3), 5), space.named(published)]:
        genotype = space.to_genotype(arch)
        drawing = space.drawing(arch)
        assert [c["name"] for c in drawing["cells"]] == ["normal", "reduce"]
        inputs = ["c_{k-2}", "c_{k-1}", "0", "1", "2", "3"]
        for cell in drawing["cells"]:
            assert [n["id"] for n in cell["nodes"]] == [*inputs, "c_{k}"]
            ops = [e for e in cell["edges"] if e["op"] != "concat"]
            concat = [e for e in cell["edges"] if e["op"] == "concat"]
            pairs = getattr(genotype, cell["name"])
            assert len(ops) == 8 and len(concat) == 4
            assert [(e["op"], e["source"]) for e in ops] == [(op, inputs[i]) for op, i in pairs]
            assert [e["target"] for e in ops] == [str(k // 2) for k in range(8)]
            assert {(e["source"], e["target"]) for e in concat} == {
                (str(k), "c_{k}") for k in range(4)
            }
    # the space's own operation names
    ops = {e["op"] for c in space.drawing(space.named(published))["cells"] for e in c["edges"]}
    assert any(op.startswith(conv) for op in ops)


def mobilenet_values(space: SearchSpace, arch: Architecture) -> dict[str, Any]:
    return {d.name: d.options[c] for d, c in zip(space.decisions(), arch.choices, strict=True)}


def test_mobilenet_draws_one_block_per_layer_present_with_skips_marked():
    space = spaces.create("mobilenet")
    archs = [*space.sample_distinct(np.random.default_rng(4), 10), space.named("mobilenetv2")]
    for arch in archs:
        values = mobilenet_values(space, arch)
        blocks = space.drawing(arch)["blocks"]
        layers = [(s, b) for s in range(1, 7) for b in range(values[f"s{s}_depth"])]
        assert [b["label"] for b in blocks] == [
            "stem",
            "stage 0 · layer 0",
            *(f"stage {s} · layer {b}" for s, b in layers),
            "head",
        ]
        for block, (s, b) in zip(blocks[2:-1], layers, strict=True):
            prefix = f"s{s}b{b}"
            assert block["group"] == f"s{s}"
            assert block["choices"]["kernel"] == values[f"{prefix}_kernel"]
            assert block["choices"]["expand"] == values[f"{prefix}_expansion"]
            assert block["choices"]["width"] == values[f"s{s}_width"]
            assert block["skipped"] is bool(values.get(f"{prefix}_skip", False))
        assert blocks[-1]["choices"] == {"head": values["head"], "act": values["head_act"]}
    skipped = space.parse(str(archs[-1]).replace("s1=24:e6k3,e6k3", "s1=24:e6k3,skip:e6k3"))
    assert [b["skipped"] for b in space.drawing(skipped)["blocks"][2:4]] == [False, True]


def test_fbnet_draws_22_layers_and_the_head_skips_marked_where_they_are_identities():
    space = spaces.create("fbnet")
    arch = space.named("fbnet-a")  # skip at layer 1 (identity) and at layers 4, 5
    blocks = space.drawing(arch)["blocks"]
    assert len(blocks) == 23 and blocks[-1]["choices"] == {"width": 1504}
    names = space.blocks(arch)
    assert [b["choices"]["block"] for b in blocks[:-1]] == list(names)
    assert [i for i, b in enumerate(blocks) if b["skipped"]] == [0, 3, 4]
    assert blocks[5]["label"] == "stage 3 · layer 6" and blocks[5]["choices"]["kernel"] == 5
    # a skip that changes the width is a 1x1 convolution, drawn as a layer
    first = space.from_choices([8 if i == 5 else 0 for i in range(22)] + [0])
    assert space.drawing(first)["blocks"][5] == {
        "label": "stage 3 · layer 6",
        "group": "s3",
        "choices": {"block": "skip", "kernel": 1},
        "skipped": False,
    }


@pytest.mark.parametrize("name", ["ofa", "ofa-cifar"])
def test_ofa_draws_the_active_layers_and_the_resolution(name):
    space = spaces.create(name)
    for arch in space.sample_distinct(np.random.default_rng(5), 5):
        values = space.values(arch)
        drawing = space.drawing(arch)
        assert drawing["settings"] == {"resolution": space.resolution(arch)}
        layers = [(s, b) for s in range(1, 6) for b in range(values[f"s{s}_depth"])]
        assert len(drawing["blocks"]) == len(layers)
        for block, (s, b) in zip(drawing["blocks"], layers, strict=True):
            assert block["label"] == f"stage {s} · layer {b}"
            assert block["choices"]["kernel"] == values[f"s{s}b{b}_kernel"]
            assert block["choices"]["expand"] == values[f"s{s}b{b}_expansion"]


@pytest.mark.parametrize("name", ["vit", "vit-cifar", "llm"])
def test_transformers_draw_one_block_per_layer_within_the_depth(name):
    space = spaces.create(name)
    for arch in space.sample_distinct(np.random.default_rng(6), 5):
        values = space.values(arch)
        drawing = space.drawing(arch)
        assert len(drawing["blocks"]) == values["depth"]
        assert drawing["settings"]["embed_dim"] == values["embed_dim"]
        for i, block in enumerate(drawing["blocks"]):
            assert block["label"] == f"layer {i}"
            assert block["choices"]["heads"] == values[f"l{i}_heads"]


def test_the_table_space_draws_one_block_per_column():
    space = spaces.create("table")
    arch = space.sample(np.random.default_rng(7))
    blocks = space.drawing(arch)["blocks"]
    assert [b["label"] for b in blocks] == [d.name for d in space.decisions()]
    assert ",".join(f"{b['label']}={b['choices'][b['label']]}" for b in blocks) == arch.text


def test_the_forms_draw_the_base_with_their_choices_as_settings():
    recipe = spaces.create("nb201+recipe")
    arch = recipe.sample(np.random.default_rng(8))
    base, values = recipe.split(arch)
    drawing = recipe.drawing(arch)
    assert drawing["cells"] == spaces.create("nb201").drawing(base)["cells"]
    assert set(drawing["settings"]) == {f"recipe.{k}" for k in values}
    assert f"recipe:lr={drawing['settings']['recipe.lr']}," in arch.text

    quant = spaces.create("nb201+quant", settings={"cells_per_stage": 1})
    arch = quant.sample(np.random.default_rng(9))
    base, policy = quant.split(arch)
    settings = quant.drawing(arch)["settings"]
    assert [settings[f"precision · {slot}"] for slot in quant.slots] == list(policy)
    check_schema(quant.drawing(arch))

    binary = spaces.create("nb201+binary")
    arch = binary.sample(np.random.default_rng(10))
    assert binary.drawing(arch)["settings"] == {"binary": True}
    assert (
        binary.drawing(arch)["cells"]
        == spaces.create("nb201").drawing(binary.base_arch(arch))["cells"]
    )


class Widths(SearchSpace):
    """A product space using the default drawing: names with and without a layer prefix."""

    name = "widths"

    def decisions(self) -> tuple[Decision, ...]:
        return (
            Decision("stem_width", (16, 32)),
            Decision("stem_act", ("relu", "hswish")),
            Decision("depth", (1, 2)),
            Decision("head", ("conv", "linear")),
            Decision("head_dropout", (0.0, 0.2)),
        )

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = self.check_choices(choices)
        return Architecture(self.name, values, "-".join(map(str, values)))

    def parse(self, text: str) -> Architecture:
        return self.from_choices([int(c) for c in text.split("-")])


class Texts(SearchSpace):
    """A space without decisions and without a drawing of its own."""

    name = "texts"

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        return Architecture(self.name, tuple(choices), f"net{list(choices)}")

    def parse(self, text: str) -> Architecture:
        return self.from_choices([int(c) for c in re.findall(r"\d+", text)])

    def sample(self, rng: np.random.Generator) -> Architecture:
        return self.from_choices([int(rng.integers(5))])


def test_the_default_groups_decisions_by_layer_prefix_and_falls_back_to_the_text():
    space = Widths()
    drawing = space.drawing(space.parse("1-0-1-1-1"))
    check_schema(drawing)
    assert [(b["label"], b["choices"]) for b in drawing["blocks"]] == [
        ("stem", {"width": 32, "act": "relu"}),
        ("depth", {"depth": 2}),
        ("head", {"head": "linear", "dropout": 0.2}),
    ]
    texts = Texts()
    arch = texts.sample(np.random.default_rng(0))
    assert texts.drawing(arch) == {
        "kind": "strip",
        "blocks": [
            {"label": "architecture", "group": "", "choices": {"text": arch.text}, "skipped": False}
        ],
        "settings": {},
    }
    with pytest.raises(InvalidArchitectureError, match="texts"):
        texts.drawing(space.parse("0-0-0-0-0"))


def test_a_define_by_run_space_draws_only_the_choices_made():
    def net(trial: Any) -> dict[str, Any]:
        depth = trial.integer("depth", 1, 3)
        widths = [trial.choice(f"layer{i}_width", [8, 16]) for i in range(depth)]
        acts = [trial.choice(f"layer{i}_act", ["relu", "gelu"]) for i in range(depth)]
        return {"widths": widths, "acts": acts}

    space = DefineByRunSpace(net, name="test:net")
    arch = space.parse("depth=2,layer0_width=16,layer1_width=8,layer0_act=gelu,layer1_act=relu")
    drawing = space.drawing(arch)
    check_schema(drawing)
    assert [(b["label"], b["choices"]) for b in drawing["blocks"]] == [
        ("depth", {"depth": 2}),
        ("layer0", {"width": 16, "act": "gelu"}),
        ("layer1", {"width": 8, "act": "relu"}),
    ]


def test_param_free_is_the_supernets_set():
    from nasforge.ops.supernet import PARAM_FREE as SUPERNET_PARAM_FREE

    assert SUPERNET_PARAM_FREE is PARAM_FREE
    assert {"none", "skip_connect", "avg_pool_3x3"} <= PARAM_FREE
    assert not {"nor_conv_3x3", "nor_conv_1x1", "sep_conv_3x3"} & PARAM_FREE


def test_values_become_json_scalars():
    from nasforge.spaces._drawing import plain

    assert plain(np.int64(3)) == 3 and type(plain(np.int64(3))) is int
    assert plain(np.bool_(True)) is True and plain(np.str_("relu")) == "relu"
    assert plain(float("nan")) == "nan" and plain(np.float32(0.5)) == 0.5
    assert plain((1, 2)) == "(1, 2)" and plain(None) == "None"
