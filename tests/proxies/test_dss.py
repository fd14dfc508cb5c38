"""TF-TAS's DSS-indicator and its two terms: a case computed by hand, the behaviour the
definition implies, language models, and networks without transformer layers."""

from __future__ import annotations

import math

import pytest

from nasforge import proxies
from nasforge.errors import UnsupportedOperationError
from nasforge.proxies import Batch

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from nasforge.ops.vit import Block, LayerConfig, VisionTransformer, ViTConfig  # noqa: E402
from nasforge.proxies.dss import synaptic_scores  # noqa: E402

NAMES = ["dss", "synaptic_diversity", "synaptic_saliency"]


class _Role(nn.Module):
    def __init__(self, role: str, first: str, second: str, w1, w2) -> None:
        super().__init__()
        self.nas_role = role
        for attr, w in ((first, w1), (second, w2)):
            w = torch.as_tensor(w, dtype=torch.float32)
            layer = nn.Linear(w.shape[1], w.shape[0], bias=False)
            with torch.no_grad():
                layer.weight.copy_(w)
            setattr(self, attr, layer)
        self.order = (first, second)

    def forward(self, x):
        return getattr(self, self.order[1])(getattr(self, self.order[0])(x))


class _Toy(nn.Module):
    """A linear chain: flatten, attention (qkv then proj), MLP (fc1 then fc2)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = _Role("attention", "qkv", "proj", [[-1, 0], [0, 2]], [[1, 0], [0, 1]])
        self.mlp = _Role("mlp", "fc1", "fc2", [[1, -1]], [[1], [1]])

    def forward(self, x):
        return self.mlp(self.attn(x.flatten(1)))


def _vit(qkv: int, seed: int, *, mlp: int = 32, depth: int = 2) -> VisionTransformer:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = tuple(LayerConfig(2, qkv, mlp) for _ in range(depth))
        return VisionTransformer(ViTConfig(8, 4, 16, layers, num_classes=4))


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return Batch(torch.randn(4, 3, 8, 8, generator=g), torch.tensor([0, 1, 2, 3]), 4)


def test_hand_computed_case():
    # On |W| and an input of ones: h1 = |Q| 1 = (1, 2), h2 = |P| h1 = (1, 2), h3 = |F1| h2 = 3,
    # out = |F2| h3 = (3, 3), R = 6. dR/dQ = (2, 2)(1, 1)^T: nuclear norm 4, ||Q||_* = 3;
    # dR/dP = (2, 2)(1, 2)^T: nuclear norm 2 sqrt(10), ||P||_* = 2. dR/dF1 = 2 h2^T = (2, 4),
    # dR/dF2 = (3, 3)^T: saliency 6 + 6.
    batch = Batch(torch.zeros(2, 1, 1, 2), torch.tensor([0, 1]), num_classes=2)
    scores = proxies.compute(_Toy(), NAMES, batch)
    diversity = 4 * 3 + 2 * math.sqrt(10) * 2
    assert scores["synaptic_diversity"] == pytest.approx(diversity, rel=1e-12)
    assert scores["synaptic_saliency"] == pytest.approx(12.0, rel=1e-12)
    assert scores["dss"] == pytest.approx(diversity + 12.0, rel=1e-12)


def test_data_free_and_each_term_alone_equals_the_shared_pass(images):
    net = _vit(16, seed=1)
    together = proxies.compute(net, NAMES, images)
    other = Batch(images.inputs * 5 + 1, images.targets, 4)
    for name in NAMES:
        alone = proxies.create(name).score(net, images)
        assert alone == together[name]
        assert proxies.create(name).score(net, other) == alone  # the data are not read
        assert math.isfinite(alone) and alone > 0
    assert together["dss"] == pytest.approx(
        together["synaptic_diversity"] + together["synaptic_saliency"]
    )
    assert proxies.create("synaptic-diversity").name == "synaptic_diversity"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wider_attention_has_more_synaptic_diversity_at_init(images, seed):
    narrow = proxies.create("synaptic_diversity").score(_vit(8, seed), images)
    wide = proxies.create("synaptic_diversity").score(_vit(32, seed), images)
    assert wide > narrow > 0


def test_saliency_reads_only_the_mlps(images):
    # Same seed, wider MLP: the attention's weights are drawn first and do not change, the
    # saliency reads more MLP weights.
    small = proxies.compute(_vit(16, 0, mlp=16), NAMES, images)
    large = proxies.compute(_vit(16, 0, mlp=64), NAMES, images)
    assert large["synaptic_saliency"] > small["synaptic_saliency"]


def test_deeper_network_scores_higher(images):
    shallow = proxies.create("dss").score(_vit(16, 0, depth=1), images)
    deep = proxies.create("dss").score(_vit(16, 0, depth=4), images)
    assert deep > shallow


def test_model_left_unchanged_and_no_nan_with_conv_stem(images):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cfg = ViTConfig(8, 4, 16, (LayerConfig(2, 16, 32),), num_classes=4, conv_stem=True)
        net = VisionTransformer(cfg)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    scores = proxies.compute(net, NAMES, images)
    assert all(math.isfinite(v) and v > 0 for v in scores.values())
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


class _TinyLM(nn.Module):
    """A decoder-only language model from the same blocks: token ids in, logits out."""

    def __init__(self, width: int, qkv: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(11, width)
        self.block = Block(width, 2, qkv, 2 * width, causal=True)
        self.head = nn.Linear(width, 11)

    def forward(self, tokens):
        return self.head(self.block(self.embed(tokens)))


def test_language_model_from_the_same_blocks():
    tokens = torch.tensor([[1, 4, 2, 7, 3], [0, 0, 1, 2, 3]])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        narrow, wide = _TinyLM(8, 4), _TinyLM(8, 16)
    a = synaptic_scores(narrow, tokens)
    b = synaptic_scores(wide, tokens)
    assert all(math.isfinite(v) and v > 0 for v in (*a.values(), *b.values()))
    assert b["synaptic_diversity"] > a["synaptic_diversity"]


def test_network_without_transformer_layers_is_a_clear_error(images):
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(4))
    for name in NAMES:
        with pytest.raises(UnsupportedOperationError, match="need transformer layers"):
            proxies.create(name).score(conv, images)


def test_extracted_sub_network_is_scored_and_the_supernet_refused():
    import numpy as np

    from nasforge import spaces

    space = spaces.create("vit-cifar")
    supernet = space.supernet()
    arch = supernet.sample(np.random.default_rng(0))
    batch = Batch(torch.zeros(2, 3, 32, 32), torch.tensor([0, 1]), 10)
    names = [*NAMES, "decoder_params"]
    scores = proxies.compute(supernet.extract(arch), names, batch)
    assert all(math.isfinite(v) and v > 0 for v in scores.values())
    built = proxies.create("decoder_params").score(space.build(arch), batch)
    assert scores["decoder_params"] == built
    with pytest.raises(UnsupportedOperationError, match=r"extract"):
        proxies.create("dss").score(supernet, batch)


def test_attention_without_its_linear_layers_is_a_clear_error(images):
    net = _vit(16, 0)
    del net[1].attn.proj
    with pytest.raises(UnsupportedOperationError, match="'proj'"):
        proxies.create("dss").score(net, images)
