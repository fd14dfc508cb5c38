"""Transformable Architecture Search (TAS): the channel number of every convolution searched
as a learned distribution, then the pruned network trained by knowledge distillation.

Dong, X. and Yang, Y. "Network Pruning via Transformable Architecture Search." NeurIPS 2019,
arXiv:1905.09717 (reference code: D-X-Y/AutoDL-Projects, ``lib/models/shape_searchs``).

What is implemented, by section of the paper:

* **Width distributions** (Section 3.1): convolution ``i`` of the unpruned network has
  candidate widths ``C_i`` (:func:`width_choices`: the fractions :data:`WIDTH_RATIOS` of its
  full width, TAS's code's 0.3, 0.4, ..., 1.0) and learnable logits ``alpha_i``; its width
  distribution is ``p_i = softmax(alpha_i)``.
* **Gumbel-softmax sampling and aggregation** (Eq. 2-3): the logits are perturbed,
  ``h = (log p_i + g) / tau`` with Gumbel noise ``g``, ``I = 2`` distinct widths are drawn
  from ``softmax(h)`` and weighted by the softmax of their perturbed logits
  (:func:`gumbel_pick`); the layer's output is the weighted sum of the feature maps of the
  sampled widths (one convolution, its first ``c`` filters, a batch norm per width).
* **Channel-wise interpolation** (Eq. 4, :func:`channel_wise_interpolation`): feature maps of
  different widths are aligned to the largest sampled width by
  ``CWI(O, C)_j = mean(O_{s:e-1})``, ``s = floor(j c / C)``, ``e = ceil((j + 1) c / C)``.
* **The cost loss** (Eq. 5-6, :func:`cost_loss`): the expected cost ``E_cost`` of the
  distributions (each convolution's cost at the expected input and output widths
  ``E[c] = sum_j p_ij c_ij``), the cost ``F_cost`` of the most probable widths and the target
  ``R`` with tolerance ``t``: ``log E_cost`` when ``F_cost > (1 + t) R``, ``-log E_cost``
  when ``F_cost < (1 - t) R``, else 0; the architecture loss is the cross-entropy plus
  ``lambda_cost`` (2) times it. The cost is FLOPs (the paper) or parameters (``cost="params"``,
  for a target share of remaining weights, which is how this library compares TAS with the
  sparse searches).
* **Search** (Algorithm 1): the training images are split in two halves; each step updates
  the weights on a batch of one half (sampled widths, cross-entropy) and the logits on a
  batch of the other (Adam), with ``tau`` decreasing linearly from 10 to 0.1.
* **Searched widths**: the most probable width of each convolution (:attr:`TASResult.widths`).
* **Knowledge transfer** (Section 3.3, Eq. 7, :func:`kd_loss`, :func:`train_pruned`): the
  pruned network is trained from scratch with
  ``lambda CE(z, y) + (1 - lambda) * (-sum softmax(t / T) log softmax(z / T))``,
  ``lambda = 0.9``, ``T = 4``, ``t`` the unpruned network's logits.

Where this differs: only widths are searched, not depth (the paper also searches the number
of blocks per stage; left out for lack of time in this issue). Shortcut convolutions share the
width choice of their block's second convolution (as TAS's code); a stride-1 block whose
searched input and output widths differ gets a 1x1 shortcut in the pruned network
(:mod:`nasforge.ops.cifar_resnet`), whose cost ``F_cost`` counts and ``E_cost`` does not.
The paper searches 600 epochs on CIFAR; the defaults here are the paper's rates and weights,
the epochs are the caller's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidConfigError, unknown_name_message
from nasforge.ops.cifar_resnet import (
    WIDTH_RATIOS,
    CifarResNet,
    ResNetLayout,
    TASResNet,
    channel_wise_interpolation,
    gumbel_pick,
    width_choices,
)
from nasforge.train.augment import Augment
from nasforge.train.data import ImageData, split_train_valid
from nasforge.train.recipe import Recipe, cosine_warmup_lr
from nasforge.train.trainer import derive_seeds, make_optimizer, seeded

__all__ = [
    "COSTS",
    "WIDTH_RATIOS",
    "PrunedTraining",
    "TASEpoch",
    "TASResNet",
    "TASResult",
    "channel_wise_interpolation",
    "check_ratio",
    "cost_loss",
    "gumbel_pick",
    "kd_loss",
    "tas_search",
    "train_pruned",
    "width_choices",
]

#: The costs a target can be set on.
COSTS = ("flops", "params")


def check_ratio(ratio: float, name: str = "target_ratio") -> float:
    """``ratio`` as a float in (0, 1].

    Raises:
        InvalidConfigError: Not a number in (0, 1].
    """
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < ratio <= 1.0:
        raise InvalidConfigError(
            f"{name} is the share of the unpruned network's cost to keep, a number in (0, 1] "
            f"(e.g. 0.5 keeps half), got {ratio!r}."
        )
    return float(ratio)


def cost_loss(
    expected: torch.Tensor, actual: float, target: float, tolerance: float = 0.05
) -> torch.Tensor:
    """TAS's cost loss (Eq. 6): ``log(expected)`` when ``actual > (1 + tolerance) target``,
    ``-log(expected)`` when ``actual < (1 - tolerance) target``, else 0.

    Example:
        >>> round(float(cost_loss(torch.tensor(math.e), actual=2.0, target=1.0)), 6)
        1.0
        >>> float(cost_loss(torch.tensor(3.0), actual=1.02, target=1.0))
        0.0
    """
    if actual > (1 + tolerance) * target:
        return torch.log(expected)
    if actual < (1 - tolerance) * target:
        return -torch.log(expected)
    return expected.new_zeros(())


def kd_loss(
    logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: float = 0.9,
    temperature: float = 4.0,
) -> torch.Tensor:
    """TAS's knowledge-distillation loss (Eq. 7): ``weight`` times the cross-entropy with the
    labels plus ``1 - weight`` times the cross-entropy between the teacher's and the
    student's softened outputs at ``temperature`` (mean over the batch)."""
    soft = F.softmax(teacher_logits.detach() / temperature, dim=1)
    match = -(soft * F.log_softmax(logits / temperature, dim=1)).sum(1).mean()
    return weight * F.cross_entropy(logits, labels) + (1 - weight) * match


@dataclass(frozen=True)
class TASEpoch:
    """The state of a TAS search after an epoch (epoch 0: before training).

    Attributes:
        epoch: Epochs done.
        tau: The Gumbel-softmax temperature of the epoch.
        expected_ratio: ``E_cost`` over the unpruned network's cost.
        argmax_ratio: ``F_cost`` (the most probable widths) over the unpruned cost.
        mean_width_ratio: Mean over convolutions of the expected width over the full width.
        widths: The most probable widths.
    """

    epoch: int
    tau: float
    expected_ratio: float
    argmax_ratio: float
    mean_width_ratio: float
    widths: tuple[int, ...]


@dataclass(frozen=True)
class TASResult:
    """A TAS search's outcome.

    Attributes:
        widths: The searched width of every convolution (the most probable ones).
        cost: ``"flops"`` or ``"params"``.
        target_ratio: The target share of the unpruned network's cost.
        cost_ratio: The searched network's cost over the unpruned network's.
        history: One :class:`TASEpoch` per epoch, epoch 0 first.
        images_seen: Training images passed forward and backward (weights and logits steps).
        seconds: Wall time of the search.
    """

    widths: tuple[int, ...]
    cost: str
    target_ratio: float
    cost_ratio: float
    history: tuple[TASEpoch, ...]
    images_seen: int
    seconds: float


def _cost_of(layout: ResNetLayout, widths: Sequence[int], cost: str) -> int:
    return layout.flops(widths) if cost == "flops" else layout.params(widths)


def _check_cost(cost: str) -> None:
    if cost not in COSTS:
        raise InvalidConfigError(unknown_name_message("TAS cost", cost, COSTS))


def _epoch_state(net: TASResNet, epoch: int, tau: float, cost: str, full_cost: float) -> TASEpoch:
    with torch.no_grad():
        expected = float(net.expected_cost(cost)) / full_cost
        widths = net.argmax_widths()
        shares = [float(e) / f for e, f in zip(net.expected_widths(), net.full, strict=True)]
    return TASEpoch(
        epoch=epoch,
        tau=tau,
        expected_ratio=expected,
        argmax_ratio=_cost_of(net.layout, widths, cost) / full_cost,
        mean_width_ratio=sum(shares) / len(shares),
        widths=widths,
    )


def tas_search(
    layout: ResNetLayout,
    data: ImageData,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    target_ratio: float,
    recipe: Recipe,
    cost: str = "flops",
    arch_lr: float = 1e-3,
    arch_weight_decay: float = 1e-3,
    lambda_cost: float = 2.0,
    tolerance: float = 0.05,
    tau_range: tuple[float, float] = (10.0, 0.1),
    ratios: Sequence[float] = WIDTH_RATIOS,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> TASResult:
    """Search the widths of the CIFAR ResNet of ``layout`` for ``target_ratio`` of its cost.

    Args:
        layout: The unpruned network's shape (its widths are the maxima).
        data: Training images; split in two class-balanced halves (weights / logits).
        mean, std: Normalisation of the images.
        target_ratio: The share of the unpruned network's cost to keep (``R`` over the full
            cost), in (0, 1].
        recipe: The weights' optimiser, learning rate, epochs, batch size and augmentation
            (SGD with cosine schedule in the paper).
        cost: ``"flops"`` (the paper) or ``"params"``.
        arch_lr, arch_weight_decay: Adam on the logits (betas 0.5, 0.999).
        lambda_cost: Weight of the cost loss (2 in the paper).
        tolerance: ``t`` of the cost loss.
        tau_range: The temperature's first and last value (linear in between).
        ratios: Candidate widths as fractions of the full widths.
        seed: Seed of the initial weights, the split, the batches and the Gumbel noise.
        device: Where to search.

    Raises:
        InvalidConfigError: A target outside (0, 1], an unknown cost, fewer than 4 images.

    Example:
        >>> from nasforge.train import Recipe, SyntheticImages
        >>> data = SyntheticImages(num_classes=3, n_train=48, n_test=6, size=8).load()
        >>> layout = ResNetLayout(blocks=1, base=4, num_classes=3, resolution=8)
        >>> result = tas_search(layout, data.train, mean=data.mean, std=data.std,
        ...                     target_ratio=0.5, recipe=Recipe(lr=0.05, epochs=2,
        ...                     batch_size=16), arch_lr=0.05)
        >>> len(result.widths), [h.epoch for h in result.history]
        (7, [0, 1, 2])
        >>> net, record = train_pruned(result.widths, CifarResNet(layout), data.train,
        ...                            layout=layout, mean=data.mean, std=data.std,
        ...                            recipe=Recipe(lr=0.05, epochs=1, batch_size=16))
        >>> net.widths == result.widths, record.kd, record.images_seen
        (True, True, 48)
    """
    target_ratio = check_ratio(target_ratio)
    _check_cost(cost)
    if len(data) < 4:
        raise InvalidConfigError(f"TAS needs at least 4 training images, got {len(data)}.")
    started = time.perf_counter()
    device = torch.device(device)
    init_seed, split_seed, order_seed, noise_seed = derive_seeds(seed, 4)
    with seeded(init_seed):
        net = TASResNet(layout, ratios)
    net.to(device)
    weights_half, arch_half = split_train_valid(data, len(data) // 2, split_seed)
    full_cost = float(_cost_of(layout, net.full, cost))
    target = target_ratio * full_cost
    weight_opt = make_optimizer(nn.ParameterList(net.weight_parameters()), recipe)
    arch_opt = torch.optim.Adam(
        net.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999), weight_decay=arch_weight_decay
    )
    augment = Augment(
        padding=recipe.crop_padding * layout.resolution // 32,
        flip=recipe.flip,
        mean=tuple(mean),
        std=tuple(std),
    )
    order = torch.Generator().manual_seed(order_seed)
    noise = torch.Generator().manual_seed(noise_seed)
    batch = min(recipe.batch_size, len(weights_half), len(arch_half))
    steps = min(len(weights_half), len(arch_half)) // batch
    total = steps * recipe.epochs
    tau_first, tau_last = tau_range
    history = [_epoch_state(net, 0, tau_first, cost, full_cost)]
    seen = 0
    step = 0
    for epoch in range(recipe.epochs):
        tau = tau_first - (tau_first - tau_last) * epoch / max(1, recipe.epochs - 1)
        perm_w = torch.randperm(len(weights_half), generator=order)
        perm_a = torch.randperm(len(arch_half), generator=order)
        net.train()
        for i in range(steps):
            lr = cosine_warmup_lr(step, total, lr=recipe.lr, warmup_steps=0, min_lr=recipe.min_lr)
            for group in weight_opt.param_groups:
                group["lr"] = lr
            index = perm_w[i * batch : (i + 1) * batch]
            x = augment(weights_half.images[index], order).to(device)
            y = weights_half.labels[index].to(device)
            loss = F.cross_entropy(net(x, net.sample(tau, noise)), y)
            weight_opt.zero_grad(set_to_none=True)
            arch_opt.zero_grad(set_to_none=True)
            loss.backward()
            weight_opt.step()
            index = perm_a[i * batch : (i + 1) * batch]
            x = augment(arch_half.images[index], order).to(device)
            y = arch_half.labels[index].to(device)
            actual = _cost_of(layout, net.argmax_widths(), cost)
            expected = net.expected_cost(cost) / full_cost
            arch_loss = F.cross_entropy(
                net(x, net.sample(tau, noise)), y
            ) + lambda_cost * cost_loss(expected, actual, target, tolerance)
            weight_opt.zero_grad(set_to_none=True)
            arch_opt.zero_grad(set_to_none=True)
            arch_loss.backward()
            arch_opt.step()
            value = float(arch_loss.detach())
            if not math.isfinite(value):
                raise InvalidConfigError(
                    f"The TAS search diverged in epoch {epoch + 1} (loss {value}); lower the "
                    "learning rates."
                )
            seen += 2 * len(y)
            step += 1
        history.append(_epoch_state(net, epoch + 1, tau, cost, full_cost))
    widths = net.argmax_widths()
    return TASResult(
        widths=widths,
        cost=cost,
        target_ratio=target_ratio,
        cost_ratio=_cost_of(layout, widths, cost) / full_cost,
        history=tuple(history),
        images_seen=seen,
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class PrunedTraining:
    """How a pruned network was trained.

    Attributes:
        kd: Whether the loss was :func:`kd_loss` (else cross-entropy).
        epochs: Epochs trained.
        images_seen: Training images passed forward and backward.
        train_loss, train_acc: Mean loss and accuracy (percent) of the last epoch.
        seconds: Wall time.
    """

    kd: bool
    epochs: int
    images_seen: int
    train_loss: float
    train_acc: float
    seconds: float


def train_pruned(
    widths: Sequence[int],
    teacher: nn.Module | None,
    data: ImageData,
    *,
    layout: ResNetLayout,
    recipe: Recipe,
    mean: Sequence[float],
    std: Sequence[float],
    kd: bool = True,
    kd_weight: float = 0.9,
    temperature: float = 4.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[CifarResNet, PrunedTraining]:
    """Train the pruned network of ``widths`` from scratch, by knowledge distillation from
    ``teacher`` (the unpruned network, kept in evaluation mode) when ``kd`` (TAS Section 3.3).

    Args:
        widths: The pruned widths (e.g. :attr:`TASResult.widths`).
        teacher: The trained unpruned network (needed when ``kd``).
        data: Training images.
        layout: The network's shape.
        recipe: Optimiser, learning rate, epochs, batch size, augmentation.
        mean, std: Normalisation of the images.
        kd: Distil from ``teacher`` (else plain cross-entropy).
        kd_weight, temperature: ``lambda`` and ``T`` of :func:`kd_loss` (0.9 and 4).
        seed: Seed of the initial weights, the batches and the augmentation.
        device: Where to train.

    Returns:
        The trained network and how it was trained.

    Raises:
        InvalidConfigError: ``kd`` without a teacher, ``kd_weight`` outside [0, 1], a
            non-positive temperature, widths of the wrong length, fewer than 2 images.
    """
    if kd and teacher is None:
        raise InvalidConfigError("train_pruned with kd=True needs the unpruned teacher network.")
    if not 0.0 <= kd_weight <= 1.0 or temperature <= 0:
        raise InvalidConfigError(
            f"kd_weight must be in [0, 1] and temperature > 0, got {kd_weight!r} and "
            f"{temperature!r}."
        )
    if len(data) < 2:
        raise InvalidConfigError(f"Training needs at least 2 images, got {len(data)}.")
    started = time.perf_counter()
    device = torch.device(device)
    init_seed, order_seed = derive_seeds(seed, 2)
    with seeded(init_seed):
        model = CifarResNet(layout, widths)
    model.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    optimizer = make_optimizer(model, recipe)
    augment = Augment(
        padding=recipe.crop_padding * layout.resolution // 32,
        flip=recipe.flip,
        mean=tuple(mean),
        std=tuple(std),
    )
    order = torch.Generator().manual_seed(order_seed)
    batch = min(recipe.batch_size, len(data))
    steps = len(data) // batch
    total = steps * recipe.epochs
    step = seen = 0
    loss_sum = correct = count = 0.0
    for _ in range(recipe.epochs):
        perm = torch.randperm(len(data), generator=order)
        model.train()
        loss_sum = correct = count = 0.0
        for i in range(steps):
            lr = cosine_warmup_lr(step, total, lr=recipe.lr, warmup_steps=0, min_lr=recipe.min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            index = perm[i * batch : (i + 1) * batch]
            x = augment(data.images[index], order).to(device)
            y = data.labels[index].to(device)
            logits = model(x)
            if kd:
                assert teacher is not None
                with torch.no_grad():
                    target = teacher(x)
                loss = kd_loss(logits, target, y, weight=kd_weight, temperature=temperature)
            else:
                loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
            correct += float((logits.argmax(1) == y).sum())
            count += len(y)
    return model, PrunedTraining(
        kd=kd,
        epochs=recipe.epochs,
        images_seen=seen,
        train_loss=loss_sum / max(count, 1),
        train_acc=100.0 * correct / max(count, 1),
        seconds=time.perf_counter() - started,
    )
