"""FBNet: a Gumbel-softmax supernet with the latency of a per-layer lookup table in its loss.

Wu, B., Dai, X., Zhang, P., Wang, Y., Sun, F., Wu, Y., Tian, Y., Vajda, P., Jia, Y. and
Keutzer, K. "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural
Architecture Search." CVPR 2019, arXiv:1812.03443, Sections 3.2-3.3 and 4.1. Every searchable
layer of the space's mobile supernet (:mod:`nasforge.ops.mobile_search_net`; on the ``fbnet``
space the 9 blocks of Table 2 on each of its 22 layers) mixes its candidates with the
Gumbel-softmax weights ``m = softmax((theta + g) / tau)``
(:func:`~nasforge.ops.mobile_supernet.gumbel_softmax`), so every candidate runs and the loss
is differentiable in ``theta``.

Each epoch first trains the weights ``w_a`` on the weights' half (SGD, cosine schedule,
``theta`` fixed, noise redrawn each step), then ``theta`` on the architecture's half (Adam)
with the paper's loss ``CE * alpha * log(LAT)^beta`` (``alpha`` 0.2, ``beta`` 0.6;
:func:`~nasforge.ops.mobile_supernet.fbnet_loss`), where ``LAT = fixed + sum_layers sum_i
m_i LAT(b_i)`` comes from a per-layer latency table
(:class:`~nasforge.hardware.layer_lut.LayerLatencyTable`) for the chosen backend. The
temperature starts at 5.0 and is multiplied by ``exp(-0.045)`` every epoch
(:func:`~nasforge.ops.mobile_supernet.fbnet_temperature`, counted from the first epoch that
trains ``theta``). The first ``warmup_epochs`` train the weights only, as the search trains
the operators' weights before the architecture distribution. The derived architecture of an
epoch is the most likely block of each layer (the paper samples from ``P_theta``; the argmax
makes the record deterministic), recorded with its predicted latency.

Defaults as we read Section 4.1 (90 epochs; ``w_a`` by SGD with momentum, lr 0.1, cosine;
``theta`` by Adam, lr 0.01, weight decay 5e-4; ``theta`` initialised to zeros' neighbourhood)
and the common reimplementations (10 warm-up epochs, weight decay 1e-4 on ``w_a``); the
search data halves are NAS-Bench-201's protocol, not the paper's 80/20 split of
ImageNet-100. ``unit="us"`` expresses ``LAT`` in microseconds, for CPU networks faster than
1 ms, where ``log(LAT)`` in ms would be negative; ``unit="auto"`` (the default) takes
milliseconds, as the paper, unless the supernet's fastest network runs in 1 ms or less.

A latency target (``target_ms``) has no place in the paper's loss; given, it is checked
(an :class:`~nasforge.errors.InfeasibleConstraintError` names the fastest reachable latency
when no network meets it) and recorded beside each derived network.

Example (a latency table made up for the example; measure one with
:func:`nasforge.hardware.layer_measure.measure_table`, or leave ``table`` out):
    >>> from nasforge import oneshot, spaces
    >>> from nasforge.hardware.layer_lut import LayerLatencyTable
    >>> from nasforge.testing.contracts import HashEvaluator
    >>> from nasforge.train import SyntheticImages
    >>> small = {"width_mult": 0.25, "resolution": 32, "stem_stride": 1, "first_stride": 1}
    >>> net = spaces.create("mobilenet").supernet(num_classes=4, **small)
    >>> table = LayerLatencyTable({s.key: 0.1 * s.kernel * s.expansion
    ...                            for s in net.all_specs()}, fixed_ms=0.5, backend="torch")
    >>> result = oneshot.search(
    ...     "fbnet", SyntheticImages(num_classes=4, n_train=32, size=32).load(),
    ...     space="mobilenet", params={"table": table, "warmup_epochs": 0, "unit": "us"}, epochs=1,
    ...     settings=oneshot.SupernetSettings(batch_size=16, options=small),
    ...     evaluator=HashEvaluator("mobilenet"), device="cpu", threads=1)
    >>> trial = result.study.trials[0]
    >>> layers = spaces.create("mobilenet").layers(trial.arch, num_classes=4, **small)
    >>> abs(trial.metrics["predicted_latency_ms"] - table.predict(layers)) < 1e-6
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError
from nasforge.oneshot._latency import TablePricing, check_backend, check_target, table_label
from nasforge.oneshot.base import DifferentiableMethod

if TYPE_CHECKING:
    from nasforge.oneshot._engine import SearchState

__all__ = ["FBNet"]

_UNITS = {"ms": 1.0, "us": 1000.0}


@oneshot.register("fbnet")
class FBNet(TablePricing, DifferentiableMethod):
    """FBNet's differentiable search (Wu et al. 2019), see the module docstring.

    Args:
        table: The per-layer latency table (a ``LayerLatencyTable`` or its CSV path); ``None``
            measures one for the supernet's layers on this machine with ``backend`` (measured
            again on resume: give a table for a search that must resume bit for bit).
        backend: ``"torch"`` or ``"onnxruntime"`` (only used to measure a table).
        target_ms: A latency target, checked and recorded (not part of the loss).
        alpha, beta: Of the loss ``CE * alpha * log(LAT)^beta``.
        unit: ``"ms"`` (the paper), ``"us"``, or ``"auto"``: the unit of ``LAT`` in the loss
            (``auto``: ms, or us where the fastest network takes 1 ms or less).
        tau, tau_decay: Initial temperature and its factor per epoch.
        warmup_epochs: Epochs training the weights only (``theta`` fixed).
        Others: see :class:`~nasforge.oneshot.base.DifferentiableMethod`.
    """

    default_epochs = 90
    space_requires = ("layers",)

    def __init__(
        self,
        *,
        table: Any = None,
        backend: str = "torch",
        target_ms: float | None = None,
        alpha: float = 0.2,
        beta: float = 0.6,
        unit: str = "auto",
        tau: float = 5.0,
        tau_decay: float = 0.956,
        warmup_epochs: int = 10,
        lr: float = 0.1,
        lr_min: float = 0.0,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        nesterov: bool = False,
        grad_clip: float = 0.0,
        arch_lr: float = 0.01,
        arch_weight_decay: float = 5e-4,
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
        for name, value in (("alpha", alpha), ("beta", beta), ("tau", tau)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidConfigError(f"{name} must be a positive number, got {value!r}.")
        if not isinstance(tau_decay, (int, float)) or not 0 < tau_decay <= 1:
            raise InvalidConfigError(f"tau_decay must be in (0, 1], got {tau_decay!r}.")
        if unit not in (*_UNITS, "auto"):
            raise InvalidConfigError(
                f"unit must be one of {sorted(_UNITS)} or 'auto', got {unit!r}."
            )
        if (
            isinstance(warmup_epochs, bool)
            or not isinstance(warmup_epochs, int)
            or warmup_epochs < 0
        ):
            raise InvalidConfigError(
                f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}."
            )
        self.table = table
        self.backend = check_backend(backend)
        self.target_ms = check_target(target_ms)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.unit = unit
        self.tau0 = float(tau)
        self.tau_decay = float(tau_decay)
        self.tau = self.tau0
        self.warmup_epochs = warmup_epochs
        self.latency: list[Any] = []
        self.fixed_ms = 0.0

    def params(self) -> dict[str, Any]:
        return {
            "table": table_label(self.table),
            "backend": self.backend,
            "target_ms": self.target_ms,
            "alpha": self.alpha,
            "beta": self.beta,
            "unit": self.unit,
            "tau": self.tau0,
            "tau_decay": self.tau_decay,
            "warmup_epochs": self.warmup_epochs,
            **super().params(),
        }

    def setup(self, state: SearchState) -> None:
        import torch

        from nasforge.ops.mobile_search_net import searched_supernet

        net = searched_supernet(state, "FBNet")
        super().setup(state)
        self.a_optimizer = torch.optim.Adam(
            self.alphas, lr=self.arch_lr, weight_decay=self.arch_weight_decay
        )
        self.price(net, state.device)
        low, _ = net.latency_range(self.table)
        #: The unit of LAT in the loss (``unit``, or what ``"auto"`` chose).
        self.loss_unit = self.unit if self.unit != "auto" else ("ms" if low > 1.0 else "us")
        if low * _UNITS[self.loss_unit] <= 1.0:
            raise InvalidConfigError(
                f"FBNet's loss takes log(LAT)^beta, which needs LAT > 1; the fastest network "
                f"of this supernet takes {low:.4g} ms. Use unit='us'."
            )

    def temperature(self, epoch: int) -> float:
        """``tau * tau_decay ** (epochs since the warm-up)``."""
        from nasforge.ops.mobile_supernet import fbnet_temperature

        return fbnet_temperature(max(0, epoch - self.warmup_epochs), self.tau0, self.tau_decay)

    def mixing(self, state: SearchState, detach: bool) -> list[Any]:
        """Gumbel-softmax weights of every layer (noise from the search's generator)."""
        from nasforge.ops.mobile_supernet import gumbel_softmax

        return [
            gumbel_softmax(a.detach() if detach else a, self.tau, state.generator)
            for a in self.alphas
        ]

    def latency_of(self, weights: list[Any]) -> Any:
        """``LAT`` in ms of the mixture ``weights`` (fixed part included)."""
        return self.mixture_latency(weights)

    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        import torch

        from nasforge.oneshot import _engine
        from nasforge.ops.mobile_search_net import searched_supernet
        from nasforge.ops.mobile_supernet import fbnet_loss
        from nasforge.train.schedule import cosine_annealing

        self.tau = self.temperature(epoch)
        _engine.set_lr(
            self.w_optimizer, cosine_annealing(epoch, state.epochs, lr=self.lr, min_lr=self.lr_min)
        )
        net = state.supernet
        net.train()
        total, hits, seen = 0.0, 0, 0
        for step, (x, y) in enumerate(state.data.batches("train", state.generator, state.device)):
            self.w_optimizer.zero_grad(set_to_none=True)
            logits = net(x, self.mixing(state, detach=True))
            loss = torch.nn.functional.cross_entropy(logits, y)
            _engine.check_finite(loss, "weight", epoch, step, self.current(state))
            loss.backward()
            if self.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), self.grad_clip)
            self.w_optimizer.step()
            total += float(loss.detach()) * int(y.shape[0])
            hits += _engine.correct(logits.detach(), y)
            seen += int(y.shape[0])
        stats = {"train_loss": total / max(1, seen), "train_acc": 100.0 * hits / max(1, seen)}
        if epoch >= self.warmup_epochs:
            arch_loss = 0.0
            batches = state.data.batches("valid", state.generator, state.device)
            for step, (x, y) in enumerate(batches):
                weights = self.mixing(state, detach=False)
                ce = torch.nn.functional.cross_entropy(net(x, weights), y)
                scale = _UNITS[self.loss_unit]
                loss = fbnet_loss(ce, self.latency_of(weights) * scale, self.alpha, self.beta)
                _engine.check_finite(loss, "architecture", epoch, step, self.current(state))
                self.a_optimizer.zero_grad(set_to_none=True)
                grads = torch.autograd.grad(loss, self.alphas, allow_unused=True)
                for a, g in zip(self.alphas, grads, strict=True):
                    a.grad = torch.zeros_like(a) if g is None else g
                self.a_optimizer.step()
                arch_loss += float(loss.detach())
            stats["arch_loss"] = arch_loss / max(1, state.data.steps_per_epoch)
        probs = [a.detach().softmax(dim=-1) for a in self.alphas]
        stats["expected_latency_ms"] = float(self.latency_of(probs))
        choices = self.derive(state)
        if choices is not None:
            mobile = searched_supernet(state, "FBNet")
            index = mobile.path(state.space.from_choices(choices))
            stats["predicted_latency_ms"] = float(self.table.predict(mobile.specs(index)))
        stats["tau"] = self.tau
        if self.target_ms is not None:
            stats["latency_target_ms"] = self.target_ms
        return stats
