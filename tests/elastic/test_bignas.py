"""BigNAS's sandwich-rule schedule (nasforge.elastic.bignas)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge import spaces
from nasforge.elastic import TrainSettings, create_schedule, schedule_names
from nasforge.elastic._train import make_optimizer, train_supernet
from nasforge.elastic.base import Phase, TrainContext
from nasforge.elastic.bignas import BigNAS, constant_ending_lr, zero_init_residual_blocks
from nasforge.errors import InvalidConfigError
from nasforge.train.data import SyntheticImages

WIDTH = 0.25
SIDES = (16, 24)  # trained sides (the space's are 16, 24, 32): small and fast
PHASE = Phase("sandwich", 4)


@pytest.fixture(scope="module")
def space():
    return spaces.create("ofa-cifar")


def _supernet(space, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return space.supernet(width_mult=WIDTH, dropout=dropout)


def _ctx(net, space, seed=0, optimizer=None, settings=None):
    return TrainContext(
        supernet=net,
        data=None,
        optimizer=optimizer,
        device=torch.device("cpu"),
        rng=np.random.default_rng(seed),
        generator=None,
        settings=settings or TrainSettings(),
        space=space,
        resolutions=SIDES,
    )


def _batch(n=4, side=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, side, side, generator=g), torch.randint(0, 10, (n,), generator=g)


def _record(net):
    """Record every architecture activated and every forward's input side and output."""
    log = {"archs": [], "sides": [], "outputs": []}
    original = net.set_active

    def set_active(arch):
        log["archs"].append(arch)
        original(arch)

    net.set_active = set_active

    def hook(module, inputs, output):
        log["sides"].append(inputs[0].shape[-1])
        log["outputs"].append(output)

    net.register_forward_hook(hook)
    return log


def test_registered_with_one_phase():
    assert "bignas" in schedule_names()
    schedule = create_schedule("bignas", num_random=3)
    assert isinstance(schedule, BigNAS)
    assert schedule.params() == {
        "num_random": 3,
        "lr_end": 0.05,
        "decay_fraction": 0.65,
        "zero_init": True,
    }
    assert [(p.name, p.epochs, p.options) for p in schedule.phases(7)] == [("sandwich", 7, {})]


@pytest.mark.parametrize(
    "params",
    [{"num_random": -1}, {"lr_end": 0.0}, {"lr_end": 1.5}, {"decay_fraction": 0.0}],
)
def test_bad_parameters_are_refused(params):
    with pytest.raises(InvalidConfigError, match="BigNAS"):
        create_schedule("bignas", **params)


@pytest.mark.parametrize("num_random", [2, 3])
def test_each_step_trains_largest_smallest_then_random_in_that_order(space, num_random):
    net = _supernet(space)
    log = _record(net)
    ctx = _ctx(net, space, seed=5)
    schedule = create_schedule("bignas", num_random=num_random)
    x, y = _batch()
    for _ in range(2):
        schedule.step(ctx, x, y, PHASE)
    # the random sub-networks are the next draws of ctx.rng within the trained sides
    replay = np.random.default_rng(5)
    per_step = 2 + num_random
    assert len(log["archs"]) == 2 * per_step
    for step in range(2):
        archs = log["archs"][step * per_step : (step + 1) * per_step]
        sides = log["sides"][step * per_step : (step + 1) * per_step]
        largest, smallest = space.values(archs[0]), space.values(archs[1])
        assert largest["resolution"] == max(SIDES) and smallest["resolution"] == min(SIDES)
        for name, value in largest.items():
            if name != "resolution":
                assert value == space.values(space.largest())[name], name
                assert smallest[name] == space.values(space.smallest())[name], name
        expected = [net.sample(replay, resolutions=SIDES) for _ in range(num_random)]
        assert archs[2:] == expected
        # each sub-network ran at its own resolution
        assert sides == [space.resolution(a) for a in archs]


def test_largest_learns_the_labels_and_the_others_its_detached_predictions(space):
    net = _supernet(space)
    log = _record(net)
    ctx = _ctx(net, space, settings=TrainSettings(label_smoothing=0.1))
    seen = []
    distil = ctx.kd_loss

    def kd_loss(student, teacher):
        seen.append((student, teacher))
        return distil(student, teacher)

    ctx.kd_loss = kd_loss
    grads = []

    def keep_grad(module, inputs, output):
        if len(log["outputs"]) == 1:  # the largest's logits (this hook runs after _record's)
            output.register_hook(grads.append)

    net.register_forward_hook(keep_grad)
    x, y = _batch()
    stats = create_schedule("bignas").step(ctx, x, y, PHASE)
    teacher_logits = log["outputs"][0]
    # the largest: cross-entropy with label smoothing against the labels
    expected = F.cross_entropy(teacher_logits, y, label_smoothing=0.1)
    assert stats["loss"] == pytest.approx(float(expected.detach()), rel=1e-6)
    # the students: their own logits against the largest's, detached
    assert len(seen) == 3
    for (student, teacher), output in zip(seen, log["outputs"][1:], strict=True):
        assert student is output and student.requires_grad
        assert not teacher.requires_grad and teacher.grad_fn is None
        assert torch.equal(teacher, teacher_logits.detach())
    # no gradient flows into the teacher's logits from the students: the largest's logits
    # get exactly the gradient of its own smoothed cross-entropy
    probs = F.softmax(teacher_logits.detach(), dim=1)
    target = F.one_hot(y, 10).float() * 0.9 + 0.1 / 10
    assert len(grads) == 1
    assert torch.allclose(grads[0], (probs - target) / len(y), atol=1e-7)


def test_zero_init_makes_every_residual_block_an_identity(space):
    net = _supernet(space).eval()
    residual = [m for m in net.modules() if getattr(m, "residual", False) is True]
    # the fixed first block, blocks 1..3 of each stage and a stage's first block at stride 1
    # between equal widths (stage 1 at width 0.25 on small images: 8 -> 8 channels)
    expected = 1 + sum(3 + stage[0].residual for stage in net.stages)
    assert zero_init_residual_blocks(net) == len(residual) == expected >= 16
    pairs = []
    for block in residual:
        block.register_forward_hook(lambda m, i, o: pairs.append((i[0], o)))
    rng = np.random.default_rng(0)
    for arch in (net.largest(), *(net.sample(rng) for _ in range(3))):
        net.set_active(arch)
        x, _ = _batch(side=space.resolution(arch))
        net(x)
    assert pairs and all(torch.equal(i, o) for i, o in pairs)
    # so depth 4 computes what depth 2 computes, for every stage
    values = space.values(net.largest())
    deep = space.parse(str(net.largest()).replace("res=32", "res=16"))
    shallow_values = {**space.values(deep), **{f"s{s}_depth": 2 for s in range(1, 6)}}
    shallow = space.from_choices(
        [d.options.index(shallow_values[d.name]) for d in space.decisions()]
    )
    assert values["s1_depth"] == 4
    x, _ = _batch(side=16)
    net.set_active(deep)
    out_deep = net(x)
    net.set_active(shallow)
    assert torch.allclose(net(x), out_deep, atol=1e-6)


def test_zero_init_spares_non_residual_blocks_and_only_the_last_norm(space):
    net = _supernet(space)
    zero_init_residual_blocks(net)
    for stage in net.stages:
        first = stage[0]
        if not first.residual:
            assert first.project_bn.weight.abs().sum() > 0
        for block in stage[1:]:
            assert block.project_bn.weight.abs().sum() == 0
            assert torch.all(block.depthwise_bn.weight == 1)


def test_wrap_zero_initialises_once_and_not_when_restoring(space):
    schedule = create_schedule("bignas")
    net = _supernet(space)
    ctx = _ctx(net, space)
    ctx.restoring = True
    assert schedule.wrap(net, PHASE, ctx) is net
    assert net.stages[0][1].project_bn.weight.abs().sum() > 0
    ctx.restoring = False
    schedule.wrap(net, PHASE, ctx)
    assert net.stages[0][1].project_bn.weight.abs().sum() == 0
    net2 = _supernet(space)
    create_schedule("bignas", zero_init=False).wrap(net2, PHASE, _ctx(net2, space))
    assert net2.stages[0][1].project_bn.weight.abs().sum() > 0


def test_dropout_only_for_the_largest(space):
    net = _supernet(space, dropout=0.5)
    dropouts = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert dropouts
    rates = []
    dropouts[0].register_forward_pre_hook(lambda m, i: rates.append(m.p))
    x, y = _batch()
    create_schedule("bignas").step(_ctx(net, space), x, y, PHASE)
    assert rates == [0.5, 0.0, 0.0, 0.0]
    assert all(m.p == 0.5 for m in dropouts)


def test_weight_decay_is_applied_once_per_step_by_the_optimiser_not_on_norms_or_biases(space):
    net = _supernet(space)
    settings = TrainSettings(weight_decay=0.5)
    decay, spared = make_optimizer(net, settings, 0.1).param_groups
    assert decay["weight_decay"] == 0.5 and spared["weight_decay"] == 0.0
    norms = {id(p) for m in net.bn_modules() for p in m.parameters(recurse=False)}
    biases = {id(p) for n, p in net.named_parameters() if n.endswith("bias")}
    assert {id(p) for p in spared["params"]} == norms | biases
    convs = [m.weight for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert {id(p) for p in convs} <= {id(p) for p in decay["params"]}
    # the step's losses carry no penalty of their own: its gradients do not depend on it
    x, y = _batch(side=16)
    grads = []
    for weight_decay in (0.0, 0.5):
        net.zero_grad()
        ctx = _ctx(net, space, settings=TrainSettings(weight_decay=weight_decay))
        create_schedule("bignas", num_random=1).step(ctx, x, y, PHASE)
        grads.append([p.grad.clone() for p in net.parameters() if p.grad is not None])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))


def test_constant_ending_learning_rate():
    assert constant_ending_lr(0.0) == 1.0
    assert constant_ending_lr(0.65) == pytest.approx(0.05)
    assert constant_ending_lr(0.9) == constant_ending_lr(1.0) == pytest.approx(0.05)
    values = [constant_ending_lr(p / 20) for p in range(21)]
    assert all(a > b for a, b in itertools.pairwise(values[:14]))  # decaying
    # exponential: equal steps multiply by the same factor
    assert values[2] / values[1] == pytest.approx(values[6] / values[5])


def test_learning_rate_warms_up_then_decays_to_a_constant_ending():
    schedule = create_schedule("bignas", num_random=0, lr_end=0.1, decay_fraction=0.5)
    seen = [schedule.lr_factor(step, 10, 2) for step in range(10)]
    # warm-up over 2 steps, then decay over 8 steps to 10% at step 4 of 8, then constant
    assert seen[:2] == pytest.approx([0.5, 1.0])
    assert seen[2:7] == pytest.approx([0.1 ** (i / 4) for i in range(5)])
    assert seen[7:] == pytest.approx([0.1] * 3)


def test_the_trainer_applies_and_records_the_schedules_rate(tmp_path, monkeypatch):
    data = SyntheticImages(num_classes=4, n_train=64, n_test=8, size=16, seed=0).load()
    settings = TrainSettings(
        width_mult=WIDTH, resolutions=(16,), batch_size=8, epochs=3, steps_per_epoch=2, lr=0.2
    )
    schedule = create_schedule("bignas", num_random=0, lr_end=0.1, decay_fraction=0.5)
    used = []
    original = torch.optim.SGD.step

    def step(self, *args, **kwargs):
        used.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    trained = train_supernet("ofa-cifar", schedule, data, tmp_path / "run", settings, threads=1)
    expected = [0.2 * schedule.lr_factor(i, 6, 0) for i in range(6)]
    assert used == pytest.approx(expected)  # not the trainer's default cosine
    assert expected[-1] == pytest.approx(0.02)
    recorded = [entry["lr"] for entry in trained.metadata["history"]]
    assert recorded == pytest.approx(expected[::2])  # each epoch's first step


def test_trains_end_to_end_and_resumes(tmp_path):
    data = SyntheticImages(num_classes=4, n_train=64, n_test=8, size=16, seed=0).load()
    settings = TrainSettings(
        width_mult=WIDTH,
        resolutions=(16,),
        batch_size=8,
        epochs=2,
        steps_per_epoch=2,
        dropout=0.2,
    )
    # one thread: the default (every core) is slower on a shared machine
    trained = train_supernet("ofa-cifar", "bignas", data, tmp_path / "run", settings, threads=1)
    assert trained.complete
    losses = [entry["loss"] for entry in trained.metadata["history"]]
    assert len(losses) == 2 and all(np.isfinite(losses))
    again = train_supernet("ofa-cifar", "bignas", data, tmp_path / "run", settings, threads=1)
    for a, b in zip(trained.supernet.parameters(), again.supernet.parameters(), strict=True):
        assert torch.equal(a, b)
