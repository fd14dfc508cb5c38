"""Name registries: each leaf component registers itself by name with a decorator.

A registry belongs to one sub-package (``nasforge.spaces``, ``nasforge.strategies``, ...). On
first use it imports every public module of that package, so that a new strategy or space is
one new file and nothing else: its ``@register`` decorator runs when the registry looks. Leaf
modules therefore must not import heavy libraries (torch, ray) at module level.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from nasforge.errors import UnknownNameError

T = TypeVar("T")
logger = logging.getLogger(__name__)

__all__ = ["Registry"]


class Registry(Generic[T]):
    """A mapping from user-facing names (kebab-case) to factories.

    Args:
        kind: What the registry holds, in words (``"strategy"``); used in error messages.
        package: The package whose modules are imported on first look-up, or ``None``.
    """

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self._package = package
        self._entries: dict[str, Callable[..., T]] = {}
        self._discovered = package is None
        self._broken: dict[str, str] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Class or function decorator that registers a factory under ``name``."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            existing = self._entries.get(name)
            if existing is not None and existing is not factory:
                same = getattr(existing, "__qualname__", None) == getattr(
                    factory, "__qualname__", None
                ) and getattr(existing, "__module__", None) == getattr(factory, "__module__", None)
                if not same:
                    raise ValueError(f"{self.kind} {name!r} is already registered by {existing!r}")
            self._entries[name] = factory
            factory.registry_name = name  # type: ignore[attr-defined]
            return factory

        return decorator

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        assert self._package is not None
        package = importlib.import_module(self._package)
        for module in pkgutil.iter_modules(package.__path__):
            if module.name.startswith("_") or module.name == "base":
                continue
            name = f"{self._package}.{module.name}"
            try:
                importlib.import_module(name)
            except Exception as exc:  # one broken leaf must not hide the others
                self._broken[name] = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "could not import %s, its %s is unavailable: %s", name, self.kind, exc
                )

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name``; :class:`UnknownNameError` lists valid ones."""
        self._discover()
        try:
            return self._entries[name]
        except KeyError:
            error = UnknownNameError(self.kind, name, self._entries)
            if self._broken:
                failed = "; ".join(f"{m} ({reason})" for m, reason in self._broken.items())
                error.args = (f"{error.args[0]} Modules that failed to import: {failed}.",)
            raise error from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """Build the component registered under ``name`` with the given arguments."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._discover()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
