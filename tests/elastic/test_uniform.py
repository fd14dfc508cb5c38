"""SPOS's uniform single-path sampling on the elastic supernet: one uniformly drawn
sub-network per step, every option of every decision reachable."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from nasforge import spaces
from nasforge.elastic import TrainContext, TrainSettings, create_schedule
from nasforge.train.trainer import seeded

SPACE = spaces.create("ofa-cifar")


def context(seed: int) -> TrainContext:
    with seeded(0):
        net = SPACE.supernet(width_mult=0.25, num_classes=4)
    return TrainContext(
        supernet=net,
        data=None,
        optimizer=None,
        device=torch.device("cpu"),
        rng=np.random.default_rng(seed),
        generator=torch.Generator().manual_seed(0),
        settings=TrainSettings(),
        space=SPACE,
        resolutions=tuple(SPACE.RESOLUTIONS),
    )


def test_one_phase_holds_the_budget():
    phases = create_schedule("uniform").phases(7)
    assert [(p.name, p.epochs, p.options) for p in phases] == [("uniform", 7, {})]


def test_each_step_trains_one_uniform_draw_at_its_resolution():
    ctx = context(5)
    schedule = create_schedule("uniform")
    phase = schedule.phases(1)[0]
    net = ctx.supernet
    seen, sizes = [], []
    forward = net.forward

    def spy(x):
        sizes.append(x.shape[-1])
        return forward(x)

    net.forward = spy
    original = net.set_active
    net.set_active = lambda arch: (seen.append(arch), original(arch))
    x = torch.randn(2, 3, 32, 32)
    y = torch.tensor([0, 1])
    for _ in range(3):
        net.zero_grad()
        stats = schedule.step(ctx, x, y, phase)
        assert stats["loss"] > 0
        assert any(p.grad is not None for p in net.parameters())
    # the same draws as the supernet's own uniform sampler from the same seed
    twin = np.random.default_rng(5)
    assert seen == [net.sample(twin, resolutions=SPACE.RESOLUTIONS) for _ in range(3)]
    assert sizes == [SPACE.resolution(a) for a in seen]


def test_uniform_draws_cover_every_option():
    ctx = context(0)
    phase = create_schedule("uniform").phases(1)[0]
    counts: dict[str, Counter] = {}
    draws = 600
    for _ in range(draws):
        v = SPACE.values(ctx.sample(phase))
        active = {"resolution": v["resolution"]}
        for s in range(1, 6):
            active[f"s{s}_depth"] = v[f"s{s}_depth"]
            for b in range(v[f"s{s}_depth"]):
                for kind in ("kernel", "expansion"):
                    active[f"s{s}b{b}_{kind}"] = v[f"s{s}b{b}_{kind}"]
        for key, value in active.items():
            counts.setdefault(key, Counter())[value] += 1
    assert set(counts) == {d.name for d in SPACE.decisions()}
    for decision in SPACE.decisions():
        seen = counts[decision.name]
        assert set(seen) == set(decision.options), decision.name
        total = sum(seen.values())
        # roughly uniform: each of the 3 options within a third +- 0.1
        assert all(abs(n / total - 1 / 3) < 0.1 for n in seen.values()), (decision.name, seen)
