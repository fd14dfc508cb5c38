"""An ensemble of small multi-layer perceptrons, written in NumPy (no torch import).

The ensemble members differ only by their random initialisation, as in BANANAS (White, W.,
Neiswanger, W. and Savani, Y. "BANANAS: Bayesian Optimization with Neural Architectures for
Neural Architecture Search." AAAI 2021, arXiv:1910.11858), whose predictor is an ensemble of
feed-forward networks; the spread of the members' predictions is the uncertainty. All
members are trained at once as one batched network, so an ensemble costs about as much as
one member.
"""

from __future__ import annotations

import itertools

import numpy as np

from nasforge.errors import InvalidConfigError
from nasforge.predictors.adam import Adam
from nasforge.predictors.base import Predictor, one_blas_thread

__all__ = ["MLPEnsemble"]


class MLPEnsemble(Predictor):
    """``n_members`` ReLU networks trained full-batch with Adam on standardised targets.

    Args:
        n_members: Ensemble size (BANANAS uses 5).
        hidden: Widths of the hidden layers.
        epochs: Training epochs for a fit from scratch.
        finetune_epochs: Epochs for ``fit(..., warm_start=True)``.
        lr: Adam learning rate.
        weight_decay: L2 penalty on the weights.
        loss: ``"mse"`` or ``"mape"`` (mean absolute percentage error on the raw targets,
            which BANANAS uses to weigh the best architectures more).
        seed: Seed of the initialisation.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.random((64, 4)); y = X @ np.array([1.0, -2.0, 0.5, 3.0])
        >>> model = MLPEnsemble(seed=0).fit(X, y)
        >>> mean, std = model.predict(X)
        >>> float(np.corrcoef(mean, y)[0, 1]) > 0.95
        True
    """

    def __init__(
        self,
        *,
        n_members: int = 5,
        hidden: tuple[int, ...] = (32, 32),
        epochs: int = 200,
        finetune_epochs: int = 100,
        lr: float = 0.01,
        weight_decay: float = 1e-4,
        loss: str = "mse",
        seed: int | None = 0,
    ) -> None:
        if n_members < 1:
            raise InvalidConfigError(f"n_members must be at least 1, got {n_members}.")
        if loss not in ("mse", "mape"):
            raise InvalidConfigError(f"loss must be 'mse' or 'mape', got {loss!r}.")
        if epochs < 1 or finetune_epochs < 0:
            raise InvalidConfigError("epochs must be at least 1 and finetune_epochs at least 0.")
        self.n_members = n_members
        self.hidden = tuple(hidden)
        self.epochs = epochs
        self.finetune_epochs = finetune_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.loss = loss
        self.rng = np.random.default_rng(seed)
        self._weights: list[np.ndarray] | None = None
        self._biases: list[np.ndarray] | None = None
        self._y_mean = 0.0
        self._y_std = 1.0

    def _init(self, d: int) -> None:
        sizes = (d, *self.hidden, 1)
        self._weights, self._biases = [], []
        for fan_in, fan_out in itertools.pairwise(sizes):
            scale = np.sqrt(2.0 / fan_in)
            self._weights.append(self.rng.normal(0, scale, (self.n_members, fan_in, fan_out)))
            self._biases.append(np.zeros((self.n_members, 1, fan_out)))

    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        assert self._weights is not None and self._biases is not None
        h = np.broadcast_to(X, (self.n_members, *X.shape))
        acts = [h]
        for i, (w, b) in enumerate(zip(self._weights, self._biases, strict=True)):
            h = h @ w + b
            if i < len(self._weights) - 1:
                h = np.maximum(h, 0.0)
            acts.append(h)
        return h[..., 0], acts

    @one_blas_thread
    def fit(self, X: np.ndarray, y: np.ndarray, *, warm_start: bool = False) -> MLPEnsemble:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or y.shape != (X.shape[0],) or X.shape[0] == 0:
            raise InvalidConfigError(
                f"fit() needs X of shape (n, d) and y of shape (n,), got {X.shape} and {y.shape}."
            )
        fresh = not warm_start or self._weights is None or self._weights[0].shape[1] != X.shape[1]
        if fresh:
            self._init(X.shape[1])
        self._y_mean = float(y.mean())
        self._y_std = float(y.std()) or 1.0
        target = (y - self._y_mean) / self._y_std
        assert self._weights is not None and self._biases is not None
        params = [*self._weights, *self._biases]
        adam = Adam([p.shape for p in params], lr=self.lr)
        n_layers = len(self._weights)
        epochs = self.epochs if fresh else self.finetune_epochs
        for _ in range(epochs):
            out, acts = self._forward(X)
            if self.loss == "mse":
                grad = 2.0 * (out - target) / len(y)
            else:  # MAPE on the raw scale
                raw = out * self._y_std + self._y_mean
                denom = np.maximum(np.abs(y), 1e-8)
                grad = np.sign(raw - y) / denom * self._y_std / len(y)
            g = grad[..., None]
            grads_w: list[np.ndarray] = [np.empty(0)] * n_layers
            grads_b: list[np.ndarray] = [np.empty(0)] * n_layers
            for i in range(n_layers - 1, -1, -1):
                grads_w[i] = acts[i].transpose(0, 2, 1) @ g + self.weight_decay * self._weights[i]
                grads_b[i] = g.sum(axis=1, keepdims=True)
                if i > 0:
                    g = (g @ self._weights[i].transpose(0, 2, 1)) * (acts[i] > 0)
            for param, update in zip(params, adam.step([*grads_w, *grads_b]), strict=True):
                param -= update
        return self

    @one_blas_thread
    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._weights is None:
            raise InvalidConfigError("predict() called before fit().")
        out, _ = self._forward(np.asarray(X, dtype=np.float64))
        preds = out * self._y_std + self._y_mean
        return preds.mean(axis=0), preds.std(axis=0)
