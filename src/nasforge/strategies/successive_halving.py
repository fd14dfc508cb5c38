"""Hierarchical screening with cheap proxies: successive halving over any base strategy."""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from nasforge import strategies
from nasforge.errors import InvalidConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal, Trial

__all__ = ["SuccessiveHalving"]


@strategies.register("successive-halving")
class SuccessiveHalving(Strategy):
    """Screen a batch of candidates at low fidelity; evaluate only the best at full fidelity.

    Each round asks the ``base`` strategy for ``n_candidates`` architectures (a batch: the
    base strategy is asked repeatedly without being told in between), evaluates them at the
    cheapest fidelity of ``rungs``, keeps the best ``1/eta`` of them for the next rung, and
    so on; the last rung is the full fidelity (the proposal names no fidelity). Only the
    full-fidelity results are told to the base strategy, so a base strategy never mixes
    accuracies measured after different training budgets.

    This is the hierarchical proxy strategy of EcoNAS (Zhou, D. et al., "EcoNAS: Finding
    Proxies for Economical Neural Architecture Search", CVPR 2020, arXiv:2001.01233: cheap
    reduced-training proxies screen a population, only promising candidates get more
    training) in the form of successive halving (Jamieson, K. and Talwalkar, A., "Non-stochastic
    Best Arm Identification and Hyperparameter Optimization", AISTATS 2016, arXiv:1502.07943).
    With ``hyperband=True`` rounds cycle through Hyperband's brackets (Li, L. et al.,
    "Hyperband: A Novel Bandit-Based Approach to Hyperparameter Optimization", JMLR 2018,
    arXiv:1603.06560): bracket ``s`` starts at rung ``s`` from the top with
    ``ceil(n_candidates * eta**-s ...)`` candidates, so some rounds skip screening entirely.

    On NAS-Bench-201 the rungs are training epochs, ``rungs=(12, 200)``: a 12-epoch query
    costs 12/200 of a full query, and that is what the study's budget counts.

    Args:
        base: Registry name of the strategy that proposes candidates.
        base_params: Keyword arguments of the base strategy.
        rungs: Fidelities in increasing order; the last one is the full fidelity.
        fidelity_key: Name of the fidelity parameter of the evaluator (``"epochs"``).
        n_candidates: Candidates per round at the first rung.
        eta: Keep the best ``1/eta`` at each rung (at least one).
        hyperband: Cycle through Hyperband brackets instead of always screening.

    Example:
        >>> from nasforge import spaces
        >>> sh = SuccessiveHalving(spaces.create("nb201"), n_candidates=9, eta=3)
        >>> [sh.ask().fidelity for _ in range(2)]
        [{'epochs': 12}, {'epochs': 12}]
    """

    requires = ("sample",)

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        base: str = "random",
        base_params: Mapping[str, Any] | None = None,
        rungs: Sequence[int] = (12, 200),
        fidelity_key: str = "epochs",
        n_candidates: int = 27,
        eta: float = 3.0,
        hyperband: bool = False,
    ) -> None:
        if base == "successive-halving":
            raise InvalidConfigError("successive-halving cannot be its own base strategy.")
        rungs = tuple(int(r) for r in rungs)
        if len(rungs) < 2 or any(a >= b for a, b in itertools.pairwise(rungs)):
            raise InvalidConfigError(
                f"rungs must be at least two increasing fidelities, e.g. (12, 200); got {rungs}."
            )
        if n_candidates < 1:
            raise InvalidConfigError(f"n_candidates must be at least 1, got {n_candidates}.")
        if not eta > 1:
            raise InvalidConfigError(f"eta must be greater than 1, got {eta}.")
        super().__init__(space, seed=seed)
        self.base = strategies.create(base, space, seed=seed, **dict(base_params or {}))
        self.rungs = rungs
        self.fidelity_key = fidelity_key
        self.n_candidates = n_candidates
        self.eta = eta
        self.hyperband = hyperband
        self.round = 0
        self._queue: deque[Proposal] = deque()
        self._rung = 0
        self._waiting = 0
        self._results: list[Trial] = []

    def _fidelity(self, rung: int) -> dict[str, int] | None:
        return None if rung == len(self.rungs) - 1 else {self.fidelity_key: self.rungs[rung]}

    def _start_round(self) -> None:
        top = len(self.rungs) - 1
        start = 0
        n = self.n_candidates
        if self.hyperband:
            start = self.round % len(self.rungs)  # bracket: skip the first `start` rungs
            n = max(1, math.ceil(self.n_candidates / self.eta**start))
        self.round += 1
        self._rung = min(start, top)
        self._enqueue([self.base.ask().arch for _ in range(n)])

    def _enqueue(self, archs: Sequence[Any]) -> None:
        fidelity = self._fidelity(self._rung)
        self._queue.extend(Proposal(arch, fidelity) for arch in archs)
        self._waiting = len(archs)
        self._results = []

    def _is_final(self, trial: Trial) -> bool:
        return not trial.fidelity

    def ask(self) -> Proposal:
        if not self._queue and self._waiting == 0:
            self._start_round()
        if not self._queue:
            # results of this rung are still outstanding (concurrent workers): screen more
            return Proposal(self.base.ask().arch, self._fidelity(0))
        return self._queue.popleft()

    def tell(self, trial: Trial) -> None:
        if self._is_final(trial):
            self.base.tell(trial)
        if self._waiting == 0:
            return
        self._results.append(trial)
        self._waiting -= 1
        if self._waiting or self._rung == len(self.rungs) - 1:
            return
        scored = [t for t in self._results if t.score is not None]
        keep = max(1, math.floor(len(self._results) / self.eta))
        scored.sort(key=lambda t: t.score, reverse=True)  # type: ignore[arg-type, return-value]
        self._rung += 1
        self._enqueue([t.arch for t in scored[:keep]])
