"""A one-shot search from plain settings: the supernet settings, the study's name and
checkpoint folder, the data, and a summary of what the search derived.

The one-shot methods themselves live in :mod:`nasforge.oneshot`; this module only turns the
options a user types into its arguments and its result into a JSON-ready summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError
from nasforge.naming import default_checkpoint_dir, default_study_name
from nasforge.runs.summary import search_summary, trial_summary

if TYPE_CHECKING:
    from nasforge.evaluators.base import Evaluator
    from nasforge.study import Study
    from nasforge.trial import Trial

__all__ = ["OneShotRun", "require_data", "run_oneshot_search", "supernet_settings"]


def require_data(data: Any, who: str) -> None:
    """Refuse a one-shot run without data (``who`` names the method or methods)."""
    if data is None:
        raise InvalidConfigError(
            f"{who} a supernet: give --data PATH (CIFAR-10's python release folder, an "
            "image-folder tree or a .tar.gz of either); nasforge never downloads data."
        )


def supernet_settings(
    space: str,
    *,
    preset: str | None = None,
    channels: int | None = None,
    cells: int | None = None,
    resolution: int | None = None,
    data_fraction: float | None = None,
    batch_size: int | None = None,
) -> Any:
    """:class:`~nasforge.oneshot.SupernetSettings` with the given values; what is not given
    is the setting of the space's preset ``preset`` (default ``"search"``, the published
    search-time setting: all the data, the data's resolution where the preset names none).
    The mobile spaces' presets also set the supernet's width and strides (``options``):
    ``preset="reduced"`` searches their CIFAR-size network on a CPU."""
    from nasforge.oneshot import SupernetSettings

    base = SupernetSettings.preset(space, "search" if preset is None else preset)
    return SupernetSettings(
        channels=channels or base.channels,
        cells=cells or base.cells,
        resolution=resolution or base.resolution,
        data_fraction=data_fraction or (1.0 if preset is None else base.data_fraction),
        batch_size=batch_size or base.batch_size,
        options=base.options,
    )


@dataclass(frozen=True)
class OneShotRun:
    """A finished one-shot search: the method's result, the evaluator of its derived
    architectures, and the summary (that of a search, with a ``oneshot`` part)."""

    result: Any
    evaluator: Evaluator
    summary: dict[str, Any]

    @property
    def study(self) -> Study:
        return self.result.study  # type: ignore[no-any-return]


def run_oneshot_search(
    method: str,
    *,
    space: str,
    dataset: str,
    seed: int,
    data: str | Path | None,
    settings: Any = None,
    params: Mapping[str, Any] | None = None,
    evaluator: str = "tabular",
    evaluator_params: Mapping[str, Any] | None = None,
    objectives: Sequence[str] = ("valid_acc:max",),
    epochs: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    checkpoint_dir: str | Path | None = None,
    keep_checkpoints: bool = True,
    cache_dir: str | Path | None = None,
    device: str = "auto",
    threads: int | None = None,
    callbacks: Sequence[Callable[[Study, Trial], None]] = (),
) -> OneShotRun:
    """Train ``method``'s supernet on ``data`` and score each epoch's derived architecture
    (one trial per epoch): looked up in the table registered under ``space``'s name
    (``evaluator="tabular"``), or by the evaluator registered as ``evaluator`` built with
    ``evaluator_params`` (``"train"`` trains each derived network on the same data; a
    plugin's, for a space without a table).

    ``data`` is a path of images (CIFAR-10's python release, an image-folder tree), or the
    import path ``"package.module:attribute"`` of a user's ``Dataset``, ``DataLoader`` or
    :class:`~nasforge.train.UserData`; ``None`` with ``dataset="synthetic"`` trains on
    :class:`~nasforge.train.SyntheticImages`. For a space without a table and the default
    ``evaluator="tabular"``, the derived networks of a user's data are trained briefly on it
    (:func:`nasforge.oneshot._data.user_evaluator`).

    ``settings`` is a :class:`~nasforge.oneshot.SupernetSettings`, or a mapping of
    :func:`supernet_settings` keywords (``None``: the space's search-time setting).
    A persisted study without a name is named by :func:`~nasforge.naming.default_study_name`;
    its checkpoints go next to a SQLite database unless ``checkpoint_dir`` is given or
    ``keep_checkpoints`` is ``False``.

    Raises:
        NasforgeError: An unknown method, a space it cannot search, missing data.
    """
    from nasforge import oneshot, tabular
    from nasforge.naming import check_device
    from nasforge.storage import check_study_name
    from nasforge.study._create import check_seed
    from nasforge.train import SyntheticImages, load_cifar10
    from nasforge.train._references import is_reference, load_reference

    check_seed(seed)
    if study_name is not None:
        check_study_name(study_name)
    device = check_device(device)
    oneshot.get(method)
    oneshot.base.check_space(space)
    if settings is None or isinstance(settings, Mapping):  # a bad preset before missing data
        settings = supernet_settings(space, **(settings or {}))
    if dataset != "synthetic":
        require_data(data, f"The one-shot method {method!r} trains")
    reference = str(data) if data is not None and is_reference(str(data)) else None
    params_of = dict(evaluator_params or {})
    if evaluator == "tabular":
        params_of = {"benchmark": space, **params_of}
    elif evaluator == "train":  # trains each derived architecture on the search's data
        params_of = {"space": space, **params_of}
        if data is not None:
            params_of.setdefault("data", reference or str(data))
    from nasforge.evaluators.options import evaluator_from_options

    scorer: Evaluator | None = None
    if evaluator != "tabular" or space in tabular.names():
        scorer = evaluator_from_options(evaluator, dataset=dataset, params=params_of)
    if study_name is None and storage is not None:
        study_name = default_study_name(space, method, dataset, seed=seed)
    if not keep_checkpoints:
        checkpoint_dir = None
    elif checkpoint_dir is None:
        checkpoint_dir = default_checkpoint_dir(storage, study_name)
    images: Any
    if reference is not None:  # a user's Dataset, DataLoader or UserData by import path
        images = load_reference(reference, "data")
    elif data is None:  # --dataset synthetic
        images = SyntheticImages().load()
    else:
        images = load_cifar10(data, cache_dir=cache_dir)
    if scorer is None:  # a space without a table: trains each derived network on user data
        from nasforge.oneshot._data import default_evaluator

        scorer = default_evaluator(space, images, settings, threads)
    started = time.perf_counter()
    result = oneshot.search(
        method,
        images,
        space=space,
        params=dict(params or {}),
        settings=settings,
        epochs=epochs,
        seed=seed,
        evaluator=scorer,
        objectives=list(objectives),
        storage=storage,
        study_name=study_name,
        checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
        device=device,
        threads=threads,
        callbacks=list(callbacks),
    )
    study = result.study
    summary = search_summary(
        study, scorer, budget=None, seconds=time.perf_counter() - started, storage=storage
    )
    last = study.trials[-1] if study.trials else None
    summary["oneshot"] = {
        "method": method,
        "settings": settings.to_dict(),
        "epochs": result.epochs_done,
        "failed": result.failed,
        "checkpoint": None if result.checkpoint is None else str(result.checkpoint),
        "final": None if last is None else trial_summary(study, last),
    }
    return OneShotRun(result, scorer, summary)
