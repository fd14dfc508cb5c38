"""Settings of super-transformer training and the trained result (no torch).

The recipe is AutoFormer's (Chen, M., Peng, H., Fu, J. and Ling, H. "AutoFormer: Searching
Transformers for Visual Recognition." ICCV 2021, arXiv:2107.00651, Section 4.1), itself
DeiT's (Touvron et al., "Training data-efficient image transformers & distillation through
attention", ICML 2021, arXiv:2012.12877, Section 6 / Table 9): AdamW with weight decay 0.05,
a learning rate of ``5e-4 * batch_size / 512``, linear warm-up then cosine decay, label
smoothing 0.1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError

if TYPE_CHECKING:
    from nasforge.spaces.base import SearchSpace

__all__ = ["SAMPLINGS", "TrainedSuperViT", "ViTTrainSettings"]

#: How sub-networks are drawn per training step.
SAMPLINGS = ("uniform", "sandwich")


@dataclass(frozen=True)
class ViTTrainSettings:
    """How a super-transformer (or one sub-network alone) is trained.

    Attributes:
        epochs: Passes over the training half (or ``steps_per_epoch`` steps each).
        batch_size: Images per step.
        lr: Peak learning rate of AdamW (``None``: DeiT's rule ``lr_per_512 * batch_size /
            512``; see :attr:`peak_lr`).
        lr_per_512: The rate per 512 images of DeiT's rule (5e-4).
        weight_decay: AdamW's decoupled weight decay (0.05), not applied to biases, norms,
            class tokens and position embeddings (DeiT's ``no_weight_decay``).
        warmup_epochs: Epochs of linear warm-up before the cosine decay to zero.
        label_smoothing: Label smoothing of the cross-entropy (0.1).
        data_fraction: Share of the training images used (stratified by class), split in two
            halves: ``train`` fits the weights, ``valid`` measures sub-networks.
        steps_per_epoch: At most this many steps per epoch (``None``: full passes).
        seed: Seed of the weights, the split, the batches and every sampled sub-network.
        num_classes: Classes of the classifier (``None``: the data's).
        private: ViTAS's private class tokens and attention maps per choice
            (``SuperViT(private=...)``); ``False`` shares everything as AutoFormer.
        sampling: ``"uniform"`` (AutoFormer: one sub-network drawn uniformly per step) or
            ``"sandwich"`` (BigNAS: the largest, the smallest and ``sandwich_random`` random
            sub-networks per step, gradients summed).
        sandwich_random: Random sub-networks of a sandwich step (2).
        distill: With ``"sandwich"``: in-place distillation, the smaller sub-networks learn
            the largest's (detached) soft predictions instead of the labels (BigNAS,
            Slimmable/US-Nets).
        dropout: Dropout before the classifier.
        grad_clip: Gradient-norm clip (``None``: none, as DeiT).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None
    lr_per_512: float = 5e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 0
    label_smoothing: float = 0.1
    data_fraction: float = 1.0
    steps_per_epoch: int | None = None
    seed: int = 0
    num_classes: int | None = None
    private: bool = True
    sampling: str = "uniform"
    sandwich_random: int = 2
    distill: bool = False
    dropout: float = 0.0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        def positive_int(name: str, value: Any, optional: bool = False) -> None:
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                extra = " or None" if optional else ""
                raise InvalidConfigError(
                    f"{name} must be a positive integer{extra}, got {value!r}."
                )

        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive_int("steps_per_epoch", self.steps_per_epoch, optional=True)
        positive_int("num_classes", self.num_classes, optional=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidConfigError(f"seed must be a non-negative integer, got {self.seed!r}.")
        if self.lr is not None and not self.lr > 0:
            raise InvalidConfigError(f"lr must be positive or None, got {self.lr!r}.")
        if not self.lr_per_512 > 0:
            raise InvalidConfigError(f"lr_per_512 must be positive, got {self.lr_per_512!r}.")
        if not 0.0 < float(self.data_fraction) <= 1.0:
            raise InvalidConfigError(
                f"data_fraction must be in (0, 1], got {self.data_fraction!r}."
            )
        if not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise InvalidConfigError(
                f"label_smoothing and dropout must be in [0, 1), got {self.label_smoothing!r} "
                f"and {self.dropout!r}."
            )
        if self.weight_decay < 0 or isinstance(self.warmup_epochs, bool) or self.warmup_epochs < 0:
            raise InvalidConfigError(
                "weight_decay and warmup_epochs must not be negative, got "
                f"{self.weight_decay!r} and {self.warmup_epochs!r}."
            )
        if self.sampling not in SAMPLINGS:
            raise InvalidConfigError(
                f"Unknown sampling {self.sampling!r}; choose from {list(SAMPLINGS)}."
            )
        if isinstance(self.sandwich_random, bool) or not isinstance(self.sandwich_random, int):
            raise InvalidConfigError(
                f"sandwich_random must be an integer, got {self.sandwich_random!r}."
            )
        if self.sandwich_random < 0:
            raise InvalidConfigError(f"sandwich_random must be >= 0, got {self.sandwich_random}.")
        if self.distill and self.sampling != "sandwich":
            raise InvalidConfigError(
                "distill (in-place distillation from the largest sub-network) needs "
                "sampling='sandwich', which trains the largest every step."
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise InvalidConfigError(f"grad_clip must be positive or None, got {self.grad_clip!r}.")

    @property
    def peak_lr(self) -> float:
        """The learning rate after warm-up: ``lr``, or ``lr_per_512 * batch_size / 512``."""
        if self.lr is not None:
            return float(self.lr)
        return float(self.lr_per_512) * self.batch_size / 512.0

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values (for the manifest)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ViTTrainSettings:
        """The settings :meth:`to_dict` wrote.

        Raises:
            InvalidConfigError: An unknown key (the valid ones are listed).
        """
        from nasforge.train._runs import known_settings

        return cls(**known_settings(cls, values, "super-transformer training settings"))

    def replace(self, **changes: Any) -> ViTTrainSettings:
        """A copy with ``changes`` applied (validated)."""
        return self.from_dict({**self.to_dict(), **changes})


@dataclass(eq=False)
class TrainedSuperViT:
    """A trained super-transformer and how it was trained.

    Attributes:
        supernet: The :class:`~nasforge.ops.super_vit.SuperViT` (in eval mode).
        space: Its space.
        settings: The training settings.
        epochs_done: Epochs finished (``settings.epochs`` after a complete run).
        metadata: The manifest (run identity and per-epoch history).
    """

    supernet: Any
    space: SearchSpace
    settings: ViTTrainSettings
    epochs_done: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every epoch of the settings is done."""
        return self.epochs_done >= self.settings.epochs
