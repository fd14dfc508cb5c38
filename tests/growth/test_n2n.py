"""N2N (Ashok et al., ICLR 2018): the reward, the policies' learning, the students, bad teachers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.errors import InfeasibleConstraintError, InvalidConfigError, UnsupportedOperationError
from nasforge.growth.n2n_learning import (
    INVALID_REWARD,
    RemovalPolicy,
    ShrinkPolicy,
    layer_features,
    n2n,
    n2n_reward,
)
from nasforge.growth.net2net import describe
from nasforge.train import SyntheticImages


def _teacher(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),  # "3": removable, shrinkable
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),  # "6": removable, shrinkable
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )


def _data(n: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 8, 8, generator=generator), torch.arange(n) % 3


def test_reward_is_the_papers_formula() -> None:
    # C = 1 - 250/1000 = 0.75, R_c = 0.75 * 1.25 = 0.9375, R_a = 0.8 / 0.9
    assert n2n_reward(250, 1000, 0.8, 0.9) == pytest.approx(0.9375 * 0.8 / 0.9)
    # C = 0.5: R_c = 0.75; the student as accurate as the teacher: R_a = 1
    assert n2n_reward(50, 100, 0.6, 0.6) == pytest.approx(0.75)
    assert n2n_reward(100, 100, 0.9, 0.9) == 0.0  # no compression, no reward
    assert n2n_reward(10, 100, 0.45, 0.9) == pytest.approx(0.9 * 1.1 * 0.5)
    assert n2n_reward(250, 1000, 0.8, 0.9, max_params=249) == INVALID_REWARD == -1.0
    assert n2n_reward(250, 1000, 0.8, 0.9, min_accuracy=0.85) == -1.0
    assert n2n_reward(250, 1000, 0.8, 0.9, max_params=250, min_accuracy=0.8) > 0
    with pytest.raises(InvalidConfigError, match="train it first"):
        n2n_reward(10, 100, 0.5, 0.0)


def test_removal_policy_moves_towards_the_rewarded_removals() -> None:
    # Stub accuracy: the student keeps its accuracy only while layer "6" is still there, so the
    # best reward is to remove "3" and keep "6".
    def score(model: nn.Module) -> float:
        return 0.9 if isinstance(model.get_submodule("6"), nn.Conv2d) else 0.1

    x, y = _data()
    result = n2n(
        _teacher(),
        (x, y),
        removal_iterations=25,
        shrink_iterations=0,
        rollouts=4,
        score=score,
        policy_lr=0.03,
        seed=1,
    )
    first = dict(zip(result.removal[0].layers, result.removal[0].per_layer, strict=True))
    final = result.keep_probabilities
    assert set(final) == {"3", "6"}
    assert final["6"] > first["6"] + 0.2
    assert final["3"] < first["3"] - 0.2
    assert result.best.removed == ("3",)
    late = [it.mean_reward for it in result.removal[-5:]]
    early = [it.mean_reward for it in result.removal[:5]]
    assert sum(late) > sum(early)


def test_shrink_policy_moves_towards_smaller_ratios_when_accuracy_does_not_drop() -> None:
    x, y = _data()
    result = n2n(
        _teacher(),
        (x, y),
        removal_iterations=0,
        shrink_iterations=20,
        rollouts=4,
        score=lambda model: 0.5,
        policy_lr=0.05,
        seed=0,
    )
    assert result.removal == () and result.keep_probabilities == {}
    assert result.shrinkage[0].layers == ("0", "3", "6")
    mean = [sum(it.per_layer) / len(it.per_layer) for it in result.shrinkage]
    assert sum(mean[-4:]) / 4 < sum(mean[:4]) / 4 - 0.1
    assert dict(result.best.widths)  # the best student is a shrunk one


def test_found_student_is_smaller_runs_and_is_reproducible() -> None:
    data = SyntheticImages(num_classes=3, n_train=60, n_test=6, size=8, seed=0).load()
    teacher = _teacher()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    kwargs = dict(
        removal_iterations=2, shrink_iterations=2, rollouts=2, student_epochs=1, batch_size=16
    )
    result = n2n(teacher, data, seed=3, **kwargs)
    teacher_params = sum(p.numel() for p in teacher.parameters())
    assert result.teacher_params == teacher_params
    assert result.student_params == sum(p.numel() for p in result.student.parameters())
    assert result.student_params < teacher_params
    assert result.compression == pytest.approx(1 - result.student_params / teacher_params)
    assert result.compression_ratio > 1
    assert 0 < result.teacher_accuracy <= 1 and 0 <= result.student_accuracy <= 1
    assert result.reward == max(s.reward for s in result.students)
    assert len(result.students) == 8 and len(result.removal) == len(result.shrinkage) == 2
    out = result.student.eval()(torch.randn(5, 3, 8, 8))
    assert out.shape == (5, 3) and torch.isfinite(out).all()
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    again = n2n(teacher, data, seed=3, **kwargs)
    assert [s.reward for s in again.students] == [s.reward for s in result.students]
    for k, v in result.student.state_dict().items():
        assert torch.equal(v, again.student.state_dict()[k])


def test_policies_sample_only_where_they_may_act() -> None:
    x = layer_features(describe(_teacher(), torch.randn(2, 3, 8, 8)))
    assert x.shape == (4, 9)
    generator = torch.Generator().manual_seed(0)
    mask = torch.tensor([False, True, True, False])
    keep = RemovalPolicy().sample(x, mask, generator)
    assert keep[0] == keep[3] == 1 and set(keep.tolist()) <= {0, 1}
    shrink = ShrinkPolicy(ratios=5)
    ratios = shrink.sample(x, mask, generator)
    assert ratios[0] == ratios[3] == -1 and all(0 <= int(r) < 5 for r in ratios[1:3])
    # the teacher-forced log-probability is that of the sampled sequence
    logp = shrink.log_prob(x, ratios, mask)
    assert logp.item() < 0 and logp.requires_grad


def test_teacher_with_nothing_to_remove_or_shrink_is_refused_with_reasons() -> None:
    x, y = _data()
    lone = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    with pytest.raises(UnsupportedOperationError, match=r"'1' \(linear 192->3\).*not removable"):
        n2n(lone, (x, y), removal_iterations=1, shrink_iterations=1, score=lambda m: 0.5)

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.head = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head((x + self.conv(x)).mean((2, 3)))

    with pytest.raises(UnsupportedOperationError, match=r"shrunk.*'conv'.*not widenable"):
        n2n(Residual(), (x, y), removal_iterations=0, shrink_iterations=1, score=lambda m: 0.5)


def test_untraceable_teacher_and_bad_settings() -> None:
    x, y = _data()

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(192, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                x = x * 2
            return self.fc(x.flatten(1))

    with pytest.raises(UnsupportedOperationError):
        n2n(Branchy(), (x, y), removal_iterations=1, score=lambda m: 0.5)
    with pytest.raises(InvalidConfigError, match="at least one stage"):
        n2n(_teacher(), (x, y), removal_iterations=0, shrink_iterations=0)
    with pytest.raises(InvalidConfigError, match="rollouts"):
        n2n(_teacher(), (x, y), rollouts=0)
    with pytest.raises(InvalidConfigError, match="batch_size"):
        n2n(_teacher(), (x, y), batch_size=0)
    with pytest.raises(InvalidConfigError, match="baseline_decay"):
        n2n(_teacher(), (x, y), baseline_decay=1.0)
    with pytest.raises(InvalidConfigError, match="ratios"):
        n2n(_teacher(), (x, y), ratios=(0.5, 1.5))
    with pytest.raises(InvalidConfigError, match="regression"):
        n2n(_teacher(), (x, torch.randn(len(x))))
    with pytest.raises(InfeasibleConstraintError, match="max_params"):
        n2n(
            _teacher(),
            (x, y),
            removal_iterations=2,
            shrink_iterations=0,
            rollouts=2,
            max_params=10,
            score=lambda m: 0.5,
        )


def test_teacher_built_by_a_space_is_compressed() -> None:
    import numpy as np

    from nasforge import spaces

    space = spaces.create("nb201")
    teacher = space.build(
        space.sample(np.random.default_rng(0)), channels=8, cells_per_stage=1, num_classes=3
    )
    x, y = _data(16)
    result = n2n(
        teacher, (x, y), removal_iterations=2, shrink_iterations=1, rollouts=2,
        score=lambda model: 0.5,
    )  # fmt: skip
    assert result.student_params < result.teacher_params
    assert result.best.removed and all("cells" in name for name in result.best.removed)
    assert result.student(x).shape == (16, 3)
