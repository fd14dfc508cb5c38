"""Once-for-All's elastic supernet on the ``ofa`` spaces: one network holding every
sub-network of :class:`nasforge.spaces.ofa.OFASpace`.

Cai, H., Gan, C., Wang, T., Zhang, Z. and Han, S. "Once-for-All: Train One Network and
Specialize it for Efficient Deployment." ICLR 2020, arXiv:1908.09791, Section 3.2 (elastic
resolution, kernel, depth and width) and the authors' ``OFAMobileNetV3``
(mit-han-lab/once-for-all ``elastic_nn/networks/ofa_mbv3.py``). The supernet is the largest
network (every stage 4 blocks deep, kernel 7, expansion 6) built of
:class:`~nasforge.ops.elastic_layers.ElasticMBConv` blocks:

* **elastic resolution**: the sub-network's input side; callers resize their images with
  :func:`resize_images` (bilinear) before :meth:`ElasticMobileNet.forward`;
* **elastic kernel** and **elastic expansion**: see :mod:`nasforge.ops.elastic_layers`
  (kernel transformation matrices 7->5->3, identity at initialisation; the first channels of
  the expanded width, sorted by importance with :meth:`ElasticMobileNet.reorder_channels`);
* **elastic depth**: a stage of depth ``d`` runs its first ``d`` blocks.

The stem, the fixed first block and the head are the ``mobilenet`` space's layers
(:mod:`nasforge.ops.mobile`), not elastic. :meth:`ElasticMobileNet.extract` builds the
sub-network as the space builds it (:meth:`OFASpace.build`) and copies the inherited weights
and batch-norm statistics, so that its output equals the supernet's with that sub-network
active. For block-wise training (DNA) the network is cut into :attr:`ElasticMobileNet.num_blocks`
parts: 0 = stem and first block, 1..5 = the stages, 6 = the head.

Where this differs from the paper's code: OFA also makes the width multiplier of a trained
network elastic in later work; here ``width_mult`` is fixed per supernet, as in the paper's
released ``ofa_mbv3_d234_e346_k357_w1.0`` / ``w1.2`` networks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.ops.elastic_layers import ElasticMBConv
from nasforge.ops.mobile import MBConv, MobileHead, MobileNetwork, Stem, init_weights

if TYPE_CHECKING:
    from nasforge.spaces.ofa import OFASpace

__all__ = ["ElasticMobileNet", "resize_images"]


def resize_images(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """``x`` (a batch of images, ``N x C x H x W``) resized to ``resolution`` x
    ``resolution`` with bilinear interpolation (unchanged when it has that size)."""
    if x.shape[-2:] == (resolution, resolution):
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


class ElasticMobileNet(nn.Module):
    """The elastic supernet of ``space`` (see the module docstring).

    Args:
        space: An :class:`~nasforge.spaces.ofa.OFASpace` (``ofa`` or ``ofa-cifar``).
        num_classes: Classes of the classifier (default the space's ``DEFAULT_CLASSES``).
        width_mult: Width multiplier, as :meth:`OFASpace.layers` applies it.
        dropout: Dropout before the classifier.

    Raises:
        InvalidConfigError: A setting out of range.

    Example:
        >>> from nasforge import spaces
        >>> space = spaces.create("ofa-cifar")
        >>> net = space.supernet(width_mult=0.25).eval()
        >>> arch = net.sample(np.random.default_rng(0), kernels=[3])
        >>> net.set_active(arch)
        >>> x = resize_images(torch.randn(2, 3, 32, 32), net.active_resolution)
        >>> sub = net.extract()
        >>> bool((sub(x) - net(x)).abs().max() < 1e-5)
        True
    """

    #: Blocks for block-wise training: the stem with the first block, five stages, the head.
    num_blocks = 7

    def __init__(
        self,
        space: OFASpace,
        *,
        num_classes: int | None = None,
        width_mult: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from nasforge.spaces.ofa import (
            DEPTHS,
            EXPANSIONS,
            KERNELS,
            MAX_DEPTH,
            N_STAGES,
            OFASpace,
        )

        if not isinstance(space, OFASpace):
            raise InvalidConfigError(
                "ElasticMobileNet needs an 'ofa' space (nasforge.spaces.create('ofa') or "
                f"'ofa-cifar'), got {type(space).__name__}."
            )
        self.space = space
        classes = space.DEFAULT_CLASSES if num_classes is None else num_classes
        largest = space.largest()
        specs = space.layers(largest, num_classes=classes, width_mult=width_mult, dropout=dropout)
        self.settings: dict[str, Any] = {
            "num_classes": classes,
            "width_mult": float(width_mult),
            "dropout": float(dropout),
        }
        self.specs = specs
        self.stem = Stem(specs[0])
        self.first = MBConv(specs[1])
        self._blocks: list[list[ElasticMBConv]] = []
        index = 2
        for _ in range(N_STAGES):
            blocks: list[ElasticMBConv] = []
            for _ in range(MAX_DEPTH):
                spec = specs[index]
                blocks.append(
                    ElasticMBConv(
                        spec.in_channels,
                        spec.out_channels,
                        spec.stride,
                        se=spec.se != "none",
                        act=spec.act,
                        kernels=KERNELS,
                        expansions=EXPANSIONS,
                    )
                )
                index += 1
            self._blocks.append(blocks)
        self.stages = nn.ModuleList(nn.ModuleList(blocks) for blocks in self._blocks)
        self.head = MobileHead(specs[-1])
        init_weights(self)
        self._options = {
            "resolutions": tuple(space.RESOLUTIONS),
            "depths": DEPTHS,
            "kernels": KERNELS,
            "expansions": EXPANSIONS,
        }
        self._depths = [MAX_DEPTH] * N_STAGES
        self.active: Architecture = largest
        self.set_active(largest)

    # -- the active sub-network --------------------------------------------------------------
    def set_active(self, arch: Architecture | str) -> None:
        """Make ``arch`` (an architecture of the space, or its text) the active sub-network.

        Raises:
            InvalidArchitectureError: ``arch`` belongs to another space, or its text does not
                parse (the message says why).
        """
        if isinstance(arch, str):
            arch = self.space.parse(arch)
        values = self.space.values(arch)
        for s, stage in enumerate(self._blocks, start=1):
            self._depths[s - 1] = int(values[f"s{s}_depth"])
            for b, block in enumerate(stage):
                block.active_kernel = int(values[f"s{s}b{b}_kernel"])
                block.active_expansion = values[f"s{s}b{b}_expansion"]
        self.active = arch

    @property
    def active_resolution(self) -> int:
        """The input side of the active sub-network."""
        return self.space.resolution(self.active)

    def largest(self) -> Architecture:
        """The largest sub-network of the space."""
        return self.space.largest()

    def smallest(self) -> Architecture:
        """The smallest sub-network of the space."""
        return self.space.smallest()

    def sample(
        self,
        rng: np.random.Generator,
        *,
        resolutions: Iterable[int] | None = None,
        depths: Iterable[int] | None = None,
        kernels: Iterable[int] | None = None,
        expansions: Iterable[float] | None = None,
    ) -> Architecture:
        """A sub-network drawn uniformly from the allowed options (``None``: every option of
        the space), in the canonical form (blocks beyond a stage's depth at their defaults).

        Every decision of the space is drawn, in order, with one ``rng.integers(counts)``
        over the allowed option counts (blocks beyond the depth included, then reset).

        Raises:
            InvalidConfigError: A restriction empty or holding options outside the space
                (the message lists the valid ones).
        """
        allowed = {
            "resolutions": self._allowed("resolutions", resolutions),
            "depths": self._allowed("depths", depths),
            "kernels": self._allowed("kernels", kernels),
            "expansions": self._allowed("expansions", expansions),
        }
        kinds = {
            "resolution": "resolutions",
            "depth": "depths",
            "kernel": "kernels",
            "expansion": "expansions",
        }
        decisions = self.space.decisions()
        options = [allowed[kinds[d.name.rsplit("_", 1)[-1]]] for d in decisions]
        draws = rng.integers([len(o) for o in options])
        choices = [
            d.options.index(o[int(i)]) for d, o, i in zip(decisions, options, draws, strict=True)
        ]
        return self.space.canonical(self.space.from_choices(choices))

    def _allowed(self, kind: str, given: Iterable[Any] | None) -> tuple[Any, ...]:
        valid = self._options[kind]
        if given is None:
            return tuple(valid)
        chosen = tuple(given)
        bad = [v for v in chosen if v not in valid]
        if bad or not chosen:
            problem = f"{bad} not options" if bad else "no option"
            raise InvalidConfigError(
                f"sample({kind}={list(chosen)}) has {problem} of space {self.space.name!r}; "
                f"valid {kind}: {', '.join(map(str, valid))}."
            )
        return tuple(sorted(set(chosen), key=valid.index))

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the active sub-network (``x`` already at :attr:`active_resolution`)."""
        for index in range(self.num_blocks):
            x = self.forward_block(index, x)
        return x

    def forward_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Part ``index`` of the active sub-network (0: stem and first block; 1..5: the
        active blocks of stage ``index``; 6: the head, giving logits).

        Raises:
            InvalidConfigError: ``index`` outside 0..6.
        """
        self._check_block(index)
        if index == 0:
            out: torch.Tensor = self.first(self.stem(x))
            return out
        if index == self.num_blocks - 1:
            logits: torch.Tensor = self.head(x)
            return logits
        for block in self._blocks[index - 1][: self._depths[index - 1]]:
            x = block(x)
        return x

    def block_shape(self, index: int, resolution: int) -> tuple[int, ...]:
        """The shape (without the batch dimension) of part ``index``'s output for inputs of
        side ``resolution``: ``(C, H, W)`` for parts 0..5, ``(num_classes,)`` for the head.
        Neither depends on the active sub-network (a stage's first block sets its stride
        and width).

        Raises:
            InvalidConfigError: ``index`` outside 0..6.
        """
        self._check_block(index)
        if index == self.num_blocks - 1:
            return (int(self.settings["num_classes"]),)
        size = -(-resolution // self.stem.spec.stride)
        channels = self.first.spec.out_channels
        for stage in self._blocks[:index]:
            first = stage[0]
            size = -(-size // first.stride)
            channels = first.out_channels
        return (channels, size, size)

    def _check_block(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidConfigError(f"A block index is a whole number 0..6, got {index!r}.")
        if not 0 <= index < self.num_blocks:
            raise InvalidConfigError(
                f"Block {index} does not exist; the supernet has blocks 0..{self.num_blocks - 1}"
                " (0: stem and first block, 1..5: stages, 6: head)."
            )

    # -- weights -----------------------------------------------------------------------------
    def elastic_blocks(self) -> list[ElasticMBConv]:
        """Every elastic block, stage by stage."""
        return [block for stage in self._blocks for block in stage]

    def bn_modules(self) -> list[nn.BatchNorm2d]:
        """The batch norms of the supernet (those :mod:`nasforge.ops.elastic_layers` slices
        included), for batch-norm recalibration."""
        return [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]

    def reorder_channels(self, expand_stage: int = 0) -> None:
        """Sort every block's expanded channels by importance (OFA's channel sorting before
        elastic width; :meth:`ElasticMBConv.reorder_channels`, whose ``expand_stage`` keeps
        the groups of expansions already trained). The largest sub-network computes the
        same function afterwards.

        Raises:
            InvalidConfigError: ``expand_stage`` outside 0..(number of expansions - 1).
        """
        count = len(self._options["expansions"])
        if isinstance(expand_stage, bool) or expand_stage not in range(count):
            raise InvalidConfigError(
                f"reorder_channels(expand_stage=...) takes 0..{count - 1}, got {expand_stage!r}."
            )
        for block in self.elastic_blocks():
            block.reorder_channels(expand_stage)

    def extract(self, arch: Architecture | str | None = None) -> MobileNetwork:
        """The stand-alone network of ``arch`` (default: the active sub-network), built as
        the space builds it (:meth:`OFASpace.build` with this supernet's settings), with
        the inherited weights and batch-norm statistics, in the supernet's mode and on its
        device. In eval mode its output equals the supernet's with ``arch`` active.

        Raises:
            InvalidArchitectureError: ``arch`` belongs to another space or does not parse.
        """
        previous = self.active
        if arch is not None:
            self.set_active(arch)
        try:
            target = self.active
            network = self.space.build(target, **self.settings)
            layers = list(network.layers)
            layers[0].load_state_dict(self.stem.state_dict())
            layers[1].load_state_dict(self.first.state_dict())
            layers[-1].load_state_dict(self.head.state_dict())
            position = 2
            for depth, stage in zip(self._depths, self._blocks, strict=True):
                for block in stage[:depth]:
                    mbconv = layers[position]
                    assert isinstance(mbconv, MBConv)
                    block.copy_to(mbconv)
                    position += 1
        finally:
            self.set_active(previous)
        parameter = next(self.parameters())
        network.to(device=parameter.device, dtype=parameter.dtype)
        return network.train(self.training)
