"""The training loop: devices (with mocks: no GPU here), threads, seeds, NaN, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.train import Recipe, SyntheticImages
from nasforge.train import trainer as trainer_module
from nasforge.train.trainer import (
    TrainingDivergedError,
    evaluate_accuracy,
    make_optimizer,
    num_threads,
    seeded,
    select_device,
    train,
)


def test_auto_takes_cuda_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert select_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(InvalidConfigError, match="2 CUDA device"):
        select_device("cuda:3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    with pytest.raises(InvalidConfigError, match="no CUDA device"):
        select_device("cuda")
    with pytest.raises(InvalidConfigError, match="auto, cpu, cuda"):
        select_device("tpu")


def test_cuda_path_uses_autocast_and_grad_scaler(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA branch cannot run here; check it asks for float16 autocast and a GradScaler
    enabled exactly on CUDA by recording the calls on a CPU run."""
    calls: list[tuple[str, object]] = []
    real_autocast, real_scaler = torch.autocast, torch.amp.GradScaler

    def autocast(device_type: str, dtype: torch.dtype, enabled: bool) -> object:
        calls.append(("autocast", (device_type, dtype, enabled)))
        return real_autocast("cpu", enabled=False)

    def scaler(device: str, enabled: bool) -> object:
        calls.append(("scaler", (device, enabled)))
        return real_scaler("cpu", enabled=False)

    monkeypatch.setattr(trainer_module.torch, "autocast", autocast)
    monkeypatch.setattr(trainer_module.torch.amp, "GradScaler", scaler)
    data = SyntheticImages(num_classes=2, n_train=8, n_test=2, size=4).load()
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 2))
    train(model, data.train, Recipe(epochs=1, batch_size=4), mean=data.mean, std=data.std, seed=0)
    assert ("scaler", ("cuda", False)) in calls
    assert ("autocast", ("cuda", torch.float16, False)) in calls


def test_num_threads_restores() -> None:
    before = torch.get_num_threads()
    with num_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(InvalidConfigError), num_threads(0):
        pass


def test_seeded_does_not_leak_into_the_global_generator() -> None:
    state = torch.random.get_rng_state()
    with seeded(3):
        a = torch.rand(3)
    with seeded(3):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), state)


def _setup(lr: float = 0.05, **changes: object) -> tuple[nn.Module, object, Recipe]:
    data = SyntheticImages(num_classes=4, n_train=64, n_test=32, size=8).load()
    with seeded(0):
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, 4),
        )
    return model, data, Recipe(epochs=2, batch_size=16, lr=lr, **changes)  # type: ignore[arg-type]


def test_same_seed_same_weights_and_report() -> None:
    reports = []
    runs = []
    for _ in range(2):
        model, data, recipe = _setup(cutout=8, label_smoothing=0.1, grad_clip=1.0, warmup_epochs=1)
        result = train(
            model, data.train, recipe, mean=data.mean, std=data.std, seed=5, on_epoch=reports.append
        )
        runs.append((result, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0].train_loss == runs[1][0].train_loss
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))
    assert [r.epoch for r in reports] == [0, 1, 2, 0, 1, 2]
    assert math.isnan(reports[0].train_loss) and reports[2].train_loss > 0
    assert runs[0][0].steps == 8 and runs[0][0].epochs == 2


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "lion"])
def test_every_optimizer_trains(optimizer: str) -> None:
    lr = {"sgd": 0.1, "adamw": 0.01, "lion": 0.003}[optimizer]
    model, data, recipe = _setup(lr=lr, optimizer=optimizer, weight_decay=0.01)
    assert type(make_optimizer(model, recipe)).__name__.lower() == optimizer
    before = evaluate_accuracy(model, data.test, mean=data.mean, std=data.std)
    result = train(
        model, data.train, recipe.replace(epochs=4), mean=data.mean, std=data.std, seed=0
    )
    assert math.isfinite(result.train_loss)
    assert 0 <= before <= 100


def test_nan_loss_raises_a_clear_error() -> None:
    model, data, recipe = _setup(lr=1e12)
    with pytest.raises(
        TrainingDivergedError, match=r"Training diverged: the loss became (nan|inf)"
    ):
        train(model, data.train, recipe.replace(epochs=5), mean=data.mean, std=data.std, seed=0)


def test_too_little_data() -> None:
    model, data, recipe = _setup()
    with pytest.raises(InvalidConfigError, match="at least 2"):
        train(model, data.train.subset([0]), recipe, mean=data.mean, std=data.std, seed=0)


def test_deterministic_algorithms_restores_the_flags() -> None:
    from nasforge.train.trainer import deterministic_algorithms

    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    with deterministic_algorithms(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    with deterministic_algorithms(False):
        assert torch.are_deterministic_algorithms_enabled() == before[0]
