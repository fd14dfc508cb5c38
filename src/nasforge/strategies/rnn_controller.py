"""The recurrent controller of NAS with reinforcement learning (Zoph & Le; NASNet's PPO)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nasforge import strategies
from nasforge.errors import InvalidConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal, Trial, TrialState

if TYPE_CHECKING:
    from nasforge.strategies._controller import Controller

__all__ = ["RNNController"]


@strategies.register("rnn-controller")
class RNNController(Strategy):
    """An LSTM emits the space's decisions one after the other; policy gradient on the scores.

    Zoph, B. and Le, Q. V. "Neural Architecture Search with Reinforcement Learning." ICLR
    2017, arXiv:1611.01578 (Section 3.1-3.2: the controller RNN, each prediction a softmax
    classifier fed, embedded, into the next step; REINFORCE over a batch of ``m`` sampled
    architectures, ``1/m sum_k grad log P(a_k) (R_k - b)``, with ``b`` an exponential moving
    average of the earlier rewards). Zoph, B., Vasudevan, V., Shlens, J. and Le, Q. V.
    "Learning Transferable Architectures for Scalable Image Recognition." CVPR 2018,
    arXiv:1707.07012 (Appendix A: a one-layer LSTM of 100 units, weights uniform in
    ``[-0.1, 0.1]``, an entropy bonus, a moving-average baseline of decay 0.95, and Proximal
    Policy Optimization, Schulman et al. 2017, arXiv:1707.06347, Eq. 7, as its update: here
    ``algorithm="ppo"``).

    The controller (:mod:`nasforge.strategies._controller`) makes one step per decision of
    ``space.decisions()``: step ``i`` has its own softmax classifier over decision ``i``'s
    options and its own embedding of them; its input is the embedding of step ``i - 1``'s
    choice (a learned start vector for the first). Every :meth:`ask` samples one sequence with
    a ``torch.Generator`` seeded from the strategy's seed. COMPLETE trials told are collected;
    every ``batch_size`` of them update the controller:

    * advantage ``A_k = R_k - b``, ``R_k = trial.score``, ``b`` the moving average of the
      rewards of the earlier batches with decay ``baseline_decay``, bias-corrected (after
      rewards ``R_1..R_n``, ``sum_j d**(n-j) R_j / sum_j d**(n-j)``), the batch's mean for
      the first batch; ``b`` is updated with the batch's rewards after the step;
    * ``reinforce``: one Adam step on ``-1/m sum_k A_k log P(a_k) - w H``;
    * ``ppo``: ``ppo_epochs`` Adam steps on ``-1/m sum_k min(r_k A_k, clip(r_k, 1 - eps,
      1 + eps) A_k) - w H``, ``r_k = P(a_k) / P_old(a_k)`` with ``P_old`` the controller
      before the update;

    ``H`` is the mean entropy of the sampled sequences' steps' distributions (summed over
    steps) and ``w`` is ``entropy_weight``. FAILED trials are not learnt from. Trials the
    controller did not propose (enqueued by hand) are learnt from like its own.

    Adaptations: the rewards are the study's scores as they are (for NAS-Bench-201, the
    validation accuracy in percent; Zoph & Le cube the accuracy on CIFAR-10, NASNet uses it
    as it is); the baseline is bias-corrected so the first rewards are not compared with 0;
    the papers train thousands of child networks with a learning rate of 6e-4 (Zoph & Le) or
    3.5e-4 (NASNet), which barely moves the controller in the hundred or two queries of a
    tabular benchmark, so the default ``learning_rate`` is 0.01 with ``batch_size`` 5; and
    the logits are bounded as ENAS's controller bounds them (Pham et al. 2018,
    arXiv:1802.03268: ``tanh_constant * tanh(logits / temperature)`` with 2.5 and 5), by
    default. Without that bound the controller converged to one cell after 50-90 distinct
    queries in every one of 300 NAS-Bench-201 runs (seeds 4000-4099, three datasets; the
    study then stops on repeated proposals), and ended at 72.05% mean test accuracy on
    cifar100 at 200 queries against 73.12% with it (tuning seeds 5000-5009; cifar10 93.96%
    against 94.18%); the entropy bonus at 0.01 or 0.1 did not stop the collapse (see the
    issue-24 note). Pass ``temperature=None, tanh_constant=None`` for the unbounded logits
    of Zoph & Le and NASNet, and ``learning_rate=3.5e-4, entropy_weight=1e-5,
    baseline_decay=0.95`` for NASNet's values.

    Args:
        space: A space with ``decisions()``.
        seed: Seed of the controller's initial weights and of every sample.
        algorithm: ``"reinforce"`` (default) or ``"ppo"``.
        hidden: Units of the LSTM and of the embeddings (100, NASNet).
        learning_rate: Adam's step size.
        batch_size: Trials per update (``m``).
        entropy_weight: ``w`` of the entropy bonus.
        baseline_decay: Decay of the moving-average baseline, in ``[0, 1)``.
        ppo_clip: ``eps`` of PPO's clipped ratio (0.2, Schulman et al.).
        ppo_epochs: Adam steps per batch of PPO.
        temperature: Logits divided by it before sampling (5, ENAS; ``None``: not).
        tanh_constant: ``c`` of ENAS's ``c * tanh(logits)`` (2.5, ENAS; ``None``: not).
        init_range: Initial weights uniform in ``[-init_range, init_range]``.

    Raises:
        InvalidConfigError: A parameter out of range.
        UnsupportedOperationError: The space lists no decisions.

    Example:
        >>> from nasforge import spaces
        >>> rnn = RNNController(spaces.create("nb201"), seed=0)
        >>> len(rnn.ask().arch.choices), len(rnn.probabilities())
        (6, 6)
    """

    requires = ("decisions",)

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        algorithm: Literal["reinforce", "ppo"] = "reinforce",
        hidden: int = 100,
        learning_rate: float = 0.01,
        batch_size: int = 5,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.95,
        ppo_clip: float = 0.2,
        ppo_epochs: int = 4,
        temperature: float | None = 5.0,
        tanh_constant: float | None = 2.5,
        init_range: float = 0.1,
    ) -> None:
        if algorithm not in ("reinforce", "ppo"):
            raise InvalidConfigError(f"algorithm must be 'reinforce' or 'ppo', got {algorithm!r}.")
        for name, value in (
            ("hidden", hidden),
            ("batch_size", batch_size),
            ("ppo_epochs", ppo_epochs),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidConfigError(f"{name} must be a positive integer, got {value!r}.")
        positive: dict[str, float] = {
            "learning_rate": learning_rate,
            "ppo_clip": ppo_clip,
            "init_range": init_range,
        }
        if temperature is not None:
            positive["temperature"] = temperature
        if tanh_constant is not None:
            positive["tanh_constant"] = tanh_constant
        for name, number in positive.items():
            if not (math.isfinite(number) and number > 0):
                raise InvalidConfigError(
                    f"{name} must be a positive finite number, got {number!r}."
                )
        if not (math.isfinite(entropy_weight) and entropy_weight >= 0):
            raise InvalidConfigError(f"entropy_weight must be >= 0, got {entropy_weight!r}.")
        if not 0 <= baseline_decay < 1:
            raise InvalidConfigError(
                f"baseline_decay must be in [0, 1), got {baseline_decay!r} (NASNet: 0.95)."
            )
        super().__init__(space, seed=seed)
        self.algorithm = algorithm
        self.counts = tuple(len(d.options) for d in space.decisions())
        self.learning_rate = float(learning_rate)
        self.batch_size = batch_size
        self.entropy_weight = float(entropy_weight)
        self.baseline_decay = float(baseline_decay)
        self.ppo_clip, self.ppo_epochs = float(ppo_clip), ppo_epochs
        self.updates = 0
        self._pending: list[tuple[tuple[int, ...], float]] = []
        self._numerator = self._denominator = 0.0
        self._build(hidden, temperature, tanh_constant, init_range)

    def _build(
        self, hidden: int, temperature: float | None, tanh: float | None, init_range: float
    ) -> None:
        import torch

        from nasforge.strategies._controller import Controller, Step

        self._generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        self.controller: Controller = Controller(
            [Step(i, n) for i, n in enumerate(self.counts)],
            self.counts,
            hidden=hidden,
            temperature=temperature,
            tanh=[tanh] * len(self.counts),
            init_range=init_range,
            generator=self._generator,
        )
        self._optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.learning_rate)

    # -- the Strategy contract --------------------------------------------------------------------
    def ask(self) -> Proposal:
        choices, _ = self.controller.sample(self._generator)
        return Proposal(self.space.from_choices(choices))

    def tell(self, trial: Trial) -> None:
        reward = trial.score
        if trial.state is not TrialState.COMPLETE or reward is None:
            return
        choices = tuple(int(c) for c in trial.arch.choices)
        if len(choices) != len(self.counts):
            return  # not an architecture of this space (cannot happen in a study)
        self._pending.append((choices, float(reward)))
        if len(self._pending) >= self.batch_size:
            self._update()

    # -- learning ---------------------------------------------------------------------------------
    @property
    def baseline(self) -> float:
        """The moving average of the rewards of the batches learnt from (0 before any)."""
        return self._numerator / self._denominator if self._denominator else 0.0

    def _update(self) -> None:
        import torch

        batch, self._pending = self._pending, []
        choices = torch.tensor([c for c, _ in batch], dtype=torch.long)
        rewards = np.array([r for _, r in batch])
        base = self.baseline if self._denominator else float(rewards.mean())
        advantage = torch.tensor(rewards - base, dtype=torch.float32)
        net = self.controller
        if self.algorithm == "reinforce":
            log_prob, entropy = net.log_probs(choices)
            loss = -(advantage * log_prob).mean() - self.entropy_weight * entropy.mean()
            self._step(loss)
        else:
            with torch.no_grad():
                old, _ = net.log_probs(choices)
            for _ in range(self.ppo_epochs):
                log_prob, entropy = net.log_probs(choices)
                ratio = torch.exp(log_prob - old)
                clipped = ratio.clamp(1 - self.ppo_clip, 1 + self.ppo_clip)
                surrogate = torch.minimum(ratio * advantage, clipped * advantage)
                self._step(-surrogate.mean() - self.entropy_weight * entropy.mean())
        d = self.baseline_decay
        for r in rewards:
            self._numerator = d * self._numerator + float(r)
            self._denominator = d * self._denominator + 1.0
        self.updates += 1

    def _step(self, loss: Any) -> None:
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()

    # -- inspection -------------------------------------------------------------------------------
    def probabilities(self, choices: tuple[int, ...] | None = None) -> list[list[float]]:
        """The controller's distribution over each decision's options, the earlier decisions
        taking ``choices`` (default: each decision's most likely option, greedily)."""
        if choices is not None:
            return self.controller.probabilities(choices)
        taken: list[int] = []
        out: list[list[float]] = []
        for i in range(len(self.counts)):
            row = self.controller.probabilities([*taken, *([0] * (len(self.counts) - i))])[i]
            out.append(row)
            taken.append(int(np.argmax(row)))
        return out
