"""DARTS: bi-level differentiable architecture search, first and second order.

Liu, H., Simonyan, K. and Yang, Y. "DARTS: Differentiable Architecture Search." ICLR 2019,
arXiv:1806.09055, Section 2 and Algorithm 1. Each edge mixes its operations with the
weights ``softmax(alpha)``; the network weights ``w`` descend the training loss and the
architecture ``alpha`` the validation loss (two halves of the training images). Each step
first updates ``alpha`` on a validation batch, then ``w`` on a training batch, as the
reference code (quark0/darts ``cnn/train_search.py``) does.

* ``order=1``: ``alpha`` follows ``grad_alpha L_val(w, alpha)``.
* ``order=2``: ``alpha`` follows the gradient at the *unrolled* weights
  ``w' = w - xi * grad_w L_train(w, alpha)`` (one virtual step of the weights' SGD, momentum
  and weight decay included, with ``xi`` the current learning rate):
  ``grad_alpha L_val(w', alpha) - xi * grad^2_{alpha, w} L_train(w, alpha) grad_w' L_val``,
  the Hessian-vector product taken by finite differences with ``epsilon = 0.01 / ||grad_w'
  L_val||`` (Equation 8 of the paper; ``cnn/architect.py`` of the reference).

Derivation: NAS-Bench-201 takes the largest weight per edge, ``none`` included; the DARTS
space keeps the two strongest non-``none`` inputs per node (the supernet's ``derive``).

Adaptation: hyperparameters default to NAS-Bench-201's DARTS protocol (see
:class:`~nasforge.oneshot.base.DifferentiableMethod`); batches are drawn with the search's
seeded generator, and batch norm of the mixed operations has no affine parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError
from nasforge.oneshot.base import DifferentiableMethod

if TYPE_CHECKING:
    from nasforge.oneshot._engine import SearchState

__all__ = ["DARTS"]


@oneshot.register("darts")
class DARTS(DifferentiableMethod):
    """DARTS (Liu et al. 2019), ``order`` 1 (first-order approximation) or 2 (unrolled).

    Args:
        order: 1 or 2.
        lr, lr_min, momentum, weight_decay, nesterov, grad_clip, arch_lr, arch_weight_decay:
            See :class:`~nasforge.oneshot.base.DifferentiableMethod`.

    Raises:
        InvalidConfigError: ``order`` is not 1 or 2, or a rate is negative.
    """

    default_epochs = 50

    def __init__(
        self,
        *,
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
        if order not in (1, 2):
            raise InvalidConfigError(
                f"DARTS order must be 1 (first-order) or 2 (second-order), got {order!r}."
            )
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
        self.order = order

    def params(self) -> dict[str, Any]:
        return {"order": self.order, **super().params()}

    def step(self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int) -> Any:
        xt, yt, xv, yv = batch
        if self.order == 1:
            self.arch_step(state, xv, yv, epoch, step)
        else:
            self.unrolled_arch_step(state, batch, epoch, step)
        return self.weight_step(state, xt, yt, epoch, step)

    def unrolled_arch_step(
        self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int
    ) -> None:
        """The second-order architecture update (Equations 7 and 8 of the paper)."""
        import torch
        from torch.nn.functional import cross_entropy

        from nasforge.oneshot import _engine

        xt, yt, xv, yv = batch
        net = state.supernet
        params = [p for p in net.parameters() if p.requires_grad]
        xi = float(self.w_optimizer.param_groups[0]["lr"])
        backup = [p.detach().clone() for p in params]
        choices = self.current(state)
        # the virtual step w' = w - xi * (momentum * buffer + grad + weight_decay * w)
        loss = cross_entropy(self.forward(state, xt, detach=True), yt)
        _engine.check_finite(loss, "weight", epoch, step, choices)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                g = torch.zeros_like(p) if g is None else g
                buffer = self.w_optimizer.state.get(p, {}).get("momentum_buffer")
                move = g + self.weight_decay * p
                if buffer is not None:
                    move = move + self.momentum * buffer
                p.sub_(xi * move)
        # validation loss at w': gradient to alpha and to w'
        val = cross_entropy(self.forward(state, xv), yv)
        _engine.check_finite(val, "architecture", epoch, step, choices)
        found = torch.autograd.grad(val, [*self.alphas, *params], allow_unused=True)
        d_alpha = [
            torch.zeros_like(a) if g is None else g
            for a, g in zip(self.alphas, found[: len(self.alphas)], strict=True)
        ]
        d_w = [
            torch.zeros_like(p) if g is None else g
            for p, g in zip(params, found[len(self.alphas) :], strict=True)
        ]
        squares = [(g * g).sum() for g in d_w]
        total = squares[0]
        for square in squares[1:]:  # in order, as sum() adds them
            total = total + square
        norm = torch.sqrt(total)
        eps = 0.01 / float(norm) if float(norm) > 0 else 0.0
        implicit = [torch.zeros_like(a) for a in self.alphas]
        if eps > 0:
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    for p, b, g in zip(params, backup, d_w, strict=True):
                        p.copy_(b + sign * eps * g)
                train = cross_entropy(self.forward(state, xt), yt)
                g_alpha = torch.autograd.grad(train, self.alphas, allow_unused=True)
                for acc, g in zip(implicit, g_alpha, strict=True):
                    if g is not None:
                        acc.add_(sign * g / (2 * eps))
        with torch.no_grad():
            for p, b in zip(params, backup, strict=True):
                p.copy_(b)
        self.a_optimizer.zero_grad(set_to_none=True)
        for a, g, h in zip(self.alphas, d_alpha, implicit, strict=True):
            a.grad = g - xi * h
        self.a_optimizer.step()
