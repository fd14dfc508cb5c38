"""Evaluators: how good is an architecture? ``create("tabular", dataset="cifar10")``."""

from __future__ import annotations

from typing import Any

from nasforge.evaluators.base import Evaluator
from nasforge.registry import Registry

__all__ = ["Evaluator", "create", "names", "register"]

_REGISTRY: Registry[Evaluator] = Registry("evaluator", __name__)
register = _REGISTRY.register


def create(name: str, **kwargs: Any) -> Evaluator:
    """The evaluator registered as ``name`` built with ``kwargs``."""
    return _REGISTRY.create(name, **kwargs)


def names() -> list[str]:
    """Names of the registered evaluators."""
    return _REGISTRY.names()
