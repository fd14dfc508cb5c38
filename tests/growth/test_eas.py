"""EAS: function-preserving actions, REINFORCE towards rewarded growth, determinism, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nasforge import growth, spaces
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.growth import _eas as eas_module
from nasforge.train import SyntheticImages


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


@pytest.fixture(scope="module")
def data():
    return SyntheticImages(num_classes=4, n_train=200, n_test=20, size=8, seed=0).load()


def test_reward_is_the_papers_tangent() -> None:
    assert eas_module.reward(50.0) == pytest.approx(math.tan(0.25 * math.pi))
    assert eas_module.reward(0.0) == 0.0
    assert math.isfinite(eas_module.reward(100.0))


def test_actor_actions_preserve_the_function() -> None:
    net = _net().eval()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ctl = eas_module._Controller(3)
    rng = np.random.default_rng(0)
    episode = eas_module._Episode()
    child = net
    for _ in range(3):
        child = eas_module._wider(ctl, child, x, ((8, 16, 32), (64,)), 0.0, rng, episode)
        child = eas_module._deeper(ctl, child, x, (1, 3, 5), rng, episode)
    assert any(d.startswith("widen") for d in episode.done)
    assert sum(d.startswith("deepen") for d in episode.done) == 3
    assert len(growth.layers(child, x)) == 6
    with torch.no_grad():
        assert float((child.eval()(x) - net(x)).abs().max()) <= 1e-5
    assert all(lp.requires_grad for lp in episode.logps)


def test_reinforce_learns_to_widen_when_wider_is_rewarded(monkeypatch, data) -> None:
    """With the accuracy a function of the size (no training), the policy gradient raises
    the Net2Wider actor's probabilities on the parent's layers."""
    monkeypatch.setattr(eas_module, "train", lambda model, *a, **k: None)

    def accuracy(model, part, data, device):
        params = sum(p.numel() for p in model.parameters())
        return min(80.0, 20.0 + 10.0 * math.log2(params / 876))

    monkeypatch.setattr(eas_module, "_accuracy", accuracy)
    x = torch.randn(2, 3, 8, 8)

    def wider_probability(controller) -> float:
        with torch.no_grad():
            out, _ = controller.encode(growth.describe(_net(), x))
            return float(torch.sigmoid(controller.wider(out).squeeze(-1))[:2].mean())

    settings = dict(
        networks_per_step=6,
        wider_actions=1,
        deeper_actions=0,
        train_epochs=1,
        filter_widths=(8, 16),
        controller_lr=0.02,
        seed=3,
        example=x,
    )
    before = growth.eas(
        _net(),
        data,
        steps=1,
        controller_lr=0.0,
        **{k: v for k, v in settings.items() if k != "controller_lr"},
    )
    after = growth.eas(_net(), data, steps=15, **settings)
    assert wider_probability(after.controller) > wider_probability(before.controller) + 0.15
    assert after.best.params > after.parent.params
    assert after.best_per_step() == sorted(after.best_per_step())


def test_seeded_run_is_reproducible_and_trains(data) -> None:
    kwargs = dict(
        steps=2,
        networks_per_step=2,
        wider_actions=1,
        deeper_actions=1,
        train_epochs=1,
        filter_widths=(8, 12),
        seed=5,
    )
    first = growth.eas(_net(), data, **kwargs)
    second = growth.eas(_net(), data, **kwargs)
    assert [(g.accuracy, g.transformations) for g in first.history] == [
        (g.accuracy, g.transformations) for g in second.history
    ]
    assert len(first.history) == 4 and first.parent.step == 0
    assert first.epochs == sum(g.trained for g in first.history)
    for g in first.history:
        assert 0.0 <= g.accuracy <= 100.0 and g.params >= first.parent.params
    x = torch.randn(2, 3, 8, 8)
    assert first.best_model.eval()(x).shape == (2, 4)


def test_grows_a_network_built_by_a_space(data) -> None:
    space = spaces.create("nb201")
    arch = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"
    )
    model = space.build(arch, num_classes=4, channels=4, cells_per_stage=1)
    result = growth.eas(
        model,
        data,
        steps=1,
        networks_per_step=2,
        wider_actions=1,
        deeper_actions=1,
        train_epochs=1,
        filter_widths=(4, 8, 16, 32),
        grow_from="best",
        seed=0,
    )
    done = [t for g in result.history for t in g.transformations]
    assert all("'cells.1.conv_a.1'" in t or "'cells.3.conv_a.1'" in t for t in done if "widen" in t)
    assert sum("deepen" in t for t in done) == 2


class _OnlyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_bad_input(data) -> None:
    with pytest.raises(UnsupportedOperationError, match=r"'fc': not widenable: its output is"):
        growth.eas(_OnlyClassifier(), data, steps=1, networks_per_step=1, train_epochs=1)
    with pytest.raises(InvalidConfigError, match="DataSplits"):
        growth.eas(_net(), [1, 2, 3], steps=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="steps"):
        growth.eas(_net(), data, steps=0)
    with pytest.raises(InvalidConfigError, match="odd"):
        growth.eas(_net(), data, steps=1, kernels=(2,))
