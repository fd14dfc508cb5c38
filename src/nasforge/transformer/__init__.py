"""Super-transformers: train one vision transformer whose sub-networks share its weights,
then measure and search them.

* :func:`train_super_vit` trains the super-transformer of a vision-transformer space
  (``vit``, ``vit-cifar``: :class:`~nasforge.ops.super_vit.SuperViT`) with AutoFormer's
  uniform sampling or BigNAS's sandwich rule (:class:`ViTTrainSettings`), a checkpoint after
  every epoch from which an interrupted run resumes exactly; :func:`load_super_vit` reads it
  back.
* :func:`subnet_accuracy` measures a sub-network's inherited accuracy on the held-out half
  (:func:`training_data`); :func:`train_alone` trains the same sub-network from scratch with
  the same recipe, for ranking benchmarks.
* :func:`search_subvits` searches the sub-networks as a study under parameter, MACs or
  latency constraints, with AutoFormer's evolution (:mod:`nasforge.transformer.evolution`)
  or any registered strategy, through the ``super-transformer`` evaluator.

Chen, M., Peng, H., Fu, J. and Ling, H. "AutoFormer: Searching Transformers for Visual
Recognition." ICCV 2021, arXiv:2107.00651; Su, X. et al. "Vision Transformer Architecture
Search" (ViTAS), arXiv:2106.13700.

Importing this package does not import torch; training and measuring do.

Example:
    >>> from nasforge.transformer import ViTTrainSettings
    >>> ViTTrainSettings(batch_size=256).peak_lr
    0.00025
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.transformer.search import STRATEGY, SubViTSearchResult, search_subvits
from nasforge.transformer.settings import SAMPLINGS, TrainedSuperViT, ViTTrainSettings

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.oneshot._data import SearchData
    from nasforge.spaces.base import SearchSpace
    from nasforge.train.data import DataSplits

__all__ = [
    "SAMPLINGS",
    "STRATEGY",
    "SubViTSearchResult",
    "TrainedSuperViT",
    "ViTTrainSettings",
    "load_super_vit",
    "search_subvits",
    "subnet_accuracy",
    "train_alone",
    "train_super_vit",
    "training_data",
]


def train_super_vit(
    space: str | SearchSpace,
    out_dir: str | os.PathLike[str],
    settings: ViTTrainSettings | None = None,
    *,
    data: DataSplits | None = None,
    resume: bool = True,
    device: str = "auto",
    threads: int | None = None,
    callbacks: Sequence[Callable[[dict[str, Any]], None]] = (),
) -> TrainedSuperViT:
    """Train ``space``'s super-transformer; see
    :func:`nasforge.transformer._train.train_super_vit`."""
    from nasforge.transformer import _train

    return _train.train_super_vit(
        space, out_dir, settings, data=data, resume=resume, device=device, threads=threads,
        callbacks=callbacks,
    )  # fmt: skip


def load_super_vit(out_dir: str | os.PathLike[str], *, device: str = "cpu") -> TrainedSuperViT:
    """The super-transformer trained in ``out_dir``; see
    :func:`nasforge.transformer._train.load_super_vit`."""
    from nasforge.transformer import _train

    return _train.load_super_vit(out_dir, device=device)


def training_data(
    space: str | SearchSpace, data: DataSplits, settings: ViTTrainSettings
) -> SearchData:
    """The halves training uses; see :func:`nasforge.transformer._train.training_data`."""
    from nasforge.transformer import _train

    return _train.training_data(space, data, settings)


def subnet_accuracy(
    trained: TrainedSuperViT | Any,
    arch: str | Architecture,
    data: SearchData,
    *,
    images: int = 1000,
) -> float:
    """Inherited accuracy of ``arch``; see :func:`nasforge.transformer._train.subnet_accuracy`."""
    from nasforge.transformer import _train

    return _train.subnet_accuracy(trained, arch, data, images=images)


def train_alone(
    space: str | SearchSpace,
    arch: str | Architecture,
    settings: ViTTrainSettings,
    data: SearchData | DataSplits,
    *,
    images: int = 1000,
    device: str = "cpu",
    threads: int | None = None,
) -> float:
    """Accuracy of ``arch`` trained from scratch; see
    :func:`nasforge.transformer._train.train_alone`."""
    from nasforge.transformer import _train

    return _train.train_alone(
        space, arch, settings, data, images=images, device=device, threads=threads
    )
