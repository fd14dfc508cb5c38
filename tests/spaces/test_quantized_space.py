"""The "+quant" form of a space: the base's decisions plus one precision per layer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import nasforge
from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    UnsupportedOperationError,
)
from nasforge.evaluators.base import Evaluator
from nasforge.ops.quant import PRECISIONS, policy_of, quantizable_layers, quantized_layers
from nasforge.runs.profile import profile_arch
from nasforge.spaces.quantized import QuantizedSpace
from nasforge.trial import Direction, Result, TrialState

SMALL = {"cells_per_stage": 1}
TINY = {"channels": 4}
DEAD = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
SWAPPED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def nb201() -> QuantizedSpace:
    space = spaces.create("nb201+quant", settings=SMALL)
    assert isinstance(space, QuantizedSpace)
    return space


@pytest.fixture(scope="module")
def ofa() -> QuantizedSpace:
    space = spaces.create("ofa-cifar+quant", precisions=("int4", "int8", "fp8_e4m3"))
    assert isinstance(space, QuantizedSpace)
    return space


def test_decisions_are_the_base_s_plus_one_per_slot(nb201: QuantizedSpace) -> None:
    base = spaces.create("nb201")
    assert nb201.name == "nb201+quant" and nb201.base.name == "nb201"
    network = base.build(
        base.parse(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
            "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
        ),
        **SMALL,
    )
    assert nb201.slots == tuple(n for n, _ in quantizable_layers(network))
    decisions = nb201.decisions()
    assert decisions[:6] == base.decisions()
    assert [d.name for d in decisions[6:]] == [f"q{i}" for i in range(len(nb201.slots))]
    assert all(d.options == ("int2", "int4", "int8") for d in decisions[6:])
    assert nb201.size == base.size * 3 ** len(nb201.slots)


def test_mobile_slots_are_places_and_cover_every_layer() -> None:
    space = spaces.create("mobilenet+quant")
    assert "s1b0.expand.0" in space.slots and "s6b0.project.0" in space.slots
    assert space.slots[0] == "layers.0.0" and space.slots[-1] == "head.classifier"
    rng = np.random.default_rng(0)
    for _ in range(10):  # every network's layers have slots (no error), at their places
        arch = space.sample(rng)
        base, _ = space.split(arch)
        model = space.base.build(base, width_mult=0.25, resolution=32)
        quantized = space.quantize(model, arch)
        assert len(quantized_layers(quantized)) == len(quantizable_layers(model))
        assert set(policy_of(quantized)) <= set(space.split(arch)[1])


def test_sampling_variation_and_onehot(nb201: QuantizedSpace) -> None:
    rng = np.random.default_rng(0)
    arch = nb201.sample(rng)
    assert arch.space == "nb201+quant" and nb201.parse(str(arch)) == arch
    mutant = nb201.mutate(arch, rng)
    assert sum(a != b for a, b in zip(arch.choices, mutant.choices, strict=True)) == 1
    other = nb201.sample(rng)
    child = nb201.crossover(arch, other, rng)
    assert all(
        c in (a, b) for a, b, c in zip(arch.choices, other.choices, child.choices, strict=True)
    )
    vector = nb201.encode(arch)
    assert vector.shape == (5 * 6 + 3 * len(nb201.slots),) and vector.sum() == len(arch.choices)
    assert nb201.supports("encode") and "onehot" in nb201.encodings
    assert len(nb201.neighbours(arch)) == 6 * 4 + 2 * len(nb201.slots)


def test_split_join_and_text_round_trip(nb201: QuantizedSpace) -> None:
    base = spaces.create("nb201").from_index(6111)
    policy = tuple(("int2", "int4", "int8")[i % 3] for i in range(len(nb201.slots)))
    arch = nb201.join(base, policy)
    assert nb201.split(arch) == (base, policy)
    text = str(arch)
    assert text == f"{base}|q=" + ",".join(p[3:] for p in policy)
    assert nb201.parse(text) == arch
    assert nb201.parse(text.replace("|q=", "|q= ").replace(",", ", ")) == arch
    assert nb201.join(base, [int(p[3:]) for p in policy]) == arch  # bits name precisions
    ofa = spaces.create("ofa-cifar+quant", precisions=("int8", "fp8_e5m2", "fp32"))
    mixed = ofa.join(ofa.base.smallest(), ["fp8_e5m2", "fp32"] + ["int8"] * (len(ofa.slots) - 2))
    assert str(mixed).split("|q=")[1].startswith("fp8_e5m2,32,8")
    assert ofa.parse(str(mixed)) == mixed


def test_build_quantizes_each_layer_at_its_slot_s_precision(nb201: QuantizedSpace) -> None:
    rng = np.random.default_rng(1)
    arch = nb201.sample(rng)
    base, policy = nb201.split(arch)
    model = nb201.build(arch, **TINY)
    layers = quantized_layers(model)
    assert layers and [n for n, _ in layers] == [
        n for n, _ in quantizable_layers(nb201.base.build(base, **TINY, **SMALL))
    ]
    for name, layer in layers:
        expected = policy[nb201.slots.index(name)]
        assert layer.weight_precision == expected and layer.act_precision == expected
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    weights = spaces.create("nb201+quant", settings=SMALL, weights_only=True)
    assert {m.act_precision for _, m in quantized_layers(weights.build(arch, **TINY))} == {"fp32"}


def test_quantize_an_extracted_supernet_network_as_build_does(ofa: QuantizedSpace) -> None:
    supernet = ofa.base.supernet(width_mult=0.25).eval()
    rng = np.random.default_rng(2)
    for _ in range(3):
        arch = ofa.sample(rng)
        base, _ = ofa.split(arch)
        extracted = supernet.extract(base)
        quantized = ofa.quantize(extracted, arch)
        built = ofa.build(arch, width_mult=0.25)
        assert [(n, m.weight_precision) for n, m in quantized_layers(quantized)] == [
            (n, m.weight_precision) for n, m in quantized_layers(built)
        ]
        for name, layer in quantized_layers(quantized):  # the inherited weights are kept
            assert torch.equal(layer.weight, extracted.get_submodule(name).weight)
        assert quantized is not extracted
        assert all(type(m) is not nn.Conv2d for _, m in quantizable_layers(quantized))


def test_costs_decrease_with_fewer_bits(nb201: QuantizedSpace) -> None:
    base = spaces.create("nb201").from_index(6111)
    costs = {
        p: nb201.costs(nb201.join(base, [p] * len(nb201.slots)), **TINY)
        for p in ("int8", "int4", "int2")
    }
    assert costs["int8"]["model_bits"] > costs["int4"]["model_bits"] > costs["int2"]["model_bits"]
    assert costs["int8"]["bops"] == 4 * costs["int4"]["bops"] == 16 * costs["int2"]["bops"]
    assert costs["int8"]["params_M"] == costs["int2"]["params_M"]
    real = nb201.base.build(base, **TINY, **SMALL)
    weights = sum(m.weight.numel() for _, m in quantizable_layers(real))
    others = sum(p.numel() for p in real.parameters()) - weights
    assert costs["int4"]["model_bits"] == 4 * weights + 32 * others
    lower = nb201.join(base, ["int8"] * (len(nb201.slots) - 1) + ["int2"])
    assert nb201.costs(lower, **TINY)["model_bits"] < costs["int8"]["model_bits"]


def test_canonical_carries_precisions_in_the_mobile_family() -> None:
    space = spaces.create("mobilenet+quant", precisions=("int4", "int8"))
    base = space.base.named("mobilenetv2")
    skipped = space.base.parse(str(base).replace("s1=24:e6k3,e6k3", "s1=24:e6k3,skip:e6k3"))
    policy = ["int4"] * len(space.slots)
    policy[space.slots.index("s2b0.expand.0")] = "int8"
    arch = space.join(skipped, policy)
    canonical = space.canonical(arch)
    assert space.canonical(canonical) == canonical
    new_base, new_policy = space.split(canonical)
    assert new_base == space.base.canonical(skipped) != skipped
    assert new_policy[space.slots.index("s2b0.expand.0")] == "int8"
    assert new_policy[space.slots.index("s1b1.expand.0")] == "int4"  # absent: first option
    settings = {"width_mult": 0.25, "resolution": 32}
    one, two = space.build(arch, **settings), space.build(canonical, **settings)
    assert policy_of(one) == policy_of(two) and str(one) == str(two)
    # a slot whose layer the network lacks does not change the canonical form
    other = list(policy)
    other[space.slots.index("s1b1.expand.0")] = "int8"
    assert space.canonical(space.join(skipped, other)) == canonical


def test_canonical_when_the_base_merges_other_networks(nb201: QuantizedSpace) -> None:
    base = nb201.base
    dead = base.parse(DEAD)
    uniform = nb201.canonical(nb201.join(dead, ["int4"] * len(nb201.slots)))
    assert nb201.split(uniform)[0] == base.canonical(dead)
    present = {n for n, _ in quantizable_layers(base.build(base.canonical(dead), **SMALL))}
    for slot, precision in zip(nb201.slots, nb201.split(uniform)[1], strict=True):
        assert precision == ("int4" if slot in present else "int2")
    # nodes 1 and 2 swapped by the base: mixed precisions stay with the architecture
    swapped = base.parse(SWAPPED)
    policy = ["int8"] * len(nb201.slots)
    policy[nb201.slots.index("cells.0.edges.0.1")] = "int4"
    mixed = nb201.canonical(nb201.join(swapped, policy))
    present = {n for n, _ in quantizable_layers(base.build(swapped, **SMALL))}
    kept = tuple(p if s in present else "int2" for s, p in zip(nb201.slots, policy, strict=True))
    assert nb201.split(mixed) == (swapped, kept) and "int4" in kept
    assert nb201.canonical(mixed) == mixed
    assert nb201.dedupe_method == "canonical"


def test_a_study_records_closes_and_resumes_by_name(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/quant.db"
    evaluator = nasforge.evaluators.create(
        "proxy", space="ofa-cifar+quant", proxies=["params"], batch_size=2,
        build={"width_mult": 0.25},
    )  # fmt: skip
    study = nasforge.create_study(
        space="ofa-cifar+quant", strategy="random", seed=0, storage=url, study_name="q",
        objectives=["params:max"], evaluator=evaluator,
    )  # fmt: skip
    study.optimize(evaluator, n_trials=2)
    first = [t.arch for t in study.trials]
    study.storage.close()
    resumed = nasforge.load_study("q", url)
    assert resumed.space.name == "ofa-cifar+quant" and isinstance(resumed.space, QuantizedSpace)
    assert [t.arch for t in resumed.trials] == first
    resumed.optimize(evaluator, n_trials=3)
    assert [t.state for t in resumed.trials] == [TrialState.COMPLETE] * 3
    for trial in resumed.trials:
        costs = resumed.space.costs(trial.arch, width_mult=0.25)
        assert trial.metrics["params"] == pytest.approx(costs["params_M"])


class _Bits(Evaluator):
    """A cheap objective: fewer bits in the slots that are present, more operations kept."""

    space = "nb201+quant"

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"score": Direction.MAXIMIZE}

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        space = spaces.create(self.space, settings=SMALL)
        base, policy = space.split(arch)
        score = sum(base.choices) - sum(int(p[3:]) for p in policy) / 8
        return Result({"score": float(score)}, cost=1.0)


def test_a_predictor_guided_strategy_searches_the_joint_space() -> None:
    study = nasforge.create_study(
        space="nb201+quant", space_params={"settings": SMALL}, strategy="bananas", seed=0,
        strategy_params={"n_initial": 4, "k": 2, "n_candidates": 8, "n_members": 2, "epochs": 5},
        objectives=["score:max"], evaluator=_Bits(),
    )  # fmt: skip
    study.optimize(_Bits(), n_trials=7)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 7
    assert len({t.arch for t in study.trials}) == 7


def test_profile_prints_bits_and_bops() -> None:
    space = spaces.create("mobilenet+quant")
    arch = space.join(space.base.named("mobilenetv2"), ["int8"] * len(space.slots))
    data = profile_arch(str(arch), space="mobilenet+quant", num_classes=10, resolution=32)
    assert data["build"]["resolution"] == 32
    metrics = data["metrics"]
    assert metrics["bops"] == pytest.approx(metrics["macs_M"] * 1e6 * 64, rel=1e-6)
    assert metrics["model_bits"] > 0


def test_bad_input() -> None:
    with pytest.raises(InvalidConfigError, match="int5") as info:
        spaces.create("nb201+quant", precisions=("int4", "int5"), settings=SMALL)
    assert all(p in str(info.value) for p in PRECISIONS)
    with pytest.raises(InvalidConfigError, match="distinct"):
        spaces.create("nb201+quant", precisions=("int4", 4), settings=SMALL)
    with pytest.raises(UnsupportedOperationError, match=r"'embed.tokens' \(Embedding\)"):
        spaces.create("llm+quant")
    with pytest.raises(UnsupportedOperationError, match="decisions"):
        spaces.create("darts+quant")
    space = spaces.create("nb201+quant", precisions=("int4", "int8"), settings=SMALL)
    base = space.base.from_index(6111)
    with pytest.raises(InvalidArchitectureError, match=f"has 3 entries.*{len(space.slots)} slots"):
        space.join(base, ["int8"] * 3)
    text = str(space.join(base, ["int8"] * len(space.slots)))
    with pytest.raises(InvalidArchitectureError, match=f"{len(space.slots) - 1} entries"):
        space.parse(text.rsplit(",", 1)[0])
    with pytest.raises(InvalidArchitectureError, match=r"'int2'.*\['int4', 'int8'\]"):
        space.parse(text[:-1] + "2")
    with pytest.raises(InvalidArchitectureError, match="Unsupported precision 7"):
        space.parse(text[:-1] + "7")
    with pytest.raises(InvalidArchitectureError, match=r"\|q="):
        space.parse(str(base))
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'nb201\\+quant'"):
        space.join(space.join(base, ["int8"] * len(space.slots)), ["int8"] * len(space.slots))
    other = spaces.create("nb201+quant", precisions=("int2", "int8"), settings=SMALL)
    with pytest.raises(InvalidArchitectureError, match="other arguments"):
        other.build(space.join(base, ["int4"] * len(space.slots)))  # read as int2 there
    deeper = space.base.build(base, cells_per_stage=2)  # settings the space was not made with
    with pytest.raises(InvalidConfigError, match="has no slot"):
        space.quantize(deeper, space.join(base, ["int8"] * len(space.slots)))
