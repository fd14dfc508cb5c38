"""Adam on NumPy arrays, for the predictors and strategies that learn without torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Adam"]


class Adam:
    """Adam's moment estimates for a fixed list of arrays; :meth:`step` returns the updates.

    Kingma, D. P. and Ba, J. "Adam: A Method for Stochastic Optimization." ICLR 2015,
    arXiv:1412.6980 (Algorithm 1, with PyTorch's defaults ``betas=(0.9, 0.999)``,
    ``eps=1e-8``). The caller applies the updates (``param -= update``), so it may keep
    masked entries fixed. The second moment is updated as ``beta2 * v + (1 - beta2) *
    grad**2``, the rounding the MLP ensemble always used (REINFORCE's own copy multiplied
    ``(1 - beta2) * grad`` by ``grad``, a difference below 1e-15 in its probabilities).

    Args:
        shapes: The shape of each array optimised.
        lr: The step size.
        beta1: Decay of the first moment.
        beta2: Decay of the second moment.
        eps: Added to the root of the second moment.

    Example:
        >>> adam = Adam([(2,)], lr=0.1)
        >>> [u.round(3).tolist() for u in adam.step([np.array([1.0, -4.0])])]
        [[0.1, -0.1]]
    """

    def __init__(
        self,
        shapes: Sequence[tuple[int, ...]],
        *,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.steps = 0
        self._m = [np.zeros(shape) for shape in shapes]
        self._v = [np.zeros(shape) for shape in shapes]

    def step(self, grads: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Fold in one gradient per array; the update to subtract from each array."""
        self.steps += 1
        b1, b2 = self.beta1, self.beta2
        updates = []
        for j, grad in enumerate(grads):
            self._m[j] = b1 * self._m[j] + (1 - b1) * grad
            self._v[j] = b2 * self._v[j] + (1 - b2) * grad**2
            m_hat = self._m[j] / (1 - b1**self.steps)
            v_hat = self._v[j] / (1 - b2**self.steps)
            updates.append(self.lr * m_hat / (np.sqrt(v_hat) + self.eps))
        return updates
