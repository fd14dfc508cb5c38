"""Vision transformer spaces: AutoFormer's per-layer space plus ViTAS's patch size.

Chen, M., Peng, H., Fu, J. and Ling, H. "AutoFormer: Searching Transformers for Visual
Recognition." ICCV 2021, arXiv:2107.00651, Section 3.2 and Table 1: a ViT (pre-norm encoder
blocks, a class token, learned position embeddings) whose embedding dimension and depth are
searched for the whole network, and whose number of heads, Q-K-V dimension and MLP ratio are
searched layer by layer (the authors' code, microsoft/Cream ``AutoFormer``, gives every head a
dimension of 64: ``qkv = heads * 64``). Su, X. et al. "Vision Transformer Architecture Search."
arXiv:2106.13700 (ViTAS) adds the token embedding, i.e. the patch size, to the search.

Decisions, in order: ``patch_size``, ``embed_dim``, ``depth``, then for every layer ``i`` in
``0..MAX_DEPTH-1``: ``l<i>_heads``, ``l<i>_head_dim`` and ``l<i>_mlp_ratio``. A layer's Q-K-V
dimension is ``heads * head_dim``; its MLP hidden width is ``int(mlp_ratio * d)`` with ``d``
the width of the layer's input (``embed_dim``, or more after a residual spatial reduction).
The layers beyond ``depth`` are not part of the network (:meth:`ViTSpace.canonical` sets them
to the first options).

``vit`` holds AutoFormer's tiny, small and base spaces at once (embedding dimensions 192 to
768, depths 12 to 16, 3 to 12 heads, MLP ratios 3 to 4, head dimension 48 or 64, patch 14 or
16) for 224x224 ImageNet images, and has the published networks DeiT-Ti/S/B and
AutoFormer-T/S/B as :meth:`ViTSpace.named` points (:mod:`nasforge.spaces._vit_presets`).
``vit-cifar`` (:class:`ViTCifarSpace`) is a small space for 32x32 images and 10 classes (the
papers search ImageNet only; this variant is for the CPU-sized experiments).

Options beyond the papers' networks (build settings, not decisions): a convolutional stem and
ViT-ResNAS's residual spatial reductions (:mod:`nasforge.ops.vit`).

Text
----
``patch=<p>;embed=<d>;layers=<layer>,<layer>,...`` with one ``h<heads>q<qkv>m<mlp ratio>`` per
active layer (the depth is their number), e.g. DeiT-Ti::

    patch=16;embed=192;layers=h3q192m4,h3q192m4,...   (12 layers)

The layers beyond the depth follow a ``/`` when they are not all the defaults (the first
options). The Q-K-V dimension must be a multiple of the heads, ``qkv / heads`` one of
``HEAD_DIMS``. Spaces and line breaks are allowed around separators.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    UnknownNameError,
)
from nasforge.spaces._vit_presets import NETWORKS, PUBLISHED, SOURCES
from nasforge.spaces.base import DATA_SETTINGS, Decision, ValuedSpace

if TYPE_CHECKING:
    from nasforge.ops.super_vit import SuperViT
    from nasforge.ops.vit import TransformerLayerSpec, VisionTransformer, ViTConfig

__all__ = ["ViTCifarSpace", "ViTSpace", "layer_costs"]

_LAYER_RE = re.compile(r"^h([0-9]+)q([0-9]+)m([0-9]+(?:\.[0-9]+)?)$")


@spaces.register("vit")
class ViTSpace(ValuedSpace):
    """AutoFormer's vision transformer space with ViTAS's patch size (see the module docstring).

    Example:
        >>> space = ViTSpace()
        >>> arch = space.named("deit-ti")
        >>> space.values(arch)["depth"], space.values(arch)["l0_heads"]
        (12, 3)
        >>> space.parse(str(arch)) == arch
        True
        >>> costs = space.costs(arch)
        >>> round(costs["params_M"], 2), round(costs["macs_M"] / 1000, 2)
        (5.72, 1.25)
    """

    name = "vit"
    #: Side of the input images.
    IMAGE_SIZE = 224
    #: Classes of the classifier when none are given.
    DEFAULT_CLASSES = 1000
    PATCH_SIZES: tuple[int, ...] = (14, 16)
    EMBED_DIMS: tuple[int, ...] = (192, 216, 240, 320, 384, 448, 528, 576, 624, 768)
    DEPTHS: tuple[int, ...] = (12, 13, 14, 15, 16)
    HEADS: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 9, 10, 12)
    HEAD_DIMS: tuple[int, ...] = (48, 64)
    MLP_RATIOS: tuple[float, ...] = (3.0, 3.5, 4.0)
    MAX_DEPTH = 16

    @property
    def default_input(self) -> tuple[int, int]:
        """Classes and image side of the network when nothing else is asked."""
        return self.DEFAULT_CLASSES, self.IMAGE_SIZE

    # -- decisions ---------------------------------------------------------------------------
    @cached_property
    def _decisions(self) -> tuple[Decision, ...]:
        out = [
            Decision("patch_size", self.PATCH_SIZES),
            Decision("embed_dim", self.EMBED_DIMS),
            Decision("depth", self.DEPTHS),
        ]
        for i in range(self.MAX_DEPTH):
            out.append(Decision(f"l{i}_heads", self.HEADS))
            out.append(Decision(f"l{i}_head_dim", self.HEAD_DIMS))
            out.append(Decision(f"l{i}_mlp_ratio", self.MLP_RATIOS))
        return tuple(out)

    def decisions(self) -> tuple[Decision, ...]:
        return self._decisions

    def _default_layer(self) -> str:
        return f"h{self.HEADS[0]}q{self.HEADS[0] * self.HEAD_DIMS[0]}m{self.MLP_RATIOS[0]:g}"

    def _text(self, values: dict[str, Any]) -> str:
        layers = [
            f"h{values[f'l{i}_heads']}q{values[f'l{i}_heads'] * values[f'l{i}_head_dim']}"
            f"m{values[f'l{i}_mlp_ratio']:g}"
            for i in range(self.MAX_DEPTH)
        ]
        depth = values["depth"]
        text = f"patch={values['patch_size']};embed={values['embed_dim']};"
        text += "layers=" + ",".join(layers[:depth])
        if any(layer != self._default_layer() for layer in layers[depth:]):
            text += "/" + ",".join(layers[depth:])
        return text

    # -- text --------------------------------------------------------------------------------
    def parse(self, text: str) -> Architecture:
        """The architecture written as ``text`` (see the module docstring).

        Raises:
            InvalidArchitectureError: The text is malformed, names an option outside the
                space, or gives a Q-K-V dimension that its heads do not divide; the message
                says which part and what was expected.
        """
        example = self._example()
        if not isinstance(text, str):
            raise InvalidArchitectureError(
                f"Expected a {self.name} architecture string like {example!r}, got "
                f"{type(text).__name__}."
            )
        return self._read_text(text)

    def _example(self) -> str:
        """An architecture text shown in parse errors (DeiT-Ti)."""
        return NETWORKS["deit-ti"]

    def _parse_values(self, text: str) -> dict[str, Any]:
        parts = re.sub(r"\s+", "", text).split(";")
        names = ["patch", "embed", "layers"]
        keys = [part.split("=", 1)[0] for part in parts]
        if keys != names or not all("=" in part for part in parts):
            raise InvalidArchitectureError(
                f"expected the parts {', '.join(f'{n}=...' for n in names)} in that order, "
                f"separated by ';', found {', '.join(map(repr, keys))}."
            )
        bodies = dict(part.split("=", 1) for part in parts)
        values: dict[str, Any] = {}
        for key, name in (("patch", "patch_size"), ("embed", "embed_dim")):
            if not bodies[key].isdigit():
                raise InvalidArchitectureError(
                    f"{key} must be a whole number, got {key}={bodies[key]!r}."
                )
            values[name] = int(bodies[key])
        active_text, _, rest_text = bodies["layers"].partition("/")
        active = active_text.split(",") if active_text else []
        rest = rest_text.split(",") if rest_text else []
        if len(active) + len(rest) > self.MAX_DEPTH:
            raise InvalidArchitectureError(
                f"a network holds at most {self.MAX_DEPTH} layers, got {len(active) + len(rest)}."
            )
        values["depth"] = len(active)
        padding = [self._default_layer()] * (self.MAX_DEPTH - len(active) - len(rest))
        for i, token in enumerate(active + rest + padding):
            match = _LAYER_RE.match(token)
            if match is None:
                raise InvalidArchitectureError(
                    f"layer {i} {token!r} is malformed; write h<heads>q<Q-K-V dimension>"
                    "m<MLP ratio>, e.g. 'h3q192m4'."
                )
            heads, qkv, ratio = int(match.group(1)), int(match.group(2)), float(match.group(3))
            if heads < 1 or qkv % heads:
                raise InvalidArchitectureError(
                    f"layer {i} {token!r}: {heads} heads do not divide the attention (Q-K-V) "
                    f"dimension {qkv}; give a multiple of {max(heads, 1)} whose quotient is a "
                    f"head dimension of the space ({', '.join(map(str, self.HEAD_DIMS))})."
                )
            if qkv // heads not in self.HEAD_DIMS:
                raise InvalidArchitectureError(
                    f"layer {i} {token!r}: the head dimension {qkv} / {heads} = {qkv // heads} "
                    f"is not an option; choose from {', '.join(map(str, self.HEAD_DIMS))}."
                )
            values[f"l{i}_heads"] = heads
            values[f"l{i}_head_dim"] = qkv // heads
            values[f"l{i}_mlp_ratio"] = ratio
        return values

    # -- named points ------------------------------------------------------------------------
    def largest(self) -> Architecture:
        """Every decision at its last option: the largest patch (fewest tokens), the widest and
        deepest network with the most heads, head dimension and MLP ratio."""
        return self._extreme(True)

    def smallest(self) -> Architecture:
        """Every decision at its first option."""
        return self._extreme(False)

    def canonical(self, arch: Architecture) -> Architecture:
        """``arch`` with the layers beyond its depth set to the first options: they are not
        part of the network."""
        values = self.values(arch)
        for i in range(values["depth"], self.MAX_DEPTH):
            values[f"l{i}_heads"] = self.HEADS[0]
            values[f"l{i}_head_dim"] = self.HEAD_DIMS[0]
            values[f"l{i}_mlp_ratio"] = self.MLP_RATIOS[0]
        return self._from_values(values)

    def named(self, name: str) -> Architecture:
        """A published network: ``deit-ti``, ``deit-s``, ``deit-b``, ``autoformer-t``,
        ``autoformer-s``, ``autoformer-b`` (texts and sources in
        :mod:`nasforge.spaces._vit_presets`).

        Raises:
            UnknownNameError: ``name`` is not one of them (they are listed).
        """
        if name not in NETWORKS:
            raise UnknownNameError(f"published network of space {self.name!r}", name, NETWORKS)
        return self.parse(NETWORKS[name])

    def published(self, name: str) -> tuple[float, float, str]:
        """Parameters (millions), multiply-adds (billions, the papers' "FLOPs") and the
        source of :meth:`named` network ``name`` as published (224x224, 1,000 classes).

        Raises:
            UnknownNameError: ``name`` is not a published network (they are listed).
        """
        if name not in PUBLISHED:
            raise UnknownNameError(f"published network of space {self.name!r}", name, PUBLISHED)
        params, macs = PUBLISHED[name]
        return params, macs, SOURCES[name]

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """One block per encoder layer within the depth (heads, head dimension, their Q-K-V
        width, MLP ratio); the patch size and embedding width as settings."""
        from nasforge.spaces._drawing import block, strip

        values = self.values(arch)
        blocks = []
        for i in range(values["depth"]):
            heads, dim = values[f"l{i}_heads"], values[f"l{i}_head_dim"]
            choices = {"heads": heads, "head_dim": dim, "qkv": heads * dim}
            choices["mlp_ratio"] = values[f"l{i}_mlp_ratio"]
            blocks.append(block(f"layer {i}", choices, group="encoder"))
        settings = {"patch_size": values["patch_size"], "embed_dim": values["embed_dim"]}
        return strip(blocks, settings)

    # -- networks ----------------------------------------------------------------------------
    def config(
        self,
        arch: Architecture,
        *,
        num_classes: int | None = None,
        image_size: int | None = None,
        conv_stem: bool = False,
        reductions: Sequence[int] = (),
        reduction_width: int = 2,
        dropout: float = 0.0,
        resolution: int | None = None,
    ) -> ViTConfig:
        """The :class:`~nasforge.ops.vit.ViTConfig` of ``arch``'s network.

        Args:
            arch: An architecture of this space.
            num_classes: Classes of the classifier (default :attr:`DEFAULT_CLASSES`).
            image_size: Side of the input images (default :attr:`IMAGE_SIZE`); a multiple of
                the patch size.
            conv_stem: A convolutional stem before the patch embedding (even patches only).
            reductions: Layer indices (``0..depth-1``) before which a residual spatial
                reduction halves the token grid; the grid must be even there.
            reduction_width: Width multiplier of each reduction.
            dropout: Dropout before the classifier.
            resolution: Another name of ``image_size`` (the keyword of :meth:`build`, so
                that :meth:`layers` and :meth:`costs` take the same keywords as it).

        Raises:
            InvalidArchitectureError: ``arch`` belongs to another space.
            InvalidConfigError: A setting out of range (the message says which and why), or
                both ``image_size`` and ``resolution``.
        """
        from nasforge.ops.vit import LayerConfig, ViTConfig

        if resolution is not None:
            if image_size is not None and image_size != resolution:
                raise InvalidConfigError(
                    f"Give the image side once: image_size={image_size!r} and "
                    f"resolution={resolution!r} (they are the same setting)."
                )
            image_size = resolution

        values = self.values(arch)
        classes = self.DEFAULT_CLASSES if num_classes is None else num_classes
        side = self.IMAGE_SIZE if image_size is None else image_size
        patch, depth = values["patch_size"], values["depth"]
        if not isinstance(classes, int) or classes < 1:
            raise InvalidConfigError(f"num_classes must be a positive integer, got {classes!r}.")
        if not isinstance(side, int) or side < 1 or side % patch:
            raise InvalidConfigError(
                f"Patch size {patch} does not divide the image side {side!r}; use an image side "
                f"that is a multiple of {patch} (e.g. {max(1, round(side / patch)) * patch})."
            )
        if conv_stem and patch % 2:
            raise InvalidConfigError(
                f"The convolutional stem needs an even patch size, got {patch}."
            )
        if not 0.0 <= dropout < 1.0:
            raise InvalidConfigError(f"dropout must lie in [0, 1), got {dropout!r}.")
        if reduction_width < 1:
            raise InvalidConfigError(f"reduction_width must be >= 1, got {reduction_width!r}.")
        marks = tuple(sorted(set(reductions)))
        if len(marks) != len(tuple(reductions)) or any(r < 0 or r >= depth for r in marks):
            raise InvalidConfigError(
                f"reductions {list(reductions)} must be distinct layer indices in 0..{depth - 1} "
                f"(the network of {arch.text!r} has {depth} layers)."
            )
        width, grid, layers = values["embed_dim"], side // patch, []
        for i in range(depth):
            if i in marks:
                if grid % 2:
                    raise InvalidConfigError(
                        f"A spatial reduction before layer {i} needs an even token grid, got "
                        f"{grid}x{grid}; move or drop it, or change the image size."
                    )
                width, grid = width * reduction_width, grid // 2
            heads = values[f"l{i}_heads"]
            mlp = int(values[f"l{i}_mlp_ratio"] * width)
            layers.append(LayerConfig(heads, heads * values[f"l{i}_head_dim"], mlp))
        return ViTConfig(
            image_size=side,
            patch_size=patch,
            embed_dim=values["embed_dim"],
            layers=tuple(layers),
            num_classes=classes,
            conv_stem=conv_stem,
            reductions=marks,
            reduction_width=reduction_width,
            dropout=dropout,
        )

    def layers(self, arch: Architecture, **settings: Any) -> tuple[TransformerLayerSpec, ...]:
        """The layers of ``arch``'s network in order (:meth:`config`'s ``layer_specs()``);
        ``settings`` are the keywords of :meth:`config`."""
        return self.config(arch, **settings).layer_specs()

    def layer_specs(self, **settings: Any) -> tuple[TransformerLayerSpec, ...]:
        """Every distinct layer a network of the space can have at these settings (those of
        :meth:`config`), without enumerating networks: for each patch size and embedding
        dimension, the patch embedding, the head, any reductions, and each layer place with
        every number of heads, head dimension and MLP ratio. What a per-layer latency table
        of the space measures; ``settings`` are the keywords of :meth:`config`.

        Raises:
            InvalidConfigError: A setting out of range for some patch size (e.g. an image
                side that a patch size does not divide).
        """
        from dataclasses import replace

        seen: dict[str, TransformerLayerSpec] = {}
        deepest = {
            d.name: self.MAX_DEPTH if d.name == "depth" else d.options[0] for d in self._decisions
        }
        for patch in self.PATCH_SIZES:
            for embed in self.EMBED_DIMS:
                arch = self._from_values({**deepest, "patch_size": patch, "embed_dim": embed})
                template = self.layers(arch, **settings)
                for spec in template:
                    if spec.kind != "encoder":
                        seen.setdefault(spec.key, spec)
                        continue
                    for heads in self.HEADS:
                        for head_dim in self.HEAD_DIMS:
                            for ratio in self.MLP_RATIOS:
                                at = replace(
                                    spec, heads=heads, qkv=heads * head_dim,
                                    mlp=int(ratio * spec.embed),
                                )  # fmt: skip
                                seen.setdefault(at.key, at)
        return tuple(seen.values())

    def build(
        self,
        arch: Architecture,
        *,
        num_classes: int | None = None,
        resolution: int | None = None,
        conv_stem: bool = False,
        reductions: Sequence[int] = (),
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> VisionTransformer:
        """The network of ``arch`` (:class:`~nasforge.ops.vit.VisionTransformer` of
        :meth:`config`) for ``resolution`` x ``resolution`` images (default
        :attr:`IMAGE_SIZE`); the other data settings of :meth:`presets` (``data_fraction``,
        ``batch_size``, ``epochs``) are accepted and ignored.

        Raises:
            InvalidConfigError: An unknown keyword argument or a setting out of range.
        """
        from nasforge.ops.vit import VisionTransformer

        unknown = sorted(set(kwargs) - DATA_SETTINGS)
        if unknown:
            raise InvalidConfigError(
                f"{type(self).__name__}.build() got unexpected keyword argument(s) {unknown}; "
                "it takes num_classes, resolution, conv_stem, reductions and dropout."
            )
        config = self.config(
            arch,
            num_classes=num_classes,
            image_size=resolution,
            conv_stem=conv_stem,
            reductions=reductions,
            dropout=dropout,
        )
        return VisionTransformer(config)

    def costs(self, arch: Architecture, **settings: Any) -> dict[str, float]:
        """Parameters and multiply-adds (millions) of ``arch``'s network, in closed form
        (no network is built): equal to :func:`nasforge.hardware.count_flops` of
        :meth:`build`'s network. ``settings`` are the keywords of :meth:`config`
        (``num_classes``, ``image_size``, ``conv_stem``, ``reductions``, ``reduction_width``).

        Returns:
            ``{"params_M": ..., "macs_M": ...}``.
        """
        settings.pop("dropout", None)  # free
        specs = self.layers(arch, **settings)
        params = macs = 0
        for spec in specs:
            p, m = layer_costs(spec)
            params, macs = params + p, macs + m
        return {"params_M": params / 1e6, "macs_M": macs / 1e6}

    def supernet(self, **settings: Any) -> SuperViT:
        """The super-transformer of the space (:class:`nasforge.ops.super_vit.SuperViT`) with
        ``settings`` (its keywords; the data settings of :meth:`presets` are left out)."""
        from nasforge.ops.super_vit import SuperViT

        kept = {k: v for k, v in settings.items() if k not in DATA_SETTINGS}
        return SuperViT(self, **kept)

    def presets(self) -> dict[str, dict[str, Any]]:
        """``paper`` and ``search``: AutoFormer's ImageNet setting (224x224, batch 1024, the
        supernet trained for 500 epochs); ``reduced``: 224x224 on a hundredth of the training
        images with batch 64 for 2 epochs (a smoke run; the CPU experiments use
        ``vit-cifar``)."""
        paper = {"resolution": 224, "batch_size": 1024, "epochs": 500, "dropout": 0.0}
        return {
            "paper": dict(paper),
            "search": dict(paper),
            "reduced": {
                "resolution": 224,
                "data_fraction": 0.01,
                "batch_size": 64,
                "epochs": 2,
                "dropout": 0.0,
            },
        }


@spaces.register("vit-cifar")
class ViTCifarSpace(ViTSpace):
    """:class:`ViTSpace` for 32x32 images and 10 classes, with small dimensions: patches of 4
    or 8, widths 64 to 128, 4 to 6 layers of 2 or 4 heads of dimension 16 or 32. It has no
    published networks (:meth:`named` lists those of ``vit``).

    Example:
        >>> space = ViTCifarSpace()
        >>> str(space.smallest())
        'patch=4;embed=64;layers=h2q32m2,h2q32m2,h2q32m2,h2q32m2'
    """

    name = "vit-cifar"
    IMAGE_SIZE = 32
    DEFAULT_CLASSES = 10
    PATCH_SIZES: tuple[int, ...] = (4, 8)
    EMBED_DIMS: tuple[int, ...] = (64, 96, 128)
    DEPTHS: tuple[int, ...] = (4, 5, 6)
    HEADS: tuple[int, ...] = (2, 4)
    HEAD_DIMS: tuple[int, ...] = (16, 32)
    MLP_RATIOS: tuple[float, ...] = (2.0, 3.0, 4.0)
    MAX_DEPTH = 6

    def _example(self) -> str:
        return str(self.smallest())

    def named(self, name: str) -> Architecture:
        """No published network is a point of this space.

        Raises:
            UnknownNameError: Always; the message names the ``vit`` space's networks.
        """
        raise UnknownNameError(
            "published network of space 'vit-cifar' (it has none; these are of space 'vit')",
            name,
            NETWORKS,
        )

    def published(self, name: str) -> tuple[float, float, str]:
        """No published network is a point of this space.

        Raises:
            UnknownNameError: Always; the message names the ``vit`` space's networks.
        """
        raise UnknownNameError(
            "published network of space 'vit-cifar' (it has none; these are of space 'vit')",
            name,
            PUBLISHED,
        )

    def presets(self) -> dict[str, dict[str, Any]]:
        """``paper`` and ``search``: 32x32 CIFAR-10 with batch 128 for 300 epochs;
        ``reduced``: 32x32 on a tenth of the training images with batch 64 for 6 epochs, what
        a CPU trains in minutes."""
        paper = {"resolution": 32, "batch_size": 128, "epochs": 300, "dropout": 0.0}
        return {
            "paper": dict(paper),
            "search": dict(paper),
            "reduced": {
                "resolution": 32,
                "data_fraction": 0.1,
                "batch_size": 64,
                "epochs": 6,
                "dropout": 0.0,
            },
        }


def layer_costs(spec: TransformerLayerSpec) -> tuple[int, int]:
    """Parameters and multiply-adds of one vision-transformer layer built by
    :func:`nasforge.ops.vit.build_layer`, in closed form, counted as
    :func:`nasforge.hardware.count_flops` counts them (matrix products and convolutions;
    norms, activations, softmax, pooling and sums are free; biases are parameters only).

    Raises:
        InvalidConfigError: A language-model layer (``token_embed``, ``lm_head``).
    """
    d, n = spec.embed, spec.seq
    if spec.kind == "patch_embed":
        side, channels, kernel, params, macs = spec.resolution, spec.in_channels, spec.patch, 0, 0
        if spec.conv_stem:
            w = max(8, d // 4)
            half = (side - 1) // 2 + 1  # a 3x3 convolution of stride 2 and padding 1
            params += 9 * (channels * w + 2 * w * w) + 3 * 2 * w  # three convolutions, BN
            macs += 9 * (channels * w * side * side + w * w * half * half + w * w * half * half)
            side, channels, kernel = half, w, spec.patch // 2
        grid = side // kernel
        params += channels * kernel * kernel * d + d + d + (grid * grid + 1) * d
        macs += channels * kernel * kernel * d * grid * grid
        return params, macs
    if spec.kind == "encoder":
        q, m = spec.qkv, spec.mlp
        params = 4 * d + (d * 3 * q + 3 * q) + (q * d + d) + (d * m + m) + (m * d + d)
        macs = n * (3 * d * q + q * d + 2 * d * m) + 2 * n * n * q
        return params, macs
    if spec.kind == "reduction":
        o, cells = spec.out, (n - 1) // 4
        params = 2 * d + (4 * d * o + o) + d * o + (d * o + o)
        macs = 4 * d * o * cells + d * o * cells + d * o
        return params, macs
    if spec.kind == "head":
        return 2 * d + d * spec.out + spec.out, d * spec.out
    raise InvalidConfigError(
        f"layer_costs() covers vision-transformer layers, not {spec.kind!r} (a language "
        "model's layer)."
    )
