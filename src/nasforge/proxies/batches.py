"""The fixed batch proxies read: real training images, or a synthetic batch where none is given.

NAS-Bench-Suite-Zero scores every architecture on one batch of 64 images drawn from the
training split; :func:`load_batch` draws such a batch from CIFAR-10 (or any image folder)
with a seed, so that the same seed gives the same images for every architecture.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nasforge.errors import InvalidConfigError, UnknownNameError

if TYPE_CHECKING:
    from nasforge.proxies.base import Batch

__all__ = ["DATASETS", "DatasetInfo", "load_batch"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a proxy batch of a dataset looks like: classes and image side."""

    num_classes: int
    resolution: int


#: The NAS-Bench-201 datasets: CIFAR-10, CIFAR-100 (32x32) and ImageNet16-120 (16x16).
DATASETS: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(10, 32),
    "cifar100": DatasetInfo(100, 32),
    "imagenet16-120": DatasetInfo(120, 16),
}


def dataset_info(dataset: str) -> DatasetInfo:
    key = str(dataset).lower()
    if key not in DATASETS:
        raise UnknownNameError("proxy dataset", str(dataset), DATASETS)
    return DATASETS[key]


def load_batch(
    data: str | os.PathLike[str] | None = None,
    *,
    dataset: str = "cifar10",
    batch_size: int = 64,
    seed: int = 0,
) -> Batch:
    """A fixed batch for the proxies of ``dataset``.

    Args:
        data: ``None``: a synthetic batch (standard Gaussian images and uniform labels drawn
            from ``seed``), for data-free use and tests. A path: CIFAR-10 as
            :func:`nasforge.train.data.load_cifar10` reads it (python release, image folder,
            or a ``.tar.gz`` of either) when ``dataset`` is ``cifar10``; any image-folder tree
            otherwise. The batch is ``batch_size`` training images drawn without replacement
            with ``seed``, normalised as for training.
        dataset: Fixes the number of classes and the image side of the synthetic batch
            (see :data:`DATASETS`).
        batch_size: Images in the batch (64 in NAS-Bench-Suite-Zero).
        seed: Which images (or which synthetic draw).

    Raises:
        UnknownNameError: An unknown dataset.
        InvalidConfigError: ``batch_size`` below 2 or above the training set.
        DatasetError: Data missing or malformed at ``data`` (the message says what to put
            there).

    Example:
        >>> b = load_batch(None, dataset="imagenet16-120", batch_size=4)
        >>> b.image_shape, b.num_classes
        ((3, 16, 16), 120)
    """
    import torch

    from nasforge.proxies.base import Batch

    info = dataset_info(dataset)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise InvalidConfigError(f"batch_size must be an integer of at least 2, got {batch_size!r}")
    generator = torch.Generator().manual_seed(int(seed))
    if data is None:
        shape = (batch_size, 3, info.resolution, info.resolution)
        inputs = torch.randn(shape, generator=generator)
        targets = torch.randint(info.num_classes, (batch_size,), generator=generator)
        return Batch(inputs, targets, info.num_classes, source=f"synthetic (seed {seed})")
    from nasforge.train.data import load_cifar10, load_image_folder

    key = str(dataset).lower()
    splits = load_cifar10(data) if key == "cifar10" else load_image_folder(data)
    train = splits.train
    if batch_size > len(train):
        raise InvalidConfigError(
            f"batch_size {batch_size} exceeds the {len(train)} training images at {data}."
        )
    if splits.num_classes != info.num_classes:
        raise InvalidConfigError(
            f"The data at {data} has {splits.num_classes} classes but {dataset} has "
            f"{info.num_classes}; pass the matching dataset."
        )
    index = torch.randperm(len(train), generator=generator)[:batch_size]
    images = train.images[index].float().div(255.0)
    mean = torch.tensor(splits.mean).view(1, -1, 1, 1)
    std = torch.tensor(splits.std).view(1, -1, 1, 1)
    inputs = (images - mean) / std
    source = f"{splits.name} train ({batch_size} images, seed {seed})"
    return Batch(inputs, train.labels[index].clone(), splits.num_classes, source=source)
