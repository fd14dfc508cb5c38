"""sharpDARTS: the Cosine Power Annealing schedule, SharpSepConv, the supernets' ``conv``
setting, Max-W weighting, and the search on NB201 and DARTS (tiny synthetic settings):
derivation, resume and refusal."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch
from resume_testing import whole_and_resumed
from torch import nn

from nasforge import oneshot, spaces
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.oneshot.sharpdarts import SharpDARTS
from nasforge.ops.darts_supernet import DartsSupernet, _DartsSearchCell
from nasforge.ops.nb201_supernet import NB201Supernet
from nasforge.ops.sharp import SharpSepConv
from nasforge.ops.supernet import MixedEdge
from nasforge.testing.contracts import HashEvaluator
from nasforge.train import SyntheticImages
from nasforge.train.schedule import cosine_annealing, cosine_power_annealing

TINY = SupernetSettings(channels=4, cells=1, batch_size=16)


@pytest.fixture(scope="module")
def data():
    return SyntheticImages(num_classes=4, n_train=64, n_test=4, size=8).load()


@pytest.fixture(scope="module")
def small():  # one step of 16 images on each half per epoch
    return SyntheticImages(num_classes=4, n_train=32, n_test=4, size=8).load()


# -- Cosine Power Annealing ---------------------------------------------------------------------
def test_cosine_power_annealing_runs_from_lr_to_min_lr_and_decreases():
    for power in (1.0, 2.0, 10.0):
        values = [
            cosine_power_annealing(s, 20, lr=0.025, min_lr=1e-4, power=power) for s in range(21)
        ]
        assert values[0] == pytest.approx(0.025)
        assert values[20] == pytest.approx(1e-4)
        assert all(a > b for a, b in itertools.pairwise(values))
    # a larger power decays faster early: below cosine annealing in the middle of the run
    mid = [cosine_power_annealing(10, 20, lr=1.0, power=p) for p in (1.0, 2.0, 10.0)]
    assert mid[0] == pytest.approx(0.5) and mid[0] > mid[1] > mid[2]


def test_cosine_power_annealing_matches_the_formula_by_hand():
    # total 4, step 2: c = (1 + cos(pi / 2)) / 2 = 1/2, so the share is (p**1.5 - p) / (p**2 - p)
    # p = 2: (2 sqrt(2) - 2) / 2 = sqrt(2) - 1
    assert cosine_power_annealing(2, 4, lr=1.0, power=2) == pytest.approx(0.41421356, abs=1e-8)
    # p = 10: (31.6227766 - 10) / 90
    assert cosine_power_annealing(2, 4, lr=1.0, power=10) == pytest.approx(0.24025307, abs=1e-8)
    # step 1: c = (1 + 0.70710678) / 2 = 0.85355339; 10**1.85355339 = 71.3761947
    assert cosine_power_annealing(1, 4, lr=1.0, power=10) == pytest.approx(0.68195772, abs=1e-7)
    # rescaled between the bounds: 0.1 + (1.1 - 0.1) * (sqrt(2) - 1)
    value = cosine_power_annealing(2, 4, lr=1.1, min_lr=0.1, power=2)
    assert value == pytest.approx(0.1 + (math.sqrt(2) - 1), abs=1e-8)
    # power 1 is cosine annealing, value for value
    for step in range(7):
        assert cosine_power_annealing(step, 6, lr=0.3, min_lr=0.01, power=1) == pytest.approx(
            cosine_annealing(step, 6, lr=0.3, min_lr=0.01)
        )


def test_cosine_power_annealing_warmup_ramps_then_anneals_the_rest():
    values = [cosine_power_annealing(s, 8, lr=1.0, power=2, warmup=3) for s in range(9)]
    assert values[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # (s + 1) / (warmup + 1)
    # then the annealing over the 5 remaining steps, from step 3 on
    for s in range(3, 9):
        assert values[s] == pytest.approx(cosine_power_annealing(s - 3, 5, lr=1.0, power=2))
    assert values[8] == pytest.approx(0.0)
    assert cosine_power_annealing(0, 1, lr=0.5, power=2) == 0.5  # one step: lr
    with pytest.raises(InvalidConfigError, match="power must be at least 1"):
        cosine_power_annealing(0, 10, lr=1.0, power=0.5)
    with pytest.raises(InvalidConfigError, match="warmup"):
        cosine_power_annealing(0, 10, lr=1.0, warmup=-1)


# -- SharpSepConv and the supernets -------------------------------------------------------------
def test_sharp_sep_conv_shapes_and_parameters():
    x = torch.randn(2, 6, 8, 8)
    assert SharpSepConv(6, 6, 3)(x).shape == (2, 6, 8, 8)
    assert SharpSepConv(6, 10, 5, stride=2)(x).shape == (2, 10, 4, 4)
    assert SharpSepConv(6, 6, 3, dilation=2)(x).shape == (2, 6, 8, 8)
    assert SharpSepConv(6, 6, 5, stride=2, dilation=2)(x).shape == (2, 6, 4, 4)

    def count(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    # depthwise k*k*c_in, pointwise c_in*c_mid, BN 2*c_mid, depthwise k*k*c_mid,
    # pointwise c_mid*c_out, BN 2*c_out
    k, c_in, c_out = 5, 6, 10
    assert count(SharpSepConv(c_in, c_out, k)) == (
        k * k * c_in + c_in * c_out + 2 * c_out + k * k * c_out + c_out * c_out + 2 * c_out
    )
    flood = SharpSepConv(c_in, c_out, 3, mid_mult=4, affine=False)  # C_mid = 4 C_out, no BN
    assert flood.c_mid == 40
    assert count(flood) == 9 * c_in + c_in * 40 + 9 * 40 + 40 * c_out
    assert SharpSepConv(c_in, c_out, 3, mid=2).c_mid == 2
    # only the first depthwise convolution strides and dilates
    convs = [m for m in SharpSepConv(4, 4, 3, stride=2, dilation=2).op if isinstance(m, nn.Conv2d)]
    assert [(c.stride, c.dilation, c.groups) for c in convs] == [
        ((2, 2), (2, 2), 4),
        ((1, 1), (1, 1), 1),
        ((1, 1), (1, 1), 4),
        ((1, 1), (1, 1), 1),
    ]
    with pytest.raises(InvalidConfigError, match="odd kernel"):
        SharpSepConv(4, 4, 2)


def _ops(net: nn.Module) -> dict[str, set[type]]:
    found: dict[str, set[type]] = {}
    for edge in net.modules():
        if isinstance(edge, MixedEdge):
            for name, op in zip(edge.names, edge.ops, strict=True):
                found.setdefault(name, set()).add(type(op))
    return found


def test_supernets_build_sharp_convolutions_under_the_same_names():
    torch.manual_seed(0)
    plain = NB201Supernet(channels=4, cells_per_stage=1)
    sharp = NB201Supernet(channels=4, cells_per_stage=1, conv="sharp")
    assert sharp.conv == "sharp" and plain.conv == "standard"
    ops, before = _ops(sharp), _ops(plain)
    assert ops["nor_conv_1x1"] == ops["nor_conv_3x3"] == {SharpSepConv}
    assert SharpSepConv not in before["nor_conv_3x3"]
    for name in ("none", "skip_connect", "avg_pool_3x3"):
        assert ops[name] == before[name]
    assert sharp.groups == plain.groups
    w = [torch.full((6, 5), 0.2)]
    assert sharp(torch.zeros(2, 3, 8, 8), w).shape == (2, 10)
    with pytest.raises(InvalidConfigError, match="supernet convolution"):
        NB201Supernet(channels=4, cells_per_stage=1, conv="sharpest")

    darts = DartsSupernet(num_classes=3, channels=4, layers=5, conv="sharp")
    ops = _ops(darts)
    for name in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"):
        assert ops[name] == {SharpSepConv}
    dilations: dict[str, set[Any]] = {}
    for edge in darts.modules():
        if isinstance(edge, MixedEdge):
            for name, op in zip(edge.names, edge.ops, strict=True):
                if isinstance(op, SharpSepConv):
                    dilations.setdefault(name, set()).add(op.op[1].dilation)
    assert dilations["dil_conv_3x3"] == {(2, 2)} and dilations["sep_conv_5x5"] == {(1, 1)}
    weights = [torch.full((14, 8), 1 / 8) for _ in range(2)]
    assert darts(torch.zeros(2, 3, 8, 8), weights).shape == (2, 3)

    def own_cell(*args: Any) -> nn.Module:
        return _DartsSearchCell(*args)

    with pytest.raises(UnsupportedOperationError, match="conv='sharp'"):
        DartsSupernet(channels=4, layers=5, cell=own_cell, conv="sharp")


# -- the method ---------------------------------------------------------------------------------
def _state(method: SharpDARTS, data: Any, epochs: int = 4) -> Any:
    search_data = _engine.SearchData.from_splits(data, TINY, 0)
    space = spaces.create("nb201")
    with _engine.seeded(0):
        net = method.build_network(space, TINY, search_data)
    state = _engine.SearchState(
        supernet=net,
        data=search_data,
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        rng=np.random.default_rng(0),
        epochs=epochs,
        space=space,
    )
    method.setup(state)
    return state


def test_max_w_weighs_the_strongest_operation_one_and_derives_as_softmax(data):
    method = SharpDARTS(weighting="max_w")
    state = _state(method, data)
    assert state.supernet.conv == "sharp"
    with torch.no_grad():
        method.alphas[0].copy_(torch.randn(6, 5, generator=torch.Generator().manual_seed(1)))
    probs = method.probabilities(state)[0]
    coef = method.op_weights(state)[0]
    top = probs.argmax(dim=-1)
    assert torch.allclose(coef[torch.arange(6), top], torch.ones(6))
    assert torch.allclose(coef, 1 - probs.max(dim=-1, keepdim=True).values + probs)
    assert method.derive(state) == tuple(int(i) for i in top)
    assert torch.equal(method.arch_weights(state)[0], probs.detach())
    # the coefficients reach alpha: one architecture step moves it
    batch = next(iter(state.data.paired(state.generator, state.device)))
    before = method.alphas[0].detach().clone()
    method.arch_step(state, batch[2], batch[3], 0, 0)
    assert not torch.equal(before, method.alphas[0].detach())
    # scalar weighting is DARTS's softmax
    scalar = SharpDARTS()
    scalar_state = _state(scalar, data)
    assert torch.equal(scalar.op_weights(scalar_state)[0], scalar.probabilities(scalar_state)[0])


def test_epochs_follow_cosine_power_annealing(data):
    method = SharpDARTS(lr=0.1, lr_min=0.001, power=10, warmup_epochs=1)
    state = _state(method, data, epochs=3)
    seen = []
    for epoch in range(3):
        method.train_epoch(state, epoch)
        seen.append(method.w_optimizer.param_groups[0]["lr"])
    expected = [
        cosine_power_annealing(e, 3, lr=0.1, min_lr=0.001, power=10, warmup=1) for e in range(3)
    ]
    assert seen == expected
    # ramp half-way, lr, then c = 1/2: 0.001 + 0.099 * (10**1.5 - 10) / 90
    assert seen == pytest.approx([0.0505, 0.1, 0.001 + 0.099 * 0.24025307])
    assert method.params()["power"] == 10.0 and method.params()["warmup_epochs"] == 1


def test_nb201_search_derives_cells_of_the_table(small):
    result = oneshot.search("sharpdarts", small, settings=TINY, epochs=1, device="cpu")
    trials = result.study.trials
    assert [t.metrics["epoch"] for t in trials] == [0.0]
    space = spaces.create("nb201")
    for trial in trials:
        assert space.parse(str(trial.arch)) == trial.arch
        assert 0.0 < trial.metrics["test_acc"] <= 100.0  # looked up in the bundled table
        assert 0.0 <= trial.metrics["param_free_weight"] <= 1.0
    assert result.study.strategy_params["weighting"] == "scalar"


def test_darts_supernet_derives_a_genotype(small):
    settings = SupernetSettings(channels=4, cells=5, batch_size=16)
    method = SharpDARTS(weighting="max_w")
    space = spaces.create("darts")
    net = method.build_network(space, settings, _engine.SearchData.from_splits(small, settings, 0))
    assert net.conv == "sharp"
    weights = [torch.randn(14, 8, generator=torch.Generator().manual_seed(2)).softmax(-1)] * 2
    arch = net.derive(weights)
    assert space.parse(str(arch)) == arch
    assert all(op != "none" for op in net.operations(arch))


def test_resume_continues_bit_for_bit(small, tmp_path):
    whole, resumed, a, b = whole_and_resumed(
        "sharpdarts",
        small,
        tmp_path,
        stop_after=1,
        params={"warmup_epochs": 1, "weighting": "max_w"},
        settings=TINY,
        epochs=2,
    )
    assert resumed.resumed_from >= 1
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in whole.study.trials]
    for key, tensor in a["supernet"].items():
        assert torch.equal(tensor, b["supernet"][key]), key
    for x, y in zip(a["method_state"]["alphas"], b["method_state"]["alphas"], strict=True):
        assert torch.equal(x, y)


def test_refuses_a_space_whose_supernet_has_no_conv_setting_and_bad_params(data):
    with pytest.raises(UnsupportedOperationError, match=r"conv='sharp'.*'dass'"):
        oneshot.search(
            "sharpdarts",
            data,
            space="dass",
            settings=TINY,
            epochs=1,
            device="cpu",
            evaluator=HashEvaluator("dass"),
        )
    with pytest.raises(InvalidConfigError, match="power"):
        oneshot.create("sharpdarts", power=0.5)
    with pytest.raises(InvalidConfigError, match="weighting"):
        oneshot.create("sharpdarts", weighting="min_w")
    with pytest.raises(InvalidConfigError, match="warmup_epochs"):
        oneshot.create("sharpdarts", warmup_epochs=-2)
