"""MnasNet's accuracy × latency reward, for any single-objective strategy."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

from nasforge import strategies
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal, Trial, TrialState

__all__ = ["MnasNetReward", "mnasnet_reward"]

#: Exponents ``(alpha, beta)`` of the two variants of the paper (Section 3).
VARIANTS: dict[str, tuple[float, float]] = {"soft": (-0.07, -0.07), "hard": (0.0, -1.0)}
#: Random architectures whose median cost is the default target (drawn with seed 0).
TARGET_SAMPLES = 256


def mnasnet_reward(
    accuracy: float, cost: float, target: float, *, alpha: float = -0.07, beta: float = -0.07
) -> float:
    """``accuracy * (cost / target) ** w``, with ``w = alpha`` if ``cost <= target`` else
    ``beta`` (Tan et al. 2019, Equation 2).

    Example:
        >>> round(mnasnet_reward(0.75, 40.0, 80.0), 6)  # soft: half the target, +5 %
        0.787288
        >>> mnasnet_reward(0.75, 160.0, 80.0, alpha=0.0, beta=-1.0)  # hard: twice, halved
        0.375
    """
    if not cost > 0 or not target > 0:
        raise InvalidConfigError(
            f"The MnasNet reward needs a positive cost and target, got cost={cost!r}, "
            f"target={target!r}."
        )
    w = alpha if cost <= target else beta
    return float(accuracy * (cost / target) ** w)


@strategies.register("mnasnet-reward")
class MnasNetReward(Strategy):
    """Searches with any single-objective strategy on MnasNet's reward ACC × (LAT/T)^w.

    Tan, M., Chen, B., Pang, R., Vasudevan, V., Sandler, M., Howard, A. and Le, Q. V.
    "MnasNet: Platform-Aware Neural Architecture Search for Mobile." CVPR 2019,
    arXiv:1807.11626, Section 3: the reward of a model ``m`` is
    ``ACC(m) × (LAT(m) / T) ** w`` with ``w = α`` if ``LAT(m) <= T`` else ``β``:

    * ``reward="soft"``: ``α = β = -0.07``, the paper's choice: a model twice as fast as
      another gains about 5 % of relative reward, so the search trades accuracy for latency
      smoothly around the target ``T`` (a Pareto-style objective).
    * ``reward="hard"``: ``α = 0, β = -1``: the target is a hard constraint in spirit; below
      it only accuracy counts, above it the reward falls sharply.

    ``alpha`` and ``beta`` override the variant's values.

    This strategy wraps a ``base`` strategy (built with ``base_params`` and the same seed)
    and proposes what it proposes; every trial is told to the base strategy as a copy whose
    ``scores`` are ``(reward,)``, so every single-objective strategy (``regularized-evolution``,
    ``local-search``, ``optuna-tpe``...) searches the reward unchanged. Trials without a
    score (FAILED, or infeasible under a study constraint) are passed on as they are.

    **Accuracy and latency.** ``ACC`` is the trial's first objective (``trial.score``, e.g.
    ``test_acc:max``), or the metric ``accuracy_metric`` when given; it must be positive
    (an accuracy). ``LAT`` is the metric ``metric`` of the trial (any cost: table latency,
    energy, ``params_M``), read from the trial's metrics or, where the evaluator did not
    return it, from the evaluator's free metrics (``Strategy.free``, no query spent). The
    paper measures latency on the phone; here it is whatever the metric holds.

    **Target.** ``target`` is ``T`` in the metric's unit. ``None`` uses the median of
    ``metric`` over 256 random architectures of the space (drawn with seed 0, from the
    free metrics, at the first tell), so that the target is the cost of a typical
    architecture and does not depend on the strategy's seed. The paper sets ``T`` from the
    product's need (75 ms on a Pixel 1 phone).

    **Where this differs from the paper.** The paper trains an RNN controller with PPO on
    this reward; here any registered strategy optimises it (``base="reinforce"`` is the
    closest to the paper's controller).

    Args:
        space: The space the base strategy searches.
        seed: Seed of the base strategy.
        base: Registry name of the single-objective strategy that searches the reward.
        base_params: Keyword arguments of the base strategy.
        metric: The cost metric ``LAT``.
        target: ``T``; ``None`` for the median estimated as described above.
        reward: ``"soft"`` or ``"hard"``: the exponents of the paper's two variants.
        alpha: ``α``, the exponent at or below the target (overrides the variant).
        beta: ``β``, the exponent above the target (overrides the variant).
        accuracy_metric: Metric used as ``ACC``; ``None`` for the first objective.

    Example:
        >>> from nasforge import spaces
        >>> s = MnasNetReward(spaces.create("nb201"), base="random", target=5.0)
        >>> round(s.reward_of(accuracy=90.0, cost=10.0), 4)  # soft: twice the target, -5 %
        85.7374
    """

    requires = ("sample",)

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        base: str = "regularized-evolution",
        base_params: Mapping[str, Any] | None = None,
        metric: str = "latency_ms[edgegpu]",
        target: float | None = None,
        reward: Literal["soft", "hard"] = "soft",
        alpha: float | None = None,
        beta: float | None = None,
        accuracy_metric: str | None = None,
    ) -> None:
        if base == "mnasnet-reward":
            raise InvalidConfigError("mnasnet-reward cannot be its own base strategy.")
        if reward not in VARIANTS:
            raise InvalidConfigError(
                f"reward must be 'soft' (alpha = beta = -0.07) or 'hard' (alpha = 0, "
                f"beta = -1), got {reward!r}."
            )
        if target is not None and not target > 0:
            raise InvalidConfigError(
                f"target must be a positive value of {metric} (or None for the median of "
                f"random architectures), got {target!r}."
            )
        super().__init__(space, seed=seed)
        self.base = strategies.create(base, space, seed=seed, **dict(base_params or {}))
        self.metric = metric
        self.target = None if target is None else float(target)
        self.reward = reward
        default_alpha, default_beta = VARIANTS[reward]
        self.alpha = default_alpha if alpha is None else float(alpha)
        self.beta = default_beta if beta is None else float(beta)
        self.accuracy_metric = accuracy_metric

    # the study sets free metrics on this strategy; the base strategy needs them too
    @property
    def free_metrics(self) -> Callable[[Architecture], Mapping[str, float]] | None:
        return self._free_metrics

    @free_metrics.setter
    def free_metrics(self, value: Callable[[Architecture], Mapping[str, float]] | None) -> None:
        self._free_metrics = value
        base = getattr(self, "base", None)
        if base is not None:
            base.free_metrics = value

    _free_metrics: Callable[[Architecture], Mapping[str, float]] | None = None

    # -- the Strategy contract --------------------------------------------------------------
    def ask(self) -> Proposal:
        return self.base.ask()

    def tell(self, trial: Trial) -> None:
        if trial.state is not TrialState.COMPLETE or trial.score is None:
            self.base.tell(trial)
            return
        accuracy = self._accuracy(trial)
        reward = self.reward_of(accuracy, self._cost(trial.arch, trial.metrics))
        self.base.tell(dataclasses.replace(trial, scores=(reward,)))

    # -- the reward -------------------------------------------------------------------------
    def reward_of(self, accuracy: float, cost: float) -> float:
        """The reward of an architecture of this accuracy and cost (see the class doc)."""
        return mnasnet_reward(accuracy, cost, self._target(), alpha=self.alpha, beta=self.beta)

    def _accuracy(self, trial: Trial) -> float:
        if self.accuracy_metric is None:
            assert trial.score is not None
            value = trial.score
        elif self.accuracy_metric in trial.metrics:
            value = trial.metrics[self.accuracy_metric]
        else:
            raise UnknownNameError(
                f"accuracy metric of trial {trial.number}", self.accuracy_metric, trial.metrics
            )
        if not value > 0:
            raise InvalidConfigError(
                f"The MnasNet reward multiplies a positive accuracy, but trial {trial.number} "
                f"has {value!r} (first objective, larger is better). Make the first objective "
                "an accuracy to maximise, or set accuracy_metric."
            )
        return float(value)

    def _cost(self, arch: Architecture, metrics: Mapping[str, float]) -> float:
        value = metrics.get(self.metric)
        if value is None or math.isnan(value):
            free = self.free(arch)
            if self.metric not in free:
                raise UnknownNameError(
                    "cost metric of the MnasNet reward (returned by the evaluator or free)",
                    self.metric,
                    set(metrics) | set(free),
                )
            value = free[self.metric]
        return float(value)

    def _target(self) -> float:
        if self.target is None:
            rng = np.random.default_rng(0)
            costs = [self._cost(self.space.sample(rng), {}) for _ in range(TARGET_SAMPLES)]
            self.target = float(np.median(costs))
        return self.target
