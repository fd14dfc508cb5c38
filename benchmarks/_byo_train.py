"""A user's own data and training code, as ``benchmarks/early_stopping.py`` searches them.

Nothing here is nasforge's: :class:`SmallImages` is a plain ``torch.utils.data.Dataset``
of ``(image, label)`` pairs read from a file the benchmark writes (a CIFAR-10 subset, or
synthetic images), and :func:`train` is an ordinary training loop ``fn(arch, context)``
for the ``function`` evaluator that reports the validation accuracy after every epoch and
ends early when the study's stopping rule says so. The benchmark names it by import path
(``_byo_train:train``, with this folder on ``PYTHONPATH``) so that ``nasforge worker``
processes and Ray workers import it themselves.

Settings come from the environment (set by the benchmark): ``BYO_DATA`` (the ``.pt`` file
of the subset), ``BYO_EPOCHS`` (epochs of full training), ``BYO_CHANNELS`` (width of the
NAS-Bench-201 network).
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import nasforge
from nasforge.reporting import TrialContext
from nasforge.train.trainer import seeded

__all__ = ["SmallImages", "train"]

_LOADED: dict[str, tuple[Dataset[Any], Dataset[Any]]] = {}


class SmallImages(Dataset):  # type: ignore[type-arg]
    """``(image, label)`` pairs: float images ``(3, H, W)`` normalised, int labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def datasets() -> tuple[Dataset[Any], Dataset[Any]]:
    """The training and validation Datasets of the file named by ``BYO_DATA`` (read once)."""
    path = os.environ["BYO_DATA"]
    if path not in _LOADED:
        saved = torch.load(path)
        _LOADED[path] = (
            SmallImages(saved["train_x"], saved["train_y"]),
            SmallImages(saved["valid_x"], saved["valid_y"]),
        )
    return _LOADED[path]


def _accuracy(model: nn.Module, data: Dataset[Any]) -> float:
    model.eval()
    right = total = 0
    with torch.no_grad():
        for x, y in DataLoader(data, batch_size=256):
            right += int((model(x).argmax(1) == y).sum())
            total += len(y)
    model.train()
    return 100.0 * right / total


def train(arch: Any, context: TrialContext) -> dict[str, float]:
    """Train the NAS-Bench-201 network of ``arch`` for ``BYO_EPOCHS`` epochs (SGD, cosine
    schedule), report the validation accuracy per epoch, stop when told."""
    torch.set_num_threads(1)
    epochs = int(os.environ.get("BYO_EPOCHS", "8"))
    channels = int(os.environ.get("BYO_CHANNELS", "8"))
    context.max_step = epochs  # nothing to save by stopping after the last epoch
    seed = zlib.crc32(arch.text.encode())
    with seeded(seed):
        model = nasforge.spaces.create("nb201").build(
            arch, channels=channels, cells_per_stage=1, num_classes=10
        )
    train_data, valid_data = datasets()
    order = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_data, batch_size=64, shuffle=True, generator=order)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * len(loader))
    loss_fn = nn.CrossEntropyLoss()
    acc = 0.0
    for epoch in range(1, epochs + 1):
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
            schedule.step()
        acc = _accuracy(model, valid_data)
        context.report({"valid_acc": acc}, step=epoch, stop=True)  # raises TrialStopped
    return {"valid_acc": acc}
