"""The :class:`Executor` contract: where does an evaluation run?"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["Executor", "WorkerLost", "call_shipped", "ship"]

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


#: Evaluators rebuilt from their spec in this (worker) process, by spec.
_BUILT: dict[str, Any] = {}


class _BySpec:
    """Stands for an evaluator in a task's arguments: rebuilt from its spec by the worker."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def build(self) -> Any:
        import json

        from nasforge import evaluators

        key = json.dumps(self.spec, sort_keys=True, default=str)
        if key not in _BUILT:
            params = dict(self.spec)
            _BUILT[key] = evaluators.create(params.pop("name"), **params)
        return _BUILT[key]


def ship(value: Any) -> Any:
    """What to send to another process for ``value``: an evaluator of the registry travels
    as its spec (tables and datasets are opened once per worker process, not pickled), any
    other value as itself. The receiver calls :func:`call_shipped`."""
    from nasforge.evaluators.base import Evaluator

    if isinstance(value, Evaluator):
        spec = value.spec()
        if spec is not None and type(value).__module__.startswith("nasforge."):
            return _BySpec(spec)
    return value


def call_shipped(fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)`` with the shipped evaluators rebuilt (in the worker)."""
    return fn(*(a.build() if isinstance(a, _BySpec) else a for a in args), **kwargs)
