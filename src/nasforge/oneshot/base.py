"""The :class:`OneShotMethod` contract and the settings every one-shot search shares.

A one-shot method trains one supernet (the :class:`nasforge.ops.supernet.Supernet` a space
returns from ``space.supernet(**settings)``) whose decisions hold every candidate with shared
weights, and derives a discrete architecture from it after every epoch. Methods talk only to
that interface, never to a space by name, so every space with a supernet can be searched.
:func:`nasforge.oneshot.search` runs a method and records each derived
architecture as a trial of a study, so one-shot and black-box searches share one record.

This module imports no torch: methods import it (through ``nasforge.oneshot._engine``)
inside their functions, so listing the methods stays cheap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from nasforge.errors import InvalidConfigError, NasforgeError, UnsupportedOperationError

if TYPE_CHECKING:
    from nasforge.oneshot._data import SearchData
    from nasforge.oneshot._engine import SearchState
    from nasforge.spaces.base import SearchSpace

__all__ = [
    "DifferentiableMethod",
    "NonFiniteLossError",
    "OneShotMethod",
    "SupernetSettings",
    "check_non_negative",
    "check_space",
    "supernet_spaces",
]


class NonFiniteLossError(NasforgeError, ArithmeticError):
    """The loss of a search step was NaN or infinite; the search records the epoch as FAILED
    and stops, keeping the checkpoint of the last good epoch.

    Attributes:
        choices: The architecture being trained when it happened (its choices), if known.
    """

    def __init__(self, message: str, choices: tuple[int, ...] | None = None) -> None:
        super().__init__(message)
        self.choices = choices


@dataclass(frozen=True)
class SupernetSettings:
    """The supernet's shape and the data it trains on.

    Attributes:
        channels: Width: the space's first ``scale_keys`` setting (``C``, the channels of the
            first stage, in NB201 and DARTS).
        cells: Depth: the space's second ``scale_keys`` setting (cells per stage ``N`` in
            NB201, cells in all, ``layers``, in DARTS).
        resolution: Image side the data is resized to (``None``: the data's own).
        data_fraction: Share of the training images used (stratified by class); the search
            splits them in halves, one for the weights and one for the architecture (the
            ``cifar10-valid`` protocol of NAS-Bench-201).
        batch_size: Images per step on each half.
        options: Further keyword arguments of ``space.supernet()``, for a space whose
            supernet is not shaped by a width and a depth (no ``scale_keys``: the mobile
            spaces' ``width_mult``, ``stem_stride``...; ``resolution`` goes there too); their
            presets fill them, and ``channels`` and ``cells`` do not apply.

    :meth:`standard` gives the space's search-time settings (its ``"search"`` preset);
    :meth:`reduced` a setting a CPU trains in minutes (its ``"reduced"`` preset: NB201 and
    DARTS take fewer channels and cells, 16x16 images, a tenth of the data).
    """

    channels: int = 16
    cells: int = 5
    resolution: int | None = None
    data_fraction: float = 1.0
    batch_size: int = 64
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("channels", "cells", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(f"{name} must be a positive integer, got {value!r}.")
        if self.resolution is not None and (
            isinstance(self.resolution, bool)
            or not isinstance(self.resolution, int)
            or self.resolution < 4
        ):
            raise InvalidConfigError(
                f"resolution must be an integer of at least 4 pixels, got {self.resolution!r}."
            )
        if not 0.0 < float(self.data_fraction) <= 1.0:
            raise InvalidConfigError(
                f"data_fraction must be in (0, 1], got {self.data_fraction!r}."
            )

    @classmethod
    def standard(cls, space: str | SearchSpace) -> SupernetSettings:
        """The search-time settings of ``space`` (its ``"search"`` preset): NB201 16
        channels, 5 cells per stage; DARTS 16 channels, 8 layers; batch 64, full resolution,
        all the data."""
        return cls._preset(space, "search")

    @classmethod
    def reduced(cls, space: str | SearchSpace) -> SupernetSettings:
        """A CPU setting (``space``'s ``"reduced"`` preset): NB201 8 channels, 1 cell per
        stage; DARTS 8 channels, 5 layers; both 16x16 images, 10% of the training images,
        batch 64."""
        return cls._preset(space, "reduced")

    @classmethod
    def preset(cls, space: str | SearchSpace, name: str) -> SupernetSettings:
        """The settings of ``space``'s preset ``name`` (``"search"``, ``"reduced"``, and for
        the mobile spaces ``"cifar"``...).

        Raises:
            UnsupportedOperationError: ``space`` has no preset of that name (they are listed).
        """
        return cls._preset(space, name)

    @classmethod
    def _preset(cls, space: str | SearchSpace, name: str) -> SupernetSettings:
        from nasforge import spaces
        from nasforge.spaces.base import SearchSpace as _Space

        found = space if isinstance(space, _Space) else spaces.create(space)
        if not found.supports("presets"):
            found = check_space(found)  # refused with the message naming what is missing
        presets = found.presets()
        if name not in presets:
            raise UnsupportedOperationError(
                f"Search space {found.name!r} has no {name!r} preset; its presets are "
                f"{sorted(presets)}. Give SupernetSettings(channels=..., cells=...) instead."
            )
        preset = presets[name]
        shape: dict[str, Any] = {}
        if found.scale_keys is not None:  # a space of fixed shape (mobilenet) keeps the defaults
            width, depth = found.scale_keys
            shape = {
                "channels": int(preset[width]),
                "cells": 1 if depth is None else int(preset[depth]),
            }
        else:  # its preset's settings go to space.supernet() as they are
            from nasforge.spaces.base import DATA_SETTINGS

            data_keys = DATA_SETTINGS - {"resolution"}  # the supernet is built for its images
            shape = {"options": {k: v for k, v in preset.items() if k not in data_keys}}
        return cls(
            **shape,
            resolution=preset.get("resolution"),
            data_fraction=float(preset.get("data_fraction", 1.0)),
            batch_size=int(preset.get("batch_size", 64)),
        )

    def supernet_args(self, space: SearchSpace) -> dict[str, Any]:
        """The keyword arguments of ``space.supernet()`` for this width and depth (and
        :attr:`options`; for a space without width and depth settings, the options and the
        resolution)."""
        if space.scale_keys is None:
            args = dict(self.options)
            if self.resolution is not None:  # the images' side: the network is built for it
                args["resolution"] = self.resolution
            return args
        width, depth = scale_keys(space)
        if depth is None:  # a space of fixed depth: ``cells`` does not apply
            return {width: self.channels, **self.options}
        return {width: self.channels, depth: self.cells, **self.options}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.options:  # as before options existed (stored study settings compare)
            del data["options"]
        else:
            data["options"] = dict(self.options)
        return data


def scale_keys(space: SearchSpace) -> tuple[str, str | None]:
    """The width and depth settings of ``space`` (:attr:`SearchSpace.scale_keys`)."""
    keys = space.scale_keys
    if keys is None:
        raise UnsupportedOperationError(
            f"Search space {space.name!r} does not name its width and depth settings "
            "(scale_keys), which one-shot settings (channels, cells) map to."
        )
    return keys


def check_non_negative(**values: Any) -> None:
    """Refuse any of ``values`` (hyperparameters by name) that is not a number >= 0 (booleans
    are not numbers here).

    Raises:
        InvalidConfigError: Naming the first such value.
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InvalidConfigError(f"{name} must be a number >= 0, got {value!r}.")


def check_space(space: str | SearchSpace, *, supernet: bool = True) -> SearchSpace:
    """The space (built from its name if need be), refused when it has no supernet (with
    ``supernet=False``: no presets, for methods that build their own network from the
    space): the message names the capability and the spaces that have it."""
    from nasforge import spaces
    from nasforge.spaces.base import SearchSpace as _Space

    found = space if isinstance(space, _Space) else spaces.create(space)
    if (supernet and not found.supports("supernet")) or not found.supports("presets"):
        missing = "supernet()" if not found.supports("supernet") else "presets()"
        raise UnsupportedOperationError(
            f"Search space {found.name!r} lacks the capability {missing} that one-shot "
            "methods need (a weight-sharing network holding every candidate of every "
            f"decision, built with the space's presets). Spaces with a supernet: "
            f"{', '.join(supernet_spaces())}. Search {found.name!r} with a black-box "
            "strategy (nasforge list strategies) instead."
        )
    return found


def supernet_spaces() -> list[str]:
    """Names of the registered spaces that have a supernet (sorted)."""
    from nasforge import spaces
    from nasforge.spaces.base import SearchSpace as _Space

    return [
        name
        for name in spaces.names()
        if getattr(spaces.get(name), "supernet", _Space.supernet) is not _Space.supernet
    ]


class OneShotMethod(ABC):
    """Trains a supernet and derives an architecture from it (one file per method).

    A method is built from plain keyword arguments (its hyperparameters) and driven by
    :func:`nasforge.oneshot.search`, which calls :meth:`setup` once, then for every epoch
    :meth:`train_epoch` and :meth:`derive`, and saves :meth:`state_dict` after each. All
    randomness comes from the generators in the :class:`~nasforge.oneshot._engine.SearchState`
    (seeded by the search), so a run is a function of its seed on the CPU, and a resumed run
    continues bit for bit.

    Attributes:
        default_epochs: Epochs of the published protocol (on NAS-Bench-201 where it has one).
        partial_channels: ``K`` of PC-DARTS's partial channels (1: every channel).
        share_weights: The supernet's architecture weights are meaningful (softmax of the
            architecture parameters), so the search records the parameter-free share of their
            mass; ``False`` for methods without them (SPOS).
        space_requires: Capabilities of the space the method uses (SPOS: ``mutate`` and
            ``crossover``); a space without one is refused before anything is recorded.
    """

    default_epochs: ClassVar[int] = 50
    partial_channels: ClassVar[int] = 1
    share_weights: ClassVar[bool] = True
    #: Capabilities the method needs of the space besides its supernet (``space.supports``).
    space_requires: ClassVar[tuple[str, ...]] = ()

    def params(self) -> dict[str, Any]:
        """The hyperparameters it was built with (stored with the study)."""
        return {}

    def total_epochs(self, epochs: int) -> int:
        """How many recorded epochs a search of ``epochs`` supernet epochs takes (methods with
        a selection phase after training add its steps)."""
        return epochs

    def build_network(
        self, space: SearchSpace, settings: SupernetSettings, data: SearchData
    ) -> Any | None:
        """The network the method trains, for a method whose network is not the space's
        supernet (Single-Path NAS: one superkernel per layer, not a mixture of candidates);
        ``None`` (the default): the search builds ``space.supernet()``. A method that
        overrides it needs of the space only its presets, and refuses a space it cannot
        search with :class:`~nasforge.errors.UnsupportedOperationError`. The network has
        ``param_free_share(arch)``; the method derives the architectures from it."""
        return None

    @abstractmethod
    def setup(self, state: SearchState) -> None:
        """Create the architecture parameters and optimisers for ``state.supernet``."""

    @abstractmethod
    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        """Run epoch ``epoch`` (0-based); return statistics (``train_loss``, ``train_acc``...).

        Raises:
            NonFiniteLossError: A loss became NaN or infinite.
        """

    @abstractmethod
    def derive(self, state: SearchState) -> tuple[int, ...] | None:
        """The choices of the architecture the supernet stands for now (``None``: none yet)."""

    def arch_weights(self, state: SearchState) -> list[Any] | None:
        """The operation weights of each cell type (for statistics), or ``None``."""
        return None

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything beyond the supernet's weights needed to resume (tensors, numbers)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class DifferentiableMethod(OneShotMethod):
    """Shared machinery of the DARTS family: architecture parameters ``alpha`` (one
    ``(edges, operations)`` tensor per cell type, ``1e-3 N(0, 1)`` at the start), the weights'
    SGD with cosine annealing and gradient clipping, the architecture's Adam, the per-epoch
    loop over paired batches of the two data halves, derivation by argmax and the state a
    checkpoint needs. Subclasses define :meth:`step` (what one step updates) and may change
    :meth:`op_weights` (how ``alpha`` weighs the operations) and :meth:`edge_weights`.

    Defaults are NAS-Bench-201's search protocol for DARTS (its ``DARTS.config``: SGD lr
    0.025 annealed to 0.001 over 50 epochs, momentum 0.9, Nesterov, weight decay 5e-4, batch
    64, gradient norm clipped at 5; Adam for ``alpha`` with lr 3e-4, betas (0.5, 0.999),
    weight decay 1e-3). The DARTS paper itself used weight decay 3e-4 without Nesterov.
    """

    def __init__(
        self,
        *,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
    ) -> None:
        values = {
            "lr": lr,
            "lr_min": lr_min,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "grad_clip": grad_clip,
            "arch_lr": arch_lr,
            "arch_weight_decay": arch_weight_decay,
        }
        for name, value in values.items():
            if not (isinstance(value, (int, float)) and value >= 0.0):
                raise InvalidConfigError(f"{name} must be a number >= 0, got {value!r}.")
        if lr <= 0 or arch_lr < 0:
            raise InvalidConfigError(f"lr must be positive, got {lr!r}.")
        self.lr = float(lr)
        self.lr_min = float(lr_min)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)
        self.grad_clip = float(grad_clip)
        self.arch_lr = float(arch_lr)
        self.arch_weight_decay = float(arch_weight_decay)
        self.alphas: list[Any] = []
        self.w_optimizer: Any = None
        self.a_optimizer: Any = None

    def params(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "lr_min": self.lr_min,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
            "grad_clip": self.grad_clip,
            "arch_lr": self.arch_lr,
            "arch_weight_decay": self.arch_weight_decay,
        }

    # -- hooks --------------------------------------------------------------------------------
    def extra_shapes(self, state: SearchState) -> tuple[tuple[int, ...], ...]:
        """Shapes of further architecture parameters (PC-DARTS's edge weights)."""
        return ()

    def op_weights(self, state: SearchState, detach: bool = False) -> list[Any]:
        """The operations' weights of each cell type: ``softmax(alpha)``."""
        shapes = len(state.supernet.arch_shapes)
        return [(a.detach() if detach else a).softmax(dim=-1) for a in self.alphas[:shapes]]

    def edge_weights(self, state: SearchState, detach: bool = False) -> list[Any] | None:
        """Per-edge multipliers of each cell type, or ``None``."""
        return None

    def forward(self, state: SearchState, x: Any, detach: bool = False) -> Any:
        """The supernet's logits on ``x`` with the current architecture weights."""
        return state.supernet(
            x, self.op_weights(state, detach), None, self.edge_weights(state, detach)
        )

    def step(self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int) -> Any:
        """One search step on ``(x_train, y_train, x_valid, y_valid)``; returns the training
        logits and loss (for statistics)."""
        raise NotImplementedError  # pragma: no cover - every method defines it

    # -- the loop -----------------------------------------------------------------------------
    def setup(self, state: SearchState) -> None:
        import torch

        from nasforge.oneshot import _engine

        shapes = (*state.supernet.arch_shapes, *self.extra_shapes(state))
        self.alphas = _engine.init_alphas(shapes, state.generator, state.device)
        self.w_optimizer = _engine.weight_optimizer(
            state.supernet, self.lr, self.momentum, self.weight_decay, self.nesterov
        )
        self.a_optimizer = torch.optim.Adam(
            self.alphas, lr=self.arch_lr, betas=(0.5, 0.999), weight_decay=self.arch_weight_decay
        )

    def schedule(self, state: SearchState, epoch: int) -> float:
        """The weights' learning rate in ``epoch``: cosine from ``lr`` to ``lr_min``."""
        from nasforge.train.schedule import cosine_annealing

        return cosine_annealing(epoch, state.epochs, lr=self.lr, min_lr=self.lr_min)

    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        from nasforge.oneshot import _engine

        _engine.set_lr(self.w_optimizer, self.schedule(state, epoch))
        state.supernet.train()
        total_loss, hits, seen = 0.0, 0, 0
        for step, batch in enumerate(state.data.paired(state.generator, state.device)):
            logits, loss = self.step(state, batch, epoch, step)
            total_loss += float(loss.detach()) * int(batch[1].shape[0])
            hits += _engine.correct(logits.detach(), batch[1])
            seen += int(batch[1].shape[0])
        return {"train_loss": total_loss / max(1, seen), "train_acc": 100.0 * hits / max(1, seen)}

    def weight_step(
        self, state: SearchState, x: Any, y: Any, epoch: int, step: int, detach: bool = True
    ) -> tuple[Any, Any]:
        """Update the supernet's weights on one batch (architecture held fixed)."""
        import torch

        from nasforge.oneshot import _engine

        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.forward(state, x, detach=detach)
        loss = torch.nn.functional.cross_entropy(logits, y)
        _engine.check_finite(loss, "weight", epoch, step, self.current(state))
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(state.supernet.parameters(), self.grad_clip)
        self.w_optimizer.step()
        return logits, loss

    def arch_step(self, state: SearchState, x: Any, y: Any, epoch: int, step: int) -> Any:
        """Update the architecture parameters on one batch by the first-order gradient."""
        import torch

        from nasforge.oneshot import _engine

        self.a_optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.forward(state, x), y)
        _engine.check_finite(loss, "architecture", epoch, step, self.current(state))
        grads = torch.autograd.grad(loss, self.alphas, allow_unused=True)
        for a, g in zip(self.alphas, grads, strict=True):
            a.grad = torch.zeros_like(a) if g is None else g
        self.a_optimizer.step()
        return loss

    def current(self, state: SearchState) -> tuple[int, ...] | None:
        """The architecture derived now, or ``None`` when the weights are not finite."""
        import torch

        if not all(bool(torch.isfinite(a.detach()).all()) for a in self.alphas):
            return None
        return self.derive(state)

    def derive(self, state: SearchState) -> tuple[int, ...] | None:
        arch = state.supernet.derive(self.op_weights(state, True), self.edge_weights(state, True))
        return arch.choices

    def arch_weights(self, state: SearchState) -> list[Any] | None:
        return self.op_weights(state, detach=True)

    def state_dict(self) -> dict[str, Any]:
        return {
            "alphas": [a.detach().cpu().clone() for a in self.alphas],
            "w_optimizer": self.w_optimizer.state_dict(),
            "a_optimizer": self.a_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch

        with torch.no_grad():
            for a, saved in zip(self.alphas, state["alphas"], strict=True):
                a.copy_(saved)
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.a_optimizer.load_state_dict(state["a_optimizer"])
