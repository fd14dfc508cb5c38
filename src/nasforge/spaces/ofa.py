"""The elastic sub-network space of Once-for-All's MobileNetV3 supernet.

Cai, H., Gan, C., Wang, T., Zhang, Z. and Han, S. "Once-for-All: Train One Network and
Specialize it for Efficient Deployment." ICLR 2020, arXiv:1908.09791, Section 3.1 (the
architecture space) and Section 3.2 (the elastic dimensions): a network of five units
(stages), each unit 2, 3 or 4 blocks deep, each block with kernel 3, 5 or 7 and expansion 3,
4 or 6, at an input resolution of 128 to 224 pixels in steps of 4. The skeleton is that of
the authors' ``OFAMobileNetV3`` (mit-han-lab/once-for-all ``ofa/imagenet_classification/
elastic_nn/networks/ofa_mbv3.py``): a 16-channel h-swish stem, one fixed first block
(16 channels, kernel 3, expansion 1, ReLU, no SE), stages of widths 24, 40, 80, 112, 160
with MobileNetV3-Large's strides, SE and activations, and MobileNetV3's efficient head.

Every point is a network of the :mod:`mobilenet <nasforge.spaces.mobilenet>` space
(:meth:`OFASpace.to_mobilenet`), so :meth:`OFASpace.build` gives the same
:class:`~nasforge.ops.mobile.MobileNetwork` that space builds, and the weight-sharing network
that trains all of them at once is :class:`nasforge.ops.elastic.ElasticMobileNet`
(:meth:`OFASpace.supernet`).

``ofa-cifar`` (:class:`OFACifarSpace`) is the same space for small images: stem and stage 1 at
stride 1 (total stride 8, as the CIFAR presets of ``mobilenet``), resolutions 16, 24 and 32,
10 classes. The paper searches ImageNet only; this variant is for the CPU-sized experiments.

Where this differs from the paper's code: the efficient head's 1x1 convolution is 6x the last
stage's width (960 at width 1, as OFA) and scales with it, its 1,280-wide linear layer is
never made smaller (the ``mobilenet`` space's head); OFA's width multipliers 1.0 and 1.2 make
every width ``make_divisible(c * width_mult, 8)`` here, which is OFA's rule.

Text
----
``res=<resolution>`` then the stages ``s1``..``s5``, separated by ``;``; a stage lists its
active blocks ``e<expansion>k<kernel>`` separated by ``,``, and the blocks beyond its depth
(which do not change the network) after a ``/`` when they are not the defaults ``e3k3``::

    res=224;s1=e6k7,e6k7,e6k7,e6k7;s2=e6k7,e6k7,e6k7,e6k7;s3=e6k7,e6k7,e6k7,e6k7;
    s4=e6k7,e6k7,e6k7,e6k7;s5=e6k7,e6k7,e6k7,e6k7

(one line: :meth:`OFASpace.largest`). Spaces and line breaks are allowed around separators.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError
from nasforge.spaces.base import DATA_SETTINGS, Decision, ValuedSpace

if TYPE_CHECKING:
    from nasforge.ops.elastic import ElasticMobileNet
    from nasforge.ops.mobile import LayerSpec, MobileNetwork

__all__ = [
    "DEPTHS",
    "EXPANSIONS",
    "KERNELS",
    "N_STAGES",
    "STAGE_ACTS",
    "STAGE_SE",
    "STAGE_STRIDES",
    "STAGE_WIDTHS",
    "STEM_WIDTH",
    "OFACifarSpace",
    "OFASpace",
]

#: Width of the stem and of the fixed first block.
STEM_WIDTH = 16
#: Widths, strides (ImageNet), squeeze-and-excitation and activations of stages 1..5.
STAGE_WIDTHS: tuple[int, ...] = (24, 40, 80, 112, 160)
STAGE_STRIDES: tuple[int, ...] = (2, 2, 2, 1, 2)
STAGE_SE: tuple[str, ...] = ("none", "mobilenetv3", "none", "mobilenetv3", "mobilenetv3")
STAGE_ACTS: tuple[str, ...] = ("relu", "relu", "hswish", "hswish", "hswish")
#: Options of the elastic dimensions (the first option is the default of unused blocks).
DEPTHS: tuple[int, ...] = (2, 3, 4)
KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANSIONS: tuple[int, ...] = (3, 4, 6)
N_STAGES = len(STAGE_WIDTHS)
MAX_DEPTH = max(DEPTHS)
_BLOCK_RE = re.compile(r"^e([0-9]+)k([0-9]+)$")


@spaces.register("ofa")
class OFASpace(ValuedSpace):
    """Once-for-All's elastic MobileNetV3 space (see the module docstring).

    Decisions, in order: ``resolution``; then for each stage ``i`` in 1..5: ``s<i>_depth``
    and for each block ``j`` in 0..3 ``s<i>b<j>_kernel`` and ``s<i>b<j>_expansion``.

    Example:
        >>> space = OFASpace()
        >>> arch = space.largest()
        >>> space.parse(str(arch)) == arch, space.resolution(arch)
        (True, 224)
        >>> str(space.to_mobilenet(space.smallest())).split(";")[2]
        's1=24:e3k3,e3k3'
    """

    name = "ofa"
    #: Input sides a sub-network may take.
    RESOLUTIONS: tuple[int, ...] = tuple(range(128, 225, 4))
    #: Strides of the stem and of stage 1.
    STEM_STRIDE = 2
    FIRST_STRIDE = 2
    #: Classes of the classifier when none are given.
    DEFAULT_CLASSES = 1000

    @property
    def default_input(self) -> tuple[int, int]:
        """Classes and image side of the network when nothing else is asked."""
        return self.DEFAULT_CLASSES, max(self.RESOLUTIONS)

    # -- decisions ---------------------------------------------------------------------------
    @cached_property
    def _decisions(self) -> tuple[Decision, ...]:
        out = [Decision("resolution", self.RESOLUTIONS)]
        for stage in range(1, N_STAGES + 1):
            out.append(Decision(f"s{stage}_depth", DEPTHS))
            for block in range(MAX_DEPTH):
                out.append(Decision(f"s{stage}b{block}_kernel", KERNELS))
                out.append(Decision(f"s{stage}b{block}_expansion", EXPANSIONS))
        return tuple(out)

    def decisions(self) -> tuple[Decision, ...]:
        return self._decisions

    @staticmethod
    def _text(values: dict[str, Any]) -> str:
        parts = [f"res={values['resolution']}"]
        for stage in range(1, N_STAGES + 1):
            blocks = [
                f"e{values[f's{stage}b{b}_expansion']}k{values[f's{stage}b{b}_kernel']}"
                for b in range(MAX_DEPTH)
            ]
            depth = values[f"s{stage}_depth"]
            text = f"s{stage}={','.join(blocks[:depth])}"
            rest = blocks[depth:]
            if any(block != f"e{EXPANSIONS[0]}k{KERNELS[0]}" for block in rest):
                text += "/" + ",".join(rest)
            parts.append(text)
        return ";".join(parts)

    # -- text --------------------------------------------------------------------------------
    def parse(self, text: str) -> Architecture:
        """The architecture written as ``text`` (see the module docstring).

        Raises:
            InvalidArchitectureError: The text is malformed or names an option outside the
                space; the message says which part and what was expected.
        """
        if not isinstance(text, str):
            raise InvalidArchitectureError(
                f"Expected an {self.name} architecture string like "
                f"{str(self.largest())!r}, got {type(text).__name__}."
            )
        return self._read_text(text)

    def _parse_values(self, text: str) -> dict[str, Any]:
        parts = re.sub(r"\s+", "", text).split(";")
        names = ["res", *(f"s{i}" for i in range(1, N_STAGES + 1))]
        keys = [part.split("=", 1)[0] for part in parts]
        if keys != names or not all("=" in part for part in parts):
            raise InvalidArchitectureError(
                f"expected the parts {', '.join(f'{n}=...' for n in names)} in that order, "
                f"separated by ';', found {', '.join(map(repr, keys))}."
            )
        bodies = dict(part.split("=", 1) for part in parts)
        if not bodies["res"].isdigit():
            raise InvalidArchitectureError(
                f"the resolution must be a whole number, got res={bodies['res']!r}."
            )
        values: dict[str, Any] = {"resolution": int(bodies["res"])}
        for stage in range(1, N_STAGES + 1):
            active_text, _, rest_text = bodies[f"s{stage}"].partition("/")
            active = active_text.split(",") if active_text else []
            rest = rest_text.split(",") if rest_text else []
            if len(active) + len(rest) > MAX_DEPTH:
                raise InvalidArchitectureError(
                    f"stage s{stage} holds at most {MAX_DEPTH} blocks, got "
                    f"{len(active) + len(rest)} in {bodies[f's{stage}']!r}."
                )
            values[f"s{stage}_depth"] = len(active)
            default = f"e{EXPANSIONS[0]}k{KERNELS[0]}"
            tokens = active + rest + [default] * (MAX_DEPTH - len(active) - len(rest))
            for block, token in enumerate(tokens):
                match = _BLOCK_RE.match(token)
                if match is None:
                    raise InvalidArchitectureError(
                        f"block {token!r} of stage s{stage} is malformed; write "
                        "e<expansion>k<kernel>, e.g. 'e6k7'."
                    )
                values[f"s{stage}b{block}_expansion"] = int(match.group(1))
                values[f"s{stage}b{block}_kernel"] = int(match.group(2))
        return values

    # -- named points ------------------------------------------------------------------------
    def largest(self) -> Architecture:
        """The largest network: the highest resolution, every stage 4 deep, kernel 7,
        expansion 6."""
        return self._extreme(True)

    def smallest(self) -> Architecture:
        """The smallest network: the lowest resolution, every stage 2 deep, kernel 3,
        expansion 3."""
        return self._extreme(False)

    def resolution(self, arch: Architecture) -> int:
        """The input side of ``arch``'s network."""
        return int(self.values(arch)["resolution"])

    def canonical(self, arch: Architecture) -> Architecture:
        """``arch`` with the blocks beyond each stage's depth set to the first options
        (kernel 3, expansion 3): they are not part of the network."""
        values = self.values(arch)
        for stage in range(1, N_STAGES + 1):
            for block in range(values[f"s{stage}_depth"], MAX_DEPTH):
                values[f"s{stage}b{block}_kernel"] = KERNELS[0]
                values[f"s{stage}b{block}_expansion"] = EXPANSIONS[0]
        return self._from_values(values)

    def to_mobilenet(self, arch: Architecture) -> Architecture:
        """``arch`` as an architecture of the ``mobilenet`` space (the same network at the
        same width; its resolution and strides are :meth:`layers` settings there)."""
        values = self.values(arch)
        parts = [f"stem={STEM_WIDTH}-hswish", f"s0={STEM_WIDTH}:e1k3"]
        for stage in range(1, N_STAGES + 1):
            suffix = ""
            if STAGE_SE[stage - 1] != "none":
                suffix += f"-se_{STAGE_SE[stage - 1]}"
            if STAGE_ACTS[stage - 1] != "relu":
                suffix += f"-{STAGE_ACTS[stage - 1]}"
            blocks = [
                f"e{values[f's{stage}b{b}_expansion']}k{values[f's{stage}b{b}_kernel']}{suffix}"
                for b in range(values[f"s{stage}_depth"])
            ]
            parts.append(f"s{stage}={STAGE_WIDTHS[stage - 1]}:{','.join(blocks)}")
        parts += ["s6=320:", "head=efficient-hswish"]
        return spaces.create("mobilenet").parse(";".join(parts))

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """One block per layer within its stage's depth: its kernel and expansion, with the
        stage's width, SE and activation; the resolution as a setting."""
        from nasforge.spaces._drawing import block, strip

        values = self.values(arch)
        blocks = []
        for stage in range(1, N_STAGES + 1):
            for b in range(values[f"s{stage}_depth"]):
                choices = {
                    "width": STAGE_WIDTHS[stage - 1],
                    "kernel": values[f"s{stage}b{b}_kernel"],
                    "expand": values[f"s{stage}b{b}_expansion"],
                    "se": STAGE_SE[stage - 1],
                    "act": STAGE_ACTS[stage - 1],
                }
                blocks.append(block(f"stage {stage} · layer {b}", choices, group=f"s{stage}"))
        return strip(blocks, {"resolution": values["resolution"]})

    # -- networks ----------------------------------------------------------------------------
    def layers(
        self,
        arch: Architecture,
        *,
        num_classes: int | None = None,
        width_mult: float = 1.0,
        dropout: float = 0.0,
    ) -> tuple[LayerSpec, ...]:
        """The layers of ``arch``'s network at its resolution (the ``mobilenet`` space's
        :meth:`~nasforge.spaces.mobilenet.MobileNetSpace.layers` of :meth:`to_mobilenet`).

        Args:
            arch: An architecture of this space.
            num_classes: Classes of the classifier (default :attr:`DEFAULT_CLASSES`).
            width_mult: Every width ``c`` becomes ``make_divisible(c * width_mult, 8)``.
            dropout: Dropout before the classifier.

        Raises:
            InvalidArchitectureError: ``arch`` belongs to another space.
            InvalidConfigError: A setting out of range.
        """
        mobile: Any = spaces.create("mobilenet")
        stride = self.STEM_STRIDE * self.FIRST_STRIDE * 8  # the mobilenet space's total
        specs: tuple[LayerSpec, ...] = mobile.layers(
            self.to_mobilenet(arch),
            num_classes=self.DEFAULT_CLASSES if num_classes is None else num_classes,
            width_mult=width_mult,
            resolution=stride,  # that space takes multiples of its total stride only
            stem_stride=self.STEM_STRIDE,
            first_stride=self.FIRST_STRIDE,
            dropout=dropout,
        )
        # OFA's resolutions (132, 140...) are not all multiples of the total stride: each
        # strided convolution (padding k // 2) gives the ceiling of half its input side
        size, out = self.resolution(arch), []
        for spec in specs:
            out.append(replace(spec, resolution=size))
            size = out[-1].out_resolution
        return tuple(out)

    def layer_specs(
        self,
        *,
        num_classes: int | None = None,
        width_mult: float = 1.0,
        dropout: float = 0.0,
        resolutions: Sequence[int] | None = None,
    ) -> tuple[LayerSpec, ...]:
        """Every distinct layer a sub-network can have at these settings (those of
        :meth:`layers`), without enumerating sub-networks: the stem, first block and head at
        each resolution, and each block place of each stage with every kernel and
        expansion (a block's layer depends only on the resolution, stage, place, kernel and
        expansion: every stage is at least 2 deep). What a per-layer latency table of the
        space measures (:func:`nasforge.hardware.layer_measure.all_specs`, ``measure_table(
        space, "all")``); ``ofa-cifar`` at its three resolutions lists 252 layers.

        Args:
            num_classes, width_mult, dropout: As :meth:`layers`.
            resolutions: Only these input sides (default all of :attr:`RESOLUTIONS`), e.g.
                those a supernet was trained at.

        Raises:
            InvalidConfigError: A resolution not of this space (the valid ones are listed),
                or a setting out of range.
        """
        from nasforge.errors import InvalidConfigError
        from nasforge.hardware.layer_lut import distinct_layers

        sides = tuple(self.RESOLUTIONS) if resolutions is None else tuple(resolutions)
        wrong = [r for r in sides if r not in self.RESOLUTIONS]
        if wrong or not sides:
            raise InvalidConfigError(
                f"resolutions {list(sides)} are not (all) input sides of space {self.name!r}; "
                f"choose from {list(self.RESOLUTIONS)}."
            )
        deepest = self._from_values(
            {
                d.name: MAX_DEPTH if d.name.endswith("_depth") else d.options[0]
                for d in self._decisions
            }
        )
        template = self.layers(
            deepest, num_classes=num_classes, width_mult=width_mult, dropout=dropout
        )
        blocks = range(2, 2 + N_STAGES * MAX_DEPTH)  # after the stem and the first block
        out: list[LayerSpec] = []
        for side in sides:
            size = side
            for place, spec in enumerate(template):
                at = replace(spec, resolution=size)
                if place in blocks:
                    out += [replace(at, kernel=k, expansion=e) for k in KERNELS for e in EXPANSIONS]
                else:
                    out.append(at)
                size = at.out_resolution
        return tuple(distinct_layers(out))

    def build(
        self,
        arch: Architecture,
        num_classes: int | None = None,
        width_mult: float = 1.0,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> MobileNetwork:
        """The network of ``arch`` (:class:`~nasforge.ops.mobile.MobileNetwork` of
        :meth:`layers`); the data settings of :meth:`presets` (``resolution``...) are
        accepted and ignored, the resolution being part of ``arch``.

        Raises:
            InvalidConfigError: An unknown keyword argument or a setting out of range.
        """
        from nasforge.errors import InvalidConfigError
        from nasforge.ops.mobile import MobileNetwork

        unknown = sorted(set(kwargs) - DATA_SETTINGS)
        if unknown:
            raise InvalidConfigError(
                f"{type(self).__name__}.build() got unexpected keyword argument(s) {unknown}; "
                "it takes num_classes, width_mult and dropout."
            )
        return MobileNetwork(
            self.layers(arch, num_classes=num_classes, width_mult=width_mult, dropout=dropout)
        )

    def supernet(self, **settings: Any) -> ElasticMobileNet:
        """The elastic supernet of the space (:class:`nasforge.ops.elastic.ElasticMobileNet`)
        with ``settings`` (``num_classes``, ``width_mult``, ``dropout``; the data settings of
        :meth:`presets` are left out)."""
        from nasforge.ops.elastic import ElasticMobileNet

        kept = {k: v for k, v in settings.items() if k not in DATA_SETTINGS}
        return ElasticMobileNet(self, **kept)

    def presets(self) -> dict[str, dict[str, Any]]:
        """``paper``: OFA's ImageNet supernet (width 1.0, 224x224); ``search``: the same (the
        sub-network search runs on the trained supernet); ``reduced``: width 0.25 at 128x128
        on a tenth of the training images with batch 64 for 6 epochs (one per
        progressive-shrinking phase)."""
        return {
            "paper": {"width_mult": 1.0, "resolution": 224},
            "search": {"width_mult": 1.0, "resolution": 224},
            "reduced": {
                "width_mult": 0.25,
                "resolution": 128,
                "data_fraction": 0.1,
                "batch_size": 64,
                "epochs": 6,
            },
        }


@spaces.register("ofa-cifar")
class OFACifarSpace(OFASpace):
    """:class:`OFASpace` for small images: stem and stage 1 at stride 1 (total stride 8),
    resolutions 16, 24 and 32, 10 classes.

    Example:
        >>> space = OFACifarSpace()
        >>> str(space.smallest()).split(";")[:2]
        ['res=16', 's1=e3k3,e3k3']
    """

    name = "ofa-cifar"
    RESOLUTIONS: tuple[int, ...] = (16, 24, 32)
    STEM_STRIDE = 1
    FIRST_STRIDE = 1
    DEFAULT_CLASSES = 10

    def presets(self) -> dict[str, dict[str, Any]]:
        """``paper`` and ``search``: width 1.0 at 32x32 (CIFAR-10); ``reduced``: width 0.25
        at 32x32 on a tenth of the training images with batch 64 for 6 epochs (one per
        progressive-shrinking phase), what a CPU trains in minutes."""
        return {
            "paper": {"width_mult": 1.0, "resolution": 32},
            "search": {"width_mult": 1.0, "resolution": 32},
            "reduced": {
                "width_mult": 0.25,
                "resolution": 32,
                "data_fraction": 0.1,
                "batch_size": 64,
                "epochs": 6,
            },
        }
