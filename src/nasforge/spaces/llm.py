"""The language-model space: decoder-only transformers with elastic depth, width, heads and
MLP (intermediate) size, the sub-networks of one super-network.

Sarah, A., Sridhar, S. N., Szankin, M. and Sundaresan, S. "LLaMA-NAS: Efficient Neural
Architecture Search for Large Language Models." arXiv:2405.18377, 2024 (Sec. 3: the
sub-networks of LLaMA2-7B differ in their number of layers and each layer's intermediate
size), and Sridhar, S. N., Kundu, S., Sundaresan, S., Szankin, M. and Sarah, A. "InstaTune:
Instantaneous Neural Architecture Search During Fine-Tuning." ICCV Workshops 2023,
arXiv:2308.15609 (elastic hidden size, heads and intermediate size of BERT and ViT layers).
This space takes all four elastic dimensions: the width of the tokens (``embed_dim``), the
number of layers (``depth``), and per layer the heads (``l<i>_heads``; the Q-K-V dimension is
``heads * head_dim`` with a fixed ``head_dim``, as in LLaMA and BERT) and the MLP hidden
width (``l<i>_mlp``). The networks are :class:`nasforge.ops.llm.DecoderLM` over byte tokens
(vocabulary 256) with a context of ``context`` positions (see :mod:`nasforge.ops.llm` for
where the block differs from LLaMA's).

The default options are a reduced, CPU-sized setting (LLaMA2-7B has 32 layers of width 4,096,
32 heads of 128 and intermediate size 11,008): ``embed_dims (32, 48, 64)``, ``depths (2, 3,
4)``, ``heads (2, 4, 8)`` of ``head_dim 8``, ``mlp_sizes (64, 128, 256)``, ``context 64``.
Every option is a keyword of the constructor (``spaces.create("llm", embed_dims=(16, 32))``).

Text
----
``d<embed>:`` then the active layers ``h<heads>q<qkv>m<mlp>`` separated by ``,``, and the
layers beyond the depth after a ``/`` when they are not the first options, e.g.
``d64:h8q64m256,h4q32m128`` (``qkv`` must be ``heads * head_dim``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.spaces.base import Decision, ValuedSpace

if TYPE_CHECKING:
    from nasforge.ops.llm import DecoderLM, LMConfig
    from nasforge.ops.super_lm import SuperLM
    from nasforge.ops.vit import TransformerLayerSpec

__all__ = ["BYTE_VOCAB", "LLMSpace"]

#: Byte-level tokens.
BYTE_VOCAB = 256
_LAYER_RE = re.compile(r"^h([0-9]+)q([0-9]+)m([0-9]+)$")


def _options(name: str, values: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(sorted({int(v) for v in values}))
    except (TypeError, ValueError):
        raise InvalidConfigError(f"{name} must be whole numbers, got {values!r}.") from None
    if not out or out[0] < 1:
        raise InvalidConfigError(f"{name} must be one or more positive numbers, got {values!r}.")
    return out


@spaces.register("llm")
class LLMSpace(ValuedSpace):
    """Decoder-only language models with elastic depth, width, heads and MLP size (see the
    module docstring).

    Decisions, in order: ``embed_dim``, ``depth``, then per layer ``i`` in
    ``0..max(depths) - 1``: ``l<i>_heads`` and ``l<i>_mlp``.

    Args:
        embed_dims: Token widths.
        depths: Numbers of layers.
        heads: Attention heads of a layer.
        head_dim: Width of one head (the Q-K-V dimension is ``heads * head_dim``).
        mlp_sizes: MLP hidden widths of a layer.
        context: Positions of the position embedding (the longest sequence).
        vocab: Vocabulary (256 byte tokens).

    Example:
        >>> space = LLMSpace(embed_dims=(16, 32), depths=(1, 2), heads=(2, 4), head_dim=4,
        ...                  mlp_sizes=(32, 64), context=16)
        >>> str(space.largest()), str(space.smallest())
        ('d32:h4q16m64,h4q16m64', 'd16:h2q8m32')
        >>> space.parse("d16:h4q16m32") == space.parse(" d16 : h4q16m32 ")
        True
    """

    name = "llm"

    def __init__(
        self,
        *,
        embed_dims: Sequence[int] = (32, 48, 64),
        depths: Sequence[int] = (2, 3, 4),
        heads: Sequence[int] = (2, 4, 8),
        head_dim: int = 8,
        mlp_sizes: Sequence[int] = (64, 128, 256),
        context: int = 64,
        vocab: int = BYTE_VOCAB,
    ) -> None:
        self.EMBED_DIMS = _options("embed_dims", embed_dims)
        self.DEPTHS = _options("depths", depths)
        self.HEADS = _options("heads", heads)
        self.MLP_SIZES = _options("mlp_sizes", mlp_sizes)
        self.HEAD_DIM = int(head_dim)
        self.CONTEXT = int(context)
        self.VOCAB = int(vocab)
        if self.HEAD_DIM < 1 or self.CONTEXT < 1 or self.VOCAB < 2:
            raise InvalidConfigError(
                f"head_dim and context must be positive and vocab at least 2, got "
                f"head_dim={head_dim}, context={context}, vocab={vocab}."
            )
        self.MAX_DEPTH = max(self.DEPTHS)
        decisions = [Decision("embed_dim", self.EMBED_DIMS), Decision("depth", self.DEPTHS)]
        for i in range(self.MAX_DEPTH):
            decisions.append(Decision(f"l{i}_heads", self.HEADS))
            decisions.append(Decision(f"l{i}_mlp", self.MLP_SIZES))
        self._decisions = tuple(decisions)

    @property
    def settings(self) -> dict[str, Any]:
        """The constructor's keywords (JSON-able): ``LLMSpace(**space.settings)`` is equal."""
        return {
            "embed_dims": list(self.EMBED_DIMS),
            "depths": list(self.DEPTHS),
            "heads": list(self.HEADS),
            "head_dim": self.HEAD_DIM,
            "mlp_sizes": list(self.MLP_SIZES),
            "context": self.CONTEXT,
            "vocab": self.VOCAB,
        }

    def __repr__(self) -> str:
        return f"LLMSpace(**{self.settings!r})"

    # -- decisions ---------------------------------------------------------------------------

    def decisions(self) -> tuple[Decision, ...]:
        return self._decisions

    def check(self, arch: Architecture) -> Architecture:
        """``arch`` if it is an architecture of this space (its name and, since the options
        are settings of the space, choices within them); a clear error otherwise."""
        arch = super().check(arch)
        if len(arch.choices) != len(self._decisions) or any(
            not 0 <= c < len(d.options) for d, c in zip(self._decisions, arch.choices, strict=False)
        ):
            raise InvalidArchitectureError(
                f"Architecture {arch.text!r} was made by an llm space with other options than "
                f"{self!r}; parse its text with this space instead."
            )
        return arch

    def _layer_text(self, values: dict[str, Any], i: int) -> str:
        h = values[f"l{i}_heads"]
        return f"h{h}q{h * self.HEAD_DIM}m{values[f'l{i}_mlp']}"

    def _text(self, values: dict[str, Any]) -> str:
        layers = [self._layer_text(values, i) for i in range(self.MAX_DEPTH)]
        depth = values["depth"]
        text = f"d{values['embed_dim']}:{','.join(layers[:depth])}"
        default = f"h{self.HEADS[0]}q{self.HEADS[0] * self.HEAD_DIM}m{self.MLP_SIZES[0]}"
        if any(layer != default for layer in layers[depth:]):
            text += "/" + ",".join(layers[depth:])
        return text

    # -- text --------------------------------------------------------------------------------
    def parse(self, text: str) -> Architecture:
        """The architecture written as ``text`` (see the module docstring).

        Raises:
            InvalidArchitectureError: Malformed text, an option outside the space, or heads
                that do not divide the Q-K-V dimension; the message says which part.
        """
        if not isinstance(text, str):
            raise InvalidArchitectureError(
                f"Expected an llm architecture string like {str(self.largest())!r}, got "
                f"{type(text).__name__}."
            )
        return self._read_text(text)

    def _parse_values(self, text: str) -> dict[str, Any]:
        body = re.sub(r"\s+", "", text)
        head, sep, layers_text = body.partition(":")
        if not sep or not head.startswith("d") or not head[1:].isdigit():
            raise InvalidArchitectureError(
                "expected 'd<embed>:' then the layers, e.g. 'd64:h4q32m128,h2q16m64'."
            )
        active_text, _, rest_text = layers_text.partition("/")
        active = active_text.split(",") if active_text else []
        rest = rest_text.split(",") if rest_text else []
        if len(active) + len(rest) > self.MAX_DEPTH:
            raise InvalidArchitectureError(
                f"the space holds at most {self.MAX_DEPTH} layers, got {len(active) + len(rest)}."
            )
        values: dict[str, Any] = {"embed_dim": int(head[1:]), "depth": len(active)}
        default = f"h{self.HEADS[0]}q{self.HEADS[0] * self.HEAD_DIM}m{self.MLP_SIZES[0]}"
        tokens = active + rest + [default] * (self.MAX_DEPTH - len(active) - len(rest))
        for i, token in enumerate(tokens):
            match = _LAYER_RE.match(token)
            if match is None:
                raise InvalidArchitectureError(
                    f"layer {token!r} is malformed; write h<heads>q<qkv>m<mlp>, e.g. "
                    f"'h4q{4 * self.HEAD_DIM}m128'."
                )
            heads, qkv, mlp = (int(g) for g in match.groups())
            if heads < 1 or qkv % heads:
                raise InvalidArchitectureError(
                    f"{heads} heads do not divide the attention dimension {qkv} of layer "
                    f"{token!r}; give a Q-K-V dimension that is a multiple of the heads."
                )
            if qkv // heads != self.HEAD_DIM:
                raise InvalidArchitectureError(
                    f"layer {token!r} has heads of width {qkv // heads}; this space's heads are "
                    f"{self.HEAD_DIM} wide (qkv = heads * {self.HEAD_DIM})."
                )
            values[f"l{i}_heads"] = heads
            values[f"l{i}_mlp"] = mlp
        return values

    # -- named points ------------------------------------------------------------------------
    def largest(self) -> Architecture:
        """Every decision at its last (largest) option."""
        return self._extreme(True)

    def smallest(self) -> Architecture:
        """Every decision at its first (smallest) option."""
        return self._extreme(False)

    def canonical(self, arch: Architecture) -> Architecture:
        """``arch`` with the layers beyond its depth set to the first options (they are not
        part of the network)."""
        values = self.values(arch)
        for i in range(values["depth"], self.MAX_DEPTH):
            values[f"l{i}_heads"] = self.HEADS[0]
            values[f"l{i}_mlp"] = self.MLP_SIZES[0]
        return self._from_values(values)

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """One block per decoder layer within the depth (heads, their Q-K-V width, MLP
        width); the token width as a setting."""
        from nasforge.spaces._drawing import block, strip

        values = self.values(arch)
        blocks = []
        for i in range(values["depth"]):
            heads = values[f"l{i}_heads"]
            choices = {"heads": heads, "qkv": heads * self.HEAD_DIM, "mlp": values[f"l{i}_mlp"]}
            blocks.append(block(f"layer {i}", choices, group="decoder"))
        return strip(blocks, {"embed_dim": values["embed_dim"]})

    # -- networks ----------------------------------------------------------------------------
    def config(self, arch: Architecture) -> LMConfig:
        """The :class:`~nasforge.ops.llm.LMConfig` of ``arch``'s network."""
        from nasforge.ops.llm import LMConfig
        from nasforge.ops.vit import LayerConfig

        v = self.values(arch)
        layers = tuple(
            LayerConfig(v[f"l{i}_heads"], v[f"l{i}_heads"] * self.HEAD_DIM, v[f"l{i}_mlp"])
            for i in range(v["depth"])
        )
        return LMConfig(self.VOCAB, self.CONTEXT, v["embed_dim"], layers)

    def build(self, arch: Architecture, **kwargs: Any) -> DecoderLM:
        """The :class:`~nasforge.ops.llm.DecoderLM` of ``arch`` (no keywords are taken)."""
        if kwargs:
            raise InvalidConfigError(
                f"The llm space builds its networks from the architecture alone; got the "
                f"keywords {sorted(kwargs)}. Set the vocabulary and context on the space."
            )
        from nasforge.ops.llm import DecoderLM

        return DecoderLM(self.config(arch))

    def layers(
        self, arch: Architecture, *, seq: int | None = None
    ) -> tuple[TransformerLayerSpec, ...]:
        """The layers of ``arch``'s network at sequences of ``seq`` tokens (default the
        context), each a :class:`~nasforge.ops.vit.TransformerLayerSpec`."""
        return self.config(arch).layer_specs(seq)

    def costs(self, arch: Architecture, *, seq: int | None = None) -> dict[str, float]:
        """``params_M`` (parameters, millions) and ``macs_M`` (multiply-accumulates of one
        sequence of ``seq`` tokens, default the context, millions) in closed form, equal to
        counting the built network (the attention's two matrix products included)."""
        cfg = self.config(arch)
        n = self.CONTEXT if seq is None else int(seq)
        d, vocab = cfg.embed_dim, cfg.vocab
        params = vocab * d + cfg.context * d + 2 * d + d * vocab + vocab
        macs = n * d * vocab
        for layer in cfg.layers:
            q, m = layer.qkv_dim, layer.mlp_hidden
            params += 4 * d + (d * 3 * q + 3 * q) + (q * d + d) + (d * m + m) + (m * d + d)
            macs += n * (3 * d * q + q * d + 2 * d * m) + 2 * n * n * q
        return {"params_M": params / 1e6, "macs_M": macs / 1e6}

    def supernet(self, **settings: Any) -> SuperLM:
        """The super-network whose sub-networks are this space's architectures
        (:class:`nasforge.ops.super_lm.SuperLM`)."""
        from nasforge.ops.super_lm import SuperLM

        return SuperLM(self, **settings)
