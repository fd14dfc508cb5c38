"""Layers of vision transformers and decoder-only language models, and the networks they make.

One :class:`TransformerLayerSpec` describes one layer at one input shape (its ``key`` indexes
per-layer latency tables, as :class:`nasforge.ops.mobile.LayerSpec` does for convolution
blocks); :func:`build_layer` builds exactly that layer, and :class:`VisionTransformer` chains
the layers of a network described by a :class:`ViTConfig`.

The encoder layer is the pre-norm block of ViT and DeiT (Dosovitskiy, A. et al. "An Image is
Worth 16x16 Words: Transformers for Image Recognition at Scale." ICLR 2021, arXiv:2010.11929,
Eq. 2-3; Touvron, H. et al. "Training data-efficient image transformers & distillation
through attention." ICML 2021, arXiv:2012.12877): ``x + MSA(LN(x))`` then ``x + MLP(LN(x))``,
the MLP two linear layers with GELU between. The attention's Q-K-V dimension is a setting of
its own (``qkv_dim = heads * head_dim``, which AutoFormer searches; ViT and DeiT use
``embed_dim``): ``qkv`` maps ``embed -> 3 * qkv_dim`` and ``proj`` maps ``qkv_dim -> embed``.
Attention is computed with explicit matrix products (``softmax(q k^T / sqrt(head_dim)) v``),
so the FLOP counter and ONNX export see every product; ``causal=True`` masks the future
(decoder-only language models).

Optional stages beyond ViT:

* ``conv_stem``: a convolutional stem before the patch embedding (three 3x3 convolutions with
  batch norm and ReLU, the middle one strided when the patch is even, then a ``patch/2``
  patchify convolution), as ViT-ResNAS (Liao, Y., Karaman, S. and Sze, V. "Searching for
  Efficient Multi-Stage Vision Transformers." arXiv:2109.00642, Sec. 3.1) and Xiao et al.'s
  "Early convolutions help transformers see better" use.
* ``reductions``: layer indices before which a *residual spatial reduction* (ViT-ResNAS,
  Sec. 3.2) halves the token grid in each direction and multiplies the width by
  ``reduction_width``: the patch tokens go through LayerNorm and a 2x2 stride-2 convolution,
  plus a residual of 2x2 average pooling and a linear projection; the class token through a
  linear projection.

Layers carry ``nas_role`` (``"attention"`` or ``"mlp"``) so that transformer proxies find the
multi-head attention and the MLP of any network built from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidConfigError

__all__ = [
    "LAYER_KINDS",
    "Attention",
    "Block",
    "ClassifierHead",
    "LayerConfig",
    "Mlp",
    "PatchEmbed",
    "SpatialReduction",
    "TransformerLayerSpec",
    "ViTConfig",
    "VisionTransformer",
    "build_layer",
]

#: The kinds of :class:`TransformerLayerSpec`.
LAYER_KINDS = ("patch_embed", "encoder", "reduction", "head", "token_embed", "lm_head")


@dataclass(frozen=True)
class TransformerLayerSpec:
    """One layer of a transformer at one input shape.

    Attributes:
        kind: One of :data:`LAYER_KINDS`: ``patch_embed`` (image to tokens, with the class token
            and position embedding), ``encoder`` (one pre-norm block), ``reduction`` (a residual
            spatial reduction), ``head`` (final norm and classifier on the class token),
            ``token_embed`` (a language model's token and position embedding) and ``lm_head``
            (a language model's final norm and vocabulary projection).
        embed: Width of the layer's input tokens (``patch_embed``: of its output).
        seq: Tokens of the layer's input, the class token included (``patch_embed``: of its
            output; ``token_embed``: the sequence length).
        heads: Attention heads (``encoder``).
        qkv: Q-K-V dimension, ``heads * head_dim`` (``encoder``).
        mlp: Hidden width of the MLP (``encoder``).
        out: Output width: classes (``head``), vocabulary (``lm_head``, ``token_embed``) or
            the width after a ``reduction``.
        patch: Patch side (``patch_embed``).
        in_channels: Image channels (``patch_embed``).
        resolution: Image side (``patch_embed``).
        causal: Causal attention mask (``encoder`` of a language model).
        conv_stem: Convolutional stem (``patch_embed``).
    """

    kind: str
    embed: int
    seq: int
    heads: int = 0
    qkv: int = 0
    mlp: int = 0
    out: int = 0
    patch: int = 0
    in_channels: int = 0
    resolution: int = 0
    causal: bool = False
    conv_stem: bool = False

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise InvalidConfigError(
                f"Unknown transformer layer kind {self.kind!r}; the kinds are {LAYER_KINDS}."
            )
        if self.kind == "encoder" and (self.heads < 1 or self.qkv % self.heads):
            raise InvalidConfigError(
                f"{self.heads} heads do not divide the attention dimension {self.qkv}; give a "
                "Q-K-V dimension that is a multiple of the number of heads."
            )

    @property
    def key(self) -> str:
        """A text that identifies the layer and its input shape (the table's key)."""
        k = self.kind
        if k == "patch_embed":
            stem = "-convstem" if self.conv_stem else ""
            return (
                f"patch_embed-c{self.in_channels}-r{self.resolution}-p{self.patch}"
                f"-d{self.embed}-n{self.seq}{stem}"
            )
        if k == "encoder":
            mask = "-causal" if self.causal else ""
            return f"encoder-d{self.embed}-n{self.seq}-h{self.heads}-q{self.qkv}-m{self.mlp}{mask}"
        if k == "reduction":
            return f"reduction-d{self.embed}-n{self.seq}-o{self.out}"
        if k == "head":
            return f"head-d{self.embed}-o{self.out}"
        if k == "token_embed":
            return f"token_embed-v{self.out}-d{self.embed}-n{self.seq}"
        return f"lm_head-d{self.embed}-n{self.seq}-o{self.out}"

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input of one sample: ``(C, H, W)`` for ``patch_embed``, ``(seq,)`` token ids
        for ``token_embed``, ``(seq, embed)`` otherwise."""
        if self.kind == "patch_embed":
            return (self.in_channels, self.resolution, self.resolution)
        if self.kind == "token_embed":
            return (self.seq,)
        return (self.seq, self.embed)


class Attention(nn.Module):
    """Multi-head self-attention with a Q-K-V dimension of its own (see the module docstring).

    Example:
        >>> attn = Attention(embed=8, heads=2, qkv_dim=4)
        >>> attn(torch.zeros(1, 5, 8)).shape
        torch.Size([1, 5, 8])
    """

    nas_role = "attention"
    #: The product of queries and keys multiplies two activations: no binary form
    #: (:func:`nasforge.ops.binary.binarize` refuses it).
    binary_form = False

    def __init__(self, embed: int, heads: int, qkv_dim: int, *, causal: bool = False) -> None:
        super().__init__()
        if heads < 1 or qkv_dim % heads:
            raise InvalidConfigError(
                f"{heads} heads do not divide the attention dimension {qkv_dim}; give a Q-K-V "
                "dimension that is a multiple of the number of heads."
            )
        self.heads = heads
        self.qkv_dim = qkv_dim
        self.head_dim = qkv_dim // heads
        self.causal = causal
        self.qkv = nn.Linear(embed, 3 * qkv_dim)
        self.proj = nn.Linear(qkv_dim, embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = attend(qkv[0], qkv[1], qkv[2], self.causal)
        return self.proj(out.transpose(1, 2).reshape(b, n, self.qkv_dim))  # type: ignore[no-any-return]


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` over ``(batch, heads, tokens, d)`` tensors, with the
    future masked when ``causal``."""
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        n = q.shape[-2]
        mask = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


class Mlp(nn.Module):
    """The transformer's MLP: ``fc2(GELU(fc1(x)))``."""

    nas_role = "mlp"

    def __init__(self, embed: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed, hidden)
        self.fc2 = nn.Linear(hidden, embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # type: ignore[no-any-return]


class Block(nn.Module):
    """The pre-norm encoder block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(
        self, embed: int, heads: int, qkv_dim: int, mlp_hidden: int, *, causal: bool = False
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed, eps=1e-6)
        self.attn = Attention(embed, heads, qkv_dim, causal=causal)
        self.norm2 = nn.LayerNorm(embed, eps=1e-6)
        self.mlp = Mlp(embed, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))  # type: ignore[no-any-return]


class PatchEmbed(nn.Module):
    """Image to tokens: (optional convolutional stem), patchify convolution, the class token
    prepended, the learned position embedding added."""

    def __init__(
        self,
        in_channels: int,
        embed: int,
        patch: int,
        resolution: int,
        *,
        conv_stem: bool = False,
    ) -> None:
        super().__init__()
        if resolution % patch:
            raise InvalidConfigError(
                f"Patch size {patch} does not divide the image side {resolution}; use an image "
                f"side that is a multiple of {patch}."
            )
        self.patch = patch
        self.grid = resolution // patch
        self.stem: nn.Module = nn.Identity()
        channels, kernel = in_channels, patch
        if conv_stem:
            if patch % 2:
                raise InvalidConfigError(
                    f"The convolutional stem halves the image first, so it needs an even patch "
                    f"size, got {patch}."
                )
            width = max(8, embed // 4)
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
            channels, kernel = width, patch // 2
        self.proj = nn.Conv2d(channels, embed, kernel, stride=kernel)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid + 1, embed))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(self.stem(x)).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.pos_embed


class SpatialReduction(nn.Module):
    """ViT-ResNAS's residual spatial reduction (see the module docstring): the token grid
    halved in each direction, the width from ``embed`` to ``out``."""

    def __init__(self, embed: int, out: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed, eps=1e-6)
        self.conv = nn.Conv2d(embed, out, 2, stride=2)
        self.shortcut = nn.Linear(embed, out, bias=False)
        self.cls_proj = nn.Linear(embed, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        side = math.isqrt(n - 1)
        if side * side != n - 1 or side % 2:
            raise InvalidConfigError(
                f"A spatial reduction needs an even square token grid, got {n - 1} tokens."
            )
        cls, tokens = x[:, :1], x[:, 1:]
        grid = self.norm(tokens).transpose(1, 2).reshape(b, d, side, side)
        main = self.conv(grid).flatten(2).transpose(1, 2)
        plain = tokens.transpose(1, 2).reshape(b, d, side, side)
        pooled = F.avg_pool2d(plain, 2).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_proj(cls), main + self.shortcut(pooled)], dim=1)


class ClassifierHead(nn.Module):
    """The final LayerNorm and the linear classifier on the class token."""

    def __init__(self, embed: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(embed, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.norm(x)[:, 0]))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class LayerConfig:
    """One encoder layer: its heads, Q-K-V dimension and MLP hidden width (its input width
    is the network's width at that depth)."""

    heads: int
    qkv_dim: int
    mlp_hidden: int


@dataclass(frozen=True)
class ViTConfig:
    """A vision transformer, layer by layer.

    Attributes:
        image_size: Side of the input images.
        patch_size: Side of the patches.
        embed_dim: Width of the tokens (before any reduction).
        layers: The encoder layers, in order.
        num_classes: Classes of the classifier.
        in_channels: Image channels.
        conv_stem: A convolutional stem before the patch embedding.
        reductions: Layer indices before which a residual spatial reduction runs.
        reduction_width: Width multiplier of each reduction.
        dropout: Dropout before the classifier.
    """

    image_size: int
    patch_size: int
    embed_dim: int
    layers: tuple[LayerConfig, ...]
    num_classes: int = 1000
    in_channels: int = 3
    conv_stem: bool = False
    reductions: tuple[int, ...] = ()
    reduction_width: int = 2
    dropout: float = 0.0

    def layer_specs(self) -> tuple[TransformerLayerSpec, ...]:
        """The network's layers in order, each with its input shape."""
        grid = self.image_size // self.patch_size
        embed = self.embed_dim
        out = [
            TransformerLayerSpec(
                "patch_embed", embed, grid * grid + 1, patch=self.patch_size,
                in_channels=self.in_channels, resolution=self.image_size,
                conv_stem=self.conv_stem,
            )
        ]  # fmt: skip
        for index, layer in enumerate(self.layers):
            if index in self.reductions:
                wider = embed * self.reduction_width
                out.append(TransformerLayerSpec("reduction", embed, grid * grid + 1, out=wider))
                embed, grid = wider, grid // 2
            out.append(
                TransformerLayerSpec(
                    "encoder", embed, grid * grid + 1, heads=layer.heads, qkv=layer.qkv_dim,
                    mlp=layer.mlp_hidden,
                )
            )  # fmt: skip
        out.append(TransformerLayerSpec("head", embed, grid * grid + 1, out=self.num_classes))
        return tuple(out)


def build_layer(spec: TransformerLayerSpec, *, dropout: float = 0.0) -> nn.Module:
    """The module of one layer spec (a ``token_embed`` or ``lm_head`` is built by
    :mod:`nasforge.ops.llm`)."""
    if spec.kind == "patch_embed":
        return PatchEmbed(
            spec.in_channels, spec.embed, spec.patch, spec.resolution, conv_stem=spec.conv_stem
        )
    if spec.kind == "encoder":
        return Block(spec.embed, spec.heads, spec.qkv, spec.mlp, causal=spec.causal)
    if spec.kind == "reduction":
        return SpatialReduction(spec.embed, spec.out)
    if spec.kind == "head":
        return ClassifierHead(spec.embed, spec.out, dropout)
    from nasforge.ops.llm import build_lm_layer

    return build_lm_layer(spec)


class VisionTransformer(nn.Sequential):
    """A vision transformer built from a :class:`ViTConfig`: the modules of its layer specs,
    in order (``net[0]`` the patch embedding, ``net[-1]`` the head).

    Example:
        >>> cfg = ViTConfig(32, 8, 16, (LayerConfig(2, 16, 32),), num_classes=10)
        >>> net = VisionTransformer(cfg)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, config: ViTConfig) -> None:
        specs = config.layer_specs()
        super().__init__(*(build_layer(s, dropout=config.dropout) for s in specs))
        self.config = config
        self.specs = specs
