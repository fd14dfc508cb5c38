"""The setting of one training run and the checks of the training evaluator's values
(private)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import InvalidConfigError
from nasforge.train.recipe import Recipe


@dataclass(frozen=True)
class Setting:
    """The resolved setting of one training run (a fidelity merged into the defaults)."""

    epochs: int
    channels: int | None
    depth: int | None
    resolution: int
    data_fraction: float


def as_recipe(value: Recipe | Mapping[str, Any] | str) -> Recipe:
    if isinstance(value, Recipe):
        return value
    if isinstance(value, str):
        return Recipe.named(value)
    if isinstance(value, Mapping):
        return Recipe.from_dict(value)
    raise InvalidConfigError(
        f"recipe must be a Recipe, a mapping of its fields or a recipe name, got {value!r}."
    )


def int_like(label: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidConfigError(f"{label} must be an integer, got {value!r}.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise InvalidConfigError(f"{label} must be an integer, got {value!r}.")
    return int(value)


def positive_int(label: str, value: Any) -> int:
    number = int_like(label, value)
    if number < 1:
        raise InvalidConfigError(f"{label} must be at least 1, got {value!r}.")
    return number


def count(label: str, value: Any) -> int:
    number = int_like(label, value)
    if number < 0:
        raise InvalidConfigError(f"{label} must be 0 or more, got {value!r}.")
    return number


def fraction(value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise InvalidConfigError(f"data_fraction must be in (0, 1], got {value!r}.")
    return float(value)


def describe(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
