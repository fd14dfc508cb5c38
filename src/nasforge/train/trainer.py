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
from typing import Any

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

    The FBNetV3 recipe settings (:class:`~nasforge.train.recipe.Recipe`): with
    ``recipe.mixup`` each batch is mixed with a shuffled copy of itself and the loss mixed
    alike (the training accuracy then counts each image's two labels in the same proportion);
    with ``recipe.ema`` an exponential moving average of the weights is kept and copied into
    ``model`` at the end, so the averaged weights are the trained network; with
    ``recipe.dropout`` the input of the classifier (the last linear layer, an auxiliary head's
    left out) is dropped during training by a hook removed at the end, so the network's
    structure and state dict do not change. Their randomness comes from ``seed`` too.

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
    batch, steps_per_epoch, total_steps, warmup_steps = batch_plan(n, recipe)
    # the first three seeds are those of the runs before mixup and dropout (same streams)
    order_seed, augment_seed, path_seed, mix_seed, drop_seed = derive_seeds(seed, 5)
    order = torch.Generator().manual_seed(order_seed)
    randomness = torch.Generator().manual_seed(augment_seed)
    mixing = _Mixup(recipe.mixup, mix_seed)
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
    average = _WeightAverage(model, recipe.ema) if recipe.ema > 0 else None
    hook = _classifier_dropout(model, recipe.dropout, drop_seed, device)
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
    correct = torch.zeros((), device=device)
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
            x, y_mixed, lam = mixing(x, y)
            with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                logits, loss = _forward_loss(model, x, y, recipe, y_mixed, lam)
            optimizer.zero_grad(set_to_none=True)
            scaled: torch.Tensor = scaler.scale(loss)
            scaled.backward()
            if recipe.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if average is not None:
                average.update(step)
            step += 1
            loss_sum += loss.detach().float() * len(y)
            predicted = logits.detach().argmax(1)
            if y_mixed is None:
                correct += (predicted == y).sum()
            else:
                correct += lam * (predicted == y).sum() + (1 - lam) * (predicted == y_mixed).sum()
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
    if hook is not None:
        hook.remove()
    if average is not None:
        average.copy_to(model)
    return TrainResult(
        train_loss=float(loss_sum) / seen,
        train_acc=100.0 * float(correct) / seen,
        epochs=recipe.epochs,
        steps=step,
        seconds=time.perf_counter() - started,
    )


def batch_plan(n: int, recipe: Recipe) -> tuple[int, int, int, int]:
    """The batch size, steps per epoch, total steps and warm-up steps of training on ``n``
    items: batches of ``recipe.batch_size`` (at most ``n``), a last batch of a single item
    dropped (batch norm needs two)."""
    batch = min(recipe.batch_size, n)
    steps_per_epoch = n // batch + (1 if n % batch > 1 else 0)
    return (
        batch,
        steps_per_epoch,
        steps_per_epoch * recipe.epochs,
        round(recipe.warmup_epochs * steps_per_epoch),
    )


def split_outputs(out: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A network's outputs and auxiliary outputs (``None`` without): a network may return
    ``(outputs, aux)``."""
    if isinstance(out, (tuple, list)):
        return out[0], (out[1] if len(out) > 1 else None)
    return out, None


def _forward_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: Recipe,
    y_mixed: torch.Tensor | None = None,
    lam: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    out, aux = split_outputs(model(x))

    def criterion(logits: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
        if y_mixed is None:
            return loss
        other = F.cross_entropy(logits, y_mixed, label_smoothing=recipe.label_smoothing)
        return lam * loss + (1.0 - lam) * other

    loss = criterion(out)
    if aux is not None and recipe.auxiliary_weight > 0:
        loss = loss + recipe.auxiliary_weight * criterion(aux)
    return out, loss


class _Mixup:
    """Mixup of a batch (``alpha = 0``: the batch unchanged): ``lam ~ Beta(alpha, alpha)``
    from a NumPy generator, the partner of each image from a torch permutation, both seeded
    from ``seed``."""

    def __init__(self, alpha: float, seed: int) -> None:
        self.alpha = float(alpha)
        self.rng = np.random.default_rng(seed)
        self.order = torch.Generator().manual_seed(seed)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        if self.alpha <= 0:
            return x, None, 1.0
        lam = float(self.rng.beta(self.alpha, self.alpha))
        perm = torch.randperm(len(y), generator=self.order).to(x.device)
        return lam * x + (1.0 - lam) * x[perm], y[perm], lam


class _WeightAverage:
    """An exponential moving average of a model's parameters, its buffers copied (batch-norm
    statistics are averages already): the decay of step ``t`` is
    ``min(decay, (1 + t) / (10 + t))``."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.model = model
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.params = dict(model.named_parameters())

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        for name, value in self.model.state_dict().items():
            shadow = self.shadow[name]
            if name in self.params and shadow.is_floating_point():
                shadow.mul_(decay).add_(value.detach(), alpha=1.0 - decay)
            else:
                shadow.copy_(value)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)


def _classifier_dropout(
    model: nn.Module, p: float | None, seed: int, device: torch.device
) -> torch.utils.hooks.RemovableHandle | None:
    """A forward pre-hook dropping the input of ``model``'s classifier (its last linear
    layer, auxiliary heads left out) with probability ``p`` in training mode, masks drawn
    from a generator seeded with ``seed``; ``None`` when ``p`` is ``None`` or 0.

    Raises:
        InvalidConfigError: ``p > 0`` and the network has no linear layer.
    """
    if not p:
        return None
    linears = [
        module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and "auxiliary" not in name
    ]
    if not linears:
        raise InvalidConfigError(
            f"Recipe dropout={p} drops the input of the classifier, the network's last linear "
            f"layer, but {type(model).__name__} has none; set dropout=None."
        )
    generator = torch.Generator(device=device).manual_seed(seed)
    keep = 1.0 - float(p)

    def drop(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        if not module.training:
            return inputs
        x = inputs[0]
        mask = torch.empty(x.shape, device=x.device).bernoulli_(keep, generator=generator)
        return (x * mask.to(x.dtype) / keep, *inputs[1:])

    return linears[-1].register_forward_pre_hook(drop)


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
