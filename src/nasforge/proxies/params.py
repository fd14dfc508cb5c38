"""The number of parameters, in millions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Params"]


@proxies.register("params")
class Params(Proxy):
    """The number of trainable parameters in millions (``zc_params`` of NAS-Bench-Suite-Zero,
    the ``params_M`` of NAS-Bench-201); data-free.

    A parameter shared by several modules counts once; batch-norm running statistics are
    buffers and do not count (:func:`nasforge.hardware.costs.count_params`).

    Example:
        >>> import torch
        >>> b = Batch(torch.zeros(2, 3, 1, 1), torch.tensor([0, 1]), num_classes=2)
        >>> Params().score(torch.nn.Linear(3, 2), b) * 1e6  # 3 * 2 weights + 2 biases
        8.0
    """

    name = "params"
    data = "none"

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        from nasforge.hardware.costs import count_params

        return count_params(model, trainable_only=True) / 1e6
