"""GDAS: differentiable sampling of one operation per edge with the Gumbel-softmax.

Dong, X. and Yang, Y. "Searching for A Robust Neural Architecture in Four GPU Hours." CVPR
2019, arXiv:1910.04465, Section 3. Each step samples one operation per edge from
``softmax(alpha)`` with the Gumbel-max trick and computes only that operation (a *hard*,
one-hot forward); the backward pass uses the Gumbel-softmax relaxation
``softmax((log_softmax(alpha) + g) / tau)`` (straight-through: ``h = onehot - p.detach() +
p``), so every ``alpha`` of the edge gets a gradient. The temperature ``tau`` falls linearly
from ``tau_max`` (10) to ``tau_min`` (0.1) over the epochs. Both the weight step (training
half) and the architecture step (validation half) sample, as in the authors' NAS-Bench-201
code (D-X-Y/AutoDL-Projects ``exps/NAS-Bench-201-algos/GDAS.py``), and the derived
architecture is the argmax of ``alpha`` per edge.

Adaptation: the Gumbel noise is drawn from the search's seeded CPU generator (redrawn, as in
the reference, in the rare case it makes a weight non-finite). The NAS-Bench-201 paper reports
GDAS searched for 250 epochs (``default_epochs``; its repository's ``GDAS.config`` says 240);
the optimisers are DARTS's. In the DARTS space the reduction
cell is searched too (the paper fixes it by hand).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError
from nasforge.oneshot.base import DifferentiableMethod

if TYPE_CHECKING:
    from nasforge.oneshot._engine import SearchState

__all__ = ["GDAS", "gumbel_hard"]


def gumbel_hard(alpha: Any, tau: float, generator: Any) -> tuple[Any, list[int]]:
    """Straight-through Gumbel-softmax sample of one operation per row of ``alpha``.

    Returns the hard weights (one-hot in value, the relaxed softmax's gradient) and the
    chosen operation of each row.
    """
    import torch

    while True:
        noise = torch.empty(alpha.shape).exponential_(generator=generator).log().neg()
        logits = (alpha.log_softmax(dim=-1) + noise.to(alpha.device)) / tau
        probs = logits.softmax(dim=-1)
        if bool(torch.isfinite(probs).all()):
            break
    index = probs.detach().argmax(dim=-1)
    onehot = torch.zeros_like(probs).scatter_(-1, index[:, None], 1.0)
    return onehot - probs.detach() + probs, [int(i) for i in index.tolist()]


@oneshot.register("gdas")
class GDAS(DifferentiableMethod):
    """GDAS (Dong and Yang 2019).

    Args:
        tau_max, tau_min: The temperature's start and end (linear schedule over the epochs).
        Others: see :class:`~nasforge.oneshot.base.DifferentiableMethod`.
    """

    default_epochs = 250

    def __init__(
        self,
        *,
        tau_max: float = 10.0,
        tau_min: float = 0.1,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
    ) -> None:
        if not 0 < tau_min <= tau_max:
            raise InvalidConfigError(
                f"GDAS needs 0 < tau_min <= tau_max, got tau_min={tau_min}, tau_max={tau_max}."
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
        self.tau_max = float(tau_max)
        self.tau_min = float(tau_min)
        self.tau = self.tau_max
        self.last_index: list[list[int]] = []

    def params(self) -> dict[str, Any]:
        return {"tau_max": self.tau_max, "tau_min": self.tau_min, **super().params()}

    def temperature(self, epoch: int, epochs: int) -> float:
        """``tau_max - (tau_max - tau_min) * epoch / (epochs - 1)``."""
        if epochs <= 1:
            return self.tau_max
        return self.tau_max - (self.tau_max - self.tau_min) * epoch / (epochs - 1)

    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        self.tau = self.temperature(epoch, state.epochs)
        return {**super().train_epoch(state, epoch), "tau": self.tau}

    def forward(self, state: SearchState, x: Any, detach: bool = False) -> Any:
        weights, index = [], []
        for alpha in self.alphas:
            hard, chosen = gumbel_hard(
                alpha.detach() if detach else alpha, self.tau, state.generator
            )
            weights.append(hard)
            index.append(chosen)
        self.last_index = index
        return state.supernet(x, weights, index)

    def step(self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int) -> Any:
        xt, yt, xv, yv = batch
        result = self.weight_step(state, xt, yt, epoch, step)
        self.arch_step(state, xv, yv, epoch, step)
        return result
