"""LiteTransformerSearch's decoder (non-embedding) parameter count."""

from __future__ import annotations

import pytest

from nasforge import proxies
from nasforge.errors import UnsupportedOperationError
from nasforge.proxies import Batch

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from nasforge.ops.vit import Block, LayerConfig, VisionTransformer, ViTConfig  # noqa: E402

BATCH = Batch(torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]), num_classes=4)


def _layer_count(embed: int, qkv: int, mlp: int) -> int:
    attention = embed * 3 * qkv + 3 * qkv + qkv * embed + embed
    return attention + embed * mlp + mlp + mlp * embed + embed


def test_counts_attention_and_mlp_of_every_layer():
    layers = (LayerConfig(2, 16, 32), LayerConfig(4, 8, 24))
    net = VisionTransformer(ViTConfig(8, 4, 16, layers, num_classes=4))
    expected = _layer_count(16, 16, 32) + _layer_count(16, 8, 24)
    score = proxies.create("decoder-params").score(net, BATCH)
    assert score * 1e6 == pytest.approx(expected)
    # the embeddings, the layer norms and the classifier are what the plain count adds
    assert proxies.create("params").score(net, BATCH) > score


def test_same_layers_same_count_whatever_the_embedding():
    # LTS's point: the patch size and the classifier change the total, not the decoder count
    layers = (LayerConfig(2, 16, 32),)
    a = VisionTransformer(ViTConfig(8, 4, 16, layers, num_classes=4))
    b = VisionTransformer(ViTConfig(8, 2, 16, layers, num_classes=100))
    assert proxies.create("decoder_params").score(a, BATCH) == proxies.create(
        "decoder_params"
    ).score(b, BATCH)


def test_shared_parameters_count_once():
    block = Block(8, 2, 8, 16)
    net = nn.Sequential(block, block)
    assert proxies.create("decoder_params").score(net, BATCH) * 1e6 == _layer_count(8, 8, 16)


def test_network_without_transformer_layers_is_a_clear_error():
    with pytest.raises(UnsupportedOperationError, match="needs transformer layers"):
        proxies.create("decoder_params").score(nn.Linear(3, 4), BATCH)
