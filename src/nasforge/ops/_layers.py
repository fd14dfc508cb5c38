"""What the binary, quantized and sparse forms of a layer share: the arguments that rebuild a
2-D convolution or a linear layer as another class, and the layer types none of them has."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["NO_WEIGHTED_FORM", "same_layer_args"]

#: Weighted module types with no binary, quantized or sparse form: the layers that would
#: need one are 2-D convolutions and linear layers.
NO_WEIGHTED_FORM: tuple[type[nn.Module], ...] = (
    nn.MultiheadAttention,
    nn.RNNBase,
    nn.Embedding,
    nn.EmbeddingBag,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Conv1d,
    nn.Conv3d,
)


def same_layer_args(layer: nn.Conv2d | nn.Linear) -> dict[str, Any]:
    """The keyword arguments that build a layer of ``layer``'s shape and settings, on its
    device and in its dtype (a subclass of ``Conv2d`` or ``Linear`` takes them too).

    Example:
        >>> same_layer_args(nn.Linear(3, 2, bias=False))["in_features"]
        3
    """
    common = {
        "bias": layer.bias is not None,
        "device": layer.weight.device,
        "dtype": layer.weight.dtype,
    }
    if isinstance(layer, nn.Conv2d):
        return {
            "in_channels": layer.in_channels,
            "out_channels": layer.out_channels,
            "kernel_size": layer.kernel_size,
            "stride": layer.stride,
            "padding": layer.padding,
            "dilation": layer.dilation,
            "groups": layer.groups,
            "padding_mode": layer.padding_mode,
            **common,
        }
    return {"in_features": layer.in_features, "out_features": layer.out_features, **common}
