"""The transformer layers of ops.vit: shapes, attention against PyTorch's reference, the
causal mask hiding the future, the class-token head, the residual spatial reduction, the
convolutional stem, layer specs and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nasforge.errors import InvalidConfigError
from nasforge.ops.vit import (
    Attention,
    Block,
    ClassifierHead,
    LayerConfig,
    Mlp,
    PatchEmbed,
    SpatialReduction,
    TransformerLayerSpec,
    VisionTransformer,
    ViTConfig,
    build_layer,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_attention_has_its_own_qkv_dimension_and_matches_pytorch_attention():
    torch.manual_seed(0)
    attn = Attention(embed=12, heads=3, qkv_dim=24).eval()
    assert (attn.head_dim, attn.qkv.out_features, attn.proj.in_features) == (8, 72, 24)
    assert attn.nas_role == "attention"
    x = torch.randn(2, 7, 12, generator=_gen())
    out = attn(x)
    assert out.shape == (2, 7, 12)
    for causal in (False, True):
        attn.causal = causal
        q, k, v = attn.qkv(x).reshape(2, 7, 3, 3, 8).permute(2, 0, 3, 1, 4)
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        expected = attn.proj(ref.transpose(1, 2).reshape(2, 7, 24))
        assert torch.allclose(attn(x), expected, atol=1e-5)


def test_the_causal_mask_hides_the_future():
    torch.manual_seed(0)
    causal = Block(16, 2, 16, 32, causal=True).eval()
    plain = Block(16, 2, 16, 32).eval()
    plain.load_state_dict(causal.state_dict())
    x = torch.randn(1, 6, 16, generator=_gen(1))
    later = x.clone()
    later[:, 4:] = torch.randn(1, 2, 16, generator=_gen(2))
    # changing tokens 4 and 5 leaves the causal outputs of tokens 0..3 as they were ...
    assert torch.allclose(causal(x)[:, :4], causal(later)[:, :4], atol=1e-6)
    assert not torch.allclose(causal(x)[:, 4:], causal(later)[:, 4:], atol=1e-3)
    # ... while without the mask every token sees them
    assert not torch.allclose(plain(x)[:, :4], plain(later)[:, :4], atol=1e-3)
    # the first token attends to itself only: its attention output is its own value
    attn = causal.attn
    first = attn(x)[:, :1]
    v = attn.qkv(x)[:, :1, 32:]
    assert torch.allclose(first, attn.proj(v), atol=1e-5)


def test_block_is_pre_norm_with_two_residuals():
    torch.manual_seed(0)
    block = Block(8, 2, 4, 16).eval()
    x = torch.randn(3, 5, 8, generator=_gen())
    h = x + block.attn(block.norm1(x))
    assert torch.allclose(block(x), h + block.mlp(block.norm2(h)), atol=1e-6)
    mlp = Mlp(8, 16)
    assert mlp.nas_role == "mlp" and (mlp.fc1.out_features, mlp.fc2.in_features) == (16, 16)
    assert torch.allclose(mlp(x), mlp.fc2(F.gelu(mlp.fc1(x))))


def test_patch_embedding_shapes_class_token_and_position_embedding():
    embed = PatchEmbed(3, 10, 4, 16)
    x = torch.randn(2, 3, 16, 16, generator=_gen())
    out = embed(x)
    assert out.shape == (2, 1 + 16, 10) and embed.grid == 4
    assert torch.allclose(out[:, 0], (embed.cls_token + embed.pos_embed[:, :1])[0].expand(2, -1))
    patches = embed.proj(x).flatten(2).transpose(1, 2)
    assert torch.allclose(out[:, 1:], patches + embed.pos_embed[:, 1:])
    stem = PatchEmbed(3, 32, 4, 16, conv_stem=True)
    assert stem(x).shape == (2, 17, 32)
    assert stem.proj.kernel_size == (2, 2) and stem.proj.in_channels == 8


def test_bad_patch_and_head_settings_are_refused():
    with pytest.raises(InvalidConfigError, match="Patch size 5 does not divide the image side 16"):
        PatchEmbed(3, 8, 5, 16)
    with pytest.raises(InvalidConfigError, match="even patch size, got 3"):
        PatchEmbed(3, 8, 3, 12, conv_stem=True)
    with pytest.raises(InvalidConfigError, match="3 heads do not divide the attention dimension 8"):
        Attention(8, 3, 8)
    with pytest.raises(InvalidConfigError, match="0 heads"):
        Block(8, 0, 8, 16)
    with pytest.raises(InvalidConfigError, match="heads do not divide"):
        TransformerLayerSpec("encoder", 8, 5, heads=3, qkv=8, mlp=16)
    with pytest.raises(InvalidConfigError, match="Unknown transformer layer kind 'conv'"):
        TransformerLayerSpec("conv", 8, 5)
    with pytest.raises(InvalidConfigError, match="Patch size 16 does not divide"):
        VisionTransformer(ViTConfig(40, 16, 8, (LayerConfig(2, 8, 16),)))


def test_spatial_reduction_halves_the_grid_and_keeps_a_residual():
    torch.manual_seed(0)
    red = SpatialReduction(6, 12).eval()
    x = torch.randn(2, 1 + 16, 6, generator=_gen())
    out = red(x)
    assert out.shape == (2, 1 + 4, 12)
    assert torch.allclose(out[:, 0], red.cls_proj(x[:, 0]), atol=1e-6)
    grid = x[:, 1:].transpose(1, 2).reshape(2, 6, 4, 4)
    normed = red.norm(x[:, 1:]).transpose(1, 2).reshape(2, 6, 4, 4)
    main = red.conv(normed).flatten(2).transpose(1, 2)
    pooled = F.avg_pool2d(grid, 2).flatten(2).transpose(1, 2)
    assert torch.allclose(out[:, 1:], main + red.shortcut(pooled), atol=1e-5)
    # token (0, 0) of the output sees only input tokens (0, 0), (0, 1), (1, 0), (1, 1)
    moved = x.clone()
    moved[:, 1 + 15] += 1.0  # the last token, in the bottom-right cell
    assert torch.allclose(red(moved)[:, 1], out[:, 1], atol=1e-6)
    assert not torch.allclose(red(moved)[:, 4], out[:, 4], atol=1e-3)
    with pytest.raises(InvalidConfigError, match="even square token grid, got 9 tokens"):
        red(torch.randn(1, 10, 6))
    with pytest.raises(InvalidConfigError, match="even square token grid, got 8 tokens"):
        red(torch.randn(1, 9, 6))


def test_classifier_head_reads_the_class_token_only():
    head = ClassifierHead(8, 5).eval()
    x = torch.randn(2, 4, 8, generator=_gen())
    other = x.clone()
    other[:, 1:] = 0.0
    assert head(x).shape == (2, 5) and torch.allclose(head(x), head(other))


def test_layer_specs_follow_reductions_and_build_their_layers():
    config = ViTConfig(
        16, 2, 8, (LayerConfig(2, 8, 16), LayerConfig(2, 16, 48), LayerConfig(4, 32, 64)),
        num_classes=3, reductions=(1, 2), reduction_width=2,
    )  # fmt: skip
    specs = config.layer_specs()
    assert [s.kind for s in specs] == [
        "patch_embed", "encoder", "reduction", "encoder", "reduction", "encoder", "head",
    ]  # fmt: skip
    assert [(s.embed, s.seq) for s in specs] == [
        (8, 65), (8, 65), (8, 65), (16, 17), (16, 17), (32, 5), (32, 5),
    ]  # fmt: skip
    assert specs[2].out == 16 and specs[-1].out == 3
    assert specs[0].key == "patch_embed-c3-r16-p2-d8-n65"
    assert specs[3].key == "encoder-d16-n17-h2-q16-m48"
    assert specs[0].input_shape == (3, 16, 16) and specs[3].input_shape == (17, 16)
    net = VisionTransformer(config)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 3) and net.specs == specs
    x = torch.randn(1, 3, 16, 16)
    for spec, module in zip(specs, net, strict=True):
        alone = build_layer(spec)
        assert type(alone) is type(module)
        alone.load_state_dict(module.state_dict())
        assert torch.allclose(alone.eval()(x), module.eval()(x), atol=1e-6)
        x = module(x)


def test_causal_spec_builds_a_masked_block():
    spec = TransformerLayerSpec("encoder", 8, 5, heads=2, qkv=8, mlp=16, causal=True)
    block = build_layer(spec)
    assert isinstance(block, Block) and block.attn.causal and spec.key.endswith("-causal")
