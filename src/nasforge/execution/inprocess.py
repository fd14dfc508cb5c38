"""Run evaluations in the calling process, one at a time."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from nasforge.execution.base import Executor

__all__ = ["InProcessExecutor"]

R = TypeVar("R")


class InProcessExecutor(Executor):
    """Calls the function at once in this process; the returned future is already done.

    ``KeyboardInterrupt`` and other non-``Exception`` signals propagate to the caller instead
    of being stored in the future, so that Ctrl-C stops a search at once.
    """

    max_workers = 1

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        future: Future[R] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future
