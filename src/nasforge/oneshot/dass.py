"""DASS: differentiable architecture search for sparse networks.

Mousavi, H., Loni, M., Alibeigi, M. and Daneshtalab, M. "DASS: Differentiable Architecture
Search for Sparse Neural Networks." ACM Transactions on Embedded Computing Systems 22(5s),
2023 (ESWEEK), doi:10.1145/3609385, arXiv:2207.06968.

What the paper says and where nasforge's reading comes from
-----------------------------------------------------------
The paper's abstract and Section 1 (the only parts of its text the stored copies gave; its
method sections, equations and tables could not be read here, so no equation numbers are
cited) say: cells searched by DARTS for dense networks are ineffective once pruned, because
DARTS's space has no sparse operations and its objective is made for dense networks; DASS
adds two parametric sparse operations, ``SparseConv`` and ``SparseLinear``, and a search
objective that "trains the architecture based on the sparsity of the search space
operations"; it is evaluated at high pruning ratios on CIFAR-10 and ImageNet. The method's
details follow the authors' code (github.com/HERO-MDH/DASS-Differentiable-Architecture-
Search-for-Sparse-Neural-Networks, ``DASS/train_search.py``, ``architect.py``, ``layers.py``,
``pruning.py``), which builds on HYDRA (Sehwag, V. et al. NeurIPS 2020, arXiv:2002.10509):

* **Operations** (:mod:`nasforge.ops.sparse`, :mod:`nasforge.spaces.dass`): every
  convolution and linear layer of the DARTS supernet computes with
  ``weight * 1[|score| in the top (1 - sparsity)]``, an importance score per weight,
  gradient straight through to the scores.
* **Search: three steps** with DARTS's bi-level alternation in each (an architecture step on
  a validation batch, then a step on a training batch):

  1. *pre-training* (dense, every layer at sparsity 0): the weights and ``alpha`` train;
  2. *pruning* (target sparsity): the scores are initialised from the pre-trained weights
     (HYDRA's scaled initialisation ``sqrt(6 / fan_in) * w / max|w|``: the magnitude mask),
     the weights are frozen and the *scores* descend the training loss of the sparse
     network, while ``alpha`` descends the validation loss of the same sparse network;
  3. *fine-tuning*: the scores, hence the masks, are frozen; the kept weights and ``alpha``
     train on the sparse network.

  So, as nasforge formalises the code (the paper's own equation could not be read), the
  upper level reads ``min_alpha L_val(w*(alpha) * m*(alpha), alpha)``, the mask
  ``m*`` minimising ``L_train`` over the scores with the weights fixed, and the weights
  ``w*`` minimising ``L_train`` (dense first, then under the mask): the architecture is
  ranked by the loss of the network *once pruned*, which is what makes the objective
  sparsity-aware. In the code the steps take ``epochs``, 50 and ``epochs`` epochs (100 by
  default): nasforge splits its ``epochs`` 0.4 / 0.2 / 0.4 (``phases``).
* **Derivation**: DARTS's (two strongest inputs per node, strongest non-``none`` operation).
  :meth:`DASS.extract` gives the derived network with the supernet's sparse weights and
  masks; a network built by ``space.build(arch, sparsity=...)`` starts from magnitude masks
  of its initial weights (train it, or prune it HYDRA's way with
  :func:`nasforge.ops.sparse.learn_scores`).

nasforge's choices (not the code's): the architecture step is first order (the code's
default is DARTS's second-order unrolled step); every step's optimiser is nasforge's DARTS
SGD (momentum 0.9, Nesterov, weight decay 5e-4, cosine from ``lr`` to ``lr_min`` within each
step; the code uses plain SGD with weight decay 1e-3, lr 0.025 / 0.1 / 0.025, a new
optimiser per step, as nasforge does); while the scores learn, every other parameter of
the supernet is frozen (the code leaves batch-norm parameters trainable); the scores'
learning rate is the code's 0.1 (``prune_lr``); the sparsity levels are nasforge's
:data:`nasforge.ops.sparse.SPARSITY_LEVELS` (50/75/90%, the issue's), where the code's
default is a 99% pruning ratio.

Example (how a benchmark runs DASS; ``data`` from ``nasforge.train.load_cifar10`` or
``SyntheticImages(...).load()``)::

    from nasforge import oneshot, spaces
    result = oneshot.search("dass", data, space="dass", params={"sparsity": 0.9},
                            settings=oneshot.SupernetSettings.reduced("dass"), epochs=10,
                            evaluator=evaluator)  # e.g. evaluators.create("train", ...)
    net = spaces.create("dass").build(result.arch, channels=16, layers=8, sparsity=0.9)
    # train `net`: its sparse layers keep the masks fixed; sparsity_of(net) == 0.9
"""

from __future__ import annotations

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

__all__ = ["DASS", "PHASES"]

#: The three steps of a DASS search, in order.
PHASES = ("pretrain", "prune", "finetune")


@oneshot.register("dass")
class DASS(DifferentiableMethod):
    """DASS (Mousavi et al. 2023) on a space of sparse layers (``"dass"``).

    Args:
        sparsity: The target share of zero weights, one of
            :data:`nasforge.ops.sparse.SPARSITY_LEVELS` (0.5, 0.75, 0.9).
        phases: The shares of the epochs given to pre-training, pruning and fine-tuning
            (at least one pruning epoch is kept).
        prune_lr: The scores' learning rate in the pruning step.
        Others: see :class:`~nasforge.oneshot.base.DifferentiableMethod` (the weights'
            optimiser in pre-training and fine-tuning, the architecture's Adam).

    Raises:
        InvalidConfigError: An unsupported sparsity (the levels are listed), ``phases`` not
            three shares >= 0 summing to 1 with a positive pruning share, or ``prune_lr``
            not positive.
        UnsupportedOperationError: (at search) a space without sparse operations.
    """

    default_epochs = 50

    def __init__(
        self,
        *,
        sparsity: float = 0.75,
        phases: tuple[float, float, float] = (0.4, 0.2, 0.4),
        prune_lr: float = 0.1,
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
        shares = tuple(phases) if isinstance(phases, (tuple, list)) else ()
        if (
            len(shares) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in shares)
            or min(shares) < 0
            or shares[1] <= 0
            or abs(sum(shares) - 1.0) > 1e-6
        ):
            raise InvalidConfigError(
                f"phases must be three shares of the epochs (pre-training, pruning, "
                f"fine-tuning), each >= 0, the pruning one > 0, summing to 1; got {phases!r}."
            )
        if isinstance(prune_lr, bool) or not isinstance(prune_lr, (int, float)) or prune_lr <= 0:
            raise InvalidConfigError(f"prune_lr must be a number > 0, got {prune_lr!r}.")
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
        self.phases = tuple(float(v) for v in shares)
        self.prune_lr = float(prune_lr)
        self.phase: str | None = None
        self._state: SearchState | None = None

    def params(self) -> dict[str, Any]:
        return {
            "sparsity": self.sparsity,
            "phases": list(self.phases),
            "prune_lr": self.prune_lr,
            **super().params(),
        }

    # -- the network -------------------------------------------------------------------------
    def build_network(
        self, space: SearchSpace, settings: SupernetSettings, data: SearchData
    ) -> Any | None:
        """The space's supernet, dense (its pre-training step).

        Raises:
            UnsupportedOperationError: The space has no sparse operations.
        """
        if not getattr(space, "sparse_operations", ()) or not space.supports("supernet"):
            raise UnsupportedOperationError(
                f"DASS searches a space with sparse operations among its choices; space "
                f"{space.name!r} has none. Use the space 'dass' (the DARTS cell space built "
                "from DASS's sparse layers), e.g. oneshot.search('dass', data, "
                "space='dass', params={'sparsity': 0.75})."
            )
        return space.supernet(
            **settings.supernet_args(space), num_classes=data.num_classes, sparsity=0.0
        )

    # -- the schedule ------------------------------------------------------------------------
    def bounds(self, epochs: int) -> tuple[int, int]:
        """The first pruning epoch and the first fine-tuning epoch of an ``epochs``-epoch
        search (at least one pruning epoch; the last epochs fine-tune when there are any)."""
        start = min(epochs - 1, round(self.phases[0] * epochs))
        start = max(0, start)
        end = min(epochs, start + max(1, round(self.phases[1] * epochs)))
        return start, end

    def phase_of(self, epoch: int, epochs: int) -> str:
        """The step (``"pretrain"``, ``"prune"``, ``"finetune"``) epoch ``epoch`` belongs to."""
        start, end = self.bounds(epochs)
        return PHASES[0] if epoch < start else PHASES[1] if epoch < end else PHASES[2]

    def schedule(self, state: SearchState, epoch: int) -> float:
        """Cosine annealing within the current step, from ``lr`` (``prune_lr`` for the
        scores) to ``lr_min``."""
        from nasforge.train.schedule import cosine_annealing

        start, end = self.bounds(state.epochs)
        first, length, top = 0, start, self.lr
        if epoch >= end:
            first, length = end, state.epochs - end
        elif epoch >= start:
            first, length, top = start, end - start, self.prune_lr
        return cosine_annealing(epoch - first, max(1, length), lr=top, min_lr=self.lr_min)

    def setup(self, state: SearchState) -> None:
        super().setup(state)
        self._state = state
        self.phase = None

    def _enter(self, state: SearchState, phase: str, fresh: bool = True) -> None:
        """Configure the supernet and the optimiser for ``phase``; ``fresh``: as at the
        step's start (``False`` when resuming: weights, scores and masks come from the
        checkpoint)."""
        import torch

        from nasforge.ops.sparse import learn_scores, set_sparsity, sparse_layers

        net = state.supernet
        layers = sparse_layers(net)
        scores = {id(layer.scores) for _, layer in layers}
        weights = [p for p in net.parameters() if id(p) not in scores]
        share = 0.0 if phase == PHASES[0] else self.sparsity
        if fresh and phase != PHASES[2]:
            set_sparsity(net, share)  # scores re-initialised from the weights
        else:
            for _, layer in layers:
                layer.sparsity = share
        learn_scores(net, phase == PHASES[1])
        for p in weights:
            p.requires_grad_(phase != PHASES[1])
        for p in net.parameters():
            p.grad = None  # a frozen tensor's last gradient must not enter the clipping
        if phase == PHASES[2] and fresh:
            for _, layer in layers:
                layer.apply_mask()  # the pruned weights are zero from here on
        trained = [layer.scores for _, layer in layers] if phase == PHASES[1] else weights
        self.w_optimizer = torch.optim.SGD(
            trained,
            lr=self.prune_lr if phase == PHASES[1] else self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            nesterov=self.nesterov and self.momentum > 0,
        )
        self.phase = phase

    # -- the loop ----------------------------------------------------------------------------
    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        from nasforge.ops.sparse import sparsity_of

        phase = self.phase_of(epoch, state.epochs)
        if phase != self.phase:
            self._enter(state, phase)
        stats = super().train_epoch(state, epoch)
        stats["phase"] = float(PHASES.index(phase))
        stats["sparsity"] = sparsity_of(state.supernet)
        return stats

    def step(self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int) -> Any:
        """DARTS's alternation on the network as it is in this step: ``alpha`` on the
        validation batch, then the weights (pre-training, fine-tuning) or the scores
        (pruning) on the training batch."""
        xt, yt, xv, yv = batch
        self.arch_step(state, xv, yv, epoch, step)
        return self.weight_step(state, xt, yt, epoch, step)

    def extract(self) -> nn.Module:
        """The architecture derived now as a stand-alone network with the supernet's current
        sparse weights, scores and masks (:meth:`nasforge.ops.supernet.Supernet.extract`),
        its scores frozen."""
        from nasforge.ops.sparse import learn_scores

        if self._state is None:
            raise InvalidConfigError("DASS.extract() needs a search: run oneshot.search first.")
        supernet = self._state.supernet
        net = supernet.extract(supernet.derive(self.op_weights(self._state, detach=True)))
        learn_scores(net, False)  # its masks stay fixed when it trains
        return net

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "phase": self.phase}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        phase = state.get("phase")
        if phase is not None and self._state is not None:
            self._enter(self._state, str(phase), fresh=False)
        super().load_state_dict(state)
