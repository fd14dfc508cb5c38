"""Random search: the baseline every search strategy must beat."""

from __future__ import annotations

from nasforge import strategies
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal

__all__ = ["RandomSearch"]


@strategies.register("random")
class RandomSearch(Strategy):
    """Samples architectures uniformly and independently (with replacement).

    Li, L. and Talwalkar, A. "Random Search and Reproducibility for Neural Architecture
    Search." UAI 2019, arXiv:1902.07638; Yang, A. et al. "NAS evaluation is frustratingly
    hard." ICLR 2020, arXiv:1912.12522: random sampling of the same space is the baseline
    against which a method's relative improvement is measured. As in the NAS-Bench-201 paper's
    random-search baseline, an architecture may be drawn twice; each draw costs a query.

    Example:
        >>> from nasforge import spaces
        >>> s = RandomSearch(spaces.create("nb201"), seed=0)
        >>> s.ask().arch == RandomSearch(spaces.create("nb201"), seed=0).ask().arch
        True
    """

    requires = ("sample",)

    def ask(self) -> Proposal:
        return Proposal(self.space.sample(self.rng))
