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
from nasforge.strategies._functional import FunctionalForms
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
      6 x 4 = 24. Taken up to function (see *Functional knowledge*), 19 of them compute
      zero, like the empty cell (their edge does not reach the output), and have complexity
      0; what is left are 5 functions: the edge ``0 -> 3`` carrying one of the 4
      operations, and one cell whose output is a learned constant (a convolution fed by a
      zero node adds its BatchNorm shift). Without functional knowledge all 24 are
      evaluated, 20 of them at chance accuracy.
    * **Step b = 2 .. 6** expands each cell kept at step ``b - 1`` by turning one of its
      empty edges into each operation. Taken up to function, each expansion is replaced by
      the representative of its class and dropped when that has lost complexity (the new
      edge is dead, so the cell computes what a simpler one does) or was proposed before.
      The cells kept for the next step are those proposed at this one, less failed trials.
    * **After complexity 6**, the budget left goes to a surrogate-ranked local search: each
      batch ranks every cell within ``local_radius`` decision changes of the ``K`` best
      evaluated cells that has not been proposed, and proposes the ``K`` best ranked. PNAS
      stops when the cells reach the intended size; the local search spends the rest of the
      budget where the progressive phase left off instead of restarting it. When no such
      cell is left, random unproposed cells are drawn. A step with no expansion left also
      ends the progressive phase.

    No cell (taken up to function: no function) is proposed twice, and the surrogate is
    refitted once per batch. ``pretrain=True`` first fits the surrogate to free statistics
    (params, FLOPs) of :data:`PRETRAIN_POOL` random cells (FBNetV3's NARS,
    :mod:`nasforge.predictors.nars`) and each step fine-tunes a copy of it; this needs an
    evaluator with free metrics (the study passes them).

    **Functional knowledge** (``canonical``). With ``canonical=None`` (the default) PNAS
    follows the study: a study that deduplicates (``create_study(dedupe=True)``) sets the
    strategy's ``functional_key`` to ``space.functional_key`` before the first ask, and
    PNAS then takes cells up to function; otherwise it does not, like every other strategy
    of a comparison. ``canonical=True`` uses ``space.functional_key`` even outside such a
    study (refused on a space with neither a canonical form nor a builder to hash), and
    ``canonical=False`` never. Where the key is an architecture (NB201's canonical form) it
    is the class's representative; where it is a string (a generic functional hash of the
    built network) the first cell seen with that key stands for its class, and the empty
    cell is seen first, so cells that compute nothing fall to complexity 0 there too.

    **Without functional knowledge**, PNAS used to fall below random search on NB201
    (cifar10 optimum rate 1% at 100 queries, mean test accuracy 93.74 against random's
    93.81; tuning seeds 0-99). The cause was the surrogate's targets: the 20 chance-level
    single-edge cells tie at one score, more than a quarter of all scores until ~80
    queries, so the floor at the first quartile of the scores stayed at chance level and
    the squared loss was spent separating dead cells from live ones. The one-hot weights
    then said only that an operation off edge ``0 -> 3`` costs accuracy (it is dead *alone*),
    and every later ranking among live expansions, whose differences are 100 times smaller,
    was noise that all seeds shared. The floor is now taken over the *distinct* scores
    (:func:`~nasforge.predictors.surrogate.floored`), so ties at chance cannot hold it down;
    this alone took the cifar10 / cifar100 / imagenet16-120 optimum rates at 100 queries
    from 1% / 1% / 0% to 52% / 60% / 5%. Dead expansions are still proposed (PNAS cannot
    tell them without the knowledge), which is why a smaller beam pays without it: it
    reaches complexity 6 after 24 + 5 x 3 = 39 queries instead of 64. Seeds differ through
    the order of step 1 and the surrogate's initialisation (20 distinct final cells over
    100 seeds on imagenet16-120); sampling the beam from the ensemble (Thompson draws, or
    uniformly among the top ``2K``) was measured and did not help.

    Spaces whose decisions lack an empty option have no complexity to grow, and PNAS refuses
    them (:class:`~nasforge.errors.UnsupportedOperationError`) rather than guess one; use
    ``"weaknas"`` or ``"regularized-evolution"`` there.

    The defaults were chosen with :func:`~nasforge.experiments.run_comparison` on NB201
    (tuning seeds 0-99, three datasets, 100 queries), with and without functional
    knowledge: ``K = 3`` (the paper's ``K = 256`` suits its far larger space; 8 before
    the floor fix) and ``floor_quantile = 0.5``. Optimum rate and mean test accuracy on
    the tuning seeds (random search's mean test accuracy in brackets):
    ==============  ================================  ================================
    100 queries     no functional knowledge           the study deduplicates
    ==============  ================================  ================================
    cifar10         61% / 94.12 (random 93.81)        99% / 94.37 (random 93.81)
    cifar100        87% / 73.26 (random 71.44)        100% / 73.51 (random 71.45)
    imagenet16-120  10% / 46.41 (random 45.31)        14% / 46.53 (random 45.35)
    ==============  ================================  ================================

    At 50 queries: 4% / 93.71 (93.64), 6% / 71.54 (70.90), 0% / 44.87 (44.94) without the
    knowledge, where PNAS has only just reached complexity 6 and is within 0.1 of random
    search on imagenet16-120; 20% / 94.26, 92% / 73.48, 1% / 46.00 with it. On
    imagenet16-120 the predictor-guided strategy to use is ``"weaknas"``.

    Args:
        space: A space with ``decisions``, ``encode`` and an empty option in each decision.
        seed: Seed of all random choices (order of step 1, surrogate initialisation).
        beam_size: ``K``: cells proposed, and kept, per step.
        exploration: Weight of the ensemble's spread in the ranking score; 0 ranks by the
            mean, as in the paper.
        encoding: The space encoding the surrogate reads (one of ``space.encodings``).
        canonical: Take cells up to function: ``None`` follows the study, ``True``
            always, ``False`` never (see above).
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
            ``empty_option``, or ``canonical=True`` on a space without a functional key
            (``space.dedupe_method`` is ``None``).

    Example:
        >>> from nasforge import spaces
        >>> pnas = PNAS(spaces.create("nb201"), seed=0)
        >>> first = [pnas.ask().arch for _ in range(5)]
        >>> sorted(pnas.complexity(a) for a in first), pnas.level
        ([1, 1, 1, 1, 1], 1)
        >>> known = PNAS(spaces.create("nb201"), seed=0, canonical=True)
        >>> _ = [known.ask() for _ in range(5)]
        >>> _ = known.ask(); known.level  # step 1 held the 5 functions of complexity 1
        2
    """

    requires = ("sample", "decisions", "encode")

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        beam_size: int = 3,
        exploration: float = 0.0,
        encoding: str = "onehot",
        canonical: bool | None = None,
        empty_option: str = "none",
        n_members: int = 5,
        epochs: int = 100,
        floor_quantile: float = 0.5,
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
        self._forms = FunctionalForms(self, canonical)
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
        """``arch`` as proposed and remembered: its functional representative, if any."""
        return self._forms.form(arch)

    def _next_batch(self) -> list[Architecture]:
        if self.progressive and self.level == 0:
            self.level = 1
            self._form(self._root)  # a generic hash: cells computing nothing map to the root
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
        """``cells`` in functional form, deduplicated, not proposed, of the given complexity."""
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
        score = mean + self.exploration * std
        order = np.argsort(-score, kind="stable")
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
