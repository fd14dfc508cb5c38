"""The recipe form of a search space: each architecture also decides how it is trained.

``nasforge.spaces.create("nb201+recipe")`` wraps the ``nb201`` space in :class:`RecipeSpace`:
an architecture is a network of the base space and a training recipe, the joint
architecture-recipe space of

    Dai, X., Wan, A., Zhang, P., Wu, B., He, Z., Wei, Z., Chen, K., Tian, Y., Yu, M.,
    Vajda, P. and Gonzalez, J. E. "FBNetV3: Joint Architecture-Recipe Search using Predictor
    Pretraining." CVPR 2021, arXiv:2006.02049 (Section 3, Table 1: the learning rate, weight
    decay, training epochs, optimiser, mixup ratio, EMA, dropout ratio searched beside the
    architecture).

Decisions: those of the base, then one per recipe setting (:data:`KNOBS`), named
``recipe.<setting>``: ``lr``, ``weight_decay`` and ``epochs`` are *factors* of the recipe the
evaluator would use otherwise (so that one space serves any fidelity and any evaluator
recipe: ``epochs=x2`` trains twice the evaluator's epochs, or twice a fidelity's), ``lr`` and
``weight_decay`` of the optimiser's reference values (the base recipe's own for its optimiser,
:data:`REFERENCE` for another); ``optimizer``, ``label_smoothing``, ``mixup`` (Beta alpha),
``ema`` (decay) and ``dropout`` (on the classifier's input) are values of
:class:`~nasforge.train.recipe.Recipe`. :meth:`RecipeSpace.recipe_of` applies them: the
training evaluator trains every architecture with ``space.recipe_of(arch, its_recipe)``.

Text: ``"<base text>|recipe:lr=x2,weight_decay=x1,epochs=x1,optimizer=sgd,..."``, the
settings in the order of the space's knobs. The network is the base's: :meth:`build` builds
the base network (the recipe changes how it is trained, not what it is), so costs and the
networks exported from a study are the base's, and the found recipe travels with the
checkpoint (``info["recipe"]``, the recipe actually trained with).

Encodings: ``"onehot"`` (every decision one-hot), and for each encoding of the base (e.g.
``"path"`` for ``nb201``) ``"joint"`` / ``"joint-<encoding>"``: the base's encoding followed by
the recipe encoder's input of FBNetV3 (Section 3.1): numeric settings min-max normalised over
their options (factors on a log scale), categorical ones one-hot. ``"joint"`` uses the base's
first encoding.

The name is ``f"{base.name}+recipe"`` whatever the knobs; a study records the keyword
arguments as its ``space_params`` and rebuilds the same space on resume.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
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
from nasforge.spaces._forms import AddedDecisions
from nasforge.spaces.base import Decision, SearchSpace

if TYPE_CHECKING:
    from torch import nn

__all__ = ["FACTORS", "KNOBS", "REFERENCE", "SEPARATOR", "RecipeSpace"]

#: The separator between the base architecture's text and the recipe.
SEPARATOR = "|recipe:"
#: The recipe settings a space can decide and their default options (FBNetV3's Table 1,
#: scaled to the evaluator's recipe): factors for ``lr``, ``weight_decay`` and ``epochs``.
KNOBS: Mapping[str, tuple[Any, ...]] = {
    "lr": (0.5, 1.0, 2.0),
    "weight_decay": (0.2, 1.0, 5.0),
    "epochs": (0.5, 1.0, 2.0),
    "optimizer": ("sgd", "adamw"),
    "label_smoothing": (0.0, 0.1),
    "mixup": (0.0, 0.2),
    "ema": (0.0, 0.999),
    "dropout": (0.0, 0.2),
}
#: The settings whose options are factors of the base recipe's value.
FACTORS: frozenset[str] = frozenset({"lr", "weight_decay", "epochs"})
#: The reference learning rate and weight decay of an optimiser other than the base recipe's
#: (AdamW: Loshchilov and Hutter's ImageNet-scale values; Lion: 10x smaller lr, 10x larger
#: decay than AdamW, as Chen et al. advise).
REFERENCE: Mapping[str, tuple[float, float]] = {
    "sgd": (0.1, 5e-4),
    "adamw": (1e-3, 0.05),
    "lion": (1e-4, 0.5),
}


class RecipeSpace(AddedDecisions):
    """The architectures of ``base``, each with a training recipe (see the module docstring).

    Args:
        base: A space with decisions and a model builder.
        knobs: The recipe settings decided and their options, a mapping from names of
            :data:`KNOBS` to option sequences (``None`` for a setting: its default options);
            default every setting of :data:`KNOBS` with its default options. Settings left
            out keep the evaluator's value.

    Raises:
        UnsupportedOperationError: ``base`` has no decisions or no builder.
        UnknownNameError: A knob that is not a recipe setting of :data:`KNOBS`.
        InvalidConfigError: No knob, an empty or repeated option list, or an option out of
            range (a factor not above 0, an unknown optimiser, a probability outside [0, 1)).

    Example:
        >>> from nasforge import spaces
        >>> from nasforge.train import Recipe
        >>> space = spaces.create("nb201+recipe", knobs={"lr": [0.5, 1, 2], "epochs": [1, 3]})
        >>> arch = space.join(spaces.create("nb201").from_index(6111), lr=2, epochs=3)
        >>> arch.text.endswith("|recipe:lr=x2,epochs=x3"), space.parse(arch.text) == arch
        (True, True)
        >>> recipe = space.recipe_of(arch, Recipe(lr=0.05, epochs=4))
        >>> recipe.lr, recipe.epochs
        (0.1, 12)
    """

    separator = SEPARATOR

    def __init__(
        self, base: SearchSpace, knobs: Mapping[str, Sequence[Any] | None] | None = None
    ) -> None:
        self._wrap(base, "recipe decisions", "recipe")
        self.name = f"{base.name}+recipe"
        self.knobs: dict[str, tuple[Any, ...]] = _check_knobs(knobs)
        taken = {d.name for d in self._base_decisions}
        clash = sorted(taken & {f"recipe.{k}" for k in self.knobs})
        if clash:
            raise InvalidConfigError(
                f"Space {base.name!r} already has decisions named {clash}; the recipe form "
                "cannot add its own under those names."
            )
        self._decisions = self._base_decisions + tuple(
            Decision(f"recipe.{name}", options) for name, options in self.knobs.items()
        )

    # -- decisions and text ------------------------------------------------------------------
    def _own_text(self, own: Sequence[int]) -> str:
        return ",".join(
            f"{name}={_token(name, options[c])}"
            for (name, options), c in zip(self.knobs.items(), own, strict=True)
        )

    def parse(self, text: str) -> Architecture:
        """The architecture written as ``"<base text>|recipe:<setting>=<value>,..."``.

        Raises:
            InvalidArchitectureError: No recipe part, a malformed base text, a setting
                missing, repeated or unknown, or a value that is not an option.
        """
        base_text, recipe = self._split_text(text, "<setting>=<value>,...", 160)
        values: dict[str, str] = {}
        for item in (part.strip() for part in recipe.split(",") if part.strip()):
            name, equals, value = (s.strip() for s in item.partition("="))
            if not equals or name not in self.knobs or name in values:
                problem = "repeated" if name in values else "not a setting of this space"
                raise InvalidArchitectureError(
                    f"Recipe item {item!r} of {abbreviate(text, 80)!r}: {problem}; write "
                    f"<setting>=<value> once for each of {list(self.knobs)}."
                )
            values[name] = value
        missing = [name for name in self.knobs if name not in values]
        if missing:
            raise InvalidArchitectureError(
                f"The recipe of {abbreviate(text, 80)!r} does not set {missing}; space "
                f"{self.name!r} decides {list(self.knobs)}."
            )
        return self.join(self.base.parse(base_text), **values)

    def join(self, base_arch: Architecture, **values: Any) -> Architecture:
        """The architecture of ``base_arch`` (of the base space) trained with ``values``, one
        per knob (a factor may be written ``"x2"`` or ``2``); knobs left out take the
        option that leaves the evaluator's recipe as it is (factor 1, no mixup, EMA or
        dropout, the first optimiser) where it is an option, else the first option.

        Raises:
            InvalidArchitectureError: ``base_arch`` is not of the base space, a value is not
                an option of its setting, or a name is not a knob.
        """
        self.base.check(base_arch)
        unknown = sorted(set(values) - set(self.knobs))
        if unknown:
            raise InvalidArchitectureError(
                f"{unknown} {'is not a setting' if len(unknown) == 1 else 'are not settings'} "
                f"of space {self.name!r}; it decides {list(self.knobs)}."
            )
        choices = list(base_arch.choices)
        for name, options in self.knobs.items():
            if name in values:
                choices.append(_index(name, options, values[name]))
            else:
                choices.append(_neutral(name, options))
        return self.from_choices(choices)

    def check(self, arch: Architecture) -> Architecture:
        """``arch`` if it is an architecture of this space made with these knobs.

        Raises:
            InvalidArchitectureError: Another space, or the same name with other knobs (open
                the space with the ``space_params`` the study recorded).
        """
        arch = super().check(arch)
        if not self._made_here(arch):
            raise InvalidArchitectureError(
                f"Architecture {abbreviate(arch.text, 80)!r} was made by a {self.name} space "
                f"with other knobs than this one ({self.knobs}); open the space with the "
                "arguments the study recorded (its space_params)."
            )
        return arch

    def split(self, arch: Architecture) -> tuple[Architecture, dict[str, Any]]:
        """The base architecture of ``arch`` and its recipe values, by setting."""
        base, own = self._base_and_own(self.check(arch).choices)
        values = {
            name: options[c] for (name, options), c in zip(self.knobs.items(), own, strict=True)
        }
        return base, values

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """The base architecture's drawing with the recipe as settings, by decision name and
        as the text writes them (``"recipe.lr": "x2"``)."""
        from nasforge.spaces._drawing import with_settings

        base, values = self.split(arch)
        recipe = {f"recipe.{name}": _token(name, value) for name, value in values.items()}
        return with_settings(self.base.drawing(base), recipe)

    def network_arch(self, arch: Architecture) -> Architecture:
        """The architecture of ``arch``'s network in the base space (the same network: the
        recipe form builds the base network). Strategies count free metrics once per network
        by it, and ``nasforge export`` writes a trained network under it, so the file loads
        without the knobs of the space."""
        return self.split(arch)[0]

    # -- the recipe --------------------------------------------------------------------------
    def recipe_of(self, arch: Architecture, base: Any = None) -> Any:
        """The recipe ``arch`` trains with: ``base`` (the evaluator's recipe; ``None``: the
        base space's default) with ``arch``'s settings applied (module docstring). The
        cosine's end and the warm-up are clamped to the new learning rate and epochs.

        Raises:
            InvalidArchitectureError: ``arch`` is not of this space.
        """
        from nasforge.train.recipe import Recipe

        values = self.split(arch)[1]
        recipe: Recipe = self.base.recipe() if base is None else base
        changes: dict[str, Any] = {}
        optimizer = values.get("optimizer", recipe.optimizer)
        if optimizer == recipe.optimizer:
            lr, decay = recipe.lr, recipe.weight_decay
        else:
            lr, decay = REFERENCE[optimizer]
            changes.update(optimizer=optimizer, betas=None)
            if optimizer == "sgd" and recipe.momentum == 0:
                changes["nesterov"] = False
        lr *= float(values.get("lr", 1.0))
        decay *= float(values.get("weight_decay", 1.0))
        epochs = max(1, round(recipe.epochs * float(values.get("epochs", 1.0))))
        changes.update(
            lr=lr,
            weight_decay=decay,
            epochs=epochs,
            min_lr=min(recipe.min_lr, lr),
            warmup_epochs=min(recipe.warmup_epochs, epochs),
        )
        for name in ("label_smoothing", "mixup", "ema"):
            if name in values:
                changes[name] = float(values[name])
        if "dropout" in values:
            changes["dropout"] = float(values["dropout"]) or None
        return recipe.replace(**changes)

    def recipe(self) -> Any:
        return self.base.recipe()

    # -- variation, encodings, identity ------------------------------------------------------
    @property
    def encodings(self) -> tuple[str, ...]:
        """``"onehot"``, then ``"joint"`` and ``"joint-<e>"`` for each base encoding ``e``."""
        joined = tuple(f"joint-{e}" for e in self.base.encodings)
        return ("onehot", *(("joint",) if joined else ()), *joined)

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        """``arch`` as a vector: ``"onehot"`` (every decision), or a joint encoding, the
        base's encoding followed by the recipe encoder's input (module docstring)."""
        self.check_encoding(kind)
        if kind == "onehot":
            return super().encode(arch, kind)
        base_kind = self.base.encodings[0] if kind == "joint" else kind[len("joint-") :]
        base, _ = self.split(arch)
        recipe = self.recipe_features(arch)
        return np.concatenate([np.asarray(self.base.encode(base, base_kind)), recipe])

    def recipe_features(self, arch: Architecture) -> np.ndarray:
        """The recipe encoder's input of ``arch``: per numeric setting its value min-max
        normalised over the options (factors and ``ema``'s ``1 - decay`` on a log scale),
        per categorical setting a one-hot block."""
        choices = self.check(arch).choices[len(self._base_decisions) :]
        out: list[float] = []
        for (name, options), c in zip(self.knobs.items(), choices, strict=True):
            if isinstance(options[0], str):
                out.extend(1.0 if i == c else 0.0 for i in range(len(options)))
                continue
            scale = [_numeric(name, o) for o in options]
            low, high = min(scale), max(scale)
            out.append(0.0 if high == low else (scale[c] - low) / (high - low))
        return np.asarray(out)

    def canonical(self, arch: Architecture) -> Architecture:
        """The base's canonical network with the same recipe."""
        base, _ = self.split(arch)
        canonical = self.base.canonical(base)
        count = len(self._base_decisions)
        return self.from_choices((*canonical.choices, *arch.choices[count:]))

    @property
    def dedupe_method(self) -> str | None:
        return self.base.dedupe_method

    def functional_key(self, arch: Architecture) -> Hashable:
        """Equal for two architectures with networks computing the same function and the
        same recipe: the canonical architecture where the base has a canonical form, else
        the base network's hash joined with the recipe text."""
        if self.dedupe_method == "canonical":
            return self.canonical(arch)
        base, _ = self.split(arch)
        key = self.base.functional_key(base)
        return f"{key}{SEPARATOR}{arch.text.rpartition(SEPARATOR)[2]}"

    def supports(self, capability: str) -> bool:
        if capability in ("build", "presets", "supernet"):
            return self.base.supports(capability) and capability != "supernet"
        return super().supports(capability)

    # -- networks ----------------------------------------------------------------------------
    def build(self, arch: Architecture, **kwargs: Any) -> nn.Module:
        """The base network of ``arch`` (the recipe says how it is trained, not what it is)."""
        network: nn.Module = self.base.build(self.network_arch(arch), **kwargs)
        return network

    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        return self.base.presets()

    def costs(self, arch: Architecture, **kwargs: Any) -> Any:
        """The base's costs of the network (where the base counts them)."""
        costs = getattr(self.base, "costs", None)
        if not callable(costs):
            raise UnsupportedOperationError(f"Space {self.base.name!r} counts no costs.")
        return costs(self.network_arch(arch), **kwargs)

    @property
    def default_input(self) -> tuple[int, int] | None:
        """The base space's classes and image side of ``nasforge profile``, if it has them."""
        default = getattr(self.base, "default_input", None)
        return None if default is None else (int(default[0]), int(default[1]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base!r}, knobs={self.knobs!r})"


# -- knobs --------------------------------------------------------------------------------------
def _check_knobs(knobs: Mapping[str, Sequence[Any] | None] | None) -> dict[str, tuple[Any, ...]]:
    """The knobs, validated, in the order given (default :data:`KNOBS`)."""
    from nasforge.train.recipe import OPTIMIZERS

    if knobs is None:
        return {name: tuple(options) for name, options in KNOBS.items()}
    if not isinstance(knobs, Mapping) or not knobs:
        raise InvalidConfigError(
            f"knobs maps recipe settings to their options, at least one, e.g. "
            f"{{'lr': [0.5, 1, 2]}}; settings: {list(KNOBS)}; got {knobs!r}."
        )
    out: dict[str, tuple[Any, ...]] = {}
    for name, given in knobs.items():
        if name not in KNOBS:
            raise UnknownNameError("recipe setting (knob)", str(name), KNOBS)
        options = tuple(KNOBS[name] if given is None else given)
        if isinstance(given, (str, bytes)) or not options:
            raise InvalidConfigError(
                f"Knob {name!r} takes a list of options, e.g. {list(KNOBS[name])}, got {given!r}."
            )
        if name == "optimizer":
            cleaned: list[Any] = [str(o).lower() for o in options]
            bad = [o for o in cleaned if o not in OPTIMIZERS]
            if bad:
                raise UnknownNameError("optimizer", bad[0], OPTIMIZERS)
        else:
            cleaned = [_option(name, o) for o in options]
        if len(set(cleaned)) != len(cleaned):
            raise InvalidConfigError(f"Knob {name!r} repeats an option: {list(options)}.")
        out[str(name)] = tuple(cleaned)
    return out


def _option(name: str, value: Any) -> float:
    """A numeric option of knob ``name``, checked (factors > 0, probabilities in [0, 1),
    mixup alpha >= 0)."""
    text = str(value).strip()
    if name in FACTORS and text.startswith("x"):
        text = text[1:]
    try:
        number = float(text) if not isinstance(value, bool) else math.nan
    except ValueError:
        number = math.nan
    if name in FACTORS:
        ok = math.isfinite(number) and number > 0
        rule = "a factor above 0 of the evaluator's value (1: unchanged)"
    elif name == "mixup":
        ok = math.isfinite(number) and number >= 0
        rule = "a Beta alpha of at least 0 (0: off)"
    else:
        ok = math.isfinite(number) and 0 <= number < 1
        rule = "a number in [0, 1) (0: off)"
    if not ok:
        raise InvalidConfigError(f"Knob {name!r} takes {rule}; got option {value!r}.")
    return number


def _token(name: str, value: Any) -> str:
    """An option as the text writes it: ``x2`` for a factor, ``0.1``, ``adamw``."""
    if isinstance(value, str):
        return value
    return f"x{value:g}" if name in FACTORS else f"{value:g}"


def _index(name: str, options: tuple[Any, ...], value: Any) -> int:
    """The option index of ``value`` for knob ``name``."""
    if name == "optimizer":
        wanted: Any = str(value).strip().lower()
        found = [i for i, o in enumerate(options) if o == wanted]
    else:
        try:
            wanted = _option(name, value)
        except InvalidConfigError:
            wanted = None
        found = [i for i, o in enumerate(options) if wanted is not None and math.isclose(o, wanted)]
    if not found:
        listed = ", ".join(_token(name, o) for o in options)
        raise InvalidArchitectureError(
            f"Recipe setting {name}={value!r} is not an option; choose from {listed} (or make "
            f"the space with knobs={{{name!r}: [...]}} that include it)."
        )
    return found[0]


def _neutral(name: str, options: tuple[Any, ...]) -> int:
    """The option that leaves the evaluator's recipe unchanged, else the first."""
    neutral: Any = "sgd" if name == "optimizer" else (1.0 if name in FACTORS else 0.0)
    for i, option in enumerate(options):
        if option == neutral:
            return i
    return 0


def _numeric(name: str, value: float) -> float:
    """The scale a numeric option is normalised on: log for factors and for EMA's
    ``1 - decay`` (0 as off, below every decay), linear otherwise."""
    if name in FACTORS:
        return math.log(value)
    if name == "ema":
        return 0.0 if value == 0 else -math.log(1.0 - value)
    return float(value)
