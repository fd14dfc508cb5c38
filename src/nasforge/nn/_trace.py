"""The context the choice modules of :mod:`nasforge.nn` are built in.

A model is built in one of three ways:

* inside :func:`fixed` (``values`` maps every label to its value): the constructors return
  plain modules and values, so the model is the hand-written network of those choices;
* while a :class:`Trace` is active (what :class:`nasforge.spaces.module.ModuleSpace` does):
  the constructors build the weight-sharing form and record one :class:`Site` per label, in
  creation order;
* anywhere else: the weight-sharing form, each choice its own decision (no trace numbers the
  labels or shares them; a forward then needs each site set by hand).

Labels: a choice without ``label`` is numbered by kind in creation order (``layerchoice_0``,
``valuechoice_1``...); inside block ``i`` of a :class:`~nasforge.nn.Repeat` labelled ``r``
the automatic label is scoped, ``r.i.layerchoice_0``, so that the labels after a repeat do
not depend on how many blocks a fixed model builds. One label used twice is one decision
when its options are equal (a shared choice), else an :class:`InvalidConfigError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from nasforge.errors import InvalidArchitectureError, InvalidConfigError

__all__ = ["Option", "Site", "Trace", "current", "fixed", "option_text"]

Option = str | int | float | bool

_FORBIDDEN = frozenset(",= \t\n")


class Site:
    """One decision of a weight-sharing model: its label, its options and what the forward
    that runs now computes (set by the supernet before each forward, cleared after it).

    Attributes:
        label: The decision's name.
        options: Its options (candidate names, values, depths...).
        kind: What made it (``"layer"``, ``"value"``, ``"input"``, ``"repeat"``).
        weights: Dense (DARTS) or straight-through (GDAS) weights over the options, or ``None``.
        index: The option of a one-path forward (SPOS, GDAS), or ``None``.
        edge_weight: A scalar multiplying the decision's output (PC-DARTS), or ``None``.
    """

    def __init__(self, label: str, options: tuple[Option, ...], kind: str) -> None:
        self.label = label
        self.options = options
        self.kind = kind
        self.weights: Any = None
        self.index: int | None = None
        self.edge_weight: Any = None

    def set(self, weights: Any = None, index: int | None = None, edge_weight: Any = None) -> None:
        self.weights, self.index, self.edge_weight = weights, index, edge_weight

    def clear(self) -> None:
        self.set()

    @property
    def one_path(self) -> bool:
        """Whether the forward computes one option (``index`` set); else the dense mixture.

        Raises:
            InvalidConfigError: Neither weights nor an index is set.
        """
        if self.index is not None:
            return True
        if self.weights is None:
            raise InvalidConfigError(
                f"Choice {self.label!r} has no option set for this forward. Build the network "
                "of one architecture with nasforge.nn.fixed({...}) (or space.build(arch)), or "
                "run the weight-sharing model through its supernet "
                "(ModuleSpace.supernet()(x, weights=..., index=...))."
            )
        return False

    def gate(self, out: Any) -> Any:
        """A one-path output with the other options' weights added (GDAS's
        ``w_i out + sum_{o != i} w_o``); ``out`` itself without weights (SPOS)."""
        if self.weights is None or self.index is None:
            return out
        chosen = self.weights[self.index]
        return out * chosen + (self.weights.sum() - chosen)

    def __repr__(self) -> str:
        return f"Site({self.label!r}, {self.options!r})"


def option_text(value: Any) -> str:
    """An option as it is written in an architecture's text."""
    return str(value)


def check_label(label: Any, what: str) -> str:
    if not isinstance(label, str) or not label or _FORBIDDEN.intersection(label):
        raise InvalidConfigError(
            f"The label of a {what} must be a non-empty string without spaces, ',' or '=' "
            f"(it names the decision in the architecture's text 'label=value,...'), got "
            f"{label!r}."
        )
    return label


def check_options(options: Any, what: str) -> tuple[Option, ...]:
    """``options`` as a tuple of distinct plain values whose texts differ."""
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        raise InvalidConfigError(
            f"A {what} takes a list of options, got {type(options).__name__} {options!r}."
        )
    out: list[Option] = []
    for value in options:
        if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
            value = value.item()
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidConfigError(
                f"The options of a {what} are numbers, strings or booleans, got "
                f"{type(value).__name__} {value!r}."
            )
        if isinstance(value, str) and _FORBIDDEN.intersection(value):
            raise InvalidConfigError(
                f"Option {value!r} of a {what} holds a space, ',' or '=', which the "
                "architecture's text 'label=value,...' cannot hold; rename it."
            )
        out.append(value)
    if not out:
        raise InvalidConfigError(f"A {what} needs at least one option, got none.")
    texts = [option_text(v) for v in out]
    if len(set(texts)) != len(texts):
        raise InvalidConfigError(f"The options of a {what} must differ, got {out!r}.")
    return tuple(out)


class Trace:
    """What one build of a model records: its sites (tracing) or the values it was given
    (fixed), the labels used, and the automatic numbering of labels."""

    def __init__(self, values: Mapping[str, Any] | None = None, strict: bool = True) -> None:
        self.values = None if values is None else dict(values)
        self.strict = strict
        self.sites: dict[str, Site] = {}
        self.requested: dict[str, tuple[Option, ...]] = {}
        self.skipped: list[str] = []  # label prefixes of blocks a fixed Repeat leaves out
        self._scopes: list[tuple[str, dict[str, int]]] = [("", {})]

    @property
    def is_fixed(self) -> bool:
        return self.values is not None

    # -- labels -----------------------------------------------------------------------------
    def label(self, given: str | None, kind: str, what: str) -> str:
        """``given`` (checked), or the next automatic label of ``kind`` in the current scope."""
        if given is not None:
            return check_label(given, what)
        prefix, counters = self._scopes[-1]
        number = counters.get(kind, 0)
        counters[kind] = number + 1
        return f"{prefix}{kind}_{number}"

    @contextmanager
    def scope(self, prefix: str) -> Iterator[None]:
        """Number automatic labels under ``prefix`` (block ``i`` of repeat ``r``: ``r.i.``)."""
        self._scopes.append((prefix, {}))
        try:
            yield
        finally:
            self._scopes.pop()

    def _check_reuse(self, label: str, options: tuple[Option, ...], what: str) -> None:
        before = self.requested.get(label)
        if before is not None and [option_text(o) for o in before] != [
            option_text(o) for o in options
        ]:
            raise InvalidConfigError(
                f"Label {label!r} names two choices with different options: {list(before)} "
                f"and {list(options)} (the second a {what}). One label is one decision: give "
                "the second choice its own label, or the same options to share the decision."
            )
        self.requested[label] = options

    # -- the two modes --------------------------------------------------------------------------
    def site(self, label: str, options: tuple[Option, ...], kind: str, what: str) -> Site:
        """The site of ``label`` (created on first use; shared by a label used again)."""
        self._check_reuse(label, options, what)
        found = self.sites.get(label)
        if found is None:
            found = self.sites[label] = Site(label, options, kind)
        return found

    def value(self, label: str, options: tuple[Option, ...], what: str) -> Option:
        """The value ``label`` is fixed to (one of ``options``).

        Raises:
            InvalidConfigError: No value is given for ``label`` (the given labels are listed).
            InvalidArchitectureError: The value is not one of ``options``.
        """
        assert self.values is not None
        self._check_reuse(label, options, what)
        if label not in self.values:
            given = ", ".join(sorted(self.values)) or "none"
            raise InvalidConfigError(
                f"nasforge.nn.fixed() has no value for the {what} {label!r} (options "
                f"{list(options)}); given labels: {given}."
            )
        value = self.values[label]
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
            value = "+".join(str(v) for v in value)  # an InputChoice's chosen inputs
        for option in options:
            if option == value and type(option) is type(value):
                return option
        for option in options:  # the text form (a value read back from text or JSON)
            if option_text(option) == option_text(value):
                return option
        raise InvalidArchitectureError(
            f"{value!r} is not an option of the {what} {label!r}; choose from "
            f"{', '.join(map(option_text, options))}."
        )

    def finish(self) -> None:
        """Refuse values given for labels the fixed model never asked for (a typo)."""
        if self.values is None or not self.strict:
            return
        unused = [
            label
            for label in self.values
            if label not in self.requested
            and not any(label.startswith(prefix) for prefix in self.skipped)
        ]
        if unused:
            known = ", ".join(self.requested) or "none"
            raise InvalidConfigError(
                f"nasforge.nn.fixed() was given values for labels the model has no choice of: "
                f"{', '.join(unused)}. The model's labels: {known}."
            )


_LOCAL = threading.local()


def _stack() -> list[Trace]:
    stack: list[Trace] | None = getattr(_LOCAL, "stack", None)
    if stack is None:
        stack = _LOCAL.stack = []
    return stack


def current() -> Trace | None:
    """The trace of the build running now in this thread, or ``None``."""
    stack = _stack()
    return stack[-1] if stack else None


@contextmanager
def tracing() -> Iterator[Trace]:
    """Build the weight-sharing form and record its sites (``trace.sites``)."""
    trace = Trace()
    _stack().append(trace)
    try:
        yield trace
    finally:
        _stack().pop()


@contextmanager
def fixed(values: Mapping[str, Any], *, strict: bool = True) -> Iterator[Trace]:
    """Build the plain network of one architecture: inside, ``LayerChoice`` returns the
    chosen candidate, ``ValueChoice`` the chosen value, ``Repeat`` an ``nn.Sequential`` of the
    chosen depth, the value-aware layers plain ``torch.nn`` layers, ``InputChoice`` a small
    fixed selector; so the model built is the hand-written network of those choices.

    Built from the same seed, a model whose choices are value choices and repeats draws the
    same initial weights as the hand-written network (a repeat builds only its chosen
    blocks); the candidates of a ``LayerChoice`` are built by the caller before the choice
    is made, so all of them draw from the random generator (load a state dict to compare).

    Args:
        values: The value of every label (a candidate's key or index for a ``LayerChoice``,
            one of the options for a ``ValueChoice``, a depth for a ``Repeat`` with a range,
            an input index, or a list of them, for an ``InputChoice``).
        strict: Refuse values for labels the model does not ask for (a typo). Labels of the
            blocks a ``Repeat`` leaves out are never refused.

    Raises:
        InvalidConfigError: A label of the model has no value (it is named), a label given is
            not the model's (strict), a label reused with different options.
        InvalidArchitectureError: A value that is not one of its choice's options.

    Example:
        >>> from torch import nn
        >>> import nasforge.nn as nnf
        >>> with nnf.fixed({"act": "relu", "width": 8}):
        ...     layer = nnf.LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")
        ...     width = nnf.ValueChoice([4, 8], label="width")
        >>> type(layer).__name__, width
        ('ReLU', 8)
    """
    if not isinstance(values, Mapping):
        raise InvalidConfigError(
            f"nasforge.nn.fixed() takes a mapping of labels to values, got {type(values).__name__}."
        )
    trace = Trace(values, strict=strict)
    _stack().append(trace)
    try:
        yield trace
    finally:
        _stack().pop()
    trace.finish()
