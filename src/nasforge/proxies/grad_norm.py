"""Gradient norm of the loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

__all__ = ["GradNorm"]


@proxies.register("grad_norm")
class GradNorm(Proxy):
    """The sum over ``Conv2d`` and ``Linear`` layers of the L2 norm of the loss gradient of
    their weights.

    Abdelfattah, M. S., Mehrotra, A., Dudziak, L. and Lane, N. D. "Zero-Cost Proxies for
    Lightweight NAS." ICLR 2021, arXiv:2101.08134 (the ``grad_norm`` baseline). The norm is
    taken per layer and the layer norms are summed, as in the reference code; a layer the
    gradient does not reach adds 0.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> b = Batch(torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1]), num_classes=3)
        >>> GradNorm().score(net, b) > 0
        True
    """

    name = "grad_norm"
    shared_pass = "loss_gradient"

    def reduce(self, result: Mapping[str, Any], batch: Batch) -> float:
        return float(sum(float(grad.norm()) for _, grad in result["layers"] if grad is not None))
