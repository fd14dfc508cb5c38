"""SynFlow: the synaptic flow through an all-positive copy of the network."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy, weighted_layers

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Synflow"]


@proxies.register("synflow")
class Synflow(Proxy):
    """Synaptic flow, ``log(sum |theta * dR/dtheta|)``, data-free.

    Tanaka, H., Kunin, D., Yamins, D. L. K. and Ganguli, S. "Pruning neural networks without
    any data by iteratively conserving synaptic flow." NeurIPS 2020, arXiv:2006.05467; used as
    a NAS proxy by Abdelfattah et al. (ICLR 2021, arXiv:2101.08134).

    As NAS-Bench-Suite-Zero computes it: batch normalisation is switched off (each batch-norm
    layer passes its input through), every parameter and buffer is replaced by its absolute
    value, the network is run in double precision on one input of ones with the batch's
    image shape, ``R`` is the sum of the outputs, and ``|theta * dR/dtheta|`` is summed over
    the weights of the ``Conv2d`` and ``Linear`` layers. The score is the natural logarithm
    of that sum (NASLib's ``ZeroCost`` predictor takes it, the sum itself overflows float32
    for deep networks); a sum of zero (no path from input to output) scores 0.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2, bias=False))
        >>> with torch.no_grad():
        ...     _ = net[1].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        >>> b = Batch(torch.zeros(2, 1, 1, 2), torch.tensor([0, 1]), num_classes=2)
        >>> round(math.exp(Synflow().score(net, b)), 6)  # the sum of |w|
        10.0
    """

    name = "synflow"
    data = "shape"

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        import torch
        from torch import nn

        for parent in list(model.modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, nn.modules.batchnorm._BatchNorm):
                    setattr(parent, child_name, nn.Identity())
        model.double()
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.abs_()
        model.zero_grad(set_to_none=True)
        device = batch.inputs.device
        ones = torch.ones((1, *batch.image_shape), dtype=torch.float64, device=device)
        output = model(ones)
        if output.requires_grad:
            output.sum().backward()
        total = 0.0
        for layer in weighted_layers(model):
            if layer.weight.grad is not None:
                total += float((layer.weight.detach() * layer.weight.grad).abs().sum())
        if total == 0.0:
            return 0.0
        return math.log(total)
