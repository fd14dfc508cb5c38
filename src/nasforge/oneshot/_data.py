"""The search data of one-shot methods: two halves of the training images, augmented
batches and fixed evaluation batches; or two halves of a user's own data
(:class:`TensorSearchData`), used as it is, and the default evaluator of a search on it.
Private (imports torch); re-exported by :mod:`nasforge.oneshot._engine`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch

from nasforge import evaluators, tabular
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.oneshot.base import SupernetSettings, check_space
from nasforge.spaces.base import SearchSpace
from nasforge.train.augment import Augment, normalize
from nasforge.train.data import DataSplits, ImageData, split_train_valid, stratified_indices
from nasforge.train.user_data import TensorData, UserData
from nasforge.trial import Direction, Result

__all__ = [
    "SearchData",
    "TensorSearchData",
    "default_evaluator",
    "make_search_data",
    "read_data",
    "user_evaluator",
]


class _Halves:
    """What both kinds of search data share: the two halves (``train`` fits the weights,
    ``valid`` the architecture) cut into batches. A subclass says how a batch is made from
    a half's items: :meth:`_batch` (random batches) and :meth:`_slice` (fixed ones)."""

    train: Any
    valid: Any
    batch_size: int

    @property
    def steps_per_epoch(self) -> int:
        """Steps of one epoch: full batches of the smaller half."""
        return min(len(self.train), len(self.valid)) // self.batch_size

    def batches(
        self, split: str, generator: torch.Generator, device: torch.device, steps: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of ``split`` (``"train"`` or ``"valid"``) in a random order (made by
        :meth:`_batch`: augmented images, or a user's items as they are)."""
        part = self.train if split == "train" else self.valid
        order = torch.randperm(len(part), generator=generator)
        total = self.steps_per_epoch if steps is None else steps
        for step in range(total):
            start = (step * self.batch_size) % max(1, len(part) - self.batch_size + 1)
            index = order[start : start + self.batch_size]
            yield self._batch(part, index, generator, device)

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
        """The first ``count`` items of ``split`` in batches (made by :meth:`_slice`): the
        same items every time, for comparing candidates on the supernet. The halves are in a
        fixed random order, so these are a class-balanced sample in expectation."""
        part = self.train if split == "train" else self.valid
        count = min(count, len(part))
        return [
            self._slice(part, start, min(start + self.batch_size, count), device)
            for start in range(0, count, self.batch_size)
        ]

    def _batch(
        self, part: Any, index: torch.Tensor, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _slice(
        self, part: Any, start: int, stop: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


@dataclass(eq=False)
class SearchData(_Halves):
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

    def _batch(
        self, part: ImageData, index: torch.Tensor, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # augmented (random crop, flip), normalised
        return self.augment(part.images[index].to(device), generator), part.labels[index].to(device)

    def _slice(
        self, part: ImageData, start: int, stop: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # normalised, not augmented
        x = normalize(part.images[start:stop].to(device), self.mean, self.std)
        return x, part.labels[start:stop].to(device)


@dataclass(eq=False)
class TensorSearchData(_Halves):
    """The two halves of a user's data (:class:`~nasforge.train.user_data.UserData`): the
    interface of :class:`SearchData` on tensors of any shape (sequences, node indices,
    images), used as they are: no augmentation, no normalisation, no resizing.

    Build it with :meth:`from_user`.
    """

    train: TensorData
    valid: TensorData
    batch_size: int
    num_classes: int

    @classmethod
    def from_user(
        cls, data: UserData, settings: SupernetSettings, seed: int = 0
    ) -> TensorSearchData:
        """Take ``settings.data_fraction`` of the training items (class-balanced) and split
        them in halves, class-balanced, fixed by ``seed`` (the user's validation items are
        left for the evaluator).

        Raises:
            InvalidConfigError: Regression targets (the one-shot methods train with
                cross-entropy), a ``resolution`` other than the images' own, or either half
                smaller than one batch.
        """
        if data.num_classes is None:
            raise InvalidConfigError(
                "One-shot methods train the supernet with cross-entropy on class targets; "
                "the data's targets are floating numbers (regression). Give integer class "
                "targets, or search with a black-box strategy and the training evaluator "
                "(evaluators.create('train', data=..., loss=..., metric=...))."
            )
        items = data.train_subset(settings.data_fraction, seed)
        if settings.resolution is not None and (
            items.inputs.dim() != 4 or tuple(items.inputs.shape[-2:]) != (settings.resolution,) * 2
        ):
            raise InvalidConfigError(
                f"settings.resolution={settings.resolution} resizes images, but your data is "
                f"used as it is (inputs of shape {tuple(items.inputs.shape[1:])}); give "
                "SupernetSettings(..., resolution=None)."
            )
        needed = 2 * settings.batch_size
        if len(items) < needed:
            raise InvalidConfigError(
                f"The search data is too small for the split: {len(items)} training items "
                f"(data_fraction={settings.data_fraction}) cannot give two halves of at least "
                f"one batch of {settings.batch_size} items each (the weights train on one "
                f"half, the architecture on the other); use at least {needed} items or a "
                "smaller batch_size (SupernetSettings(batch_size=...))."
            )
        targets = items.targets
        if targets.dim() == 1:
            chosen = stratified_indices(targets, len(items) // 2, seed)
        else:
            chosen = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))
            chosen = chosen[: len(items) // 2]
        mask = torch.ones(len(items), dtype=torch.bool)
        mask[chosen] = False
        order = torch.Generator().manual_seed(int(seed) + 1)
        train = items.subset(mask.nonzero().flatten())
        valid = items.subset(chosen)
        train = train.subset(torch.randperm(len(train), generator=order))
        valid = valid.subset(torch.randperm(len(valid), generator=order))
        return cls(train, valid, settings.batch_size, data.num_classes)

    def _batch(
        self,
        part: TensorData,
        index: torch.Tensor,
        generator: torch.Generator,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return part.inputs[index].to(device), part.targets[index].to(device)

    def _slice(
        self, part: TensorData, start: int, stop: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return part.inputs[start:stop].to(device), part.targets[start:stop].to(device)


def read_data(data: DataSplits | UserData | Any) -> DataSplits | UserData:
    """Images (:class:`~nasforge.train.data.DataSplits`) as they are; anything else (a
    ``Dataset``, a ``DataLoader``, ``(inputs, targets)``) read into a
    :class:`~nasforge.train.user_data.UserData`."""
    return data if isinstance(data, DataSplits) else UserData.coerce(data)


def make_search_data(
    data: DataSplits | UserData, settings: SupernetSettings, seed: int
) -> SearchData:
    """The halves of ``data``: :class:`SearchData` of images, :class:`TensorSearchData` of
    a user's data (typed as :class:`SearchData`, whose interface it has: the methods use
    ``batches``, ``paired``, ``fixed``, ``steps_per_epoch``, ``batch_size``,
    ``num_classes`` and the halves' lengths)."""
    if isinstance(data, DataSplits):
        return SearchData.from_splits(data, settings, seed)
    return cast(SearchData, TensorSearchData.from_user(data, settings, seed))


def default_evaluator(
    space: str | SearchSpace,
    data: DataSplits | Any,
    settings: SupernetSettings | None = None,
    threads: int | None = None,
) -> Evaluator:
    """The bundled table of ``space`` on the data's dataset (CIFAR-10 for other data); on a
    user's data (not :class:`DataSplits`), :func:`user_evaluator`."""
    if not isinstance(data, DataSplits):
        found = check_space(space, supernet=False)
        settings = settings or SupernetSettings.standard(found)
        return user_evaluator(found, UserData.coerce(data), settings, threads)
    space = space if isinstance(space, str) else space.name
    if space not in tabular.names():
        raise InvalidConfigError(
            f"Space {space!r} has no bundled table to look derived architectures up in; pass "
            "an evaluator, e.g. nasforge.evaluators.create('train', space="
            f"{space!r}, data=PATH) (or --evaluator train --evaluator-param epochs=N on the "
            "command line)."
        )
    dataset = data.name if data.name in ("cifar10", "cifar100") else "cifar10"
    return evaluators.create("tabular", benchmark=space, dataset=dataset)


#: Epochs the default evaluator of a search on user data trains each derived network.
USER_EPOCHS = 10


def user_evaluator(
    space: SearchSpace, data: UserData, settings: SupernetSettings, threads: int | None = None
) -> Evaluator:
    """The default evaluator of a one-shot search on a user's data: each derived
    architecture is trained from scratch for :data:`USER_EPOCHS` epochs with the space's
    recipe (the batch size of the search) on the data's training items and measured on its
    validation items (``valid_acc``) by the ``train`` evaluator, at the search's width and
    depth (``settings.channels`` and ``cells``, for a space with ``scale_keys``; a model
    space's network is the model's own). Architectures derived again are answered from a
    cache (the training is a function of the architecture: same weights, same batches), at
    no cost."""
    recipe = space.recipe().replace(epochs=USER_EPOCHS, batch_size=settings.batch_size)
    shape: dict[str, Any] = {}
    if space.scale_keys is not None:
        depth = space.scale_keys[1]
        shape = {"channels": settings.channels, **({depth: settings.cells} if depth else {})}
    inner = evaluators.create(
        "train", data=data, space=space, recipe=recipe, threads=threads, **shape
    )
    return _Cached(inner)


class _Cached(Evaluator):
    """An evaluator whose results are kept by architecture (a repeated one costs nothing)."""

    def __init__(self, inner: Evaluator) -> None:
        self.inner = inner
        self.space = inner.space
        self.cost_unit = inner.cost_unit
        self._seen: dict[Architecture, Result] = {}

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return self.inner.metrics

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        if fidelity:
            return self.inner.evaluate(arch, fidelity)
        if arch not in self._seen:
            self._seen[arch] = self.inner.evaluate(arch)
            return self._seen[arch]
        return Result(dict(self._seen[arch].metrics), cost=0.0, seconds=0.0)

    def __repr__(self) -> str:
        return repr(self.inner)
