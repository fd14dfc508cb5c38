"""The Lion optimiser (EvoLved Sign Momentum).

Chen, X., Liang, C., Huang, D., Real, E., Wang, K., Liu, Y., Pham, H., Dong, X., Luong, T.,
Hsieh, C.-J., Lu, Y. and Le, Q. V. "Symbolic Discovery of Optimization Algorithms."
NeurIPS 2023, arXiv:2302.06675, Algorithm 2. For a parameter ``theta`` with gradient ``g``,
momentum ``m`` (zero at the start), learning rate ``lr``, weight decay ``wd`` and
``beta1, beta2``, one step is::

    c     = beta1 * m + (1 - beta1) * g          # interpolation for the update
    theta = theta - lr * (sign(c) + wd * theta)  # sign update and decoupled weight decay
    m     = beta2 * m + (1 - beta2) * g          # momentum, with the other beta

Every coordinate moves by exactly ``lr`` (plus the decay), so the update has a larger norm
than Adam's: the paper uses a learning rate 3-10x smaller and a weight decay 3-10x larger
than AdamW's, and ``betas=(0.9, 0.99)`` by default. ``sign(0) = 0`` as in ``torch.sign``.
The paper's Algorithm 2 writes the decay as ``theta * (1 - lr * wd)`` applied with the sign
update; that is the same step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from nasforge.errors import InvalidConfigError

__all__ = ["Lion"]


class Lion(Optimizer):
    """Lion (Chen et al., 2023): sign of an interpolated momentum, decoupled weight decay.

    Args:
        params: Parameters or parameter groups, as for any ``torch.optim`` optimiser.
        lr: Learning rate (default 1e-4, the paper's usual choice).
        betas: ``(beta1, beta2)``: interpolation of the update, decay of the momentum.
        weight_decay: Decoupled weight decay ``wd``.

    Example:
        >>> p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
        >>> opt = Lion([p], lr=0.1, betas=(0.9, 0.99), weight_decay=0.0)
        >>> p.grad = torch.tensor([0.3, -0.1, 0.0])
        >>> opt.step()
        >>> p.detach()
        tensor([ 0.9000, -1.9000,  0.5000])
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        if not lr > 0:
            raise InvalidConfigError(f"Lion learning rate must be positive, got {lr!r}.")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise InvalidConfigError(f"Lion betas must be two numbers in [0, 1), got {betas!r}.")
        if weight_decay < 0:
            raise InvalidConfigError(f"Lion weight decay must be >= 0, got {weight_decay!r}.")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One Lion step for every parameter with a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = float(group["lr"])
            beta1, beta2 = group["betas"]
            decay = float(group["weight_decay"])
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                if grad.is_sparse:
                    raise InvalidConfigError("Lion does not support sparse gradients.")
                state = self.state[param]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                momentum = state["exp_avg"]
                update = momentum.mul(beta1).add_(grad, alpha=1.0 - beta1).sign_()
                if decay:
                    param.mul_(1.0 - lr * decay)
                param.add_(update, alpha=-lr)
                momentum.mul_(beta2).add_(grad, alpha=1.0 - beta2)
        return loss
