"""The decoder (non-embedding) parameter count: LiteTransformerSearch's proxy of perplexity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge import proxies
from nasforge.errors import UnsupportedOperationError
from nasforge.proxies.base import Batch, Proxy

if TYPE_CHECKING:
    from torch import nn

__all__ = ["DecoderParams"]

#: The ``nas_role`` values of the transformer layers' modules whose parameters count.
ROLES = ("attention", "mlp")


@proxies.register("decoder_params")
class DecoderParams(Proxy):
    """Parameters of the transformer layers, in millions: every parameter of the multi-head
    attention and MLP modules, without the embeddings and the output layer; data-free.

    Javaheripi, M., de Rosa, G. H., Mukherjee, S., Shah, S., Religa, T. L., Mendes, C. C. T.,
    Bubeck, S., Koushanfar, F. and Dey, D. "LiteTransformerSearch: Training-free Neural
    Architecture Search for Efficient Language Models." NeurIPS 2022, arXiv:2203.02094,
    Sec. 3: the number of decoder (non-embedding) parameters ranks autoregressive
    transformers by perplexity almost as training does, and is the baseline training-free
    transformer NAS compares against.

    The modules are found by their ``nas_role`` (``"attention"``, ``"mlp"``, as
    :mod:`nasforge.ops.vit` marks them), so the count is the same for a vision transformer, a
    language model and an extracted sub-network built from those layers. The per-layer
    LayerNorms (``4 * width`` parameters a layer, under 1% of it) carry no role and are left
    out; a parameter shared by several modules counts once.

    Raises:
        UnsupportedOperationError: A network without attention or MLP modules.

    Example:
        >>> import torch
        >>> from nasforge.ops.vit import LayerConfig, ViTConfig, VisionTransformer
        >>> net = VisionTransformer(ViTConfig(8, 4, 8, (LayerConfig(2, 8, 16),), num_classes=3))
        >>> b = Batch(torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]), num_classes=3)
        >>> # qkv 8 -> 24, proj 8 -> 8, fc1 8 -> 16, fc2 16 -> 8, each with its bias
        >>> round(DecoderParams().score(net, b) * 1e6)
        568
    """

    name = "decoder_params"
    data = "none"
    requires = ROLES

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        seen: dict[int, int] = {}
        roles_found = set()
        for module in model.modules():
            role = getattr(module, "nas_role", None)
            if role in ROLES:
                roles_found.add(role)
                for param in module.parameters():
                    if param.requires_grad:
                        seen[id(param)] = param.numel()
        if not roles_found:
            raise UnsupportedOperationError(
                f"The proxy decoder_params needs transformer layers: {type(model).__name__} has "
                "no module with nas_role 'attention' or 'mlp' (as nasforge.ops.vit builds "
                "them); use 'params' for other networks."
            )
        return sum(seen.values()) / 1e6
