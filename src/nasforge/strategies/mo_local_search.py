"""Pareto local search: local search for many objectives, on an archive of the front."""

from __future__ import annotations

from collections import deque

import numpy as np

from nasforge import strategies
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal, Trial, TrialState

__all__ = ["ParetoLocalSearch"]


@strategies.register("mo-local-search")
class ParetoLocalSearch(Strategy):
    """Pareto local search (PLS): explore the neighbourhoods of an archive of the front.

    Paquete, L., Chiarandini, M. and Stützle, T. "Pareto Local Optimum Sets in the Biobjective
    Traveling Salesman Problem: An Experimental Study." In Metaheuristics for Multiobjective
    Optimisation, LNEMS 535, Springer 2004; the multi-objective form of the local search of
    White et al. (``local-search``), a strong baseline on NAS benchmarks.

    1. Evaluate ``n_initial`` random architectures; the archive is their front (by
       ``Trial.scores``, all objectives).
    2. Take the oldest archive member whose neighbourhood was not explored yet and evaluate
       its neighbours (``space.neighbours``) in a random order, skipping architectures
       already evaluated. Each result enters the archive unless an archive member is at
       least as good in every objective (weak dominance, so the archive holds no two equal
       points); members it dominates leave. Once every neighbour is known, the member is
       explored (even if it left the archive meanwhile).
    3. When every archive member is explored (a Pareto local optimum set), restart at 1 with
       fresh random architectures, which join the same archive.

    No architecture is proposed twice while unproposed ones are left (random draws skip
    proposed ones, up to a thousand draws: ``SearchSpace.sample_unseen``). Trials without
    scores (FAILED, or infeasible under a study constraint) are evaluated but never archived.
    With one objective the archive is the best architecture and PLS is best-improvement hill
    climbing with restarts.
    If ``ask`` is called before earlier proposals are told (concurrent evaluation), the
    strategy proposes the rest of the neighbourhood, then fresh random architectures.

    Args:
        space: A space with ``sample`` and ``neighbours``.
        seed: Seed of the random starts and of the order of each neighbourhood.
        n_initial: Random architectures evaluated at the start and at each restart.

    Example:
        >>> from nasforge import spaces
        >>> pls = ParetoLocalSearch(spaces.create("nb201"), seed=0, n_initial=3)
        >>> len({pls.ask().arch for _ in range(3)})
        3
    """

    requires = ("sample", "neighbours")

    def __init__(self, space: SearchSpace, *, seed: int | None = 0, n_initial: int = 10) -> None:
        if isinstance(n_initial, bool) or n_initial < 1:
            raise InvalidConfigError(
                f"n_initial must be at least 1 (random architectures per start), got {n_initial}."
            )
        super().__init__(space, seed=seed)
        self.n_initial = n_initial
        #: The non-dominated architectures found so far, oldest first, with their scores.
        self.archive: dict[Architecture, tuple[float, ...]] = {}
        self._explored: set[Architecture] = set()
        self._told: set[Architecture] = set()
        self._proposed: set[Architecture] = set()
        self._starting = True  # drawing the random architectures of a (re)start
        self._start: list[Architecture] = []  # random architectures of the current start
        self.current: Architecture | None = None
        self._neighbourhood: deque[Architecture] = deque()
        #: Restarts so far: times the whole archive was explored (a Pareto local optimum set).
        self.restarts = 0

    # -- the Strategy contract --------------------------------------------------------------
    def ask(self) -> Proposal:
        while True:
            self._advance()
            if self.current is None:
                break
            while self._neighbourhood:
                arch = self._neighbourhood.popleft()
                if arch not in self._proposed:
                    return self._propose(arch)
            if not self._known(self.space.neighbours(self.current)):
                break  # results of this neighbourhood are still out: explore meanwhile
        arch = self._fresh()
        if self._starting:
            self._start.append(arch)
        return self._propose(arch)

    def tell(self, trial: Trial) -> None:
        self._told.add(trial.arch)
        self._proposed.add(trial.arch)
        if trial.state is TrialState.COMPLETE and trial.scores is not None:
            self._offer(trial.arch, tuple(float(s) for s in trial.scores))

    # -- the search -------------------------------------------------------------------------
    def _propose(self, arch: Architecture) -> Proposal:
        self._proposed.add(arch)
        return Proposal(arch)

    def _offer(self, arch: Architecture, scores: tuple[float, ...]) -> None:
        """Archive ``arch`` unless a member is at least as good everywhere."""
        if arch in self.archive:
            return
        new = np.array(scores)
        for other in self.archive.values():
            if np.all(np.asarray(other) >= new):
                return
        beaten = [
            a
            for a, s in self.archive.items()
            if np.all(new >= np.asarray(s)) and np.any(new > np.asarray(s))
        ]
        for a in beaten:
            del self.archive[a]
        self.archive[arch] = scores

    def _advance(self) -> None:
        """Take every step the results told so far allow (explore, move, restart)."""
        while True:
            if self.current is not None:
                if self._neighbourhood or not self._known(self.space.neighbours(self.current)):
                    return
                self._explored.add(self.current)
                self.current = None
            if self._starting:
                if len(self._start) < self.n_initial or not self._known(self._start):
                    return
                self._starting = False
                self._start = []
            waiting = next((a for a in self.archive if a not in self._explored), None)
            if waiting is None:  # a Pareto local optimum set: restart
                self._starting = True
                self.restarts += 1
                continue
            self.current = waiting
            neighbours = self.space.neighbours(waiting)
            order = self.rng.permutation(len(neighbours))
            self._neighbourhood = deque(neighbours[int(i)] for i in order)

    def _known(self, archs: list[Architecture]) -> bool:
        return all(a in self._told for a in archs)

    def _fresh(self) -> Architecture:
        return self.space.sample_unseen(self.rng, self._proposed)
