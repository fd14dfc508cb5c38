"""Plain: the signed first-order Taylor term of the loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

__all__ = ["Plain"]


@proxies.register("plain")
class Plain(Proxy):
    """``sum dL/dtheta * theta`` over the ``Conv2d`` and ``Linear`` weights, sign kept.

    Mozer, M. C. and Smolensky, P. "Skeletonization: A Technique for Trimming the Fat from a
    Network via Relevance Assessment." NeurIPS 1988; the ``plain`` baseline of Abdelfattah et
    al. (ICLR 2021, arXiv:2101.08134). It is ``snip`` without the absolute value; on
    NAS-Bench-201 it correlates negatively with accuracy, and nasforge keeps the reference's
    sign (larger is "better" by definition, as for every proxy).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> b = Batch(torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1]), num_classes=3)
        >>> isinstance(Plain().score(net, b), float)
        True
    """

    name = "plain"
    shared_pass = "loss_gradient"

    def reduce(self, result: Mapping[str, Any], batch: Batch) -> float:
        total = 0.0
        for weight, grad in result["layers"]:
            if grad is not None:
                total += float((grad * weight).sum())
        return total
