"""The machinery one-shot methods share: data halves, optimisers, derivation, checkpoints,
and the search loop that records every epoch's architecture in a study.

Private (imports torch); the public names are re-exported by :mod:`nasforge.oneshot`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, StudyConflictError, UnsupportedOperationError
from nasforge.evaluators.base import Evaluator
from nasforge.oneshot._data import SearchData, default_evaluator, make_search_data, read_data
from nasforge.oneshot._weights import param_free_mass, store_weights
from nasforge.oneshot.base import (
    NonFiniteLossError,
    OneShotMethod,
    SupernetSettings,
    check_space,
)
from nasforge.ops.supernet import Supernet
from nasforge.spaces.base import SearchSpace
from nasforge.storage import StudyRecord, get_storage
from nasforge.study import Study
from nasforge.train.data import DataSplits
from nasforge.train.trainer import num_threads, seeded, select_device
from nasforge.trial import Objective, Trial

__all__ = [
    "OneShotResult",
    "SearchData",
    "SearchState",
    "build_supernet",
    "load_checkpoint",
    "search",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "nasforge-oneshot"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "oneshot.pt"


# -- state ------------------------------------------------------------------------------------
@dataclass(eq=False)
class SearchState:
    """What a method works with: the supernet, the data, the device and the generators.

    Attributes:
        supernet: The supernet (on ``device``).
        data: The search data halves.
        device: Where tensors live.
        generator: The CPU generator of every random draw (batch order, augmentation,
            Gumbel noise, sampled paths); saved in checkpoints.
        rng: A numpy generator for methods that search over architectures (SPOS's
            evolution); saved in checkpoints.
        epochs: Supernet training epochs of the search (for schedules).
        space: The search space the architectures belong to.
    """

    supernet: Supernet
    data: SearchData
    device: torch.device
    generator: torch.Generator
    rng: np.random.Generator
    epochs: int
    space: SearchSpace
    stats: dict[str, float] = field(default_factory=dict)


def build_supernet(
    space: str | SearchSpace,
    settings: SupernetSettings,
    num_classes: int = 10,
    partial_channels: int = 1,
) -> Supernet:
    """The supernet of ``space`` (``space.supernet()``) with ``settings``' width and depth.

    Raises:
        UnsupportedOperationError: The space has no supernet, or its supernet has no
            partial channels and ``partial_channels > 1`` (the message names what is missing).
        InvalidConfigError: The settings leave a layer empty or channels indivisible by ``K``.
    """
    found = check_space(space)
    args: dict[str, Any] = {**settings.supernet_args(found), "num_classes": num_classes}
    if partial_channels != 1:
        args["partial_channels"] = partial_channels
    try:
        supernet = found.supernet(**args)
    except TypeError as err:
        if "partial_channels" in args and "partial_channels" in str(err):
            raise UnsupportedOperationError(
                f"The supernet of space {found.name!r} has no partial channels "
                "(supernet(partial_channels=K)), which PC-DARTS needs; use another "
                f"one-shot method on {found.name!r}."
            ) from None
        raise
    if not isinstance(supernet, Supernet):
        raise UnsupportedOperationError(
            f"{type(found).__name__}.supernet() returned {type(supernet).__name__}, not a "
            "nasforge.ops.supernet.Supernet; one-shot methods talk only to that interface."
        )
    return supernet


# -- shared helpers of the methods -------------------------------------------------------------
def init_alphas(
    shapes: Sequence[tuple[int, ...]], generator: torch.Generator, device: torch.device
) -> list[torch.Tensor]:
    """Architecture parameters ``1e-3 * N(0, 1)`` of each shape (as DARTS initialises them),
    drawn on the CPU from ``generator`` and moved to ``device``."""
    return [
        (1e-3 * torch.randn(shape, generator=generator)).to(device).requires_grad_(True)
        for shape in shapes
    ]


def weight_optimizer(
    supernet: nn.Module, lr: float, momentum: float, weight_decay: float, nesterov: bool
) -> torch.optim.SGD:
    """SGD over the supernet's weights."""
    return torch.optim.SGD(
        supernet.parameters(),
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        nesterov=nesterov and momentum > 0,
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def check_finite(loss: torch.Tensor, what: str, epoch: int, step: int, choices: Any) -> None:
    """Raise :class:`NonFiniteLossError` when ``loss`` is NaN or infinite."""
    if not bool(torch.isfinite(loss.detach()).all()):
        raise NonFiniteLossError(
            f"the {what} loss became {float(loss.detach())} in epoch {epoch + 1}, step "
            f"{step + 1}; lower the learning rate or check the data",
            None if choices is None else tuple(int(c) for c in choices),
        )


def correct(logits: torch.Tensor, y: torch.Tensor) -> int:
    return int((logits.argmax(1) == y).sum())


def train_single_paths(
    state: SearchState,
    optimizer: torch.optim.Optimizer,
    grad_clip: float,
    epoch: int,
    draw: Callable[[], tuple[Any, Any]],
) -> dict[str, float]:
    """One epoch of single-path weight steps on the training half (SPOS's uniform sampling,
    HURRICANE's stages): each batch trains the path ``draw()`` returns, as ``(index,
    choices)`` (the supernet's path and, for a failure message, the architecture's choices);
    ``grad_clip`` > 0 clips the gradient norm. Returns ``train_loss`` and ``train_acc``."""
    net = state.supernet
    total, hits, seen = 0.0, 0, 0
    for step, (x, y) in enumerate(state.data.batches("train", state.generator, state.device)):
        index, choices = draw()
        optimizer.zero_grad(set_to_none=True)
        logits = net(x, None, index)
        loss = torch.nn.functional.cross_entropy(logits, y)
        check_finite(loss, "weight", epoch, step, choices)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        optimizer.step()
        total += float(loss.detach()) * int(y.shape[0])
        hits += correct(logits.detach(), y)
        seen += int(y.shape[0])
    return {"train_loss": total / max(1, seen), "train_acc": 100.0 * hits / max(1, seen)}


@torch.no_grad()
def supernet_accuracy(
    supernet: Supernet,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    weights: Sequence[Any] | None = None,
    index: Sequence[Sequence[int]] | None = None,
    edge_weights: Sequence[Any] | None = None,
    train_mode: bool = True,
) -> tuple[float, float]:
    """Accuracy (percent) and mean loss of the supernet on ``batches``."""
    before = supernet.training
    # switching a large supernet's mode walks every module: only when the mode changes
    switch = before != train_mode
    if switch:
        supernet.train(train_mode)
    hits = seen = 0
    loss = 0.0
    try:
        for x, y in batches:
            logits = supernet(x, weights, index, edge_weights)
            loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            hits += correct(logits, y)
            seen += int(y.shape[0])
    finally:
        if switch:
            supernet.train(before)
    return 100.0 * hits / max(1, seen), loss / max(1, seen)


def rng_state(rng: np.random.Generator) -> str:
    """A numpy generator's state as text (its 128-bit integers do not fit tensors)."""
    import json

    return json.dumps(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, text: str) -> None:
    import json

    rng.bit_generator.state = json.loads(text)


# -- the study ---------------------------------------------------------------------------------
def open_study(
    *,
    method: str,
    method_params: Mapping[str, Any],
    space: str,
    seed: int,
    storage: Any,
    study_name: str | None,
    evaluator: Evaluator,
    objectives: Sequence[str],
) -> tuple[Study, bool]:
    """Create the study of a one-shot search, or open it when it exists with equal settings
    (the second value says whether it existed)."""
    from nasforge.study import check_evaluator

    parsed = tuple(Objective.parse(o) for o in objectives)
    if not parsed:
        raise InvalidConfigError("Give at least one objective, e.g. 'valid_acc:max'.")
    check_evaluator(evaluator, space, parsed)
    store = get_storage(storage)
    name = study_name or f"{space}-{method}-seed{seed}-{os.urandom(4).hex()}"
    record = StudyRecord(
        name=name,
        space=space,
        strategy=method,
        seed=int(seed),
        objectives=tuple(str(o) for o in parsed),
        strategy_params=dict(method_params),
        space_params={},
        evaluator=evaluator.spec(),
        options={"oneshot": True},
    )
    existing = store.get_study(name)
    if existing is not None:
        diffs = existing.differences(record)
        if diffs:
            raise StudyConflictError(
                f"Study {name!r} already exists with other settings ({'; '.join(diffs)}). "
                "Use another study name, or the stored settings to resume it."
            )
        return Study(existing, store), True
    return Study(store.create_study(record), store), False


# -- checkpoints -------------------------------------------------------------------------------
def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (a partial file never has the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a one-shot checkpoint (``torch.load(weights_only=True)``: plain data only).

    Raises:
        InvalidConfigError: Not a readable one-shot checkpoint.
    """
    source = Path(path)
    try:
        data = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise InvalidConfigError(f"Cannot read {str(source)!r} as a checkpoint: {err}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise InvalidConfigError(f"{str(source)!r} is not a nasforge one-shot checkpoint.")
    if int(data.get("version", 0)) > CHECKPOINT_VERSION:
        raise InvalidConfigError(
            f"{str(source)!r} was written by a newer nasforge; upgrade nasforge to resume it."
        )
    return data


# -- the search loop ---------------------------------------------------------------------------
@dataclass
class OneShotResult:
    """What :func:`search` did.

    Attributes:
        study: The study holding one trial per recorded epoch.
        arch: The architecture derived last (``None`` if none was).
        epochs_done: Epochs finished, resumed ones included.
        failed: Why the search stopped early (a non-finite loss), or ``None``.
        checkpoint: The checkpoint file, or ``None`` without ``checkpoint_dir``.
        resumed_from: The epoch the run resumed at (0 for a fresh run).
        seconds: Wall time of the search, across resumes.
    """

    study: Study
    arch: Architecture | None
    epochs_done: int
    failed: str | None
    checkpoint: Path | None
    resumed_from: int
    seconds: float


def search(
    method: OneShotMethod,
    method_name: str,
    data: DataSplits | Any,
    *,
    space: str | SearchSpace = "nb201",
    settings: SupernetSettings | None = None,
    epochs: int | None = None,
    seed: int = 0,
    evaluator: Evaluator | None = None,
    storage: Any = None,
    study_name: str | None = None,
    objectives: Sequence[str] = ("valid_acc:max",),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    threads: int | None = None,
    callbacks: Sequence[Callable[[Study, Trial], None]] = (),
) -> OneShotResult:
    """See :func:`nasforge.oneshot.search`."""
    own_network = type(method).build_network is not OneShotMethod.build_network
    found = check_space(space, supernet=not own_network)
    space = found.name
    for capability in method.space_requires:
        if not found.supports(capability):
            raise UnsupportedOperationError(
                f"{method_name} needs the capability {capability}() of the search space, "
                f"which space {space!r} does not have; define it in the space (a space that "
                "declares decisions() gets sample, mutate and crossover by default)."
            )
    settings = settings or SupernetSettings.standard(found)
    epochs = method.default_epochs if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InvalidConfigError(f"epochs must be a positive integer, got {epochs!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer, got {seed!r}.")
    data = read_data(data)  # images as they are; a user's data read into tensors once
    search_data = make_search_data(data, settings, seed)
    evaluator = evaluator or default_evaluator(found, data, settings, threads)
    params = {**method.params(), "epochs": epochs, **settings.to_dict()}
    target = select_device(device)
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    with num_threads(threads):
        # the supernet first: a space whose supernet cannot serve the method is refused
        # before the study records anything
        with seeded(seed):
            built = method.build_network(found, settings, search_data) if own_network else None
            supernet = (
                built
                if built is not None
                else build_supernet(
                    found, settings, search_data.num_classes, method.partial_channels
                )
            )
        study, _ = open_study(
            method=method_name,
            method_params=params,
            space=space,
            seed=seed,
            storage=storage,
            study_name=study_name,
            evaluator=evaluator,
            objectives=objectives,
        )
        supernet.to(target)
        state = SearchState(
            supernet=supernet,
            data=search_data,
            device=target,
            generator=torch.Generator().manual_seed(int(seed)),
            rng=np.random.default_rng(seed),
            epochs=epochs,
            space=study.space,
        )
        with seeded(seed + 1):
            method.setup(state)
        total = method.total_epochs(epochs)
        start, elapsed, last = 0, 0.0, None
        if path is not None and path.exists():
            start, elapsed, last = _restore(path, state, method, method_name, space, seed, params)
            logger.info("resuming %s from epoch %d (%s)", method_name, start, path)
        recorded = {int(t.metrics["epoch"]) for t in study.trials if "epoch" in t.metrics}
        if recorded and start == 0:
            logger.warning(
                "study %s already holds %d epochs but there is no checkpoint to resume from "
                "(checkpoint_dir=%s): the supernet is trained again from the start and the "
                "recorded epochs are not recorded twice",
                study.name,
                len(recorded),
                checkpoint_dir,
            )
        failed = None
        epoch = start
        trial: Trial | None
        logger.info(
            "%s: training the supernet for %d epochs (%d steps of %d images each)%s",
            method_name,
            epochs,
            search_data.steps_per_epoch,
            search_data.batch_size,
            f", then {total - epochs} search rounds" if total > epochs else "",
        )
        for epoch in range(start, total):
            began = time.perf_counter()
            try:
                stats = method.train_epoch(state, epoch)
                choices = method.derive(state)
            except NonFiniteLossError as error:
                failed = str(error)
                seconds = time.perf_counter() - began
                fallback = error.choices or last
                if fallback is None:
                    zeros = [torch.zeros(shape) for shape in supernet.arch_shapes]
                    fallback = supernet.derive(zeros).choices
                trial = study.record_architecture(
                    study.space.from_choices(fallback),
                    evaluator,
                    extra={"epoch": float(epoch), "search_seconds": elapsed + seconds},
                    seconds=seconds,
                    failed=f"non-finite loss: {failed}",
                )
                for callback in callbacks:
                    callback(study, trial)
                logger.warning("%s stopped in epoch %d: %s", method_name, epoch + 1, failed)
                break
            seconds = time.perf_counter() - began
            elapsed += seconds
            _log_epoch(method_name, epoch, epochs, total, seconds, stats)
            trial = None
            if choices is not None:
                last = tuple(choices)
            if choices is not None and epoch not in recorded:
                arch = study.space.from_choices(choices)
                extra = {
                    "epoch": float(epoch),
                    "search_seconds": elapsed,
                    "param_free_share": supernet.param_free_share(arch),
                    **stats,
                }
                weights = method.arch_weights(state) if method.share_weights else None
                if weights is not None:
                    extra["param_free_weight"] = param_free_mass(supernet, weights)
                trial = study.record_architecture(arch, evaluator, extra=extra, seconds=seconds)
                if weights is not None:  # every edge's weights, for the dashboard
                    store_weights(study, trial.number, epoch, supernet, weights)
            if path is not None:
                save_checkpoint(
                    path,
                    {
                        "format": CHECKPOINT_FORMAT,
                        "version": CHECKPOINT_VERSION,
                        "method": method_name,
                        "space": space,
                        "seed": int(seed),
                        "params": _plain(params),
                        "epoch": epoch + 1,
                        "elapsed": elapsed,
                        "last": None if last is None else list(last),
                        "supernet": supernet.state_dict(),
                        "method_state": method.state_dict(),
                        "generator": state.generator.get_state(),
                        "rng": rng_state(state.rng),
                    },
                )
            if trial is not None:  # after the checkpoint: a callback may stop the search
                for callback in callbacks:
                    callback(study, trial)
        else:
            epoch = total
    done = epoch if failed is not None else total
    return OneShotResult(
        study=study,
        arch=None if last is None else study.space.from_choices(last),
        epochs_done=done,
        failed=failed,
        checkpoint=path,
        resumed_from=start,
        seconds=elapsed,
    )


def _log_epoch(
    method: str, epoch: int, epochs: int, total: int, seconds: float, stats: Mapping[str, float]
) -> None:
    """One INFO line per epoch (or search round after the training), so that a long search
    says what it does also when no progress bar is drawn."""
    phase = (
        f"epoch {epoch + 1}/{epochs}"
        if epoch < epochs
        else f"search round {epoch - epochs + 1}/{total - epochs}"
    )
    shown = ", ".join(f"{key} {value:.4g}" for key, value in stats.items())
    logger.info("%s %s done in %.1f s%s", method, phase, seconds, f": {shown}" if shown else "")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _restore(
    path: Path,
    state: SearchState,
    method: OneShotMethod,
    name: str,
    space: str,
    seed: int,
    params: Mapping[str, Any],
) -> tuple[int, float, tuple[int, ...] | None]:
    data = load_checkpoint(path)
    mine = {"method": name, "space": space, "seed": int(seed), "params": _plain(params)}
    theirs = {key: data.get(key) for key in mine}
    if mine != theirs:
        diffs = [
            f"{k}: checkpoint {theirs[k]!r}, this search {mine[k]!r}"
            for k in mine
            if mine[k] != theirs[k]
        ]
        raise InvalidConfigError(
            f"The checkpoint {str(path)!r} belongs to another search ({'; '.join(diffs)}); "
            "use another checkpoint folder or the same settings."
        )
    state.supernet.load_state_dict(data["supernet"])
    method.load_state_dict(data["method_state"])
    state.generator.set_state(data["generator"])
    set_rng_state(state.rng, data["rng"])
    last = None if data.get("last") is None else tuple(int(c) for c in data["last"])
    return int(data["epoch"]), float(data["elapsed"]), last


@torch.no_grad()
def recalibrate_bn(
    supernet: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    index: Sequence[Sequence[int]],
) -> None:
    """Recompute every batch norm's running statistics for one path (SPOS's batch-norm
    recalibration): reset them, then average over ``batches`` in training mode."""
    norms = [
        m
        for m in supernet.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    before = supernet.training
    supernet.train()
    try:
        for x, _ in batches:
            supernet(x, None, index)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        supernet.train(before)
