"""GraSP: gradient signal preservation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy, check_logits, weighted_layers

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Grasp"]


@proxies.register("grasp")
class Grasp(Proxy):
    """``sum -theta * (H g)``: how removing weights would change the gradient flow.

    Wang, C., Zhang, G. and Grosse, R. "Picking Winning Tickets Before Training by Preserving
    Gradient Flow." ICLR 2020, arXiv:2002.07376; a NAS proxy in Abdelfattah et al. (ICLR
    2021, arXiv:2101.08134), whose sign nasforge keeps (the reference negates the GraSP
    saliency because the negated sum correlates positively with accuracy).

    ``g`` is the loss gradient of the ``Conv2d`` and ``Linear`` weights (temperature 1, one
    pass), ``H g`` the Hessian-gradient product obtained by differentiating ``g . stop(g)``
    in a second pass; the score sums ``-theta * Hg`` over those weights. A network whose loss
    does not depend on its weights scores 0.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> b = Batch(torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1]), num_classes=3)
        >>> isinstance(Grasp().score(net, b), float)
        True
    """

    name = "grasp"

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        import torch
        import torch.nn.functional as F

        model.train()
        model.zero_grad(set_to_none=True)
        layers = list(weighted_layers(model))
        weights = [layer.weight for layer in layers]
        if not weights:
            return 0.0
        outputs = model(batch.inputs)
        check_logits(outputs, batch)
        loss = F.cross_entropy(outputs, batch.targets)
        if not loss.requires_grad:
            return 0.0
        first = torch.autograd.grad(loss, weights, allow_unused=True)
        outputs = model(batch.inputs)
        loss = F.cross_entropy(outputs, batch.targets)
        second = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        z = None
        for g_fixed, g in zip(first, second, strict=True):
            if g_fixed is not None and g is not None:
                term = (g_fixed.detach() * g).sum()
                z = term if z is None else z + term
        if z is None or not z.requires_grad:
            return 0.0
        z.backward()
        total = 0.0
        for weight in weights:
            if weight.grad is not None:
                total += float((-weight.detach() * weight.grad).sum())
        return total
