"""Run functions in a pool of local processes."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from nasforge.errors import InvalidConfigError
from nasforge.execution.base import Executor, call_shipped, ship

__all__ = ["ProcessPool", "WorkerError"]

R = TypeVar("R")


#: Most processes a pool may start (far beyond the cores of any one machine).
MAX_PROCESSES = 1024


class WorkerError(RuntimeError):
    """An error raised in a pool process that cannot travel back as itself (its class cannot
    be pickled or rebuilt in the main process); the message starts with that class's name
    and holds the error's own message."""


def _call_in_worker(fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    """``call_shipped(fn, *args, **kwargs)`` in a pool process; an error that could not be
    unpickled by the main process (which would break the whole pool) is replaced by a
    :class:`WorkerError` with its class name and message."""
    try:
        return call_shipped(fn, *args, **kwargs)
    except Exception as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            raise WorkerError(f"{type(exc).__qualname__}: {exc}") from None
        raise


class ProcessPool(Executor):
    """A pool of ``max_workers`` local processes (``None``: one per CPU core).

    Processes are started with ``spawn`` (``forkserver`` on Linux) so that a pool is safe in
    programs that hold threads or a database connection. Evaluators of the registry travel
    as their spec and are rebuilt once per process (see :func:`~nasforge.execution.base.ship`).
    An error raised in a process reaches the caller's future as itself (every
    :class:`~nasforge.errors.NasforgeError` pickles), or as a :class:`WorkerError` naming it.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and not 1 <= max_workers <= MAX_PROCESSES:
            raise InvalidConfigError(
                f"--workers (max_workers) must be from 1 to {MAX_PROCESSES}, got {max_workers}."
            )
        self.max_workers = max_workers or os.cpu_count() or 1
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else None
        context = multiprocessing.get_context(method or "spawn")
        self._pool = ProcessPoolExecutor(self.max_workers, mp_context=context)

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return self._pool.submit(_call_in_worker, fn, *(ship(a) for a in args), **kwargs)

    def shutdown(self) -> None:
        self._pool.shutdown(cancel_futures=True)
