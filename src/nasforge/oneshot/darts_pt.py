"""DARTS-PT: perturbation-based architecture selection on a DARTS supernet.

Wang, R., Cheng, M., Chen, X., Tang, X. and Hsieh, C.-J. "Rethinking Architecture Selection
in Differentiable NAS." ICLR 2021, arXiv:2108.04392, Section 4 and Algorithm 1. The
magnitude of ``alpha`` does not say how much an operation contributes to the supernet, so
DARTS-PT selects by *perturbation*: after training the supernet as DARTS does, it takes the
undecided edges one at a time (in random order), removes each candidate operation from the
edge in turn and measures the supernet's validation accuracy; the operation whose removal
hurts most is kept, and the edge is fixed to it (*projected*). Between decisions the supernet
is fine-tuned (``proj_intv`` epochs, weights and the remaining ``alpha``) with the weights'
learning rate lowered to a tenth. In the DARTS space the operations of every edge are
decided first, then each node's two inputs, by removing one input edge at a time and keeping
the two whose removal hurts most.

Schedule (the authors' NAS-Bench-201 code, ruocwang/darts-pt ``nasbench201/projection.py``):
``epochs`` of DARTS (first order), then ``proj_intv * (decisions - 1)`` fine-tuning epochs;
a decision is made at the start of every ``proj_intv``-th fine-tuning epoch and the rest at
the start of the last one. Every epoch (training and fine-tuning) records the architecture
the supernet stands for: decided edges as projected, the others by argmax of ``alpha``.

The decisions come from the supernet's groups (:class:`~nasforge.ops.supernet.DecisionGroup`):
one per row (an edge, or a layer's choice in a macro space) among the options an
architecture can hold, then one per node of a group that keeps ``inputs_per_node`` inputs.

Adaptation: the accuracy is measured on ``proj_images`` validation images (the authors use
the whole validation half; ``None`` does too), in training mode as they do. The fine-tuning
learning rate is constant (the authors reset the optimiser at ``lr / 10``). In the DARTS
space ``none`` is not a candidate of the operation decisions (a genotype cannot hold it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError
from nasforge.oneshot.base import DifferentiableMethod

if TYPE_CHECKING:
    from nasforge.oneshot._engine import SearchState

__all__ = ["DARTSPT"]


@oneshot.register("darts-pt")
class DARTSPT(DifferentiableMethod):
    """DARTS-PT (Wang et al. 2021).

    Args:
        proj_intv: Fine-tuning epochs between two decisions (5 on NAS-Bench-201).
        proj_images: Validation images that score a perturbation (``None``: all).
        Others: see :class:`~nasforge.oneshot.base.DifferentiableMethod` (the supernet is
            trained by first-order DARTS; the authors' weight decay on NAS-Bench-201 is 3e-4).
    """

    default_epochs = 50

    def __init__(
        self,
        *,
        proj_intv: int = 5,
        proj_images: int | None = None,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        nesterov: bool = False,
        grad_clip: float = 5.0,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
    ) -> None:
        if isinstance(proj_intv, bool) or not isinstance(proj_intv, int) or proj_intv < 1:
            raise InvalidConfigError(f"proj_intv must be a positive integer, got {proj_intv!r}.")
        if proj_images is not None and (
            isinstance(proj_images, bool) or not isinstance(proj_images, int) or proj_images < 1
        ):
            raise InvalidConfigError(
                f"proj_images must be a positive integer or None, got {proj_images!r}."
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
        self.proj_intv = proj_intv
        self.proj_images = proj_images
        #: per cell type: the projected operation of each edge (-1: undecided)
        self.projected: list[list[int]] = []
        #: per cell type: edges removed by a node's input decision
        self.removed: list[list[bool]] = []
        #: per cell type: nodes whose inputs are decided
        self.nodes_done: list[list[bool]] = []
        self._tuning_started = False
        self._n_decisions = 0
        self._supernet: Any = None

    def params(self) -> dict[str, Any]:
        return {"proj_intv": self.proj_intv, "proj_images": self.proj_images, **super().params()}

    # -- bookkeeping ----------------------------------------------------------------------------
    def _decisions(self, state: SearchState) -> int:
        edges = sum(n for n, _ in state.supernet.arch_shapes)
        return edges + len(_input_nodes(state.supernet))

    def total_epochs(self, epochs: int) -> int:
        """``epochs`` of DARTS, then the fine-tuning epochs (known after :meth:`setup`)."""
        return epochs + self._tune_epochs

    @property
    def _tune_epochs(self) -> int:
        return self.proj_intv * (self._n_decisions - 1)

    def setup(self, state: SearchState) -> None:
        super().setup(state)
        self._supernet = state.supernet
        self._n_decisions = self._decisions(state)
        self.projected = [[-1] * n for n, _ in state.supernet.arch_shapes]
        self.removed = [[False] * n for n, _ in state.supernet.arch_shapes]
        open_nodes = set(_input_nodes(state.supernet))
        self.nodes_done = [
            [(kind, n) not in open_nodes for n in range(len(group.nodes))]
            for kind, group in enumerate(state.supernet.groups)
        ]

    def _made(self) -> int:
        ops = sum(o >= 0 for kind in self.projected for o in kind)
        nodes = sum(self.nodes_done[kind][n] for kind, n in _input_nodes(self._supernet))
        return ops + nodes

    # -- weights --------------------------------------------------------------------------------
    def op_weights(self, state: SearchState, detach: bool = False) -> list[Any]:
        """``softmax(alpha)`` with decided edges one-hot and removed edges zero."""
        import torch

        out = []
        for kind, w in enumerate(super().op_weights(state, detach)):
            projected = self.projected[kind] if self.projected else []
            removed = self.removed[kind] if self.removed else []
            if not any(o >= 0 for o in projected) and not any(removed):
                out.append(w)
                continue
            rows = []
            for e in range(w.shape[0]):
                if removed[e]:
                    rows.append(torch.zeros_like(w[e]))
                elif projected[e] >= 0:
                    rows.append(
                        torch.nn.functional.one_hot(
                            torch.tensor(projected[e], device=w.device), w.shape[1]
                        ).to(w.dtype)
                    )
                else:
                    rows.append(w[e])
            out.append(torch.stack(rows))
        return out

    # -- the schedule ---------------------------------------------------------------------------
    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        if epoch < state.epochs:
            return super().train_epoch(state, epoch)
        from nasforge.oneshot import _engine

        tune = epoch - state.epochs
        if not self._tuning_started:  # the authors reset the optimiser at lr / 10
            self.w_optimizer = _engine.weight_optimizer(
                state.supernet, self.lr / 10, self.momentum, self.weight_decay, self.nesterov
            )
            self._tuning_started = True
        last = tune == self._tune_epochs - 1
        due = self._n_decisions if last else min(self._n_decisions, tune // self.proj_intv + 1)
        made = []
        while self._made() < due:
            made.append(self.decide(state))
        stats = self._tune(state, epoch)
        if made:
            stats["decision_acc"] = made[-1]
        stats["decided"] = float(self._made())
        return stats

    def schedule(self, state: SearchState, epoch: int) -> float:
        if epoch >= state.epochs:
            return self.lr / 10
        return super().schedule(state, epoch)

    def _tune(self, state: SearchState, epoch: int) -> dict[str, float]:
        return super().train_epoch(state, epoch)

    def step(self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int) -> Any:
        xt, yt, xv, yv = batch
        self.arch_step(state, xv, yv, epoch, step)
        return self.weight_step(state, xt, yt, epoch, step)

    # -- perturbation -----------------------------------------------------------------------------
    def _score(self, state: SearchState, weights: list[Any]) -> float:
        from nasforge.oneshot import _engine

        count = self.proj_images if self.proj_images is not None else len(state.data.valid)
        batches = state.data.fixed("valid", count, state.device)
        accuracy, _ = _engine.supernet_accuracy(
            state.supernet, batches, weights=weights, train_mode=True
        )
        return accuracy

    def decide(self, state: SearchState) -> float:
        """Make the next decision (an edge's operation, then a node's inputs); return the
        supernet accuracy with the chosen operation removed (the decisive perturbation)."""
        open_edges = [
            (kind, e)
            for kind, ops in enumerate(self.projected)
            for e, op in enumerate(ops)
            if op < 0
        ]
        if open_edges:
            kind, edge = open_edges[int(state.rng.integers(len(open_edges)))]
            base = self.op_weights(state, detach=True)
            candidates = list(state.supernet.groups[kind].choosable)
            scores = {}
            for op in candidates:
                weights = [w.clone() for w in base]
                weights[kind][edge, op] = 0.0
                scores[op] = self._score(state, weights)
            chosen = min(candidates, key=lambda o: (scores[o], o))
            self.projected[kind][edge] = chosen
            return scores[chosen]
        open_nodes = [
            (kind, n)
            for kind, flags in enumerate(self.nodes_done)
            for n, done in enumerate(flags)
            if not done
        ]
        kind, node = open_nodes[int(state.rng.integers(len(open_nodes)))]
        group = state.supernet.groups[kind]
        edges = group.nodes[node]
        base = self.op_weights(state, detach=True)
        scores = {}
        for e in edges:
            weights = [w.clone() for w in base]
            weights[kind][e] = 0.0
            scores[e] = self._score(state, weights)
        keep = sorted(edges, key=lambda e: (scores[e], e))[: group.inputs_per_node]
        for e in edges:
            if e not in keep:
                self.removed[kind][e] = True
        self.nodes_done[kind][node] = True
        return min(scores.values())

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        import torch

        return {
            **super().state_dict(),
            "projected": [torch.tensor(p, dtype=torch.long) for p in self.projected],
            "removed": [torch.tensor(r, dtype=torch.bool) for r in self.removed],
            "nodes_done": [torch.tensor(n, dtype=torch.bool) for n in self.nodes_done],
            "tuning_started": self._tuning_started,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from nasforge.oneshot import _engine

        self._tuning_started = bool(state["tuning_started"])
        if self._tuning_started:  # the optimiser of the fine-tuning phase
            self.w_optimizer = _engine.weight_optimizer(
                self._supernet,
                self.lr / 10,
                self.momentum,
                self.weight_decay,
                self.nesterov,
            )
        super().load_state_dict(state)
        self.projected = [[int(v) for v in p.tolist()] for p in state["projected"]]
        self.removed = [[bool(v) for v in r.tolist()] for r in state["removed"]]
        self.nodes_done = [[bool(v) for v in n.tolist()] for n in state["nodes_done"]]


def _input_nodes(supernet: Any) -> list[tuple[int, int]]:
    """The nodes whose inputs are a decision: ``(group, node)`` where the group keeps
    ``inputs_per_node`` inputs and the node has more."""
    return [
        (kind, n)
        for kind, group in enumerate(supernet.groups)
        if group.inputs_per_node is not None
        for n, edges in enumerate(group.nodes)
        if len(edges) > group.inputs_per_node
    ]
