"""What ``create_study`` records for a search space or strategy given as an object.

A study stores the registry names, parameters and seed of its space and strategy (never a live
object), so that a resume rebuilds both and replays the trials. An object handed to
``create_study`` is therefore turned into that record here, and refused when the record could
not rebuild it: an unregistered class, a strategy without a seed, a space that differs from the
one its name and parameters build.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from nasforge import spaces, strategies
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.spaces import _user
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy

__all__ = ["check_resumable", "space_spec", "strategy_spec", "unrecordable"]


def space_spec(
    space: str | SearchSpace | None,
    space_params: Mapping[str, Any] | None,
    strategy: str | Strategy,
) -> tuple[str, dict[str, Any], SearchSpace]:
    """The registry name and parameters of the study's space, and the space built from them.

    ``space`` may be a name (a registry name or a user's ``"package.module:attribute"``), a
    :class:`SearchSpace` (``space_params`` then say how it was built; by default its own
    ``params`` mapping where it has one, as a table's space does, else ``{}``), a
    user's define-by-run function or model class (made a space as
    ``nasforge.spaces.from_function``/``from_module`` do), or ``None``: the strategy object's
    space, else ``"nb201"``.
    """
    params = dict(space_params or {})
    if space is None:
        space = strategy.space if isinstance(strategy, Strategy) else "nb201"
    if isinstance(space, str):
        return space, params, spaces.create(space, **params)
    if not isinstance(space, SearchSpace) and callable(space):
        space = _user.from_object(space)
    if not isinstance(space, SearchSpace):
        raise InvalidConfigError(
            f"space must be a registry name (one of {spaces.names()}), a user's "
            "'package.module:attribute', a SearchSpace or a define-by-run function, got "
            f"{type(space).__name__}."
        )
    if _is_users(space.name):
        if params:
            raise InvalidConfigError(
                f"space_params are for a space given by name; the space object {space.name!r} "
                "is recorded as it is. Build it with those settings."
            )
        if not space.name.strip():
            raise InvalidConfigError(
                f"The space object {type(space).__name__} has no name to be recorded by; give "
                "it one ('package.module:attribute' for a study that resumes elsewhere)."
            )
        _user.remember(space)  # a user's space: the study finds it by its name
        return space.name, {}, space
    own = getattr(space, "params", None)  # what a space built from settings says of them
    if not params and isinstance(own, Mapping):
        params = dict(own)
    try:  # a registered name, or one with forms ("nb201+recipe")
        built: SearchSpace | None = spaces.create(space.name, **params)
    except UnknownNameError:
        built = None
    if built is None or type(built) is not type(space):
        raise InvalidConfigError(
            f"Search space {type(space).__name__} (name {space.name!r}) is not the class "
            "registered under its name, so a resume could not rebuild it; register it with "
            "@nasforge.spaces.register(name) (or a plugin) and pass the object or its name."
        )
    if not _same_state(built, space):
        raise InvalidConfigError(
            f"The space object differs from nasforge.spaces.create({space.name!r}"
            f"{''.join(f', {k}={v!r}' for k, v in params.items())}); pass the space_params it "
            "was built with, so that the study can record them and rebuild it on resume."
        )
    return space.name, params, built


def strategy_spec(
    strategy: str | Strategy,
    strategy_params: Mapping[str, Any] | None,
    seed: int | None,
    seed_given: bool,
    space: SearchSpace,
    space_params: Mapping[str, Any],
) -> tuple[str, dict[str, Any], int | None]:
    """The registry name, parameters and seed to record for ``strategy``.

    A :class:`Strategy` object is recorded by its class's registry name, the keyword
    arguments it was built with (``Strategy.params()``) and its seed; the study builds its own
    copy from them (the object itself is never asked). It must search ``space``.
    """
    if isinstance(strategy, str):
        return strategy, dict(strategy_params or {}), seed
    if not isinstance(strategy, Strategy):
        raise InvalidConfigError(
            f"strategy must be a registry name (one of {strategies.names()}) or a Strategy, "
            f"got {type(strategy).__name__}."
        )
    label = type(strategy).__name__
    name = getattr(type(strategy), "registry_name", None)
    if name is None or name not in strategies.names() or strategies.get(name) is not type(strategy):
        raise InvalidConfigError(
            f"Strategy {label} is not the class registered under a strategy name, so a resume "
            "could not rebuild it; register it with @nasforge.strategies.register(name) (or "
            "a plugin), or pass a registered strategy's name."
        )
    if strategy_params:
        raise InvalidConfigError(
            f"strategy_params are for a strategy given by name; the {label} object's own "
            f"parameters ({strategy.params()}) are recorded. Build the object with them."
        )
    own = strategy.seed
    if isinstance(own, bool) or not isinstance(own, (int, np.integer)) or own < 0:
        raise InvalidConfigError(
            f"The {label} object was built with seed={own!r}; its proposals cannot be "
            "replayed on resume. Build it with a non-negative integer seed."
        )
    if seed_given and seed != own:
        raise InvalidConfigError(
            f"seed={seed!r} contradicts the seed of the {label} object ({own}); leave seed "
            "out to use the object's."
        )
    theirs = strategy.space
    if (
        type(theirs) is not type(space)
        or theirs.name != space.name
        or not (
            _user.same_space(theirs, space)
            if _user.is_user_name(space.name)
            else _same_state(theirs, space)
        )
    ):
        raise InvalidConfigError(
            f"The {label} object searches space {theirs.name!r} ({type(theirs).__name__}), but "
            f"the study's space is {space.name!r}"
            f"{f' with {dict(space_params)}' if space_params else ''}; build the strategy on "
            "the study's space, or leave space out to use the strategy's."
        )
    return name, strategy.params(), int(own)


def _is_users(name: object) -> bool:
    """Whether a space object of this name is a user's (not a registered space or form)."""
    if not isinstance(name, str) or name in spaces.names():
        return False
    return ":" in name or "+" not in name


def check_resumable(name: str, space: SearchSpace) -> None:
    """Refuse a user's space that a persistent storage could not rebuild by its name in
    another process (a lambda, a function defined inside another one, a name that does not
    import it); registered spaces always can.

    Raises:
        InvalidConfigError: The space cannot be rebuilt by name (why, and how to fix it).
    """
    if name in spaces.names() or not _user.is_user_name(name):
        return
    problem = _user.unrebuildable(space)
    if problem is not None:
        raise InvalidConfigError(
            f"Search space {name!r} cannot be recorded in a persistent storage: {problem}. A "
            "stored study rebuilds its space by name in every process that resumes it "
            "(load_study, nasforge worker); define the function or class at the top level of a "
            "module on the import path and pass it (nasforge.spaces.from_function(fn)) or its "
            "name 'module:attribute', or keep the study in memory (storage=None)."
        )


def unrecordable(params: Mapping[str, Any]) -> list[str]:
    """Names of the parameters a persistent storage cannot record (not JSON values)."""
    bad = []
    for key, value in params.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            bad.append(key)
    return bad


def _same_state(a: object, b: object) -> bool:
    """Whether two objects of one class hold equal attributes (arrays compared by value)."""
    mine, theirs = vars(a), vars(b)
    if mine.keys() != theirs.keys():
        return False
    for key, x in mine.items():
        y = theirs[key]
        try:
            if isinstance(x, SearchSpace) and type(x) is type(y):  # a form's base space
                same = _same_state(x, y)
            elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                same = bool(np.array_equal(x, y))
            else:
                same = bool(x == y)
        except Exception:  # values that do not compare: fall back to their text
            same = repr(x) == repr(y)
        if not same:
            return False
    return True
