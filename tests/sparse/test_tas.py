"""TAS: channel-wise interpolation, Gumbel width sampling, the cost loss, the search's
movement under a cost target, and knowledge-distillation training of the pruned network."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nasforge.errors import InvalidConfigError
from nasforge.ops.cifar_resnet import CifarResNet, ResNetLayout, TASResNet, full_widths
from nasforge.sparse import tas
from nasforge.sparse.tas import (
    channel_wise_interpolation,
    cost_loss,
    gumbel_pick,
    kd_loss,
    tas_search,
    train_pruned,
    width_choices,
)
from nasforge.train import Recipe, SyntheticImages

LAYOUT = ResNetLayout(blocks=1, base=4, num_classes=3, resolution=8)


@pytest.fixture(scope="module")
def data():
    return SyntheticImages(num_classes=3, n_train=96, n_test=12, size=8, seed=1).load()


def _cwi_by_definition(x: torch.Tensor, channels: int) -> torch.Tensor:
    c = x.shape[1]
    out = []
    for j in range(channels):
        s, e = math.floor(j * c / channels), math.ceil((j + 1) * c / channels)
        out.append(x[:, s:e].mean(1))
    return torch.stack(out, 1)


@pytest.mark.parametrize(("c_in", "c_out"), [(3, 8), (5, 7), (8, 3), (4, 4)])
def test_channel_wise_interpolation_equals_its_definition(c_in, c_out):
    x = torch.randn(2, c_in, 3, 2, generator=torch.Generator().manual_seed(c_in * c_out))
    got = channel_wise_interpolation(x, c_out)
    assert got.shape == (2, c_out, 3, 2)
    torch.testing.assert_close(got, _cwi_by_definition(x, c_out))


def test_channel_wise_interpolation_by_hand():
    x = torch.tensor([1.0, 3.0]).view(1, 2, 1, 1)
    # 2 -> 3 channels: [x0], [x0, x1] (floor(1*2/3)=0 .. ceil(2*2/3)=2), [x1]
    assert channel_wise_interpolation(x, 3).flatten().tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("actual", "expected_value"),
    [(1.2, 2.0), (1.06, 2.0), (1.05, 0.0), (1.0, 0.0), (0.96, 0.0), (0.95, 0.0), (0.9, -2.0)],
)
def test_cost_loss_is_the_papers_piecewise_formula(actual, expected_value):
    # E_cost = e^2: log E = 2 above (1 + t) R, -log E = -2 below (1 - t) R, 0 in between.
    expected = torch.tensor(math.exp(2.0), requires_grad=True)
    loss = cost_loss(expected, actual=actual, target=1.0, tolerance=0.05)
    assert float(loss.detach()) == pytest.approx(expected_value)
    if expected_value:
        loss.backward()
        assert float(expected.grad) == pytest.approx(math.copysign(1, expected_value) / math.exp(2))


def test_gumbel_pick_draws_two_distinct_widths_weighted_to_one():
    logits = torch.zeros(6, requires_grad=True)
    for seed in range(20):
        index, weights = gumbel_pick(logits, 1.0, torch.Generator().manual_seed(seed))
        assert len(set(index)) == 2 and all(0 <= i < 6 for i in index)
        assert float(weights.detach().sum()) == pytest.approx(1.0)
    weights.sum().backward()  # differentiable in the logits
    assert logits.grad is not None
    a = gumbel_pick(logits, 1.0, torch.Generator().manual_seed(3))
    b = gumbel_pick(logits, 1.0, torch.Generator().manual_seed(3))
    assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_gumbel_pick_follows_the_distribution_at_low_temperature():
    logits = torch.tensor([0.0, 0.0, 8.0, 0.0])
    hits = sum(
        2 in gumbel_pick(logits, 0.1, torch.Generator().manual_seed(s))[0] for s in range(50)
    )
    assert hits >= 48


def test_width_choices_are_the_ratios_of_the_full_width():
    assert width_choices(10) == (3, 4, 5, 6, 7, 8, 9, 10)
    assert width_choices(2) == (1, 2)


def test_expected_cost_is_the_layout_cost_when_the_distribution_is_certain():
    net = TASResNet(LAYOUT)
    widths = []
    with torch.no_grad():
        for choices, alpha in zip(net.choices, net.alphas, strict=True):
            alpha.zero_()
            alpha[len(choices) // 2] = 60.0
            widths.append(choices[len(choices) // 2])
    widths = tuple(widths)
    assert net.argmax_widths() == widths
    assert float(net.expected_cost("flops").detach()) == pytest.approx(
        LAYOUT.flops(widths), rel=1e-5
    )
    assert float(net.expected_cost("params").detach()) == pytest.approx(
        LAYOUT.params(widths), rel=1e-5
    )


def test_search_network_runs_sampled_widths_and_reaches_the_logits():
    net = TASResNet(LAYOUT)
    x = torch.randn(4, 3, 8, 8)
    out = net(x, net.sample(1.0, torch.Generator().manual_seed(0)))
    assert out.shape == (4, 3)
    out.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.alphas)
    assert net(x).shape == (4, 3)  # the most probable widths


def _search(data, target, seed=0):
    return tas_search(
        LAYOUT,
        data.train,
        mean=data.mean,
        std=data.std,
        target_ratio=target,
        recipe=Recipe(lr=0.05, epochs=2, batch_size=16),
        arch_lr=0.05,
        seed=seed,
    )


def test_expected_width_moves_toward_smaller_widths_under_a_lower_target(data):
    result = _search(data, 0.15)
    first, last = result.history[0], result.history[-1]
    assert first.argmax_ratio > 0.15 * 1.05  # the target is below the current cost
    assert last.mean_width_ratio < first.mean_width_ratio - 0.02
    assert last.expected_ratio < first.expected_ratio
    assert result.widths == last.widths
    assert result.cost_ratio == pytest.approx(
        LAYOUT.flops(result.widths) / LAYOUT.flops(full_widths(LAYOUT))
    )
    assert [h.epoch for h in result.history] == [0, 1, 2]
    assert result.history[1].tau == 10.0 and result.history[2].tau == pytest.approx(0.1)


def test_expected_width_grows_under_a_target_above_the_current_cost(data):
    result = _search(data, 1.0)
    assert result.history[-1].mean_width_ratio > result.history[0].mean_width_ratio


def test_search_is_deterministic_given_its_seed(data):
    assert _search(data, 0.3, seed=4).history == _search(data, 0.3, seed=4).history


def test_kd_loss_is_the_papers_formula():
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    y = torch.tensor([0, 1, 2, 3, 0])
    soft = F.softmax(t / 4, 1)
    match = -(soft * F.log_softmax(z / 4, 1)).sum(1).mean()
    want = 0.9 * F.cross_entropy(z, y) + 0.1 * match
    torch.testing.assert_close(kd_loss(z, t, y), want)
    torch.testing.assert_close(kd_loss(z, t, y, weight=1.0), F.cross_entropy(z, y))


def test_train_pruned_uses_the_kd_loss_with_the_teachers_logits(data, monkeypatch):
    calls = []
    original = tas.kd_loss

    def spy(logits, teacher_logits, labels, **kw):
        calls.append((teacher_logits.shape, kw))
        return original(logits, teacher_logits, labels, **kw)

    monkeypatch.setattr(tas, "kd_loss", spy)
    teacher = CifarResNet(LAYOUT)
    widths = (2, 2, 3, 4, 5, 8, 9)
    recipe = Recipe(lr=0.05, epochs=1, batch_size=32)
    kw = {"layout": LAYOUT, "recipe": recipe, "mean": data.mean, "std": data.std}
    model, record = train_pruned(widths, teacher, data.train, **kw)
    assert len(calls) == 3 and calls[0][0] == (32, 3)
    assert calls[0][1] == {"weight": 0.9, "temperature": 4.0}
    assert record.kd and record.images_seen == 96 and model.widths == widths
    calls.clear()
    _, record = train_pruned(widths, None, data.train, kd=False, **kw)
    assert not calls and not record.kd


@pytest.mark.parametrize("target", [0.0, -0.2, 1.5, "half", True])
def test_target_ratio_out_of_range_is_refused(data, target):
    with pytest.raises(InvalidConfigError, match=r"\(0, 1\]"):
        _search(data, target)


def test_bad_settings_are_refused(data):
    with pytest.raises(InvalidConfigError, match="flops"):
        tas_search(
            LAYOUT,
            data.train,
            mean=data.mean,
            std=data.std,
            target_ratio=0.5,
            recipe=Recipe(epochs=1),
            cost="latency",
        )
    kw = {"layout": LAYOUT, "recipe": Recipe(epochs=1), "mean": data.mean, "std": data.std}
    with pytest.raises(InvalidConfigError, match="teacher"):
        train_pruned(full_widths(LAYOUT), None, data.train, **kw)
    with pytest.raises(InvalidConfigError, match="needs 7 widths"):
        train_pruned((4, 4), None, data.train, kd=False, **kw)
