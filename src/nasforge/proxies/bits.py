"""The size of a network in bits and its bit-operations: the costs of quantized and binary
networks (a float network counts 32 bits per weight and per activation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Bops", "ModelBits"]


@proxies.register("model_bits")
class ModelBits(Proxy):
    """The network's weights in millions of bits: each parameter at its layer's weight
    precision, 32 bits for float layers (:func:`nasforge.ops.quant.model_bits`); data-free.

    Example:
        >>> import torch
        >>> from nasforge.ops.quant import quantize_model
        >>> b = Batch(torch.zeros(2, 3, 1, 1), torch.tensor([0, 1]), num_classes=2)
        >>> linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2, bias=False))
        >>> net = quantize_model(linear, "int4")
        >>> ModelBits().score(net, b) * 1e6  # 6 weights of 4 bits
        24.0
    """

    name = "model_bits"
    data = "none"

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        from nasforge.ops.quant import model_bits

        return model_bits(model) / 1e6


@proxies.register("bops")
class Bops(Proxy):
    """Bit-operations of one forward pass of one input, in billions: multiply-adds x weight
    bits x activation bits over the convolutions and linear layers (binary layers 1 x 1,
    float ones 32 x 32; :func:`nasforge.ops.quant.bops`); reads only the input shape.

    Example:
        >>> import torch
        >>> from nasforge.ops.quant import quantize_model
        >>> b = Batch(torch.zeros(2, 10, 1, 1), torch.tensor([0, 1]), num_classes=2)
        >>> linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 2))
        >>> net = quantize_model(linear, "int4", act_policy="int8")
        >>> Bops().score(net, b) * 1e9  # 20 multiply-adds of 4 x 8 bits
        640.0
    """

    name = "bops"
    data = "shape"

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        from nasforge.ops.quant import bops

        return bops(model, batch.image_shape) / 1e9
