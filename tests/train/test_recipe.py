"""Recipe: validation, plain-data round trip, named recipes; the cosine schedule with warm-up."""

from __future__ import annotations

import itertools
import math

import pytest

from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.train.recipe import Recipe, cosine_warmup_lr


def test_defaults_are_nb201() -> None:
    r = Recipe()
    assert (r.optimizer, r.lr, r.momentum, r.nesterov, r.weight_decay) == (
        "sgd",
        0.1,
        0.9,
        True,
        5e-4,
    )
    assert (r.epochs, r.batch_size, r.warmup_epochs, r.label_smoothing, r.cutout) == (
        200,
        256,
        0,
        0,
        0,
    )
    assert Recipe.named("nb201") == r
    assert Recipe.named("darts").cutout == 16


def test_round_trip_through_plain_data() -> None:
    r = Recipe(optimizer="lion", lr=3e-4, betas=(0.95, 0.98), grad_clip=1.0, cutout=8)
    data = r.to_dict()
    assert data["betas"] == [0.95, 0.98]  # JSON-ready
    assert Recipe.from_dict(data) == r
    assert Recipe.from_dict({"epochs": 3}) == Recipe(epochs=3)


def test_betas_default_per_optimizer() -> None:
    assert Recipe(optimizer="lion").resolved_betas() == (0.9, 0.99)
    assert Recipe(optimizer="adamw").resolved_betas() == (0.9, 0.999)
    assert Recipe(optimizer="AdamW").optimizer == "adamw"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"betas": (0.9, 1.0)}, "beta2"),
        ({"cutout": -1}, "cutout"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"warmup_epochs": 300}, "warmup_epochs"),
        ({"min_lr": 1.0}, "min_lr"),
        ({"momentum": 0.0}, "Nesterov"),
    ],
)
def test_bad_values_are_named(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidConfigError, match=fragment):
        Recipe(**changes)  # type: ignore[arg-type]


def test_unknown_names() -> None:
    with pytest.raises(UnknownNameError, match="lion"):
        Recipe(optimizer="lino")
    with pytest.raises(UnknownNameError, match="batch_size"):
        Recipe.from_dict({"batchsize": 3})
    with pytest.raises(UnknownNameError, match="recipe field"):
        Recipe().replace(foo=1)
    with pytest.raises(UnknownNameError, match="nb201"):
        Recipe.named("resnet")


def test_cosine_without_warmup() -> None:
    values = [cosine_warmup_lr(s, 4, lr=0.1) for s in range(4)]
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert values == pytest.approx(expected)
    assert values[0] == 0.1  # the first step trains at the peak


def test_cosine_with_warmup_and_floor() -> None:
    lr = [cosine_warmup_lr(s, 10, lr=1.0, warmup_steps=4, min_lr=0.1) for s in range(10)]
    assert lr[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # linear warm-up to the peak
    assert lr[4] == pytest.approx(1.0)  # the cosine starts at the peak
    assert lr[7] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 3 / 6)))  # = 0.55
    assert all(a >= b for a, b in itertools.pairwise(lr[3:]))  # then never rises
    assert min(lr) > 0.1
    assert cosine_warmup_lr(99, 10, lr=1.0, warmup_steps=4, min_lr=0.1) == pytest.approx(0.1)
    with pytest.raises(InvalidConfigError):
        cosine_warmup_lr(0, 0, lr=1.0)
