"""The preset a training evaluator builds its networks with (private).

A space's :meth:`~nasforge.spaces.base.SearchSpace.presets` are named keyword sets of its
``build``; some keys are data settings instead (``resolution``, ``data_fraction``,
``batch_size``, ``epochs``: :data:`nasforge.spaces.base.DATA_SETTINGS`), which become the
defaults of the evaluator's own image side, data fraction and recipe batch size and epochs.
:class:`TrainingPreset` keeps the two parts apart and knows which of the build settings
are the space's integer width and depth (its ``scale_keys``), the ones ``channels=`` and
the depth keyword change.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError, UnknownNameError

if TYPE_CHECKING:
    from nasforge.spaces.base import SearchSpace
    from nasforge.train.recipe import Recipe

__all__ = ["DEFAULT_PRESET", "TrainingPreset", "preset_recipe", "training_preset"]

#: The preset a training evaluator takes unless told otherwise: the space's paper network.
DEFAULT_PRESET = "paper"


@dataclass(frozen=True)
class TrainingPreset:
    """One preset of a space, split for the training evaluator.

    Attributes:
        name: The preset's name (``"paper"``, ``"reduced"``...).
        build: Its settings of ``space.build`` (the data settings left out).
        data: Its data settings: ``resolution``, ``data_fraction``, ``batch_size``,
            ``epochs`` where it names them.
        width_key, depth_key: The build keywords of the space's integer width and depth
            (``scale_keys``), ``None`` where it has none.
        build_params: The keywords ``space.build`` names (empty when it names none).
        presets: The names of the space's presets.
    """

    name: str
    build: Mapping[str, Any]
    data: Mapping[str, Any]
    width_key: str | None
    depth_key: str | None
    build_params: frozenset[str]
    presets: tuple[str, ...] = ()

    @property
    def reserved(self) -> dict[str, str]:
        """Build keywords that ``build=`` may not set, with the setting to use instead."""
        out = {
            "num_classes": "it is the dataset's number of classes",
            "resolution": "give resolution= (the evaluator's image side, also a fidelity)",
            "auxiliary": "the recipe's auxiliary_weight decides it",
            "drop_path_prob": "the recipe's drop_path_prob decides it",
        }
        if self.width_key is not None:
            out[self.width_key] = "give channels= (also a fidelity)"
        if self.depth_key is not None:
            out[self.depth_key] = f"give {self.depth_key}= (also a fidelity)"
        return out

    def check_overrides(self, space: str, build: Mapping[str, Any] | None) -> dict[str, Any]:
        """``build`` checked: keywords of ``space.build`` that none of the evaluator's own
        settings covers, with values a study can record (numbers, strings, booleans).

        Raises:
            InvalidConfigError: A reserved keyword (the message names the setting to use), a
                keyword ``space.build`` does not take (its keywords are listed), or a value
                that is not a number, string or boolean.
        """
        if build is None:
            return {}
        if not isinstance(build, Mapping):
            raise InvalidConfigError(
                f"build= must be a mapping of {space!r} build settings, e.g. "
                f"{{'width_mult': 0.5}}, got {build!r}."
            )
        reserved = self.reserved
        settable = sorted(self.build_params - set(reserved))
        out: dict[str, Any] = {}
        for key, value in build.items():
            key = str(key)
            if key in reserved:
                raise InvalidConfigError(f"build={{{key!r}: ...}} is not allowed: {reserved[key]}.")
            if self.build_params and key not in self.build_params:
                raise InvalidConfigError(
                    f"Space {space!r} builds no network with the setting {key!r}; its build "
                    f"settings are {', '.join(settable) or 'none'}."
                )
            if value is not None and not isinstance(value, (bool, int, float, str)):
                raise InvalidConfigError(
                    f"build setting {key}={value!r} must be a number, a string or a boolean "
                    "(the study records it to rebuild the evaluator)."
                )
            out[key] = value
        return out

    def shape(
        self, space: str, channels: int | None, depth: Mapping[str, Any]
    ) -> tuple[int | None, int | None]:
        """The full width and depth: ``channels`` and the one keyword of ``depth`` (named as
        the space's depth setting), else the preset's; ``None`` where the space has none.

        Raises:
            InvalidConfigError: A depth keyword of another space, a width or depth for a space
                without integer ones, or a value out of range.
        """
        from nasforge.evaluators._values import count, positive_int

        for key in depth:
            if key != self.depth_key:
                raise InvalidConfigError(
                    f"{key}= is not a setting of the training evaluator for space {space!r}"
                    + (
                        f"; its depth is {self.depth_key}=."
                        if self.depth_key
                        else f": {self.no_width_hint(space)}."
                    )
                )
        if channels is not None and self.width_key is None:
            raise InvalidConfigError(
                f"channels= is not a setting of space {space!r}: {self.no_width_hint(space)}."
            )
        width = (
            None
            if self.width_key is None
            else positive_int("channels", channels or self.build[self.width_key])
        )
        given = depth.get(self.depth_key or "")
        full_depth = (
            None
            if self.depth_key is None
            else count("depth", self.build[self.depth_key] if given is None else given)
        )
        return width, full_depth

    def no_width_hint(self, space: str) -> str:
        """Why ``channels`` and a depth do not apply to a space without integer ones."""
        settable = sorted(self.build_params - set(self.reserved))
        how = f", or change its build settings with build= ({', '.join(settable)})"
        return (
            f"the {space} networks have no integer width and depth (the space's scale_keys), "
            f"so channels and depth settings and fidelities do not apply: choose a preset "
            f"({', '.join(self.presets)}){how * bool(settable)}"
        )


def training_preset(space: SearchSpace, name: str) -> TrainingPreset:
    """Preset ``name`` of ``space`` as the training evaluator uses it. A space without
    presets has an empty ``"paper"`` preset (its ``build`` defaults) and no other.

    Raises:
        UnknownNameError: ``space`` has no preset ``name`` (its presets are listed).
        InvalidConfigError: The preset lacks the space's width or depth setting.
    """
    if not isinstance(name, str):
        raise InvalidConfigError(f"preset must be the name of a preset, got {name!r}.")
    presets: Mapping[str, Mapping[str, Any]] = (
        space.presets() if space.supports("presets") else {DEFAULT_PRESET: {}}
    )
    if name not in presets:
        raise UnknownNameError(f"preset of space {space.name!r}", name, presets)
    from nasforge.spaces.base import DATA_SETTINGS

    chosen = dict(presets[name])
    keys = space.scale_keys if chosen else None
    width_key = None if keys is None else keys[0]
    depth_key = None if keys is None else keys[1]
    for key in (width_key, depth_key):
        if key is not None and key not in chosen:
            raise InvalidConfigError(
                f"Preset {name!r} of space {space.name!r} does not set {key!r}, which the "
                "training evaluator scales; give it with the evaluator's own settings."
            )
    return TrainingPreset(
        name=name,
        build={k: v for k, v in chosen.items() if k not in DATA_SETTINGS},
        data={k: v for k, v in chosen.items() if k in DATA_SETTINGS},
        width_key=width_key,
        depth_key=depth_key,
        build_params=_keywords(space),
        presets=tuple(sorted(presets)),
    )


def preset_recipe(
    space: SearchSpace,
    recipe: Recipe | Mapping[str, Any] | str | None,
    preset: TrainingPreset,
) -> Recipe:
    """The recipe of a training evaluator: ``recipe`` (default the space's own), with the
    preset's batch size and epochs unless the recipe sets them itself: a :class:`Recipe` is
    taken whole, a mapping keeps its ``batch_size`` and ``epochs`` where it has them, a
    recipe name or ``None`` takes the preset's.

    Raises:
        UnknownNameError: An unknown recipe name.
        InvalidConfigError: A recipe value out of range.
    """
    from nasforge.evaluators._values import as_recipe
    from nasforge.train.recipe import Recipe

    if isinstance(recipe, Recipe):
        return recipe
    base: Recipe = space.recipe() if recipe is None else as_recipe(recipe)
    for key in ("batch_size", "epochs"):
        given = isinstance(recipe, Mapping) and key in recipe
        if key in preset.data and not given:
            base = base.replace(**{key: preset.data[key]})
    return base


def _keywords(space: SearchSpace) -> frozenset[str]:
    """The named keywords of ``space.build`` (after the architecture)."""
    try:
        parameters = list(inspect.signature(space.build).parameters.values())
    except (TypeError, ValueError):  # no signature: nothing is known
        return frozenset()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in parameters[1:] if p.kind in named)
