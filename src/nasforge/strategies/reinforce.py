"""REINFORCE with a factorised categorical policy: the NAS-Bench-201 paper's RL baseline."""

from __future__ import annotations

import math

import numpy as np

from nasforge import strategies
from nasforge.errors import InvalidConfigError
from nasforge.predictors.adam import Adam
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy, draw_per_decision
from nasforge.trial import Proposal, Trial, TrialState

__all__ = ["Reinforce"]


@strategies.register("reinforce")
class Reinforce(Strategy):
    """Policy gradient on independent softmax distributions, one per decision of the space.

    Williams, R. J. "Simple statistical gradient-following algorithms for connectionist
    reinforcement learning." Machine Learning 8, 1992; as set up for NAS by Dong, X. and Yang,
    Y. "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search." ICLR
    2020, arXiv:2001.00326 (its REINFORCE baseline; the authors' code is
    ``exps/NAS-Bench-201-algos/reinforce.py`` in D-X-Y/AutoDL-Projects).

    The policy holds one vector of logits per decision (on NAS-Bench-201 a 6 x 5 matrix: one
    softmax over the 5 operations of each edge), initialised to ``1e-3`` times standard normal
    draws. Each :meth:`ask` samples every decision from its softmax. Each COMPLETE trial told
    updates the policy once:

    * reward ``R`` = ``trial.score`` (the study's first objective, larger is better; for
      NAS-Bench-201 the validation accuracy in percent, as in the paper);
    * baseline ``b``: exponential moving average of the rewards with momentum
      ``baseline_momentum``, bias-corrected as in the reference code: after rewards
      ``R_1..R_n``, ``b = sum_k m**(n-k) (1-m) R_k / sum_k m**(n-k) (1-m)``. It is updated
      with ``R`` *before* the advantage ``R - b`` is computed (so the first advantage is 0);
    * loss ``-(R - b) * log pi(arch)``, whose gradient with respect to the logits of decision
      ``i`` is ``-(R - b) * (onehot(choice_i) - softmax_i)``;
    * one Adam step (``beta1=0.9, beta2=0.999, eps=1e-8``) with ``learning_rate``.

    FAILED trials leave the policy and the baseline unchanged. Like the paper's baseline the
    policy may propose an architecture twice; each proposal costs a query. Rewards are used
    as they come (Adam's step size hardly depends on their scale), so an objective in other
    units needs no rescaling.

    Differences from the reference code: the paper rewards the 12-epoch validation accuracy
    under a simulated time budget; here the reward is whatever the study's evaluator returns
    (for ``run_comparison``, the 200-epoch validation accuracy) and the budget counts queries.
    The arithmetic is numpy, not PyTorch (no torch import for a tabular search).

    Adapting to a space: the space must be a product of independent decisions, described by
    ``SearchSpace.decisions()`` (entry ``i`` of ``choices`` takes ``0..n_i - 1``; for
    NAS-Bench-201 six decisions of five operations); the policy has one softmax per decision.
    Other spaces raise :class:`~nasforge.errors.UnsupportedOperationError`.

    Args:
        space: A space that lists its decisions and options (see above).
        seed: Seed of the initial logits and of every sample.
        learning_rate: Adam's step size on the logits. The NAS-Bench-201 authors searched
            ``{0.01, 0.02, 0.05, 0.1, 0.2, 0.5}``; their released scripts (NATS-Bench
            ``run-all.sh``) run 0.01. The default, 0.1, was chosen with ``run_comparison``
            on NAS-Bench-201 (see the issue-5 report); pass 0.01 to reproduce the paper.
        baseline_momentum: Momentum of the moving-average baseline, in ``(0, 1)`` (0.9 in
            the paper, kept as the default: 0.5, 0.95 and 0.99 did no better).

    Raises:
        InvalidConfigError: ``learning_rate`` not a positive finite number, or
            ``baseline_momentum`` outside ``(0, 1)``.
        UnsupportedOperationError: The space does not list its decisions and options.

    Example:
        >>> from nasforge import spaces
        >>> rl = Reinforce(spaces.create("nb201"), seed=0)
        >>> rl.probabilities().shape
        (6, 5)
    """

    requires = ("decisions",)

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        learning_rate: float = 0.1,
        baseline_momentum: float = 0.9,
    ) -> None:
        if not (math.isfinite(learning_rate) and learning_rate > 0):
            raise InvalidConfigError(
                f"learning_rate must be a positive finite number, got {learning_rate!r}; the "
                "NAS-Bench-201 paper searched 0.01 to 0.5."
            )
        if not 0 < baseline_momentum < 1:
            raise InvalidConfigError(
                f"baseline_momentum must be in (0, 1), got {baseline_momentum!r}; the "
                "NAS-Bench-201 paper uses 0.9 (at 0 the baseline would equal each reward and "
                "nothing would be learnt)."
            )
        super().__init__(space, seed=seed)
        self.decisions = tuple(len(d.options) for d in space.decisions())
        self.learning_rate = float(learning_rate)
        self.baseline_momentum = float(baseline_momentum)
        width = max(self.decisions)
        # one row per decision, padded to the widest; padding logits are -inf (probability 0)
        self._mask = np.arange(width)[None, :] < np.asarray(self.decisions)[:, None]
        noise = 1e-3 * self.rng.standard_normal((len(self.decisions), width))
        self.logits: np.ndarray = np.where(self._mask, noise, -np.inf)
        self._adam = Adam([noise.shape], lr=self.learning_rate)
        self._numerator = 0.0
        self._denominator = 0.0

    # -- the Strategy contract ----------------------------------------------------------------
    def ask(self) -> Proposal:
        choices = draw_per_decision(self.probabilities(), self.decisions, self.rng)
        return Proposal(self.space.from_choices(choices))

    def tell(self, trial: Trial) -> None:
        reward = trial.score
        if trial.state is not TrialState.COMPLETE or reward is None:
            return
        choices = trial.arch.choices
        if len(choices) != len(self.decisions):
            return  # not an architecture of this policy's shape (cannot happen in a study)
        m = self.baseline_momentum
        self._numerator = m * self._numerator + (1 - m) * reward
        self._denominator = m * self._denominator + (1 - m)
        advantage = reward - self.baseline
        onehot = np.zeros_like(self.logits)
        onehot[np.arange(len(choices)), list(choices)] = 1.0
        grad = -advantage * (onehot - self.probabilities())
        (step,) = self._adam.step([grad])
        self.logits = np.where(self._mask, self.logits - step, -np.inf)

    # -- inspection ---------------------------------------------------------------------------
    def probabilities(self) -> np.ndarray:
        """The policy: row ``i`` holds the probabilities of the options of decision ``i``
        (zero-padded to the widest decision)."""
        shifted = self.logits - np.max(self.logits, axis=1, keepdims=True)
        weights = np.where(self._mask, np.exp(shifted), 0.0)
        return np.asarray(weights / weights.sum(axis=1, keepdims=True))

    @property
    def baseline(self) -> float:
        """The moving average of the rewards told so far (0 before the first)."""
        return self._numerator / self._denominator if self._denominator else 0.0
