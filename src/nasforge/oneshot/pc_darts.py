"""PC-DARTS: partial channel connections and edge normalisation.

Xu, Y., Xie, L., Zhang, X., Chen, X., Qi, G.-J., Tian, Q. and Xiong, H. "PC-DARTS: Partial
Channel Connections for Memory-Efficient Architecture Search." ICLR 2020, arXiv:1907.05737,
Section 3. Each mixed edge sends only ``1/K`` of its input channels through the operations
and passes the rest by (max-pooled at stride 2), then shuffles the channels, which cuts the
memory of the mixed operations by about ``K``. Because the sampled channels change the
operations' outputs from step to step, *edge normalisation* adds a weight ``beta`` per edge:
node ``j`` sums its inputs with weights ``softmax_i(beta_{i,j})``, and the derivation ranks
a node's input edges by ``softmax(beta) * softmax(alpha)`` (the operation within an edge is
still the argmax of ``alpha``). Updates are DARTS's first order.

Adaptation: the channels are the first ``C / K`` (the reference code, yuhuixu1993/PC-DARTS
``model_search.py``, does the same and relies on the shuffle to vary them across cells). The
paper searched the DARTS space with batch 256, lr 0.1 and architecture lr 6e-4 and did not
update the architecture for the first 15 of 50 epochs; nasforge keeps the warm-up, the
architecture learning rate and ``K = 4`` and takes batch 64 and lr 0.025 of the NAS-Bench-201
protocol. In NAS-Bench-201 every edge is kept, so ``beta`` only shapes training there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError
from nasforge.oneshot.base import DifferentiableMethod

if TYPE_CHECKING:
    from nasforge.oneshot._engine import SearchState

__all__ = ["PCDARTS"]


@oneshot.register("pc-darts")
class PCDARTS(DifferentiableMethod):
    """PC-DARTS (Xu et al. 2020).

    Args:
        k: The channel share is ``1 / k`` (4 in the paper); must divide the channels.
        warmup_epochs: Epochs at the start that train only the weights (15 in the paper).
        Others: see :class:`~nasforge.oneshot.base.DifferentiableMethod` (``arch_lr``
            defaults to the paper's 6e-4).
    """

    default_epochs = 50

    def __init__(
        self,
        *,
        k: int = 4,
        warmup_epochs: int = 15,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        arch_lr: float = 6e-4,
        arch_weight_decay: float = 1e-3,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidConfigError(f"PC-DARTS k must be a positive integer, got {k!r}.")
        if (
            isinstance(warmup_epochs, bool)
            or not isinstance(warmup_epochs, int)
            or warmup_epochs < 0
        ):
            raise InvalidConfigError(
                f"warmup_epochs must be a non-negative integer, got {warmup_epochs!r}."
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
        self.k = k
        self.warmup_epochs = warmup_epochs

    @property
    def partial_channels(self) -> int:  # type: ignore[override]
        return self.k

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "warmup_epochs": self.warmup_epochs, **super().params()}

    def extra_shapes(self, state: SearchState) -> tuple[tuple[int, ...], ...]:
        return tuple((edges,) for edges, _ in state.supernet.arch_shapes)

    def edge_weights(self, state: SearchState, detach: bool = False) -> list[Any] | None:
        """``softmax(beta)`` over the input edges of each node, per cell type."""
        import torch

        kinds = len(state.supernet.arch_shapes)
        out = []
        for kind, beta in enumerate(self.alphas[kinds:]):
            beta = beta.detach() if detach else beta
            parts = [beta[list(edges)].softmax(dim=-1) for edges in state.supernet.node_edges[kind]]
            out.append(torch.cat(parts))
        return out

    def step(self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int) -> Any:
        xt, yt, xv, yv = batch
        if epoch >= self.warmup_epochs:
            self.arch_step(state, xv, yv, epoch, step)
        return self.weight_step(state, xt, yt, epoch, step)
