"""Decoder-only language models built from the transformer layers of :mod:`nasforge.ops.vit`.

A :class:`DecoderLM` is a GPT-style causal language model over byte tokens: a token embedding
plus a learned position embedding (:class:`TokenEmbedding`), pre-norm blocks with causal
self-attention (:class:`nasforge.ops.vit.Block` with ``causal=True``), then a final LayerNorm
and a linear projection to the vocabulary (:class:`LMHead`). Each layer's heads, Q-K-V
dimension and MLP hidden width (the "intermediate size") are its own, as the sub-networks of
LLaMA-NAS (Sarah, A., Sridhar, S. N., Szankin, M. and Sundaresan, S. "LLaMA-NAS: Efficient
Neural Architecture Search for Large Language Models." arXiv:2405.18377, 2024, Sec. 3) have
a number of layers and a per-layer intermediate size of their own.

Where this differs from LLaMA (Touvron, H. et al. "Llama 2: Open Foundation and Fine-Tuned
Chat Models." arXiv:2307.09288): LayerNorm instead of RMSNorm, a GELU MLP of two linear
layers instead of SwiGLU's three, a learned absolute position embedding instead of rotary
embeddings (RoPE), biases in the linear layers, and an output projection not tied to the
token embedding. These keep every layer one of the shared transformer layers (one
:class:`~nasforge.ops.vit.TransformerLayerSpec` each, for FLOP counts and latency tables).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.ops.vit import Block, LayerConfig, TransformerLayerSpec

__all__ = ["DecoderLM", "LMConfig", "LMHead", "TokenEmbedding", "build_lm_layer"]


class TokenEmbedding(nn.Module):
    """Token ids ``(B, T)`` to vectors ``(B, T, embed)``: a token table plus a learned
    position embedding of ``context`` positions.

    Raises (in ``forward``):
        InvalidConfigError: A sequence longer than ``context``.
    """

    def __init__(self, vocab: int, embed: int, context: int) -> None:
        super().__init__()
        if vocab < 1 or embed < 1 or context < 1:
            raise InvalidConfigError(
                f"A token embedding needs a positive vocabulary, width and context, got "
                f"vocab={vocab}, embed={embed}, context={context}."
            )
        self.vocab = vocab
        self.context = context
        self.tokens = nn.Embedding(vocab, embed)
        self.pos_embed = nn.Parameter(torch.zeros(1, context, embed))
        nn.init.normal_(self.tokens.weight, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tokens(tokens, self.context, self.vocab)
        n = tokens.shape[1]
        return self.tokens(tokens) + self.pos_embed[:, :n]  # type: ignore[no-any-return]


def check_tokens(tokens: torch.Tensor, context: int, vocab: int) -> None:
    """Refuse token ids that are not a ``(batch, length)`` integer tensor, a length beyond
    the position embedding, or ids outside the vocabulary (clear errors)."""
    if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise InvalidConfigError(
            f"A language model takes token ids of shape (batch, length) and an integer dtype, "
            f"got shape {tuple(tokens.shape)} and {tokens.dtype}."
        )
    if tokens.shape[1] > context:
        raise InvalidConfigError(
            f"A sequence of {tokens.shape[1]} tokens is longer than the position embedding "
            f"({context} positions); cut the input to at most {context} tokens or build the "
            "model with a longer context."
        )
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
        raise InvalidConfigError(
            f"Token ids must lie in 0..{vocab - 1}, got {int(tokens.min())}..{int(tokens.max())}."
        )


class LMHead(nn.Module):
    """The final LayerNorm and the projection of every position to the vocabulary."""

    def __init__(self, embed: int, vocab: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed, eps=1e-6)
        self.fc = nn.Linear(embed, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x))  # type: ignore[no-any-return]


def build_lm_layer(spec: TransformerLayerSpec) -> nn.Module:
    """The module of a ``token_embed`` (vocabulary ``spec.out``, width ``spec.embed``, context
    ``spec.seq``) or ``lm_head`` (width ``spec.embed`` to vocabulary ``spec.out``) spec.

    Raises:
        InvalidConfigError: Another kind of spec (those are built by
            :func:`nasforge.ops.vit.build_layer`).
    """
    if spec.kind == "token_embed":
        return TokenEmbedding(spec.out, spec.embed, spec.seq)
    if spec.kind == "lm_head":
        return LMHead(spec.embed, spec.out)
    raise InvalidConfigError(
        f"build_lm_layer builds 'token_embed' and 'lm_head' layers, got {spec.kind!r}; build "
        "the others with nasforge.ops.vit.build_layer."
    )


@dataclass(frozen=True)
class LMConfig:
    """A decoder-only language model, layer by layer.

    Attributes:
        vocab: Size of the vocabulary (256 for bytes).
        context: Positions of the position embedding (the longest sequence).
        embed_dim: Width of the tokens.
        layers: The decoder layers, in order.
    """

    vocab: int
    context: int
    embed_dim: int
    layers: tuple[LayerConfig, ...]

    def layer_specs(self, seq: int | None = None) -> tuple[TransformerLayerSpec, ...]:
        """The network's layers in order, at sequences of ``seq`` tokens (default the
        context)."""
        n = self.context if seq is None else seq
        if not 1 <= n <= self.context:
            raise InvalidConfigError(
                f"A sequence of {n} tokens does not fit the position embedding of "
                f"{self.context} positions; give 1..{self.context}."
            )
        d = self.embed_dim
        out = [TransformerLayerSpec("token_embed", d, n, out=self.vocab)]
        for layer in self.layers:
            out.append(
                TransformerLayerSpec(
                    "encoder", d, n, heads=layer.heads, qkv=layer.qkv_dim,
                    mlp=layer.mlp_hidden, causal=True,
                )
            )  # fmt: skip
        out.append(TransformerLayerSpec("lm_head", d, n, out=self.vocab))
        return tuple(out)


class DecoderLM(nn.Module):
    """A GPT-style decoder-only language model built from an :class:`LMConfig` (see the
    module docstring): ``forward(tokens (B, T) int64) -> logits (B, T, vocab)``.

    Example:
        >>> cfg = LMConfig(256, 16, 16, (LayerConfig(2, 16, 32), LayerConfig(4, 16, 64)))
        >>> lm = DecoderLM(cfg)
        >>> lm(torch.zeros(2, 10, dtype=torch.int64)).shape
        torch.Size([2, 10, 256])
    """

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.specs = config.layer_specs()
        d = config.embed_dim
        self.embed = TokenEmbedding(config.vocab, d, config.context)
        self.blocks = nn.ModuleList(
            Block(d, layer.heads, layer.qkv_dim, layer.mlp_hidden, causal=True)
            for layer in config.layers
        )
        self.head = LMHead(d, config.vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(x)  # type: ignore[no-any-return]
