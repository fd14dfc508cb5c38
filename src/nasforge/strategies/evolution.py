"""Regularized evolution (aging evolution)."""

from __future__ import annotations

import math
from collections import deque

from nasforge import strategies
from nasforge.architecture import Architecture
from nasforge.constraints import Constraint
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError, UnknownNameError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal, Trial, TrialState

__all__ = ["RegularizedEvolution"]


@strategies.register("regularized-evolution")
class RegularizedEvolution(Strategy):
    """Tournament selection with aging: mutate the best of a random sample, drop the oldest.

    Real, E., Aggarwal, A., Huang, Y. and Le, Q. V. "Regularized Evolution for Image
    Classifier Architecture Search." AAAI 2019, arXiv:1802.01548 (Algorithm 1).

    The population is first filled with ``population_size`` random architectures. Then each
    step samples ``tournament_size`` distinct members uniformly, mutates the one with the best
    score (one random decision changed, ``space.mutate``) and evaluates the child; the child
    joins the population and the oldest member leaves it. Failed trials never join the
    population (while it is still filling, another random architecture is drawn instead).

    With ``constraint`` (e.g. ``"params_M<=0.5"``, any metric the evaluator knows for free:
    parameters, FLOPs, table latency), the population starts as in EEEA-Net's Early Exit
    Population Initialisation (Termritthikun et al., "EEEA-Net: An Early Exit Evolutionary
    Neural Architecture Search", Engineering Applications of AI 2021, arXiv:2108.06156): a
    random candidate that violates the constraint is replaced by a new one before it is
    evaluated. As in the paper, only the initial population is filtered; children are not.

    Args:
        space: Any space with ``sample`` and ``mutate``.
        seed: Seed of all random choices.
        population_size: ``P`` in the paper.
        tournament_size: ``S`` in the paper; at most ``population_size``.
        constraint: Early-exit threshold for the initial population, ``"metric<=value"``.
        max_rejections: Candidates rejected in a row before the constraint is declared
            infeasible (:class:`~nasforge.errors.InfeasibleConstraintError`, which reports the
            tightest value seen).

    The defaults (``P=30``, ``S=20``) were chosen on NAS-Bench-201 with
    ``benchmarks/tune_evolution.py`` (300 seeds, three datasets, 100 and 200 queries): large
    tournaments do best at such budgets. The paper's large-scale runs used ``P=100, S=25``.

    Example:
        >>> from nasforge import spaces
        >>> space = spaces.create("nb201")
        >>> evo = RegularizedEvolution(space, seed=0, population_size=10, tournament_size=3)
        >>> len({evo.ask().arch for _ in range(3)})
        3
    """

    requires = ("sample", "mutate")

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        population_size: int = 30,
        tournament_size: int = 20,
        constraint: str | None = None,
        max_rejections: int = 1000,
    ) -> None:
        if population_size < 1:
            raise InvalidConfigError(f"population_size must be at least 1, got {population_size}.")
        if not 1 <= tournament_size <= population_size:
            raise InvalidConfigError(
                f"tournament_size must be between 1 and population_size ({population_size}), "
                f"got {tournament_size}; lower tournament_size or raise population_size."
            )
        if max_rejections < 1:
            raise InvalidConfigError(f"max_rejections must be at least 1, got {max_rejections}.")
        super().__init__(space, seed=seed)
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.constraint = None if constraint is None else Constraint.parse(constraint)
        self.max_rejections = max_rejections
        self.rejected = 0
        self.population: deque[Trial] = deque()

    def ask(self) -> Proposal:
        if len(self.population) < self.population_size:
            return Proposal(self._initial())
        members = self.rng.choice(len(self.population), size=self.tournament_size, replace=False)
        parent = max((self.population[int(i)] for i in members), key=_score)
        return Proposal(self.space.mutate(parent.arch, self.rng))

    def _initial(self) -> Architecture:
        """A random architecture; with a constraint, the first one that meets it (EE-PI)."""
        arch = self.space.sample(self.rng)
        if self.constraint is None:
            return arch
        tightest = math.inf
        for _ in range(self.max_rejections):
            metrics = self.free(arch)
            if self.constraint.metric not in metrics:
                raise UnknownNameError(
                    "constraint metric (one that costs no evaluation)",
                    self.constraint.metric,
                    metrics,
                )
            if self.constraint.satisfied(metrics):
                return arch
            self.rejected += 1
            value = metrics[self.constraint.metric]
            tightest = min(tightest, value) if self.constraint.upper else max(tightest, -value)
            arch = self.space.sample(self.rng)
        best = tightest if self.constraint.upper else -tightest
        raise InfeasibleConstraintError(
            f"No architecture met {self.constraint} in {self.max_rejections} random samples; "
            f"the {'smallest' if self.constraint.upper else 'largest'} "
            f"{self.constraint.metric} seen was {best:g}. Loosen the bound."
        )

    def tell(self, trial: Trial) -> None:
        if trial.state is not TrialState.COMPLETE or trial.score is None:
            return
        self.population.append(trial)
        if len(self.population) > self.population_size:
            self.population.popleft()


def _score(trial: Trial) -> float:
    assert trial.score is not None
    return trial.score
