"""The images of a training evaluator: loaded once, split into training, validation and test
images, and cut to each fidelity's data fraction and resolution (the last few cached); and
the record of a trained network it saves for ``nasforge export``.

Private to :mod:`nasforge.evaluators.training`; imports torch only when images are loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError

if TYPE_CHECKING:
    from torch import nn

    from nasforge.architecture import Architecture
    from nasforge.train.data import DataSplits, ImageData, SyntheticImages

__all__ = ["TrainingImages", "checkpoint_file", "open_data", "save_trained"]

logger = logging.getLogger(__name__)

Prepared = tuple["ImageData", "ImageData", "ImageData"]


class TrainingImages:
    """The data set of a training evaluator and its splits.

    Args:
        dataset: ``cifar10``, ``folder`` or ``synthetic``.
        data: Path of the data (``None`` for ``synthetic``).
        synthetic: The synthetic images (``dataset="synthetic"`` only).
        cache_dir: Where archives are extracted and decoded images cached.
        valid_size: Validation images cut from the training images (default half).
        split_seed: Seed of the validation split and of the subsets.
        eval_limit: At most this many validation and test images (class-balanced).
    """

    #: Prepared (fraction, resolution) settings kept in memory.
    KEEP = 4

    def __init__(
        self,
        dataset: str,
        data: Path | None,
        synthetic: SyntheticImages | None,
        cache_dir: Path | None,
        valid_size: int | None,
        split_seed: int,
        eval_limit: int | None,
    ) -> None:
        self.dataset = dataset
        self.data = data
        self.synthetic = synthetic
        self.cache_dir = cache_dir
        self.valid_size = valid_size
        self.split_seed = split_seed
        self.eval_limit = eval_limit
        self.splits: DataSplits | None = None
        self._base: Prepared | None = None
        self._prepared: OrderedDict[tuple[int, float], Prepared] = OrderedDict()

    def load(self) -> DataSplits:
        """Load (once) and return the data set.

        Raises:
            DatasetError: Missing data, a wrong layout or an unreadable image (named).
        """
        if self.splits is None:
            from nasforge.train.data import load_cifar10, load_image_folder

            if self.synthetic is not None:
                self.splits = self.synthetic.load()
            else:
                assert self.data is not None
                loader = load_cifar10 if self.dataset == "cifar10" else load_image_folder
                self.splits = loader(self.data, cache_dir=self.cache_dir)
            logger.info(
                "loaded %s: %d training and %d test images of %d classes",
                self.dataset,
                len(self.splits.train),
                len(self.splits.test),
                self.splits.num_classes,
            )
        return self.splits

    def prepared(self, resolution: int, data_fraction: float) -> Prepared:
        """Training subset, validation and test images at ``resolution``."""
        from nasforge.train.data import split_train_valid, stratified_indices

        splits = self.load()
        if self._base is None:
            n = len(splits.train)
            valid_size = self.valid_size if self.valid_size is not None else n // 2
            if not 0 < valid_size < n:
                raise InvalidConfigError(
                    f"valid_size={valid_size} leaves no training image: the {self.dataset} "
                    f"training set has {n} images."
                )
            train, valid = split_train_valid(splits.train, valid_size, self.split_seed)
            test = splits.test
            if self.eval_limit is not None:
                if self.eval_limit < len(valid):
                    valid = valid.subset(
                        stratified_indices(valid.labels, self.eval_limit, self.split_seed + 1)
                    )
                if self.eval_limit < len(test):
                    test = test.subset(
                        stratified_indices(test.labels, self.eval_limit, self.split_seed + 2)
                    )
            self._base = (train, valid, test)
        key = (resolution, data_fraction)
        prepared = self._prepared.get(key)
        if prepared is None:
            train, valid, test = self._base
            if data_fraction < 1.0:
                count = max(2, round(data_fraction * len(train)))
                train = train.subset(stratified_indices(train.labels, count, self.split_seed + 3))
            prepared = (
                train.resized(resolution),
                valid.resized(resolution),
                test.resized(resolution),
            )
            self._prepared[key] = prepared
            while len(self._prepared) > self.KEEP:
                self._prepared.popitem(last=False)
        self._prepared.move_to_end(key)
        return prepared

    def full_resolution(self, resolution: int | None) -> int:
        """``resolution``, else the data's own image side (CIFAR-10: 32)."""
        if resolution is not None:
            return resolution
        if self.dataset == "cifar10":
            return 32
        if self.synthetic is not None:
            return int(self.synthetic.size)
        return self.load().resolution

    def num_classes(self) -> int:
        """Classes of the dataset (loads an image folder to count them)."""
        if self.dataset == "cifar10":
            return 10
        if self.synthetic is not None:
            return int(self.synthetic.num_classes)
        return self.load().num_classes

    def __getstate__(self) -> dict[str, Any]:
        # a process-pool worker loads the images itself
        return {**self.__dict__, "splits": None, "_base": None, "_prepared": OrderedDict()}


def open_data(
    dataset: str, data: str | os.PathLike[str] | None, synthetic: Mapping[str, Any] | None
) -> tuple[Path | None, SyntheticImages | None]:
    """The resolved path of ``data`` (``None`` for ``synthetic``) and the synthetic images
    (``None`` for the others), checked before anything is loaded.

    Raises:
        InvalidConfigError: ``synthetic`` settings for another dataset or that
            :class:`~nasforge.train.data.SyntheticImages` refuses; no ``data`` path.
        DatasetError: Nothing at ``data``.
    """
    if dataset == "synthetic":
        from nasforge.train.data import SyntheticImages

        try:
            return None, SyntheticImages(**(synthetic or {}))
        except TypeError as err:
            raise InvalidConfigError(f"synthetic={synthetic!r}: {err}") from None
    if synthetic is not None:
        raise InvalidConfigError("synthetic= applies only to dataset='synthetic'.")
    if data is None:
        raise InvalidConfigError(
            f"The training evaluator needs the path of the {dataset} data (data=...); "
            "nasforge never downloads data."
        )
    path = Path(data).expanduser().resolve()
    if not path.exists():
        from nasforge.train.data import MISSING_DATA_HINT, DatasetError

        raise DatasetError(f"No data at {str(path)!r}. {MISSING_DATA_HINT}")
    return path, None


def save_trained(
    path: Path,
    space: str,
    arch: Architecture,
    build: dict[str, Any],
    model: nn.Module,
    input_shape: tuple[int, int, int],
    splits: DataSplits,
    info: dict[str, Any],
) -> None:
    """Save a trained network as a :class:`nasforge.train.checkpoint.ModelRecord` at
    ``path``.

    Raises:
        InvalidConfigError: ``path`` cannot be written (the message says so).
    """
    from nasforge.train.checkpoint import ModelRecord, save_record

    record = ModelRecord(
        space=space,
        arch=arch.text,
        build=build,
        state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
        input_shape=input_shape,
        mean=tuple(splits.mean),
        std=tuple(splits.std),
        classes=tuple(splits.classes),
        trained=True,
        info=info,
    )
    try:
        save_record(record, path)
    except OSError as err:
        raise InvalidConfigError(
            f"Cannot write the checkpoint {str(path)!r}: {err.strerror or err}; give a "
            "writable checkpoint_dir."
        ) from err


def checkpoint_file(folder: Path, arch: Architecture, fidelity: Mapping[str, Any] | None) -> Path:
    """The file in ``folder`` of the network trained for ``arch`` at ``fidelity``: named by
    the space and a hash of the architecture's text and the fidelity."""
    items = sorted((str(k), v) for k, v in (fidelity or {}).items())
    key = json.dumps([arch.space, arch.text, items], default=str)
    digest = hashlib.sha1(key.encode()).hexdigest()[:20]
    return folder / f"{arch.space}-{digest}.pt"
