"""The BATS binary-oriented cell search space and the published BATS cell.

Bulat, A., Martinez, B. and Tzimiropoulos, G. "BATS: Binary ArchitecTure Search." ECCV 2020,
arXiv:2003.01711. BATS shows that searching binary networks in the DARTS space gives poor
cells, and names three ingredients that fix it; this space is the first, the
*binary-oriented search space* (the other two, the temperature of the architecture softmax
and the staged binarisation, are the search method's: :mod:`nasforge.oneshot.bats`).

Operations
----------
The cell is DARTS's (two inputs, four intermediate nodes of two edges each, the output the
concatenation of the four; a normal and a reduction cell), and so is the choice tuple
(:mod:`nasforge.spaces.darts`: 32 integers, ``(input, operation)`` per edge). The operations
differ: a binary depthwise convolution sees one channel of signs and its outputs can take
only ``k*k + 1`` values, so the depthwise-separable convolutions of DARTS are replaced by
grouped binary convolutions (followed by a channel shuffle so that groups exchange
information), each with a real-valued shortcut::

    0 max_pool_3x3  1 avg_pool_3x3  2 skip_connect  3 group_conv_3x3  4 group_conv_5x5
    5 dil_group_conv_3x3  6 dil_group_conv_5x5

(``none`` takes part in the search only, as in DARTS). Every operation sits where DARTS has
its counterpart (``group_conv_3x3`` where DARTS has ``sep_conv_3x3``...), so the size, the
moves, the one-hot encoding and the canonical form are DARTS's, and the text is DARTS's with
these names: ``normal=group_conv_5x5~0,dil_group_conv_5x5~1|...;reduce=...``. The classic
``Genotype(...)`` text is read too.

Networks
--------
:meth:`BatsSpace.build` builds the binary evaluation network
(:class:`nasforge.ops.bats.BatsNetwork`): DARTS's layout, every convolution of the cells
binary (signs of the activations, per-channel scaled signs of the weights), the stem, the
classifier, the downsampling ``FactorizedReduce`` and the shortcuts real. ``operations="darts"``
builds the same choices with DARTS's operations binarised instead (the baseline BATS compares
against: a separable convolution whose convolutions are binary), for the ablation
``benchmarks/bats_ablation.py``. :meth:`BatsSpace.supernet` builds the search network with
either family.

Where this differs from the paper: the group width (channels per group, 4 by default) and the
presets' network sizes are nasforge's choices; the corpus this project was written from held
the paper's abstract but not its body, so the operation list and the published cell follow a
public re-implementation (see :mod:`nasforge.spaces._bats_genotypes`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, UnknownNameError
from nasforge.spaces._bats_genotypes import (
    GENOTYPE_OPS,
    GENOTYPES,
    OPS,
    from_darts_genotype,
    from_darts_text,
    to_darts_genotype,
    to_darts_text,
)
from nasforge.spaces.darts import DartsSpace, Genotype

if TYPE_CHECKING:
    from nasforge.ops.bats import BatsNetwork
    from nasforge.ops.darts import GenotypeLike

__all__ = ["GENOTYPES", "GENOTYPE_OPS", "OPS", "BatsSpace", "darts_names"]


def darts_names(text: str) -> str:
    """``text`` (an architecture's text) with each BATS operation replaced by the DARTS
    operation in its place: what a network built with ``operations="darts"`` computes.

    Example:
        >>> darts_names("normal=group_conv_3x3~0,skip_connect~1")
        'normal=sep_conv_3x3~0,skip_connect~1'
    """
    return to_darts_text(text)


@contextmanager
def _bats_names() -> Iterator[None]:
    """Re-raise the DARTS machinery's architecture errors with BATS operation names."""
    try:
        yield
    except InvalidArchitectureError as error:
        message = from_darts_text(str(error)).replace("DARTS architecture", "BATS architecture")
        raise InvalidArchitectureError(message) from None


@spaces.register("bats")
class BatsSpace(DartsSpace):
    """The BATS space: DARTS's cells over BATS's binary operations (see the module docstring).

    Example:
        >>> space = BatsSpace()
        >>> arch = space.named("bats")
        >>> str(arch).split("|")[0]
        'normal=group_conv_5x5~0,dil_group_conv_5x5~1'
        >>> space.parse(str(arch)) == arch
        True
        >>> space.to_genotype(arch).reduce[:2]
        (('max_pool_3x3', 0), ('group_conv_3x3', 1))
    """

    name = "bats"

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        with _bats_names():
            arch = super().from_choices(choices)
        return Architecture(self.name, arch.choices, from_darts_text(arch.text))

    def parse(self, text: str) -> Architecture:
        """The architecture written as ``text``: the compact form of ``str(arch)`` or the
        classic ``Genotype(...)`` text, with BATS operation names (a DARTS-only operation such
        as ``sep_conv_3x3`` is refused).

        Raises:
            InvalidArchitectureError: The text is malformed; the message says where.
        """
        if not isinstance(text, str):
            return super().parse(text)  # refused there, with the type named
        with _bats_names():
            return super().parse(to_darts_text(text))

    def from_genotype(self, genotype: GenotypeLike) -> Architecture:
        """The architecture of a genotype with BATS operation names.

        Raises:
            InvalidArchitectureError: Its cells are not 4 nodes of 2 edges over the 7 BATS
                operations, or it does not concatenate exactly nodes 2..5.
        """
        fields = ("normal", "normal_concat", "reduce", "reduce_concat")
        if not all(hasattr(genotype, field) for field in fields):
            return super().from_genotype(genotype)  # refused there, naming what is missing
        plain = Genotype(*(getattr(genotype, field) for field in fields))
        with _bats_names():
            return super().from_genotype(to_darts_genotype(plain))

    def to_genotype(self, arch: Architecture) -> Genotype:
        """The genotype of ``arch`` with BATS operation names."""
        return from_darts_genotype(super().to_genotype(arch))

    def named(self, name: str) -> Architecture:
        """A published cell by name: ``"bats"`` (see :data:`GENOTYPES`).

        Raises:
            UnknownNameError: ``name`` is not one of them.
        """
        if name not in GENOTYPES:
            raise UnknownNameError("BATS genotype", name, GENOTYPES)
        return self.from_genotype(GENOTYPES[name])

    def build(
        self,
        arch: Architecture,
        num_classes: int = 10,
        channels: int = 36,
        layers: int = 20,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        operations: str = "bats",
        group_width: int = 4,
        **kwargs: Any,
    ) -> BatsNetwork:
        """The binary evaluation network of ``arch`` (:class:`nasforge.ops.bats.BatsNetwork`).

        Args:
            operations: ``"bats"`` (grouped binary convolutions) or ``"darts"`` (DARTS's
                operations at the same places, binarised).
            group_width: Channels per group of the grouped convolutions.
            auxiliary: Build DARTS's (real) auxiliary head, which needs 32x32 images; off by
                default (the ``paper`` preset turns it on where the recipe weighs it).
            Others: as :meth:`DartsSpace.build`.

        Raises:
            InvalidConfigError: An unknown keyword, an unknown operation family, channels
                not divisible by the group width, or a layout DARTS's network refuses.
        """
        if kwargs:
            raise InvalidConfigError(
                f"BatsSpace.build() got unexpected keyword argument(s) {sorted(kwargs)}; it "
                "takes num_classes, channels, layers, auxiliary, drop_path_prob, operations, "
                "group_width."
            )
        from nasforge.ops.bats import BatsNetwork

        return BatsNetwork(
            self.to_genotype(arch),
            channels=channels,
            num_classes=num_classes,
            layers=layers,
            auxiliary=auxiliary,
            drop_path_prob=drop_path_prob,
            operations=operations,
            group_width=group_width,
        )

    def recipe(self) -> Any:
        """Training of a binary network as nasforge sets it (not BATS's published schedule,
        which the corpus did not hold): Adam (``adamw`` without weight decay, as binary
        networks are trained since Bi-Real Net and Real-to-Binary Net, Martinez et al., ICLR
        2020, arXiv:2003.11535), learning rate 2e-3 annealed by a cosine, batch 96, 250
        epochs, cutout 16, auxiliary weight 0.4, gradient clipping 5."""
        from nasforge.train.recipe import Recipe

        return Recipe(
            optimizer="adamw",
            lr=2e-3,
            weight_decay=0.0,
            epochs=250,
            batch_size=96,
            cutout=16,
            grad_clip=5.0,
            auxiliary_weight=0.4,
        )

    def supernet(self, **settings: Any) -> Any:
        """The BATS search network (:class:`nasforge.ops.bats.BatsSupernet`):
        ``num_classes``, ``channels``, ``layers``, ``operations``, ``group_width``."""
        from nasforge.ops.bats import BatsSupernet

        return BatsSupernet(space=self, **settings)
