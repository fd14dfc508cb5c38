"""Fisher: the channel saliency of Theis et al., summed over the network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

__all__ = ["Fisher"]


@proxies.register("fisher")
class Fisher(Proxy):
    """The Fisher information of the output channels of every ``Conv2d`` and ``Linear`` layer.

    Theis, L., Korshunova, I., Tejani, A. and Huszár, F. "Faster gaze prediction with dense
    networks and Fisher pruning." arXiv:1801.05787, 2018; Turner, J., Crowley, E. J.,
    O'Boyle, M., Storkey, A. and Gray, G. "BlockSwap: Fisher-guided Block Substitution for
    Network Compression on a Budget." ICLR 2020, arXiv:1906.04113; a NAS proxy in Abdelfattah
    et al. (ICLR 2021, arXiv:2101.08134).

    For an output channel ``k`` of a layer with activation ``a`` (the layer's output) the
    saliency is ``0.5 * mean_n (sum_hw a * dL/da)**2``. As in the reference, which spreads
    each channel's value over the channel's weights before summing, a channel counts once per
    weight feeding it (``C_in * k * k`` for a convolution); the score is the sum over
    channels and layers. A layer the gradient does not reach adds 0.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> b = Batch(torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1]), num_classes=3)
        >>> Fisher().score(net, b) > 0
        True
    """

    name = "fisher"
    shared_pass = "loss_gradient"

    def reduce(self, result: Mapping[str, Any], batch: Batch) -> float:
        total = 0.0
        for value, fan_in in zip(result["fisher"], result["fan_in"], strict=True):
            if value is not None:
                total += float(value.abs().sum()) * fan_in
        return total
