"""Functional forms for the strategies that take architectures up to function (a ``canonical``
parameter: ``pnas``, ``weaknas``, ``bananas``).

A strategy's ``canonical`` setting says whose knowledge of "same function" it uses:

* ``None`` (the default) follows the study: the strategy uses ``Strategy.functional_key``,
  which a deduplicating study sets to ``space.functional_key`` before the first ask, and
  takes every architecture as its own class otherwise;
* ``True`` uses ``space.functional_key`` even outside a deduplicating study (refused on a
  space that has neither a canonical form nor a builder to hash);
* ``False`` never takes architectures up to function.

The key is read on first use (the first ask or tell), since the study sets it after the
strategy is built. Where the key is an :class:`~nasforge.architecture.Architecture` (a
space with a canonical form) it is the class's representative; where it is anything else
(the string of a generic functional hash) the first architecture seen with that key is.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError

if TYPE_CHECKING:
    from nasforge.strategies.base import Strategy

__all__ = ["FunctionalForms"]


class FunctionalForms:
    """The representative of each architecture's functional class, per ``canonical``.

    Args:
        strategy: The strategy (its space, and its ``functional_key`` set by a study).
        canonical: ``None`` follows the study, ``True`` always, ``False`` never.

    Raises:
        InvalidConfigError: ``canonical`` is not ``None``, ``True`` or ``False``.
        UnsupportedOperationError: ``canonical=True`` on a space with neither a canonical
            form nor a model builder (``space.dedupe_method`` is ``None``).

    Example:
        >>> from nasforge import spaces
        >>> from nasforge.strategies.random import RandomSearch
        >>> strategy = RandomSearch(spaces.create("nb201"), seed=0)
        >>> dead = strategy.space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
        >>> FunctionalForms(strategy, True).form(dead) == strategy.space.parse(
        ...     "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
        True
        >>> FunctionalForms(strategy, None).form(dead) == dead  # no study deduplicates
        True
    """

    def __init__(self, strategy: Strategy, canonical: bool | None) -> None:
        if canonical is not None and not isinstance(canonical, bool):
            raise InvalidConfigError(
                f"canonical must be None (follow the study's deduplication), True or False, "
                f"got {canonical!r}."
            )
        space = strategy.space
        if canonical:
            space.check_dedupe(
                f"Strategy {type(strategy).__name__} with canonical=True",
                "pass canonical=False or leave canonical=None (follow the study)",
            )
        self.canonical = canonical
        self._strategy = strategy
        self._key: Callable[[Architecture], Hashable] | None = None
        self._resolved = False
        self._first: dict[Hashable, Architecture] = {}

    @property
    def key(self) -> Callable[[Architecture], Hashable] | None:
        """The functional key in use (``None``: every architecture is its own class); fixed
        on first use."""
        if not self._resolved:
            self._resolved = True
            if self.canonical is None:
                self._key = self._strategy.functional_key
            elif self.canonical:
                self._key = self._strategy.space.functional_key
        return self._key

    @property
    def active(self) -> bool:
        """Whether architectures are taken up to function."""
        return self.key is not None

    def form(self, arch: Architecture) -> Architecture:
        """The representative of ``arch``'s class (``arch`` itself when not active)."""
        key = self.key
        if key is None:
            return arch
        value = key(arch)
        if isinstance(value, Architecture):
            return value
        return self._first.setdefault(value, arch)

    def adopt(self, first: dict[Hashable, Architecture]) -> None:
        """Take ``first`` (key -> representative) as already seen, e.g. from a cached pool."""
        for value, arch in first.items():
            self._first.setdefault(value, arch)
