"""Few-shot NAS's split supernet and its gradient-matching split (nasforge.elastic.few_shot)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from nasforge import spaces
from nasforge.elastic import TrainSettings, create_schedule, schedule_names
from nasforge.elastic._train import load_supernet, train_supernet
from nasforge.elastic.base import Phase, TrainContext
from nasforge.elastic.few_shot import (
    FewShot,
    FewShotSupernet,
    Split,
    contiguous_groups,
    gradient_similarities,
    min_cut_groups,
    split_candidates,
)
from nasforge.errors import InvalidConfigError
from nasforge.train.data import SyntheticImages

WIDTH = 0.25
SIDE = 16
SPLIT = Phase("split", 1)


@pytest.fixture(scope="module")
def space():
    return spaces.create("ofa-cifar")


def _supernet(space, seed=0):
    torch.manual_seed(seed)
    return space.supernet(width_mult=WIDTH)


class _Batches:
    """The part of SearchData that the gradient-matching split reads."""

    steps_per_epoch = 4

    def __init__(self, side=SIDE, seed=0):
        self.side, self.seed = side, seed

    def batches(self, split, generator, device, steps=None):
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(steps or self.steps_per_epoch):
            yield torch.randn(6, 3, self.side, self.side, generator=g), torch.randint(0, 10, (6,))


def _ctx(net, space, seed=0, restoring=False):
    return TrainContext(
        supernet=net,
        data=_Batches(),
        optimizer=None,
        device=torch.device("cpu"),
        rng=np.random.default_rng(seed),
        generator=None,
        space=space,
        resolutions=(SIDE,),
        restoring=restoring,
    )


def _with(space, arch, **values):
    merged = {**space.values(arch), **values}
    return space.from_choices([d.options.index(merged[d.name]) for d in space.decisions()])


def _x(n=2, seed=0):
    return torch.randn(n, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(seed))


# -- schedule -----------------------------------------------------------------------------------
def test_registered_with_a_parent_and_a_split_phase():
    assert "few-shot" in schedule_names()
    schedule = create_schedule("few-shot", split="s2b1_expansion", k=2, parent_fraction=0.25)
    assert isinstance(schedule, FewShot)
    assert [(p.name, p.epochs) for p in schedule.phases(8)] == [("one-shot", 2), ("split", 6)]
    with pytest.raises(InvalidConfigError, match="at least 2 epochs"):
        schedule.phases(1)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"k": 1}, "k must be"),
        ({"parent_fraction": 1.0}, "parent_fraction"),
        ({"gm_samples": 0}, "gm_samples"),
        ({"split": "s1_depth"}, "few-shot splits on 'resolution' or a block's kernel"),
        ({"split": "gradient", "candidates": ["kernel"]}, "got 'kernel'"),
    ],
)
def test_bad_parameters_are_refused(params, match):
    with pytest.raises(InvalidConfigError, match=match):
        create_schedule("few-shot", **params)


@pytest.mark.parametrize(
    ("split", "k", "match"),
    [
        ("s1b3_kernel", None, "cannot split"),  # a block beyond the smallest depth
        ("s9b0_kernel", None, "cannot split"),
        ("s1b0_kernel", 4, "2 <= k <= the split decision's 3 options"),
    ],
)
def test_splits_that_cannot_be_made_are_refused(space, split, k, match):
    net = _supernet(space)
    with pytest.raises(InvalidConfigError, match=match):
        create_schedule("few-shot", split=split, k=k).wrap(net, SPLIT, _ctx(net, space))


def test_split_candidates_are_always_present_decisions(space):
    found = split_candidates(space)
    assert found[0] == "resolution"
    assert set(found[1:]) == {
        f"s{s}b{b}_{kind}" for s in range(1, 6) for b in (0, 1) for kind in ("kernel", "expansion")
    }
    assert contiguous_groups(3, 2) == ((0, 1), (2,))
    assert contiguous_groups(5, 3) == ((0, 1), (2, 3), (4,))


def test_one_shot_phase_trains_one_uniform_path_per_step(space):
    net = _supernet(space)
    chosen = []
    original = net.set_active
    net.set_active = lambda arch: (chosen.append(arch), original(arch))
    ctx = _ctx(net, space, seed=3)
    schedule = create_schedule("few-shot")
    phase = schedule.phases(4)[0]
    assert schedule.wrap(net, phase, ctx) is net
    stats = schedule.step(ctx, _x(), torch.tensor([1, 2]), phase)
    assert np.isfinite(stats["loss"])
    assert chosen == [net.sample(np.random.default_rng(3), resolutions=(SIDE,))]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


# -- the split supernet -------------------------------------------------------------------------
@pytest.fixture
def split_net(space):
    parent = _supernet(space)
    schedule = create_schedule("few-shot", split="s2b0_kernel", k=2)
    wrapper = schedule.wrap(parent, SPLIT, _ctx(parent, space))
    return parent, schedule, wrapper


def test_every_part_starts_with_the_parents_weights(split_net):
    parent, schedule, wrapper = split_net
    assert isinstance(wrapper, FewShotSupernet)
    assert schedule.chosen == Split("s2b0_kernel", ((0, 1), (2,)))
    assert len(wrapper.parts) == 2
    expected = parent.state_dict()
    for part in wrapper.parts:
        assert part is not parent
        state = part.state_dict()
        assert state.keys() == expected.keys()
        assert all(torch.equal(state[k], expected[k]) for k in expected)
        # copies, not shared tensors
        assert all(
            a.data_ptr() != b.data_ptr()
            for a, b in zip(part.parameters(), parent.parameters(), strict=True)
        )
    assert wrapper.settings == parent.settings and wrapper.space is parent.space


def test_set_active_routes_to_the_part_owning_the_option(space, split_net):
    parent, _, wrapper = split_net
    wrapper.eval()
    parent.eval()
    with torch.no_grad():  # make the parts differ
        wrapper.parts[1].head.classifier.bias.add_(1.0)
    x = _x()
    base = _with(space, space.largest(), resolution=SIDE)
    for kernel, part in ((3, 0), (5, 0), (7, 1)):
        arch = _with(space, base, s2b0_kernel=kernel)
        wrapper.set_active(str(arch))
        assert wrapper.current == part == wrapper.part_of(arch)
        assert wrapper.active == arch and wrapper.active_resolution == SIDE
        parent.set_active(arch)
        shift = 1.0 if part == 1 else 0.0
        assert torch.allclose(wrapper(x), parent(x) + shift, atol=1e-5)
        assert wrapper.bn_modules() == wrapper.parts[part].bn_modules()
        sub = wrapper.extract(arch).eval()
        assert torch.allclose(sub(x), wrapper(x), atol=1e-5)
        assert torch.allclose(wrapper.forward_block(0, x), parent.forward_block(0, x))
    assert wrapper.block_shape(1, SIDE) == parent.block_shape(1, SIDE)
    assert wrapper.num_blocks == parent.num_blocks
    assert wrapper.largest() == parent.largest()


def test_each_part_samples_only_its_own_options(space, split_net):
    _, _, wrapper = split_net
    rng = np.random.default_rng(0)
    for part, kernels in ((0, {3, 5}), (1, {7})):
        drawn = [wrapper.sample(rng, part=part, resolutions=(SIDE,)) for _ in range(60)]
        assert {space.values(a)["s2b0_kernel"] for a in drawn} == kernels
        assert all(wrapper.part_of(a) == part for a in drawn)
        # the other decisions still vary
        assert len({space.values(a)["s3b0_kernel"] for a in drawn}) == 3
    unrestricted = {space.values(wrapper.sample(rng))["s2b0_kernel"] for _ in range(60)}
    assert unrestricted == {3, 5, 7}
    assert {space.values(wrapper.sample(rng, part=0, kernels=(5,)))["s2b0_kernel"]} == {5}
    with pytest.raises(InvalidConfigError, match="none of them allowed"):
        wrapper.sample(rng, part=1, kernels=(3, 5))
    with pytest.raises(InvalidConfigError, match="part must be"):
        wrapper.sample(rng, part=2)


def test_training_a_part_changes_only_that_part(space, split_net):
    _, _, wrapper = split_net
    before = [{k: v.clone() for k, v in part.state_dict().items()} for part in wrapper.parts]
    optimizer = torch.optim.SGD(wrapper.parameters(), lr=0.1)
    arch = wrapper.sample(np.random.default_rng(1), part=1, resolutions=(SIDE,))
    wrapper.set_active(arch)
    nn.functional.cross_entropy(wrapper(_x(4)), torch.tensor([0, 1, 2, 3])).backward()
    optimizer.step()
    after = [part.state_dict() for part in wrapper.parts]
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert any(not torch.equal(before[1][k], after[1][k]) for k in before[1])


def test_split_phase_trains_every_part_on_its_own_options(space, split_net):
    _, schedule, wrapper = split_net
    seen = []
    for index, part in enumerate(wrapper.parts):
        original = part.set_active
        part.set_active = lambda arch, i=index, f=original: (seen.append((i, arch)), f(arch))
    ctx = _ctx(wrapper, space)
    for _ in range(3):
        stats = schedule.step(ctx, _x(4), torch.tensor([0, 1, 2, 3]), SPLIT)
        assert np.isfinite(stats["loss"])
    assert [i for i, _ in seen] == [0, 1] * 3
    assert all(space.values(a)["s2b0_kernel"] in ((3, 5), (7,))[i] for i, a in seen)
    for part in wrapper.parts:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


# -- gradient matching --------------------------------------------------------------------------
class _Disagreeing(nn.Module):
    """A stand-in supernet of the ofa-cifar space whose one decision's option flips the sign of
    the shared layer's output, so that option's gradient opposes the others'."""

    def __init__(self, space, decision, flipped):
        super().__init__()
        self.space, self.decision, self.flipped = space, decision, flipped
        self.settings = {}
        self.shared = nn.Linear(3, 10)
        # small logits: the softmax is near uniform for either sign, so the flipped option's
        # gradient is close to the exact opposite of the others'
        nn.init.normal_(self.shared.weight, std=1e-3, generator=torch.Generator().manual_seed(0))
        nn.init.zeros_(self.shared.bias)
        self.norm = nn.BatchNorm1d(3)
        self.active = space.largest()

    def set_active(self, arch):
        self.active = arch

    @property
    def active_resolution(self):
        return self.space.resolution(self.active)

    def sample(self, rng, *, resolutions=None, **_):
        arch = self.space.sample(rng)
        if resolutions is not None:
            arch = _with(self.space, arch, resolution=int(resolutions[0]))
        return arch

    def forward(self, x):
        sign = -1.0 if self.space.values(self.active)[self.decision] == self.flipped else 1.0
        return sign * self.shared(self.norm(x.mean((2, 3))))


def test_gradient_matching_splits_the_decision_whose_options_disagree(space):
    net = _Disagreeing(space, "s3b1_expansion", flipped=4)  # the middle option of (3, 4, 6)
    running = net.norm.running_mean.clone()
    ctx = _ctx(net, space)
    schedule = create_schedule("few-shot", split="gradient", gm_samples=3)
    wrapper = schedule.wrap(net, SPLIT, ctx)
    chosen = schedule.chosen
    assert chosen.decision == "s3b1_expansion"
    # min-cut: the two agreeing options together, the flipped one alone (not contiguous)
    assert chosen.groups == ((0, 2), (1,))
    sims = np.array(chosen.similarity)
    assert sims[0, 2] == pytest.approx(1.0, abs=1e-6)
    assert sims[0, 1] < -0.9 and sims[1, 2] < -0.9
    assert wrapper.split == chosen and len(wrapper.parts) == 2
    # the statistics the gradients were measured with are put back
    assert torch.equal(net.norm.running_mean, running)
    # the split is part of the schedule's state (JSON-able)
    assert json.loads(json.dumps(schedule.state_dict()))["split"]["groups"] == [[0, 2], [1]]


def test_gradient_similarities_of_other_decisions_agree(space):
    net = _Disagreeing(space, "s3b1_expansion", flipped=6)
    batches = list(_Batches().batches("train", None, None, 2))
    sims = gradient_similarities(
        net, ["s1b0_kernel", "s3b1_expansion"], batches, np.random.default_rng(0)
    )
    assert np.allclose(sims["s1b0_kernel"], 1.0)
    groups, cut = min_cut_groups(sims["s3b1_expansion"], 2)
    assert groups == ((0, 1), (2,)) and cut < -1.8
    assert min_cut_groups(sims["s3b1_expansion"], 3)[0] == ((0,), (1,), (2,))
    assert all(p.grad is None for p in net.parameters())


def test_gradient_matching_on_the_elastic_supernet_leaves_it_unchanged(space):
    net = _supernet(space)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    schedule = create_schedule(
        "few-shot", split="gradient", candidates=["s1b0_kernel", "s4b1_expansion"], gm_samples=1
    )
    wrapper = schedule.wrap(net, SPLIT, _ctx(net, space))
    assert schedule.chosen.decision in ("s1b0_kernel", "s4b1_expansion")
    assert len(schedule.chosen.groups) == 2
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    assert all(torch.equal(v, wrapper.parts[1].state_dict()[k]) for k, v in state.items())


# -- resume -------------------------------------------------------------------------------------
@pytest.mark.parametrize("split", ["s2b0_kernel", "gradient"])
def test_resume_rebuilds_the_same_parts(space, split):
    net = _Disagreeing(space, "s2b0_kernel", flipped=3) if split == "gradient" else _supernet(space)
    schedule = create_schedule("few-shot", split=split, k=2)
    wrapper = schedule.wrap(net, SPLIT, _ctx(net, space))
    with torch.no_grad():
        for p in wrapper.parts[1].parameters():
            p.add_(0.5)
    saved_module, saved_schedule = wrapper.state_dict(), schedule.state_dict()
    fresh = _Disagreeing(space, "s2b0_kernel", 3) if split == "gradient" else _supernet(space, 9)

    # the schedule's state known before the wrap
    again = create_schedule("few-shot", split=split, k=2)
    again.load_state_dict(json.loads(json.dumps(saved_schedule)))
    rebuilt = again.wrap(fresh, SPLIT, _ctx(fresh, space, seed=7, restoring=True))
    assert rebuilt.split.same_parts(wrapper.split)
    rebuilt.load_state_dict(saved_module)
    for a, b in zip(rebuilt.parameters(), wrapper.parameters(), strict=True):
        assert torch.equal(a, b)

    # the trainer's order: wrap while restoring, then the module's state, then the schedule's
    again = create_schedule("few-shot", split=split, k=2)
    rebuilt = again.wrap(fresh, SPLIT, _ctx(fresh, space, seed=7, restoring=True))
    rebuilt.load_state_dict(saved_module)
    again.load_state_dict(saved_schedule)
    assert rebuilt.split.same_parts(wrapper.split) and again.chosen == schedule.chosen
    for a, b in zip(rebuilt.parameters(), wrapper.parameters(), strict=True):
        assert torch.equal(a, b)


def test_loading_another_split_is_refused(space):
    net = _supernet(space)
    wrapper = create_schedule("few-shot", split="s2b0_kernel", k=2).wrap(
        net, SPLIT, _ctx(net, space)
    )
    other = create_schedule("few-shot", split="s2b0_kernel", k=3).wrap(
        _supernet(space), SPLIT, _ctx(net, space)
    )
    with pytest.raises(InvalidConfigError, match="split on 's2b0_kernel' into parts"):
        other.load_state_dict(wrapper.state_dict())


@pytest.mark.parametrize("split", ["s1b1_expansion", "gradient"])
def test_trains_end_to_end_and_loads(tmp_path, split):
    data = SyntheticImages(num_classes=4, n_train=48, n_test=8, size=SIDE, seed=0).load()
    settings = TrainSettings(
        width_mult=WIDTH, resolutions=(SIDE,), batch_size=8, epochs=2, steps_per_epoch=1
    )
    params = {
        "split": split,
        "k": 2,
        "gm_samples": 1,
        "candidates": ["s1b1_expansion", "s2b0_kernel"],
    }
    schedule = create_schedule("few-shot", **params)
    trained = train_supernet("ofa-cifar", schedule, data, tmp_path, settings, threads=1)
    assert isinstance(trained.supernet, FewShotSupernet)
    loaded = load_supernet(tmp_path)
    assert isinstance(loaded.supernet, FewShotSupernet)
    assert loaded.supernet.split == trained.supernet.split == loaded.schedule.chosen
    for a, b in zip(loaded.supernet.parameters(), trained.supernet.parameters(), strict=True):
        assert torch.equal(a, b)
