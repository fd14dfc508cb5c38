"""The user's own data: a ``torch.utils.data.Dataset``, a ``DataLoader`` or ``(inputs,
targets)`` tensors, held in memory, and the loop that trains a network on it with a user loss
and measures a user metric.

:class:`UserData` reads every item once into two tensors (inputs of any shape: images,
sequences, token or node indices; targets), so that training needs no loader processes and
a seeded split, subset or batch order is the same in every process. Integer targets make a
classification problem (``num_classes`` inferred), floating targets a regression problem (give
a loss and a metric, or take the defaults: mean squared error). Nothing is augmented or
normalised: the inputs reach the network as the data gave them (floating inputs in torch's
default float type).

:func:`fit` trains with a :class:`~nasforge.train.recipe.Recipe` (its optimiser, cosine
schedule with warm-up, batch size, epochs, gradient clipping; label smoothing for the default
cross-entropy) and :func:`measure` applies a metric to a network's outputs on a split.

Example:
    >>> import torch
    >>> x, y = torch.randn(40, 5), torch.arange(40) % 2
    >>> data = UserData((x, y), valid_fraction=0.25)
    >>> (len(data.train), len(data.valid), data.num_classes, data.task)
    (30, 10, 2, 'classification')
    >>> UserData([torch.zeros(3)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nasforge.train.data.DatasetError: Item 0 of the training data is a Tensor, not an (input, ...
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.train.data import DatasetError, stratified_indices
from nasforge.train.recipe import Recipe, cosine_warmup_lr

__all__ = [
    "METRICS",
    "Loss",
    "Metric",
    "TensorData",
    "UserData",
    "default_loss",
    "fit",
    "measure",
    "predict",
]

#: ``loss(outputs, targets) -> scalar tensor``.
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``metric(outputs, targets) -> float`` over a whole split.
Metric = Callable[[torch.Tensor, torch.Tensor], float]

HINT = (
    "return `(input, target)` from the Dataset's __getitem__ (e.g. `return self.x[i], "
    "self.y[i]`), or pass the tensors as `(inputs, targets)` or "
    "torch.utils.data.TensorDataset(inputs, targets)"
)


@dataclass(frozen=True, eq=False)
class TensorData:
    """Items held as two tensors: ``inputs[i]`` and ``targets[i]`` are item ``i``."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self) -> None:
        if self.inputs.shape[:1] != self.targets.shape[:1]:
            raise DatasetError(
                f"{self.inputs.shape[0]} inputs but {self.targets.shape[0]} targets: give one "
                "target per input."
            )

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def subset(self, indices: torch.Tensor | Sequence[int]) -> TensorData:
        """The items at ``indices`` (a copy)."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return TensorData(self.inputs[index], self.targets[index])

    @property
    def resolution(self) -> int:
        """The side of image inputs ``(N, C, H, W)``.

        Raises:
            InvalidConfigError: The inputs are not images.
        """
        if self.inputs.dim() != 4:
            raise InvalidConfigError(
                f"The inputs have shape {tuple(self.inputs.shape)}, not images (N, C, H, W): "
                "this needs image data."
            )
        return int(self.inputs.shape[-1])


class UserData:
    """A user's training, validation and test data, materialised as tensors.

    Args:
        train: The training data: a ``Dataset`` (map-style or iterable) whose items are
            ``(input, target)`` pairs, a ``DataLoader`` (its data set, in order, when it
            yields every item once collated the default way; else the batches it yields,
            each an ``(inputs, targets)`` pair: a sampler's subset, a collate function's
            padding), a pair of tensors or arrays ``(inputs, targets)``, or a
            :class:`TensorData`.
        valid: Validation data, the same kinds; ``None``: ``valid_fraction`` of ``train``
            is held out (class-balanced for classification), fixed by ``seed``.
        test: Test data, or ``None``.
        num_classes: Classes of a classification problem (default: the largest integer
            target plus one).
        valid_fraction: Share of ``train`` held out when ``valid`` is not given.
        seed: Seed of that split.

    Attributes:
        train, valid, test: :class:`TensorData` (``test`` may be ``None``).
        task: ``"classification"`` (integer targets, int64) or ``"regression"`` (floating
            targets, float32).
        num_classes: Classes of a classification problem, ``None`` for regression.

    Raises:
        DatasetError: An item that is not an ``(input, target)`` pair (its type and index
            named), inputs of different shapes, targets of different kinds across splits, a
            negative class or one beyond ``num_classes``, an empty split.
    """

    def __init__(
        self,
        train: Any,
        valid: Any = None,
        test: Any = None,
        *,
        num_classes: int | None = None,
        valid_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        if isinstance(train, UserData):
            raise DatasetError("train= is a UserData already; pass it as it is.")
        whole = materialise(train, "training")
        if not 0.0 < float(valid_fraction) < 1.0:
            raise InvalidConfigError(f"valid_fraction must be in (0, 1), got {valid_fraction!r}.")
        self.valid_fraction = float(valid_fraction)
        self.seed = int(seed)
        parts = {"training": whole}
        if valid is not None:
            parts["validation"] = materialise(valid, "validation")
        if test is not None:
            parts["test"] = materialise(test, "test")
        self.task = _task(parts)
        self.num_classes = _classes(parts, num_classes) if self.task == "classification" else None
        if num_classes is not None and self.task == "regression":
            raise DatasetError(
                f"num_classes={num_classes} was given but the targets are floating numbers "
                "(regression); give integer class indices as targets for classification."
            )
        if valid is None:
            self.train, self.valid = self._split(whole)
        else:
            self.train, self.valid = whole, parts["validation"]
        self.test: TensorData | None = parts.get("test")

    @classmethod
    def coerce(cls, data: Any) -> UserData:
        """``data`` itself when it is a :class:`UserData`, else ``UserData(data)``."""
        return data if isinstance(data, UserData) else cls(data)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input."""
        return tuple(int(s) for s in self.train.inputs.shape[1:])

    def train_subset(self, fraction: float, seed: int) -> TensorData:
        """``fraction`` of the training items (class-balanced for classification)."""
        if fraction >= 1.0:
            return self.train
        count = max(2, round(len(self.train) * fraction))
        return self.train.subset(self._draw(self.train, min(count, len(self.train)), seed))

    def _split(self, whole: TensorData) -> tuple[TensorData, TensorData]:
        n = len(whole)
        n_valid = round(n * self.valid_fraction)
        if not 0 < n_valid < n:
            raise DatasetError(
                f"valid_fraction={self.valid_fraction} of {n} training items leaves an empty "
                "split; give more items, another valid_fraction or valid= data."
            )
        chosen = self._draw(whole, n_valid, self.seed)
        mask = torch.ones(n, dtype=torch.bool)
        mask[chosen] = False
        return whole.subset(mask.nonzero().flatten()), whole.subset(chosen)

    def _draw(self, data: TensorData, count: int, seed: int) -> torch.Tensor:
        if self.task == "classification" and data.targets.dim() == 1:
            return stratified_indices(data.targets, count, seed)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(int(seed)))
        return order[:count].sort().values

    def __repr__(self) -> str:
        test = "no test" if self.test is None else f"{len(self.test)} test"
        kind = self.task if self.num_classes is None else f"{self.num_classes} classes"
        return (
            f"UserData({len(self.train)} train, {len(self.valid)} valid, {test} items of shape "
            f"{self.input_shape}, {kind})"
        )


# -- reading the user's data -----------------------------------------------------------------
def materialise(source: Any, role: str = "training") -> TensorData:
    """``source`` read into tensors (see :class:`UserData` for what it may be).

    Raises:
        DatasetError: See :class:`UserData`.
    """
    from torch.utils.data import DataLoader, IterableDataset, TensorDataset
    from torch.utils.data._utils.collate import default_collate

    if isinstance(source, TensorData):
        return source
    if _is_pair_of_arrays(source):
        inputs, targets = (_as_tensor(part) for part in source)
        return _finish(inputs, targets, role)
    if isinstance(source, DataLoader):
        if _whole_dataset(source, default_collate):
            return materialise(source.dataset, role)
        return _from_batches(source, role)
    if isinstance(source, TensorDataset) and len(source.tensors) == 2:
        return _finish(source.tensors[0], source.tensors[1], role)
    if isinstance(source, IterableDataset) or (
        hasattr(source, "__len__") and hasattr(source, "__getitem__")
    ):
        return _from_items(source, role)
    raise DatasetError(
        f"The {role} data is a {type(source).__name__}; give a torch Dataset of (input, target) "
        "items, a DataLoader, or (inputs, targets) tensors."
    )


def _whole_dataset(loader: Any, default_collate: Any) -> bool:
    """Whether ``loader`` yields every item of its map-style data set once, collated the
    default way (then its items are read directly, in order; else its batches are)."""
    from torch.utils.data import BatchSampler, IterableDataset, RandomSampler, SequentialSampler

    sampler = loader.sampler
    every = isinstance(sampler, SequentialSampler) or (
        isinstance(sampler, RandomSampler)
        and not sampler.replacement
        and sampler.num_samples == len(loader.dataset)
    )
    return (
        every
        and loader.collate_fn is default_collate
        and not isinstance(loader.dataset, IterableDataset)
        and (loader.batch_sampler is None or type(loader.batch_sampler) is BatchSampler)
    )


def _is_pair_of_arrays(value: Any) -> bool:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return False
    return all(isinstance(v, torch.Tensor) or hasattr(v, "__array__") for v in value)


def _as_tensor(value: Any) -> torch.Tensor:
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    return tensor.detach().cpu()


def _pair(item: Any, index: int, role: str) -> tuple[Any, Any]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        size = f" of {len(item)}" if isinstance(item, (tuple, list)) else ""
        raise DatasetError(
            f"Item {index} of the {role} data is a {type(item).__name__}{size}, not an "
            f"(input, target) pair; {HINT}."
        )
    return item[0], item[1]


def _from_items(dataset: Any, role: str) -> TensorData:
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        items: Iterable[Any] = (dataset[i] for i in range(len(dataset)))
    else:
        items = iter(dataset)
    inputs, targets = [], []
    for index, item in enumerate(items):
        x, y = _pair(item, index, role)
        if isinstance(x, (tuple, list, Mapping)):
            raise DatasetError(
                f"The input of item {index} of the {role} data is a {type(x).__name__}; an "
                "input must be one tensor (stack several into one, or keep fixed parts such "
                "as a graph's edges inside the model)."
            )
        inputs.append(_as_tensor(x))
        targets.append(_as_tensor(y))
    if not inputs:
        raise DatasetError(f"The {role} data is empty.")
    return _finish(_stack(inputs, role, "input"), _stack(targets, role, "target"), role)


def _from_batches(loader: Iterable[Any], role: str) -> TensorData:
    inputs, targets = [], []
    for index, batch in enumerate(loader):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise DatasetError(
                f"Batch {index} of the {role} DataLoader is a {type(batch).__name__}, not an "
                f"(inputs, targets) pair; {HINT}."
            )
        inputs.append(_as_tensor(batch[0]))
        targets.append(_as_tensor(batch[1]))
    if not inputs:
        raise DatasetError(f"The {role} DataLoader yields no batch.")
    try:
        return _finish(torch.cat(inputs), torch.cat(targets), role)
    except RuntimeError as err:
        raise DatasetError(
            f"The batches of the {role} DataLoader do not join into one tensor: {err}"
        ) from None


def _stack(parts: list[torch.Tensor], role: str, what: str) -> torch.Tensor:
    first = parts[0].shape
    for index, part in enumerate(parts):
        if part.shape != first:
            raise DatasetError(
                f"The {what} of item {index} of the {role} data has shape {tuple(part.shape)}, "
                f"item 0's {tuple(first)}; every {what} must have the same shape (pad "
                "sequences to one length)."
            )
    return torch.stack(parts)


def _finish(inputs: torch.Tensor, targets: torch.Tensor, role: str) -> TensorData:
    if inputs.dim() == 0 or targets.dim() == 0:
        raise DatasetError(f"The {role} inputs and targets must hold one entry per item.")
    if inputs.is_floating_point() and inputs.dtype != torch.get_default_dtype():
        inputs = inputs.to(torch.get_default_dtype())
    if targets.dtype == torch.bool or not (targets.is_floating_point() or targets.is_complex()):
        targets = targets.long()
    elif targets.is_floating_point():
        targets = targets.float()
    else:
        raise DatasetError(f"The {role} targets are {targets.dtype}; give integers or floats.")
    if len(targets) == 0:
        raise DatasetError(f"The {role} data is empty.")
    return TensorData(inputs.contiguous(), targets.contiguous())


_KIND = {True: "float", False: "int"}


def _task(parts: Mapping[str, TensorData]) -> str:
    kinds = {role: part.targets.is_floating_point() for role, part in parts.items()}
    if len(set(kinds.values())) > 1:
        raise DatasetError(
            "The targets are integers in some splits and floating numbers in others "
            f"({', '.join(f'{r}: {_KIND[f]}' for r, f in kinds.items())}); use "
            "one kind: class indices for classification, floats for regression."
        )
    return "regression" if next(iter(kinds.values())) else "classification"


def _classes(parts: Mapping[str, TensorData], given: int | None) -> int:
    low = min(int(p.targets.min()) for p in parts.values())
    high = max(int(p.targets.max()) for p in parts.values())
    if low < 0:
        raise DatasetError(f"Class targets must be 0 or more, got {low}.")
    if given is None:
        return max(2, high + 1)
    if isinstance(given, bool) or not isinstance(given, int) or given < 1:
        raise InvalidConfigError(f"num_classes must be a positive integer, got {given!r}.")
    if high >= given:
        raise DatasetError(f"A target is class {high} but num_classes={given}.")
    return given


# -- losses and metrics ----------------------------------------------------------------------
def _as_targets(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Regression outputs shaped as the targets (``(N, 1)`` against ``(N,)``)."""
    if outputs.shape != targets.shape and outputs.numel() == targets.numel():
        return outputs.reshape(targets.shape)
    return outputs


def default_loss(task: str, label_smoothing: float = 0.0) -> Loss:
    """Cross-entropy for classification (with label smoothing), mean squared error for
    regression."""
    if task == "classification":
        return lambda out, y: F.cross_entropy(out, y, label_smoothing=label_smoothing)
    return lambda out, y: F.mse_loss(_as_targets(out, y).float(), y)


def _accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return 100.0 * int((outputs.argmax(1) == targets).sum()) / max(1, targets.numel())


def _mse(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float(F.mse_loss(_as_targets(outputs, targets).float(), targets.float()))


def _mae(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float(F.l1_loss(_as_targets(outputs, targets).float(), targets.float()))


#: Metrics by name: the function and whether larger is better. ``accuracy`` is top-1 in
#: percent (reported as ``valid_acc``/``test_acc``).
METRICS: Mapping[str, tuple[Metric, bool]] = {
    "accuracy": (_accuracy, True),
    "mse": (_mse, False),
    "mae": (_mae, False),
}


# -- training ----------------------------------------------------------------------------------
def fit(
    model: nn.Module,
    data: TensorData,
    recipe: Recipe,
    *,
    loss: Loss,
    seed: int,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[float, int]:
    """Train ``model`` on ``data`` for ``recipe.epochs`` epochs.

    Each epoch visits the items in a new order drawn from ``seed``, in batches of
    ``recipe.batch_size`` (a last batch of one item is dropped: batch norm needs two); the
    learning rate follows the recipe's cosine schedule with warm-up, gradients are clipped to
    ``recipe.grad_clip``. A network returning ``(outputs, aux)`` adds
    ``recipe.auxiliary_weight`` times the auxiliary loss.

    Args:
        on_epoch: Called as ``on_epoch(epoch, train_loss)`` after each epoch (1-based).

    Returns:
        The mean training loss of the last epoch and the steps taken.

    Raises:
        TrainingDivergedError: The loss became NaN or infinite.
        InvalidConfigError: Fewer than two training items.
    """
    from nasforge.train.trainer import (
        TrainingDivergedError,
        batch_plan,
        derive_seeds,
        make_optimizer,
        split_outputs,
    )

    device = torch.device(device)
    n = len(data)
    if n < 2:
        raise InvalidConfigError(f"Training needs at least 2 items, got {n}.")
    batch, steps_per_epoch, total, warmup = batch_plan(n, recipe)
    order_seed, path_seed = derive_seeds(seed, 2)
    order = torch.Generator().manual_seed(order_seed)
    model.to(device)
    model.train()
    if hasattr(model, "generator"):  # DARTS networks draw drop-path masks from it
        setattr(model, "generator", torch.Generator(device=device).manual_seed(path_seed))  # noqa: B010
    inputs, targets = data.inputs.to(device), data.targets.to(device)
    optimizer = make_optimizer(model, recipe)
    step, mean = 0, math.nan
    for epoch in range(recipe.epochs):
        if hasattr(model, "drop_path_prob"):
            setattr(model, "drop_path_prob", recipe.drop_path_prob * epoch / recipe.epochs)  # noqa: B010
        perm = torch.randperm(n, generator=order).to(device)
        total_loss, seen = 0.0, 0
        for i in range(steps_per_epoch):
            index = perm[i * batch : (i + 1) * batch]
            lr = cosine_warmup_lr(
                step, total, lr=recipe.lr, warmup_steps=warmup, min_lr=recipe.min_lr
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            out, aux = split_outputs(model(inputs[index]))
            value = loss(out, targets[index])
            if aux is not None and recipe.auxiliary_weight > 0:
                value = value + recipe.auxiliary_weight * loss(aux, targets[index])
            if not bool(torch.isfinite(value.detach())):
                raise TrainingDivergedError(
                    f"Training diverged: the loss became {float(value)} in epoch {epoch + 1} "
                    f"(step {i + 1} of {steps_per_epoch}) at learning rate {lr:.3g}; lower the "
                    "learning rate, add gradient clipping (grad_clip), or check the data."
                )
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if recipe.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            step += 1
            total_loss += float(value.detach()) * len(index)
            seen += len(index)
        mean = total_loss / max(1, seen)
        if on_epoch is not None:
            on_epoch(epoch + 1, mean)
    return mean, step


@torch.no_grad()
def predict(
    model: nn.Module, data: TensorData, *, batch_size: int = 512, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The network's outputs on every item (evaluation mode), on the CPU."""
    from nasforge.train.trainer import split_outputs

    device = torch.device(device)
    training = model.training
    model.eval()
    outs = []
    try:
        for start in range(0, len(data), batch_size):
            out, _ = split_outputs(model(data.inputs[start : start + batch_size].to(device)))
            outs.append(out.detach().float().cpu())
    finally:
        model.train(training)
    return torch.cat(outs)


def measure(
    model: nn.Module,
    data: TensorData,
    metric: Metric,
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
) -> float:
    """``metric(outputs, targets)`` over all of ``data`` (NaN for no items).

    Raises:
        InvalidConfigError: The metric returned no number.
    """
    if len(data) == 0:
        return math.nan
    outputs = predict(model, data, batch_size=batch_size, device=device)
    value = metric(outputs, data.targets)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidConfigError(
            f"The metric {getattr(metric, '__name__', metric)!r} returned {value!r}; a metric "
            "returns one number: metric(outputs, targets) -> float."
        ) from None
