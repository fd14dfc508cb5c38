"""MANAS: one bandit agent per decision, with EXP3 or least-squares credit assignment."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from nasforge import strategies
from nasforge.errors import InvalidConfigError
from nasforge.predictors.ridge import ridge_solve
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy, draw_per_decision
from nasforge.trial import Proposal, Trial, TrialState

__all__ = ["Manas", "least_squares_contributions"]

#: Ridge penalty of the least-squares credit assignment (rewards are scaled to [0, 1]).
RIDGE = 1.0


@strategies.register("manas")
class Manas(Strategy):
    """Multi-agent search: each decision is an agent playing an adversarial bandit.

    Carlucci, F. M., Esperança, P. M., Tutunov, R., Singh, M., Gabillon, V., Yang, A., Xu,
    H., Chen, Z. and Wang, J. "MANAS: Multi-Agent Neural Architecture Search."
    arXiv:1909.01051 (2019; extended in Machine Learning 113, 2024). EXP3: Auer, P.,
    Cesa-Bianchi, N., Freund, Y. and Schapire, R. E. "The nonstochastic multiarmed bandit
    problem." SIAM J. Computing 32(1), 2002.

    Agent ``i`` controls decision ``i`` of the space (on NAS-Bench-201 one agent per edge,
    choosing among its 5 operations). All agents keep cumulative reward estimates ``S_i(k)``
    for their actions ``k`` and play the mixture of exponential weights and uniform
    exploration::

        pi_i(k) = (1 - gamma) * exp(eta * S_i(k)) / sum_j exp(eta * S_i(j)) + gamma / K_i

    so every action keeps a probability of at least ``gamma / K_i``. Each :meth:`ask` draws
    every agent's action independently; the joint action is the architecture. After each
    COMPLETE trial the shared reward ``r`` (scaled to ``[0, 1]``, see below) is credited to the
    agents by one of two attributions:

    * ``attribution="exp3"``: importance weighting, written with the loss ``1 - r``. Agent ``i``,
      having played ``a_i`` with probability ``pi_i(a_i)``, subtracts the importance-weighted
      loss ``(1 - r) / pi_i(a_i)`` from ``S_i(a_i)`` and leaves its other actions unchanged
      (an unbiased estimate of every action's loss, up to the same constant for all). With
      ``eta=None`` (``eta = gamma / K``) this is Auer et al.'s EXP3 run by every agent.
    * ``attribution="least-squares"`` (MANAS-LS): the reward is modelled as additive in the
      agents' actions, ``r ~ c + sum_i beta_i(a_i)``, and ``beta`` is fitted by (ridge,
      penalty :data:`RIDGE`) least squares to the whole history of (joint action, reward)
      pairs (:func:`least_squares_contributions`); every agent then adds its current
      ``beta_i(k)`` to ``S_i(k)`` for every action ``k``. The estimates use all agents'
      actions jointly, so an agent is credited for its own share of the reward, not for its
      teammates' choices. (Feeding the least-squares estimates into the same exponential
      weights as EXP3 is this implementation's reading of MANAS-LS's sampling step.)

    Reward scaling (EXP3 needs rewards in ``[0, 1]``): ``reward_scaling="rank"`` maps a score
    to its rank among the scores told so far, ``(#lower + #equal / 2) / (n - 1)`` with ``n``
    the number of scores including this one (0.5 for the first); ``"minmax"`` maps it to
    ``(score - min) / (max - min)`` over the scores so far (0.5 while they are all equal). EXP3
    scales each reward once, when it is told; the least-squares fit rescales the whole
    history each time. Ranks suit accuracies, whose spread is small next to their range
    (most NAS-Bench-201 cells are within a few points of one another, a few near 10%).

    FAILED trials change nothing. An architecture may be proposed twice (each proposal
    costs a query), as in the paper.

    Differences from the paper: MANAS trains one weight-sharing supernet and each round's
    reward is the sampled architecture's accuracy with the shared weights; here the evaluator
    is a black box and each reward is one full evaluation (on a tabular benchmark, one query).
    The paper writes losses; here scores are rewards (larger is better).

    Adapting to a space: as for ``reinforce``, the space must be a product of independent
    decisions (``SearchSpace.decisions()``); there is one agent per decision. Other spaces
    raise :class:`~nasforge.errors.UnsupportedOperationError`.

    Args:
        space: A space that lists its decisions and options.
        seed: Seed of every draw.
        attribution: ``"exp3"`` or ``"least-squares"``.
        gamma: Exploration rate in ``(0, 1]``: the share of uniform sampling.
        eta: Learning rate of the exponential weights (positive); ``None`` uses
            ``gamma / K`` per agent, EXP3's classic coupling.
        reward_scaling: ``"rank"`` or ``"minmax"`` (see above).

    The defaults (``attribution="least-squares"``, ``gamma=0.05``, ``eta=0.3``,
    ``reward_scaling="rank"``) were chosen with ``run_comparison`` on NAS-Bench-201 (100
    seeds, three datasets, 100 and 200 queries). With the same ``gamma`` and ``eta`` the
    EXP3 attribution is close behind; EXP3's classic coupling ``eta = gamma / K`` learns too
    slowly for budgets of a few hundred queries, and ``"minmax"`` scaling does worse than
    ``"rank"`` (importance weights magnify the noise of rewards bunched near 1).

    Raises:
        InvalidConfigError: A parameter out of range or an unknown option.
        UnsupportedOperationError: The space does not list its decisions and options.

    Example:
        >>> from nasforge import spaces
        >>> agents = Manas(spaces.create("nb201"), seed=0, attribution="exp3")
        >>> agents.probabilities().shape
        (6, 5)
    """

    requires = ("decisions",)

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        attribution: Literal["exp3", "least-squares"] = "least-squares",
        gamma: float = 0.05,
        eta: float | None = 0.3,
        reward_scaling: Literal["rank", "minmax"] = "rank",
    ) -> None:
        if attribution not in ("exp3", "least-squares"):
            raise InvalidConfigError(
                f"attribution must be 'exp3' or 'least-squares', got {attribution!r}."
            )
        if not (math.isfinite(gamma) and 0 < gamma <= 1):
            raise InvalidConfigError(
                f"gamma (the exploration rate) must be in (0, 1], got {gamma!r}."
            )
        if eta is not None and not (math.isfinite(eta) and eta > 0):
            raise InvalidConfigError(
                f"eta must be a positive finite number (or None for gamma / K), got {eta!r}."
            )
        if reward_scaling not in ("rank", "minmax"):
            raise InvalidConfigError(
                f"reward_scaling must be 'rank' or 'minmax', got {reward_scaling!r}."
            )
        super().__init__(space, seed=seed)
        self.decisions = tuple(len(d.options) for d in space.decisions())
        self.attribution = attribution
        self.gamma = float(gamma)
        self.eta = None if eta is None else float(eta)
        self.reward_scaling = reward_scaling
        counts = np.asarray(self.decisions)
        self._mask = np.arange(counts.max())[None, :] < counts[:, None]
        self._eta = np.full(len(counts), self.eta) if self.eta is not None else self.gamma / counts
        #: Cumulative reward estimates ``S_i(k)`` (row: agent; zero-padded to the widest).
        self.estimates = np.zeros(self._mask.shape)
        self._scores: list[float] = []
        self._offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        # least-squares state: the one-hot column of each agent's action per round, and the
        # Gram matrix of those one-hot rows (updated as trials are told)
        self._columns: list[np.ndarray] = []
        self._gram = np.zeros((int(counts.sum()), int(counts.sum())))

    # -- the Strategy contract ----------------------------------------------------------------
    def ask(self) -> Proposal:
        choices = draw_per_decision(self.probabilities(), self.decisions, self.rng)
        return Proposal(self.space.from_choices(choices))

    def tell(self, trial: Trial) -> None:
        score = trial.score
        if trial.state is not TrialState.COMPLETE or score is None:
            return
        actions = tuple(int(a) for a in trial.arch.choices)
        if len(actions) != len(self.decisions):
            return  # not an architecture of this shape (cannot happen in a study)
        self._scores.append(float(score))
        rewards = _scale(np.asarray(self._scores), self.reward_scaling)
        if self.attribution == "exp3":
            rows = np.arange(len(actions))
            probs = self.probabilities()  # the policy the actions were drawn from
            self.estimates[rows, actions] -= (1.0 - rewards[-1]) / probs[rows, actions]
            return
        columns = self._offsets + np.asarray(actions, dtype=np.int64)
        self._columns.append(columns)
        self._gram[np.ix_(columns, columns)] += 1.0
        beta = _ridge(self._gram, np.stack(self._columns), rewards, RIDGE)
        self.estimates += _unflatten(beta, self.decisions)

    # -- inspection ---------------------------------------------------------------------------
    def probabilities(self) -> np.ndarray:
        """Each agent's distribution over its actions (row ``i``: agent ``i``; zero-padded)."""
        logits = self._eta[:, None] * self.estimates
        logits = np.where(self._mask, logits, -np.inf)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights = np.where(self._mask, weights, 0.0)
        counts = np.asarray(self.decisions)[:, None]
        mixed = (1 - self.gamma) * weights / weights.sum(axis=1, keepdims=True)
        return np.asarray(np.where(self._mask, mixed + self.gamma / counts, 0.0))


def least_squares_contributions(
    actions: Sequence[Sequence[int]] | np.ndarray,
    rewards: Sequence[float] | np.ndarray,
    decisions: Sequence[int],
    *,
    ridge: float = RIDGE,
) -> np.ndarray:
    """Per-agent, per-action contributions of an additive model fitted to joint actions.

    Fits ``rewards[t] ~ c + sum_i beta[i, actions[t][i]]`` by ridge least squares (penalty
    ``ridge`` on ``beta``; the intercept ``c`` is the mean reward and is not penalised).
    Contributions are determined up to a constant per agent; the ridge penalty picks, for
    each agent, the solution whose action contributions sum to (about) zero.

    Args:
        actions: One joint action per round: the option chosen for each decision.
        rewards: The reward of each round.
        decisions: The number of options of each decision.
        ridge: The penalty; positive.

    Returns:
        An array of shape ``(len(decisions), max(decisions))``; padding entries are 0.

    Example:
        >>> beta = least_squares_contributions([(0,), (1,), (0,), (1,)], [1, 0, 1, 0], [2])
        >>> bool(beta[0, 0] > 0 > beta[0, 1])
        True
    """
    counts = [int(n) for n in decisions]
    y = np.asarray(rewards, dtype=np.float64)
    if len(y) == 0:
        return np.zeros((len(counts), max(counts)))
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    columns = offsets[None, :] + np.asarray(actions, dtype=np.int64)
    gram = np.zeros((sum(counts), sum(counts)))
    for row in columns:
        gram[np.ix_(row, row)] += 1.0
    return _unflatten(_ridge(gram, columns, y, ridge), counts)


def _ridge(gram: np.ndarray, columns: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge solution for one-hot rows given by their ``columns`` (Gram matrix given)."""
    centred = y - y.mean()
    xty = np.bincount(
        columns.ravel(), weights=np.repeat(centred, columns.shape[1]), minlength=len(gram)
    )
    return ridge_solve(gram, xty, ridge)


def _unflatten(flat: np.ndarray, decisions: Sequence[int]) -> np.ndarray:
    """Blocks of ``flat`` (one per decision) as rows, zero-padded to the widest."""
    out = np.zeros((len(decisions), max(decisions)))
    start = 0
    for i, n in enumerate(decisions):
        out[i, :n] = flat[start : start + n]
        start += n
    return out


def _scale(scores: np.ndarray, how: str) -> np.ndarray:
    """Scores mapped into ``[0, 1]`` relative to all of ``scores`` (see :class:`Manas`)."""
    n = len(scores)
    if how == "minmax":
        low, high = float(scores.min()), float(scores.max())
        if high - low <= 0:
            return np.full(n, 0.5)
        return np.asarray((scores - low) / (high - low))
    if n == 1:
        return np.full(1, 0.5)
    order = np.sort(scores)
    lower = np.searchsorted(order, scores, side="left")
    upper = np.searchsorted(order, scores, side="right")
    equal_others = upper - lower - 1
    return np.asarray((lower + 0.5 * equal_others) / (n - 1))
