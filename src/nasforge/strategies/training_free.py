"""Training-free search: rank candidates by zero-cost proxies, query the best-ranked first."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nasforge import strategies
from nasforge.errors import InvalidConfigError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies._candidates import CandidatePool
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal

if TYPE_CHECKING:
    from nasforge.proxies.scores import ProxyScores

__all__ = ["TrainingFree"]


@strategies.register("training-free")
class TrainingFree(Strategy):
    """Query the candidates in the order of a zero-cost proxy (or of several, by mean rank).

    Abdelfattah, M. S., Mehrotra, A., Dudziak, L. and Lane, N. D. "Zero-Cost Proxies for
    Lightweight NAS." ICLR 2021, arXiv:2101.08134, Section 5 ("zero-cost warmup" and pure
    zero-cost search); Mellor, J. et al. "Neural Architecture Search without Training." ICML
    2021, arXiv:2006.04647 (score N candidates, keep the best). Here the budget of benchmark
    queries is spent on the best-ranked candidates, in order; the study's best trial is the
    answer.

    With several proxies, each is turned into ranks among the candidates and the ranks are
    averaged (an unweighted ensemble; :mod:`nasforge.strategies.robot` learns the weights).
    Ties are broken by a random order drawn from the seed. When every candidate has been
    queried, further proposals are random architectures.

    Args:
        space: Any space; with ``scores=None`` it needs a model builder.
        seed: Seed of the candidate pool and of the tie-breaking.
        proxies: Proxy names (``nwot``, the strongest single proxy on NAS-Bench-201).
        scores: Path of a precomputed score table (e.g. NAS-Bench-Suite-Zero's CSV; see
            :func:`nasforge.proxies.scores.read_reference`); ``None`` computes the scores.
        dataset: The table's rows to read, or the task the scores are computed for.
        pool_size: Candidates (default: the whole table, or 20 sampled architectures: a quick
            start on a CPU; a real search scores hundreds or reads a table).
        data: Images for computed scores (``None``: a synthetic batch).
        batch_size: Batch of computed scores.
        build: ``space.build`` arguments of computed scores. The default, a reduced network
            (8 channels, one cell per stage, EcoNAS-style), keeps scoring a candidate to tens
            of milliseconds on a CPU; pass ``{}`` for the full network.
        cache_dir: Keep computed scores on disk here.
        device: Device computed scores run on.

    Example:
        >>> from nasforge import spaces
        >>> s = TrainingFree(spaces.create("nb201"), seed=0, proxies=["synflow"], pool_size=5)
        >>> first = s.ask().arch
        >>> scores = s.table.column("synflow")
        >>> s.table.row(first) == int(scores.argmax())
        True
    """

    requires = ("sample",)

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        proxies: list[str] | None = None,
        scores: str | None = None,
        dataset: str = "cifar10",
        pool_size: int | None = None,
        data: str | None = None,
        batch_size: int = 16,
        build: dict[str, int] | None = None,
        cache_dir: str | None = None,
        device: str = "cpu",
    ) -> None:
        super().__init__(space, seed=seed)
        self.proxies = list(proxies) if proxies is not None else ["nwot"]
        if not self.proxies:
            raise InvalidConfigError("training-free search needs at least one proxy.")
        self._pool = CandidatePool(
            space,
            self.proxies,
            self.rng,
            scores=scores,
            dataset=dataset,
            pool_size=pool_size,
            data=data,
            batch_size=batch_size,
            build=build,
            device=device,
            cache_dir=cache_dir,
        )
        self._order: np.ndarray | None = None
        self._next = 0

    @property
    def table(self) -> ProxyScores:
        """The scored candidates (computed on first use)."""
        return self._pool.get()[0]

    @property
    def order(self) -> np.ndarray:
        """Candidate rows by combined score, best first (computed on first use)."""
        if self._order is None:
            table, columns = self._pool.get()
            combined = np.mean(columns, axis=0)
            tie_break = self.rng.permutation(len(table))
            # sort by score, descending; equal scores in the random order drawn above
            self._order = np.lexsort((tie_break, -combined))
        return self._order

    def ask(self) -> Proposal:
        if self._next < len(self.order):
            arch = self.table.archs[int(self.order[self._next])]
            self._next += 1
            return Proposal(arch)
        return Proposal(self.space.sample(self.rng))
