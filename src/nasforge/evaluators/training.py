"""Evaluate architectures by training them: build, train with a recipe, measure accuracy.

EcoNAS's reduced-cost settings are the fidelity parameters (Zhou, D., Zhou, X., Zhang, W.,
Loy, C. C., Yi, S., Zhang, X. and Ouyang, W. "EcoNAS: Finding Proxies for Economical Neural
Architecture Search." CVPR 2020, arXiv:2001.01233): a proposal's fidelity may lower the
training epochs (``epochs``), the width (``channels``, EcoNAS's ``c``), the image size
(``resolution``, its ``r``), the share of the training images (``data_fraction``, its ``s``)
and the depth (``cells_per_stage`` for NB201, ``layers`` for DARTS). Left out, each is the
evaluator's full setting. ``benchmarks/econas_proxy.py`` measures how well such settings
rank NAS-Bench-201 cells. Spaces whose width is not an integer (``mobilenet`` and ``fbnet``
scale theirs with the float ``width_mult``) have no width and depth fidelities.

The full setting is a preset of the space (``preset=``): its network's build settings and
the defaults of the image side, data fraction and batch size, e.g. ``mobilenet``'s
``"reduced"`` CIFAR-10 network for a CPU or its ``"paper"`` ImageNet network for a GPU.

Torch is imported when an architecture is evaluated, not when this module loads (the
registry imports every evaluator module, and a tabular search must not load torch).
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge import evaluators, spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.evaluators._callbacks import EpochCallbacks
from nasforge.evaluators._checkpoints import save_checkpoint
from nasforge.evaluators._images import TrainingImages, checkpoint_file, open_data
from nasforge.evaluators._models import build_network, count_costs
from nasforge.evaluators._presets import DEFAULT_PRESET, preset_recipe, training_preset
from nasforge.evaluators._user_training import (
    IMAGE_ONLY,
    USER_DATASET,
    UserTraining,
    epoch_hook,
    stopped_result,
)
from nasforge.evaluators._values import (
    Setting,
    count,
    fraction,
    positive_int,
)
from nasforge.evaluators.base import Evaluator
from nasforge.reporting import TrialContext, TrialStopped
from nasforge.spaces.base import SearchSpace
from nasforge.train.recipe import Recipe
from nasforge.trial import Direction, Result

if TYPE_CHECKING:
    from torch import nn

    from nasforge.train.data import DataSplits, ImageData
    from nasforge.train.trainer import EpochReport
    from nasforge.train.user_data import UserData

__all__ = ["DATASETS", "Setting", "TrainingEvaluator"]

logger = logging.getLogger(__name__)

#: Datasets the evaluator reads: ``cifar10`` (python release, image folder or archive of
#: either), ``folder`` (any image-folder tree or its archive), ``synthetic``
#: (:class:`~nasforge.train.data.SyntheticImages`, for tests and demos).
DATASETS: tuple[str, ...] = ("cifar10", "folder", "synthetic")


@evaluators.register("train")
class TrainingEvaluator(EpochCallbacks, Evaluator):
    """Trains each architecture and returns its accuracies, costs and the seconds it took.

    Each evaluation builds ``space.build(arch, ...)`` with weights drawn from a seed derived
    from ``seed`` and the architecture (the same architecture gets the same initial weights,
    batch order and augmentation at every fidelity), trains it on the training split with
    ``recipe``, and measures top-1 accuracy (percent) on the validation split (cut from the
    training images, class-balanced, fixed by ``split_seed``) and on the test set.

    Metrics: ``valid_acc``, ``test_acc``, ``train_acc`` (last epoch, augmented images),
    ``train_loss`` (last epoch), ``epochs``, and the costs ``params_M``, ``macs_M`` and
    ``flops_M`` of the network at the evaluator's full setting (what the architecture costs
    to deploy, the same at every fidelity; via :mod:`nasforge.hardware`). ``Result.cost`` is
    the seconds spent building, training and evaluating (``cost_unit="seconds"``); loading
    the data set, done once per evaluator, is not counted.

    Your own data (``data=`` a ``Dataset``, ``DataLoader``, ``(inputs, targets)``,
    :class:`~nasforge.train.UserData` or the import path ``"package.module:name"`` of one) is
    trained on as it is, with ``loss`` (:mod:`nasforge.train.user_data`); the metrics are then
    ``valid_<metric>`` (``valid_acc`` for accuracy; ``test_`` with test data), ``train_loss``,
    ``epochs``, ``params_M``, and the fidelities ``epochs`` and ``data_fraction``.

    Args:
        data: Path of the data (see :mod:`nasforge.train.data`); not used for ``synthetic``.
            Or your own data (above).
        dataset: One of :data:`DATASETS`, or ``"user"``.
        space: The search space whose architectures it trains (its ``build`` is used): a
            name or a space object.
        preset: The space's preset (``space.presets()``) whose network is trained: ``"paper"``
            (default; NB201's benchmark network, DARTS's evaluation network, the ImageNet
            networks of ``mobilenet`` and ``fbnet`` at 224x224), ``"search"``, ``"reduced"``
            (a CPU setting: for ``mobilenet`` and ``fbnet`` the CIFAR-10 network at width 0.25
            with stem and first stage at stride 1), ``"cifar"``... Its data settings
            (``resolution``, ``data_fraction``, ``batch_size``) are the defaults of
            ``resolution``, ``data_fraction`` and the recipe's batch size.
        recipe: A :class:`~nasforge.train.recipe.Recipe` (taken whole), its ``to_dict()`` (the
            preset's batch size unless it sets ``batch_size``), or the name of a space whose
            recipe to take (:meth:`Recipe.named`); default the space's own (``space.recipe()``:
            NAS-Bench-201's for ``nb201``, DARTS's for ``darts``), with the preset's batch size.
        epochs: Full-fidelity epochs (default ``recipe.epochs``).
        channels: Full width of a space with an integer width (its ``scale_keys``; default
            the preset's: 16 for NB201, 36 for DARTS).
        **depth: The full depth, under the name of the space's depth setting (its
            ``scale_keys``: ``cells_per_stage=`` for NB201, default 5; ``layers=`` for DARTS,
            default 20).
        build: Other settings of ``space.build`` that replace the preset's, e.g.
            ``{"width_mult": 0.5}`` for ``mobilenet`` (whose width is this float, not
            ``channels``); numbers, strings or booleans.
        resolution: Full image side (default the preset's, else the data's: 32 for CIFAR-10);
            the images are resized to it, and a space whose ``build`` takes ``resolution``
            builds its network for it.
        data_fraction: Share of the training split used at full fidelity (default the
            preset's, else 1).
        valid_size: Validation images cut from the training images (default half of them:
            25,000 of CIFAR-10's 50,000, as NAS-Bench-201's ``cifar10-valid``).
        split_seed: Seed of the validation split and of the data subsets.
        eval_limit: Measure accuracies on at most this many validation and test images (a
            fixed class-balanced subset); ``None``: all.
        test: Also measure the test accuracy.
        seed: Seed of the weights, batch order and augmentation (with the architecture).
        synthetic: Keyword arguments of :class:`~nasforge.train.data.SyntheticImages`.
        cache_dir: Where archives are extracted and decoded images cached when the folder
            next to the data is not writable.
        checkpoint_dir: Save each trained network here (a :mod:`nasforge.train.checkpoint`
            record per architecture and fidelity) for ``nasforge export``; ``None``: none.
        threads: CPU threads for training (default: every CPU this process may use); set for
            each evaluation and restored after it. On a machine shared with other jobs, fewer
            threads can be much faster: every operator waits for its slowest thread
            (``benchmarks/training_throughput.py`` measured 2 threads 2-60x slower than 1 on a
            loaded 2-core machine).
        device: ``"auto"`` (CUDA when available, with mixed precision), ``"cpu"``, ``"cuda"``.
        deterministic: Ask PyTorch for deterministic kernels during each evaluation (see
            :func:`nasforge.train.trainer.deterministic_algorithms`); CPU runs are
            reproducible without it.
        on_epoch: Called as ``on_epoch(arch, report)`` before and after each epoch (progress
            bars); not part of :meth:`spec`. More can be added with
            :meth:`add_epoch_callback`.
        loss: On your own data: ``loss(outputs, targets) -> tensor`` or its import path
            (default cross-entropy with the recipe's label smoothing; mean squared error for
            floating targets).
        metric: On your own data: ``"accuracy"`` (default), ``"mse"``, ``"mae"``, or
            ``metric(outputs, targets) -> float`` over a whole split (or its import path),
            larger better unless ``metric_direction="min"``.

    ``threads``, ``device``, ``deterministic`` and the epoch callbacks say how to run, not what
    to compute, and are not part of :meth:`spec`: a study resumes on another machine.

    Raises:
        UnknownNameError: Unknown dataset, space, preset or recipe name (the valid ones are
            listed).
        InvalidConfigError: A setting out of range, a depth keyword of another space,
            ``channels`` or a depth for a space without integer ones (``mobilenet``), or a
            ``build`` setting the space does not take.
        DatasetError: No data at ``data`` (the message says what to put there).
        UnsupportedOperationError: The space has no model builder.

    Example:
        >>> ev = TrainingEvaluator(dataset="synthetic", synthetic={"n_train": 200, "n_test": 50,
        ...     "size": 8}, recipe={"epochs": 1, "batch_size": 50, "lr": 0.05},
        ...     channels=4, cells_per_stage=1, threads=1, hardware=False)
        >>> arch = spaces.create("nb201").from_index(6111)
        >>> r = ev.evaluate(arch, {"data_fraction": 0.5})
        >>> sorted(r.metrics)
        ['epochs', 'test_acc', 'train_acc', 'train_loss', 'valid_acc']
        >>> ev.evaluate(arch, {"width": 8})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nasforge.errors.InvalidConfigError: Unknown fidelity key(s) ['width'] ...

        The CIFAR-10 network of ``mobilenet`` (preset ``"reduced"``: width 0.25, stem and
        first stage at stride 1, 32x32 images, a tenth of the data, batch 64), narrower still:

        >>> mb = TrainingEvaluator(dataset="synthetic", space="mobilenet", preset="reduced",
        ...     build={"width_mult": 0.1}, synthetic={"n_train": 40, "n_test": 10, "size": 8},
        ...     recipe={"epochs": 1}, threads=1, hardware=False)
        >>> (mb.resolution, mb.data_fraction, mb.recipe.batch_size, mb.fidelity_keys)
        (32, 0.1, 64, ('epochs', 'resolution', 'data_fraction'))
        >>> kwargs = mb.build_kwargs(mb.setting(), num_classes=10)
        >>> {key: kwargs[key] for key in ("width_mult", "stem_stride", "resolution")}
        {'width_mult': 0.1, 'stem_stride': 1, 'resolution': 32}
        >>> r = mb.evaluate(spaces.create("mobilenet").named("mobilenetv2"))
        >>> 0 <= r.metrics["valid_acc"] <= 100
        True
    """

    cost_unit = "seconds"
    takes_context = True

    def __init__(
        self,
        data: str | os.PathLike[str] | Any = None,
        *,
        dataset: str = "cifar10",
        space: str | SearchSpace = "nb201",
        preset: str = DEFAULT_PRESET,
        recipe: Recipe | Mapping[str, Any] | str | None = None,
        epochs: int | None = None,
        channels: int | None = None,
        build: Mapping[str, Any] | None = None,
        resolution: int | None = None,
        data_fraction: float | None = None,
        valid_size: int | None = None,
        split_seed: int = 0,
        eval_limit: int | None = None,
        test: bool = True,
        seed: int = 0,
        synthetic: Mapping[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        hardware: bool = True,
        threads: int | None = None,
        device: str = "auto",
        deterministic: bool = False,
        on_epoch: Callable[[Architecture, EpochReport], None] | None = None,
        loss: Callable[[Any, Any], Any] | str | None = None,
        metric: Callable[[Any, Any], float] | str | None = None,
        metric_direction: str | None = None,
        **depth: int,
    ) -> None:
        self._user = UserTraining.open(data, dataset, loss, metric, metric_direction, DATASETS,
            resolution=resolution, valid_size=valid_size, synthetic=synthetic,
            eval_limit=eval_limit, cache_dir=cache_dir)  # fmt: skip
        self.dataset, data = (USER_DATASET, None) if self._user else (dataset, data)
        self._space = space if isinstance(space, SearchSpace) else spaces.create(space)
        space = space if isinstance(space, str) else self._space.name
        if not self._space.supports("build"):
            raise UnsupportedOperationError(
                f"Search space {space!r} lacks the capability build() (a model builder); the "
                "training evaluator can only train spaces that build networks."
            )
        self.space = space
        # the space's own knowledge: the preset's network and the names of its width and depth
        self.preset = preset
        self._preset = training_preset(self._space, preset)
        self._width_key = self._preset.width_key
        self._depth_key = self._preset.depth_key
        self.build = self._preset.check_overrides(space, build)
        self.recipe = preset_recipe(self._space, recipe, self._preset)
        if epochs is not None:
            self.recipe = self.recipe.replace(epochs=positive_int("epochs", epochs))
        self.channels, self.depth = self._preset.shape(space, channels, depth)
        if resolution is None:
            resolution = self._preset.data.get("resolution")
        self.resolution = None if resolution is None else positive_int("resolution", resolution)
        if data_fraction is None:
            data_fraction = self._preset.data.get("data_fraction", 1.0)
        self.data_fraction = fraction(data_fraction)
        self.valid_size = None if valid_size is None else positive_int("valid_size", valid_size)
        self.split_seed = count("split_seed", split_seed)
        self.eval_limit = None if eval_limit is None else positive_int("eval_limit", eval_limit)
        self.test = bool(test)
        self.seed = count("seed", seed)
        self.synthetic = None if synthetic is None else dict(synthetic)
        self.data, synthetic_images = (
            (None, None) if self._user else open_data(dataset, data, self.synthetic)
        )
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser().resolve()
        self.checkpoint_dir = (
            None if checkpoint_dir is None else Path(checkpoint_dir).expanduser().resolve()
        )
        self.hardware = bool(hardware)
        if threads is not None:
            positive_int("threads", threads)
        self.threads = threads
        self.device = device
        self.deterministic = bool(deterministic)
        self.on_epoch = on_epoch
        self._epoch_callbacks: list[Callable[[Architecture, EpochReport], None]] = []
        self._images = TrainingImages(
            dataset,
            self.data,
            synthetic_images,
            self.cache_dir,
            self.valid_size,
            self.split_seed,
            self.eval_limit,
        )
        self._free: dict[Architecture, dict[str, float]] = {}
        metrics = {
            "valid_acc": Direction.MAXIMIZE,
            "train_acc": Direction.MAXIMIZE,
            "train_loss": Direction.MINIMIZE,
            "epochs": Direction.MINIMIZE,
        }
        if self.test:
            metrics["test_acc"] = Direction.MAXIMIZE
        if self.hardware:
            metrics.update(dict.fromkeys(("params_M", "macs_M", "flops_M"), Direction.MINIMIZE))
        self._metrics = metrics if self._user is None else self._user.metrics(test, hardware)
        self._check_build()

    # -- the Evaluator contract --------------------------------------------------------------
    @property
    def metrics(self) -> Mapping[str, Direction]:
        return self._metrics

    @property
    def fidelity_keys(self) -> tuple[str, ...]:
        """The keys a proposal's fidelity may hold."""
        keys = ["epochs"]
        if self.channels is not None:
            keys.append("channels")
        if self._depth_key is not None:
            keys.append(self._depth_key)
        return (*keys, *("resolution",) * (self._user is None), "data_fraction")

    def setting(self, fidelity: Mapping[str, Any] | None = None) -> Setting:
        """The full setting with ``fidelity`` applied.

        Raises:
            InvalidConfigError: A key not in :attr:`fidelity_keys` (the message lists them),
                or a value out of range.
        """
        fidelity = dict(fidelity or {})
        unknown = sorted(set(fidelity) - set(self.fidelity_keys))
        if unknown:
            shape = {"channels", "cells", "cells_per_stage", "layers", "depth"}
            hint = f" ({self._preset.no_width_hint(self._space.name)})" * bool(
                self.channels is None and shape & set(unknown)
            )
            raise InvalidConfigError(
                f"Unknown fidelity key(s) {unknown} for the training evaluator of space "
                f"{self.space!r}; valid keys: {', '.join(self.fidelity_keys)}{hint}."
            )
        depth = self.depth
        if self._depth_key is not None and self._depth_key in fidelity:
            depth = count(self._depth_key, fidelity[self._depth_key])
        return Setting(
            epochs=positive_int("epochs", fidelity.get("epochs", self.recipe.epochs)),
            channels=(
                None
                if self.channels is None
                else positive_int("channels", fidelity.get("channels", self.channels))
            ),
            depth=depth,
            resolution=positive_int(
                "resolution", fidelity.get("resolution", self._full_resolution())
            )
            if self._user is None
            else 0,
            data_fraction=fraction(fidelity.get("data_fraction", self.data_fraction)),
        )

    def evaluate(
        self,
        arch: Architecture,
        fidelity: Mapping[str, Any] | None = None,
        context: TrialContext | None = None,
    ) -> Result:
        """Train ``arch`` at ``fidelity`` and measure it (see the class docstring). With a
        ``context`` (a study's trial), the validation metric is measured after each epoch (a
        pass over the validation split each) and reported to it; the study's stopping rule
        may then end the training early (``Result.stopped``, the last epoch's metrics, the
        seconds spent). The result is the same as without a context.

        Raises:
            InvalidArchitectureError: ``arch`` is not of this evaluator's space.
            InvalidConfigError: A bad fidelity, or a setting whose network has an empty
                layer (too small a resolution for its reductions, no channels...).
            TrainingDivergedError: The loss became NaN or infinite.
        """
        from nasforge.train.trainer import (
            derive_seeds,
            deterministic_algorithms,
            evaluate_accuracy,
            num_threads,
            select_device,
            train,
        )

        arch = self._space.check(arch)
        setting = self.setting(fidelity)
        if self._user is not None:
            return self._user.evaluate(self, arch, setting, context)
        device = select_device(self.device)
        init_seed, train_seed = derive_seeds(self.trial_seed(arch), 2)
        with num_threads(self.threads), deterministic_algorithms(self.deterministic):
            splits = self._images.load()
            train_data, valid_data, test_data = self._data(setting)
            started = time.perf_counter()
            model = self._build(arch, setting, splits.num_classes, init_seed)
            norm = {"mean": splits.mean, "std": splits.std}
            batch = self.recipe.eval_batch_size

            def accuracy(part: ImageData) -> float:
                return evaluate_accuracy(model, part, **norm, device=device, batch_size=batch)

            # the recipe's epochs: a recipe decision (the "+recipe" form) may scale them
            recipe = self._space.recipe_of(arch, self.recipe.replace(epochs=setting.epochs))
            hook, seen = epoch_hook(
                arch, self._epoch_callbacks_now(), context, recipe.epochs, "valid_acc",
                lambda: accuracy(valid_data),
            )  # fmt: skip
            try:
                result = train(
                    model,
                    train_data,
                    recipe,
                    **norm,
                    seed=train_seed,
                    device=device,
                    on_epoch=hook,
                )
            except TrialStopped:
                assert context is not None
                return stopped_result(context, {}, time.perf_counter() - started)
            done = recipe.epochs
            metrics = {"valid_acc": seen[done] if done in seen else accuracy(valid_data)}
            if self.test:
                metrics["test_acc"] = accuracy(test_data)
            seconds = time.perf_counter() - started
        metrics.update(
            train_acc=result.train_acc, train_loss=result.train_loss, epochs=float(recipe.epochs)
        )
        if self.hardware:
            metrics.update(self.free_metrics(arch))
        if self.checkpoint_dir is not None:
            save_checkpoint(self, arch, fidelity, setting, model, splits, metrics)
        return Result(metrics, cost=seconds, seconds=seconds)

    def free_metrics(self, arch: Architecture) -> dict[str, float]:
        """``params_M``, ``macs_M`` and ``flops_M`` of ``arch``'s network at the full setting,
        counted on PyTorch's meta device (no weights, no arithmetic); empty without
        ``hardware``."""
        if not self.hardware:
            return {}
        arch = self._space.check(arch)
        cached = self._free.get(arch)
        if cached is None:
            cached = self._count_costs(arch)
            self._free[arch] = cached
        return dict(cached)

    def spec(self) -> dict[str, Any] | None:
        """The settings that rebuild it; on your own data ``None`` unless the data (and the
        loss and metric, if given) are named by import path (``"package.module:name"``)."""
        user = None if self._user is None else self._user.spec()
        if self._user is not None and user is None:
            return None
        spec: dict[str, Any] = {
            "name": "train",
            "data": None if self.data is None else str(self.data),
            "dataset": self.dataset,
            "space": self.space,
            "recipe": self.recipe.to_dict(),
            **(user or {}),
        }
        if self.preset != DEFAULT_PRESET:  # left out by default: older studies' specs hold
            spec["preset"] = self.preset
        if self.channels is not None:
            spec["channels"] = self.channels
        if self._depth_key is not None:
            spec[self._depth_key] = self.depth
        if self.build:
            spec["build"] = dict(self.build)
        spec.update(
            resolution=self.resolution,
            data_fraction=self.data_fraction,
            valid_size=self.valid_size,
            split_seed=self.split_seed,
            eval_limit=self.eval_limit,
            test=self.test,
            seed=self.seed,
            synthetic=self.synthetic,
            cache_dir=None if self.cache_dir is None else str(self.cache_dir),
            checkpoint_dir=None if self.checkpoint_dir is None else str(self.checkpoint_dir),
            hardware=self.hardware,
        )
        if self._user is not None:
            for key in IMAGE_ONLY:
                del spec[key]
        return spec

    # -- data ------------------------------------------------------------------------------
    def load(self) -> DataSplits | UserData:
        """Load (once) and return the data set; call it before a search to see data errors
        at once rather than as failed trials (your own data was read when given).

        Raises:
            DatasetError: Missing data, a wrong layout or an unreadable image (named).
        """
        return self._images.load() if self._user is None else self._user.data

    def _data(self, setting: Setting) -> tuple[ImageData, ImageData, ImageData]:
        """Training subset, validation and test images at the setting's resolution."""
        return self._images.prepared(setting.resolution, setting.data_fraction)

    def _full_resolution(self) -> int:
        return self._images.full_resolution(self.resolution)

    def num_classes(self) -> int:
        """Classes of the dataset (loads an image folder to count them; 0 for regression)."""
        if self._user is not None:
            return self._user.data.num_classes or 0
        return self._images.num_classes()

    # -- models ----------------------------------------------------------------------------
    def _check_build(self) -> None:
        """Build a sample network of the full setting on the meta device (no weights, no
        time): a width or depth that leaves a layer empty, or a build setting the space
        refuses, is an error now, not a failed trial."""
        import torch

        if self._user is not None:
            self._user.count_params(self, self._space.sample(np.random.default_rng(0)))
            return
        resolution = self.resolution
        if resolution is None and self.dataset != "folder":  # known without loading the data
            resolution = self._full_resolution()
        kwargs = self._build_kwargs(self.channels, self.depth, resolution, 2)
        sample = self._space.sample(np.random.default_rng(0))
        with torch.device("meta"):
            self._space.build(sample, **kwargs)

    def check(self) -> None:
        """Check that the full setting trains: load the data and run a sample network on two
        images of the full resolution (cheap). Raises what :meth:`evaluate` would."""
        sample = self._space.sample(np.random.default_rng(0))
        if self._user is not None:
            return self._user.check(self, sample)
        self._build(sample, self.setting(None), self._images.load().num_classes, 0)

    def trial_seed(self, arch: Architecture) -> int:
        """The seed of ``arch``'s training runs: a hash of ``seed`` and the architecture."""
        entropy = [self.seed, zlib.crc32(arch.space.encode()), *(int(c) for c in arch.choices)]
        return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)

    def build_kwargs(self, setting: Setting, num_classes: int) -> dict[str, Any]:
        """The keyword arguments of ``space.build`` for ``setting``: the preset's build
        settings with the setting's width and depth, ``build`` applied, and the setting's
        resolution where ``space.build`` takes one."""
        return self._build_kwargs(setting.channels, setting.depth, setting.resolution, num_classes)

    def _build_kwargs(
        self, channels: int | None, depth: int | None, resolution: int | None, num_classes: int
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"num_classes": num_classes}
        if self._width_key is not None:
            kwargs[self._width_key] = channels
        if self._depth_key is not None:
            kwargs[self._depth_key] = depth
        for key, value in self._preset.build.items():
            if key not in (self._width_key, self._depth_key):
                kwargs[key] = value
        if "auxiliary" in kwargs:  # the space's network has an auxiliary head
            kwargs["auxiliary"] = self.recipe.auxiliary_weight > 0
        kwargs.update(self.build)
        if resolution is not None and "resolution" in self._preset.build_params:
            kwargs["resolution"] = resolution
        return kwargs

    def _build(
        self, arch: Architecture, setting: Setting, num_classes: int, seed: int
    ) -> nn.Module:
        """The network, initialised from ``seed``, checked on an input of the resolution."""
        kwargs = self.build_kwargs(setting, num_classes)
        return build_network(self._space, arch, kwargs, setting.resolution, seed)

    def _count_costs(self, arch: Architecture) -> dict[str, float]:
        if self._user is not None:
            return self._user.count_params(self, arch)
        setting = self.setting(None)
        kwargs = self.build_kwargs(setting, self.num_classes())
        return count_costs(self._space, arch, kwargs, setting.resolution)

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint_path(
        self, arch: Architecture, fidelity: Mapping[str, Any] | None = None
    ) -> Path | None:
        """Where the network trained for ``arch`` at ``fidelity`` is saved (``None`` without
        a ``checkpoint_dir``)."""
        if self.checkpoint_dir is None:
            return None
        return checkpoint_file(self.checkpoint_dir, arch, fidelity)

    def __repr__(self) -> str:
        where = "" if self.data is None else f"{str(self.data)!r}, "
        preset = "" if self.preset == DEFAULT_PRESET else f"preset={self.preset!r}, "
        return (
            f"TrainingEvaluator({where}dataset={self.dataset!r}, space={self.space!r}, "
            f"{preset}epochs={self.recipe.epochs})"
        )
