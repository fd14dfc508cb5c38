"""A combined proxy learned from a few labelled architectures.

No single zero-cost proxy ranks architectures well on every task, but a weighted combination
of them does much better (Chen, Y., Gao, Y., Zhang, J. et al. "Robustifying and Boosting
Training-Free Neural Architecture Search." ICLR 2024, arXiv:2403.07591, "RoBoT": a linear
combination of standardised proxies; Dong, P., Li, L., Tang, X. et al. "ParZC: Parametric
Zero-Cost Proxies for Efficient NAS." AAAI 2025, arXiv:2402.02105: a combination of proxies
learned from a few labelled architectures with a ranking objective).

:class:`CombinedProxy` learns the weights from labels, the ParZC way, with the simplest model
that fits its premise: ridge regression of the labels' ranks on the rank-normalised proxy
scores (ranks make the heavy-tailed scores and ``UNDEFINED_SCORE`` harmless and put every
proxy on one scale), optionally with the architecture encoding beside them. The ridge
penalty is chosen by exact leave-one-out error over a grid. RoBoT instead searches the
weights with Bayesian optimisation against the accuracy of the best architecture they pick,
which spends a query per weight vector; that is :mod:`nasforge.strategies.robot`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.predictors.ridge import ALPHAS, ridge_loo
from nasforge.proxies.scores import ProxyScores, rank_normalise
from nasforge.spaces.base import SearchSpace

__all__ = ["CombinedProxy", "CombinedProxyResult", "ridge_fit"]


def ridge_fit(
    x: np.ndarray, labels: np.ndarray, alphas: Sequence[float] = ALPHAS
) -> Callable[[np.ndarray], np.ndarray]:
    """Ridge regression of the labels' ranks on ``x``, the penalty chosen by exact
    leave-one-out error (:func:`nasforge.predictors.ridge.ridge_loo`); returns the
    predictor (larger is better)."""
    return ridge_loo(x, rank_normalise(labels), alphas).predict


@dataclass(frozen=True)
class CombinedProxyResult:
    """What :meth:`CombinedProxy.fit` learned.

    Attributes:
        n_labelled: Labelled architectures used (the queries the combination cost).
        weights: Proxy name to weight (on rank-normalised scores).
        alpha: The ridge penalty chosen by leave-one-out.
        loo_spearman: Spearman correlation of the leave-one-out predictions with the labels.
    """

    n_labelled: int
    weights: Mapping[str, float]
    alpha: float
    loo_spearman: float


class CombinedProxy:
    """A learned linear combination of rank-normalised proxy scores.

    Args:
        proxies: The proxies to combine (``None``: every column of the scores it is fit on).
        encoding: Also use this encoding of the architecture (``"onehot"``...) as features;
            needs ``space``.
        space: The search space (only with ``encoding``).
        alphas: Ridge penalties tried; the one with the lowest leave-one-out error is kept.

    The features of an architecture are its proxies' ranks among the architectures of the
    score table it is fit or applied on, scaled to ``[0, 1]``: rank normalisation needs the
    pool of candidates (which costs no query), so :meth:`predict` ranks within the pool it is
    given.

    Example:
        >>> import numpy as np
        >>> from nasforge import spaces
        >>> from nasforge.proxies.scores import ProxyScores, spearman
        >>> space = spaces.create("nb201")
        >>> archs = tuple(space.from_index(i) for i in range(60))
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.normal(size=60)
        >>> table = np.c_[truth + rng.normal(size=60), truth + rng.normal(size=60)]
        >>> scores = ProxyScores(archs, ("a", "b"), table)
        >>> combo = CombinedProxy().fit(scores, {archs[i]: truth[i] for i in range(20)})
        >>> combo.result.n_labelled
        20
        >>> spearman(combo.predict(scores), truth) > spearman(table[:, 0], truth)
        True
    """

    def __init__(
        self,
        proxies: Sequence[str] | None = None,
        *,
        encoding: str | None = None,
        space: SearchSpace | None = None,
        alphas: Sequence[float] = ALPHAS,
    ) -> None:
        if encoding is not None and space is None:
            raise InvalidConfigError("CombinedProxy(encoding=...) needs the space= to encode with.")
        if not alphas or any(a <= 0 for a in alphas):
            raise InvalidConfigError(f"alphas must be positive numbers, got {list(alphas)}.")
        self.proxies = None if proxies is None else tuple(proxies)
        self.encoding = encoding
        self.space = space
        self.alphas = tuple(float(a) for a in alphas)
        self._predict: Callable[[np.ndarray], np.ndarray] | None = None
        self.result: CombinedProxyResult | None = None

    def features(self, scores: ProxyScores) -> np.ndarray:
        """The feature matrix of every row of ``scores``."""
        table = scores if self.proxies is None else scores.select(self.proxies)
        columns = [rank_normalise(table.values[:, j]) for j in range(len(table.names))]
        parts = [np.stack(columns, axis=1)] if columns else []
        if self.encoding is not None and self.space is not None:
            parts.append(np.stack([self.space.encode(a, self.encoding) for a in scores.archs]))
        if not parts:
            raise InvalidConfigError("CombinedProxy has no features: give proxies or encoding.")
        return np.hstack(parts)

    def fit(self, scores: ProxyScores, labels: Mapping[Architecture, float]) -> CombinedProxy:
        """Learn the weights from ``labels`` (architecture to accuracy) of rows of ``scores``.

        Raises:
            InvalidConfigError: Fewer than 3 labels, or a labelled architecture that is not a
                row of ``scores``.
        """
        if len(labels) < 3:
            raise InvalidConfigError(
                f"CombinedProxy needs at least 3 labelled architectures, got {len(labels)}."
            )
        rows = []
        for arch in labels:
            row = scores.row(arch)
            if row is None:
                raise InvalidConfigError(
                    f"Labelled architecture {arch.text!r} is not in the score table; fit on a "
                    "table that holds every labelled architecture."
                )
            rows.append(row)
        x = self.features(scores)[np.asarray(rows)]
        y = rank_normalise(np.fromiter(labels.values(), dtype=np.float64))
        fit = ridge_loo(x, y, self.alphas)
        self._predict, coef, alpha, loo = fit.predict, fit.coef, fit.alpha, fit.loo
        names = scores.names if self.proxies is None else self.proxies
        from nasforge.proxies.scores import spearman

        self.result = CombinedProxyResult(
            n_labelled=len(labels),
            weights={n: float(w) for n, w in zip(names, coef[: len(names)], strict=True)},
            alpha=alpha,
            loo_spearman=spearman(loo, y),
        )
        return self

    def predict(self, scores: ProxyScores) -> np.ndarray:
        """The combined score of every row of ``scores`` (larger is better)."""
        if self._predict is None:
            raise InvalidConfigError("Call CombinedProxy.fit(...) before predict().")
        return self._predict(self.features(scores))
