"""L2 norm of the initial weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy, weighted_layers

if TYPE_CHECKING:
    from torch import nn

__all__ = ["L2Norm"]


@proxies.register("l2_norm")
class L2Norm(Proxy):
    """The sum over ``Conv2d`` and ``Linear`` layers of the L2 norm of their weights; data-free.

    The baseline proxy of NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets
    and Benchmarks, arXiv:2210.03230, Section 3): it grows with the number and size of the
    layers of a freshly initialised network, much as its parameter count does.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(2, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = net.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
        >>> b = Batch(torch.zeros(2, 2, 1, 1), torch.tensor([0, 1]), num_classes=2)
        >>> L2Norm().score(net, b)
        5.0
    """

    name = "l2_norm"
    data = "none"

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        return float(sum(float(layer.weight.detach().norm()) for layer in weighted_layers(model)))
