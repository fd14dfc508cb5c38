"""The TDNN example (examples/tdnn_search.py): its time-delay layers, statistics pooling and
data, the elastic supernet nasforge makes of it, and its black-box and one-shot searches."""

from __future__ import annotations

import numpy as np
import pytest
import tdnn_search as tdnn  # from examples/ (conftest.py)
import torch
import torch.nn.functional as F
from torch import nn

import nasforge.nn as nasnn


# -- layers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kernel", "dilation"), [(1, 1), (3, 1), (3, 2), (5, 1), (5, 3)])
def test_tdnn_layer_sees_the_frames_of_its_kernel_and_dilation(kernel, dilation):
    with nasnn.fixed({}):
        layer = tdnn.TDNNLayer(2, 6, kernel, dilation)
    layer.eval()
    frames, t0 = 24, 11
    quiet = torch.zeros(1, 2, frames)
    impulse = quiet.clone()
    impulse[0, 1, t0] = 1.0
    with torch.no_grad():
        changed = (layer.conv(impulse) - layer.conv(quiet)).abs().sum(dim=1)[0] > 0
        after = (layer(impulse) - layer(quiet)).abs().sum(dim=1)[0] > 0
    half = dilation * (kernel - 1) // 2
    expected = {t0 - half + j * dilation for j in range(kernel)}
    assert set(torch.nonzero(changed).flatten().tolist()) == expected
    # the ReLU may hide a change, never create one elsewhere
    assert set(torch.nonzero(after).flatten().tolist()) <= expected


def test_network_receptive_field_is_the_sum_of_its_layers():
    values = {
        "width": 8,
        "kernel0": 3,
        "dilation0": 2,
        "depth": 2,
        "width1": 8,
        "kernel1": 5,
        "dilation1": 1,
        "width2": 8,
        "kernel2": 3,
        "dilation2": 3,
        "width3": 8,
        "kernel3": 5,
        "dilation3": 3,
    }
    with nasnn.fixed(values, strict=False):  # block 3 is not built: its values go unused
        model = tdnn.TDNN()
    model.eval()
    x = torch.randn(1, 12, 40, requires_grad=True)
    model.frames(x)[0, :, 20].sum().backward()
    seen = torch.nonzero(x.grad.abs().sum(dim=1)[0]).flatten().tolist()
    # 1 + 2*2 + 4*1 + 2*3 = 15 frames centred on frame 20 (block 3 is not in use)
    assert tdnn.receptive_field(values) == 15
    assert min(seen) == 20 - 7 and max(seen) == 20 + 7


def test_stats_pool_is_the_mean_and_standard_deviation_over_time():
    pool = tdnn.StatsPool(eps=0.0)
    x = torch.tensor([[[1.0, 3.0, 1.0, 3.0], [2.0, 2.0, 2.0, 2.0]]])
    assert torch.allclose(pool(x), torch.tensor([[2.0, 2.0, 1.0, 0.0]]))
    x = torch.randn(3, 5, 17, dtype=torch.float64)
    out = tdnn.StatsPool(eps=0.0)(x)
    assert out.shape == (3, 10)
    assert torch.allclose(out[:, :5], x.mean(-1))
    assert torch.allclose(out[:, 5:], x.std(-1, unbiased=False))
    # the length of the utterance does not change the shape of the result
    assert pool(torch.randn(2, 5, 9)).shape == pool(torch.randn(2, 5, 30)).shape


# -- data ----------------------------------------------------------------------------------------
def test_utterances_carry_the_speaker_only_in_time():
    x, y = tdnn.make_utterances(400, frames=64, features=4, seed=1)
    assert x.shape == (400, 4, 64) and sorted(set(y.tolist())) == [0, 1, 2, 3]
    assert torch.bincount(y).tolist() == [100] * 4
    for speaker, lag in enumerate(tdnn.SPEAKER_LAGS):
        mine = x[y == speaker]
        # per frame, every speaker looks alike: unit variance in every channel
        assert torch.allclose(mine.var(dim=(0, 2)), torch.ones(4), atol=0.15)
        # ...but the second half echoes the first ``lag`` frames later
        echo = (mine[:, 2:, lag:] * mine[:, :2, :-lag]).mean()
        other = (mine[:, 2:, 2:] * mine[:, :2, :-2]).mean()
        assert echo > 0.5 and abs(other) < 0.1


# -- training ------------------------------------------------------------------------------------
class StopAfter:
    """A study's side of the reports: keeps them and stops a trial at step ``step``."""

    metric = "valid_acc"

    def __init__(self, step):
        self.step, self.written = step, []

    def write(self, number, step, values):
        self.written.append((step, dict(values)))

    def decide(self, number, step, own):
        return step >= self.step


def test_training_reports_every_epoch_and_stops_when_the_study_says(space):
    from nasforge.reporting import TrialContext, TrialStopped

    arch = space.parse(
        "width=8,kernel0=3,dilation0=1,depth=1,width1=8,kernel1=3,dilation1=1,"
        "width2=8,kernel2=1,dilation2=1,width3=8,kernel3=1,dilation3=1"
    )
    data = tdnn.speaker_data(64, 32, 32)
    sink = StopAfter(step=99)
    metrics = tdnn.fit(space.build(arch), data, epochs=3, context=TrialContext(0, arch, sink=sink))
    assert [step for step, _ in sink.written] == [1, 2, 3]
    assert sink.written[-1][1]["valid_acc"] == metrics["valid_acc"]
    sink = StopAfter(step=2)
    with pytest.raises(TrialStopped):
        tdnn.fit(space.build(arch), data, epochs=5, context=TrialContext(0, arch, sink=sink))
    assert [step for step, _ in sink.written] == [1, 2]


# -- the elastic supernet --------------------------------------------------------------------------
@pytest.mark.parametrize("dilation", [2, 3, 4])
def test_dilated_runs_a_convolution_with_its_taps_apart(dilation):
    torch.manual_seed(dilation)
    for kernel in (1, 3, 5):
        conv = nn.Conv1d(3, 4, kernel, padding="same")
        reference = nn.Conv1d(3, 4, kernel, dilation=dilation, padding="same")
        reference.load_state_dict(conv.state_dict())
        for frames in (7, 12, 13):  # lengths a multiple of the dilation, and not
            x = torch.randn(2, 3, frames)
            torch.testing.assert_close(tdnn.dilated(conv, x, dilation), reference(x))


@pytest.fixture(scope="module")
def space():
    return tdnn.tdnn_space()


def test_space_has_kernel_dilation_and_width_per_layer_and_depth(space):
    names = [d.name for d in space.decisions()]
    assert names[:4] == ["width", "kernel0", "dilation0", "depth"]
    for i in (1, 2, 3):
        assert {f"width{i}", f"kernel{i}", f"dilation{i}"} <= set(names)
    assert dict((d.name, d.options) for d in space.decisions())["kernel2"] == tdnn.KERNELS


def test_a_smaller_kernel_is_the_centre_of_the_larger_and_a_narrower_layer_its_first_channels(
    space,
):
    torch.manual_seed(0)
    supernet = space.supernet().eval()
    shared = supernet.model.frame.conv.weight  # (24, 12, 5): the largest width and kernel
    assert tuple(shared.shape) == (max(tdnn.WIDTHS), 12, max(tdnn.KERNELS))
    text = (
        "width=16,kernel0=3,dilation0=2,depth=1,width1=8,kernel1=5,dilation1=3,"
        "width2=8,kernel2=1,dilation2=1,width3=8,kernel3=1,dilation3=1"
    )
    arch = space.parse(text)
    net = supernet.extract(arch).eval()
    assert net.frame.conv.dilation == (2,)
    torch.testing.assert_close(net.frame.conv.weight, shared[:16, :, 1:4])
    block = supernet.model.blocks.blocks[0].context.conv.weight
    torch.testing.assert_close(net.blocks[0].context.conv.weight, block[:8, :16])
    # on this path the supernet's frame layer convolves with that centre, taps 2 frames apart
    x = torch.randn(3, 12, 30)
    seen = []
    hook = supernet.model.frame.norm.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    with torch.no_grad():
        supernet(x, None, supernet.path(arch))
    hook.remove()
    bias = supernet.model.frame.conv.bias[:16]
    expected = F.conv1d(x, shared[:16, :, 1:4], bias, padding=2, dilation=2)
    torch.testing.assert_close(seen[0], F.relu(expected))
    torch.testing.assert_close(net.frame.conv(x), expected)


def test_supernet_paths_are_the_networks_that_inherit_their_weights(space):
    torch.manual_seed(1)
    supernet = space.supernet().eval()
    x = torch.randn(3, 12, 29)
    rng = np.random.default_rng(0)
    for _ in range(4):
        arch = space.sample(rng)
        with torch.no_grad():
            one_path = supernet(x, None, supernet.path(arch))
            torch.testing.assert_close(one_path, supernet.extract(arch).eval()(x))
            # DARTS's dense mixture with one-hot weights is the same path
            one_hot = [
                F.one_hot(torch.tensor(row), len(g.options)).float()
                for row, g in zip(supernet.path(arch), supernet.groups, strict=True)
            ]
            torch.testing.assert_close(supernet(x, one_hot), one_path, atol=1e-5, rtol=1e-4)


# -- the searches --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def evolution():
    return tdnn.search_evolution(6, seed=0)


def test_black_box_search_records_trained_trials_that_beat_chance(evolution, space):
    trials = evolution.trials
    assert len(trials) == 6
    assert all(t.state.name == "COMPLETE" for t in trials)
    for trial in trials:
        assert set(trial.metrics) >= {"valid_acc", "test_acc", "params_k"}
        space.check(trial.arch)
    chance = 100 / len(tdnn.SPEAKER_LAGS)
    best = evolution.best_trial
    assert best.metrics["valid_acc"] > chance + 15
    assert best.metrics["test_acc"] > chance + 10
    # what the search learned: a receptive field of one frame is no better than chance
    assert tdnn.receptive_field(space.values(best.arch)) > 1


def test_one_shot_search_records_each_generation_and_trains_what_it_derives(space):
    params = {"population": 6, "generations": 2, "top_k": 3}
    result = tdnn.search_oneshot("spos", epochs=4, params=params)
    trials = result.study.trials
    assert [t.metrics["generation"] for t in trials] == [0.0, 1.0]
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert all(0.0 <= t.metrics["supernet_acc"] <= 100.0 for t in trials)
    assert all("valid_acc" in t.metrics and "test_acc" in t.metrics for t in trials)
    assert result.arch == trials[-1].arch
    space.check(result.arch)


def test_progressive_supernet_is_searched_on_its_shared_weights():
    supernet, study = tdnn.search_progressive(4, epochs=1)
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    arch = study.trials[0].arch
    again = tdnn.inherited_accuracy(supernet, arch, tdnn.default_data())
    assert study.trials[0].metrics["valid_acc"] == pytest.approx(again)
