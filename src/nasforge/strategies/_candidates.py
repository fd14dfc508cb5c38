"""The candidate pool of the proxy-ranked strategies (``training-free``, ``robot``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.spaces.base import SearchSpace

if TYPE_CHECKING:
    from nasforge.proxies.scores import ProxyScores

__all__ = ["REDUCED_BUILD", "CandidatePool", "proxy_candidates"]

#: The reduced network computed scores use by default (8 channels, one cell per stage,
#: EcoNAS-style): scoring a candidate takes tens of milliseconds on a CPU.
REDUCED_BUILD: dict[str, int] = {"channels": 8, "cells_per_stage": 1}


def proxy_candidates(
    space: SearchSpace,
    proxies: list[str],
    rng: np.random.Generator,
    *,
    build: dict[str, int] | None,
    **source: Any,
) -> tuple[ProxyScores, list[np.ndarray]]:
    """The candidates' score table (:func:`nasforge.proxies.scores.candidate_scores`, with
    ``source``: scores, dataset, pool_size, data, batch_size, device, cache_dir) and one
    rank-normalised column per proxy, in the order of ``proxies``."""
    from nasforge.proxies.scores import candidate_scores, rank_normalise

    table = candidate_scores(
        space, proxies, rng, build=REDUCED_BUILD if build is None else build, **source
    )
    columns = [rank_normalise(table.column(p.replace("-", "_"))) for p in proxies]
    return table, columns


class CandidatePool:
    """:func:`proxy_candidates`, computed on first use: building a strategy stays cheap
    (``create_study`` and ``nasforge list`` score nothing), and the scores are drawn from
    ``rng`` when the strategy first needs them, before any other draw of its own, so the
    candidates are the same as if they were computed at construction.

    The proxy names and the pool size are checked at once (an error before anything runs).
    """

    def __init__(
        self,
        space: SearchSpace,
        proxies: list[str],
        rng: np.random.Generator,
        *,
        build: dict[str, int] | None,
        **source: Any,
    ) -> None:
        from nasforge import proxies as registry
        from nasforge.errors import InvalidConfigError

        for name in proxies:
            registry.get(name)
        pool_size = source.get("pool_size")
        if pool_size is not None and (
            isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1
        ):
            raise InvalidConfigError(f"pool_size must be at least 1, got {pool_size}.")
        self._args = (space, list(proxies), rng)
        self._build = build
        self._source = source
        self._result: tuple[ProxyScores, list[np.ndarray]] | None = None

    def get(self) -> tuple[ProxyScores, list[np.ndarray]]:
        """The score table and the rank-normalised columns (computed once)."""
        if self._result is None:
            space, proxies, rng = self._args
            self._result = proxy_candidates(space, proxies, rng, build=self._build, **self._source)
        return self._result
