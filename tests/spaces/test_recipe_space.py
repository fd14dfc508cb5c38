"""The recipe form '<space>+recipe': recipe decisions beside the architecture, applied by
recipe_of and reaching the training evaluator's trainer."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

import nasforge
from nasforge import evaluators, spaces
from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    UnknownNameError,
    UnsupportedOperationError,
)
from nasforge.evaluators.base import Evaluator
from nasforge.spaces.recipe import KNOBS, RecipeSpace
from nasforge.testing import check_space
from nasforge.train.recipe import Recipe
from nasforge.trial import Direction, Result

NB201 = spaces.create("nb201")
BASE = NB201.from_index(6111)


def test_form_is_registered_and_passes_the_space_contract():
    space = spaces.create("nb201+recipe")
    assert isinstance(space, RecipeSpace) and space.name == "nb201+recipe"
    assert spaces.get("nb201+recipe") is RecipeSpace
    assert space.size == NB201.size * math.prod(len(o) for o in KNOBS.values())
    check_space(space)


def test_text_round_trip_and_split():
    space = spaces.create("nb201+recipe")
    arch = space.join(BASE, lr=2, epochs="x0.5", optimizer="adamw", mixup=0.2, ema=0.999)
    assert arch.text.startswith(BASE.text + "|recipe:lr=x2,weight_decay=x1,epochs=x0.5,")
    assert space.parse(arch.text) == arch
    base, values = space.split(arch)
    assert base == BASE
    assert values == {
        "lr": 2.0,
        "weight_decay": 1.0,
        "epochs": 0.5,
        "optimizer": "adamw",
        "label_smoothing": 0.0,
        "mixup": 0.2,
        "ema": 0.999,
        "dropout": 0.0,
    }


@pytest.mark.parametrize(
    "text",
    [
        BASE.text,  # no recipe part
        BASE.text + "|recipe:lr=x2",  # settings missing
        BASE.text + "|recipe:lr=x3,weight_decay=x1,epochs=x1,optimizer=sgd,label_smoothing=0,"
        "mixup=0,ema=0,dropout=0",  # not an option
        BASE.text + "|recipe:lr=x2,lr=x2",  # repeated
        BASE.text + "|recipe:momentum=0.9",  # not a knob
    ],
)
def test_malformed_text_is_refused(text):
    with pytest.raises(InvalidArchitectureError):
        spaces.create("nb201+recipe").parse(text)


def test_recipe_of_applies_the_decisions_to_the_evaluator_recipe():
    space = spaces.create("nb201+recipe")
    given = Recipe(lr=0.05, weight_decay=1e-4, epochs=4, min_lr=0.01, warmup_epochs=1)
    same = space.recipe_of(space.join(BASE), given)
    assert same == given.replace(dropout=None)  # the neutral options change nothing
    arch = space.join(
        BASE, lr=0.5, weight_decay=5, epochs=0.5, label_smoothing=0.1, mixup=0.2, dropout=0.2
    )
    recipe = space.recipe_of(arch, given)
    assert recipe.lr == pytest.approx(0.025)
    assert recipe.weight_decay == pytest.approx(5e-4)
    assert recipe.epochs == 2 and recipe.label_smoothing == 0.1
    assert recipe.mixup == 0.2 and recipe.dropout == 0.2 and recipe.ema == 0.0
    assert recipe.min_lr == pytest.approx(0.01)
    # another optimiser starts from its own reference values
    adamw = space.recipe_of(space.join(BASE, optimizer="adamw", lr=2), given)
    assert adamw.optimizer == "adamw" and adamw.lr == pytest.approx(2e-3)
    assert adamw.weight_decay == pytest.approx(0.05) and adamw.min_lr <= adamw.lr
    # the default base is the base space's recipe; other spaces return the base untouched
    assert space.recipe_of(space.join(BASE)) == NB201.recipe().replace(dropout=None)
    assert NB201.recipe_of(BASE, given) is given and NB201.recipe_of(BASE) == NB201.recipe()


def test_custom_knobs_and_their_validation():
    space = spaces.create("nb201+recipe", knobs={"epochs": [1, 2, 4], "ema": None})
    assert [d.name for d in space.decisions()[-2:]] == ["recipe.epochs", "recipe.ema"]
    assert space.decisions()[-1].options == KNOBS["ema"]
    arch = space.join(BASE, epochs=4)
    assert space.recipe_of(arch, Recipe(epochs=3)).epochs == 12
    other = spaces.create("nb201+recipe")
    with pytest.raises(InvalidArchitectureError, match="space_params"):
        other.check(arch)
    with pytest.raises(UnknownNameError, match="momentum"):
        spaces.create("nb201+recipe", knobs={"momentum": [0.9]})
    with pytest.raises(UnknownNameError, match="rmsprop"):
        spaces.create("nb201+recipe", knobs={"optimizer": ["sgd", "rmsprop"]})
    for bad in ({"lr": [0, 1]}, {"dropout": [0.5, 1.0]}, {"epochs": [1, 1]}, {"lr": []}, {}):
        with pytest.raises(InvalidConfigError):
            spaces.create("nb201+recipe", knobs=bad)
    with pytest.raises(InvalidArchitectureError, match="not an option"):
        space.join(BASE, epochs=3)


def test_a_base_without_decisions_or_builder_is_refused():
    with pytest.raises(UnsupportedOperationError, match="decisions"):
        RecipeSpace(spaces.create("darts"))


def test_joint_encoding_is_the_architecture_then_the_recipe_encoder_input():
    space = spaces.create("nb201+recipe")
    assert space.encodings[:2] == ("onehot", "joint")
    arch = space.join(BASE, lr=2, optimizer="adamw", ema=0.999)
    joint = space.encode(arch, "joint")
    onehot = NB201.encode(BASE, NB201.encodings[0])
    np.testing.assert_array_equal(joint[: len(onehot)], onehot)
    features = joint[len(onehot) :]
    # lr (max), weight_decay (middle, log scale), epochs (middle), optimizer one-hot (adamw),
    # label smoothing, mixup, ema (on), dropout
    np.testing.assert_allclose(features, [1.0, 0.5, 0.5, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    assert space.encode(arch, "joint-path").shape[0] == len(NB201.encode(BASE, "path")) + 9
    assert space.encode(arch).sum() == len(space.decisions())  # the plain one-hot


def test_networks_are_the_base_networks_and_identity_includes_the_recipe():
    space = spaces.create("nb201+recipe")
    a, b = space.join(BASE, lr=0.5), space.join(BASE, lr=2)
    net = space.build(a, channels=4, cells_per_stage=1)
    assert type(net) is type(NB201.build(BASE, channels=4, cells_per_stage=1))
    assert space.functional_key(a) != space.functional_key(b)
    assert space.canonical(a).text.endswith(a.text.rpartition("|recipe:")[2])
    assert space.supports("build") and not space.supports("supernet")


class _Counting(Evaluator):
    space = None

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        return Result({"valid_acc": float(sum(arch.choices))}, cost=1.0)


def test_a_study_records_the_knobs_and_resumes(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    knobs = {"lr": [0.5, 2.0], "epochs": [1, 2]}
    study = nasforge.create_study(
        space="nb201+recipe",
        space_params={"knobs": knobs},
        strategy="random",
        storage=url,
        study_name="joint",
        seed=0,
    )
    study.optimize(_Counting(), n_trials=4)
    again = nasforge.load_study("joint", url)
    assert again.space.knobs == {"lr": (0.5, 2.0), "epochs": (1.0, 2.0)}
    assert [t.arch for t in again.trials] == [t.arch for t in study.trials]


def _tiny_training() -> Any:
    """The training evaluator of ``nb201+recipe`` on tiny synthetic images: a base recipe of
    2 epochs at lr 0.05, 4 channels, one cell per stage."""
    return evaluators.create(
        "train",
        dataset="synthetic",
        space="nb201+recipe",
        synthetic={"n_train": 64, "n_test": 16, "size": 8},
        recipe={"epochs": 2, "batch_size": 32, "lr": 0.05},
        channels=4,
        cells_per_stage=1,
        threads=1,
        hardware=False,
    )


def test_training_evaluator_trains_with_the_architecture_recipe():
    ev = _tiny_training()
    space = spaces.create("nb201+recipe")
    seen: dict[str, list[Any]] = {}
    ev.add_epoch_callback(lambda arch, report: seen.setdefault(arch.text, []).append(report))
    short = space.join(BASE, lr=0.5, epochs=0.5)
    long = space.join(BASE, lr=2, epochs=2)
    for arch in (short, long):
        ev.evaluate(arch)
    assert [r.epoch for r in seen[short.text]] == [0, 1]
    assert [r.epoch for r in seen[long.text]] == [0, 1, 2, 3, 4]
    # cosine from lr at step 0: the recipe's learning rate reached the trainer
    assert seen[short.text][0].lr == pytest.approx(0.025)
    assert seen[long.text][0].lr == pytest.approx(0.1)


def test_in_a_study_the_metrics_are_those_of_the_recipe_s_last_epoch():
    """Through a study (a reporting context), a recipe that doubles the epochs is measured
    after its last epoch, as without a study, and its metric ``epochs`` is the recipe's."""
    ev = _tiny_training()
    space = spaces.create("nb201+recipe")
    long = space.join(BASE, lr=2, epochs=2)
    alone = ev.evaluate(long).metrics
    study = nasforge.create_study(space="nb201+recipe", strategy="random")
    study.enqueue_trial(long)
    study.optimize(ev, n_trials=1)
    assert study.trials[0].metrics["epochs"] == alone["epochs"] == 4
    assert study.trials[0].metrics["valid_acc"] == pytest.approx(alone["valid_acc"])
    assert study.trials[0].metrics["test_acc"] == pytest.approx(alone["test_acc"])


def test_a_network_trained_with_its_found_recipe_is_exported(tmp_path):
    from nasforge.export import export_trial, load, load_record

    knobs = {"lr": [0.5, 2.0], "epochs": [1, 2], "mixup": [0.0, 0.2]}
    study = nasforge.create_study(
        space="nb201+recipe", space_params={"knobs": knobs}, strategy="random", seed=0
    )
    ev = evaluators.create(
        "train",
        dataset="synthetic",
        space=study.space,
        synthetic={"n_train": 48, "n_test": 8, "size": 8},
        recipe={"epochs": 1, "batch_size": 24, "lr": 0.05},
        channels=4,
        cells_per_stage=1,
        threads=1,
        hardware=False,
        checkpoint_dir=str(tmp_path / "ckpt"),
    )
    study.optimize(ev, n_trials=2)
    best = study.best_trial
    result = export_trial(study, tmp_path / "best.pt")
    record = load_record(result.path)
    assert result.trained and record.space == "nb201"
    assert record.arch == study.space.network_arch(best.arch).text
    assert record.info["searched_arch"] == best.arch.text
    trained_with = study.space.recipe_of(best.arch, ev.recipe)
    assert Recipe.from_dict(record.info["recipe"]) == trained_with
    assert type(load(result.path)).__name__ == "NB201Network"  # no knobs needed to load it
    onnx = export_trial(study, tmp_path / "best.onnx", format="onnx")
    assert onnx.max_abs_diff is not None and onnx.max_abs_diff < 1e-4
