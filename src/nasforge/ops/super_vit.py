"""The super-transformer of a ``vit`` space: one network holding every vision transformer of
:class:`nasforge.spaces.vit.ViTSpace`.

Encoder layers follow AutoFormer's *weight entanglement* (Chen, M., Peng, H., Fu, J. and Ling,
H. "AutoFormer: Searching Transformers for Visual Recognition." ICCV 2021, arXiv:2107.00651,
Sec. 3.2): the super-transformer is the largest network of the space (widest embedding, most
layers, most heads of the widest head dimension, largest MLP ratio), and every sub-network
uses the leading slices of its weights (:mod:`nasforge.ops.elastic_transformer`, where the
head layout is documented); a sub-network of depth ``L`` runs the first ``L`` layers.

Token embeddings and ViTAS's private parts (Su, X., You, S., Xie, J., Zheng, M., Wang, F.,
Qian, C., Zhang, C., Wang, X. and Xu, C. "Vision Transformer Architecture Search."
arXiv:2106.13700 v1, Sec. 3, the weight-sharing paradigm for architectures of different token
embedding, sequence size, heads, width and depth; the authors' code xiusu/ViTAS):

* **token embedding per patch size.** Kernels of different patch sizes cannot be slices of one
  another, and neither can position embeddings of different sequence lengths, so, as ViTAS's
  super-transformer holds one token-embedding operation per patch-size choice, each patch size
  has its own patchify convolution (and convolutional stem) and position embedding, every one
  sliced to the active embedding width;
* **private class token** (``private=True``): each patch size also keeps its own class token,
  as ViTAS's token-embedding choices do; with ``private=False`` one class token is shared by
  every sub-network (AutoFormer);
* **private self-attention maps** (``private=True``): every layer keeps one Q-K projection
  (the part that makes the attention map ``softmax(q k^T)``) per choice of the number of
  heads, while V, the output projection and the MLP are entangled across choices, as the
  authors' search configurations do (``qkv: 2``: private Q-K per heads choice, shared V);
  with ``private=False`` one Q-K projection is shared (AutoFormer). Each private copy is
  itself sliced to the active heads and head dimension.

ViT-ResNAS's options (``conv_stem``, ``reductions``; Liao, Y., Karaman, S. and Sze, V.
"Searching for Efficient Multi-Stage Vision Transformers." arXiv:2109.00642, Sec. 3) are
entangled the same way: the stem's width is ``max(8, embed // 4)`` of the widest stem's
channels (batch norm statistics sliced with them); a residual spatial reduction before layer
``i`` maps the active width ``w`` to ``w * reduction_width`` with the leading slices of the
widest reduction, and the layers after it take the wider tokens. A reduction placed at or
beyond a sub-network's depth is not part of that sub-network (nor of the network
:meth:`ViTSpace.build` gives for it); the classifier then reads the first features of the
widest head.

:meth:`SuperViT.extract` builds the network as the space builds it and copies the inherited
weights, so its output equals the super-transformer's with that sub-network active.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.ops.elastic_transformer import ElasticBlock, ElasticLayerNorm, ElasticLinear
from nasforge.ops.vit import (
    Block,
    ClassifierHead,
    PatchEmbed,
    SpatialReduction,
    VisionTransformer,
    ViTConfig,
)

if TYPE_CHECKING:
    from nasforge.spaces.vit import ViTSpace

__all__ = ["SuperViT"]

_IN_CHANNELS = 3


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d, width: int) -> torch.Tensor:
    """Batch norm of the first ``width`` channels (running statistics sliced in place)."""
    assert bn.running_mean is not None and bn.running_var is not None
    return F.batch_norm(
        x,
        bn.running_mean[:width],
        bn.running_var[:width],
        bn.weight[:width],
        bn.bias[:width],
        bn.training,
        0.0 if bn.momentum is None else bn.momentum,
        bn.eps,
    )


def _copy_bn(source: nn.BatchNorm2d, target: nn.BatchNorm2d) -> None:
    width = target.num_features
    assert source.running_mean is not None and source.running_var is not None
    assert target.running_mean is not None and target.running_var is not None
    target.weight.copy_(source.weight[:width])
    target.bias.copy_(source.bias[:width])
    target.running_mean.copy_(source.running_mean[:width])
    target.running_var.copy_(source.running_var[:width])


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    assert conv.bias is not None
    return conv.bias


def _stem_width(embed: int) -> int:
    """The convolutional stem's width at embedding ``embed`` (as :class:`PatchEmbed`)."""
    return max(8, embed // 4)


class _ElasticEmbed(nn.Module):
    """The token embedding of one patch size: (stem,) patchify convolution, position
    embedding and, when private, class token; all sliced to the active width."""

    def __init__(
        self, max_embed: int, patch: int, resolution: int, *, conv_stem: bool, private: bool
    ) -> None:
        super().__init__()
        self.patch, self.grid = patch, resolution // patch
        self.conv_stem = conv_stem
        channels, kernel = _IN_CHANNELS, patch
        self.stem = nn.ModuleList()
        if conv_stem:
            width = _stem_width(max_embed)
            for index in range(3):
                c_in = _IN_CHANNELS if index == 0 else width
                stride = 2 if index == 1 else 1
                self.stem.append(nn.Conv2d(c_in, width, 3, stride=stride, padding=1, bias=False))
                self.stem.append(nn.BatchNorm2d(width))
            channels, kernel = width, patch // 2
        self.proj = nn.Conv2d(channels, max_embed, kernel, stride=kernel)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, max_embed))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.cls_token: nn.Parameter | None = None
        if private:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, max_embed))
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward_active(self, x: torch.Tensor, embed: int, cls: torch.Tensor) -> torch.Tensor:
        channels = _IN_CHANNELS
        if self.conv_stem:
            width = _stem_width(embed)
            for index in range(3):
                conv = self.stem[2 * index]
                assert isinstance(conv, nn.Conv2d)
                weight = conv.weight[:width, :channels]
                x = F.conv2d(x, weight, None, conv.stride, conv.padding)
                bn = self.stem[2 * index + 1]
                assert isinstance(bn, nn.BatchNorm2d)
                x = F.relu(_bn(x, bn, width))
                channels = width
        x = F.conv2d(
            x, self.proj.weight[:embed, :channels], _bias(self.proj)[:embed], self.proj.stride
        )
        tokens = x.flatten(2).transpose(1, 2)
        cls = cls[..., :embed].expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.pos_embed[..., :embed]

    @torch.no_grad()
    def copy_to(self, target: PatchEmbed, cls: torch.Tensor) -> None:
        embed = target.proj.out_channels
        channels = target.proj.in_channels
        if self.conv_stem:
            assert isinstance(target.stem, nn.Sequential)
            convs = [m for m in target.stem if isinstance(m, nn.Conv2d)]
            bns = [m for m in target.stem if isinstance(m, nn.BatchNorm2d)]
            for index, (conv, bn) in enumerate(zip(convs, bns, strict=True)):
                source = self.stem[2 * index]
                assert isinstance(source, nn.Conv2d)
                conv.weight.copy_(source.weight[: conv.out_channels, : conv.in_channels])
                source_bn = self.stem[2 * index + 1]
                assert isinstance(source_bn, nn.BatchNorm2d)
                _copy_bn(source_bn, bn)
        target.proj.weight.copy_(self.proj.weight[:embed, :channels])
        assert target.proj.bias is not None
        target.proj.bias.copy_(_bias(self.proj)[:embed])
        target.pos_embed.copy_(self.pos_embed[..., :embed])
        target.cls_token.copy_(cls[..., :embed])


class _ElasticReduction(nn.Module):
    """ViT-ResNAS's residual spatial reduction, entangled: active width ``d`` to ``out``."""

    def __init__(self, max_in: int, max_out: int) -> None:
        super().__init__()
        self.norm = ElasticLayerNorm(max_in, eps=1e-6)
        self.conv = nn.Conv2d(max_in, max_out, 2, stride=2)
        self.shortcut = ElasticLinear(max_in, max_out, bias=False)
        self.cls_proj = ElasticLinear(max_in, max_out)

    def forward_active(self, x: torch.Tensor, out: int) -> torch.Tensor:
        b, n, d = x.shape
        side = math.isqrt(n - 1)
        cls, tokens = x[:, :1], x[:, 1:]
        grid = self.norm(tokens).transpose(1, 2).reshape(b, d, side, side)
        main = F.conv2d(grid, self.conv.weight[:out, :d], _bias(self.conv)[:out], stride=2)
        main = main.flatten(2).transpose(1, 2)
        plain = tokens.transpose(1, 2).reshape(b, d, side, side)
        pooled = F.avg_pool2d(plain, 2).flatten(2).transpose(1, 2)
        shortcut = self.shortcut.forward_active(pooled, out)
        return torch.cat([self.cls_proj.forward_active(cls, out), main + shortcut], dim=1)

    @torch.no_grad()
    def copy_to(self, target: SpatialReduction) -> None:
        out, d = target.conv.out_channels, target.conv.in_channels
        self.norm.copy_to(target.norm)
        target.conv.weight.copy_(self.conv.weight[:out, :d])
        assert target.conv.bias is not None
        target.conv.bias.copy_(_bias(self.conv)[:out])
        self.shortcut.copy_to(target.shortcut)
        self.cls_proj.copy_to(target.cls_proj)


class SuperViT(nn.Module):
    """The super-transformer of ``space`` (see the module docstring).

    Args:
        space: A :class:`~nasforge.spaces.vit.ViTSpace` (``vit`` or ``vit-cifar``).
        num_classes: Classes of the classifier (default the space's ``DEFAULT_CLASSES``).
        private: ViTAS's private class tokens (per patch size) and self-attention maps (per
            number of heads); ``False`` shares them (AutoFormer).
        conv_stem: ViT-ResNAS's convolutional stem before each patch embedding.
        reductions: Layer indices before which a residual spatial reduction runs.
        dropout: Dropout before the classifier.

    Raises:
        InvalidConfigError: Not a ``vit`` space, or reductions that the space's token grids
            cannot take (the message says which).

    Example:
        >>> from nasforge import spaces
        >>> space = spaces.create("vit-cifar")
        >>> net = SuperViT(space).eval()
        >>> net.set_active(net.sample(np.random.default_rng(0)))
        >>> x = torch.randn(2, 3, space.IMAGE_SIZE, space.IMAGE_SIZE)
        >>> bool((net(x) - net.extract()(x)).abs().max() < 1e-5)
        True
    """

    def __init__(
        self,
        space: ViTSpace,
        *,
        num_classes: int | None = None,
        private: bool = True,
        conv_stem: bool = False,
        reductions: tuple[int, ...] | list[int] = (),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from nasforge.spaces.vit import ViTSpace

        if not isinstance(space, ViTSpace):
            raise InvalidConfigError(
                "SuperViT needs a 'vit' space (nasforge.spaces.create('vit') or 'vit-cifar'), "
                f"got {type(space).__name__}."
            )
        self.space = space
        classes = space.DEFAULT_CLASSES if num_classes is None else int(num_classes)
        cuts = tuple(sorted({int(r) for r in reductions}))
        bad = [r for r in cuts if not 0 <= r < space.MAX_DEPTH]
        if bad:
            raise InvalidConfigError(
                f"Reductions {bad} are outside the layers 0..{space.MAX_DEPTH - 1} of space "
                f"{space.name!r}; give layer indices before which to reduce."
            )
        for patch in space.PATCH_SIZES:
            grid = space.IMAGE_SIZE // patch
            if grid % (2 ** len(cuts)):
                raise InvalidConfigError(
                    f"{len(cuts)} spatial reductions halve the token grid {len(cuts)} times, but "
                    f"patch size {patch} gives a {grid}x{grid} grid; use fewer reductions."
                )
        if conv_stem and any(p % 2 for p in space.PATCH_SIZES):
            raise InvalidConfigError(
                f"The convolutional stem needs even patch sizes, space {space.name!r} has "
                f"{space.PATCH_SIZES}."
            )
        self.settings: dict[str, Any] = {
            "num_classes": classes,
            "private": bool(private),
            "conv_stem": bool(conv_stem),
            "reductions": list(cuts),
            "dropout": float(dropout),
        }
        self.private = bool(private)
        self.reductions = cuts
        largest = self._config(space.largest())
        self.reduction_width = largest.reduction_width
        max_embed = max(space.EMBED_DIMS)
        self.embeds = nn.ModuleDict(
            {
                f"p{p}": _ElasticEmbed(
                    max_embed, p, space.IMAGE_SIZE, conv_stem=conv_stem, private=self.private
                )
                for p in space.PATCH_SIZES
            }
        )
        self.cls_token: nn.Parameter | None = None
        if not self.private:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, max_embed))
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        keys = tuple(space.HEADS) if self.private else ()
        blocks, steps, width = [], {}, max_embed
        for index in range(space.MAX_DEPTH):
            if index in cuts:
                steps[f"r{index}"] = _ElasticReduction(width, width * self.reduction_width)
                width *= self.reduction_width
            blocks.append(
                ElasticBlock(
                    width,
                    max(space.HEADS),
                    max(space.HEAD_DIMS),
                    int(max(space.MLP_RATIOS) * width),
                    private_keys=keys,
                )
            )
        self.blocks = nn.ModuleList(blocks)
        self.steps = nn.ModuleDict(steps)
        self.norm = ElasticLayerNorm(width, eps=1e-6)
        self.head_dropout = nn.Dropout(dropout)
        self.fc = ElasticLinear(width, classes)
        self.num_classes = classes
        self.active: Architecture = space.largest()
        self.active_config: ViTConfig = largest
        self.set_active(self.active)

    def build_settings(self, arch: Architecture) -> dict[str, Any]:
        """The keywords of ``space.build`` that give ``arch``'s stand-alone network (what
        :meth:`extract` builds): the reductions before its depth only."""
        depth = self.space.values(arch)["depth"]
        s = self.settings
        return {
            "num_classes": s["num_classes"],
            "conv_stem": s["conv_stem"],
            "reductions": tuple(r for r in self.reductions if r < depth),
            "dropout": s["dropout"],
        }

    def _config(self, arch: Architecture) -> ViTConfig:
        return self.space.config(arch, **self.build_settings(arch))

    # -- the active sub-network --------------------------------------------------------------
    def set_active(self, arch: Architecture | str) -> None:
        """Make ``arch`` (an architecture of the space, or its text) the active sub-network.

        Raises:
            InvalidArchitectureError: ``arch`` belongs to another space or does not parse.
        """
        arch = self.space.parse(arch) if isinstance(arch, str) else self.space.check(arch)
        config = self._config(arch)
        for block, layer in zip(self.blocks, config.layers, strict=False):
            assert isinstance(block, ElasticBlock)
            head_dim = layer.qkv_dim // layer.heads
            key = layer.heads if self.private else None
            block.set_active(layer.heads, head_dim, layer.mlp_hidden, key=key)
        self.active, self.active_config = arch, config

    def largest(self) -> Architecture:
        """The largest sub-network of the space."""
        return self.space.largest()

    def smallest(self) -> Architecture:
        """The smallest sub-network of the space."""
        return self.space.smallest()

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A sub-network with every decision of the space drawn uniformly over its options
        (one ``rng.integers`` call over the option counts, in the space's decision order), in
        canonical form (layers beyond the depth at their first options)."""
        decisions = self.space.decisions()
        draws = rng.integers([len(d.options) for d in decisions])
        return self.space.canonical(self.space.from_choices([int(i) for i in draws]))

    # -- forward -----------------------------------------------------------------------------
    def _class_token(self, patch: int) -> torch.Tensor:
        if self.cls_token is not None:
            return self.cls_token
        embed = self.embeds[f"p{patch}"]
        assert isinstance(embed, _ElasticEmbed) and embed.cls_token is not None
        return embed.cls_token

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the active sub-network on images ``x`` (``N x 3 x S x S`` with ``S``
        the space's ``IMAGE_SIZE``).

        Raises:
            InvalidConfigError: Images of another shape: a larger side gives a sequence
                longer than the position embedding (the message gives both lengths).
        """
        config = self.active_config
        side = self.space.IMAGE_SIZE
        if x.dim() != 4 or x.shape[1] != _IN_CHANNELS or x.shape[-2:] != (side, side):
            grid = x.shape[-1] // config.patch_size if x.dim() == 4 else 0
            longest = (side // config.patch_size) ** 2 + 1
            raise InvalidConfigError(
                f"SuperViT takes images of shape (N, 3, {side}, {side}), got "
                f"{tuple(x.shape)}: at patch size {config.patch_size} they would give "
                f"{grid * grid + 1} tokens, the position embedding holds {longest}; resize "
                f"the images to {side}x{side}."
            )
        embed = self.embeds[f"p{config.patch_size}"]
        assert isinstance(embed, _ElasticEmbed)
        width = config.embed_dim
        h = embed.forward_active(x, width, self._class_token(config.patch_size))
        for index, block in enumerate(self.blocks[: len(config.layers)]):
            if index in config.reductions:
                width *= config.reduction_width
                step = self.steps[f"r{index}"]
                assert isinstance(step, _ElasticReduction)
                h = step.forward_active(h, width)
            h = block(h)
        h = self.head_dropout(self.norm(h)[:, 0])
        return self.fc.forward_active(h, self.num_classes)

    # -- extraction --------------------------------------------------------------------------
    def extract(self, arch: Architecture | str | None = None) -> VisionTransformer:
        """The stand-alone network of ``arch`` (default: the active sub-network), built as the
        space builds it (:meth:`ViTSpace.build` with this super-transformer's settings), with
        the inherited weights, in this network's mode and on its device. In eval mode its
        output equals the super-transformer's with ``arch`` active.

        Raises:
            InvalidArchitectureError: ``arch`` belongs to another space or does not parse.
        """
        previous = self.active
        if arch is not None:
            self.set_active(arch)
        try:
            config = self.active_config
            network = self.space.build(self.active, **self.build_settings(self.active))
            parameter = next(self.parameters())
            network.to(device=parameter.device, dtype=parameter.dtype)
            self._copy_into(network, config)
        finally:
            self.set_active(previous)
        return network.train(self.training)

    @torch.no_grad()
    def _copy_into(self, network: VisionTransformer, config: ViTConfig) -> None:
        modules = list(network)
        patch_embed = modules[0]
        assert isinstance(patch_embed, PatchEmbed)
        embed = self.embeds[f"p{config.patch_size}"]
        assert isinstance(embed, _ElasticEmbed)
        embed.copy_to(patch_embed, self._class_token(config.patch_size))
        position, width = 1, config.embed_dim
        for index, block in enumerate(self.blocks[: len(config.layers)]):
            if index in config.reductions:
                step, target = self.steps[f"r{index}"], modules[position]
                assert isinstance(step, _ElasticReduction)
                assert isinstance(target, SpatialReduction)
                step.copy_to(target)
                width *= config.reduction_width
                position += 1
            assert isinstance(block, ElasticBlock)
            encoder = modules[position]
            assert isinstance(encoder, Block)
            encoder.load_state_dict(block.extract(width).state_dict())
            position += 1
        head = modules[position]
        assert isinstance(head, ClassifierHead)
        self.norm.copy_to(head.norm)
        self.fc.copy_to(head.fc)
