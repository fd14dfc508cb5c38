"""FBNetV3's recipe settings in the trainer: mixup, an EMA of the weights, classifier dropout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.train import Recipe, SyntheticImages
from nasforge.train.trainer import _classifier_dropout, _forward_loss, _Mixup, seeded, train

DATA = SyntheticImages(num_classes=2, n_train=16, n_test=4, size=4).load()


def tiny() -> nn.Module:
    with seeded(0):
        return nn.Sequential(nn.Flatten(), nn.Linear(48, 8), nn.ReLU(), nn.Linear(8, 2))


def fit(model: nn.Module, recipe: Recipe, **kwargs: object) -> object:
    return train(model, DATA.train, recipe, mean=DATA.mean, std=DATA.std, seed=0, **kwargs)


def test_recipe_fields_are_validated_and_serialised():
    r = Recipe(mixup=0.2, ema=0.999, dropout=0.1)
    assert Recipe.from_dict(r.to_dict()) == r
    assert {"mixup", "ema", "dropout"}.isdisjoint(Recipe().to_dict())  # off: left out
    assert Recipe.from_dict(Recipe().to_dict()) == Recipe()
    for bad in ({"mixup": -0.1}, {"ema": 1.0}, {"ema": -0.5}, {"dropout": 1.0}, {"dropout": "x"}):
        with pytest.raises(InvalidConfigError, match=next(iter(bad))):
            Recipe(**bad)  # type: ignore[arg-type]


def test_mixup_mixes_the_batch_and_the_loss_alike():
    x = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    y = torch.tensor([0, 1, 0, 1])
    mixed, partner, lam = _Mixup(0.4, seed=3)(x, y)
    again = _Mixup(0.4, seed=3)(x, y)
    assert torch.equal(mixed, again[0]) and lam == again[2]  # a function of the seed
    assert 0.0 < lam < 1.0 and partner is not None
    # every row is mixed with one partner row, whose label it takes as the second label
    partners = []
    for row in mixed:
        matches = [
            j for j in range(4) if torch.allclose(row, lam * x[len(partners)] + (1 - lam) * x[j])
        ]
        assert len(matches) == 1
        partners.append(matches[0])
    assert sorted(partners) == [0, 1, 2, 3]
    assert partner.tolist() == y[partners].tolist()
    off = _Mixup(0.0, seed=3)(x, y)
    assert off[0] is x and off[1] is None and off[2] == 1.0
    # the loss is the same mixture of the two labels' losses
    model = nn.Linear(6, 2)
    recipe = Recipe(label_smoothing=0.1)
    out, loss = _forward_loss(model, mixed, y, recipe, partner, lam)
    reference = lam * F.cross_entropy(out, y, label_smoothing=0.1) + (1 - lam) * F.cross_entropy(
        out, partner, label_smoothing=0.1
    )
    torch.testing.assert_close(loss, reference)


def test_mixup_changes_training():
    plain, mixed = tiny(), tiny()
    fit(plain, Recipe(epochs=2, batch_size=8, lr=0.1))
    fit(mixed, Recipe(epochs=2, batch_size=8, lr=0.1, mixup=1.0))
    assert not torch.equal(plain[1].weight, mixed[1].weight)


def test_ema_weights_are_the_moving_average_of_the_trajectory():
    recipe = Recipe(epochs=6, batch_size=16, lr=0.5, crop_padding=0, flip=False)  # one step
    trajectory: list[dict[str, torch.Tensor]] = []
    raw = tiny()
    start = {k: v.clone() for k, v in raw.state_dict().items()}

    def record(report: object) -> None:
        trajectory.append({k: v.clone() for k, v in raw.state_dict().items()})

    fit(raw, recipe, on_epoch=record)
    averaged = tiny()
    fit(averaged, recipe.replace(ema=0.9))
    shadow = start
    for step, weights in enumerate(trajectory[1:]):  # after each step
        decay = min(0.9, (1 + step) / (10 + step))
        shadow = {k: decay * shadow[k] + (1 - decay) * weights[k] for k in shadow}
    for key, value in averaged.state_dict().items():
        torch.testing.assert_close(value, shadow[key])
    assert not torch.allclose(averaged[3].weight, raw[3].weight)


def test_classifier_dropout_drops_in_training_only_and_is_removed_after_training():
    model = nn.Linear(1000, 1, bias=False)
    nn.init.ones_(model.weight)
    model.weight.requires_grad_(False)
    hook = _classifier_dropout(model, 0.5, seed=0, device=torch.device("cpu"))
    assert hook is not None
    ones = torch.ones(1, 1000)
    kept = float(model(ones)) * 0.5  # inputs kept, each scaled by 1 / 0.5
    assert kept == round(kept) and 400 < kept < 600
    model.eval()
    assert float(model(ones)) == 1000.0
    hook.remove()
    assert _classifier_dropout(model, None, seed=0, device=torch.device("cpu")) is None
    assert _classifier_dropout(model, 0.0, seed=0, device=torch.device("cpu")) is None
    with pytest.raises(InvalidConfigError, match="linear layer"):
        _classifier_dropout(nn.Sequential(nn.Flatten()), 0.2, 0, torch.device("cpu"))
    net, plain = tiny(), tiny()
    fit(net, Recipe(epochs=2, batch_size=8, dropout=0.5))
    fit(plain, Recipe(epochs=2, batch_size=8))
    assert not torch.equal(net[3].weight, plain[3].weight)
    assert not net[3]._forward_pre_hooks  # the network is left as built
    assert set(net.state_dict()) == set(plain.state_dict())


def test_epochs_and_learning_rate_of_the_recipe_drive_the_run():
    reports: list[object] = []
    result = fit(tiny(), Recipe(epochs=3, batch_size=8, lr=0.3), on_epoch=reports.append)
    assert result.epochs == 3 and result.steps == 6  # type: ignore[attr-defined]
    assert reports[0].lr == pytest.approx(0.3)  # type: ignore[attr-defined]
