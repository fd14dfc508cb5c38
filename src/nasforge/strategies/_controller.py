"""The recurrent controller of NASNet and ENAS: an LSTM that emits decisions one by one.

Private leaf (imports torch): :mod:`nasforge.strategies.rnn_controller` and
:mod:`nasforge.oneshot.enas` import it inside their functions.

Zoph, B. and Le, Q. V. "Neural Architecture Search with Reinforcement Learning." ICLR 2017,
arXiv:1611.01578 (Section 3.1: every prediction is made by a softmax classifier on the LSTM's
output and fed, embedded, into the next step); Zoph, B., Vasudevan, V., Shlens, J. and Le,
Q. V. "Learning Transferable Architectures for Scalable Image Recognition." CVPR 2018,
arXiv:1707.07012 (Appendix A: a one-layer LSTM of 100 units, weights uniform in
``[-0.1, 0.1]``); Pham, H., Guan, M. Y., Zoph, B., Le, Q. V. and Dean, J. "Efficient Neural
Architecture Search via Parameter Sharing." ICML 2018, arXiv:1802.03268 (Section 2: the
logits divided by a temperature, then squashed as ``c * tanh(logits)``).

A controller decides a fixed sequence of *steps*. Each step belongs to a *kind*: the steps of
one kind share their softmax classifier (a linear map of the hidden state) and the embedding
of their choices (ENAS shares one operation classifier between all nodes of a cell). The
first step's input is a learned start embedding, every later step's the embedding of the
choice just made. A step may have fewer options than its kind's classifier (the first
``options`` logits are used) and a mask may rule options out (a node's inputs already
chosen).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Controller", "Step"]

#: ``mask(step, choices_so_far)``: which options of ``step`` may be taken, or ``None`` (all).
MaskFn = Callable[[int, Sequence[int]], Sequence[bool] | None]


@dataclass(frozen=True)
class Step:
    """One decision of the controller's sequence.

    Attributes:
        kind: Index of the classifier and embedding it uses (steps of one kind share them).
        options: How many options it has (at most its kind's width).
    """

    kind: int
    options: int


class Controller(nn.Module):
    """An LSTM over a fixed sequence of categorical decisions.

    Args:
        steps: The decisions, in the order they are made.
        widths: Options of each kind's classifier (at least every step of that kind's).
        hidden: Units of the LSTM, of the embeddings and of the start input.
        temperature: Logits are divided by it (``None``: not).
        tanh: Per kind, ``c`` of ``c * tanh(logits)`` (``None``: logits as they are).
        init_range: Every weight is drawn uniformly from ``[-init_range, init_range]``.
        generator: The generator of the initial weights.
    """

    def __init__(
        self,
        steps: Sequence[Step],
        widths: Sequence[int],
        *,
        hidden: int,
        temperature: float | None,
        tanh: Sequence[float | None],
        init_range: float,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.steps = tuple(steps)
        self.widths = tuple(int(w) for w in widths)
        self.temperature = temperature
        self.tanh = tuple(tanh)
        self.hidden = int(hidden)
        self.start = nn.Parameter(torch.empty(1, self.hidden))
        self.cell = nn.LSTMCell(self.hidden, self.hidden)
        self.heads = nn.ModuleList(nn.Linear(self.hidden, w) for w in self.widths)
        self.embeddings = nn.ModuleList(nn.Embedding(w, self.hidden) for w in self.widths)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.uniform_(-init_range, init_range, generator=generator)

    # -- the distribution of one step ------------------------------------------------------------
    def _logits(self, h: torch.Tensor, t: int) -> torch.Tensor:
        step = self.steps[t]
        logits = self.heads[step.kind](h)[:, : step.options]
        if self.temperature is not None:
            logits = logits / self.temperature
        c = self.tanh[step.kind]
        if c is not None:
            logits = c * torch.tanh(logits)
        out: torch.Tensor = logits
        return out

    def _input(self, t: int, choice: torch.Tensor) -> torch.Tensor:
        embedded: torch.Tensor = self.embeddings[self.steps[t].kind](choice)
        return embedded

    # -- sampling ---------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self, generator: torch.Generator, mask: MaskFn | None = None, uniform: bool = False
    ) -> tuple[list[int], list[list[bool]]]:
        """One sequence of choices, drawn with ``generator`` (``uniform``: every allowed
        option equally likely, the LSTM not run), and the masks it was drawn under (give
        them to :meth:`log_probs`)."""
        choices: list[int] = []
        masks: list[list[bool]] = []
        x: torch.Tensor = self.start
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        for t, step in enumerate(self.steps):
            allowed = _allowed(mask, t, choices, step.options)
            masks.append(allowed)
            keep = torch.tensor(allowed)
            if uniform:
                probs = keep.to(torch.float32)
            else:
                h, c = self.cell(x, state)
                state = (h, c)
                logits = self._logits(h, t)[0].masked_fill(~keep, float("-inf"))
                probs = torch.softmax(logits, dim=-1)
            choice = int(torch.multinomial(probs, 1, generator=generator))
            choices.append(choice)
            if not uniform:
                x = self._input(t, torch.tensor([choice]))
        return choices, masks

    def log_probs(
        self, choices: torch.Tensor, masks: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy (summed over the steps) of each of a batch of
        sequences: ``choices`` is ``(batch, steps)``, ``masks`` ``(batch, steps, widest)``
        (``True``: allowed; ``None``: every option of each step). Differentiable."""
        batch = choices.shape[0]
        x = self.start.expand(batch, -1)
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        log_prob = torch.zeros(batch)
        entropy = torch.zeros(batch)
        for t, step in enumerate(self.steps):
            h, c = self.cell(x, state)
            state = (h, c)
            logits = self._logits(h, t)
            if masks is not None:
                logits = logits.masked_fill(~masks[:, t, : step.options], float("-inf"))
            logp = torch.log_softmax(logits, dim=-1)
            log_prob = log_prob + logp.gather(1, choices[:, t : t + 1]).squeeze(1)
            p = logp.exp()
            entropy = entropy - torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(1)
            x = self._input(t, choices[:, t])
        return log_prob, entropy

    @torch.no_grad()
    def probabilities(
        self, choices: Sequence[int], mask: MaskFn | None = None
    ) -> list[list[float]]:
        """The distribution of every step when the earlier steps took ``choices`` (teacher
        forcing; for inspection and tests)."""
        out: list[list[float]] = []
        x: torch.Tensor = self.start
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        for t, step in enumerate(self.steps):
            h, c = self.cell(x, state)
            state = (h, c)
            keep = torch.tensor(_allowed(mask, t, list(choices[:t]), step.options))
            logits = self._logits(h, t)[0].masked_fill(~keep, float("-inf"))
            out.append(torch.softmax(logits, dim=-1).tolist())
            x = self._input(t, torch.tensor([int(choices[t])]))
        return out

    def mask_tensor(self, masks: Sequence[Sequence[Sequence[bool]]]) -> torch.Tensor:
        """Masks of a batch (as :meth:`sample` returns them) as one ``(batch, steps,
        widest)`` tensor, padded with ``False``."""
        widest = max(self.widths)
        out = torch.zeros(len(masks), len(self.steps), widest, dtype=torch.bool)
        for b, sequence in enumerate(masks):
            for t, allowed in enumerate(sequence):
                out[b, t, : len(allowed)] = torch.tensor(list(allowed))
        return out


def _allowed(mask: MaskFn | None, t: int, choices: Sequence[int], options: int) -> list[bool]:
    given = None if mask is None else mask(t, choices)
    if given is None:
        return [True] * options
    allowed = [bool(v) for v in given]
    if len(allowed) != options or not any(allowed):
        raise ValueError(f"the mask of step {t} must allow some of its {options} options")
    return allowed
