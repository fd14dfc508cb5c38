"""The training evaluator: learns, is deterministic per seed, fidelities, failures through a
study, spec round trips, bad input. Tiny settings: SyntheticImages, C=4, N=1, 8-16 px."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nasforge
from nasforge import evaluators, spaces
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    UnknownNameError,
    UnsupportedOperationError,
)
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.train import DatasetError, Recipe
from nasforge.trial import TrialState

SYNTH = {"num_classes": 4, "n_train": 256, "n_test": 64, "size": 16}
CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|"
    "+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
)


def tiny(**changes: Any) -> TrainingEvaluator:
    kwargs: dict[str, Any] = {
        "dataset": "synthetic",
        "synthetic": SYNTH,
        "recipe": Recipe(epochs=2, batch_size=32, lr=0.1),
        "channels": 4,
        "cells_per_stage": 1,
        "threads": 1,
        "device": "cpu",
    }
    kwargs.update(changes)
    ev = evaluators.create("train", **kwargs)
    assert isinstance(ev, TrainingEvaluator)
    return ev


@pytest.fixture(scope="module")
def arch() -> nasforge.Architecture:
    return spaces.create("nb201").parse(CELL)


def test_learns_the_synthetic_set_above_chance(arch: nasforge.Architecture) -> None:
    ev = tiny()
    result = ev.evaluate(arch)
    m = result.metrics
    assert m["valid_acc"] > 50 and m["test_acc"] > 50  # chance is 25 %
    assert m["epochs"] == 2 and m["train_loss"] > 0 and 0 <= m["train_acc"] <= 100
    assert m["params_M"] > 0 and m["flops_M"] == pytest.approx(2 * m["macs_M"])
    assert result.cost == result.seconds > 0
    assert ev.cost_unit == "seconds"
    assert set(m) == set(ev.metrics)


def test_deterministic_per_seed(arch: nasforge.Architecture) -> None:
    fidelity = {"epochs": 1, "resolution": 8}
    a = tiny().evaluate(arch, fidelity).metrics
    b = tiny().evaluate(arch, fidelity).metrics
    c = tiny(seed=1).evaluate(arch, fidelity).metrics
    assert a == b
    assert a["train_loss"] != c["train_loss"]


def test_fidelity_keys_and_values(arch: nasforge.Architecture) -> None:
    ev = tiny()
    assert ev.fidelity_keys == (
        "epochs",
        "channels",
        "cells_per_stage",
        "resolution",
        "data_fraction",
    )
    setting = ev.setting(
        {"epochs": 1, "channels": 2, "cells_per_stage": 0, "resolution": 8, "data_fraction": 0.5}
    )
    assert (setting.epochs, setting.channels, setting.depth, setting.resolution) == (1, 2, 0, 8)
    assert ev.setting(None).resolution == 16  # the synthetic data's size
    result = ev.evaluate(arch, {"epochs": 1, "data_fraction": 0.25, "resolution": 8})
    assert result.metrics["epochs"] == 1
    with pytest.raises(
        InvalidConfigError,
        match=r"\['layers'\].*valid keys: epochs, channels, "
        r"cells_per_stage, resolution, data_fraction",
    ):
        ev.evaluate(arch, {"layers": 8})
    for bad in ({"data_fraction": 0}, {"epochs": 0}, {"resolution": 2.5}, {"channels": True}):
        with pytest.raises(InvalidConfigError):
            ev.setting(bad)


def test_layers_that_would_be_empty_are_a_clear_error(arch: nasforge.Architecture) -> None:
    ev = tiny()
    with pytest.raises(InvalidConfigError, match="cannot run on 2x2 images"):
        ev.evaluate(arch, {"resolution": 2, "epochs": 1})
    with pytest.raises(InvalidConfigError, match="channels"):
        ev.evaluate(arch, {"channels": 0})


def test_architecture_of_another_space(arch: nasforge.Architecture) -> None:
    darts = spaces.create("darts").named("darts-v2")
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'darts', not 'nb201'"):
        tiny().evaluate(darts)


def test_constructor_errors(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="synthetic"):
        evaluators.create("train", dataset="mnist")
    with pytest.raises(InvalidConfigError, match="never downloads"):
        evaluators.create("train")
    with pytest.raises(DatasetError, match="No data at"):
        evaluators.create("train", data=tmp_path / "missing")
    with pytest.raises(InvalidConfigError, match="its depth is cells_per_stage"):
        evaluators.create("train", dataset="synthetic", layers=8)
    with pytest.raises(UnknownNameError, match="recipe"):
        evaluators.create("train", dataset="synthetic", recipe="resnet")


def test_space_without_a_model_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    from nasforge.evaluators import training

    class NoBuild:
        name = "toy"

        def supports(self, capability: str) -> bool:
            return capability != "build"

    monkeypatch.setattr(training.spaces, "create", lambda name: NoBuild())
    with pytest.raises(UnsupportedOperationError, match=r"'toy' lacks the capability build\(\)"):
        evaluators.create("train", dataset="synthetic", space="toy")


def test_nan_training_fails_the_trial_and_the_search_goes_on() -> None:
    ev = tiny(recipe=Recipe(epochs=2, batch_size=32, lr=1e12), hardware=False)
    study = nasforge.create_study(strategy="random", seed=0, evaluator=ev)
    study.optimize(ev, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.FAILED, TrialState.FAILED]
    assert all(
        "TrainingDivergedError: Training diverged" in (t.fail_reason or "") for t in study.trials
    )


def test_spec_round_trip_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nasforge.train import trainer

    monkeypatch.setattr(trainer, "default_threads", lambda: 1)  # the rebuilt one: all CPUs
    ev = tiny(
        recipe=Recipe(epochs=1, batch_size=64),
        checkpoint_dir=tmp_path / "ckpt",
        hardware=False,
        eval_limit=32,
    )
    spec = ev.spec()
    params = dict(spec)
    assert params.pop("name") == "train"
    rebuilt = evaluators.create("train", **params)
    assert rebuilt.spec() == spec
    assert "threads" not in spec and "device" not in spec
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = nasforge.create_study(
        strategy="random", seed=1, storage=url, study_name="s", evaluator=ev
    )
    study.optimize(ev, n_trials=1)
    resumed = nasforge.load_study("s", url)
    resumed.optimize(n_trials=2)  # rebuilds the evaluator from the stored spec (JSON)
    assert [t.state for t in resumed.trials] == [TrialState.COMPLETE] * 2
    assert len(list((tmp_path / "ckpt").glob("*.pt"))) == 2


def test_pickles_without_its_data(arch: nasforge.Architecture) -> None:
    ev = tiny(hardware=False, on_epoch=lambda a, r: None)
    ev.load()
    clone = pickle.loads(pickle.dumps(ev))
    assert clone._images.splits is None and clone.on_epoch is None
    assert clone.spec() == ev.spec()


def test_progress_hook_sees_every_epoch(arch: nasforge.Architecture) -> None:
    seen: list[tuple[str, int, int]] = []
    ev = tiny(hardware=False, on_epoch=lambda a, r: seen.append((a.text, r.epoch, r.epochs)))
    ev.evaluate(arch, {"epochs": 2, "resolution": 8})
    assert seen == [(CELL, 0, 2), (CELL, 1, 2), (CELL, 2, 2)]


def test_darts_space_trains_with_its_auxiliary_head() -> None:
    ev = evaluators.create(
        "train",
        dataset="synthetic",
        synthetic={"num_classes": 3, "n_train": 24, "n_test": 6, "size": 32},
        space="darts",
        channels=2,
        layers=5,
        threads=1,
        device="cpu",
        hardware=False,
        recipe=Recipe(epochs=1, batch_size=12, lr=0.05, auxiliary_weight=0.4, drop_path_prob=0.2),
    )
    assert ev.fidelity_keys == ("epochs", "channels", "layers", "resolution", "data_fraction")
    result = ev.evaluate(spaces.create("darts").named("darts-v2"))
    assert 0 <= result.metrics["valid_acc"] <= 100


def test_module_import_does_not_load_torch() -> None:
    code = (
        "import sys, nasforge; nasforge.evaluators.names(); "
        "import nasforge.evaluators.training, nasforge.train; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
