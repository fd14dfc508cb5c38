"""Weight-entangled transformer layers: one set of weights holding every smaller layer.

AutoFormer's *weight entanglement* (Chen, M., Peng, H., Fu, J. and Ling, H. "AutoFormer:
Searching Transformers for Visual Recognition." ICCV 2021, arXiv:2107.00651, Sec. 3.2): the
layers of every sub-network share the weights of the largest layer, each one using their
*leading* slice, so that training one sub-network updates the weights every larger one
contains. Here, for an input of width ``d`` (its last dimension, at most ``max_embed``):

* LayerNorm: the first ``d`` scales and shifts (:class:`ElasticLayerNorm`);
* attention with ``heads`` heads of ``head_dim`` each (``q = heads * head_dim``): the first
  ``q`` rows and ``d`` columns of each of the Q, K and V projections, and the first ``d`` rows
  and ``q`` columns of the output projection;
* MLP with ``mlp`` hidden units: ``fc1[:mlp, :d]`` and ``fc2[:d, :mlp]`` (biases likewise).

**Head layout.** The Q (and K, V) projection's rows are the attention dimension laid out head
after head *at the active head dimension*: a sub-network with ``h`` heads of ``e`` dimensions
takes rows ``0 .. h*e-1`` and gives head ``i`` rows ``i*e .. (i+1)*e-1``, as the stand-alone
:class:`nasforge.ops.vit.Attention` reshapes its ``qkv`` output. So every sub-network's
projection is a true leading slice of the largest one, whatever its number of heads or head
dimension: fewer heads drop the last rows, and a smaller head dimension regroups the same
leading rows into narrower heads (AutoFormer's choice: the searched quantity is the Q-K-V
dimension, the rows, not a per-head block). The alternative, a fixed block of
``max_head_dim`` rows per head, would make a smaller head dimension a strided, not a leading,
selection.

**Private self-attention maps.** ViTAS (Su, X. et al. "Vision Transformer Architecture
Search." arXiv:2106.13700 v1, Sec. 3, the weight-sharing paradigm with *private* class token
and self-attention maps) gives each choice of the number of heads its own self-attention map:
the Q and K projections, which make ``softmax(q k^T)``, are kept once per choice while V, the
output projection and the MLP stay shared (the authors' code, xiusu/ViTAS
``core/search_space/ops.py``, keeps one Q-K projection per heads choice beside one V). With
``private_keys`` an :class:`ElasticBlock` holds one Q-K projection per key and
:meth:`ElasticBlock.set_active` picks it with ``key``; each private copy is itself sliced as
above. Without keys there is one Q-K projection (AutoFormer).

:meth:`ElasticBlock.extract` copies the active slices into a stand-alone
:class:`nasforge.ops.vit.Block`, whose output is then the elastic block's.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.ops.vit import Block, attend

__all__ = ["ElasticAttention", "ElasticBlock", "ElasticLayerNorm", "ElasticLinear", "ElasticMlp"]


def _check_width(d: int, largest: int, what: str) -> None:
    if d > largest:
        raise InvalidConfigError(
            f"{what} got inputs of width {d}, wider than its largest width {largest}; give "
            f"tokens of at most {largest} features."
        )


class ElasticLinear(nn.Linear):
    """A linear layer whose sub-layers use the leading slice of its weights: ``out`` outputs
    from the first ``x.shape[-1]`` inputs."""

    def forward_active(self, x: torch.Tensor, out: int) -> torch.Tensor:
        """``x @ W[:out, :d]^T + b[:out]`` with ``d = x.shape[-1]``."""
        d = x.shape[-1]
        _check_width(d, self.in_features, "ElasticLinear")
        bias = None if self.bias is None else self.bias[:out]
        return F.linear(x, self.weight[:out, :d], bias)

    def copy_to(self, linear: nn.Linear) -> None:
        """Copy the leading slice of the shape of ``linear`` into it."""
        out, d = linear.weight.shape
        with torch.no_grad():
            linear.weight.copy_(self.weight[:out, :d])
            if linear.bias is not None and self.bias is not None:
                linear.bias.copy_(self.bias[:out])


class ElasticLayerNorm(nn.LayerNorm):
    """A LayerNorm over the input's width ``d`` with the first ``d`` scales and shifts."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        _check_width(d, self.normalized_shape[0], "ElasticLayerNorm")
        weight = None if self.weight is None else self.weight[:d]
        bias = None if self.bias is None else self.bias[:d]
        return F.layer_norm(x, (d,), weight, bias, self.eps)

    def copy_to(self, norm: nn.LayerNorm) -> None:
        """Copy the leading slice of the width of ``norm`` into it."""
        d = norm.normalized_shape[0]
        with torch.no_grad():
            if norm.weight is not None and self.weight is not None:
                norm.weight.copy_(self.weight[:d])
            if norm.bias is not None and self.bias is not None:
                norm.bias.copy_(self.bias[:d])


class ElasticAttention(nn.Module):
    """Weight-entangled multi-head self-attention (see the module docstring for the layout).

    Args:
        max_embed: Largest input width.
        max_heads: Largest number of heads.
        max_head_dim: Largest head dimension.
        causal: Mask the future (decoder-only language models).
        private_keys: Keys of ViTAS's private self-attention maps (one Q-K projection each);
            empty for one shared Q-K projection.
    """

    #: No binary form (see :class:`nasforge.ops.vit.Attention`).
    binary_form = False

    def __init__(
        self,
        max_embed: int,
        max_heads: int,
        max_head_dim: int,
        *,
        causal: bool = False,
        private_keys: Sequence[Hashable] = (),
    ) -> None:
        super().__init__()
        keys = tuple(private_keys)
        if len(set(keys)) != len(keys):
            raise InvalidConfigError(f"private_keys must be distinct, got {list(keys)}.")
        self.max_qkv = max_heads * max_head_dim
        self.max_embed = max_embed
        self.causal = causal
        self.private_keys = keys
        self._index = {key: i for i, key in enumerate(keys)}
        copies = max(1, len(keys))
        # Q rows 0..max_qkv-1, K rows max_qkv..2*max_qkv-1, one copy per private key.
        self.qk_weight = nn.Parameter(torch.empty(copies, 2 * self.max_qkv, max_embed))
        self.qk_bias = nn.Parameter(torch.empty(copies, 2 * self.max_qkv))
        self.v = ElasticLinear(max_embed, self.max_qkv)
        self.proj = ElasticLinear(self.max_qkv, max_embed)
        bound = 1.0 / math.sqrt(max_embed)
        for i in range(copies):
            nn.init.kaiming_uniform_(self.qk_weight[i], a=math.sqrt(5))
        nn.init.uniform_(self.qk_bias, -bound, bound)

    def qkv_slices(
        self, heads: int, head_dim: int, embed: int, key: Hashable | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The active ``qkv`` weight ``(3q, embed)`` and bias ``(3q,)``: Q, K, V rows in the
        order :class:`nasforge.ops.vit.Attention` expects."""
        q = heads * head_dim
        i = 0 if key is None else self._index[key]
        w, b, m = self.qk_weight[i], self.qk_bias[i], self.max_qkv
        weight = torch.cat([w[:q, :embed], w[m : m + q, :embed], self.v.weight[:q, :embed]])
        bias = torch.cat([b[:q], b[m : m + q], self.v.bias[:q]])
        return weight, bias

    def forward_active(
        self, x: torch.Tensor, heads: int, head_dim: int, key: Hashable | None
    ) -> torch.Tensor:
        """The attention of ``heads`` heads of ``head_dim`` on ``x`` (width ``x.shape[-1]``)."""
        b, n, d = x.shape
        _check_width(d, self.max_embed, "ElasticAttention")
        weight, bias = self.qkv_slices(heads, head_dim, d, key)
        qkv = F.linear(x, weight, bias).reshape(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        out = attend(qkv[0], qkv[1], qkv[2], self.causal)
        return self.proj.forward_active(out.transpose(1, 2).reshape(b, n, heads * head_dim), d)


class ElasticMlp(nn.Module):
    """Weight-entangled MLP: ``fc2[:d, :m](GELU(fc1[:m, :d](x)))``."""

    def __init__(self, max_embed: int, max_hidden: int) -> None:
        super().__init__()
        self.fc1 = ElasticLinear(max_embed, max_hidden)
        self.fc2 = ElasticLinear(max_hidden, max_embed)

    def forward_active(self, x: torch.Tensor, hidden: int) -> torch.Tensor:
        """The MLP of ``hidden`` units on ``x``."""
        return self.fc2.forward_active(F.gelu(self.fc1.forward_active(x, hidden)), x.shape[-1])


class ElasticBlock(nn.Module):
    """The weight-entangled pre-norm encoder block (see the module docstring).

    Args:
        max_embed: Largest input width.
        max_heads: Largest number of heads.
        max_head_dim: Largest head dimension.
        max_mlp: Largest MLP hidden width.
        causal: Mask the future (decoder-only language models).
        private_keys: ViTAS's private self-attention maps: one Q-K projection per key,
            chosen by :meth:`set_active`'s ``key`` (empty: shared, AutoFormer).

    Raises:
        InvalidConfigError: A largest size below 1 or repeated private keys.

    Example:
        >>> block = ElasticBlock(16, 4, 8, 64).eval()
        >>> block.set_active(heads=2, head_dim=4, mlp_hidden=24)
        >>> x = torch.randn(2, 5, 12)
        >>> bool((block(x) - block.extract(12)(x)).abs().max() < 1e-5)
        True
    """

    def __init__(
        self,
        max_embed: int,
        max_heads: int,
        max_head_dim: int,
        max_mlp: int,
        *,
        causal: bool = False,
        private_keys: Sequence[Hashable] = (),
    ) -> None:
        super().__init__()
        sizes = {
            "max_embed": max_embed,
            "max_heads": max_heads,
            "max_head_dim": max_head_dim,
            "max_mlp": max_mlp,
        }
        bad = {k: v for k, v in sizes.items() if isinstance(v, bool) or int(v) != v or v < 1}
        if bad:
            raise InvalidConfigError(f"ElasticBlock sizes must be positive integers, got {bad}.")
        self.max_embed, self.max_heads = max_embed, max_heads
        self.max_head_dim, self.max_mlp = max_head_dim, max_mlp
        self.causal = causal
        self.norm1 = ElasticLayerNorm(max_embed, eps=1e-6)
        self.attn = ElasticAttention(
            max_embed, max_heads, max_head_dim, causal=causal, private_keys=private_keys
        )
        self.norm2 = ElasticLayerNorm(max_embed, eps=1e-6)
        self.mlp = ElasticMlp(max_embed, max_mlp)
        self.heads, self.head_dim, self.mlp_hidden = max_heads, max_head_dim, max_mlp
        self.key: Hashable | None = None
        if self.attn.private_keys:
            self.key = self.attn.private_keys[-1]

    @property
    def private_keys(self) -> tuple[Hashable, ...]:
        """The keys of the private self-attention maps (empty: shared)."""
        return self.attn.private_keys

    def set_active(
        self, heads: int, head_dim: int, mlp_hidden: int, key: Hashable | None = None
    ) -> None:
        """Make the sub-layer of ``heads`` heads of ``head_dim`` dimensions and an MLP of
        ``mlp_hidden`` units active; ``key`` picks the private self-attention map (required
        when the block has private keys, else ``None``).

        Raises:
            InvalidConfigError: A size outside ``1..largest`` or a key the block lacks.
        """
        for name, value, largest in (
            ("heads", heads, self.max_heads),
            ("head_dim", head_dim, self.max_head_dim),
            ("mlp_hidden", mlp_hidden, self.max_mlp),
        ):
            if isinstance(value, bool) or int(value) != value or not 1 <= value <= largest:
                raise InvalidConfigError(
                    f"ElasticBlock.set_active({name}={value!r}): give an integer in 1..{largest} "
                    "(the largest layer's size)."
                )
        keys = self.attn.private_keys
        if keys and key not in keys:
            raise InvalidConfigError(
                f"This block keeps a private self-attention map per key {list(keys)}; "
                f"set_active(key=...) got {key!r}."
            )
        if not keys and key is not None:
            raise InvalidConfigError(
                f"This block shares one self-attention map (no private keys); got key={key!r}, "
                "give key=None."
            )
        self.heads, self.head_dim, self.mlp_hidden = int(heads), int(head_dim), int(mlp_hidden)
        self.key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The active sub-layer on ``x`` (batch, tokens, width <= ``max_embed``)."""
        _check_width(x.shape[-1], self.max_embed, "ElasticBlock")
        x = x + self.attn.forward_active(self.norm1(x), self.heads, self.head_dim, self.key)
        return x + self.mlp.forward_active(self.norm2(x), self.mlp_hidden)

    def extract(self, embed: int) -> Block:
        """The active sub-layer at input width ``embed`` as a stand-alone
        :class:`nasforge.ops.vit.Block` holding the inherited weights (on this block's
        device and dtype, in its mode).

        Raises:
            InvalidConfigError: ``embed`` outside ``1..max_embed``.
        """
        if isinstance(embed, bool) or int(embed) != embed or not 1 <= embed <= self.max_embed:
            raise InvalidConfigError(
                f"ElasticBlock.extract(embed={embed!r}): give a width in 1..{self.max_embed}."
            )
        qkv = self.heads * self.head_dim
        block = Block(embed, self.heads, qkv, self.mlp_hidden, causal=self.causal)
        ref = self.attn.v.weight
        block.to(device=ref.device, dtype=ref.dtype)
        self.norm1.copy_to(block.norm1)
        self.norm2.copy_to(block.norm2)
        with torch.no_grad():
            weight, bias = self.attn.qkv_slices(self.heads, self.head_dim, embed, self.key)
            block.attn.qkv.weight.copy_(weight)
            block.attn.qkv.bias.copy_(bias)
        self.attn.proj.copy_to(block.attn.proj)
        self.mlp.fc1.copy_to(block.mlp.fc1)
        self.mlp.fc2.copy_to(block.mlp.fc2)
        return block.train(self.training)
