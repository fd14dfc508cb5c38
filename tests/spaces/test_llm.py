"""The llm space: decisions, text, canonical form, costs and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge import spaces
from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.spaces.llm import LLMSpace
from nasforge.testing.models import TINY_LLM


def test_registered_with_reduced_defaults() -> None:
    space = spaces.create("llm")
    assert isinstance(space, LLMSpace)
    assert space.VOCAB == 256
    names = [d.name for d in space.decisions()]
    assert names[:4] == ["embed_dim", "depth", "l0_heads", "l0_mlp"]
    assert len(names) == 2 + 2 * space.MAX_DEPTH


def test_text_round_trip_and_canonical() -> None:
    space = LLMSpace(**TINY_LLM)
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        assert space.parse(str(arch)) == arch
        canon = space.canonical(arch)
        assert space.build(canon).config == space.build(arch).config
    short = space.parse("d16:h4q16m64")
    assert space.values(short)["depth"] == 1
    assert str(space.canonical(space.parse("d16:h4q16m64/h4q16m64"))) == "d16:h4q16m64"
    assert LLMSpace(**space.settings).settings == space.settings


def test_costs_match_the_built_network() -> None:
    torch = pytest.importorskip("torch")
    from nasforge.hardware.costs import count_flops

    space = LLMSpace(**TINY_LLM)
    rng = np.random.default_rng(1)
    for _ in range(3):
        arch = space.sample(rng)
        net = space.build(arch)
        counted = count_flops(net, torch.zeros(1, 16, dtype=torch.int64), device="cpu")
        costs = space.costs(arch)
        assert costs["params_M"] == pytest.approx(counted.params_M, rel=1e-9)
        assert costs["macs_M"] == pytest.approx(counted.macs_M, rel=1e-9)
    assert space.costs(space.smallest())["params_M"] < space.costs(space.largest())["params_M"]


def test_layer_specs_are_causal_and_sized() -> None:
    space = LLMSpace(**TINY_LLM)
    specs = space.layers(space.largest(), seq=8)
    assert [s.kind for s in specs] == ["token_embed", "encoder", "encoder", "lm_head"]
    assert all(s.causal for s in specs[1:-1]) and specs[0].seq == 8 and specs[-1].out == 256
    with pytest.raises(InvalidConfigError, match="position embedding"):
        space.layers(space.largest(), seq=17)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("d16:h3q16m32", "do not divide the attention dimension"),
        ("d16:h2q16m32", "heads are 4 wide"),
        ("d24:h2q8m32", "embed_dim = 24 is not an option"),
        ("d16:h2q8m32,h2q8m32,h2q8m32", "at most 2 layers"),
        ("16:h2q8m32", "d<embed>"),
        ("d16:h2m32", "malformed"),
    ],
)
def test_bad_text_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(InvalidArchitectureError, match=message):
        LLMSpace(**TINY_LLM).parse(text)


def test_bad_settings() -> None:
    with pytest.raises(InvalidConfigError, match="positive"):
        LLMSpace(embed_dims=())
    with pytest.raises(InvalidConfigError, match="keywords"):
        LLMSpace(**TINY_LLM).build(LLMSpace(**TINY_LLM).largest(), num_classes=3)


def test_architecture_of_a_space_with_other_options_is_refused() -> None:
    other = spaces.create("llm").largest()
    with pytest.raises(InvalidArchitectureError, match="other options"):
        LLMSpace(**TINY_LLM).values(other)
