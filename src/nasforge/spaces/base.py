"""The :class:`SearchSpace` contract that every space implements."""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    UnknownNameError,
    UnsupportedOperationError,
    abbreviate,
)

if TYPE_CHECKING:
    from nasforge.spaces.graph import ArchitectureGraph

__all__ = ["DISTINCT_PATIENCE", "UNSEEN_TRIES", "Decision", "SearchSpace", "ValuedSpace"]

#: Draws of :meth:`SearchSpace.sample` tried for one architecture not seen yet before a
#: repeat is accepted (:meth:`SearchSpace.sample_unseen`).
UNSEEN_TRIES = 1000
#: Draws per wanted architecture before :meth:`SearchSpace.sample_distinct` gives up.
DISTINCT_PATIENCE = 20


#: Keys of a preset that describe the data and the training, not the network (left out of
#: ``build``): the image side, the share of the training images, the batch size and the
#: epochs a preset trains for (a CPU preset trains for few).
DATA_SETTINGS = frozenset({"resolution", "data_fraction", "batch_size", "epochs"})


@dataclass(frozen=True)
class Decision:
    """One entry of ``Architecture.choices``: its name and its options (choice ``i`` is
    ``options[i]``)."""

    name: str
    options: tuple[str | int | float | bool, ...]


class SearchSpace(ABC):
    """What can be built: a set of architectures with ways to sample, vary and encode them.

    Subclasses implement :meth:`parse` and :meth:`from_choices`, and either :meth:`sample` or
    :meth:`decisions`. A space that declares its decisions (a product of independent
    choices) gets the rest for free: uniform sampling, mutation (one decision, or each one
    with a probability), uniform crossover, neighbours, a one-hot encoding, its size and
    its enumeration; a space overrides whichever it does otherwise. Other methods raise
    :class:`UnsupportedOperationError` naming the missing capability. A strategy states what
    it needs in ``Strategy.requires`` and the study checks it with :meth:`supports` before
    the search starts.

    Attributes:
        name: The registry name of the space.
        encodings: Names accepted by :meth:`encode` (by default ``("onehot",)`` for a space
            with decisions, else none).

    Example:
        >>> from nasforge.architecture import Architecture
        >>> class Widths(SearchSpace):
        ...     name = "widths"
        ...     def decisions(self):
        ...         return (Decision("w1", (16, 32, 64)), Decision("w2", (16, 32, 64)))
        ...     def from_choices(self, choices):
        ...         choices = self.check_choices(choices)
        ...         return Architecture(self.name, choices, "-".join(map(str, choices)))
        ...     def parse(self, text):
        ...         return self.from_choices([int(c) for c in text.split("-")])
        >>> space = Widths()
        >>> space.size, len(space.neighbours(space.parse("0-2"))), space.encodings
        (9, 4, ('onehot',))
        >>> space.encode(space.parse("0-2")).tolist()
        [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    """

    name: str = ""

    @property
    def encodings(self) -> tuple[str, ...]:
        """Names accepted by :meth:`encode`: ``("onehot",)`` for a space with decisions."""
        return ("onehot",) if self.supports("decisions") else ()

    # -- required ---------------------------------------------------------------------------
    @abstractmethod
    def parse(self, text: str) -> Architecture:
        """The architecture written as ``text``; :class:`InvalidArchitectureError` if malformed."""

    @abstractmethod
    def from_choices(self, choices: Sequence[int]) -> Architecture:
        """The architecture making ``choices``; :class:`InvalidArchitectureError` if invalid.

        A space with decisions can validate ``choices`` with :meth:`check_choices`."""

    # -- sampling and variation (defaults from decisions()) ----------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A random architecture drawn with ``rng``.

        The default draws every decision uniformly and independently, as one call
        ``rng.integers(counts)`` with the array of the decisions' option counts (for
        decisions of equal size ``n``, the same values as ``rng.integers(n, size=k)``).
        """
        counts = self._counts("sample()")
        return self.from_choices(rng.integers(counts).tolist())

    def mutate(
        self, arch: Architecture, rng: np.random.Generator, *, rate: float | None = None
    ) -> Architecture:
        """A random variation of ``arch``.

        With ``rate=None``, a random neighbour (one elementary move): a member of
        :meth:`neighbours` drawn uniformly with one ``rng.integers(len(neighbours))``;
        for a space with decisions and the default neighbours, one decision changed to
        another of its options. With a ``rate`` in [0, 1], every decision is re-drawn
        uniformly with probability ``rate`` (the mutation of SPOS's evolutionary search),
        which may return ``arch``: for each decision in order, ``rng.random() < rate``
        decides, then ``rng.integers(len(options))`` draws the new option.

        Raises:
            InvalidConfigError: ``rate`` outside [0, 1].
            UnsupportedOperationError: The space has neither decisions nor neighbours (or,
                with ``rate``, no decisions), or ``arch`` has no neighbour.
        """
        if rate is not None:
            if not 0.0 <= rate <= 1.0:
                raise InvalidConfigError(f"mutate(rate=...) takes a probability, got {rate!r}.")
            counts = self._counts("a per-decision mutation (mutate(rate=...))")
            choices = list(self.check(arch).choices)
            for i, n in enumerate(counts):
                if rng.random() < rate:
                    choices[i] = int(rng.integers(n))
            return self.from_choices(choices)
        if type(self).neighbours is not SearchSpace.neighbours or not self.supports("decisions"):
            options = self.neighbours(arch)
            if not options:
                raise UnsupportedOperationError(
                    f"Architecture {arch.text!r} of space {self.name!r} has no neighbour to "
                    "mutate into."
                )
            return options[int(rng.integers(len(options)))]
        counts = self._counts("mutate()")
        choices = list(self.check(arch).choices)
        moves = int(np.sum(counts - 1))
        if moves == 0:
            raise UnsupportedOperationError(
                f"Space {self.name!r} holds one architecture; there is nothing to mutate into."
            )
        # the same neighbour as neighbours()[k]: decision by decision, options in order
        k = int(rng.integers(moves))
        for i, n in enumerate(counts):
            if k < n - 1:
                choices[i] = k if k < choices[i] else k + 1
                return self.from_choices(choices)
            k -= int(n) - 1
        raise AssertionError("unreachable: k < moves")

    def crossover(
        self, first: Architecture, second: Architecture, rng: np.random.Generator
    ) -> Architecture:
        """A child taking each unit of inheritance (a decision, or a node of a cell) from
        ``first`` or ``second`` with equal probability (uniform crossover).

        The default, for a space with decisions, draws ``rng.random(len(decisions))``
        (one ``rng.random()`` per decision, in order); a draw below 0.5 takes the decision
        from ``first``.
        """
        counts = self._counts("crossover()")
        a, b = self.check(first).choices, self.check(second).choices
        take = rng.random(len(counts)) < 0.5
        return self.from_choices([x if t else y for x, y, t in zip(a, b, take, strict=True)])

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every architecture one elementary move away from ``arch``, in a fixed order.

        The default, for a space with decisions: every change of one decision, decision by
        decision, each decision's other options in order.
        """
        counts = self._counts("neighbours()")
        choices = self.check(arch).choices
        out = []
        for i, n in enumerate(counts):
            for option in range(int(n)):
                if option != choices[i]:
                    out.append(self.from_choices((*choices[:i], option, *choices[i + 1 :])))
        return out

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        """A numeric vector describing ``arch`` (for predictors); ``kind`` in :attr:`encodings`.

        The default, for a space with decisions, is ``"onehot"``: one block per decision,
        one entry per option, concatenated in the order of :meth:`decisions`.
        """
        if not self.supports("decisions"):
            raise UnsupportedOperationError(
                f"Search space {self.name!r} does not define encodings (encode()); define "
                "decisions() for a one-hot encoding, or override encode()."
            )
        self.check_encoding(kind)
        if kind != "onehot":
            raise UnsupportedOperationError(
                f"Search space {self.name!r} lists encoding {kind!r} but does not implement "
                "it; override encode()."
            )
        counts = self._counts("encode()")
        choices = np.asarray(self.check(arch).choices, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        vector = np.zeros(int(counts.sum()))
        vector[offsets + choices] = 1.0
        return vector

    def decisions(self) -> tuple[Decision, ...]:
        """The decisions of a product space: entry ``i`` of ``choices`` takes the values
        ``0..len(decisions()[i].options) - 1`` and every combination is an architecture.

        Declaring them gives the space sampling, mutation, crossover, neighbours, a one-hot
        encoding, its size and its enumeration (see the class docstring). Strategies that
        learn one distribution per decision (``reinforce``, ``manas``, the Optuna samplers)
        need it. Spaces with constraints between decisions (e.g. DARTS, where a node's two
        inputs differ) do not define it.
        """
        raise UnsupportedOperationError(
            f"Search space {self.name!r} is not a product of independent decisions "
            "(decisions()); strategies that sample each decision on its own cannot search it."
        )

    def check_choices(self, choices: Sequence[int]) -> tuple[int, ...]:
        """``choices`` as a tuple of ints, checked against :meth:`decisions` (one option
        index per decision); for :meth:`from_choices` to call.

        Raises:
            InvalidArchitectureError: Not integers, the wrong number, or an index out of
                range; the message lists the decisions and their options.
        """
        decisions = self.decisions()
        try:
            values = tuple(int(c) for c in choices)
            exact = all(int(c) == c for c in choices)
        except (TypeError, ValueError):
            values, exact = (), False
        bad = [
            f"{d.name}={v} (0..{len(d.options) - 1})"
            for d, v in zip(decisions, values, strict=False)
            if not 0 <= v < len(d.options)
        ]
        if not exact or len(values) != len(decisions) or bad:
            listed = "; ".join(
                f"{d.name}: {', '.join(f'{i}={o}' for i, o in enumerate(d.options))}"
                for d in decisions
            )
            problem = f" ({', '.join(bad)} out of range)" if bad and exact else ""
            raise InvalidArchitectureError(
                f"An architecture of space {self.name!r} is {len(decisions)} option indices, "
                f"one per decision, got {choices!r}{problem}. Decisions: {listed}."
            )
        return values

    def _counts(self, what: str) -> np.ndarray:
        """The option count of each decision; a clear error naming ``what`` without them."""
        if not self.supports("decisions"):
            raise UnsupportedOperationError(
                f"Search space {self.name!r} does not define {what}; declare its decisions "
                f"(decisions()) to get it by default, or override it."
            )
        return np.array([len(d.options) for d in self.decisions()], dtype=np.int64)

    # -- drawing architectures not seen yet ---------------------------------------------------
    def sample_unseen(
        self,
        rng: np.random.Generator,
        seen: Collection[Hashable],
        *,
        key: Callable[[Architecture], Hashable] | None = None,
    ) -> Architecture:
        """A random architecture whose ``key`` (the architecture itself by default) is not
        in ``seen``; a repeat when none is found.

        Draws :meth:`sample` until one is unseen, at most :data:`UNSEEN_TRIES` times in all,
        and returns the last draw. When ``seen`` holds at least :attr:`size` keys the space
        is used up and the first draw is returned.
        """
        size = self.size
        exhausted = size is not None and len(seen) >= size
        arch = self.sample(rng)
        draws = 1
        while not exhausted and (arch if key is None else key(arch)) in seen:
            if draws >= UNSEEN_TRIES:
                break
            arch = self.sample(rng)
            draws += 1
        return arch

    def sample_distinct(
        self,
        rng: np.random.Generator,
        n: int,
        *,
        exclude: Collection[Hashable] = (),
        key: Callable[[Architecture], Hashable] | None = None,
        patience: int = DISTINCT_PATIENCE,
    ) -> list[Architecture]:
        """Up to ``n`` random architectures with distinct keys (the architectures themselves
        by default), none in ``exclude``, in the order drawn.

        Draws :meth:`sample` until ``n`` are found or ``patience * n`` draws are spent;
        fewer than ``n`` come back only when the space runs out of new architectures.
        """
        seen = set(exclude)
        out: list[Architecture] = []
        for _ in range(patience * n):
            if len(out) >= n:
                break
            arch = self.sample(rng)
            mark = arch if key is None else key(arch)
            if mark not in seen:
                seen.add(mark)
                out.append(arch)
        return out

    def canonical(self, arch: Architecture) -> Architecture:
        """One representative of the architectures that compute the same function as ``arch``.

        The default treats every architecture as its own class.
        """
        return arch

    @property
    def dedupe_method(self) -> str | None:
        """How :meth:`functional_key` knows which architectures compute the same function:
        ``"canonical"`` (the space overrides :meth:`canonical`), ``"hash"`` (the space builds
        networks, which are hashed: :mod:`nasforge.spaces._functional_hash`) or ``None``
        (neither; deduplication cannot be asked for)."""
        if type(self).canonical is not SearchSpace.canonical:
            return "canonical"
        if type(self).build is not SearchSpace.build:
            return "hash"
        return None

    def functional_key(self, arch: Architecture) -> Hashable:
        """The functional identity of ``arch``: equal for two architectures that compute the
        same function (what deduplicating studies and strategies compare).

        The space's :meth:`canonical` representative where it has a canonical form (so the
        key is itself an :class:`~nasforge.architecture.Architecture` of the space), else a
        hash of the network :meth:`build` makes (a string).

        Raises:
            UnsupportedOperationError: The space has neither a canonical form nor a builder.
        """
        if self.dedupe_method == "canonical":
            return self.canonical(arch)
        self.check_dedupe(
            "Deduplication",
            "search it without deduplication (dedupe=False, --no-dedupe), or give the space a "
            "canonical() or a build()",
        )
        from nasforge.spaces._functional_hash import architecture_hash  # the "hash" method

        return architecture_hash(self, self.check(arch))

    def check_dedupe(self, asker: str, fix: str) -> None:
        """Refuse ``asker`` (what asked for functional keys) on a space that cannot give them
        (:attr:`dedupe_method` is ``None``), saying ``fix``; return quietly otherwise.

        Raises:
            UnsupportedOperationError: The space has neither a canonical form nor a builder.
        """
        if self.dedupe_method is None:
            raise UnsupportedOperationError(
                f"{asker} needs to know which architectures compute the same function, and "
                f"search space {self.name!r} has neither a canonical form (canonical()) nor a "
                f"model builder (build()) whose networks could be hashed; {fix}."
            )

    def build(self, arch: Architecture, **kwargs: Any) -> Any:
        """The PyTorch module of ``arch`` (``torch.nn.Module``)."""
        raise UnsupportedOperationError(
            f"Search space {self.name!r} has no model builder (build()); it can be searched on "
            "a tabular benchmark but not trained."
        )

    # -- model-side knowledge (optional capabilities) -----------------------------------------
    #: The keys of :meth:`presets` that scale the network's width and depth (the
    #: ``channels`` and ``cells`` of one-shot settings and reduced-cost fidelities), or
    #: ``None`` when the space has no such settings; the depth key is ``None`` in a space
    #: whose depth is fixed (or decided per architecture).
    scale_keys: tuple[str, str | None] | None = None

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

    def build_preset(self, arch: Architecture, preset: str = "paper", **overrides: Any) -> Any:
        """The network of ``arch`` built with preset ``preset`` of :meth:`presets` (its
        data settings, ``resolution``, ``data_fraction`` and ``batch_size``, left out),
        ``overrides`` applied (``num_classes=100``...).

        Raises:
            UnknownNameError: No preset of that name (the space's presets are listed).
        """
        presets = self.presets()
        if preset not in presets:
            raise UnknownNameError(f"preset of space {self.name!r}", preset, presets)
        settings = {k: v for k, v in presets[preset].items() if k not in DATA_SETTINGS}
        return self.build(arch, **{**settings, **overrides})

    def recipe(self) -> Any:
        """The default training recipe of the space's networks
        (:class:`nasforge.train.Recipe`); the default is NAS-Bench-201's."""
        from nasforge.train.recipe import Recipe

        return Recipe()

    def recipe_of(self, arch: Architecture, base: Any = None) -> Any:
        """The recipe ``arch`` is trained with (:class:`nasforge.train.Recipe`): ``base``
        (the evaluator's recipe; ``None``: :meth:`recipe`) for a space whose architectures
        are networks only. A space whose architectures also decide how they are trained
        (``"<space>+recipe"``, :mod:`nasforge.spaces.recipe`) applies its decisions to it."""
        self.check(arch)
        return self.recipe() if base is None else base

    def supernet(self, **settings: Any) -> Any:
        """The weight-sharing network one-shot methods train
        (:class:`nasforge.ops.supernet.Supernet`), built with ``settings`` (keys of
        :meth:`presets` plus ``num_classes`` and ``partial_channels``)."""
        raise UnsupportedOperationError(
            f"Search space {self.name!r} has no supernet (supernet()); one-shot methods "
            "need one. Search it with a black-box strategy (nasforge list strategies)."
        )

    def graph(self, arch: Architecture) -> ArchitectureGraph:
        """``arch`` as a DAG of operations (:class:`~nasforge.spaces.graph.ArchitectureGraph`),
        for graph generators (``diffusion-nag``); the default has none."""
        from nasforge.spaces.graph import graph_refusal

        raise UnsupportedOperationError(graph_refusal(self))

    def from_graph(self, graph: ArchitectureGraph) -> Architecture:
        """The architecture whose :meth:`graph` is ``graph`` (:class:`InvalidArchitectureError`
        for a graph that is none of the space's); the default has none."""
        from nasforge.spaces.graph import graph_refusal

        raise UnsupportedOperationError(graph_refusal(self))

    @property
    def size(self) -> int | None:
        """The number of architectures, or ``None`` when it is not known (the default: the
        product of the option counts of a space with decisions)."""
        if not self.supports("decisions"):
            return None
        return math.prod(len(d.options) for d in self.decisions())

    def __iter__(self) -> Iterator[Architecture]:
        """Every architecture once (the default, for a space with decisions: the choices in
        lexicographic order)."""
        if not self.supports("decisions"):
            raise UnsupportedOperationError(f"Search space {self.name!r} cannot be enumerated.")
        ranges = [range(len(d.options)) for d in self.decisions()]
        return (self.from_choices(choices) for choices in itertools.product(*ranges))

    # -- conveniences ------------------------------------------------------------------------
    def supports(self, capability: str) -> bool:
        """Whether the space provides ``capability`` (``"mutate"``, ``"neighbours"``...):
        overrides it, or gets it from its decisions (``sample``, ``mutate``, ``crossover``,
        ``neighbours``, ``encode``, ``size``, ``iter``)."""
        if capability in ("parse", "from_choices"):
            return True
        if capability == "size":
            return self.size is not None
        own = getattr(type(self), "__iter__" if capability == "iter" else capability, None)
        base = getattr(SearchSpace, "__iter__" if capability == "iter" else capability, None)
        overridden = own is not None and own is not base
        if overridden or capability == "decisions":
            return overridden
        if capability in _FROM_DECISIONS and self.supports("decisions"):
            return capability != "encode" or "onehot" in self.encodings
        if capability == "mutate":
            return self.supports("neighbours")
        return False

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

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """How to draw ``arch``: plain JSON data (:mod:`nasforge.spaces._drawing`), a graph per
        cell (``{"kind": "cells", ...}``: nodes, and edges with their operations) or a strip
        of blocks with their choices (``{"kind": "strip", ...}``), which the dashboard draws.

        The default, for a space with decisions, is a strip of one block per layer: decisions
        whose names share a prefix (``stem_width``, ``stem_act``) make one block, the others
        one each; without decisions, one block holding the text. Cell spaces and macro
        networks override it with their cells and layers.

        Raises:
            InvalidArchitectureError: ``arch`` is not of this space.
        """
        from nasforge.spaces import _drawing

        if not self.supports("decisions"):
            return _drawing.text_strip(self.check(arch).text)
        return _drawing.decision_strip(list(self.values(arch).items()))

    def values(self, arch: Architecture) -> dict[str, Any]:
        """The value of every decision of ``arch``, by decision name (a space with
        :meth:`decisions`)."""
        choices = self.check(arch).choices
        return {d.name: d.options[c] for d, c in zip(self.decisions(), choices, strict=True)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: The capabilities a space gets from :meth:`SearchSpace.decisions`.
_FROM_DECISIONS = frozenset(
    ("sample", "mutate", "crossover", "neighbours", "encode", "size", "iter")
)


class ValuedSpace(SearchSpace):
    """A space of independent decisions whose architectures are one value per decision,
    written as text by :meth:`_text` and read by :meth:`_parse_values` (the ``ofa``, ``vit``
    and ``llm`` spaces): it builds an architecture from its values (refusing a value that is
    not an option), from choices or from text, and gives its extremes (every decision at its
    first or last option)."""

    @abstractmethod
    def _text(self, values: dict[str, Any]) -> str:
        """The text form of the architecture with these decision values."""

    @abstractmethod
    def _parse_values(self, text: str) -> dict[str, Any]:
        """The decision values written in ``text``; :class:`InvalidArchitectureError` (a
        sentence starting with the part that is wrong) if malformed."""

    def _example(self) -> str:
        """An architecture text shown in parse errors (the largest network: every decision at
        its last option)."""
        return str(self._extreme(True))

    def _read_text(self, text: str) -> Architecture:
        """The architecture written as ``text``; an error names the space, the text and
        :meth:`_example`."""
        try:
            return self._from_values(self._parse_values(text))
        except InvalidArchitectureError as error:
            message = str(error)
            raise InvalidArchitectureError(
                f"In {self.name} architecture {abbreviate(text, 80)}: "
                f"{message[:1].lower()}{message[1:]} Example: {self._example()!r}."
            ) from None

    def _from_values(self, values: dict[str, Any]) -> Architecture:
        choices = []
        for decision in self.decisions():
            value = values[decision.name]
            if value not in decision.options:
                raise InvalidArchitectureError(
                    f"{decision.name} = {value!r} is not an option; choose from "
                    f"{', '.join(map(str, decision.options))}."
                )
            choices.append(decision.options.index(value))
        return self.from_choices(choices)

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        checked = self.check_choices(choices)
        values = {d.name: d.options[c] for d, c in zip(self.decisions(), checked, strict=True)}
        return Architecture(self.name, checked, self._text(values))

    def _extreme(self, last: bool) -> Architecture:
        return self.from_choices([len(d.options) - 1 if last else 0 for d in self.decisions()])
