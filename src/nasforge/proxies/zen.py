"""Zen-score: expressivity of the features under a small input perturbation."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nasforge import proxies
from nasforge.errors import UnsupportedOperationError
from nasforge.proxies.base import Batch, Proxy

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Zen"]

_MIXUP = 1e-2


@proxies.register("zen")
class Zen(Proxy):
    """``log E||f(x) - f(x + 0.01 e)||_1 + sum log sqrt(mean running_var)``, data-free.

    Lin, M., Wang, P., Sun, Z., Chen, H., Sun, X., Qian, Q., Li, H. and Jin, R. "Zen-NAS: A
    Zero-Shot NAS for High-Performance Image Recognition." ICCV 2021, arXiv:2102.01063,
    Algorithm 1, as NAS-Bench-Suite-Zero runs it.

    The network's ``Conv2d`` and ``Linear`` weights are redrawn from ``N(0, 1)`` (biases 0,
    batch-norm scale 1 and shift 0); ``x`` and ``e`` are standard Gaussian batches of the
    batch's shape, drawn from ``seed``. ``f`` is the input of the network's global average
    pooling (the last ``nn.AdaptiveAvgPool2d``), computed in training mode for ``x`` and for
    ``x + 0.01 e``; the first term is the mean over images of the summed absolute difference.
    The second term adds, for every ``BatchNorm2d`` that keeps running statistics, the log of
    the square root of the mean of its running variance after those two passes. A network
    whose features do not depend on its input scores ``UNDEFINED_SCORE``.

    Raises:
        UnsupportedOperationError: A model without ``nn.AdaptiveAvgPool2d``.
    """

    name = "zen"
    data = "shape"

    def applies(self, model: nn.Module) -> bool:
        """Only networks with a global average pooling (convolutional networks)."""
        from torch import nn

        return any(isinstance(m, nn.AdaptiveAvgPool2d) for m in model.modules())

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        import torch
        from torch import nn

        pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
        if not pools:
            raise UnsupportedOperationError(
                "The zen proxy reads the features before the global average pooling; the model "
                "has no nn.AdaptiveAvgPool2d."
            )
        device = batch.inputs.device
        generator = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator))
                    if module.bias is not None:
                        module.bias.zero_()
                elif (
                    isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.weight is not None
                ):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
        shape = (batch.size, *batch.image_shape)
        x = torch.randn(shape, generator=generator).to(device)
        noise = torch.randn(shape, generator=generator).to(device)
        features: list[Any] = []
        handle = pools[-1].register_forward_hook(
            lambda module, inputs, output: features.append(inputs[0])
        )
        model.train()
        try:
            with torch.no_grad():
                model(x)
                model(x + _MIXUP * noise)
        finally:
            handle.remove()
        diff = torch.abs(features[0] - features[1]).sum(dim=tuple(range(1, features[0].dim())))
        expressivity = float(diff.mean())
        if expressivity <= 0.0:
            return float("-inf")
        log_bn = 0.0
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d) and module.running_var is not None:
                log_bn += math.log(math.sqrt(float(module.running_var.mean())))
        return math.log(expressivity) + log_bn
