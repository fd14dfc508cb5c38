"""The training evaluator on the user's own data, loss and metric (private to
:mod:`nasforge.evaluators.training`), and the per-epoch reports both of its data paths send
to the trial's :class:`~nasforge.reporting.TrialContext`.

Imports torch only when data is read or a network trained.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.reporting import TrialContext, TrialStopped
from nasforge.train._references import is_reference, load_reference, reference_of
from nasforge.trial import Direction, Result

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.evaluators._values import Setting
    from nasforge.evaluators.training import TrainingEvaluator
    from nasforge.train.trainer import EpochReport
    from nasforge.train.user_data import UserData

__all__ = ["IMAGE_ONLY", "USER_DATASET", "UserTraining", "epoch_hook", "stopped_result"]

#: The ``dataset`` of a training evaluator on user data.
USER_DATASET = "user"
#: Settings of the image data that do not apply to user data.
IMAGE_ONLY = ("resolution", "valid_size", "synthetic", "eval_limit", "cache_dir")


def epoch_hook(
    arch: Architecture,
    callbacks: Sequence[Callable[[Architecture, EpochReport], None]],
    context: TrialContext | None,
    epochs: int,
    name: str,
    measure: Callable[[], float],
) -> tuple[Callable[[EpochReport], None] | None, dict[int, float]]:
    """The ``on_epoch`` hook of a training run: it calls the progress ``callbacks`` with each
    report; with a ``context``, after each epoch it also measures the validation metric,
    reports it as ``{name: value}`` at that epoch and raises :class:`TrialStopped` when the
    study's stopping rule says so. The second value keeps the measured values by epoch (the
    last one is the final metric, not measured twice). ``None``: nothing to call."""
    seen: dict[int, float] = {}
    if context is not None:
        context.max_step = epochs
    elif not callbacks:
        return None, seen

    def hook(report: EpochReport) -> None:
        for callback in callbacks:
            callback(arch, report)
        if context is None or report.epoch < 1:
            return
        seen[report.epoch] = measure()
        context.report({name: seen[report.epoch]}, step=report.epoch)
        if report.epoch < epochs and context.should_stop():
            raise TrialStopped(f"trial {context.number} stopped after epoch {report.epoch}")

    return hook, seen


def stopped_result(context: TrialContext, extra: dict[str, float], seconds: float) -> Result:
    """The result of a training run the stopping rule ended: the last reported metrics and
    the seconds spent so far."""
    metrics = {**context.last, **extra, "epochs": float(context.last_step or 0)}
    return Result(metrics, cost=seconds, seconds=seconds, stopped=True)


def _metric_of(metric: Any, direction: str | None) -> tuple[str, Any, bool, str | None]:
    """``(metric name, function, larger is better, recordable form)``."""
    from nasforge.train.user_data import METRICS

    if metric is None:
        metric = "accuracy"
    if isinstance(metric, str) and metric in METRICS:
        if direction is not None:
            raise InvalidConfigError(
                f"metric_direction applies to a metric of your own; {metric!r} is built in."
            )
        function, larger = METRICS[metric]
        return metric, function, larger, metric
    recorded = metric if isinstance(metric, str) else reference_of(metric)
    if isinstance(metric, str):
        if not is_reference(metric):
            raise InvalidConfigError(
                f"Unknown metric {metric!r}; give one of {sorted(METRICS)}, a function "
                "metric(outputs, targets) -> float, or its import path 'package.module:name'."
            )
        metric = load_reference(metric, "metric")
    if not callable(metric):
        raise InvalidConfigError(f"metric must be callable or a name, got {metric!r}.")
    if direction not in (None, "max", "min"):
        raise InvalidConfigError(f"metric_direction must be 'max' or 'min', got {direction!r}.")
    name = getattr(metric, "__name__", "metric")
    name = "metric" if not name.isidentifier() or name == "<lambda>" else name
    return name, metric, direction != "min", recorded


def _loss_of(loss: Any) -> tuple[Any, str | None]:
    if loss is None:
        return None, None
    if isinstance(loss, str):
        return load_reference(loss, "loss"), loss
    if not callable(loss):
        raise InvalidConfigError(
            f"loss must be a function loss(outputs, targets) -> tensor or its import path, got "
            f"{loss!r}."
        )
    return loss, reference_of(loss)


class UserTraining:
    """The user-data side of a training evaluator: the data, the loss and the metric.

    Build it with :meth:`open`, which answers ``None`` for the image datasets.
    """

    def __init__(
        self, data: Any, reference: str | None, loss: Any, metric: Any, direction: str | None
    ) -> None:
        from nasforge.train.user_data import UserData

        self.reference = reference
        self.data: UserData = UserData.coerce(data)
        self.loss, self.loss_reference = _loss_of(loss)
        self.metric_name, self.metric, self.larger, self.metric_reference = _metric_of(
            metric, direction
        )
        self.direction = direction
        word = "acc" if self.metric_name == "accuracy" else self.metric_name
        self.valid_name, self.test_name = f"valid_{word}", f"test_{word}"

    @classmethod
    def open(
        cls,
        data: Any,
        dataset: str,
        loss: Any,
        metric: Any,
        direction: str | None,
        datasets: Sequence[str],
        **image: Any,
    ) -> UserTraining | None:
        """The user data ``data`` names, or ``None`` when it is the path of image data.

        ``data`` is user data when it is an object (a ``Dataset``, ``DataLoader``,
        :class:`~nasforge.train.user_data.UserData`, ``(inputs, targets)``), an import path
        ``"package.module:attribute"`` of one (or of a function returning one), or when
        ``dataset="user"``.

        Raises:
            UnknownNameError: Neither user data nor one of ``datasets``.
            InvalidConfigError: ``loss``/``metric`` without user data, ``dataset="user"``
                without data, settings of image data given with user data.
            DatasetError: Items that are not ``(input, target)`` pairs...
        """
        user_object = data is not None and not isinstance(data, (str, os.PathLike))
        text = os.fspath(data) if isinstance(data, os.PathLike) else data  # --data a:b
        user_reference = is_reference(text) and not Path(text).exists()
        if not (user_object or user_reference or dataset == USER_DATASET):
            if dataset not in datasets:
                raise UnknownNameError("dataset", dataset, (*datasets, USER_DATASET))
            if loss is not None or metric is not None or direction is not None:
                raise InvalidConfigError(
                    "loss=, metric= and metric_direction= apply to your own data: give data= "
                    "a Dataset, a DataLoader, a UserData or (inputs, targets) tensors."
                )
            return None
        if not (user_object or user_reference):
            raise InvalidConfigError(
                "dataset='user' needs data=: a Dataset, DataLoader, UserData, (inputs, targets) "
                f"or the import path 'package.module:attribute' of one; got {data!r}."
            )
        given = sorted(k for k, v in image.items() if v is not None)
        if given:
            raise InvalidConfigError(
                f"{', '.join(given)} apply to image data sets, not to your own data; leave them "
                "out (UserData(valid=..., valid_fraction=...) sets the validation split)."
            )
        reference = str(text) if user_reference else None
        if reference is not None:
            data = load_reference(reference, "data")
            if callable(data) and not _is_data(data):
                data = data()
        return cls(data, reference, loss, metric, direction)

    # -- what it measures ------------------------------------------------------------------------
    def metrics(self, test: bool, hardware: bool) -> dict[str, Direction]:
        best = Direction.MAXIMIZE if self.larger else Direction.MINIMIZE
        out = {self.valid_name: best, "train_loss": Direction.MINIMIZE}
        out["epochs"] = Direction.MINIMIZE
        if test and self.data.test is not None:
            out[self.test_name] = best
        if hardware:
            out["params_M"] = Direction.MINIMIZE
        return out

    def spec(self) -> dict[str, Any] | None:
        """The settings that rebuild it in another process, ``None`` when the data, loss or
        metric were given as objects that cannot be imported by name."""
        if self.reference is None:
            return None
        if (self.loss is not None and self.loss_reference is None) or (
            self.metric_reference is None
        ):
            return None
        out: dict[str, Any] = {"data": self.reference, "dataset": USER_DATASET}
        if self.loss is not None:
            out["loss"] = self.loss_reference
        if self.metric_reference != "accuracy":
            out["metric"] = self.metric_reference
        if self.direction is not None:
            out["metric_direction"] = self.direction
        return out

    def build_kwargs(self, ev: TrainingEvaluator, setting: Setting | None) -> dict[str, Any]:
        """``space.build`` keywords: the preset's width and depth; ``num_classes`` where the
        space's ``build`` names it or takes any keyword (a model space passes it to a model
        that names it)."""
        channels = ev.channels if setting is None else setting.channels
        depth = ev.depth if setting is None else setting.depth
        kwargs = ev._build_kwargs(channels, depth, None, self.data.num_classes or 1)
        if self.data.num_classes is None or not _takes(ev._space.build, "num_classes"):
            kwargs.pop("num_classes")
        return kwargs

    def count_params(self, ev: TrainingEvaluator, arch: Architecture) -> dict[str, float]:
        """``params_M`` of ``arch``'s network, built on the meta device."""
        import torch

        with torch.device("meta"):
            model = ev._space.build(arch, **self.build_kwargs(ev, None))
        return {"params_M": sum(p.numel() for p in model.parameters()) / 1e6}

    def check(self, ev: TrainingEvaluator, arch: Architecture) -> None:
        """Build ``arch``'s network and run it on two training items (cheap).

        Raises:
            InvalidConfigError: The network cannot take the inputs (the error is named).
        """
        import torch

        model = ev._space.build(arch, **self.build_kwargs(ev, None))
        try:
            with torch.no_grad():
                model(self.data.train.inputs[:2])
        except (RuntimeError, ValueError, IndexError, TypeError) as err:
            raise InvalidConfigError(
                f"The {ev._space.name} network of {arch.text!r} cannot take inputs of shape "
                f"{tuple(self.data.train.inputs[:2].shape)}: {err}"
            ) from None

    # -- training --------------------------------------------------------------------------------
    def evaluate(
        self,
        ev: TrainingEvaluator,
        arch: Architecture,
        setting: Setting,
        context: TrialContext | None,
    ) -> Result:
        """Build ``arch``'s network, train it on the training items at ``setting`` with the
        loss, report the validation metric after each epoch (when a context is given) and
        measure it on the validation and test items."""
        from nasforge.train.trainer import (
            EpochReport,
            derive_seeds,
            deterministic_algorithms,
            num_threads,
            seeded,
            select_device,
        )
        from nasforge.train.user_data import default_loss, fit, measure

        device = select_device(ev.device)
        init_seed, train_seed = derive_seeds(ev.trial_seed(arch), 2)
        recipe = ev._space.recipe_of(arch, ev.recipe.replace(epochs=setting.epochs))
        loss = self.loss or default_loss(self.data.task, recipe.label_smoothing)
        batch = recipe.eval_batch_size
        with num_threads(ev.threads), deterministic_algorithms(ev.deterministic):
            train = self.data.train_subset(setting.data_fraction, ev.split_seed)
            started = time.perf_counter()
            with seeded(init_seed):
                model = ev._space.build(arch, **self.build_kwargs(ev, setting))

            def score(part: Any) -> float:
                return measure(model, part, self.metric, batch_size=batch, device=device)

            hook, seen = epoch_hook(
                arch, ev._epoch_callbacks_now(), context, recipe.epochs, self.valid_name,
                lambda: score(self.data.valid),
            )  # fmt: skip
            last_loss = [math.nan]

            def on_epoch(epoch: int, train_loss: float) -> None:
                last_loss[0] = train_loss
                if hook is not None:
                    seconds = time.perf_counter() - started
                    hook(
                        EpochReport(epoch, recipe.epochs, train_loss, math.nan, recipe.lr, seconds)
                    )

            try:
                on_epoch(0, math.nan)  # progress before the first epoch, as on images
                fit(model, train, recipe, loss=loss, seed=train_seed, device=device,
                    on_epoch=on_epoch)  # fmt: skip
            except TrialStopped:
                assert context is not None
                seconds = time.perf_counter() - started
                return stopped_result(context, {"train_loss": last_loss[0]}, seconds)
            # the recipe's epochs: a recipe decision (the "+recipe" form) may scale them
            valid = seen[recipe.epochs] if recipe.epochs in seen else score(self.data.valid)
            metrics = {self.valid_name: valid}
            if ev.test and self.data.test is not None:
                metrics[self.test_name] = score(self.data.test)
            seconds = time.perf_counter() - started
        metrics.update(train_loss=last_loss[0], epochs=float(recipe.epochs))
        if ev.hardware:
            metrics.update(ev.free_metrics(arch))
        return Result(metrics, cost=seconds, seconds=seconds)


def _is_data(value: Any) -> bool:
    """A data object rather than a function that makes one."""
    from torch.utils.data import DataLoader, Dataset

    from nasforge.train.user_data import UserData

    return isinstance(value, (Dataset, DataLoader, UserData, tuple, list))


def _takes(function: Callable[..., Any], keyword: str) -> bool:
    """Whether ``function`` accepts the keyword ``keyword``."""
    import inspect

    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is p.VAR_KEYWORD for p in parameters)
