"""Ridge regression in closed form, with the penalty chosen by exact leave-one-out error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nasforge.errors import InvalidConfigError
from nasforge.predictors.base import one_blas_thread

__all__ = ["ALPHAS", "RidgeFit", "ridge_loo", "ridge_solve"]

#: The penalties :func:`ridge_loo` tries by default.
ALPHAS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def ridge_solve(gram: np.ndarray, rhs: np.ndarray, alpha: float) -> np.ndarray:
    """The ridge coefficients ``(gram + alpha * I)^-1 rhs`` (``gram = X'X``, ``rhs = X'y``).

    Example:
        >>> ridge_solve(np.array([[2.0]]), np.array([4.0]), 2.0).tolist()
        [1.0]
    """
    return np.asarray(np.linalg.solve(gram + alpha * np.eye(len(gram)), rhs))


@dataclass(frozen=True)
class RidgeFit:
    """A ridge regression fitted by :func:`ridge_loo`.

    Attributes:
        coef: One coefficient per feature (on centred features).
        alpha: The penalty chosen.
        loo: The leave-one-out prediction of each training target.
        mean: The features' means (subtracted before ``coef`` applies).
        offset: The targets' mean (the intercept).
    """

    coef: np.ndarray
    alpha: float
    loo: np.ndarray
    mean: np.ndarray
    offset: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The prediction for each row of ``x``."""
        return np.asarray((x - self.mean) @ self.coef + self.offset)


@one_blas_thread
def ridge_loo(x: np.ndarray, y: np.ndarray, alphas: Sequence[float] = ALPHAS) -> RidgeFit:
    """Ridge regression of ``y`` on ``x`` (intercept unpenalised), its penalty the one of
    ``alphas`` with the lowest exact leave-one-out squared error (the first among equals).

    Raises:
        InvalidConfigError: No penalty, or shapes that do not match.

    Example:
        >>> x = np.arange(10.0)[:, None]
        >>> fit = ridge_loo(x, 2 * x[:, 0] + 1)
        >>> round(float(fit.predict(np.array([[20.0]]))[0]), 1), fit.alpha
        (41.0, 0.01)
    """
    if not alphas:
        raise InvalidConfigError("ridge_loo needs at least one penalty in alphas.")
    if x.ndim != 2 or y.shape != (len(x),):
        raise InvalidConfigError(
            f"ridge_loo needs x of shape (n, d) and y of shape (n,), got {x.shape}, {y.shape}."
        )
    mean = x.mean(axis=0)
    offset = float(y.mean())
    xc = x - mean
    yc = y - offset
    gram, rhs = xc.T @ xc, xc.T @ yc
    best = None
    for alpha in alphas:
        coef = ridge_solve(gram, rhs, alpha)
        hat = np.einsum("ij,ji->i", xc, ridge_solve(gram, xc.T, alpha))
        loo = yc - (yc - xc @ coef) / np.maximum(1.0 - hat, 1e-9)
        error = float(np.mean((yc - loo) ** 2))
        if best is None or error < best[0]:
            best = (error, alpha, coef, loo)
    assert best is not None
    _, alpha, coef, loo = best
    return RidgeFit(coef=coef, alpha=float(alpha), loo=loo + offset, mean=mean, offset=offset)
