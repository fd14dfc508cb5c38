"""The ofa spaces: text round trips, the canonical form, the mobilenet networks they stand
for, layers and forward passes at the architecture's resolution, presets, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge import spaces
from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.hardware import count_flops
from nasforge.ops.mobile import make_divisible
from nasforge.spaces.ofa import OFACifarSpace, OFASpace

OFA = OFASpace()
CIFAR = OFACifarSpace()

LARGEST_MOBILENET = (
    "stem=16-hswish;s0=16:e1k3;s1=24:e6k7,e6k7,e6k7,e6k7;"
    "s2=40:" + ",".join(["e6k7-se_mobilenetv3"] * 4) + ";"
    "s3=80:" + ",".join(["e6k7-hswish"] * 4) + ";"
    "s4=112:" + ",".join(["e6k7-se_mobilenetv3-hswish"] * 4) + ";"
    "s5=160:" + ",".join(["e6k7-se_mobilenetv3-hswish"] * 4) + ";"
    "s6=320:;head=efficient-hswish"
)


def test_both_spaces_are_registered_with_their_settings():
    assert {"ofa", "ofa-cifar"} <= set(spaces.names())
    assert isinstance(spaces.create("ofa"), OFASpace)
    assert isinstance(spaces.create("ofa-cifar"), OFACifarSpace)
    assert tuple(range(128, 225, 4)) == OFA.RESOLUTIONS and CIFAR.RESOLUTIONS == (16, 24, 32)
    assert (OFA.STEM_STRIDE, OFA.FIRST_STRIDE, OFA.DEFAULT_CLASSES) == (2, 2, 1000)
    assert (CIFAR.STEM_STRIDE, CIFAR.FIRST_STRIDE, CIFAR.DEFAULT_CLASSES) == (1, 1, 10)


def test_decisions_are_resolution_then_depth_kernel_expansion_per_stage():
    names = [d.name for d in OFA.decisions()]
    assert names[:4] == ["resolution", "s1_depth", "s1b0_kernel", "s1b0_expansion"]
    assert len(names) == 1 + 5 * (1 + 4 * 2)
    options = {d.name: d.options for d in OFA.decisions()}
    assert options["s3_depth"] == (2, 3, 4)
    assert options["s5b3_kernel"] == (3, 5, 7)
    assert options["s2b1_expansion"] == (3, 4, 6)
    assert OFA.size == 25 * (3 * 9**4) ** 5


@pytest.mark.parametrize("space", [OFA, CIFAR], ids=["ofa", "ofa-cifar"])
def test_text_round_trips_and_canonical_form(space):
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        assert space.parse(str(arch)) == arch
        canon = space.canonical(arch)
        assert "/" not in str(canon)
        assert space.canonical(canon) == canon
        assert space.to_mobilenet(canon) == space.to_mobilenet(arch)
        values = space.values(canon)
        for stage in range(1, 6):
            for block in range(values[f"s{stage}_depth"], 4):
                assert values[f"s{stage}b{block}_kernel"] == 3
                assert values[f"s{stage}b{block}_expansion"] == 3
    # spaces and line breaks are allowed, and the blocks after "/" are optional
    text = str(space.largest()).replace(";", " ;\n ")
    assert space.parse(text) == space.largest()


def test_blocks_beyond_the_depth_are_written_after_a_slash_and_canonical_drops_them():
    base = "res=160;s1=e4k5,e3k3;s2=e6k7,e6k7,e6k7;s3=e3k3,e3k3;s4=e4k3,e4k3;s5=e3k5,e3k5"
    arch = OFA.parse(base.replace("s1=e4k5,e3k3", "s1=e4k5,e3k3/e6k7"))
    assert str(arch).split(";")[1] == "s1=e4k5,e3k3/e6k7,e3k3"
    assert arch != OFA.parse(base)
    assert OFA.canonical(arch) == OFA.parse(base)
    assert str(OFA.canonical(arch)) == base
    assert OFA.resolution(arch) == 160


def test_largest_and_smallest():
    assert str(OFA.largest()) == "res=224;" + ";".join(
        f"s{i}=" + ",".join(["e6k7"] * 4) for i in range(1, 6)
    )
    assert str(CIFAR.smallest()) == "res=16;" + ";".join(f"s{i}=e3k3,e3k3" for i in range(1, 6))
    assert OFA.resolution(OFA.smallest()) == 128


def test_to_mobilenet_gives_the_same_network_in_the_mobilenet_space():
    mobile = OFA.to_mobilenet(OFA.largest())
    assert mobile.space == "mobilenet"
    assert str(mobile) == LARGEST_MOBILENET
    small = str(OFA.to_mobilenet(OFA.smallest())).split(";")
    assert small[2:4] == ["s1=24:e3k3,e3k3", "s2=40:e3k3-se_mobilenetv3,e3k3-se_mobilenetv3"]


def test_layers_follow_the_strides_widths_and_resolution():
    arch = CIFAR.parse(
        "res=24;s1=e3k3,e4k5;s2=e6k7,e3k3;s3=e3k3,e3k3,e4k7;s4=e3k3,e3k3;s5=e6k5,e3k3"
    )
    specs = CIFAR.layers(arch, width_mult=0.25)
    assert specs[0].resolution == 24 and specs[0].stride == 1
    blocks = [s for s in specs if s.kind == "mbconv"]
    assert len(blocks) == 1 + 2 + 2 + 3 + 2 + 2
    assert [b.out_channels for b in blocks[1:3]] == [make_divisible(24 * 0.25)] * 2
    assert blocks[2].kernel == 5 and blocks[2].expansion == 4
    assert blocks[2].mid_channels == make_divisible(24 * 0.25) * 4
    assert specs[-1].resolution == 24 // 8  # total stride 8
    assert specs[-1].out_channels == 10
    assert specs[-1].head_conv == 6 * make_divisible(160 * 0.25)
    ofa_specs = OFA.layers(OFA.smallest())
    assert ofa_specs[-1].resolution == 128 // 32 and ofa_specs[-1].out_channels == 1000


def test_build_runs_at_the_architectures_resolution():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    for _ in range(3):
        arch = CIFAR.sample(rng)
        net = CIFAR.build(arch, width_mult=0.25, num_classes=7).eval()
        side = CIFAR.resolution(arch)
        with torch.no_grad():
            assert net(torch.randn(2, 3, side, side)).shape == (2, 7)


def test_resolutions_that_the_total_stride_does_not_divide_build():
    arch = OFA.parse(str(OFA.smallest()).replace("res=128", "res=132"))
    specs = OFA.layers(arch, width_mult=0.25, num_classes=3)
    sides = [spec.resolution for spec in specs]
    assert sides[:2] == [132, 66] and sides[-1] == 5  # 132 -> 66 -> 33 -> 17 -> 9 -> 5
    net = OFA.build(arch, width_mult=0.25, num_classes=3).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 132, 132)).shape == (1, 3)


def test_larger_networks_cost_more_and_the_largest_is_ofas_size():
    def macs(arch):
        side = OFA.resolution(arch)
        return count_flops(OFA.build(arch), (3, side, side)).macs_M

    largest, smallest = macs(OFA.largest()), macs(OFA.smallest())
    sampled = macs(OFA.sample(np.random.default_rng(3)))
    assert smallest < sampled < largest
    # measured here (not a paper figure): the largest network at 224x224 has 566 M MACs and
    # 7.67 M parameters with 1,000 classes; the smallest at 128x128 41 M MACs.
    assert 500 < largest < 650
    assert 30 < smallest < 60


def test_presets_and_supernet():
    for space in (OFA, CIFAR):
        presets = space.presets()
        assert {"paper", "reduced"} <= set(presets)
        assert presets["reduced"]["width_mult"] == 0.25
        assert presets["reduced"]["data_fraction"] == 0.1
        assert presets["reduced"]["batch_size"] == 64
    net = CIFAR.supernet(**CIFAR.presets()["reduced"])
    assert net.settings == {"num_classes": 10, "width_mult": 0.25, "dropout": 0.0}
    assert net.space is CIFAR
    net = CIFAR.build_preset(CIFAR.smallest(), "reduced")
    assert net.specs[1].out_channels == make_divisible(16 * 0.25)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("res=224;s1=e6k7", ["s1=...", "s5=..."]),
        (
            "res=226;s1=e6k7,e6k7;s2=e6k7,e6k7;s3=e6k7,e6k7;s4=e6k7,e6k7;s5=e6k7,e6k7",
            ["226", "resolution", "128"],
        ),
        (
            "res=224;s1=e6k9,e6k7;s2=e6k7,e6k7;s3=e6k7,e6k7;s4=e6k7,e6k7;s5=e6k7,e6k7",
            ["s1b0_kernel", "3, 5, 7"],
        ),
        (
            "res=224;s1=e2k7,e6k7;s2=e6k7,e6k7;s3=e6k7,e6k7;s4=e6k7,e6k7;s5=e6k7,e6k7",
            ["expansion", "3, 4, 6"],
        ),
        (
            "res=224;s1=e6k7;s2=e6k7,e6k7;s3=e6k7,e6k7;s4=e6k7,e6k7;s5=e6k7,e6k7",
            ["s1_depth", "2, 3, 4"],
        ),
        (
            "res=224;s1=e6k7,e6k7,e6k7/e6k7,e6k7;s2=e6k7,e6k7;s3=e6k7,e6k7;s4=e6k7,e6k7;s5=e6k7,e6k7",
            ["at most 4"],
        ),
        (
            "res=224;s1=k7e6,e6k7;s2=e6k7,e6k7;s3=e6k7,e6k7;s4=e6k7,e6k7;s5=e6k7,e6k7",
            ["'k7e6'", "e<expansion>k<kernel>"],
        ),
        (
            "res=big;s1=e6k7,e6k7;s2=e6k7,e6k7;s3=e6k7,e6k7;s4=e6k7,e6k7;s5=e6k7,e6k7",
            ["whole number"],
        ),
    ],
)
def test_bad_text_is_refused_with_what_was_expected(text, words):
    with pytest.raises(InvalidArchitectureError) as info:
        OFA.parse(text)
    message = str(info.value)
    assert "ofa architecture" in message
    for word in words:
        assert word in message


def test_other_bad_input():
    with pytest.raises(InvalidArchitectureError, match="got int"):
        OFA.parse(3)
    cifar_arch = CIFAR.smallest()
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'ofa-cifar'"):
        OFA.layers(cifar_arch)
    with pytest.raises(InvalidArchitectureError, match="choose from 16, 24, 32"):
        CIFAR.parse(str(OFA.smallest()))
    with pytest.raises(InvalidConfigError, match="unexpected keyword"):
        OFA.build(OFA.smallest(), stem_stride=1)
    with pytest.raises(InvalidConfigError, match="width_mult"):
        CIFAR.layers(CIFAR.smallest(), width_mult=0)


@pytest.mark.parametrize("space", [CIFAR, OFA], ids=["ofa-cifar", "ofa"])
def test_layer_specs_list_every_layer_of_every_sub_network_once(space):
    build = {"num_classes": 4, "width_mult": 0.25}
    specs = space.layer_specs(**build)
    assert len({s.key for s in specs}) == len(specs) == len(set(specs))  # no duplicates
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert set(space.layers(space.sample(rng), **build)) <= set(specs)
    assert set(space.layers(space.largest(), **build)) <= set(specs)
    # only the resolutions asked for
    low = space.RESOLUTIONS[0]
    some = space.layer_specs(**build, resolutions=(low,))
    assert set(some) < set(specs) and set(space.layers(space.smallest(), **build)) <= set(some)
    with pytest.raises(InvalidConfigError, match=f"choose from \\[{low}, "):
        space.layer_specs(resolutions=(low + 1,))


def test_a_latency_table_of_every_layer_of_the_space():
    from torch import nn

    from nasforge.hardware.layer_measure import measure_table

    build = {"num_classes": 4, "width_mult": 0.25}
    table = measure_table(CIFAR, "all", backend="torch", runs=1, warmup=0, build=build,
                          calibration=0, builder=lambda spec: nn.Identity())  # fmt: skip
    assert set(table.entries) == {s.key for s in CIFAR.layer_specs(**build)}
    arch = CIFAR.sample(np.random.default_rng(1))
    assert not table.missing(CIFAR.layers(arch, **build))
