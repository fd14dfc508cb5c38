"""The search data of one-shot methods: two halves of the training images, augmented
batches and fixed evaluation batches. Private (imports torch); re-exported by
:mod:`nasforge.oneshot._engine`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from nasforge.errors import InvalidConfigError
from nasforge.oneshot.base import SupernetSettings
from nasforge.train.augment import Augment, normalize
from nasforge.train.data import DataSplits, ImageData, split_train_valid, stratified_indices

__all__ = ["SearchData"]


@dataclass(eq=False)
class SearchData:
    """The two halves of the search data: ``train`` fits the weights, ``valid`` the
    architecture (NAS-Bench-201's ``cifar10-valid`` protocol: CIFAR-10's training images
    split in two halves), with the CIFAR augmentation (random crop, flip) on both.

    Build it with :meth:`from_splits`.
    """

    train: ImageData
    valid: ImageData
    mean: tuple[float, ...]
    std: tuple[float, ...]
    batch_size: int
    augment: Augment
    num_classes: int

    @classmethod
    def from_splits(cls, data: DataSplits, settings: SupernetSettings, seed: int = 0) -> SearchData:
        """Take ``settings.data_fraction`` of ``data.train`` (class-balanced), resize it to
        ``settings.resolution`` and split it in halves.

        Raises:
            InvalidConfigError: Either half would hold fewer than one batch of images.
        """
        images = data.train
        if settings.data_fraction < 1.0:
            count = max(1, round(len(images) * settings.data_fraction))
            images = images.subset(stratified_indices(images.labels, count, seed))
        needed = 2 * settings.batch_size
        if len(images) < needed:
            raise InvalidConfigError(
                f"The search data is too small for the split: {len(images)} training images "
                f"(data_fraction={settings.data_fraction}) cannot give two halves of at least "
                f"one batch of {settings.batch_size} images each (the weights train on one "
                f"half, the architecture on the other); use at least {needed} images, a "
                "larger data_fraction or a smaller batch_size."
            )
        if settings.resolution is not None:
            images = images.resized(settings.resolution)
        train, valid = split_train_valid(images, len(images) // 2, seed)
        # a fixed random order, so that the first images of a half (``fixed``) are a sample
        # of every class: image-folder data comes sorted by class
        order = torch.Generator().manual_seed(int(seed) + 1)
        train = train.subset(torch.randperm(len(train), generator=order))
        valid = valid.subset(torch.randperm(len(valid), generator=order))
        padding = max(1, round(4 * images.resolution / 32))
        return cls(
            train=train,
            valid=valid,
            mean=tuple(data.mean),
            std=tuple(data.std),
            batch_size=settings.batch_size,
            augment=Augment(padding=padding, mean=tuple(data.mean), std=tuple(data.std)),
            num_classes=data.num_classes,
        )

    @property
    def steps_per_epoch(self) -> int:
        """Steps of one epoch: full batches of the smaller half."""
        return min(len(self.train), len(self.valid)) // self.batch_size

    def batches(
        self, split: str, generator: torch.Generator, device: torch.device, steps: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Augmented batches of ``split`` (``"train"`` or ``"valid"``) in a random order."""
        part = self.train if split == "train" else self.valid
        order = torch.randperm(len(part), generator=generator)
        total = self.steps_per_epoch if steps is None else steps
        for step in range(total):
            start = (step * self.batch_size) % max(1, len(part) - self.batch_size + 1)
            index = order[start : start + self.batch_size]
            x = self.augment(part.images[index].to(device), generator)
            yield x, part.labels[index].to(device)

    def paired(
        self, generator: torch.Generator, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One epoch of ``(x_train, y_train, x_valid, y_valid)`` steps."""
        train = self.batches("train", generator, device)
        valid = self.batches("valid", generator, device)
        for (xt, yt), (xv, yv) in zip(train, valid, strict=True):
            yield xt, yt, xv, yv

    def fixed(
        self, split: str, count: int, device: torch.device
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The first ``count`` images of ``split`` (normalised, not augmented) in batches:
        the same images every time, for comparing candidates on the supernet. The halves are
        in a fixed random order, so these are a class-balanced sample in expectation."""
        part = self.train if split == "train" else self.valid
        count = min(count, len(part))
        out = []
        for start in range(0, count, self.batch_size):
            stop = min(start + self.batch_size, count)
            x = normalize(part.images[start:stop].to(device), self.mean, self.std)
            out.append((x, part.labels[start:stop].to(device)))
        return out
