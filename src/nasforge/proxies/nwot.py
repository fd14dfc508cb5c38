"""NASWOT: the log-determinant of the ReLU code kernel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

__all__ = ["Nwot"]


@proxies.register("nwot")
class Nwot(Proxy):
    """How differently the ReLUs of the network split the images of one batch.

    Mellor, J., Turner, J., Storkey, A. and Crowley, E. J. "Neural Architecture Search without
    Training." ICML 2021, arXiv:2006.04647 (second version), Equation 2.

    Every ``nn.ReLU`` module of the network assigns each image a binary code, 1 where the
    ReLU's input is positive. Summed over the ReLU modules, the kernel
    ``K = c c^T + (1 - c)(1 - c)^T`` counts for each pair of images the units where their
    codes agree (``N_A`` minus their Hamming distance); the score is ``log |det K|``. Images
    that get the same codes make ``K`` singular: a network that maps every image alike scores
    ``UNDEFINED_SCORE``. A network without ReLU modules has ``K = 0`` and scores the same.

    Example:
        >>> import torch
        >>> torch.manual_seed(0) and None
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 64), torch.nn.ReLU(),
        ...                           torch.nn.Linear(64, 3))
        >>> b = Batch(torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1]), num_classes=3)
        >>> Nwot().score(net, b) > 0
        True
    """

    name = "nwot"
    shared_pass = "input_jacobian"

    def reduce(self, result: Mapping[str, Any], batch: Batch) -> float:
        import numpy as np

        sign, logdet = np.linalg.slogdet(result["relu_kernel"])
        if sign == 0:
            return float("-inf")
        return float(logdet)
