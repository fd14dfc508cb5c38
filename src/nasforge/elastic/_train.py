"""The training loop of elastic supernets: phases, checkpoints, exact resume, loading, and the
inherited accuracy of a sub-network after batch-norm recalibration.

Public through :mod:`nasforge.elastic` (:func:`train_supernet`, :func:`load_supernet`,
:func:`subnet_accuracy`); this module imports torch.

Files in ``out_dir``:

* ``manifest.json`` — space, schedule (name and parameters), settings, the phases with their
  epochs, how many are done, and every epoch's mean losses; written before the first step and
  after every epoch;
* ``checkpoint.pt`` — the state after the last finished epoch (weights, optimiser, numpy and
  torch generators, the schedule's state, the history), from which training resumes;
* ``phase-<k>-<name>.pt`` — the same state at the end of phase ``k`` (1-based), for
  :func:`load_supernet` and for comparing phases.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.elastic._accuracy import recalibrate, subnet_accuracy
from nasforge.elastic.base import (
    Phase,
    Schedule,
    TrainContext,
    TrainedSupernet,
    TrainSettings,
    cosine_lr_factor,
    create_schedule,
)
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.oneshot._data import SearchData
from nasforge.oneshot._engine import rng_state, save_checkpoint, set_rng_state
from nasforge.oneshot.base import NonFiniteLossError, SupernetSettings
from nasforge.spaces.base import SearchSpace
from nasforge.train._runs import (
    data_identity,
    differences,
    epoch_seed,
    listed_differences,
    read_checkpoint,
    write_manifest,
)
from nasforge.train.data import DataSplits
from nasforge.train.trainer import num_threads, seeded, select_device

__all__ = [
    "CHECKPOINT_NAME",
    "MANIFEST_NAME",
    "load_supernet",
    "make_optimizer",
    "phase_lr",
    "recalibrate",
    "subnet_accuracy",
    "train_supernet",
    "training_data",
]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
MANIFEST_NAME = "manifest.json"
CHECKPOINT_FORMAT = "nasforge-elastic-supernet"
CHECKPOINT_VERSION = 1


# -- building blocks ---------------------------------------------------------------------------
def elastic_space(space: str | SearchSpace) -> SearchSpace:
    """``space`` (or the space of that name), refused unless it has an elastic supernet."""
    from nasforge import spaces

    found = space if isinstance(space, SearchSpace) else spaces.create(space)
    if getattr(found, "RESOLUTIONS", None) is None or not found.supports("supernet"):
        elastic = sorted(n for n in spaces.names() if hasattr(spaces.get(n), "RESOLUTIONS"))
        raise UnsupportedOperationError(
            f"Search space {found.name!r} has no elastic supernet; elastic schedules train "
            f"the spaces {elastic}."
        )
    return found


def trained_resolutions(space: SearchSpace, settings: TrainSettings) -> tuple[int, ...]:
    """The input sides trained: the settings' (checked against the space's) or all."""
    allowed = tuple(int(r) for r in space.RESOLUTIONS)  # type: ignore[attr-defined]
    if settings.resolutions is None:
        return allowed
    wrong = [r for r in settings.resolutions if r not in allowed]
    if wrong:
        raise InvalidConfigError(
            f"resolutions {wrong} are not inputs of space {space.name!r}; choose from "
            f"{list(allowed)}."
        )
    return tuple(settings.resolutions)


def training_data(
    space: str | SearchSpace, data: DataSplits, settings: TrainSettings
) -> SearchData:
    """The halves :func:`train_supernet` trains on (``train``) and measures sub-networks on
    (``valid``): ``settings.data_fraction`` of ``data.train``, held at the largest trained
    resolution, split with the settings' seed. Evaluators and benchmarks call this to see
    the same held-out images.

    Raises:
        InvalidConfigError: The data is too small for two halves of one batch each.
    """
    found = elastic_space(space)
    search = SupernetSettings(
        resolution=max(trained_resolutions(found, settings)),
        data_fraction=settings.data_fraction,
        batch_size=settings.batch_size,
    )
    return SearchData.from_splits(data, search, seed=settings.seed)


def make_optimizer(module: nn.Module, settings: TrainSettings, lr: float) -> torch.optim.SGD:
    """SGD with momentum (Nesterov when asked) whose weight decay spares batch-norm weights
    and every bias (Once-for-All's ``no_decay_keys = "bn#bias"``)."""
    spared: set[int] = set()
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            spared.update(id(p) for p in m.parameters(recurse=False))
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if id(p) in spared or name.endswith("bias") else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": settings.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.SGD(
        groups,
        lr=lr,
        momentum=settings.momentum,
        nesterov=settings.nesterov and settings.momentum > 0,
    )


def phase_lr(base: float, step: int, total: int, warmup: int) -> float:
    """Learning rate of ``step`` (0-based) of a phase of ``total`` steps: linear warm-up over
    ``warmup`` steps, then cosine decay to zero (Once-for-All's schedule per phase; the
    default :meth:`Schedule.lr_factor`)."""
    return base * cosine_lr_factor(step, total, warmup)


# -- identity of a run -------------------------------------------------------------------------
def _teacher_label(teacher: nn.Module | None) -> str | None:
    if teacher is None:
        return None
    count = sum(p.numel() for p in teacher.parameters())
    return f"{type(teacher).__name__} ({count} parameters)"


def _identity(
    space: SearchSpace,
    schedule: Schedule,
    settings: TrainSettings,
    data: DataSplits,
    teacher: nn.Module | None,
) -> dict[str, Any]:
    return {
        "space": space.name,
        "schedule": schedule.name,
        "schedule_params": json.loads(json.dumps(schedule.params())),
        "settings": settings.to_dict(),
        "data": data_identity(data),
        "teacher": _teacher_label(teacher),
    }


def _check_same_run(saved: Mapping[str, Any], given: Mapping[str, Any], where: Path) -> None:
    """Refuse to resume a run of another space, schedule or settings (naming each key)."""
    for key, what in (("space", "space"), ("schedule", "schedule")):
        if saved.get(key) != given.get(key):
            raise InvalidConfigError(
                f"{str(where)!r} holds a supernet of {what} {saved.get(key)!r}, not "
                f"{given.get(key)!r} (space {saved.get('space')!r}, schedule "
                f"{saved.get('schedule')!r}); give another out directory, or the same "
                f"{what} to resume it."
            )
    diffs = differences(saved, given, whole=("schedule_params",))
    if diffs:
        listed = listed_differences(diffs)
        raise InvalidConfigError(
            f"{str(where)!r} holds a {saved.get('schedule')!r} run with other settings "
            f"({listed}); resuming would mix two runs. Resume with the saved settings, or "
            "train into a new out directory (--out), or start over (resume=False; nasforge "
            "supernet train --restart)."
        )


def _read_checkpoint(path: Path) -> dict[str, Any]:
    return read_checkpoint(
        path,
        CHECKPOINT_FORMAT,
        CHECKPOINT_VERSION,
        "elastic-supernet",
        "nasforge.elastic.train_supernet",
    )


# -- training ----------------------------------------------------------------------------------
def _fresh_context(
    space: SearchSpace,
    settings: TrainSettings,
    num_classes: int,
    device: torch.device,
    data: SearchData | None,
    teacher: nn.Module | None,
) -> TrainContext:
    """A context holding the space's freshly initialised supernet (built under the settings'
    seed, on ``device``) and the run's random streams, as training starts and as
    :func:`load_supernet` rebuilds it before loading the saved state."""
    with seeded(settings.seed):
        supernet = space.supernet(
            width_mult=settings.width_mult,
            num_classes=settings.num_classes or num_classes,
            dropout=settings.dropout,
        )
    supernet.to(device)
    return TrainContext(
        supernet=supernet,
        data=data,
        optimizer=None,
        device=device,
        rng=np.random.default_rng(settings.seed),
        generator=torch.Generator().manual_seed(int(settings.seed)),
        teacher=teacher,
        settings=settings,
        space=space,
        resolutions=trained_resolutions(space, settings),
    )


def train_supernet(
    space: str | SearchSpace,
    schedule: str | Schedule,
    data: DataSplits,
    out_dir: str | os.PathLike[str],
    settings: TrainSettings | None = None,
    *,
    teacher: nn.Module | None = None,
    resume: bool = True,
    device: str = "auto",
    threads: int | None = None,
    callbacks: Sequence[Callable[[dict[str, Any]], None]] = (),
) -> TrainedSupernet:
    """Train the elastic supernet of ``space`` with ``schedule``, phase by phase.

    The supernet is ``space.supernet(width_mult=, num_classes=, dropout=)`` built under the
    settings' seed; the data's training images are cut to ``settings.data_fraction`` and
    split in halves (:class:`~nasforge.oneshot._data.SearchData`: ``train`` fits the weights,
    ``valid`` measures sub-networks), held at the largest trained resolution. Each phase of
    ``schedule.phases(settings.epochs)`` wraps the module (``schedule.wrap``), starts
    (``schedule.begin_phase``), gets a fresh SGD optimiser (see :func:`make_optimizer`) at
    ``settings.lr * phase.lr_scale`` with warm-up and cosine decay over the phase, and runs
    its epochs: every step ``optimizer.zero_grad()``, ``schedule.step(ctx, x, y, phase)``
    (which draws sub-networks and resolutions), gradient clipping, ``optimizer.step()``.
    Each epoch runs with torch's global CPU generator seeded from (seed, phase, epoch) (and
    restored afterwards), so dropout too repeats on resume: on the CPU a resumed run ends
    with the same weights, bit for bit, as an uninterrupted one (on a GPU, up to its
    non-deterministic kernels and its own generator).

    Args:
        space: A space with an elastic supernet (``"ofa"``, ``"ofa-cifar"``).
        schedule: A schedule or its registered name (built with its defaults).
        data: The images (``nasforge.train.load_cifar10(path)`` or ``SyntheticImages``).
        out_dir: Folder of the manifest and checkpoints (created).
        settings: Training settings (default :class:`TrainSettings`).
        teacher: A network to distil from (``ctx.teacher``; DNA needs one); frozen, put in
            eval mode and on the device. Give the same one again to resume.
        resume: Continue the run saved in ``out_dir`` (after checking it is the same run);
            ``False`` starts over and overwrites it.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        threads: CPU threads (default all this process may use).
        callbacks: Called after every epoch with that epoch's record (phase, epoch, mean
            statistics, seconds), after its checkpoint is written.

    Returns:
        The trained supernet (in eval mode).

    Raises:
        UnsupportedOperationError: A space without an elastic supernet.
        InvalidConfigError: ``out_dir`` holds a run of another space, schedule or settings
            (the differing keys are named), or the data is too small for the split.
        NonFiniteLossError: A step's loss was NaN or infinite (the last epoch's checkpoint
            is kept).
    """
    found = elastic_space(space)
    built = create_schedule(schedule) if isinstance(schedule, str) else schedule
    settings = settings if settings is not None else TrainSettings()
    folder = Path(out_dir)
    identity = _identity(found, built, settings, data, teacher)
    manifest_path = folder / MANIFEST_NAME
    checkpoint_path = folder / CHECKPOINT_NAME
    saved: dict[str, Any] | None = None
    if resume and manifest_path.exists():
        _check_same_run(json.loads(manifest_path.read_text())["run"], identity, folder)
        if checkpoint_path.exists():
            saved = _read_checkpoint(checkpoint_path)
            _check_same_run(saved["run"], identity, checkpoint_path)
    # checked after the saved run, so that a mismatch is said first
    trained_resolutions(found, settings)
    phases = built.phases(settings.epochs)
    target = select_device(device)
    split = training_data(found, data, settings)
    steps = split.steps_per_epoch
    if settings.steps_per_epoch is not None:
        steps = min(steps, settings.steps_per_epoch)
    if saved is None and manifest_path.exists():  # starting over: no stale files of before
        for stale in folder.glob("phase-*.pt"):
            stale.unlink()
        checkpoint_path.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    if teacher is not None:
        teacher = teacher.to(target).eval().requires_grad_(False)
    with num_threads(threads):
        ctx = _fresh_context(found, settings, split.num_classes, target, split, teacher)
        history: list[dict[str, Any]] = []
        start_phase = start_epoch = 0
        if saved is not None:
            start_phase, start_epoch = int(saved["phase"]), int(saved["epoch"])
            # the schedule's state first: wrap() may need it (few-shot's chosen split)
            built.load_state_dict(saved["schedule_state"])
            ctx.supernet = _rebuild(built, ctx, phases, start_phase + (start_epoch > 0))
            ctx.supernet.load_state_dict(saved["model"])
            ctx.generator.set_state(saved["generator"])
            set_rng_state(ctx.rng, saved["rng"])
            history = list(saved["history"])
            logger.info("resuming phase %d epoch %d from %s", start_phase + 1, start_epoch, folder)
        manifest = {"run": identity, "phases": [p.to_dict() for p in phases]}

        def record(phases_done: int) -> None:
            write_manifest(
                manifest_path, {**manifest, "phases_done": phases_done, "history": history}
            )

        record(start_phase)
        for k in range(start_phase, len(phases)):
            phase = phases[k]
            ctx.phase_index = k
            resumed = k == start_phase and start_epoch > 0
            first = start_epoch if k == start_phase else 0
            if not resumed:
                ctx.restoring = False
                ctx.supernet = built.wrap(ctx.supernet, phase, ctx)
                ctx.supernet.to(target)
            lr = settings.lr * phase.lr_scale
            ctx.optimizer = make_optimizer(ctx.supernet, settings, lr)
            if resumed:
                assert saved is not None
                ctx.optimizer.load_state_dict(saved["optimizer"])
                built.resume_phase(ctx, phase)
            else:
                built.begin_phase(ctx, phase)
            warm = phase.warmup_epochs
            warmup = (settings.warmup_epochs if warm is None else warm) * steps
            for epoch in range(first, phase.epochs):
                ctx.epoch = epoch
                began = time.perf_counter()
                with seeded(epoch_seed(settings.seed, k, epoch)):
                    stats = _run_epoch(built, ctx, phase, steps, epoch, lr, warmup)
                done = epoch + 1 == phase.epochs
                entry = {
                    "phase": k + 1,
                    "name": phase.name,
                    "epoch": epoch + 1,
                    "lr": lr * built.lr_factor(epoch * steps, phase.epochs * steps, warmup),
                    "seconds": time.perf_counter() - began,
                    **stats,
                }
                history.append(entry)
                position = (k + 1, 0) if done else (k, epoch + 1)
                payload = {
                    "format": CHECKPOINT_FORMAT,
                    "version": CHECKPOINT_VERSION,
                    "run": identity,
                    "phase": position[0],
                    "epoch": position[1],
                    "model": ctx.supernet.state_dict(),
                    "optimizer": ctx.optimizer.state_dict(),
                    "schedule_state": built.state_dict(),
                    "generator": ctx.generator.get_state(),
                    "rng": rng_state(ctx.rng),
                    "history": history,
                }
                save_checkpoint(checkpoint_path, payload)
                if done:
                    save_checkpoint(folder / f"phase-{k + 1}-{phase.name}.pt", payload)
                record(k + 1 if done else k)
                logger.info(
                    "phase %d/%d (%s) epoch %d/%d: loss %.4f",
                    k + 1,
                    len(phases),
                    phase.name,
                    epoch + 1,
                    phase.epochs,
                    stats.get("loss", float("nan")),
                )
                for callback in callbacks:
                    callback(dict(entry))
    ctx.supernet.eval()
    return TrainedSupernet(
        supernet=ctx.supernet,
        space=found,
        schedule=built,
        settings=settings,
        phases_done=len(phases),
        metadata={**manifest, "phases_done": len(phases), "history": history},
    )


def _rebuild(schedule: Schedule, ctx: TrainContext, phases: list[Phase], count: int) -> Any:
    """The module after ``count`` phases' wraps (``ctx.restoring`` set while wrapping)."""
    module = ctx.supernet
    ctx.restoring = True
    try:
        for k in range(count):
            ctx.phase_index = k
            module = schedule.wrap(module, phases[k], ctx)
            ctx.supernet = module
    finally:
        ctx.restoring = False
    module.to(ctx.device)
    return module


def _run_epoch(
    schedule: Schedule,
    ctx: TrainContext,
    phase: Phase,
    steps: int,
    epoch: int,
    lr: float,
    warmup: int,
) -> dict[str, float]:
    """One epoch of ``steps`` steps; returns the mean of each statistic ``step`` returned."""
    assert ctx.data is not None
    module = ctx.supernet
    module.train()
    if ctx.teacher is not None:
        ctx.teacher.eval()
    total = phase.epochs * steps
    sums: dict[str, float] = {}
    batches = ctx.data.batches("train", ctx.generator, ctx.device, steps)
    for i, (x, y) in enumerate(batches):
        for group in ctx.optimizer.param_groups:
            group["lr"] = lr * schedule.lr_factor(epoch * steps + i, total, warmup)
        ctx.optimizer.zero_grad(set_to_none=True)
        stats = schedule.step(ctx, x, y, phase)
        loss = float(stats.get("loss", 0.0))
        if not math.isfinite(loss):
            arch = getattr(module, "active", None)
            raise NonFiniteLossError(
                f"the loss became {loss} in phase {phase.name!r}, epoch {epoch + 1}, step "
                f"{i + 1}; lower the learning rate or check the data",
                None if arch is None else tuple(arch.choices),
            )
        if ctx.settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(module.parameters(), ctx.settings.grad_clip)
        ctx.optimizer.step()
        for key, value in stats.items():
            sums[key] = sums.get(key, 0.0) + float(value)
    return {key: value / max(1, steps) for key, value in sums.items()}


# -- loading -----------------------------------------------------------------------------------
def load_supernet(
    out_dir: str | os.PathLike[str],
    *,
    phase: int | None = None,
    space: str | None = None,
    schedule: str | None = None,
    device: str = "cpu",
) -> TrainedSupernet:
    """The supernet trained in ``out_dir`` after its last completed phase (or phase
    ``phase``, 1-based): built from the space, wrapped by the schedule for each completed
    phase, then given the saved weights; returned in eval mode.

    Args:
        out_dir: The folder :func:`train_supernet` wrote.
        phase: Which phase's checkpoint (default the last completed).
        space, schedule: When given, the checkpoint must be of this space and schedule.
        device: Where to put it.

    Raises:
        InvalidConfigError: No manifest or no completed phase in ``out_dir``, a phase out of
            range, or a checkpoint of another space or schedule (both named).
    """
    folder = Path(out_dir)
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.exists():
        raise InvalidConfigError(
            f"{str(folder)!r} holds no trained supernet (no {MANIFEST_NAME}); train one with "
            "nasforge.elastic.train_supernet or `nasforge supernet train --out DIR`."
        )
    manifest = json.loads(manifest_path.read_text())
    run = manifest["run"]
    for key, expected in (("space", space), ("schedule", schedule)):
        if expected is not None and run[key] != expected:
            raise InvalidConfigError(
                f"{str(folder)!r} holds a supernet of {key} {run[key]!r}, not {expected!r}; "
                f"give the folder of a {expected!r} run, or {key}={run[key]!r}."
            )
    phases = manifest["phases"]
    done = int(manifest["phases_done"])
    chosen = done if phase is None else int(phase)
    if done == 0 or not 1 <= chosen <= done:
        raise InvalidConfigError(
            f"{str(folder)!r} has {done} of {len(phases)} phases completed; "
            + ("train further first." if done == 0 else f"choose a phase in 1..{done}.")
        )
    name = phases[chosen - 1]["name"]
    path = folder / f"phase-{chosen}-{name}.pt"
    saved = _read_checkpoint(path)
    for key in ("space", "schedule", "schedule_params", "settings"):
        if saved["run"].get(key) != run.get(key):
            raise InvalidConfigError(
                f"{str(path)!r} is a checkpoint of {key} {saved['run'].get(key)!r} but the "
                f"manifest of {str(folder)!r} says {run.get(key)!r}; the file comes from "
                "another run: train this folder again or restore its own checkpoint."
            )
    found = elastic_space(run["space"])
    built = create_schedule(run["schedule"], **run["schedule_params"])
    settings = TrainSettings.from_dict(run["settings"])
    target = select_device(device)
    ctx = _fresh_context(found, settings, run["data"]["num_classes"], target, None, None)
    plan = built.phases(settings.epochs)
    built.load_state_dict(saved["schedule_state"])
    module = _rebuild(built, ctx, plan, chosen)
    module.load_state_dict(saved["model"])
    module.eval()
    return TrainedSupernet(
        supernet=module,
        space=found,
        schedule=built,
        settings=settings,
        phases_done=chosen,
        metadata=manifest,
    )
