"""Single-level DARTS: weights and architecture updated together on the same batch.

Hou, P., Jin, Y. and Chen, Y. "Single-DARTS: Towards Stable Architecture Search." ICCV 2021
Workshops, arXiv:2108.08128. DARTS's bi-level optimisation (weights on training data,
architecture on validation data) is what drives its collapse towards parameter-free
operations; Single-DARTS drops it: one loss on one batch, one backward pass, and both the
weights (SGD) and the architecture parameters (Adam) step on its gradient.

Adaptation: the search still splits the training images in two halves (so that it sees the
same data as DARTS in the same number of steps); every step takes one single-level update on
a batch of each half, so all the data trains both the weights and the architecture.
Hyperparameters are DARTS's (NAS-Bench-201 protocol, see
:class:`~nasforge.oneshot.base.DifferentiableMethod`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.oneshot.base import DifferentiableMethod

if TYPE_CHECKING:
    from nasforge.oneshot._engine import SearchState

__all__ = ["SingleLevelDARTS"]


@oneshot.register("single-level-darts")
class SingleLevelDARTS(DifferentiableMethod):
    """Single-level DARTS (Hou et al. 2021); hyperparameters as
    :class:`~nasforge.oneshot.base.DifferentiableMethod`."""

    default_epochs = 50

    def step(self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int) -> Any:
        xt, yt, xv, yv = batch
        self.joint_step(state, xv, yv, epoch, step)
        return self.joint_step(state, xt, yt, epoch, step)

    def joint_step(self, state: SearchState, x: Any, y: Any, epoch: int, step: int) -> Any:
        """One loss, one backward pass, both optimisers step."""
        import torch

        from nasforge.oneshot import _engine

        self.w_optimizer.zero_grad(set_to_none=True)
        self.a_optimizer.zero_grad(set_to_none=True)
        logits = self.forward(state, x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        _engine.check_finite(loss, "training", epoch, step, self.current(state))
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(state.supernet.parameters(), self.grad_clip)
        self.w_optimizer.step()
        self.a_optimizer.step()
        return logits, loss
