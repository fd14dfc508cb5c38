"""Progressive Neural Architecture Search: grow cells one operation at a time, ranked by a
learned surrogate."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np

from nasforge import strategies
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.predictors import MLPEnsemble
from nasforge.predictors.surrogate import (
    PRETRAIN_POOL,
    EnsembleSurrogate,
    check_floor_quantile,
    floored,
    predict_chunked,
)
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal, Trial, TrialState

__all__ = ["PNAS", "PRETRAIN_POOL"]


@strategies.register("pnas")
class PNAS(Strategy):
    """Search cells in order of increasing complexity; a surrogate ranks each step's expansions.

    Liu, C., Zoph, B., Neumann, M., Shlens, J., Hua, W., Li, L.-J., Fei-Fei, L., Yuille, A.,
    Huang, J. and Murphy, K. "Progressive Neural Architecture Search." ECCV 2018,
    arXiv:1712.00559 (Algorithm 1).

    PNAS trains every cell of one block, fits a surrogate on the results, then at each step
    ``b`` expands the ``K`` cells kept at step ``b - 1`` by one block, ranks all expansions
    with the surrogate refitted on everything trained so far, and trains the ``K`` it ranks
    best, which are kept for the next step. The surrogate is an ensemble of 5 predictors
    ranked by their mean; here it is :class:`~nasforge.predictors.MLPEnsemble` on the space's
    ``encoding``, ranked by ``mean + exploration * std``.

    Adaptation to NAS-Bench-201, and to any space whose decisions (``space.decisions()``)
    all have an option meaning "no operation" (``empty_option``, ``"none"`` on NB201):

    * **Complexity** is the number of decisions that are not empty: the edges carrying an
      operation, 0 to 6 on NB201. One block of the paper is one edge.
    * **Step 1** proposes every cell of complexity 1, in a seeded random order. NB201 has
      6 x 4 = 24, but with ``canonical=True`` (the default) cells are taken up to function
      (``space.canonical``) and 19 of them compute zero, like the empty cell (their edge
      does not reach the output): canonical, they have complexity 0. What is left are 5
      functions: the edge ``0 -> 3`` carrying one of the 4 operations, and one cell whose
      output is a learned constant (a convolution fed by a zero node adds its BatchNorm
      shift). Evaluating the 19 would spend queries on chance-level cells that teach the
      surrogate nothing. With ``canonical=False`` step 1 evaluates all 24.
    * **Step b = 2 .. 6** expands each cell kept at step ``b - 1`` by turning one of its
      empty edges into each operation. With ``canonical=True`` each expansion is replaced by
      the representative of its function and dropped when that has lost complexity (the new
      edge is dead, so the cell computes what a simpler one does) or was proposed before.
      The cells kept for the next step are those proposed at this one, less failed trials.
    * **After complexity 6**, the budget left goes to a surrogate-ranked local search: each
      batch ranks every cell within ``local_radius`` decision changes of the ``K`` best
      evaluated cells that has not been proposed, and proposes the ``K`` best ranked. PNAS
      stops when the cells reach the intended size; the local search spends the rest of the
      budget where the progressive phase left off instead of restarting it. When no such
      cell is left, random unproposed cells are drawn. A step with no expansion left also
      ends the progressive phase.

    No cell (with ``canonical=True``, no function) is proposed twice, and the surrogate is
    refitted once per batch. ``pretrain=True`` first fits the surrogate to free statistics
    (params, FLOPs) of :data:`PRETRAIN_POOL` random cells (FBNetV3's NARS,
    :mod:`nasforge.predictors.nars`) and each step fine-tunes a copy of it; this needs an
    evaluator with free metrics (the study passes them).

    Spaces whose decisions lack an empty option have no complexity to grow, and PNAS refuses
    them (:class:`~nasforge.errors.UnsupportedOperationError`) rather than guess one; use
    ``"weaknas"`` or ``"regularized-evolution"`` there.

    The defaults were chosen with :func:`~nasforge.experiments.run_comparison` on NB201
    (60 to 100 seeds, three datasets, 100 queries): ``K = 8`` reaches complexity 6 after
    45 queries (5 + 5 x 8) and leaves the rest of a 100-query budget to the local search
    (the paper's ``K = 256`` suits its far larger space), and raising the scores below the
    first quartile before each fit (``floor_quantile``) took the share of runs that found
    the validation optimum from 86% / 92% / 4% to 100% / 100% / 23% on cifar10 / cifar100 /
    imagenet16-120 (100 seeds). PNAS is close to deterministic across seeds, since step 1 is
    exhaustive and the surrogates of different seeds mostly agree, so these rates are nearly
    all or nothing for a dataset.

    Args:
        space: A space with ``decisions``, ``encode`` and an empty option in each decision.
        seed: Seed of all random choices (order of step 1, surrogate initialisation).
        beam_size: ``K``: cells proposed, and kept, per step.
        exploration: Weight of the ensemble's spread in the ranking score; 0 ranks by the
            mean, as in the paper.
        encoding: The space encoding the surrogate reads (one of ``space.encodings``).
        canonical: Take cells up to function (see above).
        empty_option: The option that means "no operation" in every decision.
        n_members: Networks in the surrogate ensemble (the paper uses 5).
        epochs: Full-batch Adam epochs of each fit from scratch.
        floor_quantile: Scores below this quantile of the evaluated ones are raised to it
            before fitting (chance-level cells would otherwise dominate a squared loss); 0
            fits them as they are.
        pretrain: Pretrain the surrogate on free statistics (NARS) and fine-tune it.
        local_radius: How many decision changes from the best cells the local search ranks.

    Raises:
        InvalidConfigError: A parameter is out of range.
        UnknownNameError: ``encoding`` is not an encoding of the space.
        UnsupportedOperationError: The space has no ``decisions()``, or a decision has no
            ``empty_option``.

    Example:
        >>> from nasforge import spaces
        >>> pnas = PNAS(spaces.create("nb201"), seed=0)
        >>> first = [pnas.ask().arch for _ in range(5)]
        >>> sorted(pnas.complexity(a) for a in first), pnas.level
        ([1, 1, 1, 1, 1], 1)
    """

    requires = ("sample", "decisions", "encode")

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        beam_size: int = 8,
        exploration: float = 0.0,
        encoding: str = "onehot",
        canonical: bool = True,
        empty_option: str = "none",
        n_members: int = 5,
        epochs: int = 100,
        floor_quantile: float = 0.25,
        pretrain: bool = False,
        local_radius: int = 1,
    ) -> None:
        for name, value in (
            ("beam_size", beam_size),
            ("n_members", n_members),
            ("epochs", epochs),
            ("local_radius", local_radius),
        ):
            if value < 1:
                raise InvalidConfigError(f"{name} must be at least 1, got {value}.")
        if not exploration >= 0.0:
            raise InvalidConfigError(
                f"exploration must be a non-negative weight of the ensemble's spread, got "
                f"{exploration}."
            )
        check_floor_quantile(floor_quantile)
        super().__init__(space, seed=seed)
        space.check_encoding(encoding)
        decisions = space.decisions()
        self._options = [len(d.options) for d in decisions]
        missing = [d.name for d in decisions if empty_option not in d.options]
        if missing:
            raise UnsupportedOperationError(
                f"PNAS grows cells by complexity, the number of decisions that are not "
                f"{empty_option!r}, but decision(s) {', '.join(missing)} of space "
                f"{space.name!r} have no option {empty_option!r}; pass empty_option=<the "
                "option meaning 'no operation'> if the space has one, or use 'weaknas' or "
                "'regularized-evolution'."
            )
        self._empty = tuple(d.options.index(empty_option) for d in decisions)
        self._root = space.from_choices(self._empty)
        self.beam_size = beam_size
        self.exploration = exploration
        self.encoding = encoding
        self.canonical = canonical
        self.empty_option = empty_option
        self.n_members = n_members
        self.epochs = epochs
        self.floor_quantile = floor_quantile
        self.pretrain = pretrain
        self.local_radius = local_radius
        self._surrogate = EnsembleSurrogate.for_strategy(
            self, self._encode, n_members=n_members, epochs=epochs, pretrain=pretrain
        )
        self.max_complexity = len(self._empty)
        #: Complexity of the cells of the current batch; 0 before the first batch.
        self.level = 0
        #: Whether the search is still growing complexity (else: local search).
        self.progressive = True
        #: The surrogate of the last ranked batch (``None`` before the first fit).
        self.predictor: MLPEnsemble | None = None
        self._batch: list[Architecture] = []  # the last batch proposed (the beam to expand)
        self._queue: deque[Architecture] = deque()
        self._proposed: set[Architecture] = set()
        self._failed: set[Architecture] = set()
        self._encodings: dict[Architecture, np.ndarray] = {}
        self._around: dict[tuple[Architecture, bool], list[Architecture]] = {}
        self._done: list[tuple[Architecture, float]] = []

    def complexity(self, arch: Architecture) -> int:
        """The number of decisions of ``arch`` that are not ``empty_option``."""
        return sum(1 for c, e in zip(arch.choices, self._empty, strict=True) if c != e)

    # -- ask / tell ---------------------------------------------------------------------------
    def ask(self) -> Proposal:
        while True:
            if not self._queue:
                self._batch = self._next_batch()
                self._queue.extend(self._batch)
            arch = self._queue.popleft()
            if self._form(arch) not in self._proposed:
                break
        self._proposed.add(self._form(arch))
        return Proposal(arch)

    def tell(self, trial: Trial) -> None:
        key = self._form(trial.arch)
        self._proposed.add(key)
        if trial.state is not TrialState.COMPLETE or trial.score is None:
            self._failed.add(key)
            return
        self._done.append((trial.arch, float(trial.score)))

    # -- the steps ----------------------------------------------------------------------------
    def _form(self, arch: Architecture) -> Architecture:
        """``arch`` as proposed and remembered: its functional representative if canonical."""
        return self.space.canonical(arch) if self.canonical else arch

    def _next_batch(self) -> list[Architecture]:
        if self.progressive and self.level == 0:
            self.level = 1
            cells = self._fresh(self._expand(self._root), complexity=1)
            if cells:
                order = self.rng.permutation(len(cells))
                return [cells[int(i)] for i in order]
        while self.progressive and self.level < self.max_complexity:
            beam = [a for a in self._batch if self._form(a) not in self._failed]
            self.level += 1
            expansions = self._fresh(
                (n for cell in beam for n in self._expand(cell)), complexity=self.level
            )
            if expansions:
                return self._best(expansions)
        self.progressive = False
        ranked = sorted(self._done, key=lambda pair: -pair[1])  # stable: earliest first on ties
        beam = [arch for arch, _ in ranked[: self.beam_size]]
        around: dict[Architecture, None] = dict.fromkeys(beam)
        frontier = list(beam)
        for _ in range(self.local_radius):
            frontier = [n for cell in frontier for n in self._neighbours(cell) if n not in around]
            around.update(dict.fromkeys(frontier))
        neighbours = self._fresh(around)
        if neighbours:
            return self._best(neighbours)
        return [self._fallback()]

    def _expand(self, cell: Architecture) -> list[Architecture]:
        """The cells that turn one empty decision of ``cell`` into each other option."""
        return self._neighbours(cell, grow=True)

    def _neighbours(self, cell: Architecture, *, grow: bool = False) -> list[Architecture]:
        """The cells one decision away from ``cell`` (with ``grow``, only from empty ones)."""
        cached = self._around.get((cell, grow))
        if cached is not None:
            return cached
        out: list[Architecture] = []
        self._around[(cell, grow)] = out
        choices = list(cell.choices)
        for i, (current, empty) in enumerate(zip(choices, self._empty, strict=True)):
            if grow and current != empty:
                continue
            for option in range(self._options[i]):
                if option != current and (not grow or option != empty):
                    out.append(self.space.from_choices([*choices[:i], option, *choices[i + 1 :]]))
        return out

    def _fresh(
        self, cells: Iterable[Architecture], complexity: int | None = None
    ) -> list[Architecture]:
        """``cells`` in canonical form, deduplicated, not proposed, of the given complexity."""
        out: dict[Architecture, None] = {}
        for cell in cells:
            form = self._form(cell)
            if form in out or form in self._proposed:
                continue
            if complexity is not None and self.complexity(form) != complexity:
                continue
            out[form] = None
        return list(out)

    def _best(self, candidates: list[Architecture]) -> list[Architecture]:
        """The ``beam_size`` candidates the refitted surrogate ranks best, best first."""
        if not self._done:
            order = self.rng.permutation(len(candidates))
            return [candidates[int(i)] for i in order[: self.beam_size]]
        X = np.stack([self._encode(arch) for arch, _ in self._done])
        y = floored(np.array([score for _, score in self._done]), self.floor_quantile)
        predictor = self.predictor = self._surrogate.fit(X, y)
        mean, std = predict_chunked(predictor, np.stack([self._encode(c) for c in candidates]))
        order = np.argsort(-(mean + self.exploration * std), kind="stable")
        return [candidates[int(i)] for i in order[: self.beam_size]]

    def _encode(self, arch: Architecture) -> np.ndarray:
        vector = self._encodings.get(arch)
        if vector is None:
            vector = np.asarray(self.space.encode(arch, self.encoding), dtype=np.float64)
            self._encodings[arch] = vector
        return vector

    def _fallback(self) -> Architecture:
        """A random cell not proposed yet; a repeat when none is found."""
        return self._form(self.space.sample_unseen(self.rng, self._proposed, key=self._form))
