"""The vit spaces: decisions, text round trips and the canonical form, the networks they build
(Q-K-V dimension and MLP width per layer, convolutional stem, reductions), closed-form costs
equal to the FLOP counter's, the published presets against their papers, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge import spaces
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, UnknownNameError
from nasforge.hardware import count_flops
from nasforge.ops.vit import VisionTransformer
from nasforge.runs.profile import parse_arch, profile_arch
from nasforge.spaces._vit_presets import NETWORKS, PUBLISHED
from nasforge.spaces.vit import ViTCifarSpace, ViTSpace

VIT = ViTSpace()
CIFAR = ViTCifarSpace()
NAMES = ["deit-ti", "deit-s", "deit-b", "autoformer-t", "autoformer-s", "autoformer-b"]


def test_both_spaces_are_registered_with_their_settings():
    assert isinstance(spaces.create("vit"), ViTSpace)
    assert isinstance(spaces.create("vit-cifar"), ViTCifarSpace)
    assert (VIT.IMAGE_SIZE, VIT.DEFAULT_CLASSES, VIT.default_input) == (224, 1000, (1000, 224))
    assert (CIFAR.IMAGE_SIZE, CIFAR.DEFAULT_CLASSES, CIFAR.default_input) == (32, 10, (10, 32))
    assert VIT.PATCH_SIZES == (14, 16) and VIT.HEAD_DIMS == (48, 64)
    assert VIT.EMBED_DIMS == (192, 216, 240, 320, 384, 448, 528, 576, 624, 768)
    assert VIT.HEADS == (3, 4, 5, 6, 7, 8, 9, 10, 12) and VIT.MLP_RATIOS == (3.0, 3.5, 4.0)
    assert (VIT.MAX_DEPTH, CIFAR.MAX_DEPTH) == (max(VIT.DEPTHS), max(CIFAR.DEPTHS)) == (16, 6)
    assert CIFAR.PATCH_SIZES == (4, 8) and CIFAR.EMBED_DIMS == (64, 96, 128)
    assert (CIFAR.HEADS, CIFAR.HEAD_DIMS, CIFAR.MLP_RATIOS) == ((2, 4), (16, 32), (2.0, 3.0, 4.0))


@pytest.mark.parametrize("space", [VIT, CIFAR], ids=["vit", "vit-cifar"])
def test_decisions_are_patch_embed_depth_then_heads_head_dim_mlp_per_layer(space):
    names = [d.name for d in space.decisions()]
    assert names[:6] == [
        "patch_size",
        "embed_dim",
        "depth",
        "l0_heads",
        "l0_head_dim",
        "l0_mlp_ratio",
    ]
    assert len(names) == 3 + 3 * space.MAX_DEPTH
    assert names[-1] == f"l{space.MAX_DEPTH - 1}_mlp_ratio"
    options = {d.name: d.options for d in space.decisions()}
    assert options["l5_heads"] == space.HEADS and options["depth"] == space.DEPTHS


@pytest.mark.parametrize("space", [VIT, CIFAR], ids=["vit", "vit-cifar"])
def test_text_round_trips_and_canonical_form(space):
    rng = np.random.default_rng(0)
    for _ in range(40):
        arch = space.sample(rng)
        assert space.parse(str(arch)) == arch
        canon = space.canonical(arch)
        assert "/" not in str(canon) and space.canonical(canon) == canon
        assert space.layers(canon) == space.layers(arch)
        values = space.values(arch)
        assert len(str(canon).split("layers=")[1].split(",")) == values["depth"]
        if values != space.values(canon):
            assert arch != canon and "/" in str(arch)


def test_layers_have_heads_times_head_dim_qkv_and_mlp_ratio_times_width():
    rng = np.random.default_rng(1)
    for _ in range(10):
        arch = CIFAR.sample(rng)
        values = CIFAR.values(arch)
        config = CIFAR.config(arch)
        assert len(config.layers) == values["depth"]
        for i, layer in enumerate(config.layers):
            assert layer.heads == values[f"l{i}_heads"]
            assert layer.qkv_dim == values[f"l{i}_heads"] * values[f"l{i}_head_dim"]
            assert layer.mlp_hidden == int(values[f"l{i}_mlp_ratio"] * values["embed_dim"])
        assert CIFAR.layers(arch) == config.layer_specs()
    # after a reduction the MLP is a ratio of the wider input
    arch = CIFAR.parse("patch=4;embed=64;layers=h2q32m3,h2q32m3,h4q64m2,h2q32m4")
    config = CIFAR.config(arch, reductions=(2,), reduction_width=2)
    assert [layer.mlp_hidden for layer in config.layers] == [192, 192, 256, 512]
    assert [s.seq for s in CIFAR.layers(arch, reductions=(2,)) if s.kind == "encoder"] == [
        65,
        65,
        17,
        17,
    ]


@pytest.mark.parametrize("space", [VIT, CIFAR], ids=["vit", "vit-cifar"])
def test_largest_and_smallest_take_the_last_and_first_options(space):
    big, small = space.values(space.largest()), space.values(space.smallest())
    for decision in space.decisions():
        assert big[decision.name] == decision.options[-1]
        assert small[decision.name] == decision.options[0]
    assert space.costs(space.largest())["params_M"] > space.costs(space.smallest())["params_M"]


def _counted(space, arch, **settings):
    """count_flops of the network built on the meta device (no memory, no arithmetic)."""
    side = settings.get("image_size", space.IMAGE_SIZE)
    with torch.device("meta"):
        net = VisionTransformer(space.config(arch, **settings))
    return count_flops(net, (3, side, side))


@pytest.mark.parametrize("space", [VIT, CIFAR], ids=["vit", "vit-cifar"])
def test_closed_form_costs_equal_the_flop_counter(space):
    rng = np.random.default_rng(2)
    side = space.IMAGE_SIZE if space is CIFAR else 112  # 112 = 8 * 14 = 7 * 16
    for trial in range(8 if space is CIFAR else 4):
        arch = space.sample(rng)
        settings: dict = {"num_classes": 7, "image_size": side}
        if trial % 2:
            settings["conv_stem"] = True
        if trial % 4 >= 2:  # a reduction needs an even token grid
            while (side // space.values(arch)["patch_size"]) % 2:
                arch = space.sample(rng)
            settings["reductions"] = (1,)
        counted = _counted(space, arch, **settings)
        costs = space.costs(arch, **settings)
        assert costs["params_M"] == pytest.approx(counted.params_M, abs=1e-9)
        assert costs["macs_M"] == pytest.approx(counted.macs_M, abs=1e-9)
    # and on a really built network, at the space's own image size
    arch = CIFAR.sample(rng)
    net = CIFAR.build(arch, conv_stem=True)
    counted = count_flops(net, (3, 32, 32))
    assert CIFAR.costs(arch, conv_stem=True) == {
        "params_M": pytest.approx(counted.params_M),
        "macs_M": pytest.approx(counted.macs_M),
    }


def test_built_cifar_networks_run_at_their_resolution():
    rng = np.random.default_rng(3)
    x = torch.randn(2, 3, 32, 32)
    for _ in range(3):
        arch = CIFAR.sample(rng)
        net = CIFAR.build(arch, num_classes=5)
        assert net(x).shape == (2, 5)
    arch = CIFAR.parse("patch=8;embed=64;layers=h2q32m2,h2q32m2,h2q32m2,h2q32m2")
    assert CIFAR.build(arch, resolution=16)(torch.randn(1, 3, 16, 16)).shape == (1, 10)
    net = CIFAR.build(arch, reductions=(2,), conv_stem=True, epochs=3, batch_size=8)
    assert net(x).shape == (2, 10)


@pytest.mark.parametrize("space", [VIT, CIFAR], ids=["vit", "vit-cifar"])
def test_layer_specs_hold_every_layer_of_every_network(space):
    every = {spec.key for spec in space.layer_specs(num_classes=10)}
    rng = np.random.default_rng(4)
    for _ in range(20):
        assert {s.key for s in space.layers(space.sample(rng), num_classes=10)} <= every
    encoders = [s for s in space.layer_specs() if s.kind == "encoder"]
    per_place = len(space.HEADS) * len(space.HEAD_DIMS) * len(space.MLP_RATIOS)
    assert len(encoders) == len(space.PATCH_SIZES) * len(space.EMBED_DIMS) * per_place


# -- published networks ------------------------------------------------------------------------
# Published figures at 224x224 and 1,000 classes (params M, FLOPs = multiply-adds G):
# DeiT: Touvron et al., "Training data-efficient image transformers & distillation through
# attention", ICML 2021, arXiv:2012.12877, Table 1 gives the architectures (and #params rounded
# to 5M/22M/86M); 5.7M/1.3G, 22.1M/4.6G, 86.6M/17.6G are issue 20's reading of the tables that
# list DeiT. AutoFormer: Chen et al., "AutoFormer: Searching Transformers for Visual
# Recognition", ICCV 2021, arXiv:2107.00651, table of ImageNet results: 5.7M/1.3G,
# 22.9M/5.1G, 54M/11G (abstract: 53.7M for AutoFormer-B).
ROUNDED_FLOPS = {"deit-ti"}  # "1.3" G: 1.254 G is 3.6% off, inside the rounding [1.25, 1.35)
FLOPS_GAP = {"autoformer-s"}  # the released subnet counts 4.77 G against the paper's 5.1 G


def test_published_table_is_the_papers():
    assert {n: PUBLISHED[n] for n in NAMES} == {
        "deit-ti": (5.7, 1.3),
        "deit-s": (22.1, 4.6),
        "deit-b": (86.6, 17.6),
        "autoformer-t": (5.7, 1.3),
        "autoformer-s": (22.9, 5.1),
        "autoformer-b": (54.0, 11.0),
    }
    for name in NAMES:
        params, macs, source = VIT.published(name)
        assert (params, macs) == PUBLISHED[name] and "arXiv:" in source


@pytest.mark.parametrize("name", NAMES)
def test_presets_have_their_papers_parameters_within_3_percent(name):
    params = VIT.costs(VIT.named(name))["params_M"]
    assert abs(params - PUBLISHED[name][0]) <= 0.03 * PUBLISHED[name][0]


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ROUNDED_FLOPS | FLOPS_GAP])
def test_presets_have_their_papers_flops_within_3_percent(name):
    macs_g = VIT.costs(VIT.named(name))["macs_M"] / 1000
    assert abs(macs_g - PUBLISHED[name][1]) <= 0.03 * PUBLISHED[name][1]


def test_deit_ti_flops_lie_in_the_rounding_interval_of_the_published_figure():
    """DeiT-Ti's published "1.3G" has two significant digits: 1.2537 G (3.6% below 1.3) is
    inside [1.25, 1.35), what "1.3" stands for; 3% of a figure this coarse cannot be judged."""
    macs_g = VIT.costs(VIT.named("deit-ti"))["macs_M"] / 1000
    assert 1.25 <= macs_g < 1.35


@pytest.mark.xfail(
    strict=True,
    reason="AutoFormer-S as released (microsoft/Cream AutoFormer/experiments/subnet/"
    "AutoFormer-S.yaml) counts 4.77 G multiply-adds, 6.4% below the paper's 5.1 G; the "
    "authors' own get_complexity() formula (which also charges the classifier at every token "
    "and relative positions) gives 4.90 G for it, still 4% below: the gap is not explained "
    "here",
)
def test_autoformer_s_flops_within_3_percent_of_the_paper():
    macs_g = VIT.costs(VIT.named("autoformer-s"))["macs_M"] / 1000
    assert abs(macs_g - 5.1) <= 0.03 * 5.1


def test_autoformer_s_flops_gap_stays_what_the_report_says():
    macs_g = VIT.costs(VIT.named("autoformer-s"))["macs_M"] / 1000
    assert 0.92 * 5.1 <= macs_g <= 0.94 * 5.1


@pytest.mark.parametrize("name", NAMES)
def test_presets_are_canonical_points_of_the_space_that_round_trip(name):
    arch = VIT.named(name)
    assert VIT.canonical(arch) == arch and VIT.parse(str(arch)) == arch
    assert parse_arch(VIT, name) == arch and str(arch) == NETWORKS[name]


def test_preset_layers_are_the_papers():
    deit_b = VIT.config(VIT.named("deit-b"))
    assert (deit_b.patch_size, deit_b.embed_dim, len(deit_b.layers)) == (16, 768, 12)
    assert {(la.heads, la.qkv_dim, la.mlp_hidden) for la in deit_b.layers} == {(12, 768, 3072)}
    auto_t = VIT.config(VIT.named("autoformer-t"))
    assert (auto_t.embed_dim, len(auto_t.layers)) == (192, 13)
    assert auto_t.layers[10].heads == 4 and auto_t.layers[10].qkv_dim == 256
    assert [la.mlp_hidden for la in auto_t.layers[:3]] == [672, 672, 576]
    auto_b = VIT.config(VIT.named("autoformer-b"))
    assert (auto_b.embed_dim, len(auto_b.layers), auto_b.layers[5].qkv_dim) == (576, 14, 640)


def test_profile_prints_the_costs_of_a_named_network():
    report = profile_arch("deit-ti", space="vit")
    assert report["metrics"]["params_M"] == pytest.approx(5.717416)
    assert report["metrics"]["macs_M"] == pytest.approx(1253.6832)
    assert report["input_shape"] == [3, 224, 224]


def test_presets_name_build_and_data_settings():
    for space in (VIT, CIFAR):
        presets = space.presets()
        assert set(presets) == {"paper", "search", "reduced"}
        assert presets["paper"]["resolution"] == space.IMAGE_SIZE
    net = CIFAR.build_preset(CIFAR.smallest(), "reduced", num_classes=3)
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


# -- bad input ---------------------------------------------------------------------------------
def test_heads_that_do_not_divide_the_attention_dimension_are_refused():
    with pytest.raises(InvalidArchitectureError, match="3 heads do not divide the attention"):
        VIT.parse("patch=16;embed=192;layers=" + ",".join(["h3q100m4"] * 12))
    with pytest.raises(InvalidArchitectureError, match="head dimension 96 / 3 = 32"):
        VIT.parse("patch=16;embed=192;layers=" + ",".join(["h3q96m4"] * 12))
    with pytest.raises(InvalidArchitectureError, match="0 heads") as info:
        CIFAR.parse("patch=4;embed=64;layers=h0q32m2,h2q32m2,h2q32m2,h2q32m2")
    assert f"Example: {str(CIFAR.smallest())!r}" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("patch=16;layers=h3q192m4", "expected the parts patch=..., embed=..., layers="),
        ("patch=sixteen;embed=192;layers=h3q192m4", "patch must be a whole number"),
        ("patch=16;embed=192;layers=" + ",".join(["h3q192m4"] * 17), "at most 16 layers"),
        ("patch=16;embed=192;layers=h3q192", "layer 0 'h3q192' is malformed"),
        ("patch=16;embed=100;layers=" + ",".join(["h3q192m4"] * 12), "embed_dim = 100"),
        ("patch=16;embed=192;layers=" + ",".join(["h3q192m5"] * 12), "l0_mlp_ratio = 5.0"),
        ("patch=16;embed=192;layers=h3q192m4", "depth = 1 is not an option"),
    ],
)
def test_malformed_text_says_what_is_wrong(text, message):
    with pytest.raises(InvalidArchitectureError, match=message.replace(".", r"\.")) as info:
        VIT.parse(text)
    assert "Example: 'patch=16;embed=192;layers=h3q192m4" in str(info.value)


def test_unknown_preset_lists_the_published_networks():
    with pytest.raises(UnknownNameError) as info:
        VIT.named("deit-tiny")
    for name in NAMES:
        assert name in str(info.value)
    with pytest.raises(UnknownNameError, match="autoformer-b"):
        VIT.published("autoformer-l")
    with pytest.raises(UnknownNameError, match="it has none"):
        CIFAR.named("deit-ti")


def test_settings_out_of_range_are_refused():
    arch = VIT.named("deit-ti")
    with pytest.raises(
        InvalidConfigError, match="Patch size 16 does not divide the image side 200"
    ):
        VIT.build(arch, resolution=200)
    with pytest.raises(InvalidConfigError, match="Patch size 16 does not divide"):
        VIT.costs(arch, image_size=100)
    with pytest.raises(InvalidConfigError, match=r"distinct layer indices in 0\.\.11"):
        VIT.config(arch, reductions=(12,))
    with pytest.raises(InvalidConfigError, match="even token grid, got 7x7"):
        VIT.config(arch, image_size=112, reductions=(3,))
    with pytest.raises(InvalidConfigError, match="unexpected keyword argument"):
        VIT.build(arch, width_mult=2)
    with pytest.raises(InvalidConfigError, match="num_classes"):
        CIFAR.config(CIFAR.smallest(), num_classes=0)
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'vit'"):
        CIFAR.config(arch)


def test_supernet_is_the_super_transformer_of_the_space_without_data_settings():
    from nasforge.ops.super_vit import SuperViT

    net = CIFAR.supernet(num_classes=3, private=False, epochs=2, batch_size=8, resolution=32)
    assert isinstance(net, SuperViT) and net.space is CIFAR
    assert net.settings["num_classes"] == 3 and net.settings["private"] is False


def test_layers_and_costs_take_builds_resolution_keyword():
    space = spaces.create("vit")
    arch = space.named("deit-ti")
    assert space.layers(arch, resolution=112) == space.layers(arch, image_size=112)
    assert space.layers(arch, resolution=112)[0].seq == (112 // 16) ** 2 + 1
    assert space.costs(arch, resolution=112)["macs_M"] < space.costs(arch)["macs_M"]
    with pytest.raises(InvalidConfigError, match="once"):
        space.config(arch, image_size=112, resolution=224)
