"""What the forms of a space (``"<space>+binary"``, ``"<space>+quant"``, ``"<space>+recipe"``)
share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, UnsupportedOperationError, abbreviate
from nasforge.spaces.base import Decision, SearchSpace

__all__ = ["AddedDecisions", "input_side"]


def input_side(base: SearchSpace, arch: Architecture, build: Mapping[str, Any]) -> int:
    """The image side a network of ``arch`` (of ``base``) takes: the architecture's own
    resolution where the space decides it (``ofa``), else ``build["resolution"]``, else the
    side of the space's ``default_input``, else 32 (CIFAR)."""
    resolution = getattr(base, "resolution", None)
    if callable(resolution):
        return int(resolution(arch))
    if "resolution" in build:
        return int(build["resolution"])
    default = getattr(base, "default_input", None)
    return int(default[1]) if default else 32


class AddedDecisions(SearchSpace):
    """A form that adds decisions after those of its base (``"<space>+quant"``,
    ``"<space>+recipe"``): an architecture's choices are the base architecture's followed by
    the form's own, its text the base's text, :attr:`separator`, then the form's own part
    (:meth:`_own_text`). A subclass calls :meth:`_wrap` first in its ``__init__`` and sets
    ``_decisions`` (the base's followed by its own)."""

    #: Between the base architecture's text and the form's own part.
    separator: str
    base: SearchSpace
    _base_decisions: tuple[Decision, ...]
    _decisions: tuple[Decision, ...]

    def _wrap(self, base: SearchSpace, takes: str, form: str) -> None:
        """Keep ``base`` after refusing one that is not a product of independent decisions
        with a model builder (``takes``: what the form adds; ``form``: its name)."""
        if not isinstance(base, SearchSpace):
            raise UnsupportedOperationError(
                f"{type(self).__name__} wraps a search space, got {type(base).__name__}."
            )
        if not base.supports("decisions") or not base.supports("build"):
            raise UnsupportedOperationError(
                f"Space {base.name!r} cannot take {takes}: the {form} form needs a base that is "
                "a product of independent decisions (decisions()) and builds its networks "
                "(build()); wrap such a space (nasforge list spaces)."
            )
        self.base = base
        self.scale_keys = base.scale_keys
        self._base_decisions = base.decisions()

    def decisions(self) -> tuple[Decision, ...]:
        return self._decisions

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = self.check_choices(choices)
        base, own = self._base_and_own(values)
        return Architecture(self.name, values, f"{base.text}{self.separator}{self._own_text(own)}")

    def _own_text(self, own: Sequence[int]) -> str:
        """The text of the form's own choices (after the separator)."""
        raise NotImplementedError

    def _base_and_own(self, choices: Sequence[int]) -> tuple[Architecture, Sequence[int]]:
        """The base architecture of ``choices`` and the form's own choices."""
        count = len(self._base_decisions)
        return self.base.from_choices(choices[:count]), choices[count:]

    def _split_text(self, text: str, own: str, width: int) -> tuple[str, str]:
        """The base's text and the form's own part of ``text``.

        Raises:
            InvalidArchitectureError: No separator (the form, described by ``own``, and an
                example of ``width`` characters at most are given).
        """
        if not isinstance(text, str) or self.separator not in text:
            raise InvalidArchitectureError(
                f"A {self.name} architecture is '<{self.base.name} architecture>"
                f"{self.separator}{own}', e.g. {abbreviate(str(self._example()), width)!r}; "
                f"got {abbreviate(str(text), 80)!r}."
            )
        base_text, _, rest = text.rpartition(self.separator)
        return base_text, rest

    def _example(self) -> Architecture:
        return self.from_choices([0] * len(self._decisions))

    def _made_here(self, arch: Architecture) -> bool:
        """Whether this space's own arguments write ``arch``'s choices as ``arch``'s text (a
        space of the same name opened with other arguments reads them otherwise)."""
        try:
            return self.from_choices(arch.choices).text == arch.text
        except InvalidArchitectureError:
            return False
