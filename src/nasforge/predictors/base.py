"""The :class:`Predictor` contract: a learned guess of a metric from an encoding."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["Predictor"]


class Predictor(ABC):
    """Regression from architecture encodings ``X`` (n x d) to a metric ``y`` (n).

    ``predict`` returns the mean prediction and a standard deviation per row (zeros for a
    predictor that has no notion of uncertainty). ``fit`` may be called again with more data;
    with ``warm_start=True`` a predictor that supports it continues from its current weights
    (used to fine-tune a predictor pretrained on free statistics, as in FBNetV3's NARS).
    """

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, *, warm_start: bool = False) -> Predictor:
        """Learn from ``X`` and ``y``; returns ``self``."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the prediction for each row of ``X``."""
