"""EAS: a reinforcement-learning meta-controller that grows a trained network by Net2Net.

Cai, H., Chen, T., Zhang, W., Yu, Y. and Wang, J. "Efficient Architecture Search by Network
Transformation." AAAI 2018, arXiv:1707.04873 (Section 3 and Figure 1-3; the reference code's
settings where the paper gives none).

What follows the paper:

* **Encoder** (Section 3.1): each layer's description is embedded (16 dimensions) and read by
  a bidirectional LSTM (50 units each way); its per-layer outputs are the actors' input.
* **Net2Wider actor** (Section 3.2, Figure 2): one shared sigmoid classifier per layer decides
  whether to widen it; a widened layer goes to the next width of a ladder (the paper's
  ``filter_widths`` and ``unit_widths``), by :func:`nasforge.growth.widen` with noise (1e-2 of
  the weights' standard deviation, as the reference code).
* **Net2Deeper actor** (Section 3.3, Figure 3): an LSTM initialised with the encoder's final
  state decides, one after the other, the block (layers between two resolution changes, as
  the paper's blocks between pooling layers), the position in it (after which layer) and the
  kernel size of the new layer (``kernels``, 1/3/5; none for a fully connected layer),
  inserted by :func:`nasforge.growth.deepen` (identity initialisation, batch norm at
  identity).
* **Episodes** (Section 4.1): each step samples ``networks_per_step`` networks; each gets
  ``wider_actions`` Net2Wider decisions then ``deeper_actions`` Net2Deeper decisions (the
  paper: 4 and 5), each read off the network as transformed so far; the networks are trained
  briefly (``train_epochs``, the reused weights make that enough) and their validation
  accuracy is the reward, transformed by ``tan(acc * pi / 2)`` (Section 4.1: an accuracy
  gain near the top counts more), minus an exponential moving-average baseline (decay 0.95).
  REINFORCE (Williams 1992) updates the encoder and both actors with Adam (learning rate
  2e-3) and a small entropy bonus (1e-5). A network of the same architecture as one already
  evaluated is not trained again (the reference code's network pool).

Adaptations, each stated: (1) the layer embedding is a linear map of numeric features of
:func:`nasforge.growth.describe` (kind, widths, kernel, stride, resolution) instead of a token
vocabulary, so any traced network can be encoded; (2) the block and position decisions are
pointers over the blocks' and layers' encodings instead of fixed-size softmaxes, so a network
of any depth fits; (3) accuracies are clipped to 0.99 before the tangent; (4) the paper
starts every episode from the same start network (``grow_from="start"``); ``grow_from="best"``
starts each step from the best network found so far instead, growing a lineage (used by
``benchmarks/eas_growth.py`` to measure the accuracy gained per grown step); (5) the
training recipe is nasforge's (:func:`nasforge.train.train`, SGD with a cosine schedule from
``lr``; the reference code fine-tunes at 0.02 for 20 epochs).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.growth import net2net
from nasforge.train.augment import normalize
from nasforge.train.data import DataSplits, ImageData, split_train_valid
from nasforge.train.recipe import Recipe
from nasforge.train.trainer import derive_seeds, evaluate_accuracy, seeded, train

__all__ = ["EASResult", "GrownNetwork", "eas"]

#: The paper's filter counts for convolutions and units for fully connected layers.
FILTER_WIDTHS = (16, 32, 64, 96, 128, 192, 256, 320, 384, 448, 512)
UNIT_WIDTHS = (64, 128, 256, 384, 512, 640, 768, 896, 1024)
_FEATURES = 9


@dataclass(frozen=True)
class GrownNetwork:
    """One network the meta-controller sampled.

    Attributes:
        step: The step (episode) it was sampled in, from 1 (0: the parent).
        sample: Its index in the step.
        accuracy: Validation accuracy in percent after its brief training.
        params: Its number of parameters.
        transformations: What was applied to the step's start network, in order.
        reward: ``tan(acc * pi / 2)`` of its accuracy.
        trained: False when an identical architecture had been trained before (its
            accuracy reused).
        architecture: One line per layer kind and widths, for comparing networks.
    """

    step: int
    sample: int
    accuracy: float
    params: int
    transformations: tuple[str, ...]
    reward: float
    trained: bool
    architecture: str


@dataclass
class EASResult:
    """The networks an EAS run grew.

    Attributes:
        parent: The starting network's record (``step`` 0).
        history: Every sampled network, in order.
        best: The record of the most accurate network (the parent if none beat it).
        best_model: That network, trained.
        baselines: The moving-average baseline after each step.
        epochs: Training epochs spent on sampled networks in all.
        controller: The trained meta-controller (encoder and actors).
    """

    parent: GrownNetwork
    history: list[GrownNetwork] = field(default_factory=list)
    best: GrownNetwork | None = None
    best_model: nn.Module | None = None
    baselines: list[float] = field(default_factory=list)
    epochs: int = 0
    controller: nn.Module | None = None

    def best_per_step(self) -> list[float]:
        """The best validation accuracy found up to each step (the parent's first)."""
        out = [self.parent.accuracy]
        for step in range(1, len(self.baselines) + 1):
            found = [g.accuracy for g in self.history if g.step == step]
            out.append(max([out[-1], *found]))
        return out


def reward(accuracy: float) -> float:
    """The paper's reward transform ``tan(acc * pi / 2)`` of an accuracy in percent (clipped
    to 99%)."""
    return math.tan(min(max(accuracy / 100.0, 0.0), 0.99) * math.pi / 2)


def _features(row: dict[str, Any]) -> list[float]:
    conv = row["kind"] == "conv"
    return [
        1.0 if conv else 0.0,
        0.0 if conv else 1.0,
        math.log2(row["out"] + 1) / 10,
        math.log2(row["in"] + 1) / 10,
        row["kernel"] / 7,
        row["stride"] / 2,
        math.log2(row["size"] + 1) / 8,
        1.0 if row["groups"] > 1 else 0.0,
        1.0 if row["widenable"] else 0.0,
    ]


def _architecture(rows: Sequence[dict[str, Any]]) -> str:
    return " ".join(
        f"{r['kind']}{r['kernel']}x{r['out']}" if r["kind"] == "conv" else f"fc{r['out']}"
        for r in rows
    )


def _blocks(rows: Sequence[dict[str, Any]], allowed: Sequence[bool]) -> list[list[int]]:
    """Indices of the deepenable layers grouped by block: consecutive layers of one output
    resolution (fully connected layers form the last block)."""
    blocks: list[list[int]] = []
    key: Any = None
    for i, row in enumerate(rows):
        here = (row["kind"], row["size"])
        if here != key:
            blocks.append([])
            key = here
        if allowed[i]:
            blocks[-1].append(i)
    return [b for b in blocks if b]


class _Controller(nn.Module):
    """Encoder (bidirectional LSTM) and the Net2Wider and Net2Deeper actors."""

    def __init__(self, kernels: int, embed: int = 16, hidden: int = 50) -> None:
        super().__init__()
        self.embed = nn.Linear(_FEATURES, embed)
        self.encoder = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)
        width = 2 * hidden
        self.wider = nn.Linear(width, 1)
        self.cell = nn.LSTMCell(embed, width)
        self.start = nn.Parameter(torch.zeros(embed))
        self.block_in = nn.Linear(width, embed)
        self.layer_in = nn.Linear(width, embed)
        self.query = nn.Linear(width, width, bias=False)
        self.key = nn.Linear(width, width, bias=False)
        self.score = nn.Linear(width, 1, bias=False)
        self.kernel = nn.Linear(width, kernels)

    def encode(self, rows: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(torch.tensor([_features(r) for r in rows], dtype=torch.float32))
        out, (h, _) = self.encoder(x[None])
        return out[0], torch.cat([h[0, 0], h[1, 0]])

    def pointer(self, state: torch.Tensor, options: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.score(torch.tanh(self.query(state) + self.key(options)))
        return scores.squeeze(-1)


@dataclass
class _Episode:
    logps: list[torch.Tensor] = field(default_factory=list)
    entropies: list[torch.Tensor] = field(default_factory=list)
    done: list[str] = field(default_factory=list)


def _choose(logits: torch.Tensor, rng: np.random.Generator, episode: _Episode) -> int:
    logp = torch.log_softmax(logits, dim=-1)
    probs = logp.exp().detach().numpy().astype(np.float64)
    choice = int(rng.choice(len(probs), p=probs / probs.sum()))
    episode.logps.append(logp[choice])
    episode.entropies.append(-(logp.exp() * logp).sum())
    return choice


def _next_width(current: int, ladder: Sequence[int]) -> int | None:
    return next((w for w in ladder if w > current), None)


def _wider(
    ctl: _Controller,
    model: nn.Module,
    example: torch.Tensor,
    ladders: tuple[Sequence[int], Sequence[int]],
    noise: float,
    rng: np.random.Generator,
    episode: _Episode,
) -> nn.Module:
    rows = net2net.describe(model, example)
    out, _ = ctl.encode(rows)
    probs = torch.sigmoid(ctl.wider(out).squeeze(-1))
    targets = []
    for i, row in enumerate(rows):
        ladder = ladders[0] if row["kind"] == "conv" else ladders[1]
        width = _next_width(row["out"], ladder)
        if not row["widenable"] or width is None:
            continue
        take = bool(rng.random() < float(probs[i].detach()))
        p = probs[i] if take else 1 - probs[i]
        episode.logps.append(torch.log(p.clamp_min(1e-8)))
        q = probs[i].clamp(1e-8, 1 - 1e-8)
        episode.entropies.append(-(q * q.log() + (1 - q) * (1 - q).log()))
        if take:
            targets.append((row["name"], row["out"], width))
    for name, before, width in targets:
        model = net2net.widen(model, example, name, width, rng=rng, noise=noise)
        episode.done.append(f"widen {name!r} {before}->{width}")
    return model


def _deeper(
    ctl: _Controller,
    model: nn.Module,
    example: torch.Tensor,
    kernels: Sequence[int],
    rng: np.random.Generator,
    episode: _Episode,
) -> nn.Module:
    rows = net2net.describe(model, example)
    allowed = [r["calls"] == 1 and not r["output"] and r["groups"] == 1 for r in rows]
    blocks = _blocks(rows, allowed)
    if not blocks:
        return model
    out, final = ctl.encode(rows)
    state = (final[None], torch.zeros_like(final)[None])
    h, c = ctl.cell(ctl.start[None], state)
    summaries = torch.stack([out[b].mean(0) for b in blocks])
    chosen = _choose(ctl.pointer(h[0], summaries), rng, episode)
    block = blocks[chosen]
    h, c = ctl.cell(ctl.block_in(summaries[chosen])[None], (h, c))
    layer = block[_choose(ctl.pointer(h[0], out[block]), rng, episode)]
    row = rows[layer]
    if row["kind"] == "conv":
        h, c = ctl.cell(ctl.layer_in(out[layer])[None], (h, c))
        kernel = kernels[_choose(ctl.kernel(h[0]), rng, episode)]
        episode.done.append(f"deepen after {row['name']!r} (conv {kernel}x{kernel})")
    else:
        kernel = 1
        episode.done.append(f"deepen after {row['name']!r} (linear)")
    return net2net.deepen(model, example, layer, kernel=kernel)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def eas(
    model: nn.Module,
    data: DataSplits,
    *,
    example: torch.Tensor | None = None,
    steps: int = 5,
    networks_per_step: int = 10,
    wider_actions: int = 4,
    deeper_actions: int = 5,
    train_epochs: int = 20,
    recipe: Recipe | None = None,
    valid_size: int | None = None,
    kernels: Sequence[int] = (1, 3, 5),
    filter_widths: Sequence[int] = FILTER_WIDTHS,
    unit_widths: Sequence[int] = UNIT_WIDTHS,
    wider_noise: float = 1e-2,
    grow_from: Literal["start", "best"] = "start",
    controller_lr: float = 2e-3,
    entropy_weight: float = 1e-5,
    baseline_decay: float = 0.95,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> EASResult:
    """Grow ``model`` with the EAS meta-controller (see the module docstring).

    Args:
        model: A trained network (any :mod:`torch.fx`-traceable ``nn.Module``); not modified.
        data: Images (:class:`nasforge.train.DataSplits`); a class-balanced validation split
            of ``valid_size`` images (default a tenth, at most 5000) is cut from its training
            images and gives the rewards.
        example: An input batch for tracing; the batch norms that Net2DeeperNet inserts
            take its statistics (default: 64 normalised training images, as the reference
            code sets the new layers from one batch of 64).
        steps: Episodes of the meta-controller.
        networks_per_step: Networks sampled per episode (the paper: 10).
        wider_actions, deeper_actions: Net2Wider / Net2Deeper decisions per network (4, 5).
        train_epochs: Epochs each sampled network is trained (the paper: 20).
        recipe: Training settings (default: SGD, learning rate 0.02, batch 64, cosine
            schedule, the epochs set to ``train_epochs``).
        kernels: Kernel sizes the Net2Deeper actor chooses from.
        filter_widths, unit_widths: The width ladders of convolutions and linear layers.
        wider_noise: Noise of Net2Wider (relative to the weights' standard deviation).
        grow_from: ``"start"`` (the paper: every episode transforms ``model``) or ``"best"``
            (each episode transforms the best network so far).
        controller_lr, entropy_weight, baseline_decay: REINFORCE settings (the paper's).
        seed: Seed of everything random (controller, sampling, training).
        device: Where the sampled networks train.

    Raises:
        UnsupportedOperationError: No layer of ``model`` can be widened or deepened (the
            message lists each layer with its reasons) or it cannot be traced.
        InvalidConfigError: A setting out of range.
    """
    for label, value in (
        ("steps", steps),
        ("networks_per_step", networks_per_step),
        ("train_epochs", train_epochs),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidConfigError(f"eas() needs {label} >= 1, got {value!r}.")
    if wider_actions < 0 or deeper_actions < 0 or wider_actions + deeper_actions == 0:
        raise InvalidConfigError(
            "eas() needs wider_actions and deeper_actions >= 0, not both 0; got "
            f"{wider_actions} and {deeper_actions}."
        )
    if grow_from not in ("start", "best"):
        raise InvalidConfigError(f"grow_from must be 'start' or 'best', got {grow_from!r}.")
    if not kernels or any(k < 1 or k % 2 == 0 for k in kernels):
        raise InvalidConfigError(f"kernels must be positive odd sizes, got {tuple(kernels)}.")
    if not isinstance(data, DataSplits):
        raise InvalidConfigError(
            f"eas() takes its images as nasforge.train.DataSplits (load_cifar10, "
            f"SyntheticImages(...).load()), got {type(data).__name__}."
        )
    n = len(data.train)
    valid_size = min(5000, n // 10) if valid_size is None else valid_size
    train_part, valid_part = split_train_valid(data.train, max(1, valid_size), seed)
    if example is None:
        example = normalize(train_part.images[:64], data.mean, data.std)
    recipe = replace(
        recipe or Recipe(lr=0.02, batch_size=64, weight_decay=5e-4), epochs=train_epochs
    )
    _check_growable(model, example)
    rng = np.random.default_rng(seed)
    with seeded(derive_seeds(seed, 1)[0]):
        ctl = _Controller(len(kernels))
    optimizer = torch.optim.Adam(ctl.parameters(), lr=controller_lr)
    start = copy.deepcopy(model).cpu()
    parent_acc = _accuracy(start, valid_part, data, device)
    rows = net2net.describe(start, example)
    parent = GrownNetwork(
        0, 0, parent_acc, _params(start), (), reward(parent_acc), False, _architecture(rows)
    )
    result = EASResult(parent=parent, best=parent, best_model=start, controller=ctl)
    seen: dict[str, float] = {}
    baseline = 0.0
    ladders = (tuple(filter_widths), tuple(unit_widths))
    for step in range(1, steps + 1):
        base = result.best_model if grow_from == "best" else start
        assert base is not None
        episodes: list[_Episode] = []
        rewards: list[float] = []
        for sample in range(networks_per_step):
            episode = _Episode()
            child = base
            for _ in range(wider_actions):
                child = _wider(ctl, child, example, ladders, wider_noise, rng, episode)
            for _ in range(deeper_actions):
                child = _deeper(ctl, child, example, kernels, rng, episode)
            child = copy.deepcopy(child)
            arch = _architecture(net2net.describe(child, example))
            key = arch if grow_from == "start" else f"{step}:{arch}"
            trained = key not in seen
            if trained:
                train(
                    child,
                    train_part,
                    recipe,
                    mean=data.mean,
                    std=data.std,
                    seed=int(rng.integers(2**31)),
                    device=device,
                )
                child.cpu()
                result.epochs += train_epochs
                seen[key] = _accuracy(child, valid_part, data, device)
            acc = seen[key]
            grown = GrownNetwork(
                step, sample, acc, _params(child), tuple(episode.done), reward(acc), trained, arch
            )
            result.history.append(grown)
            if trained and acc > result.best.accuracy:  # type: ignore[union-attr]
                result.best, result.best_model = grown, child
            episodes.append(episode)
            rewards.append(grown.reward)
        baseline += baseline_decay * (float(np.mean(rewards)) - baseline)
        result.baselines.append(baseline)
        loss = torch.zeros(())
        for episode, gain in zip(episodes, rewards, strict=True):
            if episode.logps:
                advantage = gain - baseline
                loss = loss - advantage * torch.stack(episode.logps).sum() / networks_per_step
                loss = loss - entropy_weight * torch.stack(episode.entropies).sum()
        if loss.requires_grad:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return result


def _accuracy(
    model: nn.Module, part: ImageData, data: DataSplits, device: str | torch.device
) -> float:
    acc = evaluate_accuracy(model.to(device), part, mean=data.mean, std=data.std, device=device)
    model.cpu()
    return acc


def _check_growable(model: nn.Module, example: torch.Tensor) -> None:
    """Refuse a network none of whose layers can be widened or deepened."""
    rows = net2net.describe(model, example)
    if any(
        r["widenable"] or (r["calls"] == 1 and not r["output"] and r["groups"] == 1) for r in rows
    ):
        return
    found = net2net.layers(model, example)
    listed = "; ".join(f"{layer.name!r}: {', '.join(layer.reasons)}" for layer in found)
    raise UnsupportedOperationError(
        f"EAS cannot grow {type(model).__name__}: none of its {len(found)} layers can be "
        f"widened or deepened ({listed or 'it has no Conv2d or Linear layer'})."
    )
