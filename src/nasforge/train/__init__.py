"""Training networks for real: recipes, the Lion optimiser, CIFAR-10 data, the training loop.

* :class:`Recipe` (:mod:`~nasforge.train.recipe`): optimiser, schedule, regularisers, epochs.
* :class:`Lion` (:mod:`~nasforge.train.lion`): Chen et al. 2023, arXiv:2302.06675.
* :mod:`~nasforge.train.data`: CIFAR-10 (python release, image folders, archives),
  :class:`SyntheticImages`, train/validation splits.
* :mod:`~nasforge.train.augment`: crop, flip, cutout, normalisation with torch operations.
* :mod:`~nasforge.train.trainer`: :func:`train`, :func:`evaluate_accuracy`, devices, seeds.
* :mod:`~nasforge.train.checkpoint`: a network saved as plain data (:class:`ModelRecord`).
* :mod:`~nasforge.train.user_data`: your own data (:class:`UserData` from a ``Dataset``, a
  ``DataLoader`` or tensors) and the loop that trains on it with your loss and metric.

Importing this package does not import torch: :class:`Recipe`, :func:`cosine_warmup_lr` and
:func:`cosine_annealing` (:mod:`~nasforge.train.schedule`) are plain Python, and the other
names load their module (and torch) when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nasforge.train.recipe import OPTIMIZERS, Recipe, cosine_warmup_lr
from nasforge.train.schedule import cosine_annealing

if TYPE_CHECKING:
    from nasforge.train.augment import Augment
    from nasforge.train.checkpoint import (
        CheckpointMismatchError,
        ModelRecord,
        build_model,
        load_record,
        save_record,
    )
    from nasforge.train.data import (
        DatasetError,
        DataSplits,
        ImageData,
        SyntheticImages,
        load_cifar10,
        load_image_folder,
        split_train_valid,
    )
    from nasforge.train.lion import Lion
    from nasforge.train.trainer import (
        EpochReport,
        TrainingDivergedError,
        TrainResult,
        evaluate_accuracy,
        select_device,
        train,
    )
    from nasforge.train.user_data import TensorData, UserData

__all__ = [
    "OPTIMIZERS",
    "Augment",
    "CheckpointMismatchError",
    "DataSplits",
    "DatasetError",
    "EpochReport",
    "ImageData",
    "Lion",
    "ModelRecord",
    "Recipe",
    "SyntheticImages",
    "TensorData",
    "TrainResult",
    "TrainingDivergedError",
    "UserData",
    "build_model",
    "cosine_annealing",
    "cosine_warmup_lr",
    "evaluate_accuracy",
    "load_cifar10",
    "load_image_folder",
    "load_record",
    "save_record",
    "select_device",
    "split_train_valid",
    "train",
]

_LAZY = {
    "Augment": "augment",
    "CheckpointMismatchError": "checkpoint",
    "ModelRecord": "checkpoint",
    "build_model": "checkpoint",
    "load_record": "checkpoint",
    "save_record": "checkpoint",
    "DataSplits": "data",
    "DatasetError": "data",
    "ImageData": "data",
    "SyntheticImages": "data",
    "load_cifar10": "data",
    "load_image_folder": "data",
    "split_train_valid": "data",
    "Lion": "lion",
    "EpochReport": "trainer",
    "TrainResult": "trainer",
    "TrainingDivergedError": "trainer",
    "evaluate_accuracy": "trainer",
    "select_device": "trainer",
    "train": "trainer",
    "TensorData": "user_data",
    "UserData": "user_data",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
