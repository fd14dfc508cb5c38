"""The mobilenet space: published networks within 3% of their papers' parameters and
multiply-adds, text round trips, the canonical form (identity blocks removed), layers and
forward passes at the paper and CIFAR settings, and bad input."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nasforge import spaces
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, UnknownNameError
from nasforge.hardware import count_flops
from nasforge.ops.mobile import SE_VARIANTS
from nasforge.spaces.mobilenet import NETWORKS, SE_OPTIONS, MobileNetSpace

SPACE = MobileNetSpace()

# Published (params_M, macs_M) at 224x224 and 1,000 classes, as the papers report them:
# MobileNetV2 (Sandler et al., CVPR 2018, arXiv:1801.04381), Table 4: 3.4M, 300M.
# MobileNetV3-Large 1.0 (Howard et al., ICCV 2019, arXiv:1905.02244), Table 3: 5.4M, 219M.
# MnasNet-A1 (Tan et al., CVPR 2019, arXiv:1807.11626), Table 1: 3.9M, 312M.
# ProxylessNAS mobile 4.1M / 320M and GPU 7.1M / 465M, Single-Path NAS 4.3M / 365M: issue 18's
# reading of Cai et al. (ICLR 2019, arXiv:1812.00332) and Stamoulis et al. (ECML-PKDD 2019,
# arXiv:1904.02877); the released ProxylessNAS networks count 4,080,512 and 7,119,848
# parameters with batch norm (osmr/imgclsmob proxylessnas.py's checks), as the presets do.
PUBLISHED = {
    "mobilenetv2": (3.4, 300.0),
    "mobilenetv3-large": (5.4, 219.0),
    "mnasnet-a1": (3.9, 312.0),
    "proxylessnas-mobile": (4.1, 320.0),
    "proxylessnas-gpu": (7.1, 465.0),
    "single-path-nas": (4.3, 365.0),
}


def _costs(name: str, *, batch_norm: bool):
    net = SPACE.build(SPACE.named(name))
    norms = [n for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)]
    return count_flops(net, (3, 224, 224), exclude=() if batch_norm else norms)


def _within(value: float, published: float) -> bool:
    return abs(value - published) <= 0.03 * published


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_networks_have_their_papers_parameters(name):
    """Parameters as the TensorFlow references count them: convolutions and linear layers,
    batch norm left out (it folds into the convolutions); TF-slim's MobileNetV2 1.0 README
    entry reads 3.47M, which is this count (3.471M). With batch norm MobileNetV2 has 3.505M
    (torchvision's figure, +3.1% of the paper's rounded 3.4M); the others stay within 3%
    either way."""
    params = _costs(name, batch_norm=False).params_M
    assert _within(params, PUBLISHED[name][0]), (name, params)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n,
            marks=pytest.mark.xfail(
                strict=True,
                reason="Single-Path NAS as timm and osmr/imgclsmob define it (spnasnet) "
                "counts 333.5M MACs, 8.6% below the 365M of issue 18's reading; the source "
                "of the gap is not known",
            ),
        )
        if n == "single-path-nas"
        else n
        for n in sorted(PUBLISHED)
    ],
)
def test_published_networks_have_their_papers_multiply_adds(name):
    macs = _costs(name, batch_norm=True).macs_M
    assert _within(macs, PUBLISHED[name][1]), (name, macs)


def test_released_proxylessnas_parameter_counts_are_reproduced():
    """The released networks' counts with batch norm (osmr/imgclsmob checks 4,080,512 and
    7,119,848), one parameter off at most: the presets are the released networks."""
    assert round(_costs("proxylessnas-mobile", batch_norm=True).params_M * 1e6) == 4_080_512
    assert round(_costs("proxylessnas-gpu", batch_norm=True).params_M * 1e6) == 7_119_848


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_named_networks_are_canonical_and_round_trip(name):
    arch = SPACE.named(name)
    assert SPACE.parse(str(arch)) == arch
    assert SPACE.canonical(arch) == arch
    assert str(arch) == NETWORKS[name]


def test_unknown_network_lists_the_published_ones():
    with pytest.raises(
        UnknownNameError, match=r"choose from mnasnet-a1, mobilenetv2.*mean .mobilenetv2"
    ):
        SPACE.named("mobilenet-v2")


def test_block_counts_of_the_published_networks():
    blocks = {n: sum(s.kind == "mbconv" for s in SPACE.layers(SPACE.named(n))) for n in NETWORKS}
    assert blocks == {
        "mobilenetv2": 17,
        "mobilenetv3-large": 15,
        "mnasnet-a1": 16,
        "proxylessnas-mobile": 20,
        "proxylessnas-gpu": 14,
        "single-path-nas": 21,
    }


def test_identity_blocks_remove_their_block():
    v2 = str(SPACE.named("mobilenetv2"))
    # the middle block of stage 2 is an identity: the third moves up
    skipped = SPACE.parse(v2.replace("s2=32:e6k3,e6k3,e6k3", "s2=32:e6k3,skip:e3k5,e4k7"))
    shorter = SPACE.parse(v2.replace("s2=32:e6k3,e6k3,e6k3", "s2=32:e6k3,e4k7"))
    assert skipped != shorter
    assert SPACE.canonical(skipped) == SPACE.canonical(shorter) == shorter
    net, reference = SPACE.build(skipped).eval(), SPACE.build(shorter).eval()
    assert net.num_blocks == SPACE.build(SPACE.named("mobilenetv2")).num_blocks - 1
    assert net.num_blocks == reference.num_blocks
    net.load_state_dict(reference.state_dict())  # the same modules, name for name
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x))


def test_canonical_equal_exactly_when_the_layers_are_equal():
    """Over random architectures and all their neighbours: canonical forms agree exactly when
    the networks' layers (and so their functions for all weights) agree."""
    rng = np.random.default_rng(0)
    for _ in range(3):
        arch = SPACE.sample(rng)
        key, layers = SPACE.canonical(arch), SPACE.layers(arch)
        same = 0
        for other in SPACE.neighbours(arch):
            equal = SPACE.layers(other) == layers
            assert (SPACE.canonical(other) == key) is equal, (str(arch), str(other))
            same += equal
        assert same > 0  # some neighbour changes only an inactive or skipped block


def test_blocks_beyond_the_depth_and_an_absent_sixth_stage_do_not_count():
    v3 = str(SPACE.named("mobilenetv3-large"))
    assert "s6=320:;" in v3
    wider = SPACE.parse(v3.replace("s6=320:;", "s6=432:/e6k7-se_mnasnet;"))
    assert wider != SPACE.named("mobilenetv3-large")
    assert SPACE.canonical(wider) == SPACE.named("mobilenetv3-large")
    assert SPACE.layers(wider) == SPACE.layers(SPACE.named("mobilenetv3-large"))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_choices_round_trip_through_text(data):
    choices = [data.draw(st.integers(0, len(d.options) - 1)) for d in SPACE.decisions()]
    arch = SPACE.from_choices(choices)
    assert SPACE.parse(str(arch)) == arch
    assert list(SPACE.parse(str(arch)).choices) == choices
    canonical = SPACE.canonical(arch)
    assert SPACE.canonical(canonical) == canonical
    assert SPACE.parse(str(canonical)) == canonical


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="stemhad0123456789=:;,/-_kexrlupiwn .", max_size=60))
def test_malformed_text_raises_invalid_architecture_only(text):
    with contextlib.suppress(InvalidArchitectureError):
        SPACE.parse(text)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("s1=24:", "s1=24"), "must be written s1=<width>:<blocks>"),
        (("head=conv1280-relu", "head=conv999-relu"), "head = 'conv999' is not an option"),
        (("s1=24:", "s1=28:"), "s1_width = 28 is not an option; choose from 24, 32"),
        (("s1=24:e6k3", "s1=24:e6k3-se_big"), "s1b0_se = 'big' is not an option"),
        (("s1=24:e6k3", "s1=24:e6k3-gelu"), "unknown part 'gelu'"),
        (("s1=24:e6k3", "s1=24:e5k3"), "expansion = 5 is not an option; choose from 1, 3, 4, 6"),
        (("s1=24:e6k3", "s1=24:e6k9"), "s1b0_kernel = 9 is not an option"),
        (("s1=24:e6k3", "s1=24:skip:e6k3"), "first block of stage s1 .* cannot be skipped"),
        (("s0=16:e1k3", "s0=16:e6k3"), "block of stage s0 has expansion 1"),
        (("s1=24:e6k3,e6k3", "s1=24:e6k3,e6k3,e6k3,e6k3,e6k3"), "at most 4 block"),
        (("s6=320:e6k3", "s6=320:e6k3,e6k3"), "at most 1 block"),
        (("s1=24:e6k3", "s1=24:6k3"), "block '6k3' of stage s1 is malformed"),
        (("stem=32-relu;", ""), "expected the parts stem, s0"),
        (("stem=32-relu", "stem=32"), "stem=<width>-<activation>"),
    ],
)
def test_bad_text_says_what_is_wrong(edit, match):
    text = NETWORKS["mobilenetv2"].replace(*edit, 1)
    with pytest.raises(InvalidArchitectureError, match=match):
        SPACE.parse(text)


def test_parse_refuses_non_text_and_tolerates_spacing():
    with pytest.raises(InvalidArchitectureError, match="Expected a mobilenet architecture"):
        SPACE.parse(42)  # type: ignore[arg-type]
    spaced = NETWORKS["mobilenetv2"].replace(";", " ;\n ").replace(",", ", ")
    assert SPACE.parse(spaced) == SPACE.named("mobilenetv2")
    explicit = NETWORKS["mobilenetv2"].replace("e6k3", "e6k3-relu")
    assert SPACE.parse(explicit) == SPACE.named("mobilenetv2")


def test_layers_follow_the_settings():
    arch = SPACE.named("mobilenetv2")
    paper = SPACE.layers(arch)
    assert paper[0].resolution == 224 and paper[-1].resolution == 7
    assert paper[-1].head_conv == 1280
    cifar = SPACE.layers(
        arch, num_classes=10, width_mult=0.5, resolution=32, stem_stride=1, first_stride=1
    )
    assert cifar[0].stride == 1 and cifar[2].stride == 1  # stem and stage 1
    assert cifar[-1].resolution == 4 and cifar[-1].out_channels == 10
    assert cifar[-1].head_conv == 1280  # MobileNetV2 keeps its last layer below width 1
    assert [s.out_channels for s in cifar[:3]] == [16, 8, 16]
    wide = SPACE.layers(arch, width_mult=1.4)
    assert wide[-1].head_conv == 1792 and wide[0].out_channels == 48
    for spec in paper[1:-1]:
        assert spec.residual is (spec.stride == 1 and spec.in_channels == spec.out_channels)


@pytest.mark.parametrize(
    "settings",
    [{}, {"width_mult": 0.25, "resolution": 32, "stem_stride": 1, "first_stride": 1}],
)
def test_layer_specs_hold_every_layer_of_every_network(settings):
    listed = SPACE.layer_specs(**settings)
    assert len(set(listed)) == len(listed)
    known = set(listed)
    rng = np.random.default_rng(3)
    archs = [SPACE.sample(rng) for _ in range(200)] + [SPACE.named(n) for n in NETWORKS]
    for arch in archs:
        assert set(SPACE.layers(arch, **settings)) <= known, str(arch)
    kinds = [spec.kind for spec in listed]
    # 3 stem widths x 2 activations; 2 + 3 last widths (the sixth stage may be absent) x 3
    # heads x 2 activations, at width 1
    if not settings:
        assert kinds.count("stem") == 6 and kinds.count("head") == 30


def test_resolution_must_be_divisible_by_the_total_stride():
    arch = SPACE.named("mnasnet-a1")
    with pytest.raises(
        InvalidConfigError,
        match=r"not a multiple of the network's total stride 32.*e\.g\. 32, 64, 96",
    ):
        SPACE.layers(arch, resolution=100)
    with pytest.raises(InvalidConfigError, match="total stride 8"):
        SPACE.build(arch, resolution=36, stem_stride=1, first_stride=1)
    SPACE.layers(arch, resolution=40, stem_stride=1, first_stride=1)  # 40 = 5 x 8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width_mult": 0}, "width_mult must be a number in"),
        ({"stem_stride": 3}, "stem_stride must be 1 or 2"),
        ({"num_classes": 0}, "num_classes must be a positive whole number"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"channels": 16}, "unexpected keyword argument"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(InvalidConfigError, match=match):
        SPACE.build(SPACE.named("mobilenetv2"), **kwargs)


def test_presets_build_and_run():
    presets = SPACE.presets()
    assert presets["paper"] == {"width_mult": 1.0, "resolution": 224}
    for name in ("reduced", "cifar"):
        setting = presets[name]
        assert setting["resolution"] == 32 and 0.25 <= setting["width_mult"] <= 0.5
        net = SPACE.build(
            SPACE.named("mobilenetv3-large"),
            num_classes=10,
            **{
                k: v
                for k, v in setting.items()
                if k not in ("data_fraction", "batch_size", "epochs")
            },
        )
        with torch.no_grad():
            assert net.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(UnknownNameError, match="choose from cifar, paper, reduced, search"):
        SPACE.build_preset(SPACE.named("mobilenetv2"), "tiny")


def test_paper_network_runs_at_224():
    net = SPACE.build_preset(SPACE.named("proxylessnas-gpu"), "paper").eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_space_options_match_the_layer_variants():
    assert set(SE_OPTIONS) == set(SE_VARIANTS)
    assert "mobilenet" in spaces.names()


def test_profile_uses_the_space_input():
    from nasforge.runs.profile import profile_arch

    data = profile_arch("mobilenetv2", space="mobilenet")
    assert data["input_shape"] == [3, 224, 224] and data["build"]["num_classes"] == 1000
    assert abs(data["metrics"]["macs_M"] - 300.8) < 0.1
    small = profile_arch("mobilenetv2", space="mobilenet", dataset="cifar10")
    assert small["input_shape"] == [3, 32, 32] and small["build"]["num_classes"] == 10


def test_import_does_not_load_torch():
    code = (
        "import sys, nasforge; s = nasforge.spaces.create('mobilenet'); "
        "a = s.named('mnasnet-a1'); s.canonical(s.sample(__import__('numpy').random."
        "default_rng(0))); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
