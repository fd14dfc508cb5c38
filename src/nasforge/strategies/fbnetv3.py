"""FBNetV3: predictor-guided search of architectures and their training recipes together.

Dai, X., Wan, A., Zhang, P., Wu, B., He, Z., Wei, Z., Chen, K., Tian, Y., Yu, M., Vajda, P.
and Gonzalez, J. E. "FBNetV3: Joint Architecture-Recipe Search using Predictor Pretraining."
CVPR 2021, arXiv:2006.02049, Section 3 (Neural Architecture-Recipe Search, NARS).

On a joint space (``"<space>+recipe"``, :mod:`nasforge.spaces.recipe`) the strategy searches
a network and the recipe it is trained with; on any other space with decisions it searches
the architecture alone under the evaluator's recipe, the same algorithm (how
``benchmarks/fbnetv3_joint.py`` compares the two at equal cost).

* **Predictor** (Section 3.1): an ensemble of MLPs (:class:`~nasforge.predictors.MLPEnsemble`)
  on the joint encoding, the architecture's encoding followed by the recipe encoder's input
  (numeric settings min-max normalised, categorical ones one-hot; the space's ``"joint"``
  encoding), *pretrained on free statistics*: before any accuracy is known it is fitted to
  the parameters and FLOPs of ``pretrain_pool`` random candidates
  (:mod:`nasforge.predictors.nars`), then each fit fine-tunes a copy of it on the measured
  accuracies (``warm_start``).
* **Stage 1, constrained iterative optimisation** (Section 3.2): ``n_initial`` candidates
  drawn by quasi Monte-Carlo (a scrambled Sobol sequence over the decisions, so the first
  batch covers the space evenly) among those meeting the ``constraints`` (free metrics:
  ``"flops_M<=50"``...), evaluated; then ``n_iterations`` times: fit the predictor on the
  evaluated candidates, draw ``pool_size`` new constrained candidates by quasi Monte-Carlo,
  evaluate the ``batch_size`` best predicted. ``early_stop`` is the fidelity of these
  evaluations (e.g. ``{"epochs": 2}``): the paper's early stopping, training the candidates
  of Stage 1 for fewer epochs since their ranking is what the predictor needs.
* **Stage 2, predictor-based evolutionary search** (Section 3.3): an adaptive genetic search
  on the predictor alone (no training): the population starts as the ``population`` best
  evaluated candidates; each generation makes ``children`` by uniform crossover of two
  members and by mutation (one decision changed, one or two times), keeps those meeting the
  constraints, and keeps the ``population`` best predicted of parents and children; it
  stops when the population's mean predicted score improves by less than ``tolerance``
  (relative) or after ``max_generations``. The ``batch_size`` best members not yet
  evaluated are proposed at full fidelity. Every later round refits the predictor on all
  accuracies at the Stage-1 fidelity and runs Stage 2 again.

How nasforge differs: the paper's predictor pretrains an architecture encoder with a proxy
head and then trains an accuracy head on the architecture embedding joined with the recipe;
here one network reads the joint encoding, pretrained as a whole on the combined free target
(:func:`nasforge.predictors.nars.free_target`; the recipe inputs carry no signal for it and
are learned in fine-tuning). The paper's early stopping picks the epoch whose ranking
correlates with the final one; here the early-stopping fidelity is given. The epochs a joint
space decides are factors of the evaluator's (or the fidelity's) epochs, so early stopping
keeps the relative lengths of the schedules. Candidates are never proposed twice.

Free metrics are counted once per network: on a space whose architectures name a network
of a base space (``space.network_arch``, the recipe form), candidates with the same network share
them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from nasforge import strategies
from nasforge.architecture import Architecture
from nasforge.constraints import Constraint
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError
from nasforge.predictors.mlp import MLPEnsemble
from nasforge.predictors.nars import DEFAULT_METRICS
from nasforge.predictors.surrogate import EnsembleSurrogate, predict_chunked
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal, Trial, TrialState

__all__ = ["FBNetV3"]

#: Quasi Monte-Carlo draws per wanted candidate before the space is taken as used up (or the
#: constraints as infeasible).
_PATIENCE = 20


@strategies.register("fbnetv3")
class FBNetV3(Strategy):
    """Joint architecture-recipe search with a pretrained predictor (see the module docstring).

    Args:
        space: A space with decisions (a joint ``"<space>+recipe"`` space, or any other).
        seed: Seed of all random choices.
        n_initial: Quasi Monte-Carlo candidates evaluated before the first fit.
        batch_size: Candidates evaluated per iteration (per predictor fit).
        n_iterations: Stage-1 iterations after the initial batch; Stage 2 follows.
        pool_size: Constrained quasi Monte-Carlo candidates the predictor ranks per Stage-1
            iteration.
        constraints: Bounds on free metrics (``"params_M<=0.5"``, ``"flops_M<50"``) every
            proposed candidate meets.
        early_stop: The fidelity of Stage-1 evaluations (``{"epochs": 2}``); ``None``: full.
        encoding: The encoding the predictor reads; ``None``: ``"joint"`` where the space has
            it, else ``"onehot"``.
        pretrain: Pretrain the predictor on free statistics (NARS); ``None``: when the
            evaluator gives ``params_M`` and ``flops_M``.
        pretrain_pool: Random candidates the predictor is pretrained on.
        population: Stage-2 population size.
        children: Children made per Stage-2 generation.
        max_generations: Most Stage-2 generations per round.
        tolerance: Stage 2 stops when the population's mean predicted score rises by less
            than this fraction.
        n_members: Networks in the predictor ensemble.
        epochs: Adam epochs of a predictor fit from scratch (half to fine-tune).

    Raises:
        InvalidConfigError: A parameter out of range, or a malformed constraint.
        UnknownNameError: ``encoding`` is not an encoding of the space.
        UnsupportedOperationError: The space has no decisions.
        InfeasibleConstraintError: (at ask) no candidate met the constraints.

    Example:
        >>> from nasforge import spaces
        >>> from nasforge.trial import Trial, TrialState
        >>> space = spaces.create("nb201+recipe")
        >>> search = FBNetV3(space, seed=0, n_initial=4, batch_size=2, pool_size=64,
        ...                  pretrain=False, epochs=20)
        >>> def score(arch):  # made up: larger learning rates and convolutions train better
        ...     base, recipe = space.split(arch)
        ...     return sum(c in (2, 3) for c in base.choices) + recipe["lr"]
        >>> for number in range(8):
        ...     arch = search.ask().arch
        ...     search.tell(Trial(number, arch, TrialState.COMPLETE, scores=(score(arch),)))
        >>> search.stage
        2
    """

    requires = ("decisions", "encode", "mutate", "crossover")

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        n_initial: int = 16,
        batch_size: int = 8,
        n_iterations: int = 2,
        pool_size: int = 1000,
        constraints: Sequence[str] = (),
        early_stop: Mapping[str, float] | None = None,
        encoding: str | None = None,
        pretrain: bool | None = None,
        pretrain_pool: int = 200,
        population: int = 20,
        children: int = 40,
        max_generations: int = 30,
        tolerance: float = 1e-3,
        n_members: int = 5,
        epochs: int = 200,
    ) -> None:
        for name, value, low in (
            ("n_initial", n_initial, 1),
            ("batch_size", batch_size, 1),
            ("n_iterations", n_iterations, 0),
            ("pool_size", pool_size, 1),
            ("pretrain_pool", pretrain_pool, 2),
            ("population", population, 2),
            ("children", children, 1),
            ("max_generations", max_generations, 1),
            ("n_members", n_members, 1),
            ("epochs", epochs, 2),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidConfigError(
                    f"{name} must be an integer of at least {low}, got {value!r}."
                )
        if not tolerance >= 0:
            raise InvalidConfigError(f"tolerance must be at least 0, got {tolerance!r}.")
        if isinstance(constraints, str):
            constraints = [constraints]
        super().__init__(space, seed=seed)
        if encoding is None:
            encoding = "joint" if "joint" in space.encodings else "onehot"
        space.check_encoding(encoding)
        self.n_initial = n_initial
        self.batch_size = batch_size
        self.n_iterations = n_iterations
        self.pool_size = pool_size
        self.constraints = tuple(Constraint.parse(c) for c in constraints)
        self.early_stop = None if not early_stop else dict(early_stop)
        self.encoding = encoding
        self.pretrain = pretrain
        self.pretrain_pool = pretrain_pool
        self.population = population
        self.children = children
        self.max_generations = max_generations
        self.tolerance = float(tolerance)
        self._counts = [len(d.options) for d in space.decisions()]
        self._network: Callable[[Architecture], Architecture] | None = getattr(
            space, "network_arch", None
        )
        self._free_cache: dict[Architecture, Mapping[str, float]] = {}
        self._codes: dict[Architecture, np.ndarray] = {}
        self._surrogate = EnsembleSurrogate.for_strategy(
            self,
            self._encode,
            n_members=n_members,
            epochs=epochs,
            finetune_epochs=max(1, epochs // 2),
            pretrain=False,
            pretrain_pool=pretrain_pool,
        )
        self._surrogate.free = self._free
        self._queue: deque[tuple[Architecture, dict[str, float] | None]] = deque()
        self._proposed: set[Architecture] = set()
        self._history: list[tuple[Architecture, float, bool]] = []  # arch, score, stage 1
        #: Rounds done: 0 the initial batch, 1..n_iterations Stage 1, then Stage 2 rounds.
        self.rounds = 0
        #: The predictor of the last round (``None`` before the first fit).
        self.predictor: MLPEnsemble | None = None

    @property
    def stage(self) -> int:
        """1 while the rounds done are Stage 1's (initial batch and iterations), then 2."""
        return 1 if self.rounds <= self.n_iterations else 2

    # -- ask / tell ---------------------------------------------------------------------------
    def ask(self) -> Proposal:
        if not self._queue:
            self._queue.extend(self._next_batch())
            self.rounds += 1
        arch, fidelity = self._queue.popleft()
        return Proposal(arch, fidelity)

    def tell(self, trial: Trial) -> None:
        self._proposed.add(trial.arch)
        if trial.state is not TrialState.COMPLETE or trial.score is None:
            return
        early = self.early_stop is not None and dict(trial.fidelity or {}) == self.early_stop
        self._history.append((trial.arch, float(trial.score), early or self.early_stop is None))

    # -- rounds -------------------------------------------------------------------------------
    def _next_batch(self) -> list[tuple[Architecture, dict[str, float] | None]]:
        stage_one = self.rounds <= self.n_iterations
        fidelity = self.early_stop if stage_one else None
        data = [(a, s) for a, s, early in self._history if early]
        if self.rounds == 0 or len(data) < 2:
            size = self.n_initial if self.rounds == 0 else self.batch_size
            chosen = self._qmc(size)
        elif stage_one:
            self.predictor = self._fit(data)
            pool = self._qmc(self.pool_size)
            chosen = self._best(pool, self.batch_size)
        else:
            self.predictor = self._fit(data)
            chosen = self._evolve(data)
        self._proposed.update(chosen)
        return [(a, fidelity) for a in chosen]

    def _fit(self, data: list[tuple[Architecture, float]]) -> MLPEnsemble:
        if self._pretraining():
            self._surrogate.pretrain = True
        X = np.stack([self._encode(a) for a, _ in data])
        y = np.array([s for _, s in data])
        return self._surrogate.fit(X, y)

    def _pretraining(self) -> bool:
        """``pretrain``, or (``None``) whether the evaluator gives the free statistics."""
        if self.pretrain is not None:
            return self.pretrain
        if self.free_metrics is None:
            return False
        sample = self._free(self.space.from_choices([0] * len(self._counts)))
        return all(m in sample for m in DEFAULT_METRICS)

    def _best(self, candidates: list[Architecture], n: int) -> list[Architecture]:
        """The ``n`` candidates of highest predicted mean score."""
        if not candidates or self.predictor is None:
            return candidates[:n]
        order = np.argsort(-self._predict(candidates), kind="stable")
        return [candidates[int(i)] for i in order[:n]]

    # -- quasi Monte-Carlo sampling under the constraints -------------------------------------
    def _qmc(self, n: int) -> list[Architecture]:
        """Up to ``n`` distinct candidates not proposed yet and meeting the constraints,
        drawn from a scrambled Sobol sequence over the decisions (seeded from ``rng``).

        Raises:
            InfeasibleConstraintError: No candidate met the constraints.
        """
        from scipy.stats import qmc

        sobol = qmc.Sobol(len(self._counts), scramble=True, rng=int(self.rng.integers(2**32)))
        counts = np.asarray(self._counts)
        out: list[Architecture] = []
        seen = set(self._proposed)
        drawn = rejected = 0
        while len(out) < n and drawn < _PATIENCE * n:
            block = max(2, 1 << math.ceil(math.log2(max(2, n - len(out)))))
            points = sobol.random(block)
            drawn += block
            for row in np.minimum((points * counts).astype(np.int64), counts - 1):
                arch = self.space.from_choices(row.tolist())
                if arch in seen:
                    continue
                seen.add(arch)
                if not self._feasible(arch):
                    rejected += 1
                    continue
                out.append(arch)
                if len(out) >= n:
                    break
        if not out and rejected:
            raise InfeasibleConstraintError(
                f"No candidate of space {self.space.name!r} met the constraints "
                f"{[str(c) for c in self.constraints]} in {drawn} quasi Monte-Carlo draws; "
                "loosen them."
            )
        if not out:
            raise InvalidConfigError(
                f"Strategy fbnetv3 found no candidate of space {self.space.name!r} it has not "
                f"proposed yet in {drawn} draws; the space seems used up."
            )
        return out

    def _feasible(self, arch: Architecture) -> bool:
        if not self.constraints:
            return True
        free = self._free(arch)
        for c in self.constraints:
            if c.metric not in free:
                raise InvalidConfigError(
                    f"Constraint {c} of strategy fbnetv3 names {c.metric!r}, which the "
                    f"evaluator does not give for free; free metrics: {sorted(free) or 'none'}."
                )
        return all(c.satisfied(free) for c in self.constraints)

    def _free(self, arch: Architecture) -> Mapping[str, float]:
        """The free metrics of ``arch``'s network, counted once per network."""
        key = arch if self._network is None else self._network(arch)
        cached = self._free_cache.get(key)
        if cached is None:
            cached = self._free_cache[key] = dict(self.free(arch))
        return cached

    def _encode(self, arch: Architecture) -> np.ndarray:
        code = self._codes.get(arch)
        if code is None:
            code = self._codes[arch] = np.asarray(
                self.space.encode(arch, self.encoding), dtype=np.float64
            )
        return code

    # -- Stage 2: predictor-based adaptive genetic search ---------------------------------------
    def _evolve(self, data: list[tuple[Architecture, float]]) -> list[Architecture]:
        """The ``batch_size`` best predicted members, not proposed before, of the population
        evolved on the predictor (module docstring)."""
        ranked = sorted(data, key=lambda t: -t[1])
        members: list[Architecture] = []
        for arch, _ in ranked:
            if arch not in members:
                members.append(arch)
            if len(members) >= self.population:
                break
        scores = self._predict(members)
        previous = float(np.mean(scores))
        for _ in range(self.max_generations):
            known = set(members)
            kids: list[Architecture] = []
            for _ in range(self.children):
                if len(members) >= 2 and self.rng.random() < 0.5:
                    i, j = self.rng.choice(len(members), size=2, replace=False)
                    child = self.space.crossover(members[int(i)], members[int(j)], self.rng)
                else:
                    child = members[int(self.rng.integers(len(members)))]
                    for _ in range(1 + int(self.rng.integers(2))):
                        child = self.space.mutate(child, self.rng)
                if child in known or not self._feasible(child):
                    continue
                known.add(child)
                kids.append(child)
            if not kids:
                break
            pool = members + kids
            pooled = np.concatenate([scores, self._predict(kids)])
            keep = np.argsort(-pooled, kind="stable")[: self.population]
            members = [pool[int(i)] for i in keep]
            scores = pooled[keep]
            mean = float(np.mean(scores))
            gain = mean - previous
            previous = mean
            if gain < self.tolerance * max(abs(previous), 1e-12):
                break
        order = np.argsort(-scores, kind="stable")
        chosen = [members[int(i)] for i in order if members[int(i)] not in self._proposed]
        chosen = chosen[: self.batch_size]
        if len(chosen) < self.batch_size:  # the population was evaluated: the best new draws
            pool = self._qmc(max(self.pool_size, self.batch_size))
            extra = self._best([a for a in pool if a not in chosen], self.batch_size - len(chosen))
            chosen += extra
        return chosen

    def _predict(self, archs: list[Architecture]) -> np.ndarray:
        assert self.predictor is not None
        mean: np.ndarray = predict_chunked(
            self.predictor, np.stack([self._encode(a) for a in archs])
        )[0]
        return mean
