"""DASS: differentiable architecture search for sparse networks.

Mousavi, H., Loni, M., Alibeigi, M. and Daneshtalab, M. "DASS: Differentiable Architecture
Search for Sparse Neural Networks." ACM Transactions on Embedded Computing Systems 22(5s),
2023 (ESWEEK), arXiv:2207.06968. Cells searched for dense networks lose much accuracy when
pruned; DASS adds sparse operations to the DARTS space (:mod:`nasforge.spaces.dass`) and
changes the search objective so that the architecture is trained on the *sparse* network:

* the weights solve DARTS's lower-level problem under the constraint that every pruned layer
  keeps at most ``(1 - sparsity)`` of its weights, ``min_w L_train(w, alpha)`` s.t.
  ``w in S``. As in ADMM pruning (Zhang, T. et al. "A Systematic DNN Weight Pruning Framework
  using Alternating Direction Method of Multipliers." ECCV 2018, arXiv:1804.03294: its
  W-, Z- and U-updates), the weights descend ``L_train + rho/2 sum_l ||W_l - Z_l + U_l||^2``;
  after every epoch
  ``Z_l = Proj_S(W_l + U_l)`` (keep the largest magnitudes) and ``U_l += W_l - Z_l``;
* the architecture descends the validation loss of the network *with its weights projected
  onto* ``S`` (each layer computing with the magnitude mask of ``Z_l``), first order, so the
  operations are ranked by what they are worth once pruned;
* the sparse operations compute with magnitude masks at ``sparsity`` throughout (masks
  recomputed from the weights every epoch);
* at epoch ``round(prune_at * epochs)`` every pruned layer is hard-pruned by magnitude (the
  ADMM-regularised weights lose little) and the remaining epochs fine-tune the sparse
  supernet with fixed masks, architecture and weights, so that every derived network is
  exactly at the target sparsity.

Every convolution of the cells (operations, 1x1 preprocessing, factorized reductions) is
pruned; the stem convolution and the classifier stay dense, as pruning usually leaves them
(:func:`nasforge.ops.sparse.prune_magnitude`). Derivation is DARTS's (two strongest inputs per
node, strongest non-``none`` operation). The derived network is evaluated at the same
sparsity: built and pruned to it (``prune_magnitude(space.build(arch), sparsity)``), or
extracted with its inherited sparse weights (:meth:`DASS.extract`).

Adaptation and what was not read: the stored copies of the paper available here gave its
abstract and introduction (two parametric sparse operations, ``SparseConv`` and
``SparseLinear``; a search objective that trains the architecture on the sparsity of the
operations); the ADMM form of the constrained lower level, the projected upper level and the
pre-train/prune/fine-tune schedule follow the ADMM pruning framework above and are
nasforge's reading, not the paper's equations. The
``SparseLinear`` of the paper has no counterpart inside DARTS cells (no linear layer); the
classifier stays dense. Hyperparameters default to NAS-Bench-201's DARTS protocol
(:class:`~nasforge.oneshot.base.DifferentiableMethod`); ``rho = 1e-2`` and ``prune_at =
0.5`` are nasforge's choices, not tuned and not the paper's.

Example (how a benchmark runs DASS and trains its network; ``data`` from
``nasforge.train.load_cifar10`` or ``SyntheticImages(...).load()``)::

    from nasforge import oneshot, spaces
    from nasforge.ops.sparse import prune_magnitude, sparsity_of
    result = oneshot.search("dass", data, space="dass", params={"sparsity": 0.75},
                            settings=oneshot.SupernetSettings.reduced("dass"), epochs=10,
                            evaluator=evaluator)  # e.g. evaluators.create("train", ...)
    net = prune_magnitude(spaces.create("dass").build(result.arch, channels=16, layers=8,
                                                      sparsity=0.75), 0.75)
    # train `net` with any optimiser: its masks keep the pruned weights at zero;
    # sparsity_of(net) == 0.75. (_engine.search(oneshot.create("dass", sparsity=0.75),
    # "dass", data, space="dass", ...) does the same with the method object in hand,
    # whose extract() gives the derived network with the supernet's sparse weights.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.oneshot.base import DifferentiableMethod

if TYPE_CHECKING:
    from torch import nn

    from nasforge.oneshot._data import SearchData
    from nasforge.oneshot._engine import SearchState
    from nasforge.oneshot.base import SupernetSettings
    from nasforge.spaces.base import SearchSpace

__all__ = ["DASS"]


@oneshot.register("dass")
class DASS(DifferentiableMethod):
    """DASS (Mousavi et al. 2023) on a space with sparse operations (``"dass"``).

    Args:
        sparsity: The target share of zero weights, one of
            :data:`nasforge.ops.sparse.SPARSITY_LEVELS` (0.5, 0.75, 0.9).
        rho: ADMM's penalty weight.
        prune_at: Share of the epochs after which the supernet is hard-pruned and
            fine-tuned (the last epoch is always sparse).
        Others: see :class:`~nasforge.oneshot.base.DifferentiableMethod`.

    Raises:
        InvalidConfigError: An unsupported sparsity (the levels are listed), or a negative
            ``rho``, or ``prune_at`` outside [0, 1].
        UnsupportedOperationError: (at search) a space without sparse operations.
    """

    default_epochs = 50

    def __init__(
        self,
        *,
        sparsity: float = 0.75,
        rho: float = 1e-2,
        prune_at: float = 0.5,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
    ) -> None:
        from nasforge.ops.sparse import SPARSITY_LEVELS, check_sparsity

        share = check_sparsity(sparsity)
        if share == 0.0:
            raise InvalidConfigError(
                f"DASS searches for a sparse network; choose a sparsity of "
                f"{', '.join(str(s) for s in SPARSITY_LEVELS)}, not 0 (dense: use 'darts')."
            )
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or rho < 0:
            raise InvalidConfigError(f"rho must be a number >= 0, got {rho!r}.")
        if isinstance(prune_at, bool) or not isinstance(prune_at, (int, float)):
            raise InvalidConfigError(f"prune_at must be a number in [0, 1], got {prune_at!r}.")
        if not 0.0 <= prune_at <= 1.0:
            raise InvalidConfigError(f"prune_at must be a number in [0, 1], got {prune_at!r}.")
        super().__init__(
            lr=lr,
            lr_min=lr_min,
            momentum=momentum,
            weight_decay=weight_decay,
            nesterov=nesterov,
            grad_clip=grad_clip,
            arch_lr=arch_lr,
            arch_weight_decay=arch_weight_decay,
        )
        self.sparsity = share
        self.rho = float(rho)
        self.prune_at = float(prune_at)
        self.pruned = False
        self._state: SearchState | None = None
        self._admm: list[tuple[str, Any]] = []  # (path, layer) pruned by the ADMM phase
        self._sparse_ops: list[Any] = []  # the sparse options' masked layers
        self._z: list[Any] = []
        self._u: list[Any] = []
        self._view: list[Any] = []  # the masks of Z, what the architecture step sees

    def params(self) -> dict[str, Any]:
        return {
            "sparsity": self.sparsity,
            "rho": self.rho,
            "prune_at": self.prune_at,
            **super().params(),
        }

    # -- the network -------------------------------------------------------------------------
    def build_network(
        self, space: SearchSpace, settings: SupernetSettings, data: SearchData
    ) -> Any | None:
        """The space's supernet at :attr:`sparsity`, every cell convolution maskable.

        Raises:
            UnsupportedOperationError: The space has no sparse operations.
        """
        from nasforge.ops.sparse import end_layers, sparsify

        if not getattr(space, "sparse_operations", ()) or not space.supports("supernet"):
            raise UnsupportedOperationError(
                f"DASS searches a space with sparse operations among its choices; space "
                f"{space.name!r} has none. Use the space 'dass' (the DARTS cell space with "
                "DASS's sparse convolutions added), e.g. oneshot.search('dass', data, "
                "space='dass', params={'sparsity': 0.75})."
            )
        net = space.supernet(
            **settings.supernet_args(space), num_classes=data.num_classes, sparsity=self.sparsity
        )
        sparsify(net, 0.0, skip=[n for n in end_layers(net) if n is not None])
        return net

    def prune_epoch(self, epochs: int) -> int:
        """The epoch at whose start the supernet is hard-pruned (at most the last one)."""
        return min(epochs - 1, int(self.prune_at * epochs + 0.5))

    def setup(self, state: SearchState) -> None:
        import torch

        from nasforge.ops.sparse import masked_layers, project_sparse

        super().setup(state)
        self._state = state
        self._admm, self._sparse_ops = [], []
        for name, layer in masked_layers(state.supernet):
            (self._sparse_ops if layer.sparsity > 0 else self._admm).append((name, layer))
        with torch.no_grad():
            self._z = [project_sparse(m.weight.detach(), self.sparsity) for _, m in self._admm]
            self._u = [torch.zeros_like(m.weight) for _, m in self._admm]
        for index, (_, layer) in enumerate(self._admm):
            layer.weight.register_hook(self._penalty_hook(index))

    def _penalty_hook(self, index: int) -> Any:
        """The gradient of ADMM's ``rho/2 ||W - Z + U||^2`` added to the weight's gradient
        in every weight step before the hard pruning (the architecture steps take gradients
        of the architecture only, which do not reach the weights)."""

        def hook(grad: Any) -> Any:
            if self.pruned or self.rho == 0:
                return grad
            weight = self._admm[index][1].weight.detach()
            return grad + self.rho * (weight - self._z[index] + self._u[index])

        return hook

    @contextlib.contextmanager
    def _projected(self) -> Iterator[None]:
        """The supernet computing with every ADMM layer masked like its ``Z``."""
        if self.pruned:
            yield
            return
        for (_, layer), view in zip(self._admm, self._view, strict=True):
            layer.mask.copy_(view)
        try:
            yield
        finally:
            for _, layer in self._admm:
                layer.mask.fill_(True)

    # -- the loop ----------------------------------------------------------------------------
    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        import torch

        from nasforge.ops.sparse import sparsity_of

        if not self.pruned and epoch >= self.prune_epoch(state.epochs):
            self._hard_prune()
        if not self.pruned:
            for _, layer in self._sparse_ops:
                layer.update_mask()
            self._view = [z != 0 for z in self._z]
        stats = super().train_epoch(state, epoch)
        if not self.pruned:
            stats["admm_gap"] = self._admm_update()
        with torch.no_grad(), self._projected():
            stats["sparsity"] = sparsity_of(state.supernet)
        return stats

    def step(self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int) -> Any:
        xt, yt, xv, yv = batch
        with self._projected():
            self.arch_step(state, xv, yv, epoch, step)
        return self.weight_step(state, xt, yt, epoch, step)

    def _admm_update(self) -> float:
        """``Z = Proj_S(W + U)``, ``U += W - Z``; returns ``sum ||W - Z||^2 / sum ||W||^2``
        after the update (how far the weights still are from sparse)."""
        import torch

        from nasforge.ops.sparse import project_sparse

        gap = norm = 0.0
        with torch.no_grad():
            for i, (_, layer) in enumerate(self._admm):
                weight = layer.weight.detach()
                self._z[i] = project_sparse(weight + self._u[i], self.sparsity)
                self._u[i] = self._u[i] + weight - self._z[i]
                gap += float((weight - self._z[i]).pow(2).sum())
                norm += float(weight.pow(2).sum())
        return gap / norm if norm > 0 else 0.0

    def _hard_prune(self) -> None:
        """Prune every ADMM layer to the target by magnitude and fix the sparse options'
        masks; the momentum of a pruned weight is cleared so that it stays at zero."""
        import torch

        for _, layer in (*self._admm, *self._sparse_ops):
            layer.prune(self.sparsity)
            buffer = self.w_optimizer.state.get(layer.weight, {}).get("momentum_buffer")
            if buffer is not None:
                with torch.no_grad():
                    buffer.mul_(layer.mask)
        self.pruned = True

    def extract(self) -> nn.Module:
        """The architecture derived now as a stand-alone network with the supernet's
        current (sparse) weights (:meth:`nasforge.ops.supernet.Supernet.extract`)."""
        if self._state is None:
            raise InvalidConfigError("DASS.extract() needs a search: run oneshot.search first.")
        supernet = self._state.supernet
        return supernet.extract(supernet.derive(self.op_weights(self._state, detach=True)))

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "pruned": self.pruned,
            "z": [z.detach().cpu().clone() for z in self._z],
            "u": [u.detach().cpu().clone() for u in self._u],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pruned = bool(state["pruned"])
        device = self._admm[0][1].weight.device if self._admm else None
        self._z = [z.to(device) for z in state["z"]]
        self._u = [u.to(device) for u in state["u"]]
