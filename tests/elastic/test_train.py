"""The elastic-supernet trainer: exact resume, refused mismatches, loading, the learning-rate
schedule and optimiser groups, inherited accuracy."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from nasforge.elastic import (
    TrainSettings,
    create_schedule,
    load_supernet,
    schedule_names,
    subnet_accuracy,
    train_supernet,
    training_data,
)
from nasforge.elastic._train import make_optimizer, phase_lr
from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError
from nasforge.train import SyntheticImages

DATA = SyntheticImages(num_classes=4, n_train=64, n_test=4, size=16).load()


def tiny(**changes: object) -> TrainSettings:
    base = TrainSettings(
        width_mult=0.25,
        resolutions=(16,),
        batch_size=8,
        epochs=2,
        steps_per_epoch=2,
        lr=0.1,
        seed=3,
    )
    return base.replace(**changes)


def train(out: Path, schedule: str = "uniform", settings: TrainSettings | None = None, **kw):
    return train_supernet(
        "ofa-cifar", schedule, DATA, out, settings or tiny(), device="cpu", threads=1, **kw
    )


class Interrupt(Exception):
    pass


def stop_after(epochs: int):
    seen = []

    def callback(entry: dict) -> None:
        seen.append(entry)
        if len(seen) == epochs:
            raise Interrupt

    return callback


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def uniform_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("uniform")
    return out, train(out)


def test_resume_inside_a_phase_reproduces_the_uninterrupted_run(tmp_path, uniform_run):
    _, whole = uniform_run
    with pytest.raises(Interrupt):
        train(tmp_path, callbacks=[stop_after(1)])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["phases_done"] == 0 and len(manifest["history"]) == 1
    resumed = train(tmp_path)
    assert same_state(whole.supernet.state_dict(), resumed.supernet.state_dict())
    assert [h["loss"] for h in resumed.metadata["history"]] == [
        h["loss"] for h in whole.metadata["history"]
    ]
    # a finished run given again trains nothing more
    again = train(tmp_path)
    assert same_state(again.supernet.state_dict(), whole.supernet.state_dict())


def test_files_manifest_and_checkpoints(uniform_run):
    out, result = uniform_run
    assert (out / "phase-1-uniform.pt").exists() and (out / "checkpoint.pt").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run"]["space"] == "ofa-cifar"
    assert manifest["run"]["schedule"] == "uniform"
    assert manifest["run"]["settings"]["width_mult"] == 0.25
    assert manifest["phases_done"] == 1
    assert [(h["phase"], h["epoch"]) for h in manifest["history"]] == [(1, 1), (1, 2)]
    assert all(math.isfinite(h["loss"]) for h in manifest["history"])
    assert result.phases_done == 1 and result.complete
    assert not result.supernet.training


def test_resume_with_other_settings_names_the_keys(uniform_run):
    out, _ = uniform_run
    before = (out / "manifest.json").read_text()
    with pytest.raises(InvalidConfigError) as err:
        train(out, settings=tiny(lr=0.5, width_mult=0.5))
    message = str(err.value)
    assert "settings.lr" in message and "settings.width_mult" in message
    assert "settings.seed" not in message
    assert "new out directory" in message
    with pytest.raises(InvalidConfigError, match="schedule 'uniform', not 'ofa'"):
        train(out, schedule="ofa")
    with pytest.raises(InvalidConfigError, match="space 'ofa-cifar', not 'ofa'"):
        train_supernet("ofa", "uniform", DATA, out, tiny(resolutions=(128,)))
    assert (out / "manifest.json").read_text() == before  # nothing overwritten


def test_resume_false_starts_over(tmp_path):
    first = train(tmp_path, settings=tiny(epochs=1))
    again = train(tmp_path, settings=tiny(epochs=1, lr=0.05), resume=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["run"]["settings"]["lr"] == 0.05 and len(manifest["history"]) == 1
    assert not same_state(first.supernet.state_dict(), again.supernet.state_dict())


def test_load_supernet_rebuilds_the_trained_network(uniform_run, tmp_path):
    out, result = uniform_run
    loaded = load_supernet(out)
    assert not loaded.supernet.training
    assert loaded.space.name == "ofa-cifar" and loaded.schedule.name == "uniform"
    assert loaded.settings == result.settings and loaded.phases_done == 1
    assert same_state(loaded.supernet.state_dict(), result.supernet.state_dict())
    with pytest.raises(InvalidConfigError, match="schedule 'uniform', not 'ofa'"):
        load_supernet(out, schedule="ofa")
    with pytest.raises(InvalidConfigError, match="space 'ofa-cifar', not 'ofa'"):
        load_supernet(out, space="ofa")
    with pytest.raises(InvalidConfigError, match=r"no manifest\.json"):
        load_supernet(tmp_path)


def test_a_checkpoint_of_another_run_is_refused(uniform_run, tmp_path):
    out, _ = uniform_run
    other = tmp_path / "other"
    train(other, settings=tiny(epochs=1, seed=4))
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.copy(other / "phase-1-uniform.pt", copy / "phase-1-uniform.pt")
    with pytest.raises(InvalidConfigError, match="another run"):
        load_supernet(copy)
    # and for resuming: the epoch checkpoint of another run
    shutil.copy(other / "checkpoint.pt", copy / "checkpoint.pt")
    with pytest.raises(InvalidConfigError, match=r"settings\.epochs"):
        train(copy)


def test_loss_decreases_on_synthetic_images(tmp_path):
    data = SyntheticImages(num_classes=4, n_train=96, n_test=4, size=16).load()
    settings = tiny(epochs=4, steps_per_epoch=4, lr=0.2, label_smoothing=0.0, seed=0)
    result = train_supernet(
        "ofa-cifar", "uniform", data, tmp_path, settings, device="cpu", threads=1
    )
    losses = [h["loss"] for h in result.metadata["history"]]
    assert losses[-1] < losses[0] - 0.1


def test_subnet_accuracy_recalibrates_and_restores(uniform_run):
    out, _ = uniform_run
    net = load_supernet(out).supernet
    data = training_data("ofa-cifar", DATA, tiny())
    assert len(data.valid) == 32 and data.valid.resolution == 16
    arch = net.smallest()
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    first = subnet_accuracy(net, arch, data, recalibrate_batches=2, images=24)
    assert 0.0 <= first <= 100.0
    assert same_state(stats, {k: v for k, v in net.state_dict().items() if "running" in k})
    assert subnet_accuracy(net, str(arch), data, recalibrate_batches=2, images=24) == first
    assert net.active == arch and not net.training
    subnet_accuracy(net, arch, data, recalibrate_batches=2, images=24, keep_statistics=True)
    after = {k: v for k, v in net.state_dict().items() if "running" in k}
    assert not same_state(stats, after)
    with pytest.raises(InvalidConfigError):
        subnet_accuracy(net, arch, data, recalibrate_batches=0)


def test_cosine_learning_rate_with_warmup():
    assert phase_lr(1.0, 0, 10, 0) == 1.0
    assert phase_lr(1.0, 5, 10, 0) == pytest.approx(0.5)
    assert [phase_lr(1.0, s, 10, 4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert phase_lr(1.0, 4, 10, 4) == 1.0 and phase_lr(1.0, 9, 10, 4) < 0.1


def test_no_weight_decay_on_batch_norm_and_biases():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = make_optimizer(net, TrainSettings(weight_decay=1e-4, momentum=0.9), 0.1)
    decayed, spared = (g["params"] for g in optimizer.param_groups)
    assert [p.shape for p in decayed] == [net[0].weight.shape]
    assert {id(p) for p in spared} == {id(net[0].bias), id(net[1].weight), id(net[1].bias)}
    assert optimizer.param_groups[1]["weight_decay"] == 0.0
    assert optimizer.defaults["nesterov"]


def test_settings_validation_and_presets():
    reduced = TrainSettings.preset("ofa-cifar", "reduced")
    assert (reduced.width_mult, reduced.epochs, reduced.batch_size) == (0.25, 6, 64)
    assert TrainSettings.from_dict(reduced.to_dict()) == reduced
    with pytest.raises(UnsupportedOperationError, match="presets are"):
        TrainSettings.preset("ofa-cifar", "huge")
    with pytest.raises(InvalidConfigError, match="batch_size"):
        TrainSettings(batch_size=0)
    with pytest.raises(InvalidConfigError, match="Unknown training settings"):
        TrainSettings.from_dict({"widht_mult": 1.0})
    with pytest.raises(InvalidConfigError, match="not inputs of space 'ofa-cifar'"):
        train_supernet("ofa-cifar", "uniform", DATA, "/nonexistent", tiny(resolutions=(20,)))
    with pytest.raises(UnsupportedOperationError, match="no elastic supernet"):
        train_supernet("nb201", "uniform", DATA, "/nonexistent", tiny())


def test_schedule_registry():
    assert {"ofa", "uniform"} <= set(schedule_names())
    with pytest.raises(UnknownNameError):
        create_schedule("once-for-al")
    with pytest.raises(InvalidConfigError, match="did you mean 'kd_ratio'"):
        create_schedule("ofa", kd_ration=2.0)
    assert create_schedule("ofa", kd_ratio=0.5).params() == {
        "kd_ratio": 0.5,
        "dynamic_batch_size": 1,
    }
