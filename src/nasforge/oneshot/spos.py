"""SPOS: single-path one-shot training with uniform sampling, then evolutionary search.

Guo, Z., Zhang, X., Mu, H., Heng, W., Liu, Z., Wei, Y. and Sun, J. "Single Path One-Shot
Neural Architecture Search with Uniform Sampling." ECCV 2020, arXiv:1904.00420. The supernet
is trained on one path per step, drawn uniformly from the space (Section 3.2), with no
architecture parameters, so every path is trained alike. Afterwards an evolutionary search
(Section 3.4, Algorithm 1) uses the supernet as a free evaluator: a candidate's score is the
validation accuracy of its path after *batch-norm recalibration* (the running statistics
recomputed on training images for that path). Each generation makes ``population / 2``
children by mutation (each decision re-drawn with probability ``mutation_prob`` = 0.1) and
``population / 2`` by crossover (each node from either parent) of the ``top_k`` best
candidates seen; generation 0 is random.

Recorded epochs: the training epochs derive no architecture (SPOS has none before the
evolution) and record no trial; each generation records the best candidate so far.

Mutation and crossover are the space's (``space.mutate(arch, rng, rate=mutation_prob)``,
``space.crossover``): per decision for a product space such as NAS-Bench-201, per node (its
two inputs and operations) for DARTS, so that every child is a valid architecture.

Adaptation: the paper trains on ImageNet (120 epochs) and recalibrates on 20,000 images;
nasforge trains with the NAS-Bench-201 protocol (50 epochs, SGD lr 0.025 cosine, batch 64)
on the training half and scores on the validation half, with ``recal_images`` and
``eval_images`` settable for a CPU. Candidates already scored are not scored again.

Image counts scale with the search data: left unset, ``recal_images`` is
:data:`RECAL_SHARE` of the training half and ``eval_images`` :data:`EVAL_SHARE` of the
validation half (2,048 and 10,000 of CIFAR-10's halves of 25,000 images; a tenth of them
with ``data_fraction=0.1``), and never fewer than one batch (or the whole half when it is
smaller). Counts given explicitly are used as given, capped at the half's size. Each
generation is logged (``logging`` at INFO, logger ``nasforge.oneshot.spos``) with the images
it scores on, since the evolution can take longer than the training.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge import oneshot
from nasforge.errors import InvalidConfigError
from nasforge.oneshot.base import OneShotMethod

if TYPE_CHECKING:
    from nasforge.oneshot._engine import SearchState

__all__ = ["EVAL_SHARE", "RECAL_SHARE", "SPOS"]

logger = logging.getLogger(__name__)

#: Default share of the training half that recalibrates batch norm (2,048 of 25,000).
RECAL_SHARE = 2048 / 25000
#: Default share of the validation half that scores a candidate (10,000 of 25,000).
EVAL_SHARE = 10000 / 25000


@oneshot.register("spos")
class SPOS(OneShotMethod):
    """SPOS (Guo et al. 2020).

    Args:
        lr, lr_min, momentum, weight_decay, nesterov, grad_clip: The weights' SGD (cosine).
        population: Candidates per generation (50).
        generations: Generations of the evolution (20).
        top_k: Parents: the best candidates seen (10).
        mutation_prob: Probability that mutation re-draws a decision (0.1).
        recal_images: Training images that recalibrate batch norm per candidate
            (default: :data:`RECAL_SHARE` of the training half).
        eval_images: Validation images that score a candidate (default:
            :data:`EVAL_SHARE` of the validation half).
    """

    default_epochs = 50
    share_weights = False
    space_requires = ("sample", "mutate", "crossover")

    def __init__(
        self,
        *,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        population: int = 50,
        generations: int = 20,
        top_k: int = 10,
        mutation_prob: float = 0.1,
        recal_images: int | None = None,
        eval_images: int | None = None,
    ) -> None:
        for name, value in (
            ("population", population),
            ("generations", generations),
            ("top_k", top_k),
            ("recal_images", recal_images),
            ("eval_images", eval_images),
        ):
            if value is None and name.endswith("_images"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(f"SPOS {name} must be a positive integer, got {value!r}.")
        if not 0.0 <= mutation_prob <= 1.0:
            raise InvalidConfigError(f"mutation_prob must be in [0, 1], got {mutation_prob!r}.")
        if lr <= 0:
            raise InvalidConfigError(f"lr must be positive, got {lr!r}.")
        self.lr, self.lr_min, self.momentum = float(lr), float(lr_min), float(momentum)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)
        self.grad_clip = float(grad_clip)
        self.population, self.generations, self.top_k = population, generations, top_k
        self.mutation_prob = float(mutation_prob)
        self.recal_images, self.eval_images = recal_images, eval_images
        self.history: list[tuple[tuple[int, ...], float]] = []
        self.w_optimizer: Any = None

    def params(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "lr_min": self.lr_min,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
            "grad_clip": self.grad_clip,
            "population": self.population,
            "generations": self.generations,
            "top_k": self.top_k,
            "mutation_prob": self.mutation_prob,
            "recal_images": self.recal_images,
            "eval_images": self.eval_images,
        }

    def total_epochs(self, epochs: int) -> int:
        return epochs + self.generations

    def setup(self, state: SearchState) -> None:
        from nasforge.oneshot import _engine

        self.w_optimizer = _engine.weight_optimizer(
            state.supernet, self.lr, self.momentum, self.weight_decay, self.nesterov
        )

    # -- training -------------------------------------------------------------------------------
    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        if epoch >= state.epochs:
            return self.generation(state, epoch - state.epochs)

        from nasforge.oneshot import _engine
        from nasforge.train.schedule import cosine_annealing

        _engine.set_lr(
            self.w_optimizer,
            cosine_annealing(epoch, state.epochs, lr=self.lr, min_lr=self.lr_min),
        )
        state.supernet.train()

        def draw() -> tuple[Any, tuple[int, ...]]:
            arch = state.space.sample(state.rng)
            return state.supernet.path(arch), arch.choices

        return _engine.train_single_paths(state, self.w_optimizer, self.grad_clip, epoch, draw)

    # -- evaluation and evolution ---------------------------------------------------------------
    def estimate(self, state: SearchState, choices: tuple[int, ...]) -> float:
        """Supernet accuracy (percent) of an architecture on ``eval_images`` validation
        images, after recalibrating batch norm on ``recal_images`` training images."""
        from nasforge.oneshot import _engine

        recal, count = self.image_counts(state)
        index = state.supernet.path(state.space.from_choices(choices))
        _engine.recalibrate_bn(
            state.supernet, state.data.fixed("train", recal, state.device), index
        )
        batches = state.data.fixed("valid", count, state.device)
        accuracy, _ = _engine.supernet_accuracy(
            state.supernet, batches, index=index, train_mode=False
        )
        return accuracy

    def image_counts(self, state: SearchState) -> tuple[int, int]:
        """The recalibration and scoring image counts for this search data: the given
        ones, else the default shares of the halves (see the module docstring)."""

        def scaled(given: int | None, share: float, size: int) -> int:
            if given is not None:
                return min(given, size)
            return min(size, max(state.data.batch_size, math.ceil(share * size)))

        return (
            scaled(self.recal_images, RECAL_SHARE, len(state.data.train)),
            scaled(self.eval_images, EVAL_SHARE, len(state.data.valid)),
        )

    def generation(self, state: SearchState, number: int) -> dict[str, float]:
        """Score one generation of candidates; return the best score so far."""
        seen = {c for c, _ in self.history}
        wanted = self.population
        fresh: list[tuple[int, ...]] = []
        rng = state.rng
        parents = [c for c, _ in sorted(self.history, key=lambda h: -h[1])[: self.top_k]]
        attempts = 0
        while len(fresh) < wanted and attempts < 20 * wanted:
            attempts += 1
            if number == 0 or not parents:
                child = state.space.sample(rng).choices
            elif len(fresh) < wanted // 2:
                child = self._mutate(state, parents[int(rng.integers(len(parents)))], rng)
            else:
                a, b = (parents[int(i)] for i in rng.integers(len(parents), size=2))
                child = self._crossover(state, a, b, rng)
            if child not in seen:
                seen.add(child)
                fresh.append(child)
        recal, count = self.image_counts(state)
        logger.info(
            "SPOS generation %d/%d: scoring %d candidates on the supernet (batch norm "
            "recalibrated on %d training images, accuracy on %d validation images each)",
            number + 1,
            self.generations,
            len(fresh),
            recal,
            count,
        )
        for child in fresh:
            self.history.append((child, self.estimate(state, child)))
        best = max(score for _, score in self.history)
        return {"supernet_acc": best, "generation": float(number), "candidates": float(len(fresh))}

    def _mutate(
        self, state: SearchState, parent: tuple[int, ...], rng: np.random.Generator
    ) -> tuple[int, ...]:
        """Each decision re-drawn with probability ``mutation_prob`` (``space.mutate``)."""
        arch = state.space.from_choices(parent)
        return state.space.mutate(arch, rng, rate=self.mutation_prob).choices

    def _crossover(
        self,
        state: SearchState,
        a: tuple[int, ...],
        b: tuple[int, ...],
        rng: np.random.Generator,
    ) -> tuple[int, ...]:
        """Each unit of inheritance from either parent (``space.crossover``)."""
        space = state.space
        return space.crossover(space.from_choices(a), space.from_choices(b), rng).choices

    def derive(self, state: SearchState) -> tuple[int, ...] | None:
        if not self.history:
            return None
        return max(self.history, key=lambda h: h[1])[0]

    def state_dict(self) -> dict[str, Any]:
        import torch

        return {
            "w_optimizer": self.w_optimizer.state_dict(),
            "history_choices": torch.tensor([list(c) for c, _ in self.history], dtype=torch.long),
            "history_scores": torch.tensor([s for _, s in self.history], dtype=torch.float64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        choices = state["history_choices"].tolist()
        scores = state["history_scores"].tolist()
        self.history = [
            (tuple(int(v) for v in c), float(s)) for c, s in zip(choices, scores, strict=True)
        ]
