"""RARTS: a first-order relaxed architecture search with data and network splitting.

Xue, F., Qi, Y. and Xin, J. "RARTS: An Efficient First-Order Relaxed Architecture Search
Method." arXiv:2008.03901 (2020; first version "RARTS: a Relaxed Architecture Search Method",
IEEE Access), the method section. DARTS's bi-level problem is replaced by a single-level *relaxed*
one over two copies of the network weights that share one architecture ``alpha``: ``w``
trained on the training half of the data, ``y`` on the validation half (data splitting), the
two tied by a quadratic penalty (network splitting)::

    L(y, w, alpha) = L_val(y, alpha) + lam * L_train(w, alpha) + beta / 2 * ||y - w||^2

Each step is one Gauss-Seidel sweep of first-order updates, each using the newest values::

    w     <- w     - eta_w     * grad_w L_train(w, alpha)
    y     <- y     - eta_y     * (grad_y L_val(y, alpha) + beta * (y - w))
    alpha <- alpha - eta_alpha * (grad_alpha L_val(y, alpha) + lam * grad_alpha L_train(w, alpha))

so the architecture learns from *all* the data (both halves, through both copies) and no
mixed second derivative ``grad^2_{alpha, w}`` is ever taken, unlike second-order DARTS. The
paper proves that its iterations converge under Lipschitz-continuous gradients and small
enough learning rates; the penalty ``beta`` sets how far the two copies may drift apart (0:
two independent copies; very large: one set of weights whose architecture gradient sums
both halves' losses).

Only the paper's abstract could be read where this was written: the update rule above is
nasforge's reading of the method (which copy the penalty moves, the order of the sweep), to
be checked against the paper's method section.

Adaptations (stated, as the paper's text leaves them to the implementation or its values
could not be checked here):

* optimisers: ``w`` and ``y`` each take DARTS's SGD (momentum, Nesterov, weight decay,
  gradient clipping of the loss gradient, cosine schedule: NAS-Bench-201's DARTS protocol,
  see :class:`~nasforge.oneshot.base.DifferentiableMethod`) and ``alpha`` DARTS's Adam, in
  place of the plain gradient steps of the analysis; ``y``'s penalty gradient ``beta (y -
  w)`` is added after clipping, so the coupling is never clipped away;
* ``y`` starts equal to ``w`` (the supernet's initial weights), with batch-norm statistics of
  its own; the derived architecture is the argmax of ``alpha`` as in DARTS;
* defaults ``lam = 1``, ``beta = 1`` and ``eta_y = eta_w`` are nasforge's; the paper's
  settings for CIFAR-10 were not at hand when this was written;
* each step takes four forward/backward passes (two weight copies, then ``alpha`` through
  both), about twice first-order DARTS's two.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError
from nasforge.oneshot.base import DifferentiableMethod, check_non_negative

if TYPE_CHECKING:
    from nasforge.oneshot._engine import SearchState

__all__ = ["RARTS"]


@oneshot.register("rarts")
class RARTS(DifferentiableMethod):
    """RARTS (Xue, Qi and Xin 2020): two weight copies tied by a penalty, one architecture
    learned from both data halves, first-order updates only.

    Args:
        penalty: ``beta``, the weight of ``||y - w||^2 / 2`` that pulls the validation copy
            ``y`` towards the training copy ``w`` (0: two independent copies).
        train_weight: ``lam``, the weight of the training loss in the architecture's
            objective (0: ``alpha`` follows the validation copy alone).
        copy_lr: Initial learning rate of ``y`` (default ``lr``), annealed as ``lr`` is.
        lr, lr_min, momentum, weight_decay, nesterov, grad_clip, arch_lr, arch_weight_decay:
            See :class:`~nasforge.oneshot.base.DifferentiableMethod`.

    Raises:
        InvalidConfigError: A negative penalty or weight, a learning rate that is not
            positive.

    Example:
        >>> from nasforge import oneshot
        >>> from nasforge.oneshot import SupernetSettings
        >>> from nasforge.train import SyntheticImages
        >>> data = SyntheticImages(num_classes=4, n_train=64, n_test=4, size=8).load()
        >>> settings = SupernetSettings(channels=4, cells=1, batch_size=16)
        >>> result = oneshot.search("rarts", data, settings=settings, epochs=1, device="cpu")
        >>> result.study.trials[0].metrics["copy_distance"] > 0
        True
    """

    default_epochs = 50

    def __init__(
        self,
        *,
        penalty: float = 1.0,
        train_weight: float = 1.0,
        copy_lr: float | None = None,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
    ) -> None:
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
        check_non_negative(penalty=penalty, train_weight=train_weight)
        if copy_lr is not None and (
            isinstance(copy_lr, bool) or not isinstance(copy_lr, (int, float)) or copy_lr <= 0
        ):
            raise InvalidConfigError(
                f"copy_lr must be a positive number (or None: lr), got {copy_lr!r}."
            )
        self.penalty = float(penalty)
        self.train_weight = float(train_weight)
        self.copy_lr = self.lr if copy_lr is None else float(copy_lr)
        self.twin: Any = None
        self.y_optimizer: Any = None

    def params(self) -> dict[str, Any]:
        return {
            "penalty": self.penalty,
            "train_weight": self.train_weight,
            "copy_lr": self.copy_lr,
            **super().params(),
        }

    def setup(self, state: SearchState) -> None:
        from nasforge.oneshot import _engine

        super().setup(state)
        self.twin = copy.deepcopy(state.supernet)  # y starts at w
        self.y_optimizer = _engine.weight_optimizer(
            self.twin, self.copy_lr, self.momentum, self.weight_decay, self.nesterov
        )

    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        from nasforge.oneshot import _engine

        scale = self.copy_lr / self.lr  # y follows w's cosine schedule, scaled
        _engine.set_lr(self.y_optimizer, scale * self.schedule(state, epoch))
        self.twin.train()
        stats = super().train_epoch(state, epoch)
        return {**stats, "copy_distance": self.copy_distance(state)}

    def step(self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int) -> Any:
        xt, yt, xv, yv = batch
        logits, loss = self.weight_step(state, xt, yt, epoch, step)  # w, alpha held
        self.copy_step(state, xv, yv, epoch, step)  # y, with the new w
        self.relaxed_arch_step(state, batch, epoch, step)  # alpha, with the new w and y
        return logits, loss

    def twin_forward(self, state: SearchState, x: Any, detach: bool = False) -> Any:
        """The validation copy ``y``'s logits on ``x`` with the current architecture."""
        return self.twin(x, self.op_weights(state, detach), None, self.edge_weights(state, detach))

    def copy_step(self, state: SearchState, x: Any, y: Any, epoch: int, step: int) -> Any:
        """Update ``y`` on a validation batch: its loss gradient plus ``beta (y - w)``."""
        import torch

        from nasforge.oneshot import _engine

        self.y_optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.twin_forward(state, x, detach=True), y)
        _engine.check_finite(loss, "validation-copy", epoch, step, self.current(state))
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.twin.parameters(), self.grad_clip)
        with torch.no_grad():
            for p_y, p_w in zip(self.twin.parameters(), state.supernet.parameters(), strict=True):
                pull = self.penalty * (p_y - p_w)
                if p_y.grad is None:
                    p_y.grad = pull
                else:
                    p_y.grad.add_(pull)
        self.y_optimizer.step()
        return loss

    def relaxed_arch_step(
        self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int
    ) -> None:
        """Update ``alpha`` by ``grad_alpha [L_val(y, alpha) + lam L_train(w, alpha)]``:
        first derivatives only, through both copies."""
        import torch
        from torch.nn.functional import cross_entropy

        from nasforge.oneshot import _engine

        xt, yt, xv, yv = batch
        choices = self.current(state)
        objective = cross_entropy(self.twin_forward(state, xv), yv)
        if self.train_weight > 0:
            objective = objective + self.train_weight * cross_entropy(self.forward(state, xt), yt)
        _engine.check_finite(objective, "architecture", epoch, step, choices)
        grads = torch.autograd.grad(objective, self.alphas, allow_unused=True)
        self.a_optimizer.zero_grad(set_to_none=True)
        for a, g in zip(self.alphas, grads, strict=True):
            a.grad = torch.zeros_like(a) if g is None else g
        self.a_optimizer.step()

    def copy_distance(self, state: SearchState) -> float:
        """``||y - w|| / ||w||`` over all the supernet's weights (0: the copies agree)."""
        import torch

        with torch.no_grad():
            gap = norm = 0.0
            for p_y, p_w in zip(self.twin.parameters(), state.supernet.parameters(), strict=True):
                gap += float((p_y - p_w).pow(2).sum())
                norm += float(p_w.pow(2).sum())
        return math.sqrt(gap / norm) if norm > 0 else math.sqrt(gap)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "twin": {k: v.detach().cpu().clone() for k, v in self.twin.state_dict().items()},
            "y_optimizer": self.y_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.twin.load_state_dict(state["twin"])
        self.y_optimizer.load_state_dict(state["y_optimizer"])
