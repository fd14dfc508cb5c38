"""DecoderLM, its layers and the SuperLM super-network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.errors import InvalidConfigError
from nasforge.ops.llm import DecoderLM, LMConfig, build_lm_layer
from nasforge.ops.super_lm import SuperLM
from nasforge.ops.vit import LayerConfig, TransformerLayerSpec, build_layer
from nasforge.spaces.llm import LLMSpace
from nasforge.testing.models import TINY_LLM


def _lm() -> DecoderLM:
    torch.manual_seed(0)
    return DecoderLM(LMConfig(256, 16, 16, (LayerConfig(2, 16, 32), LayerConfig(4, 16, 48))))


def test_decoder_is_causal() -> None:
    lm = _lm().eval()
    tokens = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 256
    a, b = lm(tokens), lm(changed)
    assert a.shape == (2, 12, 256)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_bad_tokens() -> None:
    lm = _lm()
    with pytest.raises(InvalidConfigError, match="longer than the position embedding"):
        lm(torch.zeros(1, 17, dtype=torch.int64))
    with pytest.raises(InvalidConfigError, match=r"0\.\.255"):
        lm(torch.full((1, 4), 256, dtype=torch.int64))
    with pytest.raises(InvalidConfigError, match="integer dtype"):
        lm(torch.zeros(1, 4))
    with pytest.raises(InvalidConfigError, match="do not divide"):
        DecoderLM(LMConfig(256, 16, 16, (LayerConfig(3, 16, 32),)))


def test_layer_specs_build_the_same_modules() -> None:
    cfg = _lm().config
    specs = cfg.layer_specs()
    modules = [build_layer(s) for s in specs]
    x = torch.zeros(1, 16, dtype=torch.int64)
    for module in modules:
        x = module(x)
    assert x.shape == (1, 16, 256)
    with pytest.raises(InvalidConfigError, match="token_embed"):
        build_lm_layer(TransformerLayerSpec("head", 16, 4, out=10))


def test_super_lm_extraction_is_exact() -> None:
    torch.manual_seed(0)
    space = LLMSpace(**TINY_LLM)
    net = SuperLM(space).eval()
    tokens = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(2))
    rng = np.random.default_rng(0)
    archs = [net.largest(), net.smallest(), *(net.sample(rng) for _ in range(100))]
    outputs = set()
    for arch in archs:
        net.set_active(arch)
        sub = net.extract()
        assert isinstance(sub, DecoderLM) and sub.config == space.config(arch)
        full = net(tokens)
        assert (full - sub(tokens)).abs().max().item() <= 1e-5
        params = sum(p.numel() for p in sub.parameters()) / 1e6
        assert params == pytest.approx(space.costs(arch)["params_M"])
        outputs.add(round(full.sum().item(), 3))
    assert len(outputs) > 10  # different sub-networks compute different functions
    assert net.active == archs[-1]


def test_super_lm_shares_weights() -> None:
    space = LLMSpace(**TINY_LLM)
    net = SuperLM(space)
    net.set_active(space.smallest())
    loss = net(torch.zeros(1, 4, dtype=torch.int64)).sum()
    loss.backward()
    grad = net.tokens.weight.grad
    assert grad is not None and grad[:, 16:].abs().sum() == 0 and grad[:, :16].abs().sum() > 0
    with pytest.raises(InvalidConfigError, match="no settings"):
        SuperLM(space, private=True)
