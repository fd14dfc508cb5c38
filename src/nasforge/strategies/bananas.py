"""BANANAS: Bayesian optimisation with an ensemble of neural predictors."""

from __future__ import annotations

from collections import deque

import numpy as np

from nasforge import strategies
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.predictors.mlp import MLPEnsemble
from nasforge.predictors.surrogate import EnsembleSurrogate
from nasforge.spaces.base import DISTINCT_PATIENCE, SearchSpace
from nasforge.strategies._functional import FunctionalForms
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal, Trial, TrialState

__all__ = ["Bananas"]

#: Mutation attempts per wanted candidate before giving up on finding an unseen one.
_PATIENCE = 50
#: The MAPE bound lies this fraction of (best - median score) beyond the best score.
_MARGIN = 0.1


@strategies.register("bananas")
class Bananas(Strategy):
    """Neural-ensemble Bayesian optimisation with path encodings and Thompson sampling.

    White, C., Neiswanger, W. and Savani, Y. "BANANAS: Bayesian Optimization with Neural
    Architectures for Neural Architecture Search." AAAI 2021, arXiv:1910.11858 (Algorithm 1).

    The search starts with ``n_initial`` random architectures. Each later iteration

    1. fits an ensemble of ``n_members`` MLPs (:class:`~nasforge.predictors.MLPEnsemble`,
       members differing by their initialisation) to the encodings of the evaluated
       architectures, by default the path encoding with a MAPE loss;
    2. builds candidates by mutating the best evaluated architectures (the paper's
       mutation-based acquisition optimisation): every neighbour of the
       ``n_neighbour_parents`` best, plus ``n_candidates`` mutants (1 to ``max_mutations``
       successive ``space.mutate`` steps) of the ``n_parents`` best;
    3. scores each candidate by independent Thompson sampling (ITS): one draw from
       ``N(mean_i, std_i)`` of the ensemble's prediction, independently per candidate;
    4. proposes the ``k`` best-scored candidates, one per :meth:`ask`.

    The ensemble is therefore fitted once per ``k`` proposals. No architecture is proposed
    twice (exact match), whether it was evaluated, failed, or is still waiting in the batch.

    As in the paper's implementation, the MAPE loss is taken on a distance to a bound just
    beyond the best score seen (naszilla uses the validation loss minus a lower bound), so
    that relative errors near the top weigh most. Scores are the study's first objective,
    larger is better.

    With ``pretrain=True`` the predictor is first fitted to free statistics (params, FLOPs)
    of ``pretrain_pool`` random architectures, as in FBNetV3's NARS (Dai et al., CVPR 2021,
    arXiv:2006.02049; see :mod:`nasforge.predictors.nars`), and each iteration fine-tunes a
    copy of that pretrained ensemble on the measured scores (``fit(..., warm_start=True)``)
    instead of fitting from scratch. This needs an evaluator with free metrics.

    **Functional knowledge** (``canonical``): with ``canonical=None`` (the default) BANANAS
    follows the study. A study that deduplicates (``create_study(dedupe=True)``) sets the
    strategy's ``functional_key`` to ``space.functional_key`` before the first ask; BANANAS
    then proposes no architecture that computes the same function as one proposed before
    (random draws and candidates are compared by that key; a string key, a generic hash of
    the built network, works as well as a canonical form). Such a twin would be answered
    from the study's record at no cost, but would take a place in the ``k`` of a batch and
    teach the ensemble nothing. Outside such a study every architecture is its own class
    (exact matches only, the random stream of earlier versions). ``canonical=True`` uses
    ``space.functional_key`` even outside such a study (refused on a space that has neither
    a canonical form nor a builder to hash), ``False`` never. Measured with the study
    deduplicating (tuning seeds 0-99, 100 queries), following the key or not made no
    difference beyond noise: 72% / 73% / 34% against 73% / 72% / 40% optimum rate on
    cifar10 / cifar100 / imagenet16-120 (a twin proposed is a free extra data point for the
    ensemble); it is followed so that every strategy of a comparison has the same knowledge.

    How nasforge differs from the paper: the MLPs are smaller (``hidden=(32, 32)`` instead of
    10 layers of width 20) and trained full-batch in NumPy, and every neighbour of the very
    best architectures joins the candidates, which makes the last iterations a
    predictor-guided local search. The defaults were tuned on NAS-Bench-201 with
    ``run_comparison`` (see ``benchmarks/strategy_overhead.py`` for the speed).

    Args:
        space: A space with ``sample``, ``mutate``, ``encode`` (and ``neighbours`` when
            ``n_neighbour_parents > 0``).
        seed: Seed of all random choices.
        n_initial: Random architectures before the first model-guided batch (paper: 10).
        k: Architectures proposed per iteration, i.e. per ensemble fit (paper: 10).
        n_candidates: Mutants scored per iteration (paper: 100).
        n_parents: How many of the best evaluated architectures are mutated.
        n_neighbour_parents: How many of the best evaluated architectures contribute all
            their neighbours to the candidates (0: none).
        max_mutations: Mutants take 1 to this many successive mutation steps.
        n_members: Ensemble size (paper: 5).
        epochs: Training epochs of each fit (half of them to fine-tune a pretrained ensemble).
        encoding: Encoding fed to the predictor; ``None`` uses ``"path"`` where the space
            has it, else ``"onehot"`` (else the space's first encoding).
        loss: ``"mape"`` (paper) or ``"mse"``.
        pretrain: Pretrain the predictor on free statistics (NARS) before fine-tuning it.
        pretrain_pool: Random architectures in the pretraining pool.
        canonical: Compare proposals up to function: ``None`` follows the study, ``True``
            always, ``False`` never (see above).

    Raises:
        InvalidConfigError: A parameter out of range.
        UnknownNameError: ``encoding`` is not one of the space's encodings.
        UnsupportedOperationError: The space lacks a capability the strategy needs, or
            ``canonical=True`` on a space without a functional key.

    Example:
        >>> import nasforge
        >>> study = nasforge.create_study(strategy="bananas", seed=0)
        >>> ev = nasforge.evaluators.create("tabular", dataset="cifar10")
        >>> study.optimize(ev, n_trials=40).best_trial.metrics["valid_acc"] > 89
        True
    """

    requires = ("sample", "mutate", "encode")

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        n_initial: int = 10,
        k: int = 5,
        n_candidates: int = 100,
        n_parents: int = 10,
        n_neighbour_parents: int = 1,
        neighbour_depth: int = 1,
        max_mutations: int = 2,
        n_members: int = 5,
        epochs: int = 200,
        encoding: str | None = None,
        loss: str = "mape",
        pretrain: bool = False,
        pretrain_pool: int = 500,
        canonical: bool | None = None,
    ) -> None:
        for name, value, low in (
            ("n_initial", n_initial, 1),
            ("k", k, 1),
            ("n_candidates", n_candidates, 1),
            ("n_parents", n_parents, 1),
            ("n_neighbour_parents", n_neighbour_parents, 0),
            ("neighbour_depth", neighbour_depth, 1),
            ("max_mutations", max_mutations, 1),
            ("n_members", n_members, 1),
            ("epochs", epochs, 2),
            ("pretrain_pool", pretrain_pool, 2),
        ):
            if value < low:
                raise InvalidConfigError(f"{name} must be at least {low}, got {value}.")
        if loss not in ("mape", "mse"):
            raise InvalidConfigError(f"loss must be 'mape' or 'mse', got {loss!r}.")
        super().__init__(space, seed=seed)
        if n_neighbour_parents > 0 and not space.supports("neighbours"):
            raise UnsupportedOperationError(
                f"Strategy Bananas with n_neighbour_parents={n_neighbour_parents} needs a "
                f"search space with neighbours(); space {space.name!r} does not provide it. "
                "Set n_neighbour_parents=0."
            )
        if encoding is None:
            preferred: list[str] = [e for e in ("path", "onehot") if e in space.encodings]
            encoding = (preferred or [*space.encodings, "onehot"])[0]
        space.check_encoding(encoding)
        self.n_initial = n_initial
        self.k = k
        self.n_candidates = n_candidates
        self.n_parents = n_parents
        self.n_neighbour_parents = n_neighbour_parents
        self.neighbour_depth = neighbour_depth
        self.max_mutations = max_mutations
        self.n_members = n_members
        self.epochs = epochs
        self.encoding = encoding
        self.loss = loss
        self.pretrain = pretrain
        self.pretrain_pool = pretrain_pool
        self.canonical = canonical
        self._forms = FunctionalForms(self, canonical)
        self._history: list[tuple[Architecture, float]] = []
        self._queue: deque[Architecture] = deque()
        self._proposed: set[Architecture] = set()
        self._codes: dict[Architecture, np.ndarray] = {}
        self._surrogate = EnsembleSurrogate(
            space,
            self.rng,
            lambda arch: self.space.encode(arch, self.encoding),
            self.free,
            n_members=n_members,
            epochs=epochs,
            finetune_epochs=epochs // 2,
            loss=loss,
            pretrain=pretrain,
            pretrain_pool=pretrain_pool,
            transform=_as_distance,
            seed_bound=2**31,
        )

    # -- ask/tell ---------------------------------------------------------------------------
    def ask(self) -> Proposal:
        if not self._queue:
            self._queue.extend(self._next_batch())
        arch = self._queue.popleft()
        return Proposal(arch)

    def tell(self, trial: Trial) -> None:
        self._proposed.add(self._forms.form(trial.arch))
        if trial.state is TrialState.COMPLETE and trial.score is not None:
            self._history.append((trial.arch, float(trial.score)))

    # -- one iteration ----------------------------------------------------------------------
    def _next_batch(self) -> list[Architecture]:
        """The next architectures to propose: random at first, then the ITS winners."""
        if len(self._proposed) < self.n_initial:
            return self._random(self.n_initial - len(self._proposed), self._proposed)
        if len(self._history) < 2:
            return self._random(1, self._proposed)
        candidates = self._candidates()
        chosen: list[Architecture] = []
        if candidates:
            model = self._fit()
            mean, std = model.predict(self._encode_all(candidates))
            draws = self.rng.normal(mean, std)  # ITS: one independent sample per candidate
            for i in np.argsort(draws, kind="stable")[: self.k]:  # smallest distance to the top
                chosen.append(candidates[int(i)])
        if len(chosen) < self.k:
            taken = {self._forms.form(arch) for arch in chosen}
            chosen += self._random(self.k - len(chosen), self._proposed | taken)
        self._proposed.update(self._forms.form(arch) for arch in chosen)
        return chosen

    def _random(self, n: int, exclude: set[Architecture]) -> list[Architecture]:
        """``n`` random architectures (up to function, when taken so) not in ``exclude``."""
        key = self._forms.form if self._forms.active else None
        out = self.space.sample_distinct(self.rng, n, exclude=exclude, key=key)
        if not out:
            raise InvalidConfigError(
                f"Strategy Bananas found no architecture of space {self.space.name!r} that it "
                f"has not proposed yet after {DISTINCT_PATIENCE * n} random draws; the space "
                "seems exhausted."
            )
        self._proposed.update(self._forms.form(arch) for arch in out)
        return out

    def _candidates(self) -> list[Architecture]:
        """Neighbours of the very best and mutants of the best, none proposed before."""
        ranked = [arch for arch, _ in sorted(self._history, key=lambda t: -t[1])]
        out: list[Architecture] = []
        seen = set(self._proposed)

        def add(arch: Architecture) -> bool:
            form = self._forms.form(arch)
            if form in seen:
                return False
            seen.add(form)
            out.append(arch)
            return True

        for parent in ranked[: self.n_neighbour_parents]:
            ring = [parent]
            reached = {parent}
            for _ in range(self.neighbour_depth):
                next_ring = []
                for centre in ring:
                    for arch in self.space.neighbours(centre):
                        if arch not in reached:
                            reached.add(arch)
                            next_ring.append(arch)
                            add(arch)
                ring = next_ring
        parents = ranked[: self.n_parents]
        wanted = len(out) + self.n_candidates
        for attempt in range(_PATIENCE * self.n_candidates):
            if len(out) >= wanted:
                break
            arch = parents[attempt % len(parents)]
            for _ in range(1 + (attempt // len(parents)) % self.max_mutations):
                arch = self.space.mutate(arch, self.rng)
            add(arch)
        return out

    def _targets(self) -> np.ndarray:
        """Distances of the scores to a bound just beyond the best one (smaller is better)."""
        scores = np.array([score for _, score in self._history])
        best = float(scores.max())
        spread = best - float(np.median(scores))
        bound = best + max(_MARGIN * spread, 1e-6 * max(1.0, abs(best)))
        distances: np.ndarray = bound - scores
        return distances

    def _fit(self) -> MLPEnsemble:
        X = self._encode_all([arch for arch, _ in self._history])
        return self._surrogate.fit(X, self._targets())

    def _encode_all(self, archs: list[Architecture]) -> np.ndarray:
        rows = []
        for arch in archs:
            code = self._codes.get(arch)
            if code is None:
                code = self._codes[arch] = self.space.encode(arch, self.encoding)
            rows.append(code)
        return np.stack(rows)


def _as_distance(z: np.ndarray) -> np.ndarray:
    """The standardised pretraining target as a distance to the top (larger models:
    closer), the scale of :meth:`Bananas._targets`."""
    gap = float(z.max()) - z
    distances: np.ndarray = gap + _MARGIN * float(np.median(gap)) + 1e-6
    return distances
