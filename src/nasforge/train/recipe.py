"""The training recipe: a frozen record of every choice that shapes how a network is trained.

A :class:`Recipe` holds the optimiser and its settings, the learning-rate schedule (cosine
annealing with a linear warm-up), the regularisers (weight decay, label smoothing, cutout,
gradient clipping, and for DARTS networks the auxiliary head and drop-path) and the batch
size and epochs, and the recipe settings FBNetV3 searches beside the architecture (mixup,
an exponential moving average of the weights, dropout before the classifier; Dai et al.,
"FBNetV3: Joint Architecture-Recipe Search using Predictor Pretraining", CVPR 2021,
arXiv:2006.02049, Section 3 and Table 1). It is plain data: :meth:`Recipe.to_dict` and
:meth:`Recipe.from_dict` turn it into JSON-ready values and back, so a study can store it and
rebuild the same evaluator when it resumes. This module does not import torch.

The defaults are the NAS-Bench-201 recipe (Dong and Yang, ICLR 2020, arXiv:2001.00326,
Section 2.3): SGD with Nesterov momentum 0.9, learning rate 0.1 annealed to 0 with a cosine,
weight decay 5e-4, batch size 256, 200 epochs, random crop and flip, no label smoothing.
Each search space owns its default recipe (``space.recipe()``; the DARTS space's is DARTS's
CIFAR-10 evaluation), and :meth:`Recipe.named` finds it by the space's name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nasforge.errors import InvalidConfigError, UnknownNameError

__all__ = ["OPTIMIZERS", "Recipe", "cosine_warmup_lr"]

#: The optimisers a recipe can name.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw", "lion")
#: The default ``(beta1, beta2)`` of each optimiser that has them.
DEFAULT_BETAS: Mapping[str, tuple[float, float]] = {
    "adamw": (0.9, 0.999),
    "lion": (0.9, 0.99),
}


@dataclass(frozen=True)
class Recipe:
    """How a network is trained. Every field has the NAS-Bench-201 value by default.

    Attributes:
        optimizer: ``"sgd"`` (with ``momentum`` and ``nesterov``; its weight decay is the
            classic L2 term added to the gradient), ``"adamw"`` (decoupled weight decay,
            Loshchilov and Hutter, ICLR 2019) or ``"lion"`` (decoupled weight decay,
            :class:`nasforge.train.lion.Lion`; Chen et al. advise a learning rate 3-10x
            smaller and a weight decay 3-10x larger than AdamW's).
        lr: Peak learning rate (reached at the end of the warm-up).
        momentum: SGD momentum.
        nesterov: SGD with Nesterov momentum.
        betas: ``(beta1, beta2)`` of AdamW or Lion; ``None`` takes the optimiser's default
            (AdamW ``(0.9, 0.999)``, Lion ``(0.9, 0.99)``).
        weight_decay: Weight decay of every parameter (batch-norm ones included, as in
            NAS-Bench-201).
        epochs: Passes over the training data.
        batch_size: Training images per step.
        warmup_epochs: Epochs of linear warm-up from ``lr / warmup_steps`` to ``lr`` (may be
            fractional; 0: none).
        min_lr: The learning rate the cosine ends at.
        label_smoothing: Label smoothing of the cross-entropy loss (Szegedy et al., 2016).
        crop_padding: Zero padding of the random crop, in pixels of a 32x32 image (scaled
            with the resolution, at least 1); 0: no crop.
        flip: Random horizontal flips.
        cutout: Side of the square that cutout (DeVries and Taylor, 2017, arXiv:1708.04552)
            blanks in each training image, in pixels of a 32x32 image (scaled with the
            resolution); 0: off.
        grad_clip: Largest global L2 norm of the gradients (clipped above it); ``None``: off.
        auxiliary_weight: Weight of the auxiliary head's loss for networks that return
            ``(logits, aux_logits)`` in training (DARTS: 0.4); 0 builds no auxiliary head.
        drop_path_prob: Final drop-path probability of networks with a ``drop_path_prob``
            attribute, raised linearly over the epochs as in DARTS (0: off).
        eval_batch_size: Images per forward pass when measuring accuracy.
        mixup: The ``alpha`` of mixup (Zhang et al., "mixup: Beyond Empirical Risk
            Minimization", ICLR 2018, arXiv:1710.09412): each training batch is mixed with a
            shuffled copy of itself, ``lam * x + (1 - lam) * x[perm]``, with
            ``lam ~ Beta(alpha, alpha)`` drawn per batch, and the loss mixed in the same
            proportion; 0: off.
        ema: Decay of an exponential moving average of the weights (and a copy of the
            batch-norm statistics), updated after every step; the averaged weights are the
            trained network (what is evaluated and saved). The decay of step ``t`` is
            ``min(ema, (1 + t) / (10 + t))``, TensorFlow's ``num_updates`` warm-up, so that
            short runs do not keep the initial weights; 0: off.
        dropout: Dropout probability on the classifier's input (the network's last linear
            layer) during training, in addition to any dropout the network has; ``None``:
            the network as built.

    Raises:
        UnknownNameError: An optimiser other than :data:`OPTIMIZERS`.
        InvalidConfigError: A value out of range (the message names the field).

    Example:
        >>> r = Recipe(optimizer="lion", lr=3e-4, weight_decay=0.1, epochs=12, cutout=16)
        >>> r.resolved_betas()
        (0.9, 0.99)
        >>> Recipe.from_dict(r.to_dict()) == r
        True
    """

    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    betas: tuple[float, float] | None = None
    weight_decay: float = 5e-4
    epochs: int = 200
    batch_size: int = 256
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    label_smoothing: float = 0.0
    crop_padding: int = 4
    flip: bool = True
    cutout: int = 0
    grad_clip: float | None = None
    auxiliary_weight: float = 0.0
    drop_path_prob: float = 0.0
    eval_batch_size: int = 512
    mixup: float = 0.0
    ema: float = 0.0
    dropout: float | None = None

    def __post_init__(self) -> None:
        name = str(self.optimizer).lower()
        if name not in OPTIMIZERS:
            raise UnknownNameError("optimizer", str(self.optimizer), OPTIMIZERS)
        object.__setattr__(self, "optimizer", name)
        if self.betas is not None:
            try:
                b1, b2 = (float(b) for b in self.betas)
            except (TypeError, ValueError):
                raise InvalidConfigError(
                    f"Recipe betas must be two numbers (beta1, beta2), got {self.betas!r}."
                ) from None
            for label, value in (("beta1", b1), ("beta2", b2)):
                if not 0.0 <= value < 1.0:
                    raise InvalidConfigError(f"Recipe {label} must be in [0, 1), got {value!r}.")
            object.__setattr__(self, "betas", (b1, b2))
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _positive_int("eval_batch_size", self.eval_batch_size)
        _number("lr", self.lr, low=0.0, low_open=True)
        _number("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _number("weight_decay", self.weight_decay, low=0.0)
        _number("warmup_epochs", self.warmup_epochs, low=0.0)
        _number("min_lr", self.min_lr, low=0.0)
        _number("label_smoothing", self.label_smoothing, low=0.0, high=1.0, high_open=True)
        _number("auxiliary_weight", self.auxiliary_weight, low=0.0)
        _number("drop_path_prob", self.drop_path_prob, low=0.0, high=1.0, high_open=True)
        _number("mixup", self.mixup, low=0.0)
        _number("ema", self.ema, low=0.0, high=1.0, high_open=True)
        if self.dropout is not None:
            _number("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        for label in ("cutout", "crop_padding"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidConfigError(
                    f"Recipe {label} is a length in pixels (0: off), got {value!r}."
                )
        if not isinstance(self.flip, bool):
            raise InvalidConfigError(f"Recipe flip must be true or false, got {self.flip!r}.")
        if self.grad_clip is not None:
            _number("grad_clip", self.grad_clip, low=0.0, low_open=True)
        if self.min_lr > self.lr:
            raise InvalidConfigError(
                f"Recipe min_lr ({self.min_lr}) is above lr ({self.lr}); the cosine runs from "
                "lr down to min_lr."
            )
        if self.warmup_epochs > self.epochs:
            raise InvalidConfigError(
                f"Recipe warmup_epochs ({self.warmup_epochs}) exceeds epochs ({self.epochs})."
            )
        if not isinstance(self.nesterov, bool):
            raise InvalidConfigError(
                f"Recipe nesterov must be true or false, got {self.nesterov!r}."
            )
        if self.nesterov and self.optimizer == "sgd" and self.momentum == 0:
            raise InvalidConfigError("Nesterov SGD needs momentum > 0; set nesterov=False.")

    def resolved_betas(self) -> tuple[float, float]:
        """``betas``, or the optimiser's default when ``None``."""
        if self.betas is not None:
            return self.betas
        return DEFAULT_BETAS.get(self.optimizer, (0.9, 0.999))

    def replace(self, **changes: Any) -> Recipe:
        """A copy with ``changes`` applied (validated again)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise UnknownNameError("recipe field", unknown[0], known)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (``betas`` as a list or ``None``); the FBNetV3
        settings (``mixup``, ``ema``, ``dropout``) only when they are not off, so that the
        records of studies written before them compare equal."""
        out = dataclasses.asdict(self)
        out["betas"] = None if self.betas is None else list(self.betas)
        for name, off in _OFF.items():
            if out[name] == off:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """The recipe of :meth:`to_dict`'s output; fields left out keep their defaults.

        Raises:
            UnknownNameError: A key that is not a field (the message lists the fields).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise UnknownNameError("recipe field", str(key), known)
        values = dict(data)
        if values.get("betas") is not None:
            values["betas"] = tuple(values["betas"])
        return cls(**values)

    @classmethod
    def named(cls, name: str) -> Recipe:
        """The default recipe of the search space registered as ``name`` (``"nb201"``:
        these defaults; ``"darts"``: DARTS's CIFAR-10 evaluation), from ``space.recipe()``.

        Raises:
            UnknownNameError: No space of that name (the valid ones are listed).
        """
        from nasforge import spaces

        if name not in spaces.names():
            raise UnknownNameError("recipe", name, spaces.names())
        recipe = spaces.create(name).recipe()
        if not isinstance(recipe, Recipe):
            raise UnknownNameError("recipe", name, spaces.names())
        return recipe


#: The recipe settings added for FBNetV3 and their "off" values (left out of ``to_dict``).
_OFF: Mapping[str, Any] = {"mixup": 0.0, "ema": 0.0, "dropout": None}


def cosine_warmup_lr(
    step: int, total_steps: int, *, lr: float, warmup_steps: int = 0, min_lr: float = 0.0
) -> float:
    """The learning rate of optimiser step ``step`` (0-based) of ``total_steps``.

    Linear warm-up over the first ``warmup_steps`` steps, step ``s`` taking
    ``lr * (s + 1) / warmup_steps``; then a cosine from ``lr`` to ``min_lr`` (Loshchilov and
    Hutter, "SGDR", ICLR 2017, without restarts) over the remaining steps: step
    ``warmup_steps + k`` of ``n = total_steps - warmup_steps`` takes
    ``min_lr + (lr - min_lr) * (1 + cos(pi * k / n)) / 2``. The schedule is stepped per
    batch, not per epoch, so it is the same curve for any number of steps per epoch.

    Example:
        >>> [round(cosine_warmup_lr(s, 6, lr=1.0, warmup_steps=2), 3) for s in range(6)]
        [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    if total_steps < 1:
        raise InvalidConfigError(f"total_steps must be at least 1, got {total_steps}.")
    warmup_steps = max(0, min(int(warmup_steps), total_steps))
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = total_steps - warmup_steps
    if span <= 0:
        return lr
    progress = min(max(step - warmup_steps, 0), span) / span
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _positive_int(label: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidConfigError(f"Recipe {label} must be a positive integer, got {value!r}.")


def _number(
    label: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        interval = (
            f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        )
        raise InvalidConfigError(f"Recipe {label} must be a number in {interval}, got {value!r}.")
