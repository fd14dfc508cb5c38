"""Performance predictors shared by the predictor-guided strategies (no torch import)."""

from nasforge.predictors.base import Predictor
from nasforge.predictors.mlp import MLPEnsemble

__all__ = ["MLPEnsemble", "Predictor"]
