"""FLIQS: the schedule, the controller, shared-weight training, resume and bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.ops.quant import quantize_model, set_policy
from nasforge.quant.fliqs import (
    FormatController,
    cosine_entropy_weight,
    fliqs_search,
    policy_accuracy,
    recalibrate,
    tunas_reward,
)
from nasforge.train import SyntheticImages
from nasforge.train.trainer import seeded


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return SyntheticImages(num_classes=3, n_train=120, n_test=30, size=8).load()


def tiny() -> nn.Module:
    with seeded(0):
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 3),
        )


def test_cosine_entropy_schedule_values() -> None:
    start = 0.4
    assert cosine_entropy_weight(0, 10, start) == pytest.approx(start)
    assert cosine_entropy_weight(5, 10, start) == pytest.approx(start / 2)
    assert cosine_entropy_weight(10, 10, start) == 0.0
    assert cosine_entropy_weight(12, 10, start) == 0.0
    for step in range(11):
        expected = start * 0.5 * (1 + math.cos(math.pi * step / 10))
        assert cosine_entropy_weight(step, 10, start) == pytest.approx(expected)
    values = [cosine_entropy_weight(s, 10, start) for s in range(11)]
    assert all(a > b for a, b in itertools.pairwise(values))


def test_tunas_reward_penalises_both_sides_of_the_target() -> None:
    assert tunas_reward(0.9, 100.0, 100.0, -0.5) == pytest.approx(0.9)
    assert tunas_reward(0.9, 120.0, 100.0, -0.5) == pytest.approx(0.8)
    assert tunas_reward(0.9, 80.0, 100.0, -0.5) == pytest.approx(0.8)


def test_controller_moves_probability_to_the_better_format() -> None:
    controller = FormatController(3, 3, learning_rate=0.05)
    rng = np.random.default_rng(0)
    for _ in range(300):
        choices = controller.sample(rng)
        reward = sum(1.0 for c in choices if c == 2) / 3  # format 2 is better in every layer
        controller.update(choices, reward)
    p = controller.probabilities()
    assert (p[:, 2] > 0.8).all()
    assert controller.argmax() == [2, 2, 2]


def test_entropy_bonus_keeps_the_policy_spread() -> None:
    def run(weight: float) -> float:
        controller = FormatController(2, 3, learning_rate=0.05)
        rng = np.random.default_rng(1)
        for _ in range(200):
            choices = controller.sample(rng)
            controller.update(choices, float(choices[0] == 0 and choices[1] == 0), weight)
        return controller.entropy()

    assert run(5.0) > run(0.0) + 0.1


def test_controller_state_round_trip() -> None:
    a = FormatController(2, 3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a.update(a.sample(rng), float(rng.random()), 0.1)
    b = FormatController(2, 3)
    b.load_state_dict(a.state_dict())
    a.update([0, 1], 1.0, 0.1)
    b.update([0, 1], 1.0, 0.1)
    np.testing.assert_array_equal(a.logits, b.logits)


def test_training_updates_the_weights_every_format_shares(data) -> None:  # type: ignore[no-untyped-def]
    model = tiny()
    result = fliqs_search(model, data, epochs=2, warmup_epochs=1, seed=0, calibration_images=32)
    net = result.supernet
    # one weight tensor per layer, whatever the format: no per-format copies
    assert sum(1 for _ in net.parameters()) == sum(1 for _ in model.parameters())
    conv_before = model[0].weight.detach()
    conv_after = net[0].weight.detach()
    assert not torch.equal(conv_before, conv_after)
    # the same trained weights serve every policy: accuracies differ only by format
    for policy in ("int2", "int8", ["int8", "int2"]):
        acc = policy_accuracy(net, policy, data, calibration_images=32)
        assert 0.0 <= acc <= 100.0
    assert policy_accuracy(net, "int8", data) > 100.0 / 3 + 10  # above chance: trained
    assert result.layers == ("0", "5")
    assert len(result.policy) == 2
    assert set(result.policy) <= {"int2", "int4", "int8"}
    assert result.probabilities.shape == (2, 3)
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert "policy" not in result.history[0] and "policy" in result.history[1]


def test_policy_accuracy_leaves_the_supernet_unchanged(data) -> None:  # type: ignore[no-untyped-def]
    net = quantize_model(tiny(), "int8")
    set_policy(net, ["int4", "int8"])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    policy_accuracy(net, "int2", data, calibration_images=16)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.weight_precision for m in (net[0], net[5])] == ["int4", "int8"]


def test_recalibrate_averages_per_batch_ranges_and_batch_norm() -> None:
    net = quantize_model(nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 1)), "int8")
    first = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    second = torch.tensor([[4.0, 3.0], [0.0, 5.0]])
    recalibrate(net, [first, second])
    layer = net[1]
    # the linear layer sees the inputs normalised with the recomputed statistics (evaluation
    # mode); its range is the mean of the two batches' ranges
    net.eval()
    outs = []
    with torch.no_grad():
        for x in (first, second):
            z = net[0](x)
            outs.append((float(z.min()), float(z.max())))
    assert float(layer.act_min) == pytest.approx(sum(o[0] for o in outs) / 2, abs=1e-5)
    assert float(layer.act_max) == pytest.approx(sum(o[1] for o in outs) / 2, abs=1e-5)
    together = torch.cat([first, second])
    expected_mean = (first.mean(0) + second.mean(0)) / 2  # plain average of batch means
    assert torch.allclose(net[0].running_mean, expected_mean)
    assert torch.allclose(net[0].running_mean, together.mean(0))


class Stop(Exception):
    pass


def plain(history: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """The history with NaN written as None (NaN is not equal to itself)."""
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in e.items()}
        for e in history
    ]


def test_resume_gives_the_uninterrupted_result(data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = {"epochs": 3, "warmup_epochs": 1, "seed": 3, "calibration_images": 32}
    whole = fliqs_search(tiny(), data, **settings)

    def stop_after_two(entry: dict) -> None:  # type: ignore[type-arg]
        if entry["epoch"] == 1:
            raise Stop

    with pytest.raises(Stop):
        fliqs_search(tiny(), data, checkpoint_dir=tmp_path, on_epoch=stop_after_two, **settings)
    resumed = fliqs_search(tiny(), data, checkpoint_dir=tmp_path, **settings)
    assert resumed.policy == whole.policy
    np.testing.assert_allclose(resumed.probabilities, whole.probabilities)
    assert resumed.valid_acc == whole.valid_acc
    assert plain(resumed.history) == plain(whole.history)
    for a, b in zip(resumed.supernet.parameters(), whole.supernet.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bad_input(data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidConfigError, match="int3"):
        fliqs_search(tiny(), data, precisions=("int4", "int5"))
    with pytest.raises(InvalidConfigError, match="no Conv2d or Linear"):
        fliqs_search(nn.Sequential(nn.ReLU()), data)
    with pytest.raises(InvalidConfigError, match="Unknown cost"):
        fliqs_search(tiny(), data, cost="latency")
    with pytest.raises(InvalidConfigError, match="warmup_epochs"):
        fliqs_search(tiny(), data, epochs=2, warmup_epochs=2)
    with pytest.raises(InvalidConfigError, match="twice"):
        fliqs_search(tiny(), data, precisions=("int8", 8))
    with pytest.raises(InvalidConfigError, match="space="):
        fliqs_search(tiny(), data, storage="sqlite:///x.db")
    net = quantize_model(tiny(), "int8")
    with pytest.raises(InvalidConfigError, match="2 quantizable layers"):
        policy_accuracy(net, ["int8", "int4", "int2"], data)


def test_fp8_formats_and_weights_only(data) -> None:  # type: ignore[no-untyped-def]
    formats = ("int4", "fp8_e4m3", "fp8_e5m2")
    result = fliqs_search(
        tiny(), data, precisions=formats, cost="bops", epochs=2, warmup_epochs=1,
        weights_only=True, calibration_images=32,
    )  # fmt: skip
    assert set(result.policy) <= set(formats)
    layers = [result.supernet[0], result.supernet[5]]
    assert [m.act_precision for m in layers] == ["fp32", "fp32"]
    assert [m.weight_precision for m in layers] == list(result.policy)
    assert result.cost == result.bops > 0


def test_measured_policies_are_trials_of_a_quant_study(data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nasforge import load_study, spaces
    from nasforge.spaces.quantized import QuantizedSpace

    base = spaces.create("nb201")
    space = QuantizedSpace(base, settings={"cells_per_stage": 1})
    arch = base.parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|none~1|none~2|")
    with seeded(0):
        model = base.build(arch, channels=4, cells_per_stage=1, num_classes=3)
    storage = f"sqlite:///{tmp_path / 'fliqs.db'}"
    result = fliqs_search(
        model, data, epochs=3, warmup_epochs=1, space=space, arch=arch, storage=storage,
        study_name="fliqs", calibration_images=32,
    )  # fmt: skip
    study = load_study("fliqs", storage=storage)
    trials = study.trials
    assert [int(t.metrics["epoch"]) for t in trials] == [1, 2]
    last = trials[-1]
    assert space.split(last.arch)[0] == arch
    assert last.arch == result.study.space.parse(last.arch.text)
    assert last.metrics["valid_acc"] == pytest.approx(result.history[-1]["valid_acc"])
    assert ",".join(result.policy) == result.history[-1]["policy"]
    with pytest.raises(InvalidConfigError, match="weights_only"):
        fliqs_search(model, data, epochs=2, warmup_epochs=1, space=space, arch=arch,
                     weights_only=True)  # fmt: skip
