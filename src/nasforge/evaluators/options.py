"""Evaluators built from plain options, as ``nasforge search --evaluator train`` gives them.

The command line names a network's width and depth ``channels`` and ``cells`` for every
space, the space's preset ``preset`` (``--preset reduced``), other settings of its network
``build`` (``--build width_mult=0.5``) and the recipe's fields one by one;
:func:`training_evaluator` turns those options into the training evaluator's keyword arguments
(the space's own depth keyword, a recipe with the changes applied) and checks what only makes
sense together (data and dataset). :func:`function_params` adds ``--fn package.module:function``
to the keywords of the ``function`` evaluator (your own training function).

Example:
    >>> ev = training_evaluator(space="nb201", dataset="synthetic", seed=0, epochs=1,
    ...                         channels=4, cells=1, lr=0.05)
    >>> (ev.channels, ev.depth, ev.recipe.epochs, ev.recipe.lr)
    (4, 1, 1, 0.05)
    >>> ev = training_evaluator(space="mobilenet", dataset="synthetic", seed=0, epochs=1,
    ...                         preset="reduced", build={"width_mult": 0.5}, lr=0.05)
    >>> (ev.preset, ev.build, ev.resolution, ev.recipe.batch_size, ev.recipe.lr)
    ('reduced', {'width_mult': 0.5}, 32, 64, 0.05)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError

if TYPE_CHECKING:
    from nasforge.evaluators.base import Evaluator
    from nasforge.spaces.base import SearchSpace

__all__ = [
    "RECIPE_OPTIONS",
    "evaluator_from_options",
    "function_params",
    "scale_keys",
    "training_evaluator",
]

#: Recipe changes by option name: the option, then the :class:`~nasforge.train.Recipe` field.
RECIPE_OPTIONS: Mapping[str, str] = {
    "optimizer": "optimizer",
    "lr": "lr",
    "batch_size": "batch_size",
    "weight_decay": "weight_decay",
    "warmup": "warmup_epochs",
    "label_smoothing": "label_smoothing",
    "cutout": "cutout",
    "grad_clip": "grad_clip",
}


def scale_keys(space: SearchSpace) -> tuple[str, str | None] | None:
    """The build keywords of ``space``'s width and depth (``("channels", "layers")``...), or
    ``None`` when its networks have no such settings."""
    keys = space.scale_keys
    if keys is None:
        return None
    return (str(keys[0]), None if keys[1] is None else str(keys[1]))


def evaluator_from_options(
    name: str,
    *,
    dataset: str | None = None,
    params: Mapping[str, Any] | None = None,
    space: str | None = None,
) -> Evaluator:
    """The evaluator registered as ``name`` (nasforge's own or a plugin's) built with
    ``params``; ``dataset`` and ``space`` (the searched space's name) are passed too when the
    evaluator takes that keyword and ``params`` does not set it.

    Raises:
        UnknownNameError: No evaluator of that name (the closest is named).
        InvalidConfigError: ``params`` the evaluator does not take.
    """
    import inspect

    from nasforge import evaluators

    kwargs = dict(params or {})
    factory = evaluators._REGISTRY.get(name)
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a factory without a signature: pass what was given
        parameters = {}  # type: ignore[assignment]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    if dataset is not None and "dataset" not in kwargs and ("dataset" in parameters):
        kwargs["dataset"] = dataset
    if space is not None and "space" not in kwargs and ("space" in parameters):
        kwargs["space"] = space
    unknown = sorted(k for k in kwargs if k not in parameters) if not takes_any else []
    if parameters and unknown:
        known = sorted(p for p in parameters if p not in ("self", "args", "kwargs"))
        raise InvalidConfigError(
            f"The evaluator {name!r} takes no parameter(s) {unknown}; it takes {known}."
        )
    return evaluators.create(name, **kwargs)


def function_params(
    evaluator: str, fn: str | None, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The keywords of evaluator ``evaluator`` with ``--fn`` added: the import path of the
    ``function`` evaluator's function (recorded with the study, so that every worker imports
    it). Its ``metrics`` may be given as text, ``"valid_acc:max,latency_ms:min"``.

    Example:
        >>> function_params("function", "mypkg.train:score", {"metrics": "loss:min"})
        {'fn': 'mypkg.train:score', 'metrics': {'loss': 'min'}}

    Raises:
        InvalidConfigError: ``--fn`` with another evaluator, or ``function`` without one.
    """
    out = dict(params or {})
    if evaluator != "function":
        if fn is not None:
            raise InvalidConfigError(
                f"--fn names the function of --evaluator function, not of --evaluator "
                f"{evaluator}; add --evaluator function."
            )
        return out
    if fn is not None:
        if "fn" in out:
            raise InvalidConfigError("Give the function once: --fn or --evaluator-param fn=.")
        out = {"fn": fn, **out}
    if "fn" not in out:
        raise InvalidConfigError(
            "--evaluator function needs --fn package.module:function, a function "
            "fn(model, context) -> metrics importable by every worker."
        )
    metrics = out.get("metrics")
    if isinstance(metrics, str):
        pairs = [item.strip().rpartition(":") for item in metrics.split(",") if item.strip()]
        out["metrics"] = {
            name or direction: direction if name else "max" for name, _, direction in pairs
        }
    return out


def training_evaluator(
    *,
    space: str,
    dataset: str,
    seed: int,
    data: str | Path | None = None,
    preset: str | None = None,
    recipe: str | None = None,
    epochs: int | None = None,
    channels: int | None = None,
    cells: int | None = None,
    build: Mapping[str, Any] | None = None,
    resolution: int | None = None,
    data_fraction: float | None = None,
    valid_size: int | None = None,
    eval_limit: int | None = None,
    threads: int | None = None,
    device: str | None = None,
    cache_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    **recipe_changes: Any,
) -> Evaluator:
    """The ``train`` evaluator these options describe.

    Args:
        space, dataset, seed: As :class:`~nasforge.evaluators.training.TrainingEvaluator`.
        data: The data's path; must be left out for ``dataset="synthetic"``.
        preset: The space's preset to train (default ``"paper"``); its data settings are the
            defaults of ``resolution``, ``data_fraction`` and ``batch_size``.
        recipe: Name of the base recipe (a space's; default ``space``'s own).
        cells: The network's depth, in the space's own unit (NB201 cells per stage, DARTS
            layers).
        build: Other settings of the space's ``build`` (``{"width_mult": 0.5}``).
        recipe_changes: Fields of :data:`RECIPE_OPTIONS` (``lr=``, ``warmup=``...) that change
            the base recipe; ``None`` values change nothing.
        Others: as the training evaluator's keywords; ``None`` keeps its default.

    Raises:
        InvalidConfigError: Data given with the synthetic dataset or missing with another,
            a width or depth for a space without one, an unknown recipe change.
        UnknownNameError: An unknown recipe, dataset, space or preset.
    """
    import nasforge
    from nasforge.evaluators._presets import DEFAULT_PRESET, preset_recipe, training_preset

    unknown = sorted(set(recipe_changes) - set(RECIPE_OPTIONS))
    if unknown:
        raise InvalidConfigError(
            f"Unknown recipe option(s) {unknown}; choose from {sorted(RECIPE_OPTIONS)}."
        )
    space_obj = nasforge.spaces.create(space)
    chosen = training_preset(space_obj, DEFAULT_PRESET if preset is None else preset)
    base = preset_recipe(space_obj, recipe or None, chosen)  # the preset's batch size
    changes = {
        RECIPE_OPTIONS[key]: value for key, value in recipe_changes.items() if value is not None
    }
    kwargs: dict[str, Any] = {
        "dataset": dataset,
        "space": space,
        "recipe": base.replace(**changes) if changes else base,
        "seed": seed,
    }
    if preset is not None:
        kwargs["preset"] = preset
    if build:
        kwargs["build"] = dict(build)
    if channels is not None and chosen.width_key is None:
        raise InvalidConfigError(
            f"--channels is not a setting of space {space!r}: {chosen.no_width_hint(space)} "
            "(--preset, --build KEY=VALUE)."
        )
    given = {
        "epochs": epochs,
        "channels": channels,
        "resolution": resolution,
        "data_fraction": data_fraction,
        "valid_size": valid_size,
        "eval_limit": eval_limit,
        "threads": threads,
        "device": device,
        "cache_dir": cache_dir,
    }
    kwargs.update({key: value for key, value in given.items() if value is not None})
    if cells is not None:
        keys = scale_keys(space_obj)
        if keys is None or keys[1] is None:
            hint = f": {chosen.no_width_hint(space)}" if chosen.width_key is None else ""
            raise InvalidConfigError(f"--cells is not a setting of space {space!r}{hint}.")
        kwargs[keys[1]] = cells
    kwargs["checkpoint_dir"] = checkpoint_dir
    if dataset == "synthetic":
        if data is not None:
            raise InvalidConfigError("--data is not used with --dataset synthetic; leave it out.")
    elif data is None:
        raise InvalidConfigError(
            f"--evaluator train needs --data PATH: the {dataset} data (CIFAR-10's python "
            "release folder, an image-folder tree train/<class>/, test/<class>/, or a .tar.gz "
            "of either); nasforge never downloads data."
        )
    else:
        kwargs["data"] = data
    return nasforge.evaluators.create("train", **kwargs)
