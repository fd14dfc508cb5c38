"""Search spaces: what can be built. ``create("nb201")`` builds one by name."""

from __future__ import annotations

from typing import Any

from nasforge.registry import Registry
from nasforge.spaces.base import SearchSpace

__all__ = ["SearchSpace", "create", "get", "names", "register"]

_REGISTRY: Registry[SearchSpace] = Registry("search space", __name__)
register = _REGISTRY.register


def create(name: str, **kwargs: Any) -> SearchSpace:
    """The search space registered as ``name`` (``"nb201"``), built with ``kwargs``."""
    return _REGISTRY.create(name, **kwargs)


def get(name: str) -> Any:
    """The class (or factory) registered as ``name``, without building it."""
    return _REGISTRY.get(name)


def names() -> list[str]:
    """Names of the registered search spaces."""
    return _REGISTRY.names()
