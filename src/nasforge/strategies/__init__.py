"""Search strategies: what to try next. ``create("regularized-evolution", space, seed=0)``."""

from __future__ import annotations

from typing import Any

from nasforge.registry import Registry
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy, check_params

__all__ = ["Strategy", "create", "get", "names", "register"]

_REGISTRY: Registry[Strategy] = Registry("strategy", __name__)
register = _REGISTRY.register


def create(name: str, space: SearchSpace, *, seed: int | None = 0, **params: Any) -> Strategy:
    """The strategy registered as ``name`` for ``space``, seeded with ``seed``.

    Unknown parameters, and values of the wrong type, raise
    :class:`~nasforge.errors.InvalidConfigError` naming the valid parameters.
    """
    factory = _REGISTRY.get(name)
    if isinstance(factory, type):
        params = check_params(factory, params)
    return factory(space, seed=seed, **params)


def get(name: str) -> Any:
    """The class (or factory) registered as ``name``."""
    return _REGISTRY.get(name)


def names() -> list[str]:
    """Names of the registered strategies."""
    return _REGISTRY.names()
