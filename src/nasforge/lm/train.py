"""Training of the ``llm`` super-network: pre-training of the largest network, InstaTune's
one-shot fine-tuning of its sub-networks, training of one network alone, and perplexity.

Sridhar, S. N., Kundu, S., Sundaresan, S., Szankin, M. and Sarah, A. "InstaTune:
Instantaneous Neural Architecture Search During Fine-Tuning." ICCV Workshops 2023,
arXiv:2308.15609, and Sarah, A. et al. "LLaMA-NAS: Efficient Neural Architecture Search for
Large Language Models." arXiv:2405.18377, Sec. 3: a pre-trained network (LLaMA2-7B there,
:func:`train_largest` here, since nothing is downloaded) is made a super-network *during its
fine-tuning*: each step trains sub-networks sharing the pre-trained weights, so that once
fine-tuned every sub-network can be evaluated with inherited weights and the search needs no
further training. :func:`finetune_supernet` does that, each step with:

* the largest network on the next-byte labels, and
* ``sampled`` sub-networks (with ``sandwich``, the smallest one and ``sampled - 1`` drawn
  uniformly, BigNAS's sandwich rule: Yu, J. et al. "BigNAS: Scaling Up Neural Architecture
  Search with Big Single-Stage Models." ECCV 2020, arXiv:2003.11142, Sec. 3.1), each on the
  labels or, with ``distill`` (the default), on the largest network's predicted
  distribution (in-place distillation, the super-network as teacher, BigNAS Sec. 3.1), the
  gradients of all of them summed before one optimiser step.

The per-step sampling rule (how many sub-networks, whether the largest one teaches the
others) is not spelled out in the parts of the two papers we could read (their abstracts and
LLaMA-NAS's overview); the default here is BigNAS's sandwich rule with in-place distillation,
and ``sandwich=False, distill=False`` gives plain uniform sampling on the labels.

Where this differs from the papers: LLaMA-NAS fine-tunes LLaMA2-7B on Alpaca instructions;
here the language model is pre-trained and fine-tuned on the same byte corpus (a held-out part
measures perplexity), with AdamW and a cosine learning rate after a linear warm-up.

Every random draw of step ``t`` (the batch, the sampled sub-networks) comes from
``numpy.random.default_rng([seed, phase, t])``, so a run stopped after a checkpoint and
resumed (same ``out`` file) takes exactly the steps an uninterrupted run takes.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.lm.corpus import ByteCorpus
from nasforge.ops.super_lm import SuperLM

__all__ = [
    "TrainLog",
    "TrainSettings",
    "finetune_supernet",
    "perplexity",
    "train_alone",
    "train_largest",
]

#: Phase numbers of the step seeds.
_PHASES = {"pretrain": 0, "finetune": 1, "alone": 2}


@dataclass(frozen=True)
class TrainSettings:
    """Settings of one training phase.

    Attributes:
        steps: Optimiser steps.
        batch_size: Windows per batch.
        seq_len: Tokens per window (``None``: the space's context).
        lr: Peak learning rate of AdamW.
        weight_decay: AdamW's weight decay.
        warmup: Steps of linear warm-up before the cosine decay.
        seed: Seed of the step draws.
    """

    steps: int = 300
    batch_size: int = 16
    seq_len: int | None = None
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.warmup < 0 or self.lr <= 0:
            raise InvalidConfigError(
                f"Training needs steps >= 0, batch_size >= 1, warmup >= 0 and lr > 0; got {self}."
            )

    def rate(self, step: int) -> float:
        """The learning rate at ``step`` (0-based)."""
        if step < self.warmup:
            return self.lr * (step + 1) / (self.warmup + 1)
        span = max(1, self.steps - self.warmup)
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * (step - self.warmup) / span))


@dataclass
class TrainLog:
    """What a phase did: the training loss of each step (of the largest network when
    fine-tuning) and the step it resumed from (0 for a fresh run)."""

    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0


def _seq_len(seq_len: int | None, context: int) -> int:
    n = context if seq_len is None else int(seq_len)
    if not 1 <= n <= context:
        raise InvalidConfigError(
            f"A sequence of {n} tokens does not fit the position embedding ({context} "
            f"positions); give seq_len in 1..{context}."
        )
    return n


def _context(model: nn.Module) -> int:
    if isinstance(model, SuperLM):
        return model.space.CONTEXT
    config = getattr(model, "config", None)
    context = getattr(config, "context", None)
    if context is None:
        raise InvalidConfigError(f"Expected a SuperLM or DecoderLM, got {type(model).__name__}.")
    return int(context)


def _run(
    model: nn.Module,
    corpus: ByteCorpus,
    settings: TrainSettings,
    phase: str,
    step_loss: Any,
    out: str | os.PathLike[str] | None,
    checkpoint_every: int,
) -> TrainLog:
    """The loop shared by the phases: ``step_loss(x, y, rng) -> float`` runs the backward
    passes of one step; checkpoints to ``out`` every ``checkpoint_every`` steps and at the
    end, and resumes from it when its settings match."""
    seq = _seq_len(settings.seq_len, _context(model))
    corpus.check_length(seq, "train")
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    log = TrainLog()
    path = None if out is None else Path(out)
    stamp = {
        "phase": phase, "settings": asdict(settings), "corpus": corpus.settings,
        "corpus_digest": corpus.digest,
    }  # fmt: skip
    if path is not None and path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("stamp") != stamp:
            raise InvalidConfigError(
                f"Checkpoint {str(path)!r} was written by another run ({state.get('stamp')}); "
                "give another path, or the same settings to resume it."
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        log = TrainLog(list(state["losses"]), int(state["step"]))

    def save(step: int) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(
            {"stamp": stamp, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "losses": log.losses, "step": step},
            tmp,
        )  # fmt: skip
        os.replace(tmp, path)

    model.train()
    for step in range(len(log.losses), settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = settings.rate(step)
        rng = np.random.default_rng([settings.seed, _PHASES[phase], step])
        x, y = corpus.batch("train", settings.batch_size, seq, rng)
        optimizer.zero_grad(set_to_none=True)
        loss = step_loss(torch.from_numpy(x), torch.from_numpy(y), rng)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        log.losses.append(float(loss))
        if checkpoint_every and (step + 1) % checkpoint_every == 0:
            save(step + 1)
    save(len(log.losses))
    model.eval()
    return log


def _ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def train_largest(
    supernet: SuperLM,
    corpus: ByteCorpus,
    settings: TrainSettings | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 50,
) -> TrainLog:
    """Pre-train the largest network of ``supernet`` on next-byte prediction (the stand-in
    for a pre-trained model that InstaTune starts from). Left in evaluation mode with the
    largest network active.

    Raises:
        InvalidConfigError: A sequence longer than the context or the training split, or a
            checkpoint at ``out`` written with other settings.
    """
    settings = settings or TrainSettings()
    supernet.set_active(supernet.largest())

    def step(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> float:
        loss = _ce(supernet(x), y)
        loss.backward()
        return float(loss.detach())

    return _run(supernet, corpus, settings, "pretrain", step, out, checkpoint_every)


def finetune_supernet(
    supernet: SuperLM,
    corpus: ByteCorpus,
    settings: TrainSettings | None = None,
    *,
    sampled: int = 2,
    sandwich: bool = True,
    distill: bool = True,
    out: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 50,
) -> TrainLog:
    """InstaTune's one-shot fine-tuning of ``supernet`` (see the module docstring).

    Args:
        supernet: The (pre-trained) super-network.
        corpus: The text.
        settings: The phase's settings (default :class:`TrainSettings` with ``lr=1e-3``).
        sampled: Sub-networks trained each step besides the largest.
        sandwich: Make the first of them the smallest sub-network.
        distill: Train the sub-networks on the largest network's predictions instead of the
            labels.
        out: Checkpoint file (resumed when it exists with the same settings).
        checkpoint_every: Steps between checkpoints.

    Returns:
        The losses of the largest network per step.
    """
    settings = settings or TrainSettings(lr=1e-3)
    if sampled < 0:
        raise InvalidConfigError(f"sampled counts sub-networks per step, >= 0; got {sampled}.")

    def step(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> float:
        supernet.set_active(supernet.largest())
        logits = supernet(x)
        loss = _ce(logits, y)
        loss.backward()
        teacher = F.softmax(logits.detach(), dim=-1)
        for k in range(sampled):
            arch = supernet.smallest() if sandwich and k == 0 else supernet.sample(rng)
            supernet.set_active(arch)
            student = supernet(x)
            if distill:
                sub = F.kl_div(F.log_softmax(student, -1), teacher, reduction="none")
                sub_loss = sub.sum(-1).mean()
            else:
                sub_loss = _ce(student, y)
            sub_loss.backward()
        supernet.set_active(supernet.largest())
        return float(loss.detach())

    return _run(supernet, corpus, settings, "finetune", step, out, checkpoint_every)


def train_alone(
    model: nn.Module,
    corpus: ByteCorpus,
    settings: TrainSettings | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 50,
) -> TrainLog:
    """Train one network (a :class:`~nasforge.ops.llm.DecoderLM`, from scratch) on
    next-byte prediction: the stand-alone baseline of a searched sub-network."""
    settings = settings or TrainSettings()

    def step(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> float:
        loss = _ce(model(x), y)
        loss.backward()
        return float(loss.detach())

    return _run(model, corpus, settings, "alone", step, out, checkpoint_every)


@torch.no_grad()
def perplexity(
    model: nn.Module,
    corpus: ByteCorpus,
    split: str = "valid",
    *,
    seq_len: int | None = None,
    batch_size: int = 32,
    max_windows: int | None = None,
) -> float:
    """``exp`` of the mean next-byte cross-entropy of ``model`` (a DecoderLM, or a SuperLM's
    active sub-network) over consecutive non-overlapping windows of ``split``
    (:meth:`ByteCorpus.windows`), in evaluation mode (the mode is restored after).

    Raises:
        InvalidConfigError: A sequence longer than the context or the split.
    """
    seq = _seq_len(seq_len, _context(model))
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        batch_x: list[np.ndarray] = []
        batch_y: list[np.ndarray] = []

        def flush() -> None:
            nonlocal total, count
            x = torch.from_numpy(np.stack(batch_x))
            y = torch.from_numpy(np.stack(batch_y))
            logits = model(x)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                           reduction="sum"))  # fmt: skip
            count += y.numel()
            batch_x.clear()
            batch_y.clear()

        for x, y in corpus.windows(split, seq, max_windows=max_windows):
            batch_x.append(x)
            batch_y.append(y)
            if len(batch_x) == batch_size:
                flush()
        if batch_x:
            flush()
    finally:
        model.train(was_training)
    return math.exp(total / count)
