"""The DASS search space: the DARTS cell space whose parametric operations are sparse.

Mousavi, H., Loni, M., Alibeigi, M. and Daneshtalab, M. "DASS: Differentiable Architecture
Search for Sparse Neural Networks." ACM Transactions on Embedded Computing Systems 22(5s),
2023 (ESWEEK), doi:10.1145/3609385, arXiv:2207.06968. DASS finds that cells searched for
dense networks lose much accuracy once pruned; it widens the DARTS search space with
sparse parametric operations, ``SparseConv`` and ``SparseLinear`` (abstract and Section 1),
so that the search ranks operations by what they are worth once pruned.

Operations
----------
The choices are DARTS's (:mod:`nasforge.spaces.darts`: the 7 operations of a genotype, two
inputs per node, 32 integers, the same text and the same ``(2880 * 7**8)**2`` choice tuples):
what DASS changes is *how* the parametric ones compute. In the authors' code (github.com/
HERO-MDH/DASS-Differentiable-Architecture-Search-for-Sparse-Neural-Networks, ``DASS/
operations.py`` and ``model_search.py``) every operation is built from a convolution and a
linear layer *type* and the search uses ``SubnetConv``/``SubnetLinear`` for all of them, the
stem and the classifier included; the published DASS cells are written with DARTS's
operation names. nasforge does the same: :meth:`DassSpace.build` and the supernet
(:class:`nasforge.ops.dass_supernet.DassSupernet`) replace every convolution and linear
layer by :class:`~nasforge.ops.sparse.SparseConv2d` / :class:`~nasforge.ops.sparse.SparseLinear`
(a learned top-k mask over importance scores, see :mod:`nasforge.ops.sparse`), so
``sep_conv_3x3`` in this space *is* the sparse separable convolution. The sparsity is a
setting of the network (one of :data:`nasforge.ops.sparse.SPARSITY_LEVELS`, or 0), not of
the architecture.

Presets: DARTS's published genotypes (``space.named("darts-v2")``) and the cells found by
DASS that the authors' evaluation scripts build (``Scripts/genotypes.py`` and
``statics.py``): ``dass-90`` and ``dass-95`` (``DARTS_prune_three_for_90``, ``_95``, named
for those pruning ratios) and ``dass-99`` (``DARTS_prune_three_for``, the scripts' default
DASS cell; nasforge reads it as the one searched at the code's default 99% ratio). Which of
them the paper's tables report could not be checked; the repository builds all four sizes
(DASS-Tiny/Small/Medium/Large: 30/36/86/108 channels, 16/20/12/14 layers) from one cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import UnknownNameError
from nasforge.spaces._darts_genotypes import GENOTYPES, _genotype
from nasforge.spaces.darts import DartsSpace

if TYPE_CHECKING:
    from nasforge.ops.darts import NetworkCIFAR

__all__ = ["DASS_GENOTYPES", "SPARSE_OPS", "DassSpace"]

#: The operations whose convolutions are sparse (the parametric ones of DARTS).
SPARSE_OPS: tuple[str, ...] = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")

#: The DASS cells of the authors' repository, by the pruning ratio they were searched for.
DASS_GENOTYPES = {
    "dass-90": _genotype(
        [
            ("dil_conv_3x3", 1),
            ("dil_conv_5x5", 0),
            ("sep_conv_5x5", 0),
            ("dil_conv_5x5", 1),
            ("sep_conv_5x5", 0),
            ("sep_conv_3x3", 3),
            ("sep_conv_3x3", 2),
            ("dil_conv_5x5", 0),
        ],
        [
            ("skip_connect", 1),
            ("skip_connect", 0),
            ("dil_conv_5x5", 1),
            ("dil_conv_5x5", 2),
            ("dil_conv_5x5", 2),
            ("dil_conv_5x5", 3),
            ("dil_conv_5x5", 3),
            ("skip_connect", 0),
        ],
    ),
    "dass-95": _genotype(
        [
            ("sep_conv_5x5", 0),
            ("skip_connect", 1),
            ("dil_conv_5x5", 1),
            ("sep_conv_3x3", 2),
            ("dil_conv_3x3", 2),
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 2),
            ("sep_conv_3x3", 0),
        ],
        [
            ("sep_conv_3x3", 0),
            ("avg_pool_3x3", 1),
            ("sep_conv_3x3", 0),
            ("sep_conv_5x5", 2),
            ("sep_conv_5x5", 1),
            ("sep_conv_5x5", 2),
            ("dil_conv_3x3", 1),
            ("dil_conv_3x3", 2),
        ],
    ),
    "dass-99": _genotype(
        [
            ("avg_pool_3x3", 0),
            ("skip_connect", 1),
            ("dil_conv_5x5", 1),
            ("skip_connect", 2),
            ("avg_pool_3x3", 2),
            ("skip_connect", 1),
            ("skip_connect", 4),
            ("skip_connect", 3),
        ],
        [
            ("max_pool_3x3", 1),
            ("sep_conv_3x3", 0),
            ("max_pool_3x3", 1),
            ("dil_conv_3x3", 2),
            ("skip_connect", 0),
            ("dil_conv_3x3", 2),
            ("max_pool_3x3", 1),
            ("skip_connect", 4),
        ],
    ),
}


@spaces.register("dass")
class DassSpace(DartsSpace):
    """The DARTS cell space built from DASS's sparse layers (see the module docstring).

    Attributes:
        sparse_operations: The operations that compute with sparse weights (what
            :mod:`nasforge.oneshot.dass` asks of a space).

    Example:
        >>> space = DassSpace()
        >>> arch = space.named("dass-95")
        >>> str(arch).split("|")[0]
        'normal=sep_conv_5x5~0,skip_connect~1'
        >>> net = space.build(arch, channels=4, layers=5, auxiliary=False, sparsity=0.9)
        >>> from nasforge.ops.sparse import sparsity_of
        >>> round(sparsity_of(net), 2)
        0.9
    """

    name = "dass"
    sparse_operations: tuple[str, ...] = SPARSE_OPS

    def named(self, name: str) -> Architecture:
        """A published genotype by name: DARTS's (``"darts-v2"``...) or DASS's (``"dass-90"``,
        ``"dass-95"``, ``"dass-99"``).

        Raises:
            UnknownNameError: ``name`` is none of them.
        """
        if name in DASS_GENOTYPES:
            return self.from_genotype(DASS_GENOTYPES[name])
        if name not in GENOTYPES:
            raise UnknownNameError("DASS genotype", name, [*GENOTYPES, *DASS_GENOTYPES])
        return super().named(name)

    def build(
        self,
        arch: Architecture,
        num_classes: int = 10,
        channels: int = 36,
        layers: int = 20,
        auxiliary: bool = True,
        drop_path_prob: float = 0.0,
        sparsity: float = 0.75,
        **kwargs: Any,
    ) -> NetworkCIFAR:
        """The DARTS evaluation network of ``arch`` (:meth:`DartsSpace.build`) with every
        convolution and linear layer (stem and classifier included, as in the authors' code)
        a :class:`~nasforge.ops.sparse.SparseConv2d` / :class:`~nasforge.ops.sparse.SparseLinear`
        at ``sparsity``: scores from the initial weights (the magnitude mask), frozen, so that
        training the network trains its kept weights under a fixed mask. Turn the scores on
        (:func:`nasforge.ops.sparse.learn_scores`) to prune it as HYDRA does.

        Raises:
            InvalidConfigError: ``sparsity`` is not a supported level (they are listed), or
                as :meth:`DartsSpace.build`.
        """
        from nasforge.ops.sparse import check_sparsity, to_sparse

        share = check_sparsity(sparsity)
        net = super().build(
            arch,
            num_classes=num_classes,
            channels=channels,
            layers=layers,
            auxiliary=auxiliary,
            drop_path_prob=drop_path_prob,
            **kwargs,
        )
        to_sparse(net, share)
        return net

    def supernet(self, **settings: Any) -> Any:
        """The DASS search network (:class:`nasforge.ops.dass_supernet.DassSupernet`):
        ``num_classes``, ``channels``, ``layers``, ``partial_channels``, ``sparsity``."""
        from nasforge.ops.dass_supernet import DassSupernet

        return DassSupernet(space=self, **settings)
