"""The :class:`Executor` contract: where does an evaluation run?"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["Executor", "WorkerLost"]

R = TypeVar("R")


class WorkerLost(RuntimeError):
    """The process or machine running an evaluation died (not the evaluation's fault): the
    study marks the trial FAILED, retryable, and evaluates its proposal again."""


class Executor(ABC):
    """Runs functions somewhere and hands back :class:`concurrent.futures.Future` objects."""

    #: How many evaluations can run at once.
    max_workers: int = 1

    @abstractmethod
    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """Run ``fn(*args, **kwargs)``; the future holds its result or exception."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release workers (no-op by default)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
