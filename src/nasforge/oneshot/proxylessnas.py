"""ProxylessNAS: binarized paths and a latency term from a per-layer lookup table.

Cai, H., Zhu, L. and Han, S. "ProxylessNAS: Direct Neural Architecture Search on Target Task
and Hardware." ICLR 2019, arXiv:1812.00332, Sections 3.2-3.3 and 4.2. The supernet is the
space's mobile supernet (:mod:`nasforge.ops.mobile_search_net`: the ``mobilenet`` space with
MBConv kernel {3, 5, 7} x expansion {3, 6} and the zero layer per block, or FBNet's 22 layers);
every layer holds architecture parameters ``alpha`` (one row each, ``1e-3 N(0, 1)`` at the
start).

Each step, on a batch of the weights' half, one path per layer is drawn from ``p =
softmax(alpha)`` and only it runs and is trained (the binarized path, SGD with Nesterov
momentum and a cosine schedule). Every ``arch_every`` steps, on a batch of the architecture's
half, two paths per layer are drawn and the gates' gradient updates ``alpha`` with Adam, after
which the two sampled logits are shifted so the other paths keep their probabilities
(:func:`~nasforge.ops.mobile_supernet.binarize`,
:func:`~nasforge.ops.mobile_supernet.rescale_sampled`).
The architecture loss adds the expected latency ``E[LAT] = fixed + sum_layers sum_i p_i
F(o_i)`` with ``F`` the candidates' entries in a per-layer latency table
(:class:`~nasforge.hardware.layer_lut.LayerLatencyTable`) for the chosen backend:

* ``loss="paper"``: ``CE + lam * E[LAT]`` (Section 3.3, milliseconds);
* ``loss="add#linear"``: ``CE + lam * (E[LAT] - T) / T`` (the authors' code, target ``T``);
* ``loss="mul#log"``: ``alpha * CE * (log E[LAT] / log T) ** beta`` (the authors' default,
  ``alpha`` 0.2, ``beta`` 0.3).

The first ``warmup_epochs`` train the weights only, on uniformly drawn paths (the authors'
warm-up). The derived architecture of every epoch is the argmax of each row, a point of the
space (the backbone's other decisions kept), recorded with its predicted latency
(``predicted_latency_ms``), the expected latency and the target.

Defaults follow the authors' search script (mit-han-lab/proxylessnas
``search/imagenet_arch_search.py``): 120 epochs after 40 of warm-up, SGD lr 0.025 (cosine),
momentum 0.9, Nesterov, weight decay 4e-5; Adam for ``alpha`` with lr 1e-3, betas (0, 0.999),
no weight decay, one update every 5 weight steps. Where this differs: no label smoothing; the
gradient uses the paper's two-path mode (the script defaults to ``full_v2``); the weights'
and the architecture's halves are the search data's (NAS-Bench-201's protocol), not 50,000
held-out ImageNet images.

A latency target that no network of the supernet reaches is refused with an
:class:`~nasforge.errors.InfeasibleConstraintError` naming the fastest reachable latency.

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
    ...     "proxylessnas", SyntheticImages(num_classes=4, n_train=32, size=32).load(),
    ...     space="mobilenet", params={"table": table, "warmup_epochs": 0}, epochs=1,
    ...     settings=oneshot.SupernetSettings(batch_size=16, options=small),
    ...     evaluator=HashEvaluator("mobilenet"), device="cpu", threads=1)
    >>> trial = result.study.trials[0]
    >>> layers = spaces.create("mobilenet").layers(trial.arch, num_classes=4, **small)
    >>> abs(trial.metrics["predicted_latency_ms"] - table.predict(layers)) < 1e-6
    True
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nasforge import oneshot
from nasforge.errors import InvalidConfigError
from nasforge.oneshot._latency import TablePricing, check_backend, check_target, table_label
from nasforge.oneshot.base import DifferentiableMethod, check_non_negative

if TYPE_CHECKING:
    from nasforge.oneshot._engine import SearchState

__all__ = ["LOSSES", "ProxylessNAS"]

#: The forms of the architecture loss.
LOSSES = ("paper", "add#linear", "mul#log")


@oneshot.register("proxylessnas")
class ProxylessNAS(TablePricing, DifferentiableMethod):
    """ProxylessNAS (Cai, Zhu and Han 2019), see the module docstring.

    Args:
        table: The per-layer latency table (a ``LayerLatencyTable`` or its CSV path); ``None``
            measures one for the supernet's layers on this machine with ``backend`` (measured
            again on resume: give a table for a search that must resume bit for bit).
        backend: ``"torch"`` or ``"onnxruntime"`` (only used to measure a table).
        target_ms: The latency target (required by the ``add#linear`` and ``mul#log`` losses;
            with the paper's loss only checked and recorded).
        loss: ``"paper"``, ``"add#linear"`` or ``"mul#log"`` (:data:`LOSSES`).
        lam: Latency weight of the additive losses (ms^-1 for ``"paper"``).
        alpha, beta: Of the ``mul#log`` loss.
        warmup_epochs: Epochs training the weights only (uniform paths) before the search.
        arch_every: Weight steps per architecture step.
        Others: see :class:`~nasforge.oneshot.base.DifferentiableMethod`.
    """

    default_epochs = 160
    share_weights = True
    space_requires = ("layers",)

    def __init__(
        self,
        *,
        table: Any = None,
        backend: str = "torch",
        target_ms: float | None = None,
        loss: str = "paper",
        lam: float = 0.1,
        alpha: float = 0.2,
        beta: float = 0.3,
        warmup_epochs: int = 40,
        arch_every: int = 5,
        lr: float = 0.025,
        lr_min: float = 0.0,
        momentum: float = 0.9,
        weight_decay: float = 4e-5,
        nesterov: bool = True,
        grad_clip: float = 0.0,
        arch_lr: float = 1e-3,
        arch_weight_decay: float = 0.0,
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
        if loss not in LOSSES:
            raise InvalidConfigError(f"Unknown ProxylessNAS loss {loss!r}; choose from {LOSSES}.")
        if loss != "paper" and target_ms is None:
            raise InvalidConfigError(f"The {loss} loss needs target_ms (the latency target).")
        check_non_negative(lam=lam, alpha=alpha, beta=beta)
        for name, value in (("warmup_epochs", warmup_epochs), ("arch_every", arch_every)):
            low = 1 if name == "arch_every" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidConfigError(f"{name} must be an integer >= {low}, got {value!r}.")
        self.table = table
        self.backend = check_backend(backend)
        self.target_ms = check_target(target_ms)
        self.loss = loss
        self.lam = float(lam)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.warmup_epochs = warmup_epochs
        self.arch_every = arch_every
        self.latency: list[Any] = []
        self.fixed_ms = 0.0
        self._arch_steps = 0

    def params(self) -> dict[str, Any]:
        return {
            "table": table_label(self.table),
            "backend": self.backend,
            "target_ms": self.target_ms,
            "loss": self.loss,
            "lam": self.lam,
            "alpha": self.alpha,
            "beta": self.beta,
            "warmup_epochs": self.warmup_epochs,
            "arch_every": self.arch_every,
            **super().params(),
        }

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, state: SearchState) -> None:
        import torch

        from nasforge.ops.mobile_search_net import searched_supernet

        net = searched_supernet(state, "ProxylessNAS")
        super().setup(state)
        self.a_optimizer = torch.optim.Adam(
            self.alphas,
            lr=self.arch_lr,
            betas=(0.0, 0.999),
            eps=1e-8,
            weight_decay=self.arch_weight_decay,
        )
        self.price(net, state.device)
        if self.loss == "mul#log" and (self.target_ms is None or self.target_ms <= 1.0):
            raise InvalidConfigError(
                "The mul#log loss takes log(E[LAT]) / log(target) and needs a target above 1 ms."
            )

    def expected_latency(self, detach: bool = False) -> Any:
        """``E[LAT]`` in ms: the fixed part plus ``sum p_i F(o_i)`` over every layer."""
        return self.mixture_latency(
            [(alpha.detach() if detach else alpha).softmax(dim=-1) for alpha in self.alphas]
        )

    def predicted_latency(self, state: SearchState, choices: Any = None) -> float:
        """The table's latency of the derived network (or of ``choices``)."""
        from nasforge.ops.mobile_search_net import searched_supernet

        net = searched_supernet(state, "ProxylessNAS")
        found = self.derive(state) if choices is None else choices
        if found is None:
            return math.nan
        arch = state.space.from_choices(found)
        return float(self.table.predict(net.specs(net.path(arch))))

    def architecture_loss(self, ce: Any) -> Any:
        """The loss of the architecture step from the cross-entropy (see :data:`LOSSES`)."""
        from nasforge.ops.mobile_supernet import proxyless_loss

        latency = self.expected_latency()
        if self.loss == "paper":
            return proxyless_loss(ce, latency, form="add", lam=self.lam)
        if self.loss == "add#linear":
            return proxyless_loss(ce, latency, form="add", lam=self.lam, target=self.target_ms)
        return proxyless_loss(
            ce, latency, form="mul", target=self.target_ms, alpha=self.alpha, beta=self.beta
        )

    # -- steps ----------------------------------------------------------------------------------
    def _paths(self, state: SearchState, two: bool, uniform: bool = False) -> list[list[Any]]:
        import torch

        from nasforge.ops.mobile_supernet import binarize

        index = []
        for alpha in self.alphas:
            rows: list[Any] = []
            for row in alpha:
                if uniform:
                    n = row.numel()
                    rows.append(int(torch.randint(n, (1,), generator=state.generator)))
                elif two:
                    rows.append(binarize(row, state.generator, two_paths=True))
                else:
                    rows.append(binarize(row, state.generator, two_paths=False).active)
            index.append(rows)
        return index

    def step(self, state: SearchState, batch: tuple[Any, ...], epoch: int, step: int) -> Any:
        import torch

        from nasforge.oneshot import _engine
        from nasforge.ops.mobile_supernet import rescale_sampled

        xt, yt, xv, yv = batch
        warm = epoch < self.warmup_epochs
        index = self._paths(state, two=False, uniform=warm)
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = state.supernet(xt, None, index)
        loss = torch.nn.functional.cross_entropy(logits, yt)
        _engine.check_finite(loss, "weight", epoch, step, self.current(state))
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(state.supernet.parameters(), self.grad_clip)
        self.w_optimizer.step()
        if not warm and step % self.arch_every == self.arch_every - 1:
            gates = self._paths(state, two=True)
            ce = torch.nn.functional.cross_entropy(state.supernet(xv, None, gates), yv)
            arch_loss = self.architecture_loss(ce)
            _engine.check_finite(arch_loss, "architecture", epoch, step, self.current(state))
            self.a_optimizer.zero_grad(set_to_none=True)
            grads = torch.autograd.grad(arch_loss, self.alphas, allow_unused=True)
            for a, g in zip(self.alphas, grads, strict=True):
                a.grad = torch.zeros_like(a) if g is None else g
            self.a_optimizer.step()
            for alpha, rows in zip(self.alphas, gates, strict=True):
                for r, gate in enumerate(rows):
                    rescale_sampled(alpha[r], gate)
            self._arch_steps += 1
        return logits, loss

    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        stats = super().train_epoch(state, epoch)
        stats["expected_latency_ms"] = float(self.expected_latency(detach=True))
        stats["predicted_latency_ms"] = self.predicted_latency(state)
        if self.target_ms is not None:
            stats["latency_target_ms"] = self.target_ms
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "arch_steps": self._arch_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._arch_steps = int(state.get("arch_steps", 0))
