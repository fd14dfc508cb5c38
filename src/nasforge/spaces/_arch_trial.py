"""The trial a define-by-run function draws its choices from
(:class:`~nasforge.spaces.define_by_run.DefineByRunSpace`), and the checks of its names and
options."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nasforge.errors import InvalidConfigError, abbreviate

__all__ = [
    "MAX_DRAWS",
    "MAX_OPTIONS",
    "Answer",
    "ArchTrial",
    "Draw",
    "Option",
    "integer_setting",
    "listed",
    "show",
]

Option = str | int | float | bool
#: Most values one ``trial.integer`` range may hold (give a ``step`` for wider ranges).
MAX_OPTIONS = 4096
#: Most choices one run of the function may draw.
MAX_DRAWS = 10_000

#: One drawn choice: its name, its options and the index of the option taken.
Draw = tuple[str, tuple[Option, ...], int]
Answer = Callable[[str, tuple[Option, ...]], int]


def show(value: Option) -> str:
    return str(value)


def listed(options: Sequence[Option]) -> str:
    return abbreviate(list(options), 120)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        raise InvalidConfigError(
            f"A choice name must be non-empty text without surrounding spaces, got {name!r}."
        )
    if "," in name or "=" in name:
        raise InvalidConfigError(
            f"Choice name {name!r} contains ',' or '=', which separate the choices in an "
            "architecture's text ('name=value,name=value'); use letters, digits, '_' or '.'."
        )
    return name


def _check_options(name: str, options: object) -> tuple[Option, ...]:
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        raise InvalidConfigError(
            f"trial.choice({name!r}, options) takes a list of options, got "
            f"{abbreviate(options)}; e.g. trial.choice({name!r}, [16, 32, 64])."
        )
    found = tuple(options)
    if not found:
        raise InvalidConfigError(f"Choice {name!r} has no options; give at least one.")
    texts: dict[str, Option] = {}
    for option in found:
        if not isinstance(option, (str, int, float, bool)) or isinstance(option, np.generic):
            raise InvalidConfigError(
                f"Option {abbreviate(option)} of choice {name!r} is a {type(option).__name__}; "
                "options are str, int, float or bool (draw an index or a name and build the "
                "object from it)."
            )
        if isinstance(option, float) and not math.isfinite(option):
            raise InvalidConfigError(f"Option {option!r} of choice {name!r} is not finite.")
        text = show(option)
        if "," in text or text != text.strip():
            raise InvalidConfigError(
                f"Option {option!r} of choice {name!r} contains ',' or surrounding spaces, "
                "which an architecture's text cannot hold; use another spelling."
            )
        if text in texts:
            raise InvalidConfigError(
                f"Choice {name!r} lists {texts[text]!r} and {option!r}, which are the same "
                f"option (or read the same as text) in {listed(found)}; give each option once."
            )
        texts[text] = option
    return found


def _same_options(a: Sequence[Option], b: Sequence[Option]) -> bool:
    if len(a) != len(b):
        return False
    return all(type(x) is type(y) and x == y for x, y in zip(a, b, strict=True))


def integer_setting(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidConfigError(f"{what} must be an integer, got {abbreviate(value)}.")
    return int(value)


class ArchTrial:
    """What a define-by-run function draws its choices from (see :class:`DefineByRunSpace`).

    A name is one decision: drawn again in the same run it returns the same value (a choice
    shared by several layers), and it must always come with the same options.
    ``suggest_categorical`` and ``suggest_int`` are Optuna's names for :meth:`choice` and
    :meth:`integer`.
    """

    def __init__(self, answer: Answer, known: Mapping[str, tuple[Option, ...]]) -> None:
        self._answer = answer
        self._known = known
        self._drawn: dict[str, tuple[tuple[Option, ...], int]] = {}

    def choice(self, name: str, options: Sequence[Option]) -> Any:
        """One of ``options`` (str, int, float or bool values), under ``name``.

        Raises:
            InvalidConfigError: A bad name or options, or ``name`` drawn elsewhere with other
                options (both lists named).
        """
        name = _check_name(name)
        found = _check_options(name, options)
        earlier = self._drawn.get(name)
        if earlier is None and name in self._known:
            earlier = (self._known[name], -1)
        if earlier is not None and not _same_options(earlier[0], found):
            raise InvalidConfigError(
                f"Choice {name!r} is drawn with options {listed(found)} and elsewhere with "
                f"{listed(earlier[0])}; a name is one decision with one list of options: give "
                f"the other choice its own name (e.g. '{name}_2')."
            )
        if earlier is not None and earlier[1] >= 0:
            return found[earlier[1]]
        if len(self._drawn) >= MAX_DRAWS:
            raise InvalidConfigError(
                f"The define-by-run function drew more than {MAX_DRAWS} choices in one run; "
                "does it draw in an endless loop?"
            )
        index = self._answer(name, found)
        self._drawn[name] = (found, index)
        return found[index]

    def integer(self, name: str, low: int, high: int, step: int = 1) -> int:
        """An integer from ``low`` to ``high`` (both included) in steps of ``step``.

        Raises:
            InvalidConfigError: Not integers, a step below 1, an empty range (``low > high``)
                or more than :data:`MAX_OPTIONS` values.
        """
        low = integer_setting(low, f"The low end of trial.integer({name!r})")
        high = integer_setting(high, f"The high end of trial.integer({name!r})")
        step = integer_setting(step, f"The step of trial.integer({name!r})")
        if step < 1:
            raise InvalidConfigError(f"trial.integer({name!r}) needs step >= 1, got {step}.")
        if low > high:
            raise InvalidConfigError(
                f"trial.integer({name!r}, {low}, {high}) is an empty range: low is above high "
                "(both ends are included)."
            )
        count = (high - low) // step + 1
        if count > MAX_OPTIONS:
            raise InvalidConfigError(
                f"trial.integer({name!r}, {low}, {high}, step={step}) holds {count} values, more "
                f"than {MAX_OPTIONS}; give a larger step."
            )
        return int(self.choice(name, range(low, high + 1, step)))

    def boolean(self, name: str) -> bool:
        """``False`` (the first option) or ``True``."""
        return bool(self.choice(name, (False, True)))

    def suggest_categorical(self, name: str, choices: Sequence[Option]) -> Any:
        """Optuna's name of :meth:`choice`."""
        return self.choice(name, choices)

    def suggest_int(self, name: str, low: int, high: int, step: int = 1) -> int:
        """Optuna's name of :meth:`integer`."""
        return self.integer(name, low, high, step)

    @property
    def params(self) -> dict[str, Option]:
        """The values drawn so far, by name, in the order drawn."""
        return {name: options[i] for name, (options, i) in self._drawn.items()}

    def _draws(self) -> list[Draw]:
        return [(name, options, i) for name, (options, i) in self._drawn.items()]
