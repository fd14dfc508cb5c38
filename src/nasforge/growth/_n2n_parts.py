"""The parts of N2N: its two policies, their REINFORCE update, the students' distillation,
the checks of its settings and the reading of its data.

Private helper of :mod:`nasforge.growth.n2n_learning` (which re-exports the public names and
cites the paper: Ashok, Rhinehart, Beainy & Kitani, ICLR 2018, arXiv:1709.06030); torch is
imported at module level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.growth.net2net import Layer
from nasforge.train.augment import normalize
from nasforge.train.data import DataSplits, split_train_valid
from nasforge.train.user_data import TensorData, UserData

__all__ = [
    "FEATURES",
    "Reinforce",
    "RemovalPolicy",
    "Settings",
    "ShrinkPolicy",
    "accuracy",
    "check_settings",
    "count_params",
    "distill",
    "layer_features",
    "logits",
    "read_data",
    "refusal_message",
]

#: Features of one layer (see :func:`layer_features`).
FEATURES = 9


def layer_features(descriptions: Sequence[Mapping[str, Any]]) -> torch.Tensor:
    """The policies' input: one row of :data:`FEATURES` numbers per layer of
    :func:`~nasforge.growth.net2net.describe` (N2N's layer description: kind, kernel, stride,
    widths, output size; plus whether it can be removed and whether it can be shrunk),
    scaled to about ``[0, 1]``."""
    rows = [
        [
            float(d["kind"] == "conv"),
            float(d["kind"] == "linear"),
            float(d.get("kernel", 1)) / 7.0,
            float(d.get("stride", 1)) / 2.0,
            math.log2(float(d.get("size", 1)) + 1.0) / 6.0,
            math.log2(float(d["in"]) + 1.0) / 10.0,
            math.log2(float(d["out"]) + 1.0) / 10.0,
            float(bool(d.get("removable", False))),
            float(bool(d.get("widenable", False))),
        ]
        for d in descriptions
    ]
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), FEATURES)


# -- the two policies --------------------------------------------------------------------------
class RemovalPolicy(nn.Module):
    """Stage 1 (Fig. 2a): a bidirectional LSTM over the layers, keep / remove per layer.

    Actions are ``1`` (keep) or ``0`` (remove); positions outside ``mask`` are always kept.
    """

    def __init__(self, features: int = FEATURES, hidden: int = 30, num_layers: int = 2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``(layers, 2)`` of remove (column 0) and keep (column 1)."""
        out, _ = self.lstm(x[None])
        return F.log_softmax(self.head(out[0]), dim=-1)

    def keep_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """The probability of keeping each layer."""
        with torch.no_grad():
            return self.forward(x)[:, 1].exp()

    def sample(
        self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """One action per layer (long tensor; ``1`` at every position outside ``mask``)."""
        with torch.no_grad():
            probs = self.forward(x).exp()
        drawn = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return torch.where(mask, drawn, torch.ones_like(drawn))

    def log_prob(self, x: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The summed log-probability of ``actions`` at the positions in ``mask``."""
        chosen = self.forward(x).gather(1, actions[:, None])[:, 0]
        return (chosen * mask.float()).sum()


class ShrinkPolicy(nn.Module):
    """Stage 2 (Fig. 2b): an autoregressive LSTM; step ``t`` reads layer ``t``'s features and
    the one-hot of the previous layer's ratio, and picks a ratio index (``-1`` outside
    ``mask``: the layer keeps its width, the next step reads zeros)."""

    def __init__(
        self, ratios: int, features: int = FEATURES, hidden: int = 30, num_layers: int = 2
    ) -> None:
        super().__init__()
        self.ratios = ratios
        self.lstm = nn.LSTM(features + ratios, hidden, num_layers, batch_first=True)
        self.head = nn.Linear(hidden, ratios)

    def _previous(self, actions: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(actions.clamp(min=0), self.ratios).float()
        onehot = onehot * (actions >= 0).float()[:, None]
        return torch.cat([torch.zeros(1, self.ratios), onehot[:-1]])

    def forward(self, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``(layers, ratios)`` with ``actions`` fed back (teacher forcing)."""
        out, _ = self.lstm(torch.cat([x, self._previous(actions)], dim=1)[None])
        return F.log_softmax(self.head(out[0]), dim=-1)

    def sample(
        self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """One ratio index per layer, drawn step by step (``-1`` outside ``mask``)."""
        actions = torch.full((len(x),), -1, dtype=torch.long)
        previous = torch.zeros(self.ratios)
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        with torch.no_grad():
            for t in range(len(x)):
                step = torch.cat([x[t], previous])[None, None]
                out, state = self.lstm(step, state)
                previous = torch.zeros(self.ratios)
                if bool(mask[t]):
                    probs = F.softmax(self.head(out[0, 0]), dim=-1)
                    actions[t] = int(torch.multinomial(probs, 1, generator=generator))
                    previous[actions[t]] = 1.0
        return actions

    def log_prob(self, x: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The summed log-probability of ``actions`` at the positions in ``mask``."""
        chosen = self.forward(x, actions).gather(1, actions.clamp(min=0)[:, None])[:, 0]
        return (chosen * mask.float()).sum()


class Reinforce:
    """REINFORCE with an exponential-moving-average baseline (N2N's policy gradient)."""

    def __init__(self, policy: RemovalPolicy | ShrinkPolicy, lr: float, decay: float) -> None:
        self.policy = policy
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
        self.decay = decay
        self.baseline: float | None = None

    def update(
        self, x: torch.Tensor, mask: torch.Tensor, samples: list[torch.Tensor], rewards: list[float]
    ) -> float:
        """One step on ``samples`` and their ``rewards``; returns the baseline it used."""
        mean = float(np.mean(rewards))
        b = mean if self.baseline is None else self.baseline
        self.optimizer.zero_grad()
        loss = torch.zeros(())
        for actions, reward in zip(samples, rewards, strict=True):
            loss = loss - (reward - b) * self.policy.log_prob(x, actions, mask)
        (loss / len(samples)).backward()
        self.optimizer.step()
        self.baseline = self.decay * b + (1.0 - self.decay) * mean
        return b


# -- distillation ------------------------------------------------------------------------------
def distill(
    student: nn.Module,
    teacher: nn.Module | torch.Tensor,
    inputs: torch.Tensor,
    *,
    epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Train ``student`` in place to match the teacher's logits (Ba & Caruana 2014's L2 loss,
    as N2N trains its students) with Adam; ``teacher`` is the network or its logits on
    ``inputs`` (computed once). Returns ``student``."""
    device = torch.device(device)
    targets = teacher if isinstance(teacher, torch.Tensor) else logits(teacher, inputs, device)
    student.to(device).train()
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(int(seed))
    n = len(inputs)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            if len(index) < 2 and n >= 2:  # a batch of one breaks batch norm
                continue
            out = student(inputs[index].to(device))
            loss = F.mse_loss(out, targets[index].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    student.eval()
    return student


def logits(model: nn.Module, inputs: torch.Tensor, device: torch.device) -> torch.Tensor:
    model.to(device).eval()
    with torch.no_grad():
        return torch.cat(
            [model(inputs[s : s + 256].to(device)).cpu() for s in range(0, len(inputs), 256)]
        )


def accuracy(model: nn.Module, data: TensorData, device: torch.device) -> float:
    out = logits(model, data.inputs, device)
    return float((out.argmax(1) == data.targets).float().mean())


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- settings and data -------------------------------------------------------------------------
def check_settings(
    removal: int,
    shrink: int,
    rollouts: int,
    epochs: int,
    ratios: Sequence[float],
    batch_size: int,
    baseline_decay: float,
) -> None:
    """Raise :class:`~nasforge.errors.InvalidConfigError` naming the first bad setting."""
    for name, value in (
        ("removal_iterations", removal),
        ("shrink_iterations", shrink),
        ("student_epochs", epochs),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidConfigError(f"{name} must be a non-negative integer, got {value!r}.")
    if removal + shrink == 0:
        raise InvalidConfigError(
            "removal_iterations and shrink_iterations are both 0: give at least one stage."
        )
    for name, value in (("rollouts", rollouts), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidConfigError(f"{name} must be a positive integer, got {value!r}.")
    if not 0.0 <= float(baseline_decay) < 1.0:
        raise InvalidConfigError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}.")
    if not ratios or any(not 0.0 < float(r) <= 1.0 for r in ratios):
        raise InvalidConfigError(f"ratios must be numbers in (0, 1], got {tuple(ratios)!r}.")


def read_data(data: Any, seed: int) -> tuple[TensorData, TensorData]:
    if isinstance(data, DataSplits):
        n_valid = max(1, len(data.train) // 10)
        train, valid = split_train_valid(data.train, n_valid, seed)
        return (
            TensorData(normalize(train.images, data.mean, data.std), train.labels),
            TensorData(normalize(valid.images, data.mean, data.std), valid.labels),
        )
    user = UserData.coerce(data)
    if user.task != "classification":
        raise InvalidConfigError(
            "N2N's reward needs accuracy: give integer class targets (the data has floating "
            "targets, a regression problem)."
        )
    return user.train, user.valid


@dataclass(frozen=True)
class Settings:
    """The settings of one :func:`n2n` run (see its arguments)."""

    removal_iterations: int
    shrink_iterations: int
    rollouts: int
    student_epochs: int
    ratios: tuple[float, ...]
    max_params: int | None
    min_accuracy: float | None
    student_lr: float
    batch_size: int
    policy_lr: float
    baseline_decay: float
    hidden: int
    score: Callable[[nn.Module], float] | None
    seed: int
    device: str


def refusal_message(layers: Sequence[Layer], what: str) -> str:
    """Why no layer of ``layers`` can be ``what`` (each layer named with its reasons)."""
    parts = []
    for layer in layers:
        why = "; ".join(layer.reasons) or "no reason given"
        parts.append(
            f"{layer.name!r} ({layer.kind} {layer.in_features}->{layer.out_features}): {why}"
        )
    return (
        f"N2N cannot compress this teacher: none of its layers can be {what}. "
        + " | ".join(parts)
        + ". N2N removes layers whose input and output shapes match and shrinks layers whose "
        "consumers can follow a narrower output (e.g. a VGG-like stack of convolutions)."
    )
