"""Multiply-accumulates of one forward pass, in millions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Flops"]


@proxies.register("flops")
class Flops(Proxy):
    """The multiply-accumulates of a forward pass of one input, in millions ("FLOPs" in the
    NAS literature); reads only the input shape.

    Counted by :func:`nasforge.hardware.costs.count_flops` (convolutions and matrix products;
    pooling, normalisation and activations are not counted). NAS-Bench-201's ``flops_M`` adds
    one addition per classifier output (``num_classes / 1e6``), and NAS-Bench-Suite-Zero's
    ``zc_flops`` counts more operations (it is 0.2 to 7.9 M larger on NB201/CIFAR-10); all three
    rank architectures almost alike.

    Example:
        >>> import torch
        >>> b = Batch(torch.zeros(2, 3, 1, 1), torch.tensor([0, 1]), num_classes=2)
        >>> Flops().score(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2)), b) * 1e6
        6.0
    """

    name = "flops"
    data = "shape"

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        from nasforge.hardware.costs import count_flops

        return float(count_flops(model, batch.image_shape).macs_M)
