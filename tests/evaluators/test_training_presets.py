"""The training evaluator's presets: the space's preset decides the network and the defaults of
the data settings; mobilenet and fbnet train their CIFAR networks, also from an image folder;
the preset is part of the spec a study resumes with; NB201 and DARTS build what they built
before. Tiny settings: synthetic images, one epoch, width 0.25 or less."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nasforge
from nasforge import evaluators, spaces
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.evaluators.options import training_evaluator
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.train import Recipe
from nasforge.trial import TrialState

SYNTH = {"num_classes": 4, "n_train": 80, "n_test": 16, "size": 16}


def mobile(space: str = "mobilenet", **changes: Any) -> TrainingEvaluator:
    kwargs: dict[str, Any] = {
        "dataset": "synthetic",
        "synthetic": SYNTH,
        "space": space,
        "preset": "reduced",
        "recipe": {"epochs": 1, "lr": 0.05},
        "threads": 1,
        "device": "cpu",
    }
    kwargs.update(changes)
    ev = evaluators.create("train", **kwargs)
    assert isinstance(ev, TrainingEvaluator)
    return ev


def head_input_side(space: str, arch: nasforge.Architecture, kwargs: dict[str, Any]) -> int:
    """The side of the feature map that enters the network's head, on 32x32 images."""
    import torch

    model = spaces.create(space).build(arch, **kwargs)
    seen: list[int] = []
    model.layers[-1].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-1]))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 32, 32))
    return seen[0]


@pytest.mark.parametrize("space", ["mobilenet", "fbnet"])
def test_reduced_preset_trains_the_cifar_network(space: str) -> None:
    from nasforge.hardware import count_flops

    arch = spaces.create(space).sample(np.random.default_rng(3))
    ev = mobile(space)
    # the preset's data settings are the evaluator's defaults
    assert (ev.resolution, ev.data_fraction, ev.recipe.batch_size) == (32, 0.1, 64)
    assert ev.fidelity_keys == ("epochs", "resolution", "data_fraction")
    kwargs = ev.build_kwargs(ev.setting(), 4)
    assert kwargs == {
        "num_classes": 4,
        "width_mult": 0.25,
        "stem_stride": 1,
        "first_stride": 1,
        "resolution": 32,
    }
    paper = mobile(space, preset="paper", resolution=32)
    paper_kwargs = paper.build_kwargs(paper.setting(), 4)
    assert paper_kwargs == {"num_classes": 4, "width_mult": 1.0, "resolution": 32}
    # stride 8 instead of 32: a 4x4 map enters the head, not 1x1
    assert head_input_side(space, arch, kwargs) == 4
    assert head_input_side(space, arch, paper_kwargs) == 1
    result = ev.evaluate(arch)
    assert result.metrics["epochs"] == 1 and 0 <= result.metrics["valid_acc"] <= 100
    model = spaces.create(space).build(
        arch, num_classes=4, width_mult=0.25, resolution=32, stem_stride=1, first_stride=1
    )
    expected = count_flops(model, (3, 32, 32)).as_metrics()
    assert result.metrics["macs_M"] == pytest.approx(expected["macs_M"])
    assert result.metrics["params_M"] == pytest.approx(expected["params_M"])
    assert paper.free_metrics(arch)["params_M"] > 4 * expected["params_M"]


def test_build_settings_change_the_preset_network() -> None:
    arch = spaces.create("mobilenet").named("mobilenetv2")
    narrow = mobile(build={"width_mult": 0.1}, hardware=True)
    assert narrow.build == {"width_mult": 0.1}
    assert narrow.build_kwargs(narrow.setting(), 4)["width_mult"] == 0.1
    assert narrow.free_metrics(arch)["params_M"] < mobile().free_metrics(arch)["params_M"]
    # the resolution fidelity builds the network for that size; the stride must divide it
    assert narrow.build_kwargs(narrow.setting({"resolution": 16}), 4)["resolution"] == 16
    with pytest.raises(InvalidConfigError, match="multiple of the network's total stride 8"):
        narrow.evaluate(arch, {"resolution": 20})
    with pytest.raises(InvalidConfigError, match="width_mult must be a number in"):
        mobile(build={"width_mult": 9.0})
    with pytest.raises(InvalidConfigError, match="give resolution="):
        mobile(build={"resolution": 64})
    with pytest.raises(InvalidConfigError, match="dataset's number of classes"):
        mobile(build={"num_classes": 3})
    with pytest.raises(InvalidConfigError, match="build settings are dropout, first_stride"):
        mobile(build={"width": 0.5})
    with pytest.raises(InvalidConfigError, match="must be a number, a string or a boolean"):
        mobile(build={"width_mult": [0.5]})
    with pytest.raises(InvalidConfigError, match="give channels="):
        evaluators.create("train", dataset="synthetic", build={"channels": 8})


def test_image_folder_trains_at_the_preset_resolution(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image", reason="writing the PNG folder needs Pillow")
    from nasforge.train.checkpoint import load_record

    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("test", 2)):
        for k, name in enumerate(("cat", "dog")):
            folder = tmp_path / "pets" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(60 + 100 * k, 20, (12, 12, 3)), 0, 255)
                image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    ev = evaluators.create(
        "train",
        data=tmp_path / "pets",
        dataset="folder",
        space="mobilenet",
        preset="reduced",
        data_fraction=1.0,
        recipe={"epochs": 1, "batch_size": 4},
        checkpoint_dir=tmp_path / "ckpt",
        threads=1,
        device="cpu",
        hardware=False,
    )
    assert isinstance(ev, TrainingEvaluator)
    assert ev.load().resolution == 12 and ev.num_classes() == 2
    assert ev.setting().resolution == 32  # the preset's, not the folder's 12
    arch = spaces.create("mobilenet").named("mobilenetv2")
    result = ev.evaluate(arch)
    assert 0 <= result.metrics["valid_acc"] <= 100
    path = ev.checkpoint_path(arch)
    assert path is not None
    record = load_record(path)
    assert tuple(record.input_shape) == (3, 32, 32)
    assert record.build == {
        "num_classes": 2,
        "width_mult": 0.25,
        "stem_stride": 1,
        "first_stride": 1,
        "resolution": 32,
    }
    assert record.classes == ("cat", "dog")


def test_spec_records_the_preset_and_a_study_resumes_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasforge.hardware import count_flops
    from nasforge.train import trainer

    monkeypatch.setattr(trainer, "default_threads", lambda: 1)  # the rebuilt one: all CPUs
    ev = mobile(build={"width_mult": 0.1}, eval_limit=8)
    spec = ev.spec()
    assert spec["preset"] == "reduced" and spec["build"] == {"width_mult": 0.1}
    assert spec["resolution"] == 32 and spec["data_fraction"] == 0.1
    assert spec["recipe"]["batch_size"] == 64
    params = dict(spec)
    rebuilt = evaluators.create(params.pop("name"), **params)
    assert rebuilt.spec() == spec
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = nasforge.create_study(
        space="mobilenet", strategy="random", seed=2, storage=url, study_name="m", evaluator=ev
    )
    study.optimize(ev, n_trials=1)
    resumed = nasforge.load_study("m", url)
    assert resumed.record.evaluator == spec
    resumed.optimize(n_trials=2)  # rebuilds the evaluator from the stored spec (JSON)
    assert [t.state for t in resumed.trials] == [TrialState.COMPLETE] * 2
    second = resumed.trials[1]
    model = spaces.create("mobilenet").build(
        second.arch, num_classes=4, width_mult=0.1, resolution=32, stem_stride=1, first_stride=1
    )
    assert second.metrics["macs_M"] == pytest.approx(
        count_flops(model, (3, 32, 32)).as_metrics()["macs_M"]
    )


def test_unknown_preset_lists_the_space_presets() -> None:
    with pytest.raises(UnknownNameError, match="choose from cifar, paper, reduced, search"):
        mobile(preset="imagenet")
    with pytest.raises(UnknownNameError, match=r"'cifar'.*choose from paper, reduced, search"):
        evaluators.create("train", dataset="synthetic", preset="cifar")
    with pytest.raises(UnknownNameError, match="preset"):
        training_evaluator(space="fbnet", dataset="synthetic", seed=0, preset="tiny")


def test_channels_and_depth_are_refused_for_mobilenet() -> None:
    with pytest.raises(InvalidConfigError, match=r"no integer width and depth.*width_mult"):
        mobile(channels=8)
    with pytest.raises(InvalidConfigError, match=r"layers= is not a setting.*no integer width"):
        mobile(layers=4)
    ev = mobile(hardware=False)
    arch = spaces.create("mobilenet").named("mobilenetv2")
    with pytest.raises(InvalidConfigError, match=r"\['channels'\].*no integer width and depth"):
        ev.evaluate(arch, {"channels": 8})
    with pytest.raises(InvalidConfigError, match="--channels is not a setting of space 'fbnet'"):
        training_evaluator(space="fbnet", dataset="synthetic", seed=0, channels=8)
    with pytest.raises(InvalidConfigError, match=r"--cells is not a setting.*no integer width"):
        training_evaluator(space="mobilenet", dataset="synthetic", seed=0, cells=2)


def test_batch_size_from_the_preset_unless_the_recipe_sets_it() -> None:
    assert mobile(recipe=None).recipe.batch_size == 64
    assert mobile(recipe=None).recipe.lr == spaces.create("mobilenet").recipe().lr
    assert mobile(recipe="nb201").recipe.batch_size == 64
    assert mobile(recipe={"epochs": 1, "batch_size": 16}).recipe.batch_size == 16
    assert mobile(recipe=Recipe(epochs=1)).recipe.batch_size == 256  # a Recipe is taken whole
    options = {"space": "mobilenet", "dataset": "synthetic", "seed": 0, "preset": "reduced"}
    assert training_evaluator(**options, lr=0.01).recipe.batch_size == 64
    assert training_evaluator(**options, batch_size=8).recipe.batch_size == 8
    assert (
        training_evaluator(**options, data_fraction=0.5, resolution=64).spec()["resolution"] == 64
    )


def test_epochs_from_the_reduced_preset_unless_the_recipe_or_evaluator_sets_them() -> None:
    reduced = spaces.create("mobilenet").presets()["reduced"]["epochs"]
    assert reduced < spaces.create("mobilenet").recipe().epochs  # a CPU preset trains briefly
    assert mobile(recipe=None).recipe.epochs == reduced
    assert mobile(recipe="nb201").recipe.epochs == reduced
    assert mobile(recipe={"epochs": 2}).recipe.epochs == 2
    assert mobile(recipe=Recipe(epochs=3)).recipe.epochs == 3  # a Recipe is taken whole
    options = {"space": "mobilenet", "dataset": "synthetic", "seed": 0, "preset": "reduced"}
    assert training_evaluator(**options, epochs=4).recipe.epochs == 4
    paper = {**options, "preset": "paper"}
    assert training_evaluator(**paper).recipe.epochs == spaces.create("mobilenet").recipe().epochs


def test_nb201_and_darts_defaults_are_unchanged() -> None:
    nb201 = evaluators.create("train", dataset="synthetic")
    assert isinstance(nb201, TrainingEvaluator)
    assert nb201.build_kwargs(nb201.setting(), 10) == {
        "num_classes": 10,
        "channels": 16,
        "cells_per_stage": 5,
    }
    assert nb201.setting().resolution == 16  # the data's (synthetic) size, as before
    assert nb201.data_fraction == 1.0 and nb201.recipe == spaces.create("nb201").recipe()
    spec = nb201.spec()
    assert "preset" not in spec and "build" not in spec  # stored specs of older studies hold
    assert evaluators.create("train", dataset="synthetic", preset="paper").spec() == spec
    darts = evaluators.create("train", dataset="synthetic", space="darts")
    assert isinstance(darts, TrainingEvaluator)
    assert darts.build_kwargs(darts.setting(), 10) == {
        "num_classes": 10,
        "channels": 36,
        "layers": 20,
        "auxiliary": True,
    }
    assert darts.recipe.batch_size == 96
    reduced = evaluators.create("train", dataset="synthetic", preset="reduced")
    assert isinstance(reduced, TrainingEvaluator)
    assert (reduced.channels, reduced.depth, reduced.resolution) == (8, 1, 16)
    assert reduced.data_fraction == 0.1 and reduced.spec()["preset"] == "reduced"
    assert reduced.fidelity_keys == (
        "epochs",
        "channels",
        "cells_per_stage",
        "resolution",
        "data_fraction",
    )
