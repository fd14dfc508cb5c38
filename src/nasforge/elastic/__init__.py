"""Elastic supernets: train one network once, then hand out sub-networks for any device.

A space with an elastic supernet (``ofa``, ``ofa-cifar``: ``space.supernet()`` returns an
:class:`~nasforge.ops.elastic.ElasticMobileNet`) is trained by a *schedule* (one file each,
registered by name; :func:`schedule_names`):

* ``ofa`` — Once-for-All's progressive shrinking (Cai et al., ICLR 2020, arXiv:1908.09791);
* ``uniform`` — SPOS's uniform single-path sampling (Guo et al., ECCV 2020,
  arXiv:1904.00420) on the same supernet, the baseline of the ranking comparison.

:func:`train_supernet` runs a schedule phase by phase, saving a checkpoint after every epoch
and one per phase (``phase-<k>-<name>.pt``) with a ``manifest.json``; running it again on
the same folder resumes exactly. :func:`load_supernet` rebuilds a trained supernet from its
folder; :func:`subnet_accuracy` measures a sub-network's inherited accuracy after batch-norm
recalibration.

Schedules are found by importing this package's public modules when the registry is first
asked (``schedule_names()``, ``create_schedule()``), so a new schedule is one new file that
imports :mod:`nasforge.elastic.base` and uses :func:`register_schedule`.

Importing this package does not import torch; training does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.elastic.base import (
    Phase,
    Schedule,
    TrainContext,
    TrainedSupernet,
    TrainSettings,
    create_schedule,
    get_schedule,
    register_schedule,
    schedule_names,
)

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.oneshot._data import SearchData
    from nasforge.spaces.base import SearchSpace
    from nasforge.train.data import DataSplits

__all__ = [
    "Phase",
    "Schedule",
    "TrainContext",
    "TrainSettings",
    "TrainedSupernet",
    "create_schedule",
    "get_schedule",
    "load_supernet",
    "register_schedule",
    "schedule_names",
    "search_subnets",
    "subnet_accuracy",
    "train_supernet",
    "training_data",
]


def train_supernet(
    space: str | SearchSpace,
    schedule: str | Schedule,
    data: DataSplits,
    out_dir: str | os.PathLike[str],
    settings: TrainSettings | None = None,
    *,
    teacher: Any = None,
    resume: bool = True,
    device: str = "auto",
    threads: int | None = None,
    callbacks: Sequence[Callable[[dict[str, Any]], None]] = (),
) -> TrainedSupernet:
    """Train ``space``'s elastic supernet with ``schedule``; see
    :func:`nasforge.elastic._train.train_supernet`.

    Example:
        >>> import tempfile
        >>> from nasforge.train import SyntheticImages
        >>> data = SyntheticImages(num_classes=4, n_train=32, n_test=4, size=16).load()
        >>> settings = TrainSettings(width_mult=0.25, resolutions=(16,), batch_size=8,
        ...                          epochs=1, steps_per_epoch=1)
        >>> out = tempfile.mkdtemp()
        >>> trained = train_supernet("ofa-cifar", "uniform", data, out, settings, device="cpu")
        >>> trained.phases_done, load_supernet(out).schedule.name
        (1, 'uniform')
    """
    from nasforge.elastic import _train

    return _train.train_supernet(
        space,
        schedule,
        data,
        out_dir,
        settings,
        teacher=teacher,
        resume=resume,
        device=device,
        threads=threads,
        callbacks=callbacks,
    )


def load_supernet(
    out_dir: str | os.PathLike[str],
    *,
    phase: int | None = None,
    space: str | None = None,
    schedule: str | None = None,
    device: str = "cpu",
) -> TrainedSupernet:
    """The supernet trained in ``out_dir``; see :func:`nasforge.elastic._train.load_supernet`."""
    from nasforge.elastic import _train

    return _train.load_supernet(out_dir, phase=phase, space=space, schedule=schedule, device=device)


def search_subnets(out_dir: Any, **options: Any) -> Any:
    """Search the sub-networks of the supernet trained in ``out_dir`` under constraints (an
    accuracy predictor and Once-for-All's evolution, or any registered strategy), every
    measured sub-network a trial; see :func:`nasforge.elastic.search.search_subnets` for the
    options and the returned :class:`~nasforge.elastic.search.SubnetSearchResult`."""
    from nasforge.elastic import search

    return search.search_subnets(out_dir, **options)


def subnet_accuracy(
    supernet: Any,
    arch: str | Architecture,
    data: SearchData,
    *,
    recalibrate_batches: int = 8,
    images: int = 1000,
    keep_statistics: bool = False,
) -> float:
    """Top-1 accuracy of ``arch``'s inherited weights after batch-norm recalibration; see
    :func:`nasforge.elastic._accuracy.subnet_accuracy`."""
    from nasforge.elastic import _accuracy

    return _accuracy.subnet_accuracy(
        supernet,
        arch,
        data,
        recalibrate_batches=recalibrate_batches,
        images=images,
        keep_statistics=keep_statistics,
    )


def training_data(
    space: str | SearchSpace, data: DataSplits, settings: TrainSettings
) -> SearchData:
    """The two halves :func:`train_supernet` uses for ``settings`` (``valid`` holds the
    images sub-networks are measured on); see :func:`nasforge.elastic._train.training_data`."""
    from nasforge.elastic import _train

    return _train.training_data(space, data, settings)
