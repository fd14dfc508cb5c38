"""The :class:`Architecture` value: one point of a search space."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Architecture"]


@dataclass(frozen=True)
class Architecture:
    """A frozen, hashable point of a search space.

    Two architectures are equal when they belong to the same space and make the same choices.
    Build them through their space (``space.parse(text)``, ``space.sample(rng)``...), which
    also fills in the canonical text: ``str(arch)`` is that text and
    ``space.parse(str(arch)) == arch``.

    Attributes:
        space: Registry name of the search space (``"nb201"``).
        choices: One integer per decision of the space, in the space's documented order.
        text: The space's canonical text of these choices.
    """

    space: str
    choices: tuple[int, ...]
    text: str = field(compare=False, hash=False, repr=False)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Architecture({self.space!r}, {self.text!r})"
