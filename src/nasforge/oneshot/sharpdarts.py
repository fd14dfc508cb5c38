"""sharpDARTS: DARTS with balanced SharpSepConv blocks and Cosine Power Annealing.

Hundt, A., Jain, V. and Hager, G. D. "sharpDARTS: Faster and More Accurate Differentiable
Architecture Search." arXiv:1903.09900, 2019. DARTS's search (Liu et al. 2019, see
:mod:`nasforge.oneshot.darts`: bi-level, first order by default, ``alpha`` on the validation
half, the weights on the training half) with the paper's search-time changes:

* **SharpSepConv** (Section 3, Figure 2; :mod:`nasforge.ops.sharp`): every convolution of the
  supernet is the same block, ReLU, depthwise, pointwise to ``C_mid``, batch norm, ReLU,
  depthwise, pointwise, batch norm, instead of DARTS's two-unit ``sep_conv`` beside its
  one-unit ``dil_conv``. The operation names stay the space's, so the derived architecture
  is the space's own (an NB201 cell read in the bundled table, a DARTS genotype).
* **Cosine Power Annealing** (Section 3;
  :func:`~nasforge.train.schedule.cosine_power_annealing`) for the weights' learning rate,
  power ``p = 2``, from ``lr = 0.025`` to ``lr_min = 1e-4`` after a linear warm-up of 5
  epochs: the defaults of the paper's search script (``cnn/train_search.py``).
* **Max-W weighting** (Section 6, Max-W Regularization), as an option
  (``weighting="max_w"``): each operation of an edge is weighted by ``1 - max(w) + w_i``
  instead of ``w_i`` (``w = softmax(alpha)`` of the edge), so the strongest operation always
  has weight 1 and the others are not faded out; the paper proposes it against the
  low-capacity bias of DARTS's scalar weighting. The paper's sharpDARTS models come from the
  scalar search (``SharpSepConvDARTS``), hence the default ``"scalar"``. The derivation and
  the recorded weights use ``softmax(alpha)`` in both cases (the Max-W coefficients are a
  monotone shift per edge, so each edge's argmax is the same).

Not taken, and why:

* The sharpDARTS *search space* (its own operation list with ``flood_conv``, ``choke_conv``,
  ``dil_flood_conv``...) and the HyperCuboid / Differentiable Hyperparameter Grid Search
  (Sections 4-5): they are other search spaces, not a search method for the spaces here;
  sharpDARTS's ``SharpSepConvDARTS`` search (DARTS's operation names with SharpSepConv) is
  the one that applies to any space with a supernet of convolutions.
* The evaluation-time recipe (AutoAugment, cutout, 2000 epochs with Cosine Power Annealing
  ``p = 10``...): the derived architecture is scored by the space's evaluator (the bundled
  NAS-Bench-201 table for ``nb201``), not retrained with SharpSepConv.
* Its search-time data augmentation (``--cutout --autoaugment`` in the README's command): the
  one-shot search's data pipeline is the same for every method, so the comparison with DARTS
  measures the method.

Adaptations: the weights' SGD keeps NAS-Bench-201's DARTS protocol shared by the DARTS family
here (momentum 0.9, Nesterov, weight decay 5e-4, gradient norm clipped at 5; the paper's
script uses weight decay 3e-4 without Nesterov) so that the differences to ``darts`` are the
paper's; the schedule is stepped once per epoch, 0-based (see
:func:`~nasforge.train.schedule.cosine_power_annealing` for how the warm-up and the annealing
share the epochs). The SharpSepConv supernet is built through the space's supernet setting
``conv="sharp"`` (``NB201Supernet`` and ``DartsSupernet`` have it); a space whose supernet has
no such setting is refused. ``SupernetSettings(options={"conv": "standard"})`` keeps the
space's convolutions (an ablation: the schedule and the weighting alone).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.oneshot.darts import DARTS

if TYPE_CHECKING:
    from nasforge.oneshot._data import SearchData
    from nasforge.oneshot._engine import SearchState
    from nasforge.oneshot.base import SupernetSettings
    from nasforge.spaces.base import SearchSpace

__all__ = ["WEIGHTINGS", "SharpDARTS"]

#: How an edge weighs its operations: DARTS's ``w_i`` or the paper's ``1 - max(w) + w_i``.
WEIGHTINGS = ("scalar", "max_w")


@oneshot.register("sharpdarts")
class SharpDARTS(DARTS):
    """sharpDARTS (Hundt et al. 2019): DARTS on a SharpSepConv supernet with Cosine Power
    Annealing (see the module docstring).

    Args:
        order: 1 (first order, the paper's search) or 2 (DARTS's unrolled step).
        lr: Largest learning rate of the weights (0.025).
        lr_min: Learning rate the schedule anneals to (1e-4, the paper's search).
        power: ``p`` of Cosine Power Annealing, at least 1 (1 is cosine annealing; the paper's
            search uses 2).
        warmup_epochs: Epochs of linear warm-up before the annealing (5, the paper's search).
        weighting: ``"scalar"`` (DARTS's ``softmax(alpha)``) or ``"max_w"`` (Max-W).
        momentum, weight_decay, nesterov, grad_clip, arch_lr, arch_weight_decay: See
            :class:`~nasforge.oneshot.base.DifferentiableMethod`.

    Raises:
        InvalidConfigError: ``power`` below 1, a negative ``warmup_epochs``, an unknown
            ``weighting``, or as :class:`~nasforge.oneshot.darts.DARTS`.
    """

    default_epochs = 50

    def __init__(
        self,
        *,
        order: int = 1,
        lr: float = 0.025,
        lr_min: float = 1e-4,
        power: float = 2.0,
        warmup_epochs: int = 5,
        weighting: str = "scalar",
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
    ) -> None:
        if isinstance(power, bool) or not isinstance(power, (int, float)) or not power >= 1.0:
            raise InvalidConfigError(
                f"power must be a number >= 1 (1: cosine annealing; sharpDARTS searches "
                f"with 2), got {power!r}."
            )
        if (
            isinstance(warmup_epochs, bool)
            or not isinstance(warmup_epochs, int)
            or warmup_epochs < 0
        ):
            raise InvalidConfigError(
                f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}."
            )
        if weighting not in WEIGHTINGS:
            raise InvalidConfigError(
                f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}."
            )
        super().__init__(
            order=order,
            lr=lr,
            lr_min=lr_min,
            momentum=momentum,
            weight_decay=weight_decay,
            nesterov=nesterov,
            grad_clip=grad_clip,
            arch_lr=arch_lr,
            arch_weight_decay=arch_weight_decay,
        )
        self.power = float(power)
        self.warmup_epochs = int(warmup_epochs)
        self.weighting = weighting

    def params(self) -> dict[str, Any]:
        return {
            "power": self.power,
            "warmup_epochs": self.warmup_epochs,
            "weighting": self.weighting,
            **super().params(),
        }

    def build_network(
        self, space: SearchSpace, settings: SupernetSettings, data: SearchData
    ) -> Any | None:
        """The space's supernet built with ``conv="sharp"`` (or the ``conv`` of the settings'
        options), refused when the space has no supernet or its supernet has no such
        setting (the message names what is missing)."""
        from nasforge.oneshot import _engine
        from nasforge.oneshot.base import check_space

        found = check_space(space)
        conv = settings.options.get("conv", "sharp")
        with_conv = dataclasses.replace(settings, options={**settings.options, "conv": conv})
        net: Any = None
        try:
            net = _engine.build_supernet(found, with_conv, data.num_classes)
        except (TypeError, InvalidConfigError) as err:  # a supernet that takes no such setting
            if "'conv'" not in str(err):
                raise
        if getattr(net, "conv", None) != conv:
            built = "" if net is None else f" ({type(net).__name__})"
            raise UnsupportedOperationError(
                f"sharpdarts builds the supernet with SharpSepConv convolutions through the "
                f"setting space.supernet(conv='sharp'), which the supernet of space "
                f"{found.name!r}{built} does not have; NB201Supernet (space 'nb201') and "
                f"DartsSupernet (space 'darts') have it. Search {found.name!r} with darts "
                "instead."
            )
        return net

    def schedule(self, state: SearchState, epoch: int) -> float:
        """The weights' learning rate in ``epoch``: warm-up, then Cosine Power Annealing."""
        from nasforge.train.schedule import cosine_power_annealing

        return cosine_power_annealing(
            epoch,
            state.epochs,
            lr=self.lr,
            min_lr=self.lr_min,
            power=self.power,
            warmup=self.warmup_epochs,
        )

    def probabilities(self, state: SearchState, detach: bool = False) -> list[Any]:
        """``softmax(alpha)`` of each cell type (what is derived and recorded)."""
        return super().op_weights(state, detach)

    def op_weights(self, state: SearchState, detach: bool = False) -> list[Any]:
        """The coefficients the edges mix their operations with: ``softmax(alpha)``, or
        with Max-W ``1 - max(w) + w`` per edge (the gradient flows through the maximum, as
        in the paper's ``MixedOp``)."""
        weights = self.probabilities(state, detach)
        if self.weighting == "scalar":
            return weights
        return [1.0 - w.max(dim=-1, keepdim=True).values + w for w in weights]

    def derive(self, state: SearchState) -> tuple[int, ...] | None:
        arch = state.supernet.derive(self.probabilities(state, True), None)
        return arch.choices

    def arch_weights(self, state: SearchState) -> list[Any] | None:
        return self.probabilities(state, detach=True)
