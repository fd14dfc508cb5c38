"""The worker loop and the checks both comparisons share."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nasforge.errors import InvalidConfigError
from nasforge.experiments._tasks import (
    MAX_CHUNK,
    check_budgets,
    check_names,
    check_seeds,
    chunk_size,
    run_tasks,
)


@dataclass(frozen=True)
class Squares:
    seeds: tuple[int, ...]


def square_all(task: Squares) -> list[int]:
    return [s * s for s in task.seeds]


@pytest.mark.parametrize("n_workers", [1, 2])
def test_results_come_back_in_task_order_with_progress(n_workers: int) -> None:
    tasks = [Squares(seeds) for seeds in ((0, 1, 2), (3,), (4, 5), (6, 7, 8, 9))]
    calls: list[tuple[int, int]] = []
    results = run_tasks(square_all, tasks, n_workers, 10, lambda d, t: calls.append((d, t)))
    assert results == [square_all(t) for t in tasks]
    assert calls[0] == (0, 10) and calls[-1] == (10, 10) and len(calls) == 5
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_chunks_give_each_worker_about_four_tasks() -> None:
    assert chunk_size(100, 1) == MAX_CHUNK
    assert chunk_size(40, 2) == 5
    assert chunk_size(3, 8) == 1


def test_names_and_seeds_are_checked() -> None:
    assert check_names("random", "strategies", "strategies=['random']") == ("random",)
    with pytest.raises(InvalidConfigError, match=r"lists \['a'\] more than once"):
        check_names(["a", "a"], "strategies", "strategies=['random']")
    with pytest.raises(InvalidConfigError, match="at least one name in datasets"):
        check_names([], "datasets", "datasets=['cifar10']")
    assert check_seeds(3) == (0, 1, 2) and check_seeds([4, 2]) == (4, 2)
    for bad, message in ((0, "positive number"), ([1, 1], "more than once"), ([-1], "non-neg")):
        with pytest.raises(InvalidConfigError, match=message):
            check_seeds(bad)  # type: ignore[arg-type]


def test_budgets_are_checked_against_the_runs() -> None:
    assert check_budgets([100, 50, 100], 100) == [50, 100]
    with pytest.raises(InvalidConfigError, match="exceeds the 100 queries"):
        check_budgets([200], 100)
    with pytest.raises(InvalidConfigError, match="positive whole number"):
        check_budgets([True], 100)
    with pytest.raises(InvalidConfigError, match="budgets is empty"):
        check_budgets([], 100)
