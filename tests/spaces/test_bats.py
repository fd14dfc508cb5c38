"""The BATS space: its operation names over DARTS's cell layout, the published cell, the
networks it builds and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge import spaces
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, UnknownNameError
from nasforge.ops.binary import BinaryConv2d
from nasforge.ops.darts import FactorizedReduce
from nasforge.spaces.bats import GENOTYPE_OPS, GENOTYPES, BatsSpace
from nasforge.spaces.darts import GENOTYPE_OPS as DARTS_GENOTYPE_OPS
from nasforge.spaces.darts import DartsSpace


@pytest.fixture(scope="module")
def space() -> BatsSpace:
    created = spaces.create("bats")
    assert isinstance(created, BatsSpace)
    return created


def test_published_cell_reads_back_in_every_form(space):
    arch = space.named("bats")
    assert arch.space == "bats"
    assert space.parse(str(arch)) == arch
    assert space.parse(repr(space.to_genotype(arch))) == arch  # the classic Genotype text
    assert space.from_genotype(GENOTYPES["bats"]) == arch
    assert space.to_genotype(arch).normal == GENOTYPES["bats"].normal
    # four grouped or dilated grouped convolutions among the eight edges of the normal cell
    normal_ops = [op for op, _ in space.to_genotype(arch).normal]
    assert normal_ops.count("max_pool_3x3") == 2 and "skip_connect" not in normal_ops


def test_choices_are_darts_layout_with_bats_names(space):
    darts = DartsSpace()
    arch = space.sample(np.random.default_rng(3))
    same = darts.from_choices(arch.choices)
    # the same choice tuple, the operation in each place renamed
    for bats_op, darts_op in zip(
        space.to_genotype(arch).normal, darts.to_genotype(same).normal, strict=True
    ):
        assert bats_op[1] == darts_op[1]
        assert GENOTYPE_OPS.index(bats_op[0]) == DARTS_GENOTYPE_OPS.index(darts_op[0])
    assert str(space.canonical(arch)).count("group_conv") == str(arch).count("group_conv")
    assert len(space.neighbours(arch)) == 120
    assert space.encode(arch).shape == (196,)
    assert all(space.mutate(arch, np.random.default_rng(s)).space == "bats" for s in range(5))


def test_darts_only_and_unknown_operations_are_refused_by_name(space):
    text = str(space.named("bats"))
    with pytest.raises(InvalidArchitectureError, match="unknown operation 'sep_conv_5x5'") as err:
        space.parse(text.replace("group_conv_5x5", "sep_conv_5x5", 1))
    assert "BATS architecture" in str(err.value) and "group_conv_3x3" in str(err.value)
    with pytest.raises(InvalidArchitectureError, match="Did you mean 'group_conv_5x5'"):
        space.parse(text.replace("group_conv_5x5", "grop_conv_5x5", 1))
    with pytest.raises(InvalidArchitectureError, match=r"0=max_pool_3x3.*group_conv_3x3"):
        space.from_choices([0, 9] + [0] * 30)
    with pytest.raises(UnknownNameError, match="bats"):
        space.named("darts-v2")


def test_build_gives_a_binary_network_of_either_operation_family(space):
    arch = space.named("bats")
    x = torch.randn(2, 3, 16, 16)
    for family in ("bats", "darts"):
        net = space.build(arch, channels=8, layers=5, auxiliary=False, operations=family)
        net.eval()
        assert net(x).shape == (2, 10)
        binary = [m for m in net.cells.modules() if isinstance(m, BinaryConv2d)]
        assert binary
        depthwise = [m for m in binary if m.groups == m.in_channels and m.kernel_size != (1, 1)]
        # DARTS's separable convolutions are depthwise; BATS's groups hold 4 channels each
        assert (len(depthwise) > 0) == (family == "darts")
    # the auxiliary head of the preset networks is real and returned in training
    net = space.build(arch, channels=8, layers=5, auxiliary=True)
    logits, aux = net.train()(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    assert any(isinstance(m, FactorizedReduce) for m in net.modules())


def test_bad_build_settings_are_refused(space):
    arch = space.named("bats")
    with pytest.raises(InvalidConfigError, match="operation family"):
        space.build(arch, channels=8, layers=5, operations="xnor")
    with pytest.raises(InvalidConfigError, match="divisible by 4"):
        space.build(arch, channels=6, layers=5)
    with pytest.raises(InvalidConfigError, match="unexpected keyword"):
        space.build(arch, channels=8, layers=5, width=3)
