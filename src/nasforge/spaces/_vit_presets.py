"""The published networks of the ``vit`` space, as their architecture texts.

Each entry is the network's per-layer configuration written in the text of
:class:`nasforge.spaces.vit.ViTSpace` (``h<heads>q<Q-K-V dimension>m<MLP ratio>`` per layer),
read from the paper and checked against the authors' code named beside it. Published
parameters (millions) and multiply-adds (billions, the papers' "FLOPs") for 224x224 inputs and
1,000 classes are in :data:`PUBLISHED`, their sources in :data:`SOURCES`.

Departures, the same in every network: absolute position embeddings only. AutoFormer's
released subnets are trained with relative position embeddings as well (``--relative_position``
in the authors' commands); the space has no relative position embeddings, which the paper's
parameter counts leave out too.
"""

from __future__ import annotations

__all__ = ["NETWORKS", "PUBLISHED", "SOURCES"]


def _text(patch: int, embed: int, layers: list[tuple[int, float]], head_dim: int = 64) -> str:
    """The architecture text of a network of ``(heads, mlp_ratio)`` layers."""
    body = ",".join(f"h{h}q{h * head_dim}m{r:g}" for h, r in layers)
    return f"patch={patch};embed={embed};layers={body}"


#: name -> architecture text.
NETWORKS: dict[str, str] = {
    # Touvron et al., ICML 2021, arXiv:2012.12877, Table 1 (embedding dimension, heads,
    # layers; head dimension 64, MLP ratio 4, patch 16); facebookresearch/deit models.py
    # deit_tiny/small/base_patch16_224.
    "deit-ti": _text(16, 192, [(3, 4.0)] * 12),
    "deit-s": _text(16, 384, [(6, 4.0)] * 12),
    "deit-b": _text(16, 768, [(12, 4.0)] * 12),
    # Chen et al., ICCV 2021, arXiv:2107.00651: the searched subnets as microsoft/Cream
    # AutoFormer/experiments/subnet/AutoFormer-{T,S,B}.yaml (RETRAIN: EMBED_DIM, DEPTH and
    # per-layer NUM_HEADS and MLP_RATIO); the Q-K-V dimension is 64 per head (the authors'
    # supernet_transformer.py sets sample_q_embed_dim = heads * 64 with --change_qkv).
    "autoformer-t": _text(
        16,
        192,
        list(
            zip(
                [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3],
                [3.5, 3.5, 3.0, 3.5, 3.0, 3.0, 4.0, 4.0, 3.5, 4.0, 3.5, 4.0, 3.5],
                strict=True,
            )
        ),
    ),
    "autoformer-s": _text(
        16,
        384,
        list(
            zip(
                [6, 6, 5, 7, 5, 5, 5, 6, 6, 7, 7, 6, 7],
                [3.0, 3.5, 3.0, 3.5, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.5, 4.0],
                strict=True,
            )
        ),
    ),
    "autoformer-b": _text(
        16,
        576,
        list(
            zip(
                [9, 9, 9, 9, 9, 10, 9, 9, 10, 9, 10, 9, 9, 10],
                [3.5, 3.5, 4.0, 3.5, 4.0, 3.5, 3.5, 3.0, 4.0, 4.0, 3.0, 4.0, 3.0, 3.5],
                strict=True,
            )
        ),
    ),
}

#: name -> (parameters in millions, multiply-adds in billions) as published for 224x224
#: inputs and 1,000 classes.
PUBLISHED: dict[str, tuple[float, float]] = {
    "deit-ti": (5.7, 1.3),
    "deit-s": (22.1, 4.6),
    "deit-b": (86.6, 17.6),
    "autoformer-t": (5.7, 1.3),
    "autoformer-s": (22.9, 5.1),
    "autoformer-b": (54.0, 11.0),
}

_DEIT = (
    "Touvron et al., ICML 2021, arXiv:2012.12877, Table 1 (the architecture; its #params "
    "column rounds to 5M/22M/86M and it gives no FLOPs); the finer figures are issue 20's "
    "reading, as the comparison tables of later papers list DeiT"
)
_AUTOFORMER = (
    "Chen et al., ICCV 2021, arXiv:2107.00651, table of ImageNet results (5.7M/1.3G, "
    "22.9M/5.1G, 54M/11G; the abstract gives 5.7M/22.9M/53.7M parameters)"
)

#: name -> where :data:`PUBLISHED` comes from.
SOURCES: dict[str, str] = {
    "deit-ti": _DEIT,
    "deit-s": _DEIT,
    "deit-b": _DEIT,
    "autoformer-t": _AUTOFORMER,
    "autoformer-s": _AUTOFORMER,
    "autoformer-b": _AUTOFORMER,
}
