"""SD-DARTS: DARTS with self-distillation from the supernet's earlier steps.

Zhu, X., Li, J., Liu, Y. and Wang, W. "Improving Differentiable Architecture Search via
Self-Distillation" (SD-DARTS), Neural Networks 2023, arXiv:2302.05629. DARTS's supernet
tends to sharp minima of its loss, which widens the gap between the supernet and the
discrete architecture derived from it. SD-DARTS lets the supernet of earlier training steps
teach the supernet of the current step: its soft predictions are targets of a
Kullback-Leibler term beside the cross-entropy, which keeps consecutive iterates' outputs
close and flattens the loss. With *voting teachers*, the supernets of the ``K`` previous
steps each predict the current batch and their tempered probabilities are averaged (the
vote) into the one teacher distribution. At step ``t`` the weights descend::

    CE(f_t(x), y) + lambda * tau^2 * KL( mean_k softmax(f_{t-k}(x) / tau) || softmax(f_t(x) / tau) )

``k = 1..K``, where ``f_s`` is the supernet (weights and architecture) with which step ``s``
took its training forward pass, and ``tau^2`` keeps the term's gradient on the scale of the
cross-entropy's (Hinton et al. 2015). At the first step no earlier supernet exists and the
term is zero; until ``K`` steps have passed, the ones that exist vote. The architecture
steps are DARTS's (first order by default, ``order=2`` for the unrolled update).

Only the paper's abstract could be read where this was written; the loss above is nasforge's
reading of its description (earlier supernets as teachers of the current one, several of
them voting with their output probabilities), to be checked against the paper's method
section.

Adaptations (stated, as the paper's values could not be checked here):

* which loss: the term is added to the weights' training loss (the supernet's training that
  the teachers guide); the architecture's validation loss is DARTS's;
* teachers are re-run: the earlier supernets' weights and ``alpha`` are kept (``K`` copies)
  and each predicts the current batch without gradient, in training mode (batch statistics,
  as the student); a step costs ``K`` extra forward passes;
* defaults ``K = 2`` teachers, ``tau = 3`` and ``lambda = 1`` (the temperature and weight of
  last-mini-batch self-distillation, Shen et al., CVPR 2022, on CIFAR);
  hyperparameters otherwise NAS-Bench-201's DARTS protocol
  (:class:`~nasforge.oneshot.base.DifferentiableMethod`). ``train_loss`` in the statistics
  is the cross-entropy alone (comparable with DARTS's); ``distill_loss`` is the term.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError
from nasforge.oneshot.base import check_non_negative
from nasforge.oneshot.darts import DARTS

if TYPE_CHECKING:
    import torch

    from nasforge.oneshot._engine import SearchState

__all__ = ["SDDARTS", "distillation", "vote"]


def vote(teacher_logits: Sequence[torch.Tensor], temperature: float) -> torch.Tensor:
    """The voting teachers' distribution: the mean over teachers of ``softmax(logits / tau)``."""
    probs = [(logits / temperature).softmax(dim=-1) for logits in teacher_logits]
    total = probs[0]
    for p in probs[1:]:
        total = total + p
    return total / len(probs)


def distillation(
    student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``tau^2 * KL(teacher || softmax(student / tau))``, averaged over the batch."""
    import torch

    log_q = torch.log_softmax(student_logits / temperature, dim=-1)
    kl = torch.nn.functional.kl_div(log_q, teacher_probs, reduction="batchmean")
    return temperature**2 * kl


@oneshot.register("sd-darts")
class SDDARTS(DARTS):
    """SD-DARTS (Zhu et al. 2023): DARTS whose weights also learn from the tempered
    predictions of the supernets of the previous ``teachers`` steps.

    Args:
        teachers: ``K``, how many previous steps' supernets vote (1: the last one alone).
        distill_weight: ``lambda``, the weight of the distillation term (0: DARTS).
        temperature: ``tau``, the softmax temperature of teachers and student.
        order, lr, lr_min, momentum, weight_decay, nesterov, grad_clip, arch_lr,
            arch_weight_decay: See :class:`~nasforge.oneshot.darts.DARTS`.

    Raises:
        InvalidConfigError: ``teachers`` not a positive integer, a negative weight or a
            temperature that is not positive.

    Example:
        >>> from nasforge import oneshot
        >>> from nasforge.oneshot import SupernetSettings
        >>> from nasforge.train import SyntheticImages
        >>> data = SyntheticImages(num_classes=4, n_train=64, n_test=4, size=8).load()
        >>> settings = SupernetSettings(channels=4, cells=1, batch_size=16)
        >>> result = oneshot.search("sd-darts", data, settings=settings, epochs=1, device="cpu")
        >>> result.study.trials[0].metrics["distill_loss"] > 0
        True
    """

    default_epochs = 50

    def __init__(
        self,
        *,
        teachers: int = 2,
        distill_weight: float = 1.0,
        temperature: float = 3.0,
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
        if isinstance(teachers, bool) or not isinstance(teachers, int) or teachers < 1:
            raise InvalidConfigError(
                f"teachers must be a positive integer (previous steps that vote), got {teachers!r}."
            )
        check_non_negative(distill_weight=distill_weight)
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or temperature <= 0
        ):
            raise InvalidConfigError(f"temperature must be a positive number, got {temperature!r}.")
        self.teachers = teachers
        self.distill_weight = float(distill_weight)
        self.temperature = float(temperature)
        self.history: deque[dict[str, Any]] = deque(maxlen=teachers)
        self.teacher_net: Any = None
        self.last_distill = 0.0
        self._distill_sum = 0.0
        self._distill_steps = 0

    def params(self) -> dict[str, Any]:
        return {
            "teachers": self.teachers,
            "distill_weight": self.distill_weight,
            "temperature": self.temperature,
            **super().params(),
        }

    def setup(self, state: SearchState) -> None:
        super().setup(state)
        self.teacher_net = copy.deepcopy(state.supernet)  # holds one teacher at a time
        self.history.clear()

    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        self._distill_sum, self._distill_steps = 0.0, 0
        stats = super().train_epoch(state, epoch)
        return {**stats, "distill_loss": self._distill_sum / max(1, self._distill_steps)}

    def snapshot(self, state: SearchState) -> dict[str, Any]:
        """The supernet as it is now: its weights (and buffers) and ``alpha``."""
        return {
            "weights": {k: v.detach().clone() for k, v in state.supernet.state_dict().items()},
            "alphas": [a.detach().clone() for a in self.alphas],
        }

    def teacher_logits(self, state: SearchState, x: Any) -> list[Any]:
        """Each kept earlier supernet's logits on ``x`` (no gradient), oldest first."""
        import torch

        found = []
        live = self.alphas
        self.teacher_net.train(state.supernet.training)
        with torch.no_grad():
            for teacher in self.history:
                self.teacher_net.load_state_dict(teacher["weights"])
                self.alphas = teacher["alphas"]
                try:
                    weights = self.op_weights(state, True)
                    edges = self.edge_weights(state, True)
                finally:
                    self.alphas = live
                found.append(self.teacher_net(x, weights, None, edges))
        return found

    def distill_term(self, state: SearchState, x: Any, logits: Any) -> Any:
        """``lambda * tau^2 * KL(vote || student)`` on ``x`` for the student's ``logits``;
        zero (a tensor) while no earlier step exists or ``lambda`` is 0."""
        import torch

        if not self.history or self.distill_weight == 0:
            return torch.zeros((), device=logits.device)
        teacher = vote(self.teacher_logits(state, x), self.temperature)
        return self.distill_weight * distillation(logits, teacher, self.temperature)

    def weight_step(
        self, state: SearchState, x: Any, y: Any, epoch: int, step: int, detach: bool = True
    ) -> tuple[Any, Any]:
        """DARTS's weight update with the distillation term; the supernet as it takes this
        step then joins the teachers of the next steps."""
        import torch

        from nasforge.oneshot import _engine

        now = self.snapshot(state)
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.forward(state, x, detach=detach)
        ce = torch.nn.functional.cross_entropy(logits, y)
        term = self.distill_term(state, x, logits)
        loss = ce + term
        _engine.check_finite(loss, "weight", epoch, step, self.current(state))
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(state.supernet.parameters(), self.grad_clip)
        self.w_optimizer.step()
        self.history.append(now)
        self.last_distill = float(term.detach())
        self._distill_sum += self.last_distill
        self._distill_steps += 1
        return logits, ce

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "history": [
                {
                    "weights": {k: v.cpu() for k, v in teacher["weights"].items()},
                    "alphas": [a.cpu() for a in teacher["alphas"]],
                }
                for teacher in self.history
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        device = self.alphas[0].device if self.alphas else None
        self.history.clear()
        for teacher in state["history"]:
            self.history.append(
                {
                    "weights": {k: v.to(device) for k, v in teacher["weights"].items()},
                    "alphas": [a.to(device) for a in teacher["alphas"]],
                }
            )
