"""The super-transformer: extraction is exact on random sub-networks, ViTAS's private class
tokens and attention maps are private (and shared without ``private``), gradients stay in a
sub-network's slices, sampling is seeded and uniform, and bad input is refused."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.ops.elastic_transformer import ElasticBlock
from nasforge.ops.super_vit import SuperViT
from nasforge.ops.vit import PatchEmbed, VisionTransformer
from nasforge.spaces.vit import ViTSpace


@pytest.fixture(scope="module")
def space() -> ViTSpace:
    created = spaces.create("vit-cifar")
    assert isinstance(created, ViTSpace)
    return created


def _perturbed(space: ViTSpace, **settings: Any) -> SuperViT:
    """A super-transformer with every weight moved off its initial value: class tokens,
    position embeddings, LayerNorm scales and shifts, biases and batch-norm statistics."""
    torch.manual_seed(0)
    net = SuperViT(space, **settings)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.2)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.add_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
                m.running_var.mul_(1.5)
    return net.eval()


def _patch(space: ViTSpace, arch: Architecture, patch: int) -> Architecture:
    """``arch`` with another patch size (the first decision)."""
    names = [d.name for d in space.decisions()]
    index = names.index("patch_size")
    choices = list(arch.choices)
    choices[index] = space.decisions()[index].options.index(patch)
    return space.from_choices(choices)


def test_extraction_is_exact_on_100_random_sub_networks(space: ViTSpace) -> None:
    net = _perturbed(space)
    rng = np.random.default_rng(0)
    x = torch.randn(2, 3, space.IMAGE_SIZE, space.IMAGE_SIZE)
    outputs = []
    with torch.no_grad():
        for _ in range(100):
            arch = net.sample(rng)
            net.set_active(arch)
            sub = net.extract(arch)
            assert isinstance(sub, VisionTransformer) and not sub.training
            assert sub.config == space.config(arch)
            expected = sub(x)
            assert (net(x) - expected).abs().max().item() <= 1e-5
            outputs.append(expected)
    # The outputs are real: not constant, and different sub-networks compute differently.
    assert min(float(o.std()) for o in outputs) > 1e-3
    assert (outputs[0] - outputs[1]).abs().max() > 1e-3


def test_extraction_is_exact_with_stem_reductions_and_shared_parts(
    space: ViTSpace,
) -> None:
    net = _perturbed(space, private=False, conv_stem=True, reductions=(1, 4))
    rng = np.random.default_rng(1)
    x = torch.randn(2, 3, 32, 32)
    depths = set()
    with torch.no_grad():
        for _ in range(12):
            arch = net.sample(rng)
            depths.add(space.values(arch)["depth"])
            net.set_active(arch)
            assert (net(x) - net.extract()(x)).abs().max().item() <= 1e-5
    assert depths == {4, 5, 6}  # the reduction before layer 4 is in some, not in others


def test_private_class_tokens_per_patch_size_and_shared_without_private(
    space: ViTSpace,
) -> None:
    for private in (True, False):
        net = _perturbed(space, private=private)
        small = net.smallest()
        four, eight = _patch(space, small, 4), _patch(space, small, 8)
        tokens = []
        for arch in (four, eight):
            embed = net.extract(arch)[0]
            assert isinstance(embed, PatchEmbed)
            tokens.append(embed.cls_token)
        same = torch.equal(tokens[0], tokens[1])
        assert same is not private


def test_gradients_reach_only_the_active_slices(space: ViTSpace) -> None:
    net = _perturbed(space).train()
    arch = _patch(space, net.smallest(), 4)
    net.set_active(arch)
    net.zero_grad()
    net(torch.randn(2, 3, 32, 32)).square().sum().backward()
    config = net.active_config
    d = config.embed_dim
    embeds = net.embeds
    assert embeds["p8"].cls_token.grad is None
    assert embeds["p8"].proj.weight.grad is None
    cls = embeds["p4"].cls_token.grad
    assert cls is not None and cls[..., d:].abs().max() == 0 and cls[..., :d].abs().sum() > 0
    pos = embeds["p4"].pos_embed.grad
    assert pos is not None and pos[..., d:].abs().max() == 0
    depth = len(config.layers)
    for index, block in enumerate(net.blocks):
        assert isinstance(block, ElasticBlock)
        qk = block.attn.qk_weight.grad
        if index >= depth:
            assert qk is None and block.mlp.fc1.weight.grad is None
            continue
        layer = config.layers[index]
        used = block.private_keys.index(layer.heads)
        assert qk is not None
        for copy in range(qk.shape[0]):
            assert bool(qk[copy].abs().sum() > 0) is (copy == used)
        fc1 = block.mlp.fc1.weight.grad
        assert fc1 is not None
        assert fc1[layer.mlp_hidden :].abs().max() == 0 and fc1[:, d:].abs().max() == 0
    fc = net.fc.weight.grad
    assert fc is not None and fc[:, d:].abs().max() == 0


def test_shared_attention_map_has_one_copy(space: ViTSpace) -> None:
    shared = SuperViT(space, private=False)
    private = SuperViT(space)
    heads = len(space.HEADS)
    assert shared.blocks[0].attn.qk_weight.shape[0] == 1
    assert private.blocks[0].attn.qk_weight.shape[0] == heads
    assert shared.cls_token is not None and private.cls_token is None


def test_sample_is_seeded_and_uniform_per_decision(space: ViTSpace) -> None:
    net = SuperViT(space)
    first = [net.sample(np.random.default_rng(7)) for _ in range(3)]
    assert len(set(first)) == 1
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    assert [net.sample(rng_a) for _ in range(20)] == [net.sample(rng_b) for _ in range(20)]
    rng = np.random.default_rng(0)
    n = 3000
    samples = [space.values(net.sample(rng)) for _ in range(n)]
    # Decisions always inside the network (layer 0 is within every depth): uniform counts.
    for decision in space.decisions():
        if decision.name[:2] not in ("pa", "em", "de", "l0"):
            continue
        counts = np.array([sum(s[decision.name] == o for s in samples) for o in decision.options])
        expected = n / len(decision.options)
        assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected)), decision.name
    assert all(space.canonical(space.parse(str(a))) == a for a in first)


def test_settings_rebuild_the_same_super_transformer(space: ViTSpace) -> None:
    net = SuperViT(space, num_classes=5, private=False, reductions=[3], dropout=0.1)
    settings = json.loads(json.dumps(net.settings))
    again = space.supernet(**settings)
    assert isinstance(again, SuperViT) and again.settings == net.settings
    again.load_state_dict(net.state_dict())
    text = str(net.smallest())
    net.set_active(text)
    assert net.active == space.parse(text)


def test_bad_input_is_refused(space: ViTSpace) -> None:
    net = SuperViT(space)
    other = spaces.create("nb201").sample(np.random.default_rng(0))
    with pytest.raises(InvalidArchitectureError, match="belongs to space"):
        net.set_active(other)
    with pytest.raises(InvalidArchitectureError):
        net.extract(other)
    with pytest.raises(InvalidConfigError, match="position embedding holds 17"):
        net.set_active(_patch(space, net.largest(), 8))
        net(torch.zeros(1, 3, 64, 64))
    with pytest.raises(InvalidConfigError, match="needs a 'vit' space"):
        SuperViT(spaces.create("nb201"))
    with pytest.raises(InvalidConfigError, match="outside the layers"):
        SuperViT(space, reductions=(6,))
    with pytest.raises(InvalidConfigError, match="fewer reductions"):
        SuperViT(space, reductions=(1, 2, 3))


def test_training_updates_only_the_active_stem_statistics(space: ViTSpace) -> None:
    net = SuperViT(space, conv_stem=True).train()
    net.set_active(net.smallest())
    bn = net.embeds["p4"].stem[1]
    assert isinstance(bn, torch.nn.BatchNorm2d) and bn.running_mean is not None
    before = bn.running_mean.clone()
    net(torch.randn(4, 3, 32, 32))
    width = max(8, space.values(net.active)["embed_dim"] // 4)
    assert (bn.running_mean[:width] - before[:width]).abs().min() > 0
    assert torch.equal(bn.running_mean[width:], before[width:])
