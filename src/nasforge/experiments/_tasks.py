"""What the comparisons share: checking their names and seeds, cutting the seeds into tasks
for worker processes, and running the tasks."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, as_completed
from typing import Protocol, TypeVar

from nasforge.errors import InvalidConfigError
from nasforge.execution import ProcessPool

__all__ = [
    "MAX_CHUNK",
    "check_budgets",
    "check_names",
    "check_seeds",
    "chunk_size",
    "run_tasks",
    "worker_count",
]

#: Most seeds one worker task runs (amortises process overhead, keeps progress fine-grained).
MAX_CHUNK = 25


class SeedTask(Protocol):
    """A unit of work: some seeds of one run configuration."""

    @property
    def seeds(self) -> tuple[int, ...]: ...


T = TypeVar("T", bound=SeedTask)
R = TypeVar("R")


def worker_count(n_jobs: int | None) -> int:
    """Worker processes for ``n_jobs`` (``None``: one per CPU core)."""
    return (os.cpu_count() or 1) if n_jobs is None else int(n_jobs)


def chunk_size(total: int, n_workers: int) -> int:
    """Seeds per task: about four tasks per worker balance the load, at most
    :data:`MAX_CHUNK` seeds per task."""
    return max(1, min(MAX_CHUNK, math.ceil(total / (4 * n_workers))))


def run_tasks(
    run: Callable[[T], R],
    tasks: Sequence[T],
    n_workers: int,
    total: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[R]:
    """``run(task)`` for every task, in this process (one worker or one task) or in a pool of
    ``n_workers`` processes; the results in the order of ``tasks``.

    ``progress(done, total)`` is called before the first task and after each one, ``done``
    counting the seeds of the tasks finished.
    """
    results: list[R | None] = [None] * len(tasks)
    done = 0
    if progress is not None:
        progress(0, total)
    if min(n_workers, len(tasks)) <= 1:
        for position, task in enumerate(tasks):
            results[position] = run(task)
            done += len(task.seeds)
            if progress is not None:
                progress(done, total)
    else:
        with ProcessPool(min(n_workers, len(tasks))) as pool:
            futures: dict[Future[R], int] = {
                pool.submit(run, task): position for position, task in enumerate(tasks)
            }
            for future in as_completed(futures):
                position = futures[future]
                results[position] = future.result()
                done += len(tasks[position].seeds)
                if progress is not None:
                    progress(done, total)
    out: list[R] = []
    for result in results:
        assert result is not None
        out.append(result)
    return out


def check_names(values: Sequence[str] | str, label: str, example: str) -> tuple[str, ...]:
    """``values`` (one name or several) as a tuple; at least one, none twice."""
    if isinstance(values, str):
        values = [values]
    out = tuple(str(v) for v in values)
    if not out:
        raise InvalidConfigError(f"Give at least one name in {label}, e.g. {example}.")
    if len(set(out)) != len(out):
        twice = sorted({v for v in out if out.count(v) > 1})
        raise InvalidConfigError(f"{label} lists {twice} more than once; name each once.")
    return out


def check_seeds(seeds: int | Sequence[int]) -> tuple[int, ...]:
    """The seeds: ``0..seeds-1`` for a count, else the list given (distinct, non-negative)."""
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds <= 0:
            raise InvalidConfigError(
                f"seeds must be a positive number of seeds (or a list of seeds), got {seeds}; "
                "e.g. seeds=100 runs seeds 0..99."
            )
        return tuple(range(int(seeds)))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise InvalidConfigError(
            f"seeds must be a number of seeds or a list of seeds, got {seeds!r}; e.g. seeds=100."
        )
    out: list[int] = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise InvalidConfigError(f"Each seed must be a non-negative integer, got {seed!r}.")
        out.append(int(seed))
    if not out:
        raise InvalidConfigError("seeds is empty; give a number of seeds (seeds=100) or a list.")
    if len(set(out)) != len(out):
        raise InvalidConfigError(f"seeds lists a seed more than once: {out}; list each once.")
    return tuple(out)


def check_budgets(budgets: Sequence[int], limit: int) -> list[int]:
    """The budgets to summarise at, sorted and distinct; each a whole number in
    ``1..limit`` (the queries each run had)."""
    out: list[int] = []
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, numbers.Integral) or b < 1:
            raise InvalidConfigError(f"Each budget must be a positive whole number, got {b!r}.")
        if b > limit:
            raise InvalidConfigError(
                f"Budget {b} exceeds the {limit} queries each run had; summarise at budgets up "
                f"to {limit}, or run the comparison with budget={b}."
            )
        out.append(int(b))
    if not out:
        raise InvalidConfigError("budgets is empty; give at least one, or None for the defaults.")
    return sorted(set(out))
