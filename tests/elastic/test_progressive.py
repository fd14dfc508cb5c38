"""Once-for-All's progressive shrinking: the phases, what each step trains, distillation from
the frozen phase-1 network, channel sorting, exact resume across phases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge import spaces
from nasforge.elastic import TrainContext, TrainSettings, create_schedule, train_supernet
from nasforge.elastic.progressive import PAPER_EPOCHS, split_epochs
from nasforge.errors import InvalidConfigError
from nasforge.train import SyntheticImages
from nasforge.train.trainer import seeded

SPACE = spaces.create("ofa-cifar")


def context(schedule_seed: int = 0) -> TrainContext:
    with seeded(0):
        net = SPACE.supernet(width_mult=0.25, num_classes=4)
    return TrainContext(
        supernet=net,
        data=None,
        optimizer=None,
        device=torch.device("cpu"),
        rng=np.random.default_rng(schedule_seed),
        generator=torch.Generator().manual_seed(0),
        settings=TrainSettings(),
        space=SPACE,
        resolutions=(16, 24),
    )


def batch(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 24, 24, generator=g), torch.randint(0, 4, (n,), generator=g)


def record(net) -> list:
    """Replace ``net.set_active`` by a recording one; returns the list it fills."""
    seen: list = []
    original = net.set_active

    def set_active(arch):
        seen.append(arch)
        original(arch)

    net.set_active = set_active
    return seen


def values(arch) -> dict:
    return SPACE.values(arch)


def kinds(arch, kind: str) -> set:
    """The values of ``kind`` (kernel, expansion) over the active blocks, and depths."""
    v = values(arch)
    if kind == "depth":
        return {v[f"s{s}_depth"] for s in range(1, 6)}
    return {v[f"s{s}b{b}_{kind}"] for s in range(1, 6) for b in range(v[f"s{s}_depth"])}


def test_phases_follow_the_paper_proportions():
    schedule = create_schedule("ofa")
    phases = schedule.phases(590)
    assert [p.epochs for p in phases] == list(PAPER_EPOCHS)
    assert [p.name for p in phases] == [
        "largest",
        "kernel",
        "depth-1",
        "depth-2",
        "expand-1",
        "expand-2",
    ]
    assert [p.epochs for p in schedule.phases(6)] == [1] * 6
    for total in range(6, 80):
        counts = [p.epochs for p in schedule.phases(total)]
        assert sum(counts) == total and min(counts) >= 1
        # the longer phases never get fewer epochs than the 25-epoch ones
        assert min(counts[0], counts[1], counts[3], counts[5]) >= max(counts[2], counts[4])
    assert split_epochs(1180, PAPER_EPOCHS) == [2 * e for e in PAPER_EPOCHS]
    with pytest.raises(InvalidConfigError, match="at least 6 epochs"):
        schedule.phases(5)
    # the paper's learning rates (2.6 full, 0.96 kernel, 0.08/0.24 depth and width)
    assert [round(p.lr_scale * 2.6, 2) for p in phases] == [2.6, 0.96, 0.08, 0.24, 0.08, 0.24]
    assert [p.warmup_epochs for p in phases] == [None, 5, 0, 5, 0, 5]


def test_phase_restrictions():
    phases = {p.name: p.options for p in create_schedule("ofa").phases(6)}
    assert phases["largest"] == {"kernels": (7,), "depths": (4,), "expansions": (6,)}
    assert phases["kernel"] == {"kernels": (3, 5, 7), "depths": (4,), "expansions": (6,)}
    assert phases["depth-1"]["depths"] == (3, 4) and phases["depth-2"]["depths"] == (2, 3, 4)
    assert phases["expand-1"]["expansions"] == (4, 6)
    assert phases["expand-2"]["expansions"] == (3, 4, 6)
    assert all("resolutions" not in o for o in phases.values())  # elastic throughout


def run_phase(name: str, steps: int, **params) -> tuple[TrainContext, list, list]:
    ctx = context()
    schedule = create_schedule("ofa", **params)
    phase = next(p for p in schedule.phases(6) if p.name == name)
    schedule.begin_phase(ctx, phase)
    seen = record(ctx.supernet)
    x, y = batch()
    stats = [schedule.step(ctx, x, y, phase) for _ in range(steps)]
    return ctx, seen, stats


def test_kernel_phase_samples_kernels_only():
    _, seen, stats = run_phase("kernel", 4)
    assert len(seen) == 4  # one sub-network per step by default
    assert set().union(*(kinds(a, "kernel") for a in seen)) == {3, 5, 7}
    for arch in seen:
        assert kinds(arch, "depth") == {4} and kinds(arch, "expansion") == {6}
        assert SPACE.resolution(arch) in (16, 24)
    assert all(s["loss"] == pytest.approx(s["ce_loss"] + s["kd_loss"]) for s in stats)


def test_depth_and_expansion_phases_keep_earlier_dimensions_elastic():
    _, seen, _ = run_phase("depth-1", 3)
    assert len(seen) == 3
    assert set().union(*(kinds(a, "depth") for a in seen)) == {3, 4}
    assert set().union(*(kinds(a, "expansion") for a in seen)) == {6}
    assert set().union(*(kinds(a, "kernel") for a in seen)) == {3, 5, 7}
    # the authors' dynamic_batch_size: 4 sub-networks per step in the expansion phases
    _, seen, _ = run_phase("expand-1", 2, dynamic_batch_size=None)
    assert len(seen) == 8
    assert set().union(*(kinds(a, "expansion") for a in seen)) == {4, 6}
    assert min(min(kinds(a, "depth")) for a in seen) == 2


def test_largest_phase_trains_the_full_network_at_elastic_resolution():
    ctx, seen, stats = run_phase("largest", 6)
    largest = values(SPACE.largest())
    for arch in seen:
        v = values(arch)
        assert {k: x for k, x in v.items() if k != "resolution"} == {
            k: x for k, x in largest.items() if k != "resolution"
        }
    assert {SPACE.resolution(a) for a in seen} == {16, 24}
    assert ctx.teacher is None and "kd_loss" not in stats[0]


def test_distillation_uses_the_frozen_phase_one_network():
    ctx = context()
    schedule = create_schedule("ofa")
    phase = schedule.phases(6)[1]
    net = ctx.supernet
    net.eval()
    net.set_active(net.largest())
    x, y = batch()
    with torch.no_grad():
        expected = net(x)
    schedule.begin_phase(ctx, phase)
    teacher = ctx.teacher
    assert teacher is not None and not teacher.training
    with torch.no_grad():
        assert torch.allclose(teacher(x), expected, atol=1e-5)
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    assert all(not p.requires_grad for p in teacher.parameters())
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for _ in range(3):
        optimizer.zero_grad()
        stats = schedule.step(ctx, x, y, phase)
        optimizer.step()
        assert stats["kd_loss"] > 0
    assert all(torch.equal(frozen[k], v) for k, v in teacher.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
    # the schedule's state carries the teacher, so a resumed run distils from the same one
    restored = create_schedule("ofa")
    restored.load_state_dict(schedule.state_dict())
    other = context()
    restored.resume_phase(other, phase)
    assert all(torch.equal(frozen[k], v) for k, v in other.teacher.state_dict().items())
    # kd_ratio=0: no teacher, cross-entropy only
    ctx0, _, stats0 = run_phase("kernel", 1, kd_ratio=0.0)
    assert ctx0.teacher is None and "kd_loss" not in stats0[0]


def test_expansion_phases_sort_channels_first(monkeypatch):
    ctx = context()
    schedule = create_schedule("ofa")
    calls = []
    original = ctx.supernet.reorder_channels
    monkeypatch.setattr(
        ctx.supernet, "reorder_channels", lambda stage=0: (calls.append(stage), original(stage))
    )
    phases = schedule.phases(6)
    for phase in phases:
        schedule.begin_phase(ctx, phase)
    assert calls == [0, 1]  # before {6, 4}, then before {6, 4, 3}


def test_resume_across_phases_is_exact(tmp_path):
    data = SyntheticImages(num_classes=4, n_train=48, n_test=4, size=16).load()
    settings = TrainSettings(
        width_mult=0.25, resolutions=(16,), batch_size=8, epochs=6, steps_per_epoch=2, seed=1
    )

    def run(out, callbacks=()):
        return train_supernet(
            "ofa-cifar", "ofa", data, out, settings, device="cpu", threads=1, callbacks=callbacks
        )

    whole = run(tmp_path / "whole")
    seen = []

    def interrupt(entry):
        seen.append(entry)
        if len(seen) == 3:  # after the first depth phase: the teacher comes from the checkpoint
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "parts", [interrupt])
    resumed = run(tmp_path / "parts")
    a, b = whole.supernet.state_dict(), resumed.supernet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in whole.metadata["history"]] == [
        h["loss"] for h in resumed.metadata["history"]
    ]
    files = sorted(p.name for p in (tmp_path / "parts").glob("phase-*.pt"))
    assert files == [
        "phase-1-largest.pt",
        "phase-2-kernel.pt",
        "phase-3-depth-1.pt",
        "phase-4-depth-2.pt",
        "phase-5-expand-1.pt",
        "phase-6-expand-2.pt",
    ]
