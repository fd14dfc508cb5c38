"""BATS: differentiable search of binary cells, stabilised by a temperature and staged
binarisation.

Bulat, A., Martinez, B. and Tzimiropoulos, G. "BATS: Binary ArchitecTure Search." ECCV 2020,
arXiv:2003.01711. Applied directly to binary networks, DARTS gives poor cells (in nasforge's
terms: the derived cells fill with parameter-free operations, as ``benchmarks/
oneshot_collapse.py`` shows for real networks). BATS names three ingredients that fix it,
each a switch of this method so that an ablation can turn it off
(``benchmarks/bats_ablation.py``):

1. **The binary-oriented search space** (:mod:`nasforge.spaces.bats`): grouped binary
   convolutions with real shortcuts instead of binarised depthwise-separable ones. It is the
   space searched, ``space="bats"``; its supernet's ``operations="darts"`` setting
   (``SupernetSettings(options={"operations": "darts"})``) searches DARTS's operations
   binarised instead.
2. **A temperature on the architecture softmax** (``temperature``, ``T``): each edge mixes its
   operations with ``softmax(alpha / T)``. ``T < 1`` sharpens the distribution, so that the
   supernet computes nearly the one operation the edge would keep and the search is less
   drawn to the operations that are easiest to fit early (the parameter-free ones);
   ``T = 1`` is DARTS's softmax. The derived architecture (the argmax) does not depend on
   ``T``; the path to it does.
3. **Staged binarisation** (``staged``): the supernet searches with binary activations and
   real weights first, and binarises its weights from the epoch ``round(weights_from *
   epochs)`` on (binary activations are what the architecture must suit; real weights
   converge faster). ``staged=False`` searches the fully binary supernet from the start.

The rest is DARTS (:class:`~nasforge.oneshot.darts.DARTS`): architecture and weights updated
in turn on the two halves of the training images, first order by default, the derived cell
the two strongest non-``none`` inputs per node.

Where this differs from the paper: the corpus this project was written from held BATS's
abstract but not its body. The default ``T = 0.2`` is the value a public re-implementation
uses (lswzjuer/nas-pruning-quantize, its ``t02`` runs); the switch of the weights at half the
epochs and the DARTS (NAS-Bench-201) optimiser settings are nasforge's. BATS's knowledge
distillation from a real-valued teacher, used in its training of the final networks, is not
part of the search here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.oneshot.darts import DARTS

if TYPE_CHECKING:
    from nasforge.oneshot._data import SearchData
    from nasforge.oneshot._engine import SearchState
    from nasforge.oneshot.base import SupernetSettings
    from nasforge.spaces.base import SearchSpace

__all__ = ["BATS"]


@oneshot.register("bats")
class BATS(DARTS):
    """BATS (Bulat et al. 2020) on a supernet with binary operations.

    Args:
        temperature: ``T`` of ``softmax(alpha / T)`` (1: off).
        staged: Binary activations first, binary weights from ``weights_from`` of the epochs
            on; ``False``: both binary throughout.
        weights_from: Share of the epochs searched with real weights when ``staged``.
        order, lr, lr_min, momentum, weight_decay, nesterov, grad_clip, arch_lr,
            arch_weight_decay: See :class:`~nasforge.oneshot.darts.DARTS`.

    Raises:
        InvalidConfigError: ``temperature <= 0``, ``weights_from`` outside [0, 1], or a bad
            DARTS setting.

    Example:
        >>> method = BATS(temperature=0.5, weights_from=0.5)
        >>> [method.binarisation(epoch, 4) for epoch in range(4)]
        [(True, False), (True, False), (True, True), (True, True)]
    """

    default_epochs = 50

    def __init__(
        self,
        *,
        temperature: float = 0.2,
        staged: bool = True,
        weights_from: float = 0.5,
        order: int = 1,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
    ) -> None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise InvalidConfigError(f"temperature must be a number, got {temperature!r}.")
        if not temperature > 0:
            raise InvalidConfigError(
                f"temperature must be positive (1 is DARTS's softmax, BATS uses T < 1), got "
                f"{temperature!r}."
            )
        if not 0.0 <= float(weights_from) <= 1.0:
            raise InvalidConfigError(
                f"weights_from is the share of the epochs searched with real weights, in "
                f"[0, 1]; got {weights_from!r}."
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
        self.temperature = float(temperature)
        self.staged = bool(staged)
        self.weights_from = float(weights_from)

    def params(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "staged": self.staged,
            "weights_from": self.weights_from,
            **super().params(),
        }

    def binarisation(self, epoch: int, epochs: int) -> tuple[bool, bool]:
        """Whether the activations and the weights are binary in ``epoch`` (0-based) of
        ``epochs``: activations always; weights from ``round(weights_from * epochs)`` on
        when ``staged``, else always."""
        if not self.staged:
            return True, True
        return True, epoch >= round(self.weights_from * epochs)

    def build_network(
        self, space: SearchSpace, settings: SupernetSettings, data: SearchData
    ) -> Any | None:
        """The space's supernet, refused when it holds no binary layer (a space whose
        operations have no binary form: the message names its first operation with
        weights)."""
        from nasforge.oneshot import _engine
        from nasforge.ops.binary import binary_layers
        from nasforge.ops.supernet import MixedEdge

        net = _engine.build_supernet(space, settings, data.num_classes)
        if next(binary_layers(net), None) is None:
            names = [
                name
                for edge in net.modules()
                if isinstance(edge, MixedEdge)
                for name, op in zip(edge.names, edge.ops, strict=True)
                if next(op.parameters(), None) is not None
            ]
            which = f"operation {names[0]!r}" if names else "its layers"
            raise UnsupportedOperationError(
                f"BATS searches binary networks, but the supernet of space {space.name!r} has "
                f"no binary form: {which} computes with real weights and activations. Search "
                "space 'bats' (BATS's binary-oriented operations), or give it "
                "SupernetSettings(options={'operations': 'darts'}) to search DARTS's "
                "operations binarised."
            )
        return net

    def op_weights(self, state: SearchState, detach: bool = False) -> list[Any]:
        """``softmax(alpha / T)`` of each cell type."""
        shapes = len(state.supernet.arch_shapes)
        return [
            ((a.detach() if detach else a) / self.temperature).softmax(dim=-1)
            for a in self.alphas[:shapes]
        ]

    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        from nasforge.ops.binary import set_binary

        activations, weights = self.binarisation(epoch, state.epochs)
        set_binary(state.supernet, activations=activations, weights=weights)
        stats = super().train_epoch(state, epoch)
        return {**stats, "temperature": self.temperature, "binary_weights": float(weights)}
