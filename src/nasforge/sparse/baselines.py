"""The baselines every sparse search must beat: uniform magnitude pruning, and random search
over sparse networks at the same target and the same training cost.

* **Uniform magnitude pruning** (:func:`magnitude_pruning`): train the dense network
  (:func:`train_dense`), prune every layer to the target sparsity by weight magnitude with
  :func:`nasforge.ops.sparse.prune_magnitude` (first convolution and classifier dense), then
  fine-tune with the masks fixed. Zhu, M. and Gupta, S. "To prune, or not to prune: exploring
  the efficacy of pruning for model compression." arXiv:1710.01878; Gale, T., Elsen, E. and
  Hooker, S. "The State of Sparsity in Deep Neural Networks." arXiv:1902.09574, which finds
  it as good as more elaborate schemes.
* **Random search** (:func:`random_sparse_search`), the baseline of the NAS literature (Li,
  L. and Talwalkar, A. "Random Search and Reproducibility for Neural Architecture Search."
  UAI 2019, arXiv:1902.07638), which TAS also compares with (Dong and Yang, NeurIPS 2019,
  arXiv:1905.09717, Section 4.2, Figure 3): draw ``n_candidates`` networks that meet the
  target, train each briefly, keep the best by validation accuracy and train it from its
  initial weights like the other methods' final networks. Two kinds of candidates:
  ``"allocation"`` (unstructured: a random per-layer sparsity allocation whose weights total
  exactly the target, :func:`random_allocation`, masks by magnitude at initialisation, i.e.
  random) and ``"width"`` (structured: random per-convolution widths whose parameters are
  within a tolerance of the target share, :func:`random_widths`).

Cost is counted as training images passed forward and backward (``images_seen``) and wall
time, so that the benchmark (``benchmarks/sparse_search.py``) can give every method the same
budget.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasforge.errors import InvalidConfigError, unknown_name_message
from nasforge.ops.cifar_resnet import CifarResNet, ResNetLayout, full_widths
from nasforge.ops.sparse import (
    check_sparsity,
    masked_layers,
    prune_magnitude,
    sparsify,
    sparsity_of,
)
from nasforge.train.data import ImageData, split_train_valid
from nasforge.train.recipe import Recipe
from nasforge.train.trainer import derive_seeds, evaluate_accuracy, seeded, train

__all__ = [
    "KINDS",
    "RandomSearchResult",
    "SparseRun",
    "magnitude_pruning",
    "random_allocation",
    "random_sparse_search",
    "random_widths",
    "train_dense",
    "weight_sparsity",
]

#: Kinds of random-search candidates.
KINDS = ("allocation", "width")


@dataclass(frozen=True)
class SparseRun:
    """How a sparse (or dense) network was obtained.

    Attributes:
        method: ``"dense"``, ``"magnitude"``, ``"random-allocation"``, ``"random-width"``...
        sparsity: Share of zero weights among the network's prunable layers
            (:func:`nasforge.ops.sparse.sparsity_of`; 0 for a dense or narrower network).
        images_seen: Training images passed forward and backward by this step alone.
        seconds: Wall time of this step.
    """

    method: str
    sparsity: float
    images_seen: int
    seconds: float


@dataclass(frozen=True)
class RandomSearchResult:
    """A random search's outcome.

    Attributes:
        kind: ``"allocation"`` or ``"width"``.
        best: The index of the chosen candidate.
        candidates: Per candidate, its configuration (per-layer sparsities or widths).
        valid_acc: Per candidate, its validation accuracy after the brief training.
        images_seen: Training images seen by the candidates and the final training.
        seconds: Wall time of the whole search.
    """

    kind: str
    best: int
    candidates: tuple[tuple[float, ...], ...]
    valid_acc: tuple[float, ...]
    images_seen: int
    seconds: float


def weight_sparsity(model: nn.Module, dense_weights: int) -> float:
    """``1 - (non-zero weights of the convolutions and linear layers) / dense_weights``: the
    share of weights removed against the unpruned network, whether by masks or by narrower
    layers (masked layers count ``weight * mask``)."""
    masked = {id(m): m for _, m in masked_layers(model)}
    nonzero = 0
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            layer = masked.get(id(module))
            weight = layer.masked_weight() if layer is not None else module.weight
            nonzero += int(torch.count_nonzero(weight.detach()))
    return 1.0 - nonzero / dense_weights


def train_dense(
    layout: ResNetLayout,
    data: ImageData,
    *,
    recipe: Recipe,
    mean: Sequence[float],
    std: Sequence[float],
    widths: Sequence[int] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[CifarResNet, SparseRun]:
    """Build the CIFAR ResNet of ``layout`` (``widths``, default full) from ``seed`` and train
    it with ``recipe`` (:func:`nasforge.train.train`)."""
    init_seed, train_seed = derive_seeds(seed, 2)
    with seeded(init_seed):
        model = CifarResNet(layout, widths)
    result = train(model, data, recipe, mean=mean, std=std, seed=train_seed, device=device)
    return model, SparseRun("dense", 0.0, len(data) * recipe.epochs, result.seconds)


def magnitude_pruning(
    dense: nn.Module,
    data: ImageData,
    *,
    sparsity: float,
    recipe: Recipe,
    mean: Sequence[float],
    std: Sequence[float],
    scope: str = "layer",
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, SparseRun]:
    """Prune the trained ``dense`` network by magnitude at ``sparsity`` (a copy; the first
    convolution and the classifier stay dense) and fine-tune it with ``recipe``.

    Raises:
        InvalidConfigError: A sparsity outside :data:`nasforge.ops.sparse.SPARSITY_LEVELS`
            (they are listed), an unknown scope.
    """
    sparsity = check_sparsity(sparsity)
    pruned = prune_magnitude(dense, sparsity, scope=scope)
    result = train(pruned, data, recipe, mean=mean, std=std, seed=seed, device=device)
    run = SparseRun("magnitude", sparsity_of(pruned), len(data) * recipe.epochs, result.seconds)
    return pruned, run


def random_allocation(
    sizes: Sequence[int], sparsity: float, rng: np.random.Generator
) -> tuple[float, ...]:
    """Random per-layer sparsities of layers of ``sizes`` weights whose kept weights total
    exactly ``round((1 - sparsity) * sum(sizes))``.

    Each layer draws a density ``u ~ U(0.02, 1)``; the densities are scaled by the one factor
    (capped at 1 per layer) that keeps the target number of weights, rounded to whole weights,
    and the rounding difference is spread over the layers with room for it.

    Example:
        >>> shares = random_allocation([100, 400, 1000], 0.75, np.random.default_rng(0))
        >>> round(sum((1 - s) * n for s, n in zip(shares, [100, 400, 1000])))
        375
    """
    sparsity = check_sparsity(sparsity)
    n = np.asarray(sizes, dtype=np.int64)
    if n.size == 0 or (n < 1).any():
        raise InvalidConfigError(f"random_allocation needs positive layer sizes, got {sizes}.")
    target = round(float((1 - sparsity) * int(n.sum())))
    u = rng.uniform(0.02, 1.0, size=n.size)
    low, high = 0.0, 1.0 / float(u.min())
    for _ in range(100):
        mid = (low + high) / 2
        if float((np.minimum(1.0, mid * u) * n).sum()) < target:
            low = mid
        else:
            high = mid
    keep = np.minimum(n, np.round(np.minimum(1.0, high * u) * n).astype(np.int64))
    keep = np.maximum(keep, 1)
    order = rng.permutation(n.size)
    while int(keep.sum()) != target:
        step = 1 if int(keep.sum()) < target else -1
        moved = False
        for i in order:
            if int(keep.sum()) == target:
                break
            if 1 <= keep[i] + step <= n[i]:
                keep[i] += step
                moved = True
        if not moved:
            raise InvalidConfigError(f"Cannot keep {target} weights in layers of sizes {sizes}.")
    return tuple(float(1 - k / s) for k, s in zip(keep, n, strict=True))


def random_widths(
    layout: ResNetLayout,
    target_ratio: float,
    rng: np.random.Generator,
    *,
    tolerance: float = 0.05,
    tries: int = 1000,
) -> tuple[int, ...]:
    """Random widths of the CIFAR ResNet of ``layout`` whose parameters are within
    ``tolerance`` (relative) of ``target_ratio`` times the full network's.

    Each convolution draws a share ``u ~ U(0.1, 1)`` of its full width; the shares are scaled
    by the one factor (capped at 1) that meets the target, and the draw is kept when the
    rounded widths' parameters are within the tolerance.

    Raises:
        InvalidConfigError: A target outside (0, 1], or no draw within the tolerance.
    """
    from nasforge.sparse.tas import check_ratio

    target_ratio = check_ratio(target_ratio)
    full = np.asarray(full_widths(layout), dtype=np.float64)
    total = layout.params(full_widths(layout))

    def widths_at(scale: float, u: np.ndarray) -> tuple[int, ...]:
        return tuple(max(1, int(np.rint(w))) for w in np.minimum(1.0, scale * u) * full)

    for _ in range(tries):
        u = rng.uniform(0.1, 1.0, size=full.size)
        low, high = 0.0, 1.0 / float(u.min())
        for _ in range(60):
            mid = (low + high) / 2
            if layout.params(widths_at(mid, u)) < target_ratio * total:
                low = mid
            else:
                high = mid
        for scale in (low, high):
            widths = widths_at(scale, u)
            if abs(layout.params(widths) / total - target_ratio) <= tolerance * target_ratio:
                return widths
    raise InvalidConfigError(
        f"No random widths within {tolerance:.0%} of {target_ratio:.3f} of the parameters in "
        f"{tries} draws; raise the tolerance or widen the network."
    )


def _candidate(layout: ResNetLayout, kind: str, config: Sequence[float], seed: int) -> nn.Module:
    """The candidate network of ``config`` at its initial weights (from ``seed``)."""
    if kind == "width":
        with seeded(seed):
            return CifarResNet(layout, [int(w) for w in config])
    with seeded(seed):
        model: nn.Module = CifarResNet(layout)
    layers = _allocation_layers(model)
    sparsify(model, 0.0, skip=[n for n, _ in _prunable(model) if n not in layers])
    for (_, layer), share in zip(masked_layers(model), config, strict=True):
        layer.prune(share)
    return model


def _prunable(model: nn.Module) -> list[tuple[str, nn.Conv2d | nn.Linear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _allocation_layers(model: nn.Module) -> list[str]:
    """The layers a sparsity allocation covers: those magnitude pruning prunes (all
    convolutions and linear layers but the first convolution and the classifier)."""
    names = [n for n, _ in _prunable(model)]
    return names[1:-1]


def random_sparse_search(
    layout: ResNetLayout,
    data: ImageData,
    *,
    sparsity: float,
    mean: Sequence[float],
    std: Sequence[float],
    kind: str = "allocation",
    n_candidates: int = 4,
    candidate_recipe: Recipe,
    final_recipe: Recipe,
    valid_size: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, RandomSearchResult]:
    """Random search for a sparse CIFAR ResNet at ``sparsity``.

    ``data`` is split into training images and ``valid_size`` validation images (default a
    fifth); each of ``n_candidates`` random networks meeting the target (see the module
    docstring) is trained with ``candidate_recipe`` and scored on the validation images; the
    best is rebuilt at its initial weights and trained on all of ``data`` with
    ``final_recipe``.

    Returns:
        The trained chosen network and the search's record.

    Raises:
        InvalidConfigError: A sparsity outside :data:`nasforge.ops.sparse.SPARSITY_LEVELS`
            (listed), an unknown kind, fewer than one candidate.
    """
    sparsity = check_sparsity(sparsity)
    if kind not in KINDS:
        raise InvalidConfigError(unknown_name_message("random-search kind", kind, KINDS))
    if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 1:
        raise InvalidConfigError(f"n_candidates must be a positive integer, got {n_candidates!r}.")
    started = time.perf_counter()
    split_seed, draw_seed, *seeds = derive_seeds(seed, 2 + 2 * n_candidates + 1)
    fit, valid = split_train_valid(data, valid_size or max(1, len(data) // 5), split_seed)
    rng = np.random.default_rng(draw_seed)
    with seeded(0):  # only its layer sizes are read; leave the global generator alone
        reference = CifarResNet(layout)
    layers = dict(_prunable(reference))
    sizes = [layers[n].weight.numel() for n in _allocation_layers(reference)]
    configs: list[tuple[float, ...]] = []
    scores: list[float] = []
    seen = 0
    for c in range(n_candidates):
        if kind == "width":
            config: tuple[float, ...] = tuple(
                float(w) for w in random_widths(layout, 1.0 - sparsity, rng)
            )
        else:
            config = random_allocation(sizes, sparsity, rng)
        model = _candidate(layout, kind, config, seeds[2 * c])
        train(
            model, fit, candidate_recipe, mean=mean, std=std, seed=seeds[2 * c + 1], device=device
        )
        seen += len(fit) * candidate_recipe.epochs
        configs.append(config)
        scores.append(evaluate_accuracy(model, valid, mean=mean, std=std, device=device))
    best = int(np.argmax(scores))
    model = _candidate(layout, kind, configs[best], seeds[2 * best])
    train(model, data, final_recipe, mean=mean, std=std, seed=seeds[-1], device=device)
    seen += len(data) * final_recipe.epochs
    return model, RandomSearchResult(
        kind=kind,
        best=best,
        candidates=tuple(configs),
        valid_acc=tuple(scores),
        images_seen=seen,
        seconds=time.perf_counter() - started,
    )
