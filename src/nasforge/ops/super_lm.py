"""The super-network of the ``llm`` space: one decoder-only language model whose sub-networks
(every architecture of :class:`nasforge.spaces.llm.LLMSpace`) share its weights.

Every elastic dimension takes the leading slices of the largest layer's weights (AutoFormer's
weight entanglement: Chen, M., Peng, H., Fu, J. and Ling, H. "AutoFormer: Searching
Transformers for Visual Recognition." ICCV 2021, arXiv:2107.00651, Sec. 3.1), as the
super-networks of InstaTune (Sridhar, S. N. et al. "InstaTune: Instantaneous Neural
Architecture Search During Fine-Tuning." ICCV Workshops 2023, arXiv:2308.15609, Sec. 3) and
LLaMA-NAS (Sarah, A. et al. arXiv:2405.18377, Sec. 3) slice a pre-trained transformer's
layers: the first ``d`` columns of the token and position embeddings, the first ``depth``
layers, in each layer the first ``heads`` heads and ``mlp`` hidden units
(:class:`nasforge.ops.elastic_transformer.ElasticBlock` with ``causal=True``), and the first
``d`` inputs of the output projection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.ops.elastic_transformer import ElasticBlock, ElasticLayerNorm
from nasforge.ops.llm import DecoderLM, check_tokens

if TYPE_CHECKING:
    from nasforge.spaces.llm import LLMSpace

__all__ = ["SuperLM"]


class SuperLM(nn.Module):
    """The weight-sharing super-network of an ``llm`` space (see the module docstring).

    ``forward(tokens (B, T) int64) -> logits (B, T, vocab)`` of the active sub-network
    (the largest until :meth:`set_active` says otherwise).

    Args:
        space: The ``llm`` space whose sub-networks it holds.

    Example:
        >>> from nasforge.spaces.llm import LLMSpace
        >>> space = LLMSpace(embed_dims=(16, 32), depths=(1, 2), heads=(2, 4), head_dim=4,
        ...                  mlp_sizes=(32, 64), context=16)
        >>> net = SuperLM(space).eval()
        >>> net.set_active("d16:h2q8m32")
        >>> tokens = torch.randint(0, 256, (2, 8))
        >>> bool((net(tokens) - net.extract()(tokens)).abs().max() < 1e-5)
        True
    """

    def __init__(self, space: LLMSpace, **settings: Any) -> None:
        super().__init__()
        from nasforge.spaces.llm import LLMSpace

        if not isinstance(space, LLMSpace):
            raise InvalidConfigError(
                f"SuperLM needs an llm space (nasforge.spaces.create('llm')), got {space!r}."
            )
        if settings:
            raise InvalidConfigError(
                f"SuperLM takes no settings besides its space, got {sorted(settings)}; set the "
                "sizes on the space (spaces.create('llm', embed_dims=..., ...))."
            )
        self.space = space
        d = max(space.EMBED_DIMS)
        self.max_embed = d
        self.tokens = nn.Embedding(space.VOCAB, d)
        self.pos_embed = nn.Parameter(torch.zeros(1, space.CONTEXT, d))
        nn.init.normal_(self.tokens.weight, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(
            ElasticBlock(d, max(space.HEADS), space.HEAD_DIM, max(space.MLP_SIZES), causal=True)
            for _ in range(space.MAX_DEPTH)
        )
        self.norm = ElasticLayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, space.VOCAB)
        self._active = space.largest()
        self.set_active(self._active)

    @property
    def settings(self) -> dict[str, Any]:
        """The constructor's keywords besides the space (JSON-able; none)."""
        return {}

    @property
    def active(self) -> Architecture:
        """The active sub-network."""
        return self._active

    def _arch(self, arch: Architecture | str | None) -> Architecture:
        if arch is None:
            return self._active
        if isinstance(arch, str):
            return self.space.parse(arch)
        if not isinstance(arch, Architecture):
            raise InvalidArchitectureError(
                f"Give an llm architecture or its text, got {type(arch).__name__}."
            )
        return self.space.check(arch)

    def set_active(self, arch: Architecture | str) -> None:
        """Make ``arch`` (an architecture of the space, or its text) the active sub-network."""
        arch = self._arch(arch)
        values = self.space.values(arch)
        for i in range(values["depth"]):
            self._block(i).set_active(
                values[f"l{i}_heads"], self.space.HEAD_DIM, values[f"l{i}_mlp"]
            )
        self._embed = int(values["embed_dim"])
        self._depth = int(values["depth"])
        self._active = arch

    def _block(self, i: int) -> ElasticBlock:
        block = self.blocks[i]
        assert isinstance(block, ElasticBlock)
        return block

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A sub-network drawn uniformly over each decision (canonical: layers beyond the
        depth at their first options)."""
        return self.space.canonical(self.space.sample(rng))

    def largest(self) -> Architecture:
        """The largest sub-network (every decision at its largest option)."""
        return self.space.largest()

    def smallest(self) -> Architecture:
        """The smallest sub-network."""
        return self.space.smallest()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tokens(tokens, self.space.CONTEXT, self.space.VOCAB)
        d, n = self._embed, tokens.shape[1]
        x = F.embedding(tokens, self.tokens.weight[:, :d]) + self.pos_embed[:, :n, :d]
        for block in self.blocks[: self._depth]:
            x = block(x)
        return F.linear(self.norm(x), self.head.weight[:, :d], self.head.bias)

    def extract(self, arch: Architecture | str | None = None) -> DecoderLM:
        """The :class:`~nasforge.ops.llm.DecoderLM` of ``arch`` (default the active one) with
        the inherited weights, on this network's device, in its mode; in evaluation mode its
        output equals this network's with ``arch`` active. The active sub-network is left as
        it was."""
        arch = self._arch(arch)
        previous = self._active
        self.set_active(arch)
        try:
            ref = self.head.weight
            model = DecoderLM(self.space.config(arch)).to(device=ref.device, dtype=ref.dtype)
            d = self._embed
            with torch.no_grad():
                model.embed.tokens.weight.copy_(self.tokens.weight[:, :d])
                model.embed.pos_embed.copy_(self.pos_embed[:, :, :d])
                model.blocks = nn.ModuleList(self._block(i).extract(d) for i in range(self._depth))
                self.norm.copy_to(model.head.norm)
                model.head.fc.weight.copy_(self.head.weight[:, :d])
                model.head.fc.bias.copy_(self.head.bias)
        finally:
            self.set_active(previous)
        return model.train(self.training)
