"""Run functions in a pool of local processes."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from nasforge.errors import InvalidConfigError
from nasforge.execution.base import Executor, call_shipped, ship

__all__ = ["ProcessPool"]

R = TypeVar("R")


class ProcessPool(Executor):
    """A pool of ``max_workers`` local processes (``None``: one per CPU core).

    Processes are started with ``spawn`` (``forkserver`` on Linux) so that a pool is safe in
    programs that hold threads or a database connection. Evaluators of the registry travel
    as their spec and are rebuilt once per process (see :func:`~nasforge.execution.base.ship`).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise InvalidConfigError(f"max_workers must be at least 1, got {max_workers}.")
        self.max_workers = max_workers or os.cpu_count() or 1
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else None
        context = multiprocessing.get_context(method or "spawn")
        self._pool = ProcessPoolExecutor(self.max_workers, mp_context=context)

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return self._pool.submit(call_shipped, fn, *(ship(a) for a in args), **kwargs)

    def shutdown(self) -> None:
        self._pool.shutdown(cancel_futures=True)
