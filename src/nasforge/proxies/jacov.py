"""Jacobian covariance (NASWOT, first version)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

__all__ = ["Jacov", "jacobian_covariance_score"]

_K = 1e-5


def jacobian_covariance_score(jacobian: Any) -> float:
    """``-sum_i (log(l_i + k) + 1 / (l_i + k))`` over the eigenvalues ``l_i`` of the
    correlation matrix of the rows of ``jacobian`` (``k = 1e-5``); NaN if a row is constant."""
    import numpy as np

    with np.errstate(all="ignore"):
        corr = np.corrcoef(jacobian)
        if not np.all(np.isfinite(corr)):
            return float("nan")
        values = np.linalg.eigvalsh(corr)
        return float(-np.sum(np.log(values + _K) + 1.0 / (values + _K)))


@proxies.register("jacov")
class Jacov(Proxy):
    """How uncorrelated the input gradients of different images are.

    Mellor, J., Turner, J., Storkey, A. and Crowley, E. J. "Neural Architecture Search without
    Training." arXiv:2006.04647v1 (2020), the first version of the paper; the variant scored
    in NAS-Bench-Suite-Zero and Abdelfattah et al. (ICLR 2021).

    The Jacobian ``J`` holds, per image, the gradient of the sum of the network's outputs
    with respect to the image (training-mode batch norm). With ``l_i`` the eigenvalues of the
    correlation matrix of the rows of ``J``, the score is
    ``-sum_i (log(l_i + k) + 1 / (l_i + k))``, ``k = 1e-5``: larger when the images' gradients
    are less correlated. A network whose output does not depend on its input has constant
    gradients, an undefined correlation, and scores ``UNDEFINED_SCORE``.

    Example:
        >>> import torch
        >>> torch.manual_seed(0) and None
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 6), torch.nn.ReLU(),
        ...                           torch.nn.Linear(6, 3))
        >>> b = Batch(torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1]), num_classes=3)
        >>> Jacov().score(net, b) < 0
        True
    """

    name = "jacov"
    shared_pass = "input_jacobian"

    def reduce(self, result: Mapping[str, Any], batch: Batch) -> float:
        return jacobian_covariance_score(result["jacobian"])
