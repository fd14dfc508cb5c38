"""The FBNet search space: a fixed macro-architecture with one candidate block per layer.

Wu, B., Dai, X., Zhang, P., Wang, Y., Sun, F., Wu, Y., Tian, Y., Vajda, P., Jia, Y. and
Keutzer, K. "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural
Architecture Search." CVPR 2019, arXiv:1812.03443.

Macro-architecture (Table 1)
----------------------------
A 3x3 convolution to 16 channels with stride 2, then 22 searchable layers in 7 stages, then
a 1x1 convolution to 1984 channels, global average pooling and the classifier::

    stage   1    2    3    4    5    6    7
    width  16   24   32   64  112  184  352
    layers  1    4    4    4    4    4    1
    stride  1    2    2    2    1    2    1      (of the stage's first layer; the others 1)

so the network's strides multiply to 32 (224x224 inputs end at 7x7).

Candidate blocks (Table 2, :data:`BLOCKS`)
------------------------------------------
``k3_e1 k3_e1_g2 k3_e3 k3_e6 k5_e1 k5_e1_g2 k5_e3 k5_e6 skip``: ``kK_eE`` is the inverted
residual of Figure 3: a 1x1 convolution expanding to ``E`` times the input width, a ``K x K``
depthwise convolution with the layer's stride, a linear 1x1 projection, batch norm after each
and ReLU after the first two, the input added when the stride is 1 and the widths are equal.
Unlike MobileNetV2, the expansion convolution is kept at ``E = 1``
(``LayerSpec.always_expand``): the authors' builder (facebookresearch/maskrcnn-benchmark
``modeling/backbone/fbnet_builder.py``, ``IRFBlock``) always has it, and FBNet-A/B/C have their
released multiply-adds only with it. ``_g2`` makes both 1x1 convolutions group convolutions
of 2 groups, with ShuffleNet's channel shuffle after the first (Section 3.2; ``pw_group=2``,
``shuffle_type="mid"`` in that builder). The blocks are built by
:mod:`nasforge.ops.mobile` (``LayerSpec(kind="mbconv", groups=..., always_expand=True)``).

``skip`` feeds the input to the output without computation (Section 3.2), which removes the
layer (it is absent from :meth:`FBNetSpace.layers`) wherever the layer keeps the shape: every
layer but the first of stages 2..7, and stage 1's layer (16 to 16 channels, stride 1). At the
first layer of stages 2..7 the width (and for 2, 3, 4, 6 the resolution) changes, so an
identity cannot stand there; the authors' builder then puts a 1x1 convolution with the
layer's stride, batch norm and ReLU (its ``Identity`` module), and nasforge does the same: a
``LayerSpec(kind="stem", kernel=1)`` (:mod:`nasforge.ops.mobile` builds a stem as exactly
that convolution, batch norm and activation).

Head width
----------
Table 1 ends with a 1984-channel 1x1 convolution. The authors' FBNet-A ends with 1504 channels
(facebookresearch/mobile-vision ``mobile_cv/arch/fbnet_v2/fbnet_modeldef_cls_fbnet.py``), and
only so does it have its published 4.3M parameters and 249M multiply-adds (with 1984: 4.97M
and 259M). nasforge therefore adds a 23rd decision, ``head``, with the widths 1984 (Table 1,
the first option) and 1504; a search that keeps the paper's space keeps it at 1984.

Choices and text
----------------
``Architecture.choices`` holds 23 integers: the index in :data:`BLOCKS` of each layer's block,
layer 1 first, then the index of the head width in :data:`HEAD_WIDTHS`. ``str(arch)`` writes
the stages separated by ``|``, the layers of a stage by ``-``, and the head last; FBNet-B is::

    k3_e1|k3_e6-k5_e1-k3_e1-k3_e1|k5_e6-k5_e3-k3_e6-k5_e6|k5_e6-k5_e1-skip-k5_e3|...|k3_e6|head1984

:meth:`FBNetSpace.parse` also reads the 22 blocks as one group, blocks separated by ``-``,
commas or spaces, and text without the head group (head 1984).

Canonical form
--------------
An identity ``skip`` leaves no layer, so two architectures build the same network when every
stage has the same non-identity blocks in the same order at the same shapes. Within a stage,
every layer after the first has the stage's width at its input and output and stride 1, so
the non-``skip`` blocks among them can sit at any of those positions; :meth:`canonical`
moves them to the front of the stage, in order, and the skips to the back. Nothing moves
across stages or into a stage's first layer: there a block sees another shape (and ``skip``
is a convolution). Different blocks compute different functions (their weights differ in
shape), so this is the whole equivalence at Table 1's widths. (A width multiplier small
enough to round the width of stage 5 or 7, whose first layers have stride 1, to the previous
stage's makes that first ``skip`` an identity too; the canonical form leaves those apart, so
it never merges architectures that differ at some setting.)

Published networks (:meth:`FBNetSpace.named`)
---------------------------------------------
``fbnet-a``, ``fbnet-b`` and ``fbnet-c`` (the paper's Figure 4), read from the authors'
definitions (facebookresearch/mobile-vision ``fbnet_modeldef_cls_fbnet.py``) and checked
against the costs of the authors' released networks (mobile-vision ``README.md`` and
``mobile_cv/model_zoo/models/model_info/fbnet/model_info.json``): FBNet-A has exactly their
249.921848M multiply-adds. Where that definition and a third-party transcription of
Figure 4 (SKKU-ESLAB/Auto-Compression ``pruning/cifar10_fbnet/fbnet_building_blocks/
fbnet_modeldef.py``) disagree, nasforge takes the block under which the released figures
hold: FBNet-A's layer 15 is ``k5_e3`` (the definition; ``k5_e1`` gives 239M), FBNet-B's
layer 11 is ``k5_e1`` (the transcription; the definition's ``k5_e6`` gives 306M for the
released 295.6M). FBNet-B then has the released 4.8M parameters, not the 4.5M of the paper's
Table 3.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    UnknownNameError,
    unknown_name_message,
)
from nasforge.spaces.base import Decision, SearchSpace

if TYPE_CHECKING:
    from nasforge.ops.mobile import LayerSpec, MobileNetwork

__all__ = [
    "BLOCKS",
    "BLOCK_SHAPES",
    "HEAD_WIDTHS",
    "N_LAYERS",
    "PUBLISHED",
    "STAGES",
    "FBNetSpace",
]

#: The 9 candidate blocks of Table 2, in its order: ``(kernel, expansion, groups)``;
#: ``skip`` is ``None``.
BLOCK_SHAPES: Mapping[str, tuple[int, int, int] | None] = MappingProxyType(
    {
        "k3_e1": (3, 1, 1),
        "k3_e1_g2": (3, 1, 2),
        "k3_e3": (3, 3, 1),
        "k3_e6": (3, 6, 1),
        "k5_e1": (5, 1, 1),
        "k5_e1_g2": (5, 1, 2),
        "k5_e3": (5, 3, 1),
        "k5_e6": (5, 6, 1),
        "skip": None,
    }
)
BLOCKS: tuple[str, ...] = tuple(BLOCK_SHAPES)
SKIP = BLOCKS.index("skip")
#: The stages of Table 1: ``(width, layers, stride of the first layer)``.
STAGES: tuple[tuple[int, int, int], ...] = (
    (16, 1, 1),
    (24, 4, 2),
    (32, 4, 2),
    (64, 4, 2),
    (112, 4, 1),
    (184, 4, 2),
    (352, 1, 1),
)
#: Width of the stem (Table 1: a 3x3 convolution to 16 channels, stride 2).
STEM_WIDTH = 16
#: Widths of the head's 1x1 convolution: Table 1's 1984, and FBNet-A's 1504.
HEAD_WIDTHS: tuple[int, ...] = (1984, 1504)
N_LAYERS = sum(depth for _, depth, _ in STAGES)
#: For each layer: (stage index, first layer of its stage).
_LAYOUT: tuple[tuple[int, bool], ...] = tuple(
    (stage, j == 0) for stage, (_, depth, _) in enumerate(STAGES) for j in range(depth)
)

#: The published networks: 22 blocks and the head width (see the module docstring).
PUBLISHED: Mapping[str, tuple[tuple[str, ...], int]] = MappingProxyType(
    {
        "fbnet-a": (
            (
                "skip",
                *("k3_e3", "k3_e1", "skip", "skip"),
                *("k5_e6", "k3_e3", "k5_e1", "k3_e3"),
                *("k5_e6", "k5_e3", "k5_e1_g2", "k5_e6"),
                *("k3_e6", "k5_e1_g2", "k5_e3", "k3_e1_g2"),
                *("k5_e6", "k5_e6", "k5_e3", "k5_e6"),
                "k5_e6",
            ),
            1504,
        ),
        "fbnet-b": (
            (
                "k3_e1",
                *("k3_e6", "k5_e1", "k3_e1", "k3_e1"),
                *("k5_e6", "k5_e3", "k3_e6", "k5_e6"),
                *("k5_e6", "k5_e1", "skip", "k5_e3"),
                *("k5_e6", "k3_e1", "k5_e1", "k5_e3"),
                *("k5_e6", "k5_e1", "k5_e6", "k5_e6"),
                "k3_e6",
            ),
            1984,
        ),
        "fbnet-c": (
            (
                "k3_e1",
                *("k3_e6", "skip", "k3_e1", "k3_e1"),
                *("k5_e6", "k5_e3", "k5_e6", "k3_e6"),
                *("k5_e6", "k5_e3", "k5_e6", "k5_e6"),
                *("k5_e6", "k5_e6", "k5_e6", "k5_e3"),
                *("k5_e6", "k5_e6", "k5_e6", "k5_e6"),
                "k3_e6",
            ),
            1984,
        ),
    }
)

_HEAD_RE = re.compile(r"^head\s*=?\s*(\d+)$")
#: What may separate the layers of a stage in text: ``-`` (as written), commas or spaces.
_SEPARATOR = re.compile(r"[\s,-]+")


@spaces.register("fbnet")
class FBNetSpace(SearchSpace):
    """FBNet's layer-wise space (see the module docstring): 22 layers of 9 candidate blocks
    and the head width, ``2 * 9**22`` architectures (about 2.0e21).

    Every decision is independent, so sampling, mutation (one layer's block changed),
    crossover, neighbours (``22 * 8 + 1 = 177``) and the one-hot encoding come from
    :meth:`decisions`.

    Example:
        >>> space = FBNetSpace()
        >>> arch = space.named("fbnet-c")
        >>> str(arch).split("|")[:2]
        ['k3_e1', 'k3_e6-skip-k3_e1-k3_e1']
        >>> space.parse(str(arch)) == arch
        True
        >>> specs = space.layers(arch)
        >>> len(specs), specs[0].kind, specs[-1].kind  # stem, 21 blocks (one skip), head
        (23, 'stem', 'head')
        >>> str(space.canonical(arch)).split("|")[1]  # the identity skip moved back
        'k3_e6-k3_e1-k3_e1-skip'
    """

    name = "fbnet"
    #: ``(num_classes, resolution)`` of the published networks (ImageNet at 224x224).
    default_input = (1000, 224)

    # -- construction ------------------------------------------------------------------------
    def decisions(self) -> tuple[Decision, ...]:
        """``layer1`` .. ``layer22`` over :data:`BLOCKS`, then ``head`` over
        :data:`HEAD_WIDTHS`."""
        layers = tuple(Decision(f"layer{i + 1}", BLOCKS) for i in range(N_LAYERS))
        return (*layers, Decision("head", HEAD_WIDTHS))

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = self.check_choices(choices)
        return Architecture(self.name, values, _text(values))

    def parse(self, text: str) -> Architecture:
        if not isinstance(text, str):
            raise InvalidArchitectureError(
                f"Expected an FBNet architecture string like {_EXAMPLE!r}, got "
                f"{type(text).__name__}."
            )
        groups = [group.strip() for group in text.strip().split("|")]
        head = HEAD_WIDTHS[0]
        match = _HEAD_RE.match(groups[-1]) if groups else None
        if match is not None:
            head = int(match.group(1))
            groups = groups[:-1]
            if head not in HEAD_WIDTHS:
                raise InvalidArchitectureError(
                    f"In FBNet architecture {text!r}: head width {head} is not one of "
                    f"{', '.join(map(str, HEAD_WIDTHS))} (Table 1's 1984, FBNet-A's 1504)."
                )
        stages = [[name for name in _SEPARATOR.split(group) if name] for group in groups]
        if len(stages) == 1:
            names = stages[0]
            if len(names) != N_LAYERS:
                raise InvalidArchitectureError(
                    f"An FBNet architecture has {N_LAYERS} layers, got {len(names)} in "
                    f"{text!r}; write one block per layer, e.g. {_EXAMPLE!r}."
                )
        else:
            depths = [depth for _, depth, _ in STAGES]
            if [len(stage) for stage in stages] != depths:
                raise InvalidArchitectureError(
                    f"An FBNet architecture has {len(STAGES)} stages of "
                    f"{', '.join(map(str, depths))} layers separated by '|', got "
                    f"{len(stages)} groups of {', '.join(str(len(s)) for s in stages)} "
                    f"in {text!r}. Example: {_EXAMPLE!r}."
                )
            names = [name for stage in stages for name in stage]
        for position, name in enumerate(names):
            if name not in BLOCK_SHAPES:
                raise InvalidArchitectureError(
                    f"In FBNet architecture {text!r}, layer {position + 1}: "
                    + unknown_name_message("block", name, BLOCKS)
                )
        return self.from_choices([*(BLOCKS.index(n) for n in names), HEAD_WIDTHS.index(head)])

    def named(self, name: str) -> Architecture:
        """A published network: ``"fbnet-a"``, ``"fbnet-b"`` or ``"fbnet-c"``
        (:data:`PUBLISHED`).

        Raises:
            UnknownNameError: ``name`` is not one of them.
        """
        if name not in PUBLISHED:
            raise UnknownNameError("FBNet network", name, PUBLISHED)
        blocks, head = PUBLISHED[name]
        return self.from_choices([*(BLOCKS.index(b) for b in blocks), HEAD_WIDTHS.index(head)])

    def blocks(self, arch: Architecture) -> tuple[str, ...]:
        """The 22 block names of ``arch``, layer 1 first."""
        return tuple(BLOCKS[c] for c in self.check(arch).choices[:N_LAYERS])

    def canonical(self, arch: Architecture) -> Architecture:
        """The representative of the architectures that build the same network as ``arch``:
        in each stage, the blocks after the first with the ``skip`` layers moved behind
        the others (see the module docstring)."""
        choices = list(self.check(arch).choices)
        start = 0
        for _, depth, _ in STAGES:
            rest = choices[start + 1 : start + depth]
            kept = [c for c in rest if c != SKIP]
            choices[start + 1 : start + depth] = kept + [SKIP] * (len(rest) - len(kept))
            start += depth
        return self.from_choices(choices)

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """One block per layer, labelled with Table 1's stage and the layer's decision number
        (``skip`` marked skipped where it is the identity, a 1x1 convolution elsewhere), then
        the head."""
        from nasforge.spaces._drawing import block, strip

        choices = self.check(arch).choices
        blocks = []
        for n, ((stage, first), c) in enumerate(zip(_LAYOUT, choices[:N_LAYERS], strict=True)):
            shape, identity = BLOCK_SHAPES[BLOCKS[c]], c == SKIP and (stage == 0 or not first)
            values = dict(zip(("kernel", "expand", "groups"), shape or (1,), strict=False))
            label, group = f"stage {stage + 1} · layer {n + 1}", f"s{stage + 1}"
            choice = {"block": BLOCKS[c], **({} if identity else values)}
            blocks.append(block(label, choice, group=group, skipped=identity))
        head = block("head", {"width": HEAD_WIDTHS[choices[N_LAYERS]]}, group="head")
        return strip([*blocks, head])

    # -- networks ----------------------------------------------------------------------------
    def layers(
        self,
        arch: Architecture,
        *,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        resolution: int = 224,
        stem_stride: int = 2,
        first_stride: int = 2,
        dropout: float = 0.0,
    ) -> tuple[LayerSpec, ...]:
        """The layers of ``arch``'s network, in order: the stem, one spec per layer whose
        block is not an identity ``skip`` (a ``skip`` that changes the shape is a 1x1
        convolution spec of kind ``"stem"``, see the module docstring), and the head.

        Args:
            arch: An architecture of this space.
            num_classes: Outputs of the classifier.
            width_mult: Multiplier of the stem's and the stages' widths, each rounded to a
                multiple of 8 (:func:`nasforge.ops.mobile.make_divisible`; the widths of
                Table 1 are multiples of 8, so 1.0 keeps them); the head's width is scaled
                only above 1.0, as in MobileNetV2.
            resolution: Side of the square input; a multiple of the strides' product (32
                with Table 1's strides, 8 with both settings below at 1).
            stem_stride: The stem's stride: 2 (Table 1) or 1 for small images.
            first_stride: The stride of stage 2's first layer (Table 1: 2), 1 for small
                images. The CIFAR presets set both to 1 (32x32 inputs end at 4x4), as the
                CIFAR versions of MobileNetV2 do and as the ``mobilenet`` space does; FBNet
                itself reports ImageNet networks only.
            dropout: Dropout before the classifier (the authors' released networks have
                none).

        Raises:
            InvalidConfigError: A setting out of range, or a resolution the strides do not
                divide (the nearest valid ones are named).
        """
        choices = self.check(arch).choices
        stem, candidates, heads = self._plan(
            num_classes, width_mult, resolution, stem_stride, first_stride, dropout
        )
        blocks = [options[c] for options, c in zip(candidates, choices[:N_LAYERS], strict=True)]
        return (stem, *(spec for spec in blocks if spec is not None), heads[choices[N_LAYERS]])

    def layer_candidates(self, **settings: Any) -> tuple[tuple[LayerSpec | None, ...], ...]:
        """For each of the 22 layers, the spec of each block of :data:`BLOCKS` there
        (``None`` where the block is an identity ``skip``): the shape of a layer does not
        depend on the other layers' blocks, so these are every layer a network of the space
        can have (what a per-layer latency table measures and a supernet holds). The stem
        and the heads are the first and last entries of :meth:`layers`.

        Args:
            settings: Those of :meth:`layers` (``num_classes`` and ``dropout`` do not matter
                here).
        """
        return tuple(self._plan(**self._settings(settings, "layer_candidates"))[1])

    @staticmethod
    def _settings(settings: Mapping[str, Any], caller: str) -> dict[str, Any]:
        """``settings`` over the defaults of :meth:`layers`; unknown keys refused."""
        unknown = sorted(set(settings) - set(_SETTINGS))
        if unknown:
            raise InvalidConfigError(
                f"FBNetSpace.{caller}() got unknown setting(s) {unknown}; it takes "
                f"{', '.join(_SETTINGS)}."
            )
        return {**_SETTINGS, **settings}

    def layer_specs(self, **settings: Any) -> tuple[LayerSpec, ...]:
        """Every distinct layer a network of the space has at ``settings`` (those of
        :meth:`layers`): the stem, each layer's candidates (:meth:`layer_candidates`) and the
        heads, without enumerating networks (what
        :func:`nasforge.hardware.layer_measure.all_specs` measures for a latency table)."""
        stem, candidates, heads = self._plan(**self._settings(settings, "layer_specs"))
        specs = [stem, *(s for options in candidates for s in options if s is not None), *heads]
        return tuple(dict.fromkeys(specs))

    def _plan(
        self,
        num_classes: int,
        width_mult: float,
        resolution: int,
        stem_stride: int,
        first_stride: int,
        dropout: float,
    ) -> tuple[LayerSpec, list[tuple[LayerSpec | None, ...]], tuple[LayerSpec, ...]]:
        """The stem, each layer's candidate specs and the head of each head width."""
        from nasforge.ops.mobile import LayerSpec, make_divisible

        _check_settings(num_classes, width_mult, resolution, stem_stride, first_stride, dropout)
        width = make_divisible(STEM_WIDTH * width_mult)
        stem = LayerSpec("stem", 3, width, 3, stride=stem_stride, resolution=resolution)
        size = stem.out_resolution
        candidates: list[tuple[LayerSpec | None, ...]] = []
        for stage, first in _LAYOUT:
            base, _, stage_stride = STAGES[stage]
            out = make_divisible(base * width_mult)
            stride = (first_stride if stage == 1 else stage_stride) if first else 1
            options: list[LayerSpec | None] = []
            for shape in BLOCK_SHAPES.values():
                if shape is None and stride == 1 and out == width:
                    options.append(None)  # the identity: no layer
                elif shape is None:
                    options.append(LayerSpec("stem", width, out, 1, stride=stride, resolution=size))
                else:
                    kernel, expansion, groups = shape
                    options.append(
                        LayerSpec(
                            "mbconv",
                            width,
                            out,
                            kernel,
                            expansion,
                            stride,
                            resolution=size,
                            groups=groups,
                            always_expand=True,
                        )
                    )
            candidates.append(tuple(options))
            width, size = out, -(-size // stride)
        heads = tuple(
            LayerSpec(
                "head",
                width,
                num_classes,
                1,
                resolution=size,
                head_conv=make_divisible(head * max(1.0, width_mult)),
                dropout=dropout,
            )
            for head in HEAD_WIDTHS
        )
        return stem, candidates, heads

    def build(
        self,
        arch: Architecture,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        resolution: int = 224,
        stem_stride: int = 2,
        first_stride: int = 2,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> MobileNetwork:
        """The network of ``arch`` (:class:`nasforge.ops.mobile.MobileNetwork` of
        :meth:`layers`, with the same settings).

        Raises:
            InvalidConfigError: An unknown keyword, or a setting :meth:`layers` refuses.
        """
        if kwargs:
            raise InvalidConfigError(
                f"FBNetSpace.build() got unknown argument(s) {sorted(kwargs)}; it takes "
                "num_classes, width_mult, resolution, stem_stride, first_stride, dropout."
            )
        from nasforge.ops.mobile import MobileNetwork

        return MobileNetwork(
            self.layers(
                arch,
                num_classes=num_classes,
                width_mult=width_mult,
                resolution=resolution,
                stem_stride=stem_stride,
                first_stride=first_stride,
                dropout=dropout,
            )
        )

    def supernet(self, **settings: Any) -> Any:
        """The supernet of ProxylessNAS and FBNet on this space
        (:class:`nasforge.ops.mobile_search_net.FBNetSearchNet`): the settings of
        :meth:`layers` (default its ``search`` preset), plus ``head`` (the head width)."""
        from nasforge.ops.mobile_search_net import FBNetSearchNet

        return FBNetSearchNet(self, **settings)

    def presets(self) -> dict[str, dict[str, Any]]:
        """``paper``: Table 1's network at 224x224; ``search``: the same network, which the
        paper's search trains as its supernet on 100 ImageNet classes (Section 4.1);
        ``reduced``: a CIFAR-10 network a CPU trains in minutes (width 0.25, stem and stage 2
        at stride 1, 32x32 images, a tenth of the training images, 10 epochs); ``cifar``: the
        same at width 0.5 on all training images for the recipe's epochs. The settings are
        those of the ``mobilenet`` space's presets."""
        cifar = {"resolution": 32, "stem_stride": 1, "first_stride": 1}
        return {
            "paper": {"width_mult": 1.0, "resolution": 224},
            "search": {"width_mult": 1.0, "resolution": 224},
            "reduced": {
                "width_mult": 0.25,
                **cifar,
                "data_fraction": 0.1,
                "batch_size": 64,
                "epochs": 10,
            },
            "cifar": {"width_mult": 0.5, **cifar},
        }


#: The settings of :meth:`FBNetSpace.layers` and their defaults.
_SETTINGS: Mapping[str, Any] = MappingProxyType(
    {
        "num_classes": 1000,
        "width_mult": 1.0,
        "resolution": 224,
        "stem_stride": 2,
        "first_stride": 2,
        "dropout": 0.0,
    }
)


def _check_settings(
    num_classes: Any,
    width_mult: Any,
    resolution: Any,
    stem_stride: Any,
    first_stride: Any,
    dropout: Any,
) -> None:
    """Refuse settings the network cannot be built with, saying why."""
    if not _positive_int(num_classes):
        raise InvalidConfigError(f"num_classes must be a positive integer, got {num_classes!r}.")
    if (
        isinstance(width_mult, bool)
        or not isinstance(width_mult, (int, float))
        or not math.isfinite(width_mult)
        or width_mult <= 0
    ):
        raise InvalidConfigError(
            f"width_mult must be a positive number (1.0: Table 1's widths), got {width_mult!r}."
        )
    for label, value in (("stem_stride", stem_stride), ("first_stride", first_stride)):
        if value not in (1, 2) or isinstance(value, bool):
            raise InvalidConfigError(
                f"{label} must be 2 (Table 1) or 1 (small images), got {value!r}."
            )
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise InvalidConfigError(f"dropout must be a number in [0, 1), got {dropout!r}.")
    strides = [stem_stride, *(first_stride if i == 1 else s for i, (_, _, s) in enumerate(STAGES))]
    total = math.prod(strides)
    if not _positive_int(resolution) or resolution % total:
        below = max(total, resolution // total * total) if _positive_int(resolution) else total
        valid = sorted({below, below + total})
        raise InvalidConfigError(
            f"resolution must be a positive multiple of {total}, the product of the FBNet "
            f"network's strides (stem {stem_stride}, stages "
            f"{' x '.join(map(str, strides[1:]))}), got {resolution!r}; "
            f"use e.g. {' or '.join(map(str, valid))}."
        )


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _text(choices: Sequence[int]) -> str:
    groups, start = [], 0
    for _, depth, _ in STAGES:
        groups.append("-".join(BLOCKS[c] for c in choices[start : start + depth]))
        start += depth
    return "|".join(groups) + f"|head{HEAD_WIDTHS[choices[N_LAYERS]]}"


_EXAMPLE = _text([*(BLOCKS.index(b) for b in PUBLISHED["fbnet-c"][0]), 0])
