"""The MobileNet-style macro search space: MobileNetV2/V3, MnasNet, ProxylessNAS and
Single-Path NAS networks as points of one space of inverted-residual (MBConv) blocks.

Sandler, M. et al. "MobileNetV2: Inverted Residuals and Linear Bottlenecks." CVPR 2018,
arXiv:1801.04381; Howard, A. et al. "Searching for MobileNetV3." ICCV 2019, arXiv:1905.02244;
Tan, M. et al. "MnasNet: Platform-Aware Neural Architecture Search for Mobile." CVPR 2019,
arXiv:1807.11626 (its factorized hierarchical space: per-stage depth and width, per-layer
kernel, expansion, squeeze-and-excitation and skip); Cai, H., Zhu, L. and Han, S.
"ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware." ICLR 2019,
arXiv:1812.00332 (kernels 3/5/7, expansions 3/6, zero layers); Stamoulis, D. et al.
"Single-Path NAS: Designing Hardware-Efficient ConvNets in less than 4 Hours." ECML-PKDD
2019, arXiv:1904.02877.

Skeleton
--------
One fixed skeleton holds every published network above (:meth:`MobileNetSpace.named`):

* stem: 3x3 convolution, stride 2, width :data:`STEM_WIDTHS`, activation decided;
* stage 0: one block, stride 1, expansion 1, width :data:`S0_WIDTHS`, kernel, SE variant
  and activation decided;
* stages 1..6: strides :data:`STAGE_STRIDES`, widths :data:`STAGE_WIDTHS`, depths
  :data:`DEPTHS` (stage 6 may be absent, as in MobileNetV3-Large); the first block of a
  stage has its stride and changes the width, the others have stride 1 and a residual;
* per block of stages 1..6: kernel :data:`KERNELS`, expansion :data:`EXPANSIONS`,
  squeeze-and-excitation :data:`SE_OPTIONS` (MnasNet's and MobileNetV3's variants, see
  :mod:`nasforge.ops.mobile`), activation :data:`ACTIVATIONS`, and for blocks after the
  first of their stage an identity ("skip") option (ProxylessNAS's zero layer; MnasNet
  and Single-Path NAS decide a stage's depth, which the depth decision covers): the block
  is left out;
* head :data:`HEADS`: ``conv1280`` / ``conv1728`` (1x1 convolution to that width, pooling,
  classifier: MobileNetV2, MnasNet, ProxylessNAS, Single-Path NAS) or ``efficient``
  (MobileNetV3's: 1x1 convolution to 6x the last width, pooling, 1280-wide linear layer,
  classifier), with its activation.

The expansions are the issue's 1, 3, 4 and 6; MobileNetV3-Large's 80-channel stage expands
by 2.5 and 2.3 (to 200 and 184 channels), which its preset writes as 3 (240 channels): its
MACs grow by 2.3% and stay within 3% of the published figure
(:mod:`nasforge.spaces._mobilenet_presets`). :mod:`nasforge.ops.mobile` builds any expansion.
The activations are ReLU and h-swish: MobileNetV2's and ProxylessNAS's ReLU6 is written
``relu`` in their presets (same costs; :class:`~nasforge.ops.mobile.LayerSpec` also takes
``"relu6"``).

Text
----
``str(arch)`` lists ``stem``, stages ``s0``..``s6`` and ``head``, separated by ``;``.
A stage is ``s<i>=<width>:<blocks>``, the blocks separated by ``,``; a block is
``e<expansion>k<kernel>`` followed by ``-se_<variant>`` and ``-hswish`` where they are not
the defaults (no SE, ReLU). The stage's depth is the number of blocks listed; blocks beyond it
(which do not change the network) follow a ``/`` when they are not the defaults ``e1k3``, and
a skipped block is written ``skip:<block>``. MobileNetV2 is::

    stem=32-relu;s0=16:e1k3;s1=24:e6k3,e6k3;s2=32:e6k3,e6k3,e6k3;s3=64:e6k3,e6k3,e6k3,e6k3;
    s4=96:e6k3,e6k3,e6k3;s5=160:e6k3,e6k3,e6k3;s6=320:e6k3;head=conv1280-relu

(one line). :meth:`MobileNetSpace.parse` reads that form, with spaces and line breaks
allowed around the separators, ``-relu`` allowed, and the blocks after ``/`` optional.

Canonical form
--------------
A skipped block computes the identity (its input and output shapes are equal), so it is
removed: the later blocks of its stage move up and the depth shrinks. Blocks beyond a stage's
depth, and the width of an absent sixth stage, take their first options. Two architectures
have the same canonical form exactly when they build the same network (the same layers, so
the same function for every setting of the weights) at width multiplier 1; a smaller
multiplier can round two width options to one width (24 and 32 are both 8 at 0.25).

Settings
--------
:meth:`MobileNetSpace.build` and :meth:`MobileNetSpace.layers` take ``width_mult`` (every
width ``c`` becomes ``make_divisible(c * width_mult, 8)``; the head's 1280/1728 widths are
never made smaller, as MobileNetV2 keeps its last layer at 1,280 below width 1),
``resolution``, and for small images ``stem_stride`` and ``first_stride`` (the strides of the
stem and of stage 1). The CIFAR-10 presets set both to 1 and leave the later stages as they
are (total stride 8, 32x32 -> 4x4), as the CIFAR versions of MobileNetV2 trained in the
literature do; the papers of this space search and report ImageNet networks only (the
CIFAR-10 networks of ProxylessNAS come from another space).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    UnknownNameError,
    abbreviate,
)
from nasforge.spaces._mobilenet_presets import NETWORKS, PUBLISHED, SOURCES
from nasforge.spaces._mobilenet_text import (
    ACTIVATIONS,
    DEPTHS,
    EFFICIENT_EXPANSION,
    EXAMPLE,
    EXPANSIONS,
    HEAD_WIDTHS,
    HEADS,
    KERNELS,
    N_STAGES,
    S0_WIDTHS,
    SE_OPTIONS,
    STAGE_STRIDES,
    STAGE_WIDTHS,
    STEM_WIDTHS,
    check_settings,
    drawing_blocks,
    format_block,
    max_depth,
    parse_values,
    show_option,
)
from nasforge.spaces.base import Decision, SearchSpace

if TYPE_CHECKING:
    from nasforge.ops.mobile import LayerSpec, MobileNetwork

__all__ = [
    "ACTIVATIONS",
    "DEPTHS",
    "EXPANSIONS",
    "HEADS",
    "KERNELS",
    "NETWORKS",
    "PUBLISHED",
    "S0_WIDTHS",
    "SE_OPTIONS",
    "STAGE_STRIDES",
    "STAGE_WIDTHS",
    "STEM_WIDTHS",
    "MobileNetSpace",
]


@spaces.register("mobilenet")
class MobileNetSpace(SearchSpace):
    """The MobileNet-style space (see the module docstring for the skeleton and the text).

    Decisions, in order: ``stem_width``, ``stem_act``, ``s0_width``, ``s0_kernel``,
    ``s0_se``, ``s0_act``; for each stage ``i`` in 1..6: ``s<i>_width``, ``s<i>_depth``, then
    for each block ``j``: ``s<i>b<j>_kernel``, ``s<i>b<j>_expansion``, ``s<i>b<j>_se``,
    ``s<i>b<j>_act`` and, for ``j > 0``, ``s<i>b<j>_skip``; then ``head`` and ``head_act``.
    Sampling, mutation, neighbours and the one-hot encoding follow from them.

    Example:
        >>> space = MobileNetSpace()
        >>> arch = space.named("mobilenetv2")
        >>> space.parse(str(arch)) == arch
        True
        >>> [spec.kind for spec in space.layers(arch)].count("mbconv")
        17
        >>> skipped = space.parse(str(arch).replace("s1=24:e6k3,e6k3", "s1=24:e6k3,skip:e6k3"))
        >>> skipped == arch, str(space.canonical(skipped)).split(";")[2]
        (False, 's1=24:e6k3')
    """

    name = "mobilenet"
    encodings = ("onehot",)
    #: Classes and image side of the network when nothing else is asked (``nasforge
    #: profile``): the ImageNet networks of the papers.
    default_input: tuple[int, int] = (1000, 224)
    #: The elastic sub-network space of this family under each preset (Once-for-All's
    #: MobileNetV3 sub-networks, :mod:`nasforge.spaces.ofa`): what ``nasforge supernet train
    #: --space mobilenet`` trains.
    elastic_spaces: ClassVar[Mapping[str, str]] = {"paper": "ofa", "reduced": "ofa-cifar"}

    # -- decisions ---------------------------------------------------------------------------
    @cached_property
    def _decisions(self) -> tuple[Decision, ...]:
        out = [
            Decision("stem_width", STEM_WIDTHS),
            Decision("stem_act", ACTIVATIONS),
            Decision("s0_width", S0_WIDTHS),
            Decision("s0_kernel", KERNELS),
            Decision("s0_se", SE_OPTIONS),
            Decision("s0_act", ACTIVATIONS),
        ]
        for stage in range(1, N_STAGES + 1):
            out.append(Decision(f"s{stage}_width", STAGE_WIDTHS[stage - 1]))
            out.append(Decision(f"s{stage}_depth", DEPTHS[stage - 1]))
            for block in range(max_depth(stage)):
                prefix = f"s{stage}b{block}"
                out.append(Decision(f"{prefix}_kernel", KERNELS))
                out.append(Decision(f"{prefix}_expansion", EXPANSIONS))
                out.append(Decision(f"{prefix}_se", SE_OPTIONS))
                out.append(Decision(f"{prefix}_act", ACTIVATIONS))
                if block > 0:
                    out.append(Decision(f"{prefix}_skip", (False, True)))
        out.append(Decision("head", HEADS))
        out.append(Decision("head_act", ACTIVATIONS))
        return tuple(out)

    @cached_property
    def _position(self) -> dict[str, int]:
        return {d.name: i for i, d in enumerate(self._decisions)}

    def decisions(self) -> tuple[Decision, ...]:
        return self._decisions

    def _values(self, choices: Sequence[int]) -> dict[str, Any]:
        return {d.name: d.options[c] for d, c in zip(self._decisions, choices, strict=True)}

    def _from_values(self, values: dict[str, Any]) -> Architecture:
        choices = []
        for decision in self._decisions:
            value = values[decision.name]
            matches = [i for i, o in enumerate(decision.options) if o == value]
            if not matches:
                raise InvalidArchitectureError(
                    f"{decision.name} = {value!r} is not an option; choose from "
                    f"{', '.join(map(show_option, decision.options))}."
                )
            choices.append(matches[0])
        return self.from_choices(choices)

    # -- construction ------------------------------------------------------------------------
    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = self.check_choices(choices)
        return Architecture(self.name, values, self._text(self._values(values)))

    def _text(self, values: dict[str, Any]) -> str:
        parts = [
            f"stem={values['stem_width']}-{values['stem_act']}",
            "s0={}:{}".format(
                values["s0_width"],
                format_block(values["s0_kernel"], 1, values["s0_se"], values["s0_act"]),
            ),
        ]
        for stage in range(1, N_STAGES + 1):
            depth = values[f"s{stage}_depth"]
            blocks = [self._block_text(values, stage, b) for b in range(max_depth(stage))]
            text = f"s{stage}={values[f's{stage}_width']}:{','.join(blocks[:depth])}"
            rest = blocks[depth:]
            if any(block != "e1k3" for block in rest):
                text += "/" + ",".join(rest)
            parts.append(text)
        parts.append(f"head={values['head']}-{values['head_act']}")
        return ";".join(parts)

    @staticmethod
    def _block_text(values: dict[str, Any], stage: int, block: int) -> str:
        prefix = f"s{stage}b{block}"
        return format_block(
            values[f"{prefix}_kernel"],
            values[f"{prefix}_expansion"],
            values[f"{prefix}_se"],
            values[f"{prefix}_act"],
            bool(values.get(f"{prefix}_skip", False)),
        )

    def parse(self, text: str) -> Architecture:
        """The architecture written as ``text`` (see the module docstring).

        Raises:
            InvalidArchitectureError: The text is malformed; the message says which part and
                what was expected.
        """
        if not isinstance(text, str):
            raise InvalidArchitectureError(
                f"Expected a mobilenet architecture string like {EXAMPLE!r}, got "
                f"{type(text).__name__}."
            )
        try:
            return self._from_values(parse_values(text))
        except InvalidArchitectureError as error:
            message = str(error)
            raise InvalidArchitectureError(
                f"In mobilenet architecture {abbreviate(text, 80)}: "
                f"{message[:1].lower()}{message[1:]}"
            ) from None

    def named(self, name: str) -> Architecture:
        """A published network: ``mobilenetv2``, ``mobilenetv3-large``, ``mnasnet-a1``,
        ``proxylessnas-mobile``, ``proxylessnas-gpu``, ``single-path-nas`` (their texts and
        sources are in :data:`NETWORKS`, their published costs in :data:`PUBLISHED`).

        Raises:
            UnknownNameError: ``name`` is not one of them.
        """
        if name not in NETWORKS:
            raise UnknownNameError("published network of space 'mobilenet'", name, NETWORKS)
        return self.parse(NETWORKS[name])

    @staticmethod
    def published(name: str) -> tuple[float, float, str]:
        """Parameters (millions), multiply-adds (millions) and the source of
        :meth:`named` network ``name`` as its paper reports them (224x224, 1,000 classes).

        Raises:
            UnknownNameError: ``name`` is not a published network of the space.
        """
        if name not in PUBLISHED:
            raise UnknownNameError("published network of space 'mobilenet'", name, PUBLISHED)
        params, macs = PUBLISHED[name]
        return params, macs, SOURCES[name]

    # -- canonical form ----------------------------------------------------------------------
    def canonical(self, arch: Architecture) -> Architecture:
        """The representative of the architectures that build the same network as ``arch``:
        skipped blocks removed (the later blocks of the stage move up), blocks beyond the
        depth and the width of an absent sixth stage set to their first options."""
        values = self._values(self.check(arch).choices)
        for stage in range(1, N_STAGES + 1):
            depth = values[f"s{stage}_depth"]
            kept = [b for b in range(depth) if not values.get(f"s{stage}b{b}_skip", False)]
            fields = ("kernel", "expansion", "se", "act")
            moved = [{f: values[f"s{stage}b{b}_{f}"] for f in fields} for b in kept]
            for b in range(max_depth(stage)):
                prefix = f"s{stage}b{b}"
                for field in fields:
                    default = self._decisions[self._position[f"{prefix}_{field}"]].options[0]
                    values[f"{prefix}_{field}"] = moved[b][field] if b < len(moved) else default
                if b > 0:
                    values[f"{prefix}_skip"] = False
            values[f"s{stage}_depth"] = len(kept)
            if not kept:
                values[f"s{stage}_width"] = STAGE_WIDTHS[stage - 1][0]
        return self._from_values(values)

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """A strip of the stem, one block per layer within its stage's depth (a skipped
        layer, the identity, marked ``skipped``) and the head."""
        from nasforge.spaces._drawing import strip

        return strip(drawing_blocks(self._values(self.check(arch).choices)))

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
        dropout: float = 0.2,
    ) -> tuple[LayerSpec, ...]:
        """The layers of ``arch``'s network, in order: the stem, the blocks (skipped blocks
        and blocks beyond a stage's depth absent) and the head.

        Args:
            arch: An architecture of this space.
            num_classes: Classes of the classifier.
            width_mult: Width multiplier (see the module docstring).
            resolution: Side of the input images; a multiple of the network's total stride.
            stem_stride: Stride of the stem (2, or 1 for small images).
            first_stride: Stride of stage 1 (2, or 1 for small images).
            dropout: Dropout before the classifier (MobileNetV2/V3 and MnasNet train with
                0.2).

        Raises:
            InvalidConfigError: A setting out of range, or a resolution that the total stride
                does not divide (the message lists resolutions that work).
        """
        from nasforge.ops.mobile import LayerSpec, make_divisible

        values = self._values(self.check(arch).choices)
        check_settings(num_classes, width_mult, resolution, stem_stride, first_stride, dropout)

        def width(channels: int) -> int:
            return make_divisible(channels * width_mult)

        specs: list[LayerSpec] = []
        act = values["stem_act"]
        channels = width(values["stem_width"])
        specs.append(
            LayerSpec("stem", 3, channels, 3, 1, stem_stride, act=act, resolution=resolution)
        )
        size = specs[-1].out_resolution
        s0 = LayerSpec(
            "mbconv",
            channels,
            width(values["s0_width"]),
            values["s0_kernel"],
            1,
            1,
            se=values["s0_se"],
            act=values["s0_act"],
            resolution=size,
        )
        specs.append(s0)
        channels = s0.out_channels
        for stage in range(1, N_STAGES + 1):
            out = width(values[f"s{stage}_width"])
            stride = first_stride if stage == 1 else STAGE_STRIDES[stage - 1]
            for block in range(values[f"s{stage}_depth"]):
                prefix = f"s{stage}b{block}"
                if values.get(f"{prefix}_skip", False):
                    continue
                spec = LayerSpec(
                    "mbconv",
                    channels,
                    out,
                    values[f"{prefix}_kernel"],
                    values[f"{prefix}_expansion"],
                    stride,
                    se=values[f"{prefix}_se"],
                    act=values[f"{prefix}_act"],
                    resolution=size,
                )
                specs.append(spec)
                channels, size, stride = out, spec.out_resolution, 1
        specs.append(
            _head(
                channels, values["head"], values["head_act"], size, num_classes, width_mult, dropout
            )
        )
        return tuple(specs)

    def layer_specs(
        self,
        *,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        resolution: int = 224,
        stem_stride: int = 2,
        first_stride: int = 2,
        dropout: float = 0.2,
    ) -> tuple[LayerSpec, ...]:
        """Every distinct layer that a network of the space has at these settings (those of
        :meth:`layers`), without enumerating networks: for each position, every input
        width that can reach it times its options (what a per-layer latency table measures,
        :func:`nasforge.hardware.layer_measure.all_specs`). About 4,200 layers at width 1."""
        from nasforge.ops.mobile import LayerSpec, make_divisible

        check_settings(num_classes, width_mult, resolution, stem_stride, first_stride, dropout)

        def widths(options: Sequence[int]) -> list[int]:
            return sorted({make_divisible(w * width_mult) for w in options})

        specs = [
            LayerSpec("stem", 3, c, 3, 1, stem_stride, act=act, resolution=resolution)
            for c in widths(STEM_WIDTHS)
            for act in ACTIVATIONS
        ]
        size = specs[0].out_resolution
        ins, choices = (
            widths(STEM_WIDTHS),
            [(k, se, a) for k in KERNELS for se in SE_OPTIONS for a in ACTIVATIONS],
        )
        shapes: list[tuple[list[int], list[int], int, tuple[float, ...]]] = [
            (ins, widths(S0_WIDTHS), 1, (1.0,))
        ]
        for stage in range(1, N_STAGES + 1):
            outs = widths(STAGE_WIDTHS[stage - 1])
            stride = first_stride if stage == 1 else STAGE_STRIDES[stage - 1]
            shapes.append((shapes[-1][1], outs, stride, EXPANSIONS))
            if max_depth(stage) > 1:
                shapes.append((outs, outs, 1, EXPANSIONS))
        heads_in: set[int] = set()
        for index, (c_ins, c_outs, stride, expansions) in enumerate(shapes):
            for c_in in c_ins:
                for c_out in c_outs:
                    if stride == 1 and c_in != c_out and c_ins is c_outs:
                        continue  # a later block of a stage keeps its width
                    specs += [
                        LayerSpec(
                            "mbconv", c_in, c_out, k, e, stride, se=se, act=a, resolution=size
                        )
                        for e in expansions
                        for k, se, a in choices
                    ]
            size = -(-size // stride)
            if index == len(shapes) - 1 or (index == len(shapes) - 2 and min(DEPTHS[-1]) == 0):
                heads_in.update(c_outs)  # the last stage may be absent
        specs += [
            _head(c, head, act, size, num_classes, width_mult, dropout)
            for c in sorted(heads_in)
            for head in HEADS
            for act in ACTIVATIONS
        ]
        return tuple(dict.fromkeys(specs))

    def build(
        self,
        arch: Architecture,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        resolution: int = 224,
        stem_stride: int = 2,
        first_stride: int = 2,
        dropout: float = 0.2,
        **kwargs: Any,
    ) -> MobileNetwork:
        """The network of ``arch`` (:class:`nasforge.ops.mobile.MobileNetwork` of
        :meth:`layers`; the arguments are those of :meth:`layers`).

        Raises:
            InvalidConfigError: An unknown keyword argument, or a setting :meth:`layers`
                refuses.
        """
        if kwargs:
            raise InvalidConfigError(
                f"MobileNetSpace.build() got unexpected keyword argument(s) {sorted(kwargs)}; "
                "it takes num_classes, width_mult, resolution, stem_stride, first_stride, "
                "dropout."
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
        (:class:`nasforge.ops.mobile_search_net.MobileNetSearchNet`): the settings of
        :meth:`layers` (default its ``search`` preset), plus ``backbone``, ``kernels``,
        ``expansions`` and ``depths``."""
        from nasforge.ops.mobile_search_net import MobileNetSearchNet

        return MobileNetSearchNet(self, **settings)

    def presets(self) -> dict[str, dict[str, Any]]:
        """``paper``: the ImageNet networks of the papers (width 1.0, 224x224);
        ``search``: the setting ProxylessNAS and Single-Path NAS search in (the same network,
        trained on ImageNet directly); ``reduced``: a CIFAR-10 network a CPU trains in
        minutes (width 0.25, 32x32 images, stem and stage 1 at stride 1, a tenth of the
        training images, 10 epochs); ``cifar``: the same at width 0.5 on all training images
        for the recipe's epochs."""
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

    def recipe(self) -> Any:
        """ProxylessNAS's ImageNet training (the defaults of mit-han-lab/proxylessnas
        ``search/imagenet_run_exp.py``): SGD with momentum 0.9 and Nesterov, learning rate 0.05
        for batch 256 on a cosine schedule, weight decay 4e-5 (which that script does not
        apply to batch norm), label smoothing 0.1, 300 epochs. The TPU recipes of MnasNet and
        MobileNetV3 (RMSProp, 350 epochs) are not what :class:`Recipe` holds."""
        from nasforge.train.recipe import Recipe

        return Recipe(lr=0.05, weight_decay=4e-5, epochs=300, batch_size=256, label_smoothing=0.1)


def _head(
    channels: int,
    head: str,
    act: str,
    size: int,
    num_classes: int,
    width_mult: float,
    dropout: float,
) -> LayerSpec:
    """The head ``head`` after a last block of ``channels`` at ``size``x``size``."""
    from nasforge.ops.mobile import LayerSpec, make_divisible

    conv, hidden = HEAD_WIDTHS[head]
    if head == "efficient":
        conv = EFFICIENT_EXPANSION * channels
    else:
        conv = max(conv, make_divisible(conv * width_mult))
    if hidden:
        hidden = max(hidden, make_divisible(hidden * width_mult))
    return LayerSpec(
        "head",
        channels,
        num_classes,
        1,
        act=act,
        resolution=size,
        head_conv=conv,
        head_hidden=hidden,
        dropout=dropout,
    )
