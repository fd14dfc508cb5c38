"""Training of a super-transformer, its checkpoints and exact resume, inherited accuracy, and
the stand-alone training of one sub-network with the same recipe. Public through
:mod:`nasforge.transformer`; this module imports torch.

Sampling per step (``ViTTrainSettings.sampling``):

* ``"uniform"`` — AutoFormer (Chen et al., ICCV 2021, arXiv:2107.00651, Section 3.3,
  "Search pipeline: supernet training"): one sub-network drawn uniformly from the space, its
  weights (the leading slices of the super-transformer's, weight entanglement) updated.
* ``"sandwich"`` — BigNAS (Yu et al., "BigNAS: Scaling Up Neural Architecture Search with
  Big Single-Stage Models", ECCV 2020, arXiv:2003.11142, Section 3.1) after Yu and Huang's
  sandwich rule (universally slimmable networks, ICCV 2019, arXiv:1903.05134): the largest,
  the smallest and two random sub-networks per step, their gradients summed; with
  ``distill`` the smaller ones learn the largest's detached soft predictions (in-place
  distillation).

Files in ``out_dir``: ``manifest.json`` (the run: space, settings, data; epochs done and
each epoch's mean loss; written before the first step and after every epoch) and
``checkpoint.pt`` (weights, optimiser, numpy and torch generators, the history after the
last finished epoch). Each epoch runs with torch's global CPU generator seeded from (seed,
epoch), restored afterwards, so on the CPU a resumed run ends bit for bit where an
uninterrupted one does.

Where this differs from the papers: the learning rate decays to zero (AutoFormer stops at
1e-5 and warms up from 1e-6), and the CPU setting trains for minutes, not 500 epochs.
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
import torch.nn.functional as F
from torch import nn

from nasforge.architecture import Architecture
from nasforge.elastic.base import cosine_lr_factor
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
from nasforge.transformer.settings import TrainedSuperViT, ViTTrainSettings

__all__ = [
    "CHECKPOINT_NAME",
    "MANIFEST_NAME",
    "load_super_vit",
    "make_optimizer",
    "subnet_accuracy",
    "train_alone",
    "train_super_vit",
    "training_data",
    "vit_space",
]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
MANIFEST_NAME = "manifest.json"
CHECKPOINT_FORMAT = "nasforge-super-transformer"
CHECKPOINT_VERSION = 1


def vit_space(space: str | SearchSpace) -> SearchSpace:
    """``space`` (or the space of that name), refused unless it is a vision-transformer space
    with a super-transformer."""
    from nasforge import spaces

    found = space if isinstance(space, SearchSpace) else spaces.create(space)
    if getattr(found, "IMAGE_SIZE", None) is None or not hasattr(found, "EMBED_DIMS"):
        known = sorted(n for n in spaces.names() if hasattr(spaces.get(n), "EMBED_DIMS"))
        raise UnsupportedOperationError(
            f"Search space {found.name!r} has no super-transformer; super-transformer "
            f"training takes the vision-transformer spaces {known}."
        )
    return found


def training_data(
    space: str | SearchSpace, data: DataSplits, settings: ViTTrainSettings
) -> SearchData:
    """The halves training fits the weights on (``train``) and sub-networks are measured on
    (``valid``): ``settings.data_fraction`` of ``data.train`` at the space's image size,
    split with the settings' seed. Evaluators and benchmarks call this to see the same
    held-out images.

    Raises:
        InvalidConfigError: Too few images for two halves of one batch each.
    """
    found = vit_space(space)
    search = SupernetSettings(
        resolution=int(found.IMAGE_SIZE),  # type: ignore[attr-defined]
        data_fraction=settings.data_fraction,
        batch_size=settings.batch_size,
    )
    return SearchData.from_splits(data, search, seed=settings.seed)


def make_optimizer(module: nn.Module, settings: ViTTrainSettings) -> torch.optim.AdamW:
    """AdamW at :attr:`ViTTrainSettings.peak_lr` whose weight decay spares biases, norms
    and the token and position embeddings (every parameter of one dimension, and those
    named like ``cls_token`` / ``pos_embed``), as DeiT's ``no_weight_decay``."""
    decay: list[nn.Parameter] = []
    spared: list[nn.Parameter] = []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or "token" in name or "pos_embed" in name
        (spared if skip else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": settings.weight_decay},
        {"params": spared, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=settings.peak_lr)


def _soft_ce(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    target = F.softmax(teacher.detach(), dim=1)
    return (-target * F.log_softmax(student, dim=1)).sum(dim=1).mean()


def _steps(data: SearchData, settings: ViTTrainSettings) -> int:
    steps = data.steps_per_epoch
    return steps if settings.steps_per_epoch is None else min(steps, settings.steps_per_epoch)


def _run_epoch(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: SearchData,
    generator: torch.Generator,
    device: torch.device,
    settings: ViTTrainSettings,
    epoch: int,
    step: Callable[[torch.Tensor, torch.Tensor], tuple[float, Any]],
) -> float:
    """One epoch of ``step`` calls (each runs forward and backward); returns the mean loss."""
    steps = _steps(data, settings)
    total = settings.epochs * steps
    warmup = settings.warmup_epochs * steps
    module.train()
    losses = 0.0
    for i, (x, y) in enumerate(data.batches("train", generator, device, steps)):
        lr = settings.peak_lr * cosine_lr_factor(epoch * steps + i, total, warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss, arch = step(x, y)
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"the loss became {loss} in epoch {epoch + 1}, step {i + 1}; lower the "
                "learning rate or check the data",
                None if arch is None else tuple(arch.choices),
            )
        if settings.grad_clip is not None:
            nn.utils.clip_grad_norm_(module.parameters(), settings.grad_clip)
        optimizer.step()
        losses += loss
    return losses / max(1, steps)


def _super_step(
    supernet: Any, settings: ViTTrainSettings, rng: np.random.Generator
) -> Callable[[torch.Tensor, torch.Tensor], tuple[float, Any]]:
    """The step of the settings' sampling (see the module docstring)."""

    def ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=settings.label_smoothing)

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[float, Any]:
        if settings.sampling == "uniform":
            archs = [supernet.sample(rng)]
        else:
            archs = [supernet.largest(), supernet.smallest()]
            archs += [supernet.sample(rng) for _ in range(settings.sandwich_random)]
        teacher: torch.Tensor | None = None
        total = 0.0
        for k, arch in enumerate(archs):
            supernet.set_active(arch)
            logits = supernet(x)
            loss = _soft_ce(logits, teacher) if teacher is not None else ce(logits, y)
            if k == 0 and settings.distill:
                teacher = logits.detach()
            loss.backward()
            value = float(loss.detach())
            if not math.isfinite(value):
                return value, arch
            total += value
        return total / len(archs), archs[-1]

    return step


# -- identity of a run -------------------------------------------------------------------------
def _identity(space: SearchSpace, settings: ViTTrainSettings, data: DataSplits) -> dict[str, Any]:
    return {
        "space": space.name,
        "settings": settings.to_dict(),
        "data": data_identity(data),
    }


def _check_same_run(saved: Mapping[str, Any], given: Mapping[str, Any], where: Path) -> None:
    diffs = differences(saved, given)
    if diffs:
        raise InvalidConfigError(
            f"{str(where)!r} holds a super-transformer run with other settings "
            f"({listed_differences(diffs)}); resuming would mix two runs. Resume with the saved "
            "settings, train into another out directory, or start over (resume=False)."
        )


def _read_checkpoint(path: Path) -> dict[str, Any]:
    return read_checkpoint(
        path,
        CHECKPOINT_FORMAT,
        CHECKPOINT_VERSION,
        "super-transformer",
        "nasforge.transformer.train_super_vit",
    )


def _build_supernet(
    space: SearchSpace, settings: ViTTrainSettings, num_classes: int, device: torch.device
) -> Any:
    with seeded(settings.seed):
        supernet = space.supernet(
            num_classes=settings.num_classes or num_classes,
            private=settings.private,
            dropout=settings.dropout,
        )
    return supernet.to(device)


def _default_data(space: SearchSpace, settings: ViTTrainSettings) -> DataSplits:
    from nasforge.train.data import SyntheticImages

    classes = settings.num_classes or int(getattr(space, "DEFAULT_CLASSES", 10))
    side = int(space.IMAGE_SIZE)  # type: ignore[attr-defined]
    return SyntheticImages(num_classes=classes, n_train=512, n_test=64, size=side).load()


# -- training ----------------------------------------------------------------------------------
def train_super_vit(
    space: str | SearchSpace,
    out_dir: str | os.PathLike[str],
    settings: ViTTrainSettings | None = None,
    *,
    data: DataSplits | None = None,
    resume: bool = True,
    device: str = "auto",
    threads: int | None = None,
    callbacks: Sequence[Callable[[dict[str, Any]], None]] = (),
) -> TrainedSuperViT:
    """Train the super-transformer of ``space`` (``space.supernet(num_classes=, private=,
    dropout=)``, built under the settings' seed) on the ``train`` half of ``data`` (see
    :func:`training_data`), sampling sub-networks as ``settings.sampling`` says, with AdamW,
    linear warm-up and cosine decay; a checkpoint after every epoch.

    Args:
        space: A vision-transformer space (``"vit"``, ``"vit-cifar"``).
        out_dir: Folder of the manifest and checkpoint (created).
        settings: Training settings (default :class:`ViTTrainSettings`).
        data: The images (``nasforge.train.load_cifar10(path)``, ``SyntheticImages(...).load()``;
            ``None``: 512 synthetic images at the space's size, to try the pipeline).
        resume: Continue the run saved in ``out_dir`` (after checking it is the same run);
            ``False`` starts over.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        threads: CPU threads (default all this process may use).
        callbacks: Called with every epoch's record after its checkpoint is written.

    Returns:
        The trained super-transformer (in eval mode).

    Raises:
        UnsupportedOperationError: A space without a super-transformer.
        InvalidConfigError: ``out_dir`` holds a run of other settings (the differing keys are
            named), or the data is too small for the split.
        NonFiniteLossError: A loss became NaN or infinite (the last checkpoint is kept).
    """
    found = vit_space(space)
    settings = settings if settings is not None else ViTTrainSettings()
    data = data if data is not None else _default_data(found, settings)
    folder = Path(out_dir)
    identity = _identity(found, settings, data)
    manifest_path, checkpoint_path = folder / MANIFEST_NAME, folder / CHECKPOINT_NAME
    saved: dict[str, Any] | None = None
    if resume and manifest_path.exists():
        _check_same_run(json.loads(manifest_path.read_text())["run"], identity, folder)
        if checkpoint_path.exists():
            saved = _read_checkpoint(checkpoint_path)
            _check_same_run(saved["run"], identity, checkpoint_path)
    split = training_data(found, data, settings)
    target = select_device(device)
    if saved is None:
        checkpoint_path.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    with num_threads(threads):
        supernet = _build_supernet(found, settings, split.num_classes, target)
        optimizer = make_optimizer(supernet, settings)
        rng = np.random.default_rng(settings.seed)
        generator = torch.Generator().manual_seed(int(settings.seed))
        history: list[dict[str, Any]] = []
        start = 0
        if saved is not None:
            supernet.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            generator.set_state(saved["generator"])
            set_rng_state(rng, saved["rng"])
            history = list(saved["history"])
            start = int(saved["epoch"])
            logger.info("resuming epoch %d from %s", start, folder)

        def record(done: int) -> None:
            write_manifest(
                manifest_path, {"run": identity, "epochs_done": done, "history": history}
            )

        record(start)
        step = _super_step(supernet, settings, rng)
        for epoch in range(start, settings.epochs):
            began = time.perf_counter()
            with seeded(epoch_seed(settings.seed, 20, epoch)):
                loss = _run_epoch(
                    supernet, optimizer, split, generator, target, settings, epoch, step
                )
            entry = {"epoch": epoch + 1, "loss": loss, "seconds": time.perf_counter() - began}
            history.append(entry)
            payload = {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "run": identity,
                "epoch": epoch + 1,
                "model": supernet.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "rng": rng_state(rng),
                "history": history,
            }
            save_checkpoint(checkpoint_path, payload)
            record(epoch + 1)
            logger.info(
                "super-transformer epoch %d/%d: loss %.4f", epoch + 1, settings.epochs, loss
            )
            for callback in callbacks:
                callback(dict(entry))
    supernet.eval()
    return TrainedSuperViT(
        supernet=supernet,
        space=found,
        settings=settings,
        epochs_done=settings.epochs,
        metadata={"run": identity, "epochs_done": settings.epochs, "history": history},
    )


def load_super_vit(out_dir: str | os.PathLike[str], *, device: str = "cpu") -> TrainedSuperViT:
    """The super-transformer trained in ``out_dir`` after its last finished epoch, in eval
    mode (:attr:`TrainedSuperViT.complete` says whether training finished).

    Raises:
        InvalidConfigError: No manifest or no finished epoch in ``out_dir``, or a checkpoint
            of another run.
    """
    folder = Path(out_dir)
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise InvalidConfigError(
            f"{str(folder)!r} holds no trained super-transformer (no {MANIFEST_NAME}); train "
            "one with nasforge.transformer.train_super_vit."
        )
    manifest = json.loads(manifest_path.read_text())
    checkpoint_path = folder / CHECKPOINT_NAME
    if not checkpoint_path.exists():
        raise InvalidConfigError(
            f"{str(folder)!r} has no finished epoch yet ({CHECKPOINT_NAME} is missing); train "
            "further first."
        )
    saved = _read_checkpoint(checkpoint_path)
    if differences(saved["run"], manifest["run"]):
        raise InvalidConfigError(
            f"{str(checkpoint_path)!r} comes from another run than the manifest of "
            f"{str(folder)!r}; train this folder again."
        )
    run = manifest["run"]
    found = vit_space(run["space"])
    settings = ViTTrainSettings.from_dict(run["settings"])
    supernet = _build_supernet(
        found, settings, int(run["data"]["num_classes"]), torch.device("cpu")
    )
    supernet.load_state_dict(saved["model"])
    supernet.to(select_device(device)).eval()
    return TrainedSuperViT(
        supernet=supernet,
        space=found,
        settings=settings,
        epochs_done=int(saved["epoch"]),
        metadata={**manifest, "epochs_done": int(saved["epoch"])},
    )


# -- measuring and training sub-networks ---------------------------------------------------------
@torch.no_grad()
def _accuracy(net: Any, data: SearchData, images: int) -> float:
    if images < 1:
        raise InvalidConfigError(f"images must be at least 1, got {images}.")
    device = next(net.parameters()).device
    net.eval()
    hits = seen = 0
    for x, y in data.fixed("valid", images, device):
        hits += int((net(x).argmax(1) == y).sum())
        seen += int(y.shape[0])
    return 100.0 * hits / max(1, seen)


def subnet_accuracy(
    trained: TrainedSuperViT | Any,
    arch: str | Architecture,
    data: SearchData,
    *,
    images: int = 1000,
) -> float:
    """Inherited top-1 accuracy (percent) of sub-network ``arch``: the super-transformer with
    ``arch`` active, in eval mode, on the first ``images`` images of the held-out ``valid``
    half (layer norms need no recalibration). ``arch`` stays active.

    Raises:
        InvalidArchitectureError: ``arch`` is not of the super-transformer's space.
        InvalidConfigError: ``images`` below 1.
    """
    supernet = trained.supernet if isinstance(trained, TrainedSuperViT) else trained
    supernet.set_active(arch)
    return _accuracy(supernet, data, images)


def train_alone(
    space: str | SearchSpace,
    arch: str | Architecture,
    settings: ViTTrainSettings,
    data: SearchData | DataSplits,
    *,
    images: int = 1000,
    device: str = "cpu",
    threads: int | None = None,
) -> float:
    """Train sub-network ``arch`` from scratch as a stand-alone network (``space.build``)
    with the super-transformer's recipe (the same settings: AdamW, warm-up and cosine,
    label smoothing, epochs, batches of the ``train`` half) and return its top-1 accuracy
    (percent) on the first ``images`` images of the ``valid`` half; for ranking benchmarks
    (inherited against stand-alone accuracy). The same call gives the same number on the CPU.

    Raises:
        InvalidArchitectureError: ``arch`` is not of the space.
        InvalidConfigError: ``images`` below 1, or data too small for the split.
    """
    found = vit_space(space)
    parsed = found.parse(arch) if isinstance(arch, str) else found.check(arch)
    split = data if isinstance(data, SearchData) else training_data(found, data, settings)
    target = select_device(device)
    with num_threads(threads):
        with seeded(settings.seed):
            net = found.build(
                parsed, num_classes=settings.num_classes or split.num_classes,
                dropout=settings.dropout,
            )  # fmt: skip
        net.to(target)
        optimizer = make_optimizer(net, settings)
        generator = torch.Generator().manual_seed(int(settings.seed))

        def step(x: torch.Tensor, y: torch.Tensor) -> tuple[float, Any]:
            loss = F.cross_entropy(net(x), y, label_smoothing=settings.label_smoothing)
            loss.backward()
            return float(loss.detach()), parsed

        for epoch in range(settings.epochs):
            with seeded(epoch_seed(settings.seed, 20, epoch)):
                _run_epoch(net, optimizer, split, generator, target, settings, epoch, step)
        return _accuracy(net, split, images)
