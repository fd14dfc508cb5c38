"""The candidate pool of the proxy-ranked strategies (``training-free``, ``robot``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nasforge.spaces.base import SearchSpace

__all__ = ["REDUCED_BUILD", "proxy_candidates"]

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
) -> tuple[Any, list[np.ndarray]]:
    """The candidates' score table (:func:`nasforge.proxies.scores.candidate_scores`, with
    ``source``: scores, dataset, pool_size, data, batch_size, device, cache_dir) and one
    rank-normalised column per proxy, in the order of ``proxies``."""
    from nasforge.proxies.scores import candidate_scores, rank_normalise

    table = candidate_scores(
        space, proxies, rng, build=REDUCED_BUILD if build is None else build, **source
    )
    columns = [rank_normalise(table.column(p.replace("-", "_"))) for p in proxies]
    return table, columns
