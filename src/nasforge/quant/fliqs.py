"""FLIQS: one-shot search of per-layer integer and floating-point formats, no retraining.

Dotzel, J., Wu, G., Li, A., Umar, M., Ni, Y., Abdelfattah, M. S., Zhang, Z., Cheng, L.,
Dixon, M. G., Jouppi, N. P., Le, Q. V. and Li, S. "FLIQS: One-Shot Mixed-Precision
Floating-Point and Integer Quantization Search." AutoML Conference 2024, arXiv:2308.03290
(Section 3, the search; its reward and controller follow TuNAS: Bender, G. et al. "Can
Weight Sharing Outperform Random Architecture Search?" CVPR 2020, arXiv:2008.06120).

**One network, every format.** The network's ``Conv2d``/``Linear`` layers become fake-quantized
layers (:mod:`nasforge.ops.quant`) that quantize their weights (per output channel) and their
input activations (per tensor) at the format chosen for the layer; one set of weights is
shared by every format, and a step runs one choice of formats (no branches: the memory of one
network, unlike differentiable searches).

**Phases.** ``warmup_epochs`` of warm-up: the shared weights train with a format drawn
uniformly for each layer at each step, so every format is trained before it is judged; the
controller is not updated. Then the search, until the end of training: at each step

1. the controller's policy draws a format per layer and the shared weights take one SGD step
   on a training batch at those formats;
2. the policy draws a second choice ``alpha``; its accuracy ``Q`` on one batch of held-out
   validation images and its cost ``C`` give TuNAS's absolute reward
   ``r = Q + beta * |C / C_T - 1|`` (:func:`tunas_reward`; ``beta < 0``, ``C_T`` the target);
3. the controller takes one REINFORCE step on the loss
   ``-(r - b) log pi(alpha) - beta_H(t) H(pi)`` (:class:`FormatController`), ``b`` a moving
   average of the rewards and ``H`` the policy's entropy (mean over layers).

**Cosine entropy regularisation.** ``beta_H(t)`` falls from ``entropy_weight`` to 0 along a
half cosine over the search steps (:func:`cosine_entropy_weight`): early on the controller
keeps exploring (low formats are not judged before their weights adapted), and by the end the
policy has converged, so the last steps train the shared weights on the formats finally
chosen: the result is used without retraining.

**The result** is the argmax of the controller with the shared weights, its accuracy measured
after recalibrating the batch-norm statistics and activation ranges at that policy
(:func:`policy_accuracy`). After each search epoch the argmax policy is measured the same way
on the validation images; each is a trial of a study when ``space`` is given (the study's
objective is the reward, its metrics the accuracy and both costs), and the search resumes
from ``checkpoint_dir`` after an interruption.

Costs: ``"model_bits"`` (sum over parameters of count x bits, 32 for float ones) or ``"bops"``
(sum over layers of MACs x weight bits x activation bits), both from
:mod:`nasforge.ops.quant`; per-layer sums, precomputed once.

Where this is our choice or differs from the paper: the paper trains ImageNet networks with
the search over the whole training run on TPUs; here the scale is a CPU's. We could read the
paper's abstract and summary here, not its method section in full, so the details below follow
TuNAS, whose controller FLIQS uses: the logits start at zero (uniform policy), Adam on the
logits, a bias-corrected moving-average baseline updated before the advantage is taken (as
:class:`~nasforge.strategies.reinforce.Reinforce`), accuracy measured on a validation batch in
training mode, warm-up with uniform formats. Activations take the layer's format
(``weights_only=True`` leaves them in float).

Measured (``benchmarks/mixed_precision.py``: a NAS-Bench-201 cell, 16 px, 2,700 CIFAR-10
training images, 5 epochs, controller step 0.5): the searched policies land within 0.1
average bits of their targets with converged policies (entropy below 0.1 nats), their
one-shot accuracies are 2.5 points below the same policies trained alone (4.4 over 8
policies, Kendall 0.71), and at this scale they do not beat uniform int4 trained alone.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.ops.quant import (
    bops,
    calibrate,
    check_precision,
    model_bits,
    quantizable_layers,
    quantize_model,
    quantized_layers,
    set_policy,
)
from nasforge.quant._fliqs_parts import (
    FormatController,
    PolicyEvaluator,
    PolicyRecord,
    cosine_entropy_weight,
    open_study,
    tunas_reward,
)
from nasforge.train.augment import Augment, normalize
from nasforge.train.data import DataSplits, ImageData, split_train_valid, stratified_indices
from nasforge.train.recipe import Recipe, cosine_warmup_lr
from nasforge.train.trainer import derive_seeds, evaluate_accuracy, make_optimizer, scaled_pixels

__all__ = [
    "COSTS",
    "FliqsResult",
    "FormatController",
    "cosine_entropy_weight",
    "fliqs_search",
    "policy_accuracy",
    "tunas_reward",
]

logger = logging.getLogger(__name__)

#: The costs the reward can use.
COSTS = ("model_bits", "bops")
#: Version of the checkpoint layout.
CHECKPOINT_VERSION = 1


# -- costs -------------------------------------------------------------------------------------
class _CostTable:
    """A cost as a sum of per-layer terms: ``base`` (every layer at the first format) plus, for
    each layer, the change its format makes (both costs are sums over layers)."""

    def __init__(
        self, net: nn.Module, precisions: Sequence[str], act: Sequence[str] | None, kind: str,
        input_size: tuple[int, ...],
    ) -> None:  # fmt: skip
        self.kind = kind
        n = len(quantizable_layers(net))
        self.deltas = np.zeros((n, len(precisions)))
        first = [precisions[0]] * n
        self.base = self._measure(net, first, act, input_size)
        for layer in range(n):
            for k in range(1, len(precisions)):
                policy = list(first)
                policy[layer] = precisions[k]
                self.deltas[layer, k] = self._measure(net, policy, act, input_size) - self.base

    def _measure(
        self, net: nn.Module, policy: list[str], act: Sequence[str] | None,
        input_size: tuple[int, ...],
    ) -> float:  # fmt: skip
        set_policy(net, policy, act)
        if self.kind == "bops":
            return float(bops(net, input_size))
        return float(model_bits(net))

    def __call__(self, choices: Sequence[int]) -> float:
        return float(self.base + self.deltas[np.arange(len(choices)), list(choices)].sum())


def _check_cost(cost: str) -> None:
    if cost not in COSTS:
        raise InvalidConfigError(f"Unknown cost {cost!r}; choose from {list(COSTS)}.")


# -- one-shot accuracy ---------------------------------------------------------------------------
def _batches(images: torch.Tensor, mean: Sequence[float], std: Sequence[float], size: int,
             device: torch.device) -> Iterator[torch.Tensor]:  # fmt: skip
    for start in range(0, len(images), size):
        yield normalize(images[start : start + size].to(device), mean, std)


@torch.no_grad()
def recalibrate(net: nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """Batch-norm statistics and activation ranges of ``net`` at its current formats.

    The statistics are recomputed as plain averages over ``batches``; each layer's range is
    the mean over ``batches`` of the batch's exact range (:func:`nasforge.ops.quant.calibrate`
    on each batch alone), as training keeps a moving average of per-batch ranges. (One
    exact range over all the images, wider, cost 3 points of one-shot accuracy at 2-4 bits
    in ``benchmarks/mixed_precision.py``.)
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    training = net.training
    net.train()
    try:
        for x in batches:
            net(x)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        net.train(training)
    layers = quantized_layers(net)
    low = [torch.zeros(()) for _ in layers]
    high = [torch.zeros(()) for _ in layers]
    for x in batches:
        calibrate(net, [x])
        for i, (_, layer) in enumerate(layers):
            low[i] = low[i] + layer.act_min.cpu()
            high[i] = high[i] + layer.act_max.cpu()
    for (_, layer), lo, hi in zip(layers, low, high, strict=True):
        layer.act_min.copy_(lo / len(batches))
        layer.act_max.copy_(hi / len(batches))


def policy_accuracy(
    supernet: nn.Module,
    policy: str | Sequence[str],
    data: DataSplits,
    *,
    images: ImageData | None = None,
    calibration_images: int = 512,
    calibration_batch: int = 64,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    act_policy: str | Sequence[str] | None = None,
    seed: int = 0,
) -> float:
    """Top-1 accuracy (percent) of ``policy`` with ``supernet``'s shared weights, no
    retraining.

    A copy of the supernet is set to ``policy`` (one format for all layers, or one per
    quantizable layer), its batch-norm statistics and activation ranges are recalibrated on
    ``calibration_images`` training images of ``data`` (drawn class-balanced with ``seed``:
    the first images of a dataset stored class by class would give one class's statistics),
    in batches of ``calibration_batch`` (:func:`recalibrate`), and it is evaluated on
    ``images`` (default ``data.test``). The supernet itself is left unchanged.
    ``act_policy`` sets the activations' formats apart (``None``: the weights').

    Raises:
        InvalidConfigError: An unknown format, or a policy of the wrong length (from
            :func:`nasforge.ops.quant.set_policy`).
    """
    device = torch.device(device)
    net = copy.deepcopy(supernet).to(device)
    set_policy(net, policy, act_policy)
    count = min(calibration_images, len(data.train))
    calib = data.train.images[stratified_indices(data.train.labels, count, seed)]
    recalibrate(net, list(_batches(calib, data.mean, data.std, calibration_batch, device)))
    target = data.test if images is None else images
    return evaluate_accuracy(
        net, target, mean=data.mean, std=data.std, device=device, batch_size=batch_size
    )


# -- the result and the study ------------------------------------------------------------------
@dataclass
class FliqsResult:
    """What :func:`fliqs_search` found.

    Attributes:
        policy: The final policy: the controller's most probable format per layer.
        layers: The quantizable layers, in the order of ``policy``.
        valid_acc: Its one-shot accuracy (percent) on the validation images.
        test_acc: Its one-shot accuracy on ``data.test`` (NaN when there is none).
        cost: Its cost in the search's unit; ``model_bits`` and ``bops`` both.
        probabilities: The controller's final policy, one row per layer.
        history: Per epoch of the search: epoch, the argmax policy (text), its validation
            accuracy, costs and reward, the controller's entropy and entropy coefficient.
        supernet: The quantized network with the shared weights (at ``policy``, not
            recalibrated: see :func:`policy_accuracy`).
        recipe: The training recipe of the shared weights (for training policies alone).
        study: The study whose trials are the measured policies (``None`` without a space).
    """

    policy: tuple[str, ...]
    layers: tuple[str, ...]
    valid_acc: float
    test_acc: float
    cost: float
    model_bits: float
    bops: float
    probabilities: np.ndarray
    history: list[dict[str, Any]]
    supernet: nn.Module
    recipe: Recipe
    study: Any = None
    settings: dict[str, Any] = field(default_factory=dict)


# -- the search --------------------------------------------------------------------------------
def _check_settings(
    precisions: Sequence[str | int], cost: str, epochs: int, warmup_epochs: int,
    cost_weight: float, entropy_weight: float, target: float | None,
) -> tuple[str, ...]:  # fmt: skip
    _check_cost(cost)
    names = tuple(check_precision(p) for p in precisions)
    if not names:
        raise InvalidConfigError("precisions is empty; give at least two formats to search.")
    if len(set(names)) != len(names):
        raise InvalidConfigError(f"precisions lists a format twice: {list(names)}.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InvalidConfigError(f"epochs must be a positive integer, got {epochs!r}.")
    if not isinstance(warmup_epochs, int) or not 0 <= warmup_epochs < epochs:
        raise InvalidConfigError(
            f"warmup_epochs must be an integer in [0, epochs - 1] = [0, {epochs - 1}] (the "
            f"search needs at least one epoch after the warm-up), got {warmup_epochs!r}."
        )
    if not (math.isfinite(cost_weight) and cost_weight <= 0):
        raise InvalidConfigError(
            f"cost_weight is TuNAS's beta, a finite number <= 0, got {cost_weight!r}."
        )
    if not (math.isfinite(entropy_weight) and entropy_weight >= 0):
        raise InvalidConfigError(f"entropy_weight must be >= 0, got {entropy_weight!r}.")
    if target is not None and not (math.isfinite(target) and target > 0):
        raise InvalidConfigError(f"target must be a positive cost, got {target!r}.")
    return names


def _fingerprint(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _save(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (a partial file never has the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def fliqs_search(
    model: nn.Module,
    data: DataSplits,
    *,
    precisions: Sequence[str | int] = ("int2", "int4", "int8"),
    cost: str = "model_bits",
    target: float | None = None,
    cost_weight: float = -1.0,
    entropy_weight: float = 0.5,
    epochs: int = 10,
    warmup_epochs: int = 2,
    recipe: Recipe | None = None,
    controller_lr: float = 0.05,
    baseline_momentum: float = 0.95,
    valid_size: int | None = None,
    calibration_images: int = 512,
    weights_only: bool = False,
    space: Any = None,
    arch: Architecture | str | None = None,
    seed: int = 0,
    storage: Any = None,
    study_name: str | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> FliqsResult:
    """Search one format per quantizable layer of ``model`` with FLIQS (module docstring).

    Args:
        model: Any network with ``Conv2d``/``Linear`` layers (left unchanged; a quantized copy
            is trained).
        data: Training images (a validation split is cut from them for the rewards and the
            measured policies) and test images (the final policy's ``test_acc``).
        precisions: The formats of each layer (:data:`nasforge.ops.quant.PRECISIONS`: integer
            ``"int2"``..``"int8"``, ``"fp8_e4m3"``, ``"fp8_e5m2"``; 8 means ``"int8"``).
        cost: ``"model_bits"`` or ``"bops"``.
        target: The cost target ``C_T``; ``None``: every layer at the middle format of
            ``precisions``.
        cost_weight: TuNAS's ``beta`` (<= 0).
        entropy_weight: The entropy coefficient at the start of the search (cosine to 0).
        epochs: Epochs of training in all, warm-up included.
        warmup_epochs: Epochs of warm-up (uniform formats, controller frozen).
        recipe: Optimiser, learning rate, batch size and augmentation of the shared weights
            (its ``epochs`` is replaced by ``epochs``; default SGD, lr 0.05, batch 64).
        controller_lr, baseline_momentum: The controller's Adam step and baseline momentum.
        valid_size: Validation images cut from ``data.train`` (default a tenth).
        calibration_images: Training images that recalibrate a measured policy.
        weights_only: Keep activations in float (only weights take the formats).
        space, arch: A quantized space (``"nb201+quant"`` or a ``QuantizedSpace``) and the
            base architecture ``model`` was built from: each measured policy is then a trial
            of a study of that space, in ``storage`` under ``study_name``.
        seed: Seed of the split, the batch order, the augmentation and the formats drawn.
        checkpoint_dir: Save a checkpoint after each epoch there and resume from it.
        device: Where to train.
        on_epoch: Called with each epoch's history entry (after its checkpoint).

    Returns:
        The final policy with its one-shot accuracy and costs (:class:`FliqsResult`).

    Raises:
        InvalidConfigError: An unknown format (the supported ones are listed), an unknown
            cost, a model without quantizable layers, settings out of range, or a study
            asked for without a quantized space.
        StudyConflictError: ``study_name`` exists with other settings.
    """
    names = _check_settings(
        precisions, cost, epochs, warmup_epochs, cost_weight, entropy_weight, target
    )
    layers = tuple(name for name, _ in quantizable_layers(model))
    if not layers:
        raise InvalidConfigError(
            f"{type(model).__name__} has no Conv2d or Linear layer to quantize; FLIQS searches "
            "a format per such layer."
        )
    if space is None and (storage is not None or study_name is not None or arch is not None):
        raise InvalidConfigError(
            "A study of the measured policies needs the quantized space and the base "
            "architecture the model was built from: pass space='<space>+quant' and arch=."
        )
    if space is not None and arch is None:
        raise InvalidConfigError("space= needs arch=, the base architecture of the model.")
    device = torch.device(device)
    base_recipe = recipe or Recipe(lr=0.05, batch_size=64, weight_decay=5e-4)
    recipe = Recipe.from_dict({**base_recipe.to_dict(), "epochs": epochs})
    n_train = len(data.train)
    valid_size = max(1, n_train // 10) if valid_size is None else valid_size
    train_part, valid_part = split_train_valid(data.train, valid_size, seed)
    search_data = DataSplits(data.name, train_part, valid_part, data.mean, data.std)
    act = ["fp32"] * len(layers) if weights_only else None
    net = quantize_model(model, names[0])
    input_size = tuple(data.train.images.shape[1:])
    tables = {kind: _CostTable(net, names, act, kind, input_size) for kind in COSTS}
    if target is None:
        target = tables[cost]([len(names) // 2] * len(layers))
    settings: dict[str, Any] = {
        "precisions": list(names), "cost": cost, "target": float(target),
        "cost_weight": cost_weight, "entropy_weight": entropy_weight, "epochs": epochs,
        "warmup_epochs": warmup_epochs, "recipe": recipe.to_dict(),
        "controller_lr": controller_lr, "baseline_momentum": baseline_momentum,
        "valid_size": valid_size, "calibration_images": calibration_images,
        "weights_only": weights_only, "layers": list(layers),
    }  # fmt: skip
    record = None
    if space is not None and arch is not None:
        record = PolicyRecord(space, arch, model, names, weights_only)

    def policy_of(choices: Sequence[int]) -> tuple[str, ...]:
        return tuple(names[c] for c in choices)

    def measure(policy: tuple[str, ...]) -> dict[str, float]:
        choices = [names.index(p) for p in policy]
        acc = policy_accuracy(
            net, policy, search_data, calibration_images=calibration_images, device=device,
            act_policy=act,
        )  # fmt: skip
        value = tables[cost](choices)
        return {
            "valid_acc": acc,
            "model_bits": tables["model_bits"](choices),
            "bops": tables["bops"](choices),
            "reward": tunas_reward(acc / 100.0, value, target, cost_weight),
        }

    study = evaluator = None
    if record is not None:
        evaluator = PolicyEvaluator(record.space.name, record.to_policy, measure)
        study = open_study(record, evaluator, settings, seed, storage, study_name)

    # -- state ---------------------------------------------------------------------------------
    controller = FormatController(
        len(layers), len(names), learning_rate=controller_lr, baseline_momentum=baseline_momentum
    )
    order_seed, augment_seed, valid_seed, draw_seed = derive_seeds(seed, 4)
    order = torch.Generator().manual_seed(order_seed)
    randomness = torch.Generator().manual_seed(augment_seed)
    valid_order = torch.Generator().manual_seed(valid_seed)
    rng = np.random.default_rng(draw_seed)
    net.to(device)
    optimizer = make_optimizer(net, recipe)
    batch = min(recipe.batch_size, len(train_part))
    steps_per_epoch = len(train_part) // batch + (1 if len(train_part) % batch > 1 else 0)
    total_steps = steps_per_epoch * epochs
    search_steps = steps_per_epoch * (epochs - warmup_epochs)
    augment = Augment(
        padding=scaled_pixels(recipe.crop_padding, data.resolution), flip=recipe.flip,
        cutout=scaled_pixels(recipe.cutout, data.resolution), mean=data.mean, std=data.std,
    )  # fmt: skip
    images, labels = train_part.images.to(device), train_part.labels.to(device)
    v_images, v_labels = valid_part.images.to(device), valid_part.labels.to(device)
    v_batch = min(batch, len(valid_part))
    state: dict[str, Any] = {"epoch": 0, "valid_perm": None, "valid_pos": 0, "history": []}
    path = None
    if checkpoint_dir is not None:
        key = json.dumps({**settings, "seed": seed, "model": _fingerprint(model)}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        path = Path(checkpoint_dir) / f"fliqs-{digest}.pt"
        if path.exists():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            controller.load_state_dict(saved["controller"])
            rng.bit_generator.state = json.loads(saved["rng"])
            order.set_state(saved["order"])
            randomness.set_state(saved["augment"])
            valid_order.set_state(saved["valid_order"])
            state.update(saved["state"])
            logger.info("FLIQS: resuming from epoch %d (%s)", state["epoch"], path)

    def valid_batch() -> tuple[torch.Tensor, torch.Tensor]:
        if state["valid_perm"] is None or state["valid_pos"] + v_batch > len(valid_part):
            state["valid_perm"] = torch.randperm(len(valid_part), generator=valid_order)
            state["valid_pos"] = 0
        index = state["valid_perm"][state["valid_pos"] : state["valid_pos"] + v_batch]
        state["valid_pos"] += v_batch
        return normalize(v_images[index.to(device)], data.mean, data.std), v_labels[index]

    recorded = set() if study is None else {
        int(t.metrics["epoch"]) for t in study.trials if "epoch" in t.metrics
    }  # fmt: skip
    step = state["epoch"] * steps_per_epoch
    for epoch in range(state["epoch"], epochs):
        net.train()
        perm = torch.randperm(len(train_part), generator=order).to(device)
        rewards = []
        for i in range(steps_per_epoch):
            searching = epoch >= warmup_epochs
            if searching:
                choices = controller.sample(rng)
            else:
                choices = rng.integers(len(names), size=len(layers)).tolist()
            set_policy(net, policy_of(choices), act)
            index = perm[i * batch : (i + 1) * batch]
            x, y = augment(images[index], randomness), labels[index]
            lr = cosine_warmup_lr(step, total_steps, lr=recipe.lr, min_lr=recipe.min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = nn.functional.cross_entropy(net(x), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip is not None:
                nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
            optimizer.step()
            if searching:
                drawn = controller.sample(rng)
                set_policy(net, policy_of(drawn), act)
                vx, vy = valid_batch()
                with torch.no_grad():
                    quality = float((net(vx).argmax(1) == vy).float().mean())
                reward = tunas_reward(quality, tables[cost](drawn), target, cost_weight)
                weight = cosine_entropy_weight(
                    step - warmup_epochs * steps_per_epoch, search_steps, entropy_weight
                )
                controller.update(drawn, reward, weight)
                rewards.append(reward)
            step += 1
        entry: dict[str, Any] = {
            "epoch": epoch, "loss": float(loss.detach()), "entropy": controller.entropy(),
            "entropy_weight": cosine_entropy_weight(
                step - warmup_epochs * steps_per_epoch, search_steps, entropy_weight
            ),
            "mean_reward": float(np.mean(rewards)) if rewards else math.nan,
        }  # fmt: skip
        if epoch >= warmup_epochs:
            policy = policy_of(controller.argmax())
            entry["policy"] = ",".join(policy)
            extra = {k: float(v) for k, v in entry.items() if k != "policy"}
            if study is not None and record is not None and evaluator is not None:
                if epoch not in recorded:
                    trial = study.record_architecture(
                        record.to_arch(policy), evaluator, extra=extra
                    )
                    entry.update({k: trial.metrics.get(k, math.nan) for k in evaluator.metrics})
            else:
                entry.update(measure(policy))
        state["history"].append(entry)
        state["epoch"] = epoch + 1
        if path is not None:
            _save(
                path,
                {
                    "version": CHECKPOINT_VERSION, "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(), "controller": controller.state_dict(),
                    "rng": json.dumps(rng.bit_generator.state), "order": order.get_state(),
                    "augment": randomness.get_state(), "valid_order": valid_order.get_state(),
                    "state": state,
                },
            )  # fmt: skip
        logger.info("FLIQS epoch %d/%d: %s", epoch + 1, epochs, entry)
        if on_epoch is not None:
            on_epoch(entry)

    final = policy_of(controller.argmax())
    metrics = measure(final)
    set_policy(net, final, act)
    test_acc = math.nan
    if len(data.test):
        test_acc = policy_accuracy(
            net, final, data, calibration_images=calibration_images, device=device,
            act_policy=act,
        )  # fmt: skip
    return FliqsResult(
        policy=final,
        layers=layers,
        valid_acc=metrics["valid_acc"],
        test_acc=test_acc,
        cost=metrics[cost],
        model_bits=metrics["model_bits"],
        bops=metrics["bops"],
        probabilities=controller.probabilities(),
        history=list(state["history"]),
        supernet=net,
        recipe=recipe,
        study=study,
        settings=settings,
    )
