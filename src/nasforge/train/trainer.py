"""Train a network with a :class:`~nasforge.train.recipe.Recipe` and measure its accuracy.

The loop keeps the whole dataset as a uint8 tensor on the training device and augments each
batch there with torch operations (:mod:`nasforge.train.augment`), so no data-loader worker
processes are needed and the CPU threads all go to the network.

Randomness: :func:`train` takes one ``seed`` and derives from it two independent
:class:`torch.Generator` objects, one for the order of the batches and one for the
augmentation (and, for networks with drop-path, one on the device for its masks). The
initial weights are drawn by the caller under :func:`seeded` (see there). Nothing reads or
advances torch's global generator, so a run does not change another's randomness. On the CPU,
the same seed, data, recipe and thread count give bit-identical results; across thread
counts or machines the reduction order of the convolutions may differ in the last bits.
On CUDA, cuDNN picks convolution algorithms that are not all deterministic; pass
``deterministic=True`` to :func:`deterministic_algorithms` for a reproducible (slower) run.

Devices: ``select_device("auto")`` takes the first CUDA device when PyTorch sees one, else the
CPU. On CUDA the forward pass runs under ``torch.autocast`` in float16 and the loss is scaled
with ``torch.amp.GradScaler`` (mixed precision, Micikevicius et al., ICLR 2018); on the CPU
everything runs in float32.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidConfigError, NasforgeError
from nasforge.train.augment import Augment, normalize
from nasforge.train.data import ImageData
from nasforge.train.lion import Lion
from nasforge.train.recipe import Recipe, cosine_warmup_lr

__all__ = [
    "EpochReport",
    "TrainResult",
    "TrainingDivergedError",
    "default_threads",
    "deterministic_algorithms",
    "evaluate_accuracy",
    "make_optimizer",
    "num_threads",
    "seeded",
    "select_device",
    "train",
]

#: On CUDA the loss is checked for NaN/inf every this many steps (a check synchronises).
CUDA_CHECK_EVERY = 25


class TrainingDivergedError(NasforgeError, ArithmeticError):
    """The training loss became NaN or infinite; the message says when and what to change."""


@dataclass(frozen=True)
class EpochReport:
    """Progress of a training run, reported after each epoch (and with ``epoch=0`` before
    the first).

    Attributes:
        epoch: Epochs done.
        epochs: Epochs in the run.
        train_loss: Mean training loss of the epoch (NaN before the first).
        train_acc: Training accuracy of the epoch in percent, on augmented images.
        lr: The learning rate of the epoch's last step.
        seconds: Seconds since the run started.
    """

    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """What a training run measured: loss and accuracy of its last epoch."""

    train_loss: float
    train_acc: float
    epochs: int
    steps: int
    seconds: float


# -- devices, threads, randomness ------------------------------------------------------------
def select_device(device: str = "auto") -> torch.device:
    """The device to train on.

    Args:
        device: ``"auto"`` (CUDA when PyTorch sees a GPU, else the CPU), ``"cpu"``,
            ``"cuda"`` or ``"cuda:N"``.

    Raises:
        InvalidConfigError: An unknown name, or CUDA asked for where PyTorch sees none.
    """
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InvalidConfigError(
                f"device={device!r}: PyTorch sees no CUDA device here; use device='cpu' or "
                "'auto', or a CUDA build of PyTorch on a machine with a GPU."
            )
        try:
            chosen = torch.device(name)
        except RuntimeError as err:
            raise InvalidConfigError(f"device={device!r} is not a device name: {err}") from None
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise InvalidConfigError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) here."
            )
        return chosen
    raise InvalidConfigError(f"Unknown device {device!r}; choose auto, cpu, cuda or cuda:N.")


def default_threads() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[int]:
    """Set torch's intra-op threads to ``threads`` (``None``: :func:`default_threads`) for the
    block, then restore the previous value. The setting is per process."""
    wanted = default_threads() if threads is None else int(threads)
    if wanted < 1:
        raise InvalidConfigError(f"threads must be at least 1, got {threads!r}.")
    before = torch.get_num_threads()
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded with ``seed``, then restore its state.

    Modules draw their initial weights from the global generator and take no generator of
    their own, so building a network under ``seeded(seed)`` is the way to make its weights a
    function of ``seed`` without leaking: the generator's state before the block is put back
    (``torch.random.fork_rng``), so code outside sees no change. Build on the CPU, then move.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """With ``enabled``, ask PyTorch for deterministic kernels (and cuDNN without
    benchmarking) for the block, restoring the previous settings afterwards.

    Off by default: the flags are process-wide (another thread training at the same time
    would see them), some CUDA kernels then raise or fall back to slow paths, and on the CPU
    the kernels nasforge's networks use are deterministic already. Operations without a
    deterministic kernel warn instead of failing (``warn_only=True``).
    """
    if not enabled:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic = before[2]
        torch.backends.cudnn.benchmark = before[3]


def derive_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent 63-bit seeds derived from ``seed`` (``numpy.random.SeedSequence``)."""
    states = np.random.SeedSequence(int(seed)).generate_state(n, np.uint64)
    return [int(s) & 0x7FFF_FFFF_FFFF_FFFF for s in states]


# -- optimiser ---------------------------------------------------------------------------------
def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimiser over every trainable parameter of ``model``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
            nesterov=recipe.nesterov,
        )
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=recipe.lr, betas=recipe.resolved_betas(), weight_decay=recipe.weight_decay
        )
    return Lion(
        params, lr=recipe.lr, betas=recipe.resolved_betas(), weight_decay=recipe.weight_decay
    )


def scaled_pixels(pixels: int, resolution: int) -> int:
    """A length given in pixels of a 32x32 image, at ``resolution`` (at least 1 if not 0)."""
    if pixels <= 0:
        return 0
    return max(1, round(pixels * resolution / 32))


# -- training ----------------------------------------------------------------------------------
def train(
    model: nn.Module,
    data: ImageData,
    recipe: Recipe,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    seed: int,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` for ``recipe.epochs`` epochs.

    Each epoch visits the images in a new random order in batches of ``recipe.batch_size``
    (a last batch of a single image is dropped: batch norm needs two). Each batch is
    augmented (random crop, flip, normalisation, cutout as the recipe says), the learning rate
    follows :func:`~nasforge.train.recipe.cosine_warmup_lr` step by step, and networks that
    return ``(logits, aux_logits)`` in training mode add ``recipe.auxiliary_weight`` times the
    auxiliary loss. A network with a ``drop_path_prob`` attribute gets
    ``recipe.drop_path_prob * epoch / epochs`` at each epoch, as in DARTS.

    Args:
        model: The network, on the CPU or on ``device``; it is moved to ``device``.
        data: Training images.
        recipe: How to train.
        mean, std: Normalisation of the images.
        seed: Seed of the batch order and the augmentation (see the module docstring).
        device: Where to train.
        on_epoch: Called before the first epoch and after each one.

    Returns:
        Loss and accuracy of the last epoch.

    Raises:
        TrainingDivergedError: The loss became NaN or infinite.
        InvalidConfigError: Fewer than two training images.
    """
    device = torch.device(device)
    n = len(data)
    if n < 2:
        raise InvalidConfigError(f"Training needs at least 2 images, got {n}.")
    started = time.perf_counter()
    batch = min(recipe.batch_size, n)
    steps_per_epoch = n // batch + (1 if n % batch > 1 else 0)
    total_steps = steps_per_epoch * recipe.epochs
    warmup_steps = round(recipe.warmup_epochs * steps_per_epoch)
    order_seed, augment_seed, path_seed = derive_seeds(seed, 3)
    order = torch.Generator().manual_seed(order_seed)
    randomness = torch.Generator().manual_seed(augment_seed)
    resolution = data.resolution
    augment = Augment(
        padding=scaled_pixels(recipe.crop_padding, resolution),
        flip=recipe.flip,
        cutout=scaled_pixels(recipe.cutout, resolution),
        mean=tuple(mean),
        std=tuple(std),
    )
    model.to(device)
    model.train()
    if hasattr(model, "generator"):  # DARTS networks draw drop-path masks from it
        setattr(model, "generator", torch.Generator(device=device).manual_seed(path_seed))  # noqa: B010
    images = data.images.to(device)
    labels = data.labels.to(device)
    optimizer = make_optimizer(model, recipe)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    check_every = CUDA_CHECK_EVERY if amp else 1
    lr = cosine_warmup_lr(
        0, total_steps, lr=recipe.lr, warmup_steps=warmup_steps, min_lr=recipe.min_lr
    )
    if on_epoch is not None:
        on_epoch(EpochReport(0, recipe.epochs, math.nan, math.nan, lr, 0.0))
    step = 0
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for epoch in range(recipe.epochs):
        if hasattr(model, "drop_path_prob"):
            setattr(model, "drop_path_prob", recipe.drop_path_prob * epoch / recipe.epochs)  # noqa: B010
        perm = torch.randperm(n, generator=order).to(device)
        loss_sum.zero_()
        correct.zero_()
        seen = 0
        for i in range(steps_per_epoch):
            index = perm[i * batch : (i + 1) * batch]
            x = augment(images[index], randomness)
            y = labels[index]
            lr = cosine_warmup_lr(
                step, total_steps, lr=recipe.lr, warmup_steps=warmup_steps, min_lr=recipe.min_lr
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                logits, loss = _forward_loss(model, x, y, recipe)
            optimizer.zero_grad(set_to_none=True)
            scaled: torch.Tensor = scaler.scale(loss)
            scaled.backward()
            if recipe.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            loss_sum += loss.detach().float() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
            if step % check_every == 0 or i == steps_per_epoch - 1:
                _check_finite(loss_sum, epoch, i, steps_per_epoch, lr)
        if on_epoch is not None:
            on_epoch(
                EpochReport(
                    epoch + 1,
                    recipe.epochs,
                    float(loss_sum) / seen,
                    100.0 * float(correct) / seen,
                    lr,
                    time.perf_counter() - started,
                )
            )
    return TrainResult(
        train_loss=float(loss_sum) / seen,
        train_acc=100.0 * float(correct) / seen,
        epochs=recipe.epochs,
        steps=step,
        seconds=time.perf_counter() - started,
    )


def _forward_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe
) -> tuple[torch.Tensor, torch.Tensor]:
    out = model(x)
    aux = None
    if isinstance(out, (tuple, list)):
        out, aux = out[0], (out[1] if len(out) > 1 else None)
    loss = F.cross_entropy(out, y, label_smoothing=recipe.label_smoothing)
    if aux is not None and recipe.auxiliary_weight > 0:
        aux_loss = F.cross_entropy(aux, y, label_smoothing=recipe.label_smoothing)
        loss = loss + recipe.auxiliary_weight * aux_loss
    return out, loss


def _check_finite(total: torch.Tensor, epoch: int, index: int, steps: int, lr: float) -> None:
    value = float(total)
    if math.isfinite(value):
        return
    raise TrainingDivergedError(
        f"Training diverged: the loss became {value} in epoch {epoch + 1} (by step "
        f"{index + 1} of {steps}) at learning rate {lr:.3g}; lower the learning rate, add "
        "warm-up or gradient clipping (grad_clip), or check the data."
    )


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    data: ImageData,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str = "cpu",
    batch_size: int = 512,
) -> float:
    """Top-1 accuracy of ``model`` on ``data`` in percent (evaluation mode, normalised
    images, no augmentation); NaN for no images."""
    device = torch.device(device)
    if len(data) == 0:
        return math.nan
    training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    try:
        for start in range(0, len(data), batch_size):
            x = normalize(data.images[start : start + batch_size].to(device), mean, std)
            y = data.labels[start : start + batch_size].to(device)
            with torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda"):
                out = model(x)
            if isinstance(out, (tuple, list)):
                out = out[0]
            correct += (out.argmax(1) == y).sum()
    finally:
        model.train(training)
    return 100.0 * float(correct) / len(data)
