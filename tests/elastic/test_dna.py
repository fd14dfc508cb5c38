"""DNA's block-wise distillation schedule (nasforge.elastic.dna)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from nasforge import spaces
from nasforge.elastic import create_schedule, schedule_names
from nasforge.elastic.base import Phase, TrainContext
from nasforge.elastic.dna import DNASchedule, mobile_block_names, teacher_blocks
from nasforge.errors import InvalidConfigError
from nasforge.export import save
from nasforge.train.checkpoint import ModelRecord
from nasforge.train.data import SyntheticImages

WIDTH = 0.25
SIDE = 16  # the side trained here (the space's largest is 32): small and fast
BLOCKS = Phase("blocks", 1)


@pytest.fixture(scope="module")
def space():
    return spaces.create("ofa-cifar")


def _supernet(space, seed=0):
    torch.manual_seed(seed)
    return space.supernet(width_mult=WIDTH)


def _teacher(space, arch=None, seed=1, width_mult=WIDTH):
    torch.manual_seed(seed)
    return space.build(space.largest() if arch is None else arch, width_mult=width_mult).eval()


def _ctx(net, space, teacher=None, seed=0):
    return TrainContext(
        supernet=net,
        data=None,
        optimizer=None,
        device=torch.device("cpu"),
        rng=np.random.default_rng(seed),
        generator=None,
        teacher=teacher,
        space=space,
        resolutions=(SIDE,),
    )


def _batch(n=4, side=SIDE, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, side, side, generator=g), torch.randint(0, 10, (n,), generator=g)


def _owner(name):
    """The supernet block a parameter belongs to (ElasticMobileNet's module names)."""
    if name.startswith(("stem.", "first.")):
        return 0
    if name.startswith("stages."):
        return int(name.split(".")[1]) + 1
    assert name.startswith("head."), name
    return 6


def test_registered():
    assert "dna" in schedule_names()
    schedule = create_schedule("dna", teacher_blocks=["a", "b"], teacher_share=0.25)
    assert isinstance(schedule, DNASchedule)
    assert schedule.params() == {
        "teacher": None,
        "teacher_blocks": ("a", "b"),
        "teacher_share": 0.25,
        "score_bn": "batch",
    }
    assert [(p.name, p.epochs) for p in schedule.phases(8)] == [("teacher", 2), ("blocks", 6)]
    assert [p.name for p in create_schedule("dna").phases(3)] == ["blocks"]
    with pytest.raises(InvalidConfigError, match="teacher_share"):
        create_schedule("dna", teacher_share=1.0)
    with pytest.raises(InvalidConfigError, match="score_bn"):
        create_schedule("dna", score_bn="mean")


def test_default_block_names_cut_a_network_of_the_space_at_its_stages(space):
    rng = np.random.default_rng(3)
    for width in (WIDTH, 1.0):
        for _ in range(5):
            arch = space.sample(rng)
            names = mobile_block_names(space.build(arch, width_mult=width))
            values = space.values(arch)
            ends, end = [1], 1
            for stage in range(1, 6):
                end += values[f"s{stage}_depth"]
                ends.append(end)
            assert names == tuple(f"layers.{k}" for k in ends)


def test_each_block_gradient_reaches_only_that_block(space):
    net = _supernet(space).train()
    teacher = teacher_blocks(_teacher(space))
    ctx = _ctx(net, space, teacher)
    x, y = _batch()
    net.set_active(net.sample(ctx.rng, resolutions=(SIDE,)))
    targets = teacher(x)
    losses = DNASchedule.block_losses(net, x, targets)
    assert len(losses) == 6
    for index, loss in enumerate(losses):
        net.zero_grad(set_to_none=True)
        loss.backward()
        reached = {
            name
            for name, p in net.named_parameters()
            if p.grad is not None and p.grad.abs().sum() > 0
        }
        assert reached, index
        assert {_owner(name) for name in reached} == {index}
    assert all(p.grad is None for p in teacher.module.parameters())

    # one training step: the head learns from the teacher's last block output only
    net.zero_grad(set_to_none=True)
    stats = DNASchedule().step(ctx, x, y, BLOCKS)
    assert set(stats) == {"loss", "head"} | {f"block{i}" for i in range(6)}
    owners = {_owner(n) for n, p in net.named_parameters() if p.grad is not None}
    assert owners == set(range(7))


def test_block_input_is_the_teachers_previous_block_output(space, monkeypatch):
    net = _supernet(space).train()
    model = _teacher(space)
    names = mobile_block_names(model)
    captured: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    for name in names:
        modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: captured.__setitem__(name, out.detach().clone())
        )
    inputs: dict[int, torch.Tensor] = {}
    original = net.forward_block

    def recording(index, x):
        inputs[index] = x.detach().clone()
        return original(index, x)

    monkeypatch.setattr(net, "forward_block", recording)
    x, y = _batch(side=32)  # data at another side: DNA trains at SIDE
    DNASchedule().step(_ctx(net, space, model), x, y, BLOCKS)
    assert sorted(inputs) == list(range(7))
    assert inputs[0].shape[-1] == SIDE
    assert torch.equal(inputs[0], _ctx(net, space).resize(x, SIDE))
    for index in range(1, 7):
        assert torch.equal(inputs[index], captured[names[index - 1]]), index
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())


def test_shape_mismatch_names_the_block_and_both_shapes(space):
    net = _supernet(space)
    x, y = _batch()
    wide = _teacher(space, width_mult=0.5)  # stage 1: 16 channels where the supernet has 8
    with pytest.raises(InvalidConfigError) as err:
        DNASchedule().step(_ctx(net, space, wide), x, y, BLOCKS)
    text = str(err.value)
    assert "block 1 (stage 1" in text and "(16, 16, 16)" in text and "(8, 16, 16)" in text

    # any module with named block outputs: the third name points at the stage-1 output
    model = _teacher(space)
    names = list(mobile_block_names(model))
    names[2] = names[1]
    names[1] = "layers.2"
    shifted = teacher_blocks(model, names)
    with pytest.raises(InvalidConfigError) as err:
        DNASchedule().step(_ctx(net, space, shifted), x, y, BLOCKS)
    text = str(err.value)
    assert "block 2 (stage 2" in text and "(8, 16, 16)" in text and "(16, 8, 8)" in text

    with pytest.raises(InvalidConfigError, match="6 names"):
        DNASchedule().step(_ctx(net, space, teacher_blocks(model, names[:5])), x, y, BLOCKS)
    with pytest.raises(InvalidConfigError, match="no module"):
        teacher_blocks(model, ["layers.1", "nope"])
    with pytest.raises(InvalidConfigError, match="block outputs"):
        teacher_blocks(nn.Sequential(nn.Conv2d(3, 8, 3)))
    with pytest.raises(InvalidConfigError, match="has none"):
        DNASchedule().step(_ctx(net, space), x, y, BLOCKS)


def test_score_ranks_the_teachers_own_subnetwork_first(space):
    net = _supernet(space).eval()
    rng = np.random.default_rng(5)
    chosen = net.sample(rng, resolutions=(SIDE,))
    ctx = _ctx(net, space, net.extract(chosen))
    batches = [_batch(seed=s) for s in range(2)]
    # running statistics: the supernet path computes exactly what the extracted teacher does
    schedule = DNASchedule(score_bn="running")
    active = net.active
    best = schedule.score(ctx, chosen, batches)
    assert best == pytest.approx(0.0, abs=1e-9)
    others = {net.sample(rng, resolutions=(SIDE,)) for _ in range(8)} - {chosen}
    scores = [schedule.score(ctx, arch, batches) for arch in others]
    assert all(s < -1e-4 for s in scores)
    assert net.active == active and not net.training  # the supernet is left as it was
    # the same sub-network at another resolution: the teacher takes it, scored there
    other_side = space.parse(str(chosen).replace(f"res={SIDE}", "res=24"))
    assert schedule.score(ctx, other_side, batches) == pytest.approx(0.0, abs=1e-9)

    # batch statistics (the default): the running statistics are left unchanged
    before = {k: v.clone() for k, v in net.state_dict().items()}
    by_batch = DNASchedule().score(ctx, chosen, batches)
    assert by_batch < 0 and by_batch != pytest.approx(best)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert not net.training


def test_score_falls_back_to_the_trained_side_for_a_fixed_size_teacher(space, caplog):
    net = _supernet(space).eval()
    model = _teacher(space)

    class FixedSize(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            if x.shape[-1] != SIDE:
                raise RuntimeError("this teacher takes 16x16 images only")
            return self.net(x)

    names = [f"net.{n}" for n in mobile_block_names(model)]
    ctx = _ctx(net, space, teacher_blocks(FixedSize(), names))
    arch = net.sample(np.random.default_rng(0), resolutions=(SIDE,))
    batches = [_batch()]
    schedule = DNASchedule()
    at_side = schedule.score(ctx, arch, batches)
    other = space.parse(str(arch).replace(f"res={SIDE}", "res=32"))
    with caplog.at_level(logging.WARNING, logger="nasforge.elastic.dna"):
        assert schedule.score(ctx, other, batches) == pytest.approx(at_side)
    assert "resolution 32 at 16" in caplog.text


def test_loss_decreases_and_ranking_follows_training(space):
    data = SyntheticImages(num_classes=4, n_train=64, n_test=8, size=SIDE, seed=0).load()
    images = (data.train.images.float() / 255.0 - 0.5) / 0.25
    labels = data.train.labels
    net = _supernet(space, seed=2).train()
    ctx = _ctx(net, space, _teacher(space, seed=3))
    schedule = create_schedule("dna")
    probe = net.sample(np.random.default_rng(9), resolutions=(SIDE,))
    fixed = [images[:16]]
    net.eval()
    before = schedule.score(ctx, probe, fixed)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    first, last = [], []
    for step in range(24):
        index = torch.arange(16) + (step % 4) * 16
        optimizer.zero_grad()
        stats = schedule.step(ctx, images[index], labels[index], BLOCKS)
        optimizer.step()
        searched = sum(stats[f"block{i}"] for i in range(1, 6))
        (first if step < 4 else last if step >= 20 else []).append(searched)
    assert np.mean(last) < 0.8 * np.mean(first)
    net.eval()
    assert schedule.score(ctx, probe, fixed) > before


def test_exported_file_and_own_teacher(space, tmp_path):
    net = _supernet(space)
    model = _teacher(space)
    path = save(
        ModelRecord(
            space="ofa-cifar",
            arch=str(space.largest()),
            build={"width_mult": WIDTH},
            state_dict=model.state_dict(),
            input_shape=(3, 32, 32),
        ),
        tmp_path / "teacher.pt",
    )
    x, _ = _batch()
    from_file = DNASchedule(teacher=str(path)).teacher_for(_ctx(net, space), x)
    for a, b in zip(from_file(x), teacher_blocks(model)(x), strict=True):
        assert torch.allclose(a, b, atol=1e-6)

    # teacher_share: the largest network trained in the first phase becomes the teacher
    schedule = DNASchedule(teacher_share=0.5)
    ctx = _ctx(net.train(), space)
    first, second = schedule.phases(2)
    schedule.begin_phase(ctx, first)
    x, y = _batch()
    assert set(schedule.step(ctx, x, y, first)) == {"loss"}
    schedule.begin_phase(ctx, second)
    expected = net.extract(space.largest()).eval()
    assert schedule.state_dict()["own_teacher"]["arch"] == str(space.largest())
    schedule.step(ctx, x, y, second)  # trains the supernet; the frozen teacher stays
    resumed = DNASchedule(teacher_share=0.5)
    resumed.load_state_dict(schedule.state_dict())
    for a, b in zip(resumed.teacher_for(ctx, x)(x), teacher_blocks(expected)(x), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(InvalidConfigError, match="teacher_share=0"):
        DNASchedule(teacher_share=0.5).begin_phase(_ctx(net, space, model), first)
