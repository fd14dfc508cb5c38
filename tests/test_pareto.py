"""Pareto tools: dominance, sorting, crowding, fronts, hypervolume and true fronts."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from nasforge.errors import InvalidConfigError, MissingDependencyError
from nasforge.pareto import (
    TrueFront,
    crowding_distance,
    dominates,
    front,
    front_indices,
    front_trials,
    hypervolume,
    hypervolume_ratio,
    non_dominated_sort,
    orient,
    pareto_ranks,
    plot_front,
    reference_point,
    true_front,
)
from nasforge.trial import Trial, TrialState

moocore = pytest.importorskip("moocore", reason="the hypervolume needs the [mo] extra")

OBJECTIVES = ["acc:max", "latency:min"]
#: (accuracy, latency) of six architectures, in the metrics' own units.
RAW = np.array(
    [
        [90.0, 5.0],  # 0: front
        [92.0, 8.0],  # 1: front
        [88.0, 6.0],  # 2: dominated by 0
        [85.0, 2.0],  # 3: front
        [92.0, 9.0],  # 4: dominated by 1 (same accuracy, slower)
        [84.0, 7.0],  # 5: dominated by 0, 2 and 3
    ]
)


def test_orient_negates_the_minimised_objectives():
    assert orient(RAW[:1], OBJECTIVES).tolist() == [[90.0, -5.0]]
    assert orient([1.0, 2.0], ["a:min", "b:max"]).tolist() == [-1.0, 2.0]
    with pytest.raises(InvalidConfigError, match="columns"):
        orient(RAW, ["acc:max"])


def test_dominance_with_mixed_directions():
    points = orient(RAW, OBJECTIVES)
    assert dominates(points[0], points[2])  # more accurate and faster
    assert dominates(points[1], points[4])  # as accurate, faster
    assert not dominates(points[0], points[1]) and not dominates(points[1], points[0])
    assert not dominates(points[0], points[0])  # a point does not dominate itself


def test_front_of_hand_made_points():
    points = orient(RAW, OBJECTIVES)
    assert front_indices(points).tolist() == [0, 1, 3]
    assert front(points).tolist() == points[[0, 1, 3]].tolist()
    assert front_indices(np.zeros((0, 2))).tolist() == []


def test_equal_points_are_all_on_the_front():
    points = [[1.0, 1.0], [1.0, 1.0], [0.0, 0.5]]
    assert front_indices(points).tolist() == [0, 1]
    assert [f.tolist() for f in non_dominated_sort(points)] == [[0, 1], [2]]


def test_non_dominated_sort_gives_every_front_in_order():
    points = orient(RAW, OBJECTIVES)
    fronts = [f.tolist() for f in non_dominated_sort(points)]
    assert fronts == [[0, 1, 3], [2, 4], [5]]
    assert pareto_ranks(points).tolist() == [0, 0, 1, 0, 1, 2]
    assert non_dominated_sort(np.zeros((0, 3))) == []


def test_sorting_agrees_with_moocore_on_random_points():
    rng = np.random.default_rng(0)
    for k in (2, 3, 4):
        points = rng.integers(0, 6, size=(60, k)).astype(float)  # many ties
        expected = moocore.is_nondominated(points, maximise=True, keep_weakly=True)
        assert front_indices(points).tolist() == np.flatnonzero(expected).tolist()
        ranks = pareto_ranks(points)
        assert np.array_equal(ranks == 0, expected)
        for i, j in [(i, j) for i in range(60) for j in range(60)]:
            if dominates(points[i], points[j]):
                assert ranks[i] < ranks[j]


def test_crowding_distance_by_hand():
    # sorted by the first objective: 0, 1, 3, 4 (range 4); by the second: 4, 3, 1, 0 (range 4)
    points = [[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]]
    # point 1: (3 - 0) / 4 + (4 - 1) / 4 = 1.5; point 2: (4 - 1) / 4 + (3 - 0) / 4 = 1.5
    assert crowding_distance(points).tolist() == [np.inf, 1.5, 1.5, np.inf]
    uneven = [[0.0, 10.0], [1.0, 9.0], [2.0, 5.0], [10.0, 0.0]]
    # point 1: 2/10 + 5/10 = 0.7; point 2: 9/10 + 9/10 = 1.8
    assert crowding_distance(uneven).tolist() == pytest.approx([np.inf, 0.7, 1.8, np.inf])


def test_crowding_distance_edge_cases():
    assert crowding_distance([[1.0, 2.0], [2.0, 1.0]]).tolist() == [np.inf, np.inf]
    # a constant objective adds nothing and makes no extreme point
    flat = crowding_distance([[0.0, 5.0], [1.0, 5.0], [3.0, 5.0]])
    assert flat.tolist() == [np.inf, 1.0, np.inf]


def test_hypervolume_of_a_staircase_by_hand():
    staircase = [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]  # 3 + 2 + 1 unit columns
    assert hypervolume(staircase, [0.0, 0.0]) == pytest.approx(6.0)
    # a dominated point adds nothing; a point not better than the reference is ignored
    assert hypervolume([*staircase, [1.0, 1.0], [5.0, 0.0]], [0.0, 0.0]) == pytest.approx(6.0)
    # mixed directions: accuracy up, latency down, reference (80 %, 10 ms)
    points = orient([[90.0, 5.0], [85.0, 2.0]], OBJECTIVES)
    ref = orient([80.0, 10.0], OBJECTIVES)
    assert hypervolume(points, ref) == pytest.approx(10 * 5 + 5 * 3)
    assert hypervolume(np.zeros((0, 2)), [0.0, 0.0]) == 0.0


def test_hypervolume_in_three_dimensions():
    assert hypervolume([[1.0, 1.0, 1.0]], [0.0, 0.0, 0.0]) == pytest.approx(1.0)
    # two unit-overlapping boxes: 2*1*1 + 1*2*1 - 1*1*1
    assert hypervolume([[2.0, 1.0, 1.0], [1.0, 2.0, 1.0]], [0, 0, 0]) == pytest.approx(3.0)


def test_hypervolume_ratio():
    true = [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]
    assert hypervolume_ratio(true, true, [0.0, 0.0]) == pytest.approx(1.0)
    assert hypervolume_ratio([[2.0, 2.0]], true, [0.0, 0.0]) == pytest.approx(4 / 6)
    with pytest.raises(InvalidConfigError, match="no hypervolume"):
        hypervolume_ratio(true, true, [5.0, 5.0])


def test_hypervolume_without_moocore(monkeypatch):
    monkeypatch.setitem(sys.modules, "moocore", None)
    with pytest.raises(MissingDependencyError, match=r"nasforge\[mo\]"):
        hypervolume([[1.0, 1.0]], [0.0, 0.0])


def test_reference_points():
    points = [[10.0, -3.0], [20.0, -5.0]]
    assert reference_point(points).tolist() == pytest.approx([9.0, -5.2])
    assert reference_point(points, margin=0.0).tolist() == [10.0, -5.0]
    table = [[0.0, -1.0], [10.0, -3.0], [20.0, -5.0]]
    assert reference_point(points, kind="median", table=table).tolist() == [10.0, -3.0]
    with pytest.raises(InvalidConfigError, match="median"):
        reference_point(points, kind="median")
    with pytest.raises(InvalidConfigError, match="Unknown reference"):
        reference_point(points, kind="worst")  # type: ignore[arg-type]


class TinyBenchmark:
    """A benchmark of six cells: RAW, with one latency missing."""

    name = "tiny"

    def column(self, dataset: str, metric: str, fidelity: int | None = None) -> np.ndarray:
        columns = {"acc": RAW[:, 0], "latency": np.array([5.0, 8.0, 6.0, 2.0, 9.0, np.nan])}
        return columns[metric]


def test_true_front_of_a_tiny_table():
    tf = true_front(TinyBenchmark(), "any", OBJECTIVES)
    assert isinstance(tf, TrueFront)
    assert tf.rows.tolist() == [0, 1, 3]
    assert tf.values().tolist() == [[90.0, 5.0], [92.0, 8.0], [85.0, 2.0]]
    assert len(tf.table) == 5  # the cell without latency is left out
    # nadir (85 %, 8 ms), ranges 7 and 6: reference 10 % beyond
    assert tf.reference.tolist() == pytest.approx([84.3, -8.6])
    assert tf.hypervolume == pytest.approx(hypervolume(tf.points, tf.reference))
    assert tf.ratio(tf.points) == pytest.approx(1.0)
    assert tf.ratio(tf.points[:1]) < 1.0
    median = tf.with_reference("median")  # (90 %, 6 ms): no front point beats it in both
    assert median.reference.tolist() == [90.0, -6.0]
    assert median.hypervolume == 0.0


def test_true_front_of_nb201_holds_the_best_cell(bench):
    tf = true_front(bench, "cifar10", ["test_acc:max", "latency_ms[edgegpu]:min"])
    values = tf.values()
    assert values[:, 0].max() == bench.column("cifar10", "test_acc").max()
    assert values[:, 1].min() == bench.column("cifar10", "latency_ms[edgegpu]").min()
    for row, (acc, latency) in zip(tf.rows, values, strict=True):
        assert bench.column("cifar10", "test_acc")[row] == acc
        assert bench.column("cifar10", "latency_ms[edgegpu]")[row] == latency
    assert tf.hypervolume > 0


def completed(number: int, arch, scores, fidelity=None) -> Trial:
    return Trial(number, arch, TrialState.COMPLETE, fidelity=fidelity, scores=scores)


def test_front_trials_skip_failed_screening_and_repeated_trials(nb201):
    rng = np.random.default_rng(0)
    a, b, c, d = (nb201.sample(rng) for _ in range(4))
    trials = [
        completed(0, a, (1.0, -1.0)),
        completed(1, b, (2.0, -2.0)),
        completed(2, c, (0.5, -1.5)),  # dominated by trial 0
        Trial(3, d, TrialState.FAILED),
        completed(4, d, (9.0, 0.0), fidelity={"epochs": 12}),  # screening only
        completed(5, a, (1.0, -1.0)),  # repeats trial 0
        Trial(6, d, TrialState.COMPLETE, scores=None),  # infeasible
    ]
    assert [t.number for t in front_trials(trials)] == [0, 1]
    assert front_trials([]) == []


def test_plot_front_writes_an_image(tmp_path):
    tf = true_front(TinyBenchmark(), "any", OBJECTIVES)
    path = plot_front(tf.points[:2], tf, tmp_path / "front.png", others=tf.table)
    assert path.stat().st_size > 0
    three = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    assert plot_front(three, three, tmp_path / "three.png").exists()


def test_bad_points_are_refused():
    with pytest.raises(InvalidConfigError, match="NaN"):
        front_indices([[1.0, np.nan]])
    with pytest.raises(InvalidConfigError, match="2-D"):
        crowding_distance([1.0, 2.0, 3.0])
