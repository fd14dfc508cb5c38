"""The graph diffusion model of the ``diffusion-nag`` strategy (torch; private leaf).

A continuous score-based diffusion model (Song et al., "Score-Based Generative Modeling
through Stochastic Differential Equations", ICLR 2021, arXiv:2011.13456) over architecture
graphs, as DiffusionNAG (An et al., ICLR 2024, arXiv:2305.16943, Section 3) sets it up:

* :class:`GraphCodec` turns an :class:`~nasforge.spaces.graph.ArchitectureGraph` into one
  vector: the node-type matrix (one-hot rows over the space's vocabulary, mapped to
  {-1, 1}) and, where the wiring varies between architectures, the adjacency entries that
  vary (the others are constant and kept aside, as DiffusionNAG keeps NAS-Bench-201's fixed
  adjacency out of the diffusion);
* the VP-SDE ``dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw``, ``beta`` linear from
  ``beta_min`` to ``beta_max`` on ``t in [0, 1]``, perturbs the vectors; a score network
  (:class:`ScoreNet`) learns the noise by denoising score matching (:func:`pretrain`);
* a noise-aware predictor (:class:`Predictor`, the paper's time-dependent predictor of
  Section 3.2) is fitted to scores of architectures perturbed at random times;
* :func:`sample` integrates the reverse SDE with Euler-Maruyama steps, adding to the score
  the guidance term ``scale * grad_x log p(y* | x_t)`` of the paper's Eq. 6, with
  ``p(y* | x_t)`` a unit-variance Gaussian around the predictor's output, so that the
  gradient is ``(y* - f(x_t, t)) * grad_x f(x_t, t)`` (Eq. 7 with the predictor as mean).

Every random draw comes from a seeded ``torch.Generator`` and every computation runs on one
intra-op thread (restored afterwards), so that the same seeds give the same model and
samples in any process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasforge.errors import InvalidArchitectureError, UnsupportedOperationError
from nasforge.spaces.graph import ArchitectureGraph

__all__ = [
    "DiffusionSettings",
    "GraphCodec",
    "Predictor",
    "ScoreNet",
    "fit_predictor",
    "one_thread",
    "pretrain",
    "sample",
]

#: The smallest diffusion time (the reverse process stops there; Song et al. use 1e-3).
T_EPS = 1e-3


@dataclass(frozen=True)
class DiffusionSettings:
    """What the unconditional model is and how it is pre-trained (a cache key)."""

    hidden: int = 128
    layers: int = 2
    beta_min: float = 0.1
    beta_max: float = 20.0
    pretrain_steps: int = 600
    batch_size: int = 128
    learning_rate: float = 3e-3
    pretrain_pool: int = 20000


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread (tiny models: faster, and the same sums in every
    process), restoring the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- the graph <-> vector codec -------------------------------------------------------------
class GraphCodec:
    """Vectors of fixed length for the graphs of one space (see the module docstring).

    Args:
        graphs: Graphs of the space (the pre-training set); all must have the same number
            of nodes and the same vocabulary.

    Raises:
        UnsupportedOperationError: No graph, or graphs of different sizes or vocabularies.
    """

    def __init__(self, graphs: Sequence[ArchitectureGraph]) -> None:
        if not graphs:
            raise UnsupportedOperationError("A graph diffusion model needs graphs to learn from.")
        first = graphs[0]
        if any(g.n_nodes != first.n_nodes or g.vocabulary != first.vocabulary for g in graphs):
            raise UnsupportedOperationError(
                "The graph diffusion model needs graphs of one size and one vocabulary; the "
                "space's graphs vary in their number of nodes or their labels."
            )
        self.n_nodes = first.n_nodes
        self.vocabulary = first.vocabulary
        onehots = np.stack([g.onehot() for g in graphs])
        adjacencies = np.stack([g.adjacency for g in graphs]).astype(np.float64)
        #: Which labels each node carries somewhere in the data (projection keeps to them).
        self.label_mask: np.ndarray = onehots.max(axis=0) > 0
        upper = np.triu(np.ones((self.n_nodes, self.n_nodes), dtype=bool), k=1)
        varies = adjacencies.min(axis=0) != adjacencies.max(axis=0)
        #: The adjacency entries that differ between graphs (diffused with the node types).
        free = np.argwhere(upper & varies)
        self.free = free[np.lexsort((free[:, 0], free[:, 1]))]  # by target node, then source
        #: The free entries by target node: ``(start, stop, one_of)`` slices of the edge
        #: part; ``one_of`` where every graph has exactly one of them (the node reads one
        #: input, as a DARTS operation does), a categorical choice like a node's label.
        self.segments: tuple[tuple[int, int, bool], ...] = ()
        edges = adjacencies[:, self.free[:, 0], self.free[:, 1]]
        for target in np.unique(self.free[:, 1]):
            where = np.flatnonzero(self.free[:, 1] == target)
            start, stop = int(where[0]), int(where[-1]) + 1
            one_of = bool(np.all(edges[:, start:stop].sum(axis=1) == 1))
            self.segments += ((start, stop, one_of),)
        self.template = adjacencies[0].copy()
        self.template[tuple(self.free.T)] = 0
        self.dim = self.n_nodes * len(self.vocabulary) + len(self.free)

    def encode(self, graphs: Sequence[ArchitectureGraph]) -> np.ndarray:
        """One row of ``dim`` values in {-1, 1} per graph."""
        rows = []
        for g in graphs:
            edges = g.adjacency[tuple(self.free.T)].astype(np.float64)
            rows.append(np.concatenate([g.onehot().ravel(), edges]) * 2 - 1)
        return np.asarray(rows, dtype=np.float32)

    def decode(self, vector: np.ndarray, *, project: bool) -> ArchitectureGraph:
        """The graph a (generated) vector stands for: each node's largest entry (among the
        labels that node carries in the data when ``project``), each free edge present
        where its entry is positive, but a ``one_of`` segment of edges decoded like a
        label (its largest entry alone present).

        Raises:
            InvalidArchitectureError: Only as :meth:`ArchitectureGraph.of` raises (never
                for vectors of this codec).
        """
        width = len(self.vocabulary)
        scores = np.asarray(vector[: self.n_nodes * width], dtype=np.float64)
        scores = scores.reshape(self.n_nodes, width)
        if project:
            scores = np.where(self.label_mask, scores, -np.inf)
        labels = [self.vocabulary[i] for i in scores.argmax(axis=1)]
        adjacency = self.template.copy()
        entries = np.asarray(vector[self.n_nodes * width :], dtype=np.float64)
        present = entries > 0
        for start, stop, one_of in self.segments:
            if one_of:
                present[start:stop] = np.arange(stop - start) == entries[start:stop].argmax()
        adjacency[tuple(self.free.T)] = present
        return ArchitectureGraph.of(adjacency, labels, self.vocabulary)


# -- the SDE --------------------------------------------------------------------------------
def _alpha_sigma(t: torch.Tensor, s: DiffusionSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean coefficient and standard deviation of the VP-SDE's marginal ``x_t | x_0``."""
    log_mean = -0.25 * t**2 * (s.beta_max - s.beta_min) - 0.5 * t * s.beta_min
    alpha = torch.exp(log_mean)
    return alpha, torch.sqrt(1.0 - alpha**2)


def _time_features(t: torch.Tensor, width: int = 16) -> torch.Tensor:
    """Sinusoidal features of the diffusion time (as the positional code of a transformer)."""
    freqs = torch.exp(torch.arange(width // 2, dtype=torch.float32) * (-math.log(1e3) / width))
    angles = 1e3 * t[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    parts: list[nn.Module] = []
    width = inputs
    for _ in range(layers):
        parts += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    parts.append(nn.Linear(width, outputs))
    return nn.Sequential(*parts)


class ScoreNet(nn.Module):
    """Predicts the clean vector ``x_0`` from ``x_t`` and ``t``; the score follows as
    ``(alpha_t x0_hat - x_t) / sigma_t**2``. An MLP over the vector and sinusoidal time
    features whose outputs are read per node as a distribution over the node's labels
    (``2 softmax - 1``: a convex combination of the one-hot rows), per ``one_of`` segment
    of free edges (:attr:`GraphCodec.segments`) the same way and per other free edge as a
    ``tanh``, so that every prediction lies in the hull of the architectures' vectors."""

    def __init__(self, codec: GraphCodec, settings: DiffusionSettings) -> None:
        super().__init__()
        self.settings = settings
        self.dim = codec.dim
        self.rows = (codec.n_nodes, len(codec.vocabulary))
        self.segments = codec.segments
        self.net = _mlp(codec.dim + 16, settings.hidden, settings.layers, codec.dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = self.net(torch.cat([x, _time_features(t)], dim=1))
        n, width = self.rows
        nodes = torch.softmax(out[:, : n * width].reshape(-1, n, width), dim=2)
        parts = [2 * nodes.reshape(len(x), -1) - 1]
        edges = out[:, n * width :]
        for start, stop, one_of in self.segments:
            part = edges[:, start:stop]
            parts.append(2 * torch.softmax(part, dim=1) - 1 if one_of else torch.tanh(part))
        return torch.cat(parts, dim=1)

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha, sigma = _alpha_sigma(t, self.settings)
        x0: torch.Tensor = self(x, t)
        return (alpha[:, None] * x0 - x) / (sigma**2)[:, None]


class Predictor(nn.Module):
    """The noise-aware performance predictor ``f(x_t, t)``: an MLP over the perturbed vector
    and the time features, one output."""

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = _mlp(dim + 16, hidden, 2, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(torch.cat([x, _time_features(t)], dim=1))[:, 0]
        return out


def _perturb(
    x0: torch.Tensor, s: DiffusionSettings, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = T_EPS + (1 - T_EPS) * torch.rand(len(x0), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    alpha, sigma = _alpha_sigma(t, s)
    return alpha[:, None] * x0 + sigma[:, None] * noise, t, noise


def pretrain(
    codec: GraphCodec, data: np.ndarray, settings: DiffusionSettings, seed: int
) -> ScoreNet:
    """The score network trained by denoising score matching on the rows of ``data``
    (unlabeled architectures, encoded by ``codec``), in eval mode, parameters frozen."""
    g = torch.Generator().manual_seed(seed)
    with one_thread():
        torch_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # the initial weights
        model = ScoreNet(codec, settings)
        torch.random.set_rng_state(torch_state)
        x_all = torch.from_numpy(np.asarray(data, dtype=np.float32))
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.pretrain_steps)
        for _ in range(settings.pretrain_steps):
            x0 = x_all[torch.randint(len(x_all), (settings.batch_size,), generator=g)]
            x_t, t, _ = _perturb(x0, settings, g)
            loss = ((model(x_t, t) - x0) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def fit_predictor(
    x0: np.ndarray,
    y: np.ndarray,
    settings: DiffusionSettings,
    seed: int,
    *,
    steps: int = 150,
    hidden: int = 64,
    learning_rate: float = 5e-3,
    init: Predictor | None = None,
) -> Predictor:
    """A :class:`Predictor` fitted to targets ``y`` of the clean vectors ``x0``, each step
    on the whole set perturbed at fresh random times (half of the rows kept near ``t = 0``
    so that the clean prediction, which ranks the candidates, is fitted as well); ``init``
    (a previous fit, trained further in place) warm-starts it."""
    g = torch.Generator().manual_seed(seed)
    with one_thread():
        if init is None:
            torch_state = torch.random.get_rng_state()
            torch.manual_seed(seed)
            model = Predictor(x0.shape[1], hidden)
            torch.random.set_rng_state(torch_state)
        else:
            model = init
        model.train()
        x = torch.from_numpy(np.asarray(x0, dtype=np.float32))
        target = torch.from_numpy(np.asarray(y, dtype=np.float32))
        optimizer = torch.optim.Adam(
            model.parameters(), lr=learning_rate, weight_decay=1e-4, foreach=False
        )
        for _ in range(steps):
            t = T_EPS + (1 - T_EPS) * torch.rand(len(x), generator=g)
            t = torch.where(torch.rand(len(x), generator=g) < 0.5, torch.full_like(t, T_EPS), t)
            alpha, sigma = _alpha_sigma(t, settings)
            noise = torch.randn(x.shape, generator=g)
            x_in = alpha[:, None] * x + sigma[:, None] * noise
            loss = ((model(x_in, t) - target) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def sample(
    model: ScoreNet,
    n: int,
    seed: int,
    *,
    steps: int = 100,
    guide: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    target: float = 0.0,
    scale: float = 0.0,
) -> np.ndarray:
    """``n`` vectors drawn by the reverse SDE in ``steps`` Euler-Maruyama steps from
    ``t = 1`` to :data:`T_EPS`, the last step's mean taken (no noise at the end).

    Args:
        model: The pre-trained score network.
        n: Samples drawn together.
        seed: Seed of the starting noise and of every step's noise.
        steps: Discretisation steps of the reverse process.
        guide: A differentiable ``f(x_t, t)`` (one value per row): the predictor whose
            gradient steers the samples towards ``target``; ``None`` samples without it.
        target: The property value asked for (``y*``).
        scale: The guidance strength (0: unconditional).
    """
    s = model.settings
    g = torch.Generator().manual_seed(seed)
    dim = model.dim
    with one_thread():
        x = torch.randn((n, dim), generator=g)
        dt = (1.0 - T_EPS) / steps
        for i in range(steps):
            t = torch.full((n,), 1.0 - i * dt)
            beta = s.beta_min + t * (s.beta_max - s.beta_min)
            with torch.no_grad():
                score = model.score(x, t)
            if guide is not None and scale:
                score = score + _capped(scale * _guidance(guide, x, t, target), score)
            drift = -0.5 * beta[:, None] * x - beta[:, None] * score
            x = x - drift * dt
            if i < steps - 1:
                x = x + torch.sqrt(beta * dt)[:, None] * torch.randn(x.shape, generator=g)
    return x.numpy()


def _guidance(
    guide: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    t: torch.Tensor,
    target: float,
) -> torch.Tensor:
    """``grad_x log N(target; f(x, t), 1) = (target - f) grad_x f``, row by row."""
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        predicted = guide(x_in, t)
        (grad,) = torch.autograd.grad(predicted.sum(), x_in)
    return (target - predicted.detach())[:, None] * grad


def _capped(term: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """``term`` shrunk, row by row, to at most the norm of ``score``: a strong guidance
    then at most doubles the step of the reverse process instead of throwing the sample
    out of the data's range (Euler steps at ``beta_max`` diverge otherwise)."""
    norm = term.norm(dim=1, keepdim=True)
    room = score.norm(dim=1, keepdim=True)
    return term * torch.clamp(room / norm.clamp_min(1e-12), max=1.0)


def decode_all(
    codec: GraphCodec, vectors: np.ndarray, check: Callable[[ArchitectureGraph], object]
) -> tuple[list[object], int, int]:
    """``check`` (the space's ``from_graph``) applied to every vector decoded plainly, or,
    when that is not an architecture, decoded with projection onto the labels each node
    carries; returns the architectures (in order, invalid ones left out), how many needed
    the projection and how many were invalid even so."""
    out: list[object] = []
    projected = invalid = 0
    for vector in vectors:
        for project in (False, True):
            try:
                out.append(check(codec.decode(vector, project=project)))
            except InvalidArchitectureError:
                continue
            projected += project
            break
        else:
            invalid += 1
    return out, projected, invalid
