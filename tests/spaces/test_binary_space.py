"""The "+binary" form of a space: the base's architectures, built as binary networks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

import nasforge
from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, UnsupportedOperationError
from nasforge.ops.binary import BinaryConv2d, binarize, binary_layers, set_binary
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.spaces.binary import BinarySpace
from nasforge.trial import TrialState

TINY = {"channels": 4, "cells_per_stage": 1}


@pytest.fixture(scope="module")
def space() -> BinarySpace:
    built = spaces.create("nb201+binary")
    assert isinstance(built, BinarySpace)
    return built


def test_name_decisions_and_text_are_the_base_s(space: BinarySpace) -> None:
    base = spaces.create("nb201")
    assert space.name == "nb201+binary" and space.base.name == "nb201"
    assert space.decisions() == base.decisions()
    assert space.size == base.size and space.encodings == base.encodings
    arch = space.from_index(6111)
    assert arch.space == "nb201+binary" and arch.choices == base.from_index(6111).choices
    assert str(arch) == str(base.from_index(6111))
    assert space.parse(str(arch)) == arch and space.index(arch) == 6111
    assert space.base_arch(arch) == base.from_index(6111)
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'nb201'"):
        space.build(base.from_index(6111))


def test_sampling_and_variation_follow_the_base(space: BinarySpace) -> None:
    base = spaces.create("nb201")
    for seed in range(3):
        ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        arch, ref = space.sample(ours), base.sample(theirs)
        assert arch.choices == ref.choices and arch.space == space.name
        assert space.mutate(arch, ours).choices == base.mutate(ref, theirs).choices
        assert (
            space.mutate(arch, ours, rate=0.5).choices == base.mutate(ref, theirs, rate=0.5).choices
        )
        other, other_ref = space.sample(ours), base.sample(theirs)
        child = space.crossover(arch, other, ours)
        assert child.choices == base.crossover(ref, other_ref, theirs).choices
        for kind in space.encodings:
            assert np.array_equal(space.encode(arch, kind), base.encode(ref, kind))
        assert [a.choices for a in space.neighbours(arch)] == [
            a.choices for a in base.neighbours(ref)
        ]
        assert space.canonical(arch).choices == base.canonical(ref).choices
        assert space.canonical(arch).space == space.name
    assert space.supports("mutate") and space.supports("build")
    assert not space.supports("supernet")
    assert space.dedupe_method == "canonical"
    assert space.functional_key(space.from_index(6111)).space == space.name


def test_build_binarizes_the_base_network(space: BinarySpace) -> None:
    arch = space.from_index(6111)
    network = space.build(arch, **TINY)
    real = spaces.create("nb201").build(space.base_arch(arch), **TINY)
    weighted = [n for n, m in real.named_modules() if type(m) in (nn.Conv2d, nn.Linear)]
    binary = [n for n, _ in binary_layers(network)]
    assert binary == weighted[1:-1]  # first convolution and classifier stay real
    assert type(network.get_submodule(weighted[0])) is nn.Conv2d
    assert type(network.get_submodule(weighted[-1])) is nn.Linear
    x = torch.randn(2, 3, 8, 8)
    assert network(x).shape == (2, 10)
    # the ReLU before each binary convolution is gone (its sign would be constant); with
    # both switches off and the ReLUs kept, the network is the real one with the same weights
    leaves = [m for m in network.modules() if not list(m.children())]
    assert not any(
        isinstance(a, nn.ReLU) and isinstance(b, BinaryConv2d)
        for a, b in itertools.pairwise(leaves)
    )
    kept = binarize(real, drop_relu=False)
    set_binary(kept, activations=False, weights=False)
    assert torch.allclose(kept.eval()(x), real.eval()(x), atol=1e-5)


def test_costs(space: BinarySpace) -> None:
    arch = space.from_index(6111)
    costs = space.costs(arch, **TINY)
    real = spaces.create("nb201").build(space.base_arch(arch), **TINY)
    assert costs["params_M"] == pytest.approx(sum(p.numel() for p in real.parameters()) / 1e6)
    # by hand: multiply-adds of each convolution and linear layer on a 32x32 image, times
    # 1 x 1 bits where the layer is binary and 32 x 32 where it is real
    binary = space.build(arch, **TINY)
    macs: dict[str, int] = {}

    def hook(name: str):
        def record(module: nn.Module, args: object, out: torch.Tensor) -> None:
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels // module.groups * module.kernel_size[0] ** 2
            else:
                fan_in = module.in_features
            macs[name] = out[0].numel() * fan_in

        return record

    for name, module in binary.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_forward_hook(hook(name))
    binary.eval()(torch.zeros(1, 3, 32, 32))
    binary_names = {n for n, _ in binary_layers(binary)}
    expected = sum(m * (1 if n in binary_names else 1024) for n, m in macs.items())
    assert costs["bops"] == pytest.approx(expected)
    assert 0 < costs["bops"] < sum(macs.values()) * 1024 / 4  # most multiply-adds are binary
    empty = space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert space.costs(empty, **TINY)["bops"] < costs["bops"]


def test_spaces_of_the_mobile_family_have_binary_forms() -> None:
    for name in ("mobilenet", "ofa-cifar"):
        wrapped = spaces.create(f"{name}+binary")
        arch = wrapped.sample(np.random.default_rng(0))
        assert arch.space == f"{name}+binary" and wrapped.parse(str(arch)) == arch
        assert wrapped.costs(arch)["bops"] > 0
    ofa = spaces.create("ofa-cifar+binary")
    net = ofa.build_preset(ofa.smallest(), "reduced")
    assert list(binary_layers(net)) and net(torch.randn(1, 3, 16, 16)).shape == (1, 10)


def test_space_without_binary_form_is_refused_naming_the_operation() -> None:
    with pytest.raises(UnsupportedOperationError, match=r"'vit-cifar'.*'0' \(PatchEmbed\)"):
        spaces.create("vit-cifar+binary")

    class NoBuilder(SearchSpace):
        name = "no-builder"

        def decisions(self) -> tuple[Decision, ...]:
            return (Decision("a", (0, 1)),)

        def from_choices(self, choices: list[int]) -> Architecture:
            return Architecture(self.name, self.check_choices(choices), str(choices))

        def parse(self, text: str) -> Architecture:
            return self.from_choices([int(text)])

    with pytest.raises(UnsupportedOperationError, match="no model builder"):
        BinarySpace(NoBuilder())


def test_a_study_records_and_resumes_by_the_wrapped_name(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/binary.db"
    evaluator = nasforge.evaluators.create(
        "proxy", space="nb201+binary", proxies=["params"], batch_size=2, build=TINY
    )
    study = nasforge.create_study(
        space="nb201+binary",
        strategy="random",
        seed=0,
        storage=url,
        study_name="b",
        objectives=["params:max"],
        evaluator=evaluator,
    )
    study.optimize(evaluator, n_trials=2)
    first = [t.arch for t in study.trials]
    assert all(a.space == "nb201+binary" for a in first)
    del study
    resumed = nasforge.load_study("b", url)
    assert resumed.space.name == "nb201+binary"
    assert [t.arch for t in resumed.trials] == first
    resumed.optimize(evaluator, n_trials=3)
    assert [t.state for t in resumed.trials] == [TrialState.COMPLETE] * 3
    for trial in resumed.trials:
        expected = resumed.space.costs(trial.arch, **TINY)["params_M"]
        assert trial.metrics["params"] == pytest.approx(expected)


def test_binarize_matches_build(space: BinarySpace) -> None:
    arch = space.sample(np.random.default_rng(4))
    built = space.build(arch, **TINY)
    direct = binarize(spaces.create("nb201").build(space.base_arch(arch), **TINY))
    assert [(n, type(m)) for n, m in built.named_modules()] == [
        (n, type(m)) for n, m in direct.named_modules()
    ]
