"""The contract of elastic-supernet training schedules and the settings they share.

An elastic supernet (:class:`nasforge.ops.elastic.ElasticMobileNet`) holds the largest
network of a space such as ``ofa-cifar``; every architecture of the space is a sub-network of
it with inherited weights. A :class:`Schedule` says how to train it: a list of
:class:`Phase` (each a number of epochs and the options sub-networks are drawn from), and a
:meth:`Schedule.step` that runs forward and backward passes of whatever sub-networks the
method trains on one batch. :func:`nasforge.elastic.train_supernet` runs a schedule phase by
phase, with checkpoints from which an interrupted run resumes exactly.

Schedules register by name (``@register_schedule("ofa")``), like every leaf of nasforge;
:func:`create_schedule` builds one and :func:`schedule_names` lists them. This module
imports no torch, so listing schedules stays cheap; schedules import torch inside their
methods.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.registry import Registry, keyword_params

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from nasforge.architecture import Architecture
    from nasforge.oneshot._data import SearchData
    from nasforge.spaces.base import SearchSpace

__all__ = [
    "Phase",
    "Schedule",
    "TrainContext",
    "TrainSettings",
    "TrainedSupernet",
    "create_schedule",
    "get_schedule",
    "register_schedule",
    "schedule_names",
]

#: Keys a phase's ``options`` may hold: the keyword restrictions of ``supernet.sample()``.
SAMPLE_OPTIONS = ("resolutions", "depths", "kernels", "expansions")


@dataclass(frozen=True)
class Phase:
    """One phase of a schedule.

    Attributes:
        name: A short name (``"kernel"``, ``"depth-2"``...), used in checkpoint file names.
        epochs: Epochs of this phase (at least 1).
        options: Restrictions of the sub-networks drawn in this phase: keyword arguments of
            ``supernet.sample()`` (``resolutions``, ``depths``, ``kernels``, ``expansions``;
            a missing key means every option of the space).
        lr_scale: This phase's initial learning rate as a multiple of ``TrainSettings.lr``
            (Once-for-All trains its shrinking phases with smaller rates than the largest
            network).
        warmup_epochs: Epochs of linear warm-up before the cosine decay (``None``: the
            settings' ``warmup_epochs``).
    """

    name: str
    epochs: int
    options: dict[str, Any] = field(default_factory=dict)
    lr_scale: float = 1.0
    warmup_epochs: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise InvalidConfigError(
                f"Phase {self.name!r} needs at least 1 epoch, got {self.epochs!r}; give the "
                "schedule a larger epoch budget."
            )
        unknown = sorted(set(self.options) - set(SAMPLE_OPTIONS))
        if unknown:
            raise InvalidConfigError(
                f"Phase {self.name!r} has unknown options {unknown}; a phase restricts "
                f"{list(SAMPLE_OPTIONS)} (the keywords of supernet.sample())."
            )
        if not self.lr_scale > 0:
            raise InvalidConfigError(
                f"Phase {self.name!r}: lr_scale must be positive, got {self.lr_scale!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """The phase as JSON-able values (option tuples become lists)."""
        out = asdict(self)
        out["options"] = {k: list(v) for k, v in self.options.items()}
        return out


@dataclass(frozen=True)
class TrainSettings:
    """How a supernet is trained, whatever the schedule.

    Attributes:
        width_mult: Channel multiplier of the supernet (``space.supernet(width_mult=...)``).
        dropout: Dropout before the classifier.
        num_classes: Classes of the classifier (``None``: the data's).
        resolutions: The input sides trained (``None``: all of the space's
            ``RESOLUTIONS``); the data is held at the largest and resized per batch.
        data_fraction: Share of the training images used (stratified by class), split in two
            halves: ``train`` fits the weights, ``valid`` measures sub-networks.
        batch_size: Images per step.
        epochs: The total epoch budget, split into phases by ``schedule.phases(epochs)``.
        steps_per_epoch: At most this many steps per epoch (``None``: full passes over the
            ``train`` half); for quick runs.
        lr: Initial learning rate (for ``batch_size``; a phase may scale it).
        momentum: SGD momentum (Nesterov when ``nesterov``).
        nesterov: Nesterov momentum, as Once-for-All trains.
        weight_decay: L2 weight decay, not applied to batch-norm weights and biases (as
            Once-for-All's ``no_decay_keys = "bn#bias"``).
        label_smoothing: Label smoothing of the cross-entropy.
        warmup_epochs: Linear warm-up epochs at the start of each phase (a phase may set its
            own).
        grad_clip: Gradient-norm clip (``None``: none).
        seed: Seed of every random draw (weights, data split, batches, sampled
            sub-networks).
    """

    width_mult: float = 1.0
    dropout: float = 0.0
    num_classes: int | None = None
    resolutions: tuple[int, ...] | None = None
    data_fraction: float = 1.0
    batch_size: int = 64
    epochs: int = 10
    steps_per_epoch: int | None = None
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 3e-5
    label_smoothing: float = 0.1
    warmup_epochs: int = 0
    grad_clip: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(f"{name} must be a positive integer, got {value!r}.")
        for name in ("steps_per_epoch", "num_classes"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidConfigError(
                    f"{name} must be a positive integer or None, got {value!r}."
                )
        if not 0.0 < float(self.data_fraction) <= 1.0:
            raise InvalidConfigError(
                f"data_fraction must be in (0, 1], got {self.data_fraction!r}."
            )
        if not self.width_mult > 0:
            raise InvalidConfigError(f"width_mult must be positive, got {self.width_mult!r}.")
        if not self.lr > 0:
            raise InvalidConfigError(f"lr must be positive, got {self.lr!r}.")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.label_smoothing < 1.0:
            raise InvalidConfigError(
                f"dropout and label_smoothing must be in [0, 1), got {self.dropout!r} and "
                f"{self.label_smoothing!r}."
            )
        if self.momentum < 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise InvalidConfigError(
                "momentum, weight_decay and warmup_epochs must not be negative, got "
                f"{self.momentum!r}, {self.weight_decay!r}, {self.warmup_epochs!r}."
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise InvalidConfigError(f"grad_clip must be positive or None, got {self.grad_clip}.")
        if self.resolutions is not None:
            sides = tuple(self.resolutions)
            if not sides or any(
                isinstance(r, bool) or not isinstance(r, int) or r < 4 for r in sides
            ):
                raise InvalidConfigError(
                    f"resolutions must be a non-empty tuple of integers >= 4, got {sides!r}."
                )
            object.__setattr__(self, "resolutions", tuple(sorted(set(sides))))

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (for the manifest)."""
        out = asdict(self)
        if self.resolutions is not None:
            out["resolutions"] = list(self.resolutions)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainSettings:
        """The settings :meth:`to_dict` wrote.

        Raises:
            InvalidConfigError: An unknown key (the valid ones are listed).
        """
        from nasforge.train._runs import known_settings

        kwargs = known_settings(cls, values, "training settings")
        if kwargs.get("resolutions") is not None:
            kwargs["resolutions"] = tuple(kwargs["resolutions"])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> TrainSettings:
        """A copy with ``changes`` applied (validated)."""
        return self.from_dict({**self.to_dict(), **changes})

    @classmethod
    def preset(cls, space: str | SearchSpace, name: str, **changes: Any) -> TrainSettings:
        """The settings of ``space``'s preset ``name`` (``"paper"``, ``"reduced"``...): its
        ``width_mult``, ``dropout``, ``data_fraction``, ``batch_size`` and ``epochs`` (the
        preset's other keys shape the space's networks and are not training settings),
        then ``changes``.

        Raises:
            UnsupportedOperationError: The space has no preset of that name (they are listed).
        """
        from nasforge import spaces
        from nasforge.spaces.base import SearchSpace as _Space

        found = space if isinstance(space, _Space) else spaces.create(space)
        presets = found.presets() if found.supports("presets") else {}
        if name not in presets:
            raise UnsupportedOperationError(
                f"Search space {found.name!r} has no {name!r} preset; its presets are "
                f"{sorted(presets)}. Give TrainSettings(width_mult=..., epochs=...) instead."
            )
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in presets[name].items() if k in names}
        return cls.from_dict({**values, **changes})


@dataclass(eq=False)
class TrainContext:
    """What a schedule's hooks see during training.

    Attributes:
        supernet: The module being trained (an elastic supernet, or a schedule's wrapper of
            it with the same interface: ``set_active``, ``sample``, ``forward``...).
        data: The two halves of the training images (``data.batches("train", ...)``).
        optimizer: The optimiser of this phase (the trainer zeroes it before
            :meth:`Schedule.step` and steps it after).
        device: Where the tensors live.
        rng: The generator of every architecture draw.
        generator: The torch generator of the batches and augmentation.
        teacher: A frozen network in eval mode, for distillation (``None``: none yet);
            schedules that distil from their own largest network set it in
            :meth:`Schedule.begin_phase`.
        settings: The training settings.
        restoring: True while the trainer rebuilds completed phases on resume (or in
            :func:`~nasforge.elastic.load_supernet`): :meth:`Schedule.wrap` must then not
            change weights, only structure.
        space: The space of the supernet.
        phase_index: Index of the current phase.
        epoch: Epoch within the current phase.
        resolutions: The input sides trained (the settings' or the space's).
    """

    supernet: Any
    data: SearchData | None
    optimizer: Any
    device: Any
    rng: np.random.Generator
    generator: Any
    teacher: Any = None
    settings: TrainSettings = field(default_factory=TrainSettings)
    restoring: bool = False
    space: Any = None
    phase_index: int = 0
    epoch: int = 0
    resolutions: tuple[int, ...] = ()

    def kd_loss(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """Soft cross-entropy of the student against the teacher's softmax,
        ``mean_i sum_c -softmax(t_i)_c * log_softmax(s_i)_c`` (Once-for-All's
        ``cross_entropy_loss_with_soft_target``); the teacher's logits are detached."""
        import torch.nn.functional as F

        target = F.softmax(teacher_logits.detach(), dim=1)
        return (-target * F.log_softmax(student_logits, dim=1)).sum(dim=1).mean()

    def ce_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with the settings' label smoothing."""
        import torch.nn.functional as F

        return F.cross_entropy(logits, labels, label_smoothing=self.settings.label_smoothing)

    def resize(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        """``x`` resized to ``resolution x resolution`` (bilinear; unchanged when it is)."""
        if x.shape[-1] == resolution and x.shape[-2] == resolution:
            return x
        from nasforge.ops.elastic import resize_images

        return resize_images(x, resolution)

    def phase_resolutions(self, phase: Phase) -> tuple[int, ...]:
        """The sides a phase trains: its ``resolutions`` option within the trained ones."""
        allowed = phase.options.get("resolutions")
        if allowed is None:
            return self.resolutions
        kept = tuple(r for r in self.resolutions if r in set(allowed))
        return kept or tuple(allowed)

    def sample(self, phase: Phase, **overrides: Any) -> Architecture:
        """A sub-network drawn uniformly from ``phase``'s options (``overrides`` replace
        them, e.g. ``resolutions=(32,)`` for the resolution drawn for this batch)."""
        options: dict[str, Any] = dict(phase.options)
        options["resolutions"] = self.phase_resolutions(phase)
        options.update(overrides)
        return self.supernet.sample(self.rng, **options)  # type: ignore[no-any-return]

    def draw_resolution(self, phase: Phase) -> int:
        """One side drawn uniformly for a batch (Once-for-All resizes each batch to one
        side drawn from the allowed resolutions)."""
        sides = self.phase_resolutions(phase)
        return int(sides[int(self.rng.integers(len(sides)))])


class Schedule(ABC):
    """How an elastic supernet is trained: its phases and its training step.

    A subclass takes its hyperparameters as keyword-only arguments of ``__init__`` and
    keeps each as an attribute of the same name, so :meth:`params` returns them (override
    it otherwise). Hooks other than :meth:`phases` and :meth:`step` are optional.

    Contract:
        * :meth:`phases` depends only on the parameters and the epoch budget.
        * :meth:`wrap` is called at the start of every phase, and again for every completed
          phase when training resumes or a trained supernet is loaded (``ctx.restoring``):
          it may change the module's structure (few-shot NAS returns its K-way wrapper) but
          must not draw random numbers or change weights while restoring.
        * :meth:`step` runs the forward and backward passes of one batch (the trainer calls
          ``optimizer.zero_grad()`` before and clips and steps after) and returns its
          statistics (``{"loss": ...}`` at least); every random draw comes from ``ctx.rng``.
        * :meth:`state_dict` holds what the schedule keeps between steps beyond its
          parameters, so a resumed run continues exactly.
    """

    #: The registry name (set by :func:`register_schedule`).
    name: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        """The hyperparameters, as ``create_schedule(name, **params)`` takes them."""
        signature = inspect.signature(type(self).__init__)
        return {
            p.name: getattr(self, p.name)
            for p in signature.parameters.values()
            if p.kind is p.KEYWORD_ONLY
        }

    @abstractmethod
    def phases(self, epochs: int) -> list[Phase]:
        """The phases for a budget of ``epochs`` epochs in all."""

    def wrap(self, supernet: nn.Module, phase: Phase, ctx: TrainContext) -> nn.Module:
        """The module trained in ``phase`` (default: ``supernet`` itself)."""
        return supernet

    def lr_factor(self, step: int, total: int, warmup: int) -> float:
        """The learning rate of ``step`` (0-based) of a phase of ``total`` steps, as a share
        of the phase's initial rate. Default: :func:`cosine_lr_factor` (linear warm-up over
        ``warmup`` steps, then cosine decay to zero: Once-for-All's schedule per phase). The
        trainer sets the optimiser's rate from it before every step and records it."""
        return cosine_lr_factor(step, total, warmup)

    def begin_phase(self, ctx: TrainContext, phase: Phase) -> None:  # noqa: B027 (optional hook)
        """Called once when ``phase`` starts, after :meth:`wrap` and before its first step
        (when training resumes inside a phase, :meth:`resume_phase` is called instead; at a
        phase boundary, after :meth:`load_state_dict`)."""

    def resume_phase(self, ctx: TrainContext, phase: Phase) -> None:  # noqa: B027
        """Called instead of :meth:`begin_phase` when training resumes inside ``phase``
        (after :meth:`load_state_dict`): rebuild what :meth:`begin_phase` made that the
        checkpoint does not hold as weights (default: nothing)."""

    @abstractmethod
    def step(
        self, ctx: TrainContext, x: torch.Tensor, y: torch.Tensor, phase: Phase
    ) -> dict[str, float]:
        """Forward and backward passes of one batch ``(x, y)`` (``x`` at the data's
        resolution: resize it with ``ctx.resize``); returns the step's statistics."""

    def score(self, ctx: TrainContext, arch: Architecture, batches: Any) -> float | None:
        """A ranking score of ``arch`` (higher is better), or ``None`` to rank by accuracy."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state between steps (default: none)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Restore :meth:`state_dict`."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def cosine_lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to zero at ``total`` steps,
    as a share of the initial learning rate (``step`` is 0-based).

    Example:
        >>> [round(cosine_lr_factor(s, 6, 2), 2) for s in range(6)]
        [0.5, 1.0, 1.0, 0.85, 0.5, 0.15]
    """
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / span))


@dataclass(eq=False)
class TrainedSupernet:
    """A trained (or partly trained) supernet, as :func:`~nasforge.elastic.load_supernet`
    and :func:`~nasforge.elastic.train_supernet` return it.

    Attributes:
        supernet: The module (in eval mode), possibly a schedule's wrapper of the elastic
            supernet.
        space: Its search space.
        schedule: The schedule it was trained with.
        settings: The training settings.
        phases_done: How many of the schedule's phases are complete.
        metadata: The run's manifest (space, schedule, settings, phases, per-epoch losses).
    """

    supernet: Any
    space: Any
    schedule: Schedule
    settings: TrainSettings
    phases_done: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def phases(self) -> list[Phase]:
        """The schedule's phases for the settings' epoch budget."""
        return self.schedule.phases(self.settings.epochs)

    @property
    def complete(self) -> bool:
        """Whether every phase is done."""
        return self.phases_done >= len(self.phases)


_REGISTRY: Registry[Schedule] = Registry("training schedule", "nasforge.elastic")
S = TypeVar("S", bound=type[Schedule])


def register_schedule(name: str) -> Callable[[S], S]:
    """Class decorator that registers a :class:`Schedule` under ``name`` (and sets its
    ``name``)."""

    def decorator(cls: S) -> S:
        cls.name = name
        _REGISTRY.register(name)(cls)
        return cls

    return decorator


def get_schedule(name: str) -> type[Schedule]:
    """The schedule class registered as ``name``.

    Raises:
        UnknownNameError: No such schedule (the valid names and the closest are listed).
    """
    return _REGISTRY.get(name)  # type: ignore[return-value]


def schedule_names() -> list[str]:
    """Names of the registered schedules."""
    return _REGISTRY.names()


def create_schedule(name: str, **params: Any) -> Schedule:
    """The schedule registered as ``name``, built with its hyperparameters.

    Raises:
        UnknownNameError: No such schedule.
        InvalidConfigError: An unknown hyperparameter (the valid ones are listed) or a value
            of the wrong type.
    """
    from nasforge.strategies.base import check_params

    cls = get_schedule(name)
    keyword_params(cls, params, "schedule", name)
    return cls(**check_params(cls, dict(params)))
