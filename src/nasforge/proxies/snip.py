"""SNIP: connection sensitivity of the loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

__all__ = ["Snip"]


@proxies.register("snip")
class Snip(Proxy):
    """Connection sensitivity ``sum |dL/dtheta * theta|`` of the cross-entropy loss.

    Lee, N., Ajanthan, T. and Torr, P. H. S. "SNIP: Single-shot Network Pruning based on
    Connection Sensitivity." ICLR 2019, arXiv:1810.02340; summed over the network as a NAS proxy
    by Abdelfattah et al. (ICLR 2021, arXiv:2101.08134).

    The reference implementation multiplies each weight by a mask of ones and takes the
    gradient of the loss with respect to the mask, which is ``dL/dtheta * theta``; nasforge
    computes that product directly from the loss gradient it shares with ``grad_norm``,
    ``plain`` and ``fisher``. Summed over the weights of every ``Conv2d`` and ``Linear``
    layer; a layer the gradient does not reach adds 0.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> b = Batch(torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1]), num_classes=3)
        >>> Snip().score(net, b) > 0
        True
    """

    name = "snip"
    shared_pass = "loss_gradient"

    def reduce(self, result: Mapping[str, Any], batch: Batch) -> float:
        total = 0.0
        for weight, grad in result["layers"]:
            if grad is not None:
                total += float((grad * weight).abs().sum())
        return total
