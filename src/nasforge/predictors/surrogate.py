"""The ensemble surrogate of the predictor-guided strategies (BANANAS, PNAS, WeakNAS).

Each strategy refits an :class:`~nasforge.predictors.MLPEnsemble` on the architectures
evaluated so far, from scratch or, with ``pretrain=True``, fine-tuning a copy of an ensemble
pretrained once on free statistics (FBNetV3's NARS, :mod:`nasforge.predictors.nars`).
:class:`EnsembleSurrogate` holds that recipe; :func:`floored` and :func:`predict_chunked`
are the target floor and the chunked ranking they share.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.predictors.mlp import MLPEnsemble
from nasforge.predictors.nars import pretrain as pretrain_predictor
from nasforge.predictors.nars import random_pool
from nasforge.spaces.base import SearchSpace

if TYPE_CHECKING:
    from nasforge.strategies.base import Strategy

__all__ = [
    "CHUNK",
    "PRETRAIN_POOL",
    "EnsembleSurrogate",
    "check_floor_quantile",
    "floored",
    "predict_chunked",
]

#: Random architectures whose free statistics pretrain a surrogate by default.
PRETRAIN_POOL = 500
#: Rows per prediction call in :func:`predict_chunked`: small products stay on one BLAS
#: thread, several times faster than OpenBLAS threading them on a two-core machine.
CHUNK = 256


class EnsembleSurrogate:
    """Builds and refits a strategy's ensemble, fresh or fine-tuned from a pretrained one.

    Every ensemble built takes its seed from ``rng`` at that moment
    (``int(rng.integers(seed_bound))``), and the pretraining pool is drawn from ``rng`` on
    first use, so a strategy that passes its own generator stays a function of its seed and
    of the order of its calls.

    Args:
        space: The space the pretraining pool is drawn from.
        rng: The strategy's generator.
        encode: The feature vector of an architecture (the one the ensemble is fitted on).
        free: The free metrics of an architecture (``Strategy.free``; only to pretrain).
        n_members: Networks in the ensemble.
        epochs: Epochs of a fit from scratch.
        finetune_epochs: Epochs of a fine-tuning fit.
        loss: ``"mse"`` or ``"mape"``.
        pretrain: Fine-tune a copy of a pretrained ensemble at each fit.
        pretrain_pool: Random architectures the ensemble is pretrained on.
        transform: Maps the standardised pretraining target to the scale of the fitted
            targets (see :func:`nasforge.predictors.nars.pretrain`).
        seed_bound: Ensemble seeds are drawn below it.

    Example:
        >>> from nasforge import spaces
        >>> space = spaces.create("nb201")
        >>> rng = np.random.default_rng(0)
        >>> surrogate = EnsembleSurrogate(space, rng, lambda a: space.encode(a), lambda a: {})
        >>> archs = [space.sample(rng) for _ in range(20)]
        >>> X = np.stack([space.encode(a) for a in archs])
        >>> model = surrogate.fit(X, np.array([sum(a.choices) for a in archs], dtype=float))
        >>> predict_chunked(model, X)[0].shape
        (20,)
    """

    def __init__(
        self,
        space: SearchSpace,
        rng: np.random.Generator,
        encode: Callable[[Architecture], np.ndarray],
        free: Callable[[Architecture], Mapping[str, float]],
        *,
        n_members: int = 5,
        epochs: int = 100,
        finetune_epochs: int = 100,
        loss: str = "mse",
        pretrain: bool = False,
        pretrain_pool: int = PRETRAIN_POOL,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        seed_bound: int = 2**63,
    ) -> None:
        self.space = space
        self.rng = rng
        self.encode = encode
        self.free = free
        self.n_members = n_members
        self.epochs = epochs
        self.finetune_epochs = finetune_epochs
        self.loss = loss
        self.pretrain = pretrain
        self.pretrain_pool = pretrain_pool
        self.transform = transform
        self.seed_bound = seed_bound
        self._base: MLPEnsemble | None = None

    @classmethod
    def for_strategy(
        cls, strategy: Strategy, encode: Callable[[Architecture], np.ndarray], **settings: Any
    ) -> EnsembleSurrogate:
        """The surrogate of ``strategy``: its space, its generator and its free metrics
        (``strategy.free``), with ``settings`` (the keyword arguments of the class)."""
        return cls(strategy.space, strategy.rng, encode, strategy.free, **settings)

    def new(self) -> MLPEnsemble:
        """A fresh, untrained ensemble seeded from ``rng``."""
        return MLPEnsemble(
            n_members=self.n_members,
            epochs=self.epochs,
            finetune_epochs=self.finetune_epochs,
            loss=self.loss,
            seed=int(self.rng.integers(self.seed_bound)),
        )

    def pretrained(self) -> MLPEnsemble:
        """The ensemble pretrained on free statistics (NARS), built on first use."""
        if self._base is None:
            archs = random_pool(self.space, self.rng, self.pretrain_pool)
            self._base = pretrain_predictor(
                self.new(), archs, self.encode, self.free, transform=self.transform
            )
        return self._base

    def fit(self, X: np.ndarray, y: np.ndarray) -> MLPEnsemble:
        """An ensemble fitted to ``X`` and ``y``: a copy of :meth:`pretrained` fine-tuned
        with ``pretrain``, else a fresh one trained from scratch."""
        if self.pretrain:
            return copy.deepcopy(self.pretrained()).fit(X, y, warm_start=True)
        return self.new().fit(X, y)


def floored(y: np.ndarray, quantile: float) -> np.ndarray:
    """``y`` with the values below the ``quantile`` of its distinct values raised to it
    (``y`` itself for 0).

    The quantile is taken over the distinct values so that many equal scores (cells that
    compute nothing all train to the same chance accuracy) cannot hold the floor down at
    their own level: on NB201 without a canonical form, 20 of the 24 single-edge cells tie
    at chance, and a floor over all scores left them to dominate the surrogate's squared
    loss until they were under a quarter of the data.

    Example:
        >>> floored(np.array([10.0, 80.0, 85.0, 90.0, 91.0]), 0.25).tolist()
        [80.0, 80.0, 85.0, 90.0, 91.0]
        >>> floored(np.array([10.0, 10.0, 10.0, 10.0, 80.0, 90.0]), 0.5).tolist()
        [80.0, 80.0, 80.0, 80.0, 80.0, 90.0]
    """
    check_floor_quantile(quantile)
    distinct = np.unique(y)
    if quantile == 0.0 or len(distinct) < 2:
        return y
    out: np.ndarray = np.maximum(y, np.quantile(distinct, quantile))
    return out


def check_floor_quantile(quantile: float) -> None:
    """Refuse a ``floor_quantile`` outside [0, 1) with a clear error."""
    if not 0.0 <= quantile < 1.0:
        raise InvalidConfigError(
            f"floor_quantile must be in [0, 1) (0 fits the scores as they are), got {quantile}."
        )


def predict_chunked(
    predictor: MLPEnsemble, X: np.ndarray, chunk: int = CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the prediction for each row of ``X``, predicted
    ``chunk`` rows at a time."""
    parts = [predictor.predict(X[i : i + chunk]) for i in range(0, len(X), chunk)]
    if not parts:
        return np.empty(0), np.empty(0)
    return np.concatenate([m for m, _ in parts]), np.concatenate([s for _, s in parts])
