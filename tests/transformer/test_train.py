"""Super-transformer training: settings, exact resume, refused mismatches, loading, sandwich
sampling with in-place distillation, inherited and stand-alone accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge import spaces
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.train import SyntheticImages
from nasforge.transformer import (
    ViTTrainSettings,
    load_super_vit,
    subnet_accuracy,
    train_alone,
    train_super_vit,
    training_data,
)
from nasforge.transformer._train import _build_supernet, make_optimizer

DATA = SyntheticImages(num_classes=3, n_train=48, n_test=3, size=32, seed=1).load()
SPACE = spaces.create("vit-cifar")


def tiny(**changes: object) -> ViTTrainSettings:
    base = ViTTrainSettings(batch_size=8, epochs=2, steps_per_epoch=2, lr=1e-3, seed=2)
    return base.replace(**changes)


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_settings_validate_and_follow_deits_rule() -> None:
    assert ViTTrainSettings(batch_size=1024).peak_lr == pytest.approx(1e-3)
    assert ViTTrainSettings(batch_size=1024, lr=0.01).peak_lr == 0.01
    with pytest.raises(InvalidConfigError, match="sampling"):
        ViTTrainSettings(sampling="greedy")
    with pytest.raises(InvalidConfigError, match="sandwich"):
        ViTTrainSettings(distill=True)
    with pytest.raises(InvalidConfigError, match="epochs"):
        ViTTrainSettings(epochs=0)
    with pytest.raises(InvalidConfigError, match="data_fraction"):
        ViTTrainSettings(data_fraction=0.0)
    with pytest.raises(InvalidConfigError, match="Unknown"):
        ViTTrainSettings.from_dict({"epochs": 1, "momentum": 0.9})
    settings = tiny(sampling="sandwich", distill=True)
    assert ViTTrainSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_space_without_super_transformer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedOperationError, match="vit-cifar"):
        train_super_vit("nb201", tmp_path, tiny(), data=DATA)


def test_optimizer_spares_norms_biases_and_embeddings() -> None:
    net = SPACE.supernet(num_classes=3)
    groups = make_optimizer(net, tiny()).param_groups
    assert groups[0]["weight_decay"] == 0.05 and groups[1]["weight_decay"] == 0.0
    names = {id(p): n for n, p in net.named_parameters()}
    spared = {names[id(p)] for p in groups[1]["params"]}
    assert all(p.ndim >= 2 for p in groups[0]["params"])
    assert {n for n, p in net.named_parameters() if p.ndim <= 1} <= spared
    assert {n for n in names.values() if "cls_token" in n or "pos_embed" in n} <= spared
    assert not any("weight" in n and "norm" not in n for n in spared)
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(
        p.numel() for p in net.parameters()
    )


def test_interrupted_run_resumes_bit_exactly(tmp_path: Path) -> None:
    settings = tiny(epochs=2, steps_per_epoch=1)
    full = train_super_vit(SPACE, tmp_path / "full", settings, data=DATA, device="cpu")

    class Stop(Exception):
        pass

    def stop(entry: dict[str, object]) -> None:
        if entry["epoch"] == 1:
            raise Stop

    with pytest.raises(Stop):
        train_super_vit(
            SPACE, tmp_path / "cut", settings, data=DATA, device="cpu", callbacks=[stop]
        )
    manifest = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert manifest["epochs_done"] == 1
    resumed = train_super_vit(SPACE, tmp_path / "cut", settings, data=DATA, device="cpu")
    a, b = weights(full.supernet), weights(resumed.supernet)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in resumed.metadata["history"]] == [
        h["loss"] for h in full.metadata["history"]
    ]
    loaded = load_super_vit(tmp_path / "cut")
    assert loaded.complete and loaded.epochs_done == 2
    c = weights(loaded.supernet)
    assert all(torch.equal(a[k], c[k]) for k in a)
    # training moved the weights away from their initialisation
    initial = weights(_build_supernet(SPACE, settings, 3, torch.device("cpu")))
    assert any(not torch.equal(a[k], v) for k, v in initial.items())


def test_resume_with_other_settings_names_the_keys(tmp_path: Path) -> None:
    train_super_vit(SPACE, tmp_path, tiny(epochs=1, steps_per_epoch=1), data=DATA)
    with pytest.raises(InvalidConfigError, match=r"settings\.private.*settings\.seed"):
        train_super_vit(
            SPACE, tmp_path, tiny(epochs=1, steps_per_epoch=1, private=False, seed=5), data=DATA
        )
    # starting over is allowed
    train_super_vit(
        SPACE, tmp_path, tiny(epochs=1, steps_per_epoch=1, seed=5), data=DATA, resume=False
    )
    with pytest.raises(InvalidConfigError, match="no trained super-transformer"):
        load_super_vit(tmp_path / "nothing")


def test_sandwich_with_distillation_trains(tmp_path: Path) -> None:
    settings = tiny(epochs=1, steps_per_epoch=1, sampling="sandwich", distill=True)
    sandwich = train_super_vit(SPACE, tmp_path / "s", settings, data=DATA)
    assert np.isfinite(sandwich.metadata["history"][0]["loss"])
    assert (
        json.loads((tmp_path / "s" / "manifest.json").read_text())["run"]["settings"]["sampling"]
        == "sandwich"
    )
    initial = weights(_build_supernet(SPACE, settings, 3, torch.device("cpu")))
    trained = weights(sandwich.supernet)
    # the smallest sub-network's slice of the first block moved, as the largest's did
    name = next(k for k in trained if k.startswith("blocks.0.") and k.endswith("fc1.weight"))
    small = int(SPACE.values(SPACE.smallest())["embed_dim"])
    assert not torch.equal(trained[name][:, :small], initial[name][:, :small])


def test_inherited_accuracy_is_the_extracted_networks(tmp_path: Path) -> None:
    settings = tiny(epochs=1, steps_per_epoch=1)
    trained = train_super_vit(SPACE, tmp_path, settings, data=DATA)
    split = training_data(SPACE, DATA, settings)
    arch = SPACE.sample(np.random.default_rng(4))
    value = subnet_accuracy(trained, arch, split, images=16)
    assert value == subnet_accuracy(trained.supernet, arch.text, split, images=16)
    net = trained.supernet.extract(arch).eval()
    hits = seen = 0
    with torch.no_grad():
        for x, y in split.fixed("valid", 16, torch.device("cpu")):
            hits += int((net(x).argmax(1) == y).sum())
            seen += len(y)
    assert value == pytest.approx(100.0 * hits / seen)
    with pytest.raises(InvalidConfigError, match="images"):
        subnet_accuracy(trained, arch, split, images=0)


def test_train_alone_is_repeatable() -> None:
    settings = tiny(epochs=1, steps_per_epoch=2)
    split = training_data(SPACE, DATA, settings)
    arch = SPACE.smallest()
    first = train_alone(SPACE, arch, settings, split, images=16)
    assert 0.0 <= first <= 100.0
    assert train_alone(SPACE, arch.text, settings, DATA, images=16) == first


def test_sandwich_step_trains_largest_smallest_and_random_with_soft_targets() -> None:
    from nasforge.transformer._train import _super_step

    net = SPACE.supernet(num_classes=3)
    active: list[str] = []
    original = net.set_active

    def record(arch: object) -> None:
        original(arch)
        active.append(net.active.text)

    net.set_active = record  # type: ignore[method-assign]
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 0])
    settings = tiny(sampling="sandwich", distill=True, label_smoothing=0.0)
    loss, _ = _super_step(net, settings, np.random.default_rng(0))(x, y)
    assert active[:2] == [SPACE.largest().text, SPACE.smallest().text] and len(active) == 4
    # the loss is the mean of the largest's cross-entropy and the others' soft cross-entropy
    with torch.no_grad():
        original(active[0])
        teacher = net(x)
        expected = [torch.nn.functional.cross_entropy(teacher, y)]
        for text in active[1:]:
            original(text)
            target = teacher.softmax(1)
            expected.append((-target * net(x).log_softmax(1)).sum(1).mean())
    assert loss == pytest.approx(float(sum(expected)) / 4, rel=1e-5)
    active.clear()
    _super_step(net, tiny(), np.random.default_rng(0))(x, y)
    assert len(active) == 1  # uniform: one sub-network per step
