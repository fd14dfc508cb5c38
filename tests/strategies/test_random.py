"""Random search samples uniformly and independently."""

from __future__ import annotations

import numpy as np

from nasforge.strategies.random import RandomSearch


def test_proposals_are_uniform_over_operations(nb201):
    search = RandomSearch(nb201, seed=0)
    counts = np.zeros((6, 5))
    for _ in range(3000):
        counts[np.arange(6), search.ask().arch.choices] += 1
    assert np.all(np.abs(counts / 3000 - 0.2) < 0.035)


def test_tells_do_not_change_proposals(nb201):
    a, b = RandomSearch(nb201, seed=4), RandomSearch(nb201, seed=4)
    from nasforge.trial import Trial, TrialState

    for _ in range(10):
        p = a.ask()
        a.tell(Trial(number=0, arch=p.arch, state=TrialState.COMPLETE, scores=(99.0,)))
        assert b.ask() == p
