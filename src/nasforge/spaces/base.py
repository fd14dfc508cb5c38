"""The :class:`SearchSpace` contract that every space implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, UnknownNameError, UnsupportedOperationError

__all__ = ["Decision", "SearchSpace"]


@dataclass(frozen=True)
class Decision:
    """One entry of ``Architecture.choices``: its name and its options (choice ``i`` is
    ``options[i]``)."""

    name: str
    options: tuple[str | int | float | bool, ...]


class SearchSpace(ABC):
    """What can be built: a set of architectures with ways to sample, vary and encode them.

    Subclasses implement :meth:`sample`, :meth:`parse` and :meth:`from_choices`; the other
    methods have defaults built on those or raise :class:`UnsupportedOperationError` naming the
    missing capability. A strategy states what it needs in ``Strategy.requires`` and the study
    checks it with :meth:`supports` before the search starts.

    Attributes:
        name: The registry name of the space.
        encodings: Names accepted by :meth:`encode`.
    """

    name: str = ""
    encodings: tuple[str, ...] = ()

    # -- required ---------------------------------------------------------------------------
    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A random architecture drawn with ``rng``."""

    @abstractmethod
    def parse(self, text: str) -> Architecture:
        """The architecture written as ``text``; :class:`InvalidArchitectureError` if malformed."""

    @abstractmethod
    def from_choices(self, choices: Sequence[int]) -> Architecture:
        """The architecture making ``choices``; :class:`InvalidArchitectureError` if invalid."""

    # -- optional capabilities ---------------------------------------------------------------
    def mutate(
        self, arch: Architecture, rng: np.random.Generator, *, rate: float | None = None
    ) -> Architecture:
        """A random variation of ``arch``.

        With ``rate=None``, a random neighbour (one elementary move, see :meth:`neighbours`).
        With a ``rate`` in [0, 1], every decision is re-drawn uniformly with probability
        ``rate`` (the mutation of SPOS's evolutionary search), which may return ``arch``.
        """
        if rate is not None:
            raise UnsupportedOperationError(
                f"Search space {self.name!r} does not define a per-decision mutation "
                "(mutate(rate=...)); define decisions() or override mutate()."
            )
        options = self.neighbours(arch)
        return options[int(rng.integers(len(options)))]

    def crossover(
        self, first: Architecture, second: Architecture, rng: np.random.Generator
    ) -> Architecture:
        """A child taking each unit of inheritance (a decision, or a node of a cell) from
        ``first`` or ``second`` with equal probability (uniform crossover)."""
        raise UnsupportedOperationError(
            f"Search space {self.name!r} does not define crossover(); define decisions() or "
            "override crossover()."
        )

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every architecture one elementary move away from ``arch``, in a fixed order."""
        raise UnsupportedOperationError(f"Search space {self.name!r} does not define neighbours().")

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        """A numeric vector describing ``arch`` (for predictors); ``kind`` in :attr:`encodings`."""
        raise UnsupportedOperationError(f"Search space {self.name!r} does not define encodings.")

    def decisions(self) -> tuple[Decision, ...]:
        """The decisions of a product space: entry ``i`` of ``choices`` takes the values
        ``0..len(decisions()[i].options) - 1`` and every combination is an architecture.

        Strategies that learn one distribution per decision (``reinforce``, ``manas``, the
        Optuna samplers) need it. Spaces with constraints between decisions (e.g. DARTS,
        where a node's two inputs differ) do not define it.
        """
        raise UnsupportedOperationError(
            f"Search space {self.name!r} is not a product of independent decisions "
            "(decisions()); strategies that sample each decision on its own cannot search it."
        )

    def canonical(self, arch: Architecture) -> Architecture:
        """One representative of the architectures that compute the same function as ``arch``.

        The default treats every architecture as its own class.
        """
        return arch

    def build(self, arch: Architecture, **kwargs: Any) -> Any:
        """The PyTorch module of ``arch`` (``torch.nn.Module``)."""
        raise UnsupportedOperationError(
            f"Search space {self.name!r} has no model builder (build()); it can be searched on "
            "a tabular benchmark but not trained."
        )

    # -- model-side knowledge (optional capabilities) -----------------------------------------
    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        """Named keyword sets of :meth:`build` (besides ``num_classes``): ``"paper"`` (the
        network the space's paper trains), ``"search"`` (the search-time network of the
        one-shot methods, also the default of :meth:`supernet`) and ``"reduced"`` (a setting
        a CPU trains in minutes, which may also name ``resolution`` and ``data_fraction``).
        Every key of ``"paper"`` is a setting a user may change."""
        raise UnsupportedOperationError(
            f"Search space {self.name!r} has no model presets (presets()); it cannot be "
            "trained or searched with a supernet."
        )

    def recipe(self) -> Any:
        """The default training recipe of the space's networks
        (:class:`nasforge.train.Recipe`); the default is NAS-Bench-201's."""
        from nasforge.train.recipe import Recipe

        return Recipe()

    def supernet(self, **settings: Any) -> Any:
        """The weight-sharing network one-shot methods train
        (:class:`nasforge.ops.supernet.Supernet`), built with ``settings`` (keys of
        :meth:`presets` plus ``num_classes`` and ``partial_channels``)."""
        raise UnsupportedOperationError(
            f"Search space {self.name!r} has no supernet (supernet()); one-shot methods "
            "need one. Search it with a black-box strategy (nasforge list strategies)."
        )

    @property
    def size(self) -> int | None:
        """The number of architectures, or ``None`` when the space is not finite."""
        return None

    def __iter__(self) -> Iterator[Architecture]:
        raise UnsupportedOperationError(f"Search space {self.name!r} cannot be enumerated.")

    # -- conveniences ------------------------------------------------------------------------
    def supports(self, capability: str) -> bool:
        """Whether the space overrides ``capability`` (``"mutate"``, ``"neighbours"``...)."""
        if capability in ("sample", "parse", "from_choices"):
            return True
        if capability == "mutate":
            return self.supports("neighbours") or type(self).mutate is not SearchSpace.mutate
        if capability == "size":
            return self.size is not None
        if capability == "iter":
            return type(self).__iter__ is not SearchSpace.__iter__
        own = getattr(type(self), capability, None)
        base = getattr(SearchSpace, capability, None)
        return own is not None and own is not base

    def check(self, arch: Architecture) -> Architecture:
        """Return ``arch`` if it belongs to this space, else raise a clear error."""
        if not isinstance(arch, Architecture):
            raise InvalidArchitectureError(
                f"Expected an Architecture of space {self.name!r}, got {type(arch).__name__}; "
                f"build one with nasforge.spaces.create({self.name!r}).parse(text)."
            )
        if arch.space != self.name:
            raise InvalidArchitectureError(
                f"Architecture {arch.text!r} belongs to space {arch.space!r}, not {self.name!r}."
            )
        return arch

    def check_encoding(self, kind: str) -> None:
        if kind not in self.encodings:
            raise UnknownNameError(f"encoding of space {self.name!r}", kind, self.encodings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
