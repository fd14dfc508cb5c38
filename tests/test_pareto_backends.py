"""Fronts and non-dominated sorting: moocore (when installed) and the NumPy fallbacks give
the same answer, ties and duplicates included; the front has the defining property."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nasforge.pareto import _sorting as pareto
from nasforge.pareto import dominates, front_indices, non_dominated_sort, pareto_ranks


def _points(max_rows: int = 40) -> st.SearchStrategy[np.ndarray]:
    """Small integer-valued points: ties and duplicate rows are common."""
    return st.integers(1, 4).flatmap(
        lambda k: arrays(
            np.float64,
            st.tuples(st.integers(0, max_rows), st.just(k)),
            elements=st.integers(-3, 3).map(float),
        )
    )


@settings(max_examples=150, deadline=None)
@given(_points())
def test_the_front_is_exactly_the_undominated_points(points):
    kept = set(front_indices(points).tolist())
    for i in range(len(points)):
        beaten = any(dominates(points[j], points[i]) for j in range(len(points)))
        assert (i in kept) is not beaten  # duplicates of a front point are all kept


@settings(max_examples=100, deadline=None)
@given(_points())
def test_sorting_places_each_point_after_those_dominating_it(points):
    fronts = non_dominated_sort(points)
    assert sorted(np.concatenate(fronts).tolist() if fronts else []) == list(range(len(points)))
    ranks = pareto_ranks(points)
    for i in range(len(points)):
        for j in range(len(points)):
            if dominates(points[i], points[j]):
                assert ranks[i] < ranks[j]
        if ranks[i] > 0:  # something in the previous front dominates it
            assert any(dominates(points[j], points[i]) for j in fronts[ranks[i] - 1])


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_moocore_and_numpy_agree_with_ties_and_duplicates(k):
    pytest.importorskip("moocore")
    rng = np.random.default_rng(k)
    for n in (1, 2, 5, 80):
        points = rng.integers(0, 4, size=(n, k)).astype(float)
        points = np.concatenate([points, points[: n // 2]])  # exact duplicates
        assert front_indices(points).tolist() == pareto._front_indices_numpy(points).tolist()
        ours = [f.tolist() for f in pareto._non_dominated_sort_numpy(points)]
        assert [f.tolist() for f in non_dominated_sort(points)] == ours


def test_without_moocore_the_fallback_answers(monkeypatch):
    points = np.array([[3.0, -1.0], [2.0, -2.0], [1.0, -0.5], [2.0, -1.5], [3.0, -1.0]])
    monkeypatch.setitem(sys.modules, "moocore", None)
    assert front_indices(points).tolist() == [0, 2, 4]
    assert [f.tolist() for f in non_dominated_sort(points)] == [[0, 2, 4], [3], [1]]


def test_infinite_values_use_the_fallback():
    points = np.array([[np.inf, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert front_indices(points).tolist() == [0, 1]
    assert [f.tolist() for f in non_dominated_sort(points)] == [[0, 1], [2]]
