"""RoBoT: Bayesian-optimised weights of a proxy ensemble, then greedy exploitation."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from nasforge import strategies
from nasforge.errors import InvalidConfigError
from nasforge.predictors.ridge import ridge_loo
from nasforge.spaces.base import SearchSpace
from nasforge.strategies._candidates import CandidatePool
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal, Trial, TrialState

if TYPE_CHECKING:
    from nasforge.proxies.scores import ProxyScores

__all__ = ["RoBoT"]

_MAX_TRIES = 30
_MAX_OBSERVATIONS = 100

#: The proxies RoBoT combines on NAS-Bench-201 (its Section 5).
ROBOT_PROXIES = ("grad_norm", "snip", "grasp", "fisher", "synflow", "jacov")


@strategies.register("robot")
class RoBoT(Strategy):
    """Robustified and boosted training-free search.

    Chen, Y., Gao, Y., Zhang, J., Wang, R., Li, Z., Shu, Y., Low, B. K. H. and Zhou, J. T.
    "Robustifying and Boosting Training-Free Neural Architecture Search." ICLR 2024,
    arXiv:2403.07591, Algorithm 1.

    Every candidate has the scores of ``M`` proxies. A weight vector ``w`` in ``[-1, 1]^M``
    defines the ensemble ``F(a) = sum_i w_i s_i(a)``. Phase 1 (``explore_queries`` benchmark
    queries) is Bayesian optimisation over ``w``: the objective of ``w`` is the benchmark
    score of the candidate that maximises ``F``, modelled by a Gaussian process (squared
    exponential kernel, length scale chosen by marginal likelihood) and chosen by expected
    improvement over random weight vectors. A ``w`` whose best candidate was already queried
    is observed again for free, as in the paper. Phase 2 ("precise exploitation") ranks the
    candidates by the best ``w`` found and queries them in that order.

    Adaptations: proxy scores are rank-normalised among the candidates instead of
    standardised (heavy-tailed scores and ``UNDEFINED_SCORE`` would dominate a mean and
    standard deviation); the first ``w`` is the equal-weight ensemble rather than a random
    one. When every candidate has been queried, further proposals are random architectures.

    Args:
        space: Any space; with ``scores=None`` it needs a model builder.
        seed: Seed of the pool and of the optimisation.
        proxies: Proxy names (default: RoBoT's six, :data:`ROBOT_PROXIES`).
        explore_queries: Queries spent on Bayesian optimisation before exploitation.
        acquisition_samples: Random weight vectors scored by expected improvement per step.
        exploit: ``"best-weights"`` (the paper: rank by the best ``w`` found) or ``"ridge"``
            (rank by a ridge regression of every score observed so far on the proxies, as
            :class:`nasforge.proxies.combined.CombinedProxy` learns it; refitted after each
            query).
        scores, dataset, pool_size, data, batch_size, build, cache_dir, device: Where the
            candidates and their scores come from, as for ``training-free``
            (:class:`nasforge.strategies.training_free.TrainingFree`).

    Example:
        >>> from nasforge import spaces
        >>> s = RoBoT(spaces.create("nb201"), seed=0, proxies=["synflow", "params"], pool_size=6)
        >>> s.ask().arch in s.table.archs
        True
    """

    requires = ("sample",)

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        proxies: list[str] | None = None,
        explore_queries: int = 10,
        acquisition_samples: int = 512,
        exploit: str = "best-weights",
        scores: str | None = None,
        dataset: str = "cifar10",
        pool_size: int | None = None,
        data: str | None = None,
        batch_size: int = 16,
        build: dict[str, int] | None = None,
        cache_dir: str | None = None,
        device: str = "cpu",
    ) -> None:
        if explore_queries < 0:
            raise InvalidConfigError(f"explore_queries must be >= 0, got {explore_queries}.")
        if exploit not in ("best-weights", "ridge"):
            raise InvalidConfigError(
                f"exploit must be 'best-weights' (RoBoT) or 'ridge', got {exploit!r}."
            )
        if acquisition_samples < 1:
            raise InvalidConfigError(
                f"acquisition_samples must be >= 1, got {acquisition_samples}."
            )
        super().__init__(space, seed=seed)
        self.proxies = list(proxies) if proxies is not None else list(ROBOT_PROXIES)
        if not self.proxies:
            raise InvalidConfigError("RoBoT needs at least one proxy.")
        self.explore_queries = explore_queries
        self.acquisition_samples = acquisition_samples
        self.exploit = exploit
        self._pool = CandidatePool(
            space,
            self.proxies,
            self.rng,
            scores=scores,
            dataset=dataset,
            pool_size=pool_size,
            data=data,
            batch_size=batch_size,
            build=build,
            device=device,
            cache_dir=cache_dir,
        )
        self._features: np.ndarray | None = None
        self.weights: list[np.ndarray] = []  # BO inputs
        self.values: list[float] = []  # BO outputs
        self.observed: dict[int, float] = {}  # candidate row -> benchmark score
        self.proposed: set[int] = set()
        self.pending: dict[int, np.ndarray] = {}  # row proposed in phase 1 -> its w
        self.explored = 0
        self._order: np.ndarray | None = None
        self._order_for: int = -1

    @property
    def table(self) -> ProxyScores:
        """The scored candidates (computed on first use)."""
        return self._pool.get()[0]

    @property
    def features(self) -> np.ndarray:
        """One rank-normalised column per proxy (computed on first use)."""
        if self._features is None:
            self._features = np.stack(self._pool.get()[1], axis=1)
        return self._features

    # -- phase 1 -------------------------------------------------------------------------------
    def _best_row(self, w: np.ndarray) -> int:
        return int(np.argmax(self.features @ w))

    def _next_weights(self) -> np.ndarray:
        m = self.features.shape[1]
        if not self.weights:
            return np.ones(m)
        candidates = self.rng.uniform(-1.0, 1.0, size=(self.acquisition_samples, m))
        # free observations can pile up; the most recent _MAX_OBSERVATIONS keep the GP cheap
        x = np.asarray(self.weights[-_MAX_OBSERVATIONS:])
        y = np.asarray(self.values[-_MAX_OBSERVATIONS:])
        if len(y) < 2 or float(np.std(y)) == 0.0:
            return np.asarray(candidates[0])
        mean, std = _gp_posterior(x, (y - y.mean()) / y.std(), candidates)
        best = float(((y - y.mean()) / y.std()).max())
        z = (mean - best) / np.maximum(std, 1e-12)
        ei = (mean - best) * _norm_cdf(z) + std * _norm_pdf(z)
        return np.asarray(candidates[int(np.argmax(ei))])

    # -- phase 2 -------------------------------------------------------------------------------
    def _exploit_order(self) -> np.ndarray:
        key = len(self.values) + len(self.observed)
        if self._order is not None and self._order_for == key:
            return self._order
        if self.exploit == "ridge" and len(self.observed) >= 3:
            from nasforge.proxies.scores import rank_normalise

            rows = np.fromiter(self.observed, dtype=np.int64)
            labels = np.fromiter(self.observed.values(), dtype=np.float64)
            fit = ridge_loo(self.features[rows], rank_normalise(labels))
            score = fit.predict(self.features)
        else:
            w = self.weights[int(np.argmax(self.values))] if self.values else None
            score = self.features @ (np.ones(self.features.shape[1]) if w is None else w)
        self._order = np.argsort(-score, kind="stable")
        self._order_for = key
        return self._order

    def ask(self) -> Proposal:
        if self.explored < self.explore_queries and len(self.proposed) < len(self.table):
            for _ in range(_MAX_TRIES):
                w = self._next_weights()
                row = self._best_row(w)
                if row in self.observed:  # free observation: its best candidate is known
                    self.weights.append(w)
                    self.values.append(self.observed[row])
                    continue
                if row in self.proposed:  # asked but not told yet (parallel workers)
                    continue
                self.explored += 1
                self.proposed.add(row)
                self.pending[row] = w
                return Proposal(self.table.archs[row])
            self.explored = self.explore_queries  # no new candidate found: exploit
        for row in self._exploit_order():
            if int(row) not in self.proposed:
                self.proposed.add(int(row))
                return Proposal(self.table.archs[int(row)])
        return Proposal(self.space.sample(self.rng))

    def tell(self, trial: Trial) -> None:
        row = self.table.row(trial.arch)
        if row is None:
            return
        w = self.pending.pop(row, None)
        if trial.state is not TrialState.COMPLETE or trial.score is None:
            return
        self.observed[row] = float(trial.score)
        if w is not None:
            self.weights.append(w)
            self.values.append(float(trial.score))


def _norm_pdf(z: np.ndarray) -> np.ndarray:
    return np.asarray(np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, by ``math.erf``."""
    return np.asarray(0.5 * (1.0 + _erf(np.asarray(z, dtype=np.float64) / math.sqrt(2.0))))


def _gp_posterior(
    x: np.ndarray, y: np.ndarray, query: np.ndarray, noise: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of a zero-mean GP with a squared-exponential
    kernel of unit variance, its length scale picked from a grid by marginal likelihood."""
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    q2 = ((query[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    best = None
    for scale in (0.25, 0.5, 1.0, 2.0, 4.0):
        k = np.exp(-0.5 * d2 / scale**2) + noise * np.eye(len(x))
        try:
            chol = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            continue
        alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
        nll = 0.5 * float(y @ alpha) + float(np.log(np.diag(chol)).sum())
        if best is None or nll < best[0]:
            best = (nll, scale, chol, alpha)
    if best is None:
        return np.zeros(len(query)), np.ones(len(query))
    _, scale, chol, alpha = best
    ks = np.exp(-0.5 * q2 / scale**2)
    mean = ks @ alpha
    v = np.linalg.solve(chol, ks.T)
    var = np.maximum(1.0 - (v * v).sum(0), 1e-12)
    return mean, np.sqrt(var)
