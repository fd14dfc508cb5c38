"""Weight-entangled transformer layers: extraction is exact, sub-layers are leading slices,
private self-attention maps are private, and bad sizes are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.errors import InvalidConfigError
from nasforge.ops.elastic_transformer import ElasticBlock
from nasforge.ops.vit import Block


def _perturb(module: torch.nn.Module, seed: int = 0) -> None:
    """Move every weight off its initial value (LayerNorm scales and shifts, biases)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)


@pytest.mark.parametrize("causal", [False, True])
def test_extract_equals_active_path_for_random_sub_layers(causal: bool) -> None:
    torch.manual_seed(0)
    block = ElasticBlock(24, 4, 8, 96, causal=causal).eval()
    _perturb(block)
    rng = np.random.default_rng(0)
    for _ in range(30):
        heads, head_dim = int(rng.integers(1, 5)), int(rng.integers(1, 9))
        mlp, embed = int(rng.integers(1, 97)), int(rng.integers(1, 25))
        block.set_active(heads, head_dim, mlp)
        x = torch.randn(3, 7, embed)
        sub = block.extract(embed)
        assert isinstance(sub, Block)
        assert sub.attn.heads == heads and sub.attn.head_dim == head_dim
        assert sub.mlp.fc1.out_features == mlp
        assert (block(x) - sub(x)).abs().max().item() <= 1e-5


def test_largest_sub_layer_is_the_whole_block_and_smaller_ones_are_leading_slices() -> None:
    torch.manual_seed(1)
    block = ElasticBlock(16, 4, 8, 32).eval()
    _perturb(block)
    block.set_active(2, 4, 8)
    sub = block.extract(12)
    q = 8
    m = block.attn.max_qkv
    qk = block.attn.qk_weight[0]
    expected = torch.cat([qk[:q, :12], qk[m : m + q, :12], block.attn.v.weight[:q, :12]])
    assert torch.equal(sub.attn.qkv.weight, expected)
    assert torch.equal(sub.attn.proj.weight, block.attn.proj.weight[:12, :q])
    assert torch.equal(sub.mlp.fc1.weight, block.mlp.fc1.weight[:8, :12])
    assert torch.equal(sub.mlp.fc2.bias, block.mlp.fc2.bias[:12])
    assert torch.equal(sub.norm2.weight, block.norm2.weight[:12])
    # A smaller head dimension regroups the same leading rows: 2 heads x 4 = 4 heads x 2.
    block.set_active(4, 2, 8)
    assert torch.equal(block.extract(12).attn.qkv.weight, expected)


def test_gradients_of_a_sub_layer_reach_only_its_slices() -> None:
    torch.manual_seed(2)
    block = ElasticBlock(16, 4, 8, 32)
    block.set_active(2, 4, 8)
    block(torch.randn(2, 5, 12)).square().sum().backward()
    m = block.attn.max_qkv
    grad = block.attn.qk_weight.grad
    assert grad is not None
    assert grad[0, :8, :12].abs().sum() > 0 and grad[0, m : m + 8, :12].abs().sum() > 0
    inside = torch.zeros_like(grad, dtype=torch.bool)
    inside[0, :8, :12] = True
    inside[0, m : m + 8, :12] = True
    assert grad[~inside].abs().max() == 0
    fc1 = block.mlp.fc1.weight.grad
    assert fc1 is not None and fc1[8:].abs().max() == 0 and fc1[:, 12:].abs().max() == 0
    assert fc1[:8, :12].abs().sum() > 0
    norm = block.norm1.weight.grad
    assert norm is not None and norm[12:].abs().max() == 0 and norm[:12].abs().min() > 0
    proj = block.attn.proj.weight.grad
    assert proj is not None and proj[12:].abs().max() == 0 and proj[:, 8:].abs().max() == 0


def test_private_self_attention_maps_are_one_per_key() -> None:
    torch.manual_seed(3)
    block = ElasticBlock(16, 4, 8, 32, private_keys=(2, 4)).eval()
    _perturb(block)
    x = torch.randn(2, 5, 16)
    block.set_active(2, 8, 32, key=2)
    with_two = block(x)
    block.set_active(2, 8, 32, key=4)
    with_four = block(x)
    assert (with_two - with_four).abs().max() > 1e-3
    assert (block.extract(16)(x) - with_four).abs().max() <= 1e-5
    # Training the map of key 4 leaves key 2's Q-K weights without gradient; V is shared.
    block.train()
    block(x).sum().backward()
    grad = block.attn.qk_weight.grad
    assert grad is not None and grad[0].abs().max() == 0 and grad[1].abs().sum() > 0
    assert block.attn.v.weight.grad is not None and block.attn.v.weight.grad.abs().sum() > 0


def test_bad_sizes_and_keys_are_refused() -> None:
    block = ElasticBlock(16, 4, 8, 32)
    with pytest.raises(InvalidConfigError, match=r"1\.\.4"):
        block.set_active(5, 8, 32)
    with pytest.raises(InvalidConfigError, match="key=None"):
        block.set_active(2, 8, 32, key=2)
    with pytest.raises(InvalidConfigError, match="wider than its largest width 16"):
        block(torch.zeros(1, 3, 20))
    with pytest.raises(InvalidConfigError, match=r"1\.\.16"):
        block.extract(17)
    private = ElasticBlock(16, 4, 8, 32, private_keys=(2, 4))
    with pytest.raises(InvalidConfigError, match=r"per key \[2, 4\]"):
        private.set_active(3, 8, 32, key=3)
    with pytest.raises(InvalidConfigError, match="positive integers"):
        ElasticBlock(16, 0, 8, 32)
