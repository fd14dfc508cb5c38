"""Open a search from plain settings and run it with progress reported through callbacks.

:func:`open_search` and :func:`open_training_search` validate every setting, build the
evaluator, name the study when it is persisted without a name (:mod:`nasforge.naming`) and
create it or resume it; nothing is written before everything is checked. :func:`run_search`
optimizes it and tells a :class:`SearchProgress` what happens: the trials that finish and, for
an evaluator that trains, each epoch (through the evaluator's ``add_epoch_callback``).

Example:
    >>> opened = open_search(space="nb201", strategy="random", dataset="cifar10", seed=0,
    ...                      budget=5)
    >>> run_search(opened.study, opened.evaluator, budget=5)
    >>> len(opened.study.trials), opened.resumed
    (5, False)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError
from nasforge.naming import default_checkpoint_dir, default_study_name
from nasforge.runs.summary import best_trial

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.evaluators.base import Evaluator
    from nasforge.study import Study
    from nasforge.train.trainer import EpochReport
    from nasforge.trial import Trial

__all__ = [
    "OpenedSearch",
    "SearchProgress",
    "check_positive",
    "check_settings",
    "open_search",
    "open_training_search",
    "run_search",
]


def check_positive(label: str, value: float) -> None:
    """Refuse a limit that is not a positive number (``label`` names it in the message).

    Use :func:`check_settings` for a search's budget, trials and seed: it also refuses
    infinite and out-of-range values."""
    if not value > 0:
        raise InvalidConfigError(f"{label} must be a positive number, got {value!r}.")


def check_settings(
    *,
    seed: int,
    budget: float | None = None,
    trials: int | None = None,
    study_name: str | None = None,
) -> None:
    """Refuse a search's settings before anything is built or written: the seed (0 to
    2**63 - 1), the budget and trial count (finite, within
    :func:`nasforge.study._create.check_limits`'s bounds) and the study name (not empty,
    at most 255 characters, no control characters). Messages name the command-line options.

    Raises:
        InvalidConfigError: The first setting out of range.
    """
    from nasforge.storage import check_study_name
    from nasforge.study._create import check_limits, check_seed

    try:
        check_seed(seed)
    except InvalidConfigError as exc:
        raise InvalidConfigError(f"--{exc}") from None
    check_limits(n_trials=trials, budget=budget, prefix="--")
    if study_name is not None:
        try:
            check_study_name(study_name)
        except InvalidConfigError as exc:
            raise InvalidConfigError(f"--study: {exc}") from None


@dataclass(frozen=True)
class OpenedSearch:
    """A study ready to optimize, its evaluator, and whether it was resumed from storage."""

    study: Study
    evaluator: Evaluator
    resumed: bool


class SearchProgress:
    """What :func:`run_search` reports; override the hooks you need (each is a no-op).

    ``by_trials`` says what the search counts towards its limit: finished trials (``True``)
    or the cost spent (``False``: queries of a table, seconds of training).
    """

    def start(
        self,
        study: Study,
        *,
        by_trials: bool,
        total: float | None,
        completed: float,
        best: Trial | None,
        epochs: bool,
    ) -> None:
        """Before the first new trial: the limit, what the study has done towards it, its
        best trial so far, and whether :meth:`epoch` will be called."""

    def trial(self, study: Study, trial: Trial, *, advance: float, is_best: bool) -> None:
        """A trial finished; ``advance`` is what it counts towards the limit."""

    def epoch(self, study: Study, arch: Architecture, report: EpochReport) -> None:
        """An epoch of the trial being trained began (``report.epoch == 0``) or ended."""


def _exists(storage: str | None, study_name: str | None) -> bool:
    """Whether ``storage`` holds a study ``study_name``, looked up without creating anything
    (no database there yet: ``False``)."""
    from nasforge.errors import StorageError
    from nasforge.storage import get_storage

    if storage is None or study_name is None:
        return False
    try:
        store = get_storage(storage, create=False)
    except StorageError:
        return False  # no study database yet: create_study makes it, after its checks
    try:
        return store.get_study(study_name) is not None
    finally:
        store.close()


def _open(
    storage: str | None, study_name: str | None, evaluator: Evaluator, **settings: Any
) -> OpenedSearch:
    """Create or resume the study; the storage URL goes to :func:`nasforge.create_study`,
    which checks every setting before it opens (or creates) the database."""
    import nasforge

    existing = _exists(storage, study_name)
    study = nasforge.create_study(
        storage=storage, study_name=study_name, evaluator=evaluator, load_if_exists=True, **settings
    )
    return OpenedSearch(study, evaluator, existing)


def open_search(
    *,
    space: str,
    strategy: str,
    dataset: str,
    seed: int,
    budget: float | None = None,
    evaluator: str = "tabular",
    evaluator_params: Mapping[str, Any] | None = None,
    benchmark: str = "nb201",
    fidelity: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    strategy_params: Mapping[str, Any] | None = None,
    objectives: Sequence[str] = ("valid_acc:max",),
    dedupe: bool | None = None,
    constraints: Sequence[str] = (),
    stopping: str | None = None,
    stopping_params: Mapping[str, Any] | None = None,
    space_params: Mapping[str, Any] | None = None,
) -> OpenedSearch:
    """A search scored by a registered evaluator (default the tabular ``benchmark`` at
    ``fidelity``), created or resumed; for the training evaluator use
    :func:`open_training_search`.

    ``evaluator_params`` are the evaluator's keyword arguments; ``dataset`` is passed to it
    when it takes one. ``space_params`` build the space (a table of one's own: its path and
    columns). A persisted study without a name is named by
    :func:`~nasforge.naming.default_study_name` (with the dataset as the evaluator spells
    it), so the same settings resume it.

    Raises:
        InvalidConfigError: A budget that is not positive, a fidelity for an evaluator other
            than the tabular one.
        NasforgeError: Any bad name or setting, before anything is written.
    """
    from nasforge.evaluators.options import evaluator_from_options

    check_settings(seed=seed, budget=budget, study_name=study_name)
    params = dict(evaluator_params or {})
    if evaluator == "tabular":
        params = {"benchmark": benchmark, "fidelity": fidelity, **params}
    elif fidelity is not None:
        raise InvalidConfigError(
            f"--fidelity looks up a tabular benchmark; give the {evaluator!r} evaluator's own "
            "settings with --evaluator-param KEY=VALUE."
        )
    with_space = None if evaluator == "tabular" else space
    the_evaluator = evaluator_from_options(
        evaluator, dataset=dataset, params=params, space=with_space
    )
    if study_name is None and storage is not None:
        spelled = str((the_evaluator.spec() or {}).get("dataset", dataset))
        study_name = default_study_name(space, strategy, spelled, seed=seed, evaluator=evaluator)
    return _open(
        storage,
        study_name,
        the_evaluator,
        space=space,
        space_params=dict(space_params) if space_params else None,
        strategy=strategy,
        seed=seed,
        strategy_params=dict(strategy_params or {}),
        objectives=list(objectives),
        dedupe=dedupe,
        constraints=list(constraints),
        stopping=stopping,
        stopping_params=stopping_params,
    )


def open_training_search(
    *,
    space: str,
    strategy: str,
    dataset: str,
    seed: int,
    budget: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    strategy_params: Mapping[str, Any] | None = None,
    objectives: Sequence[str] = ("valid_acc:max",),
    dedupe: bool | None = None,
    constraints: Sequence[str] = (),
    stopping: str | None = None,
    stopping_params: Mapping[str, Any] | None = None,
    checkpoint_dir: str | Path | None = None,
    keep_checkpoints: bool = True,
    training: Mapping[str, Any] | None = None,
) -> OpenedSearch:
    """A search that trains each architecture, created or resumed.

    Args:
        checkpoint_dir: Where the trained weights go; ``None``: next to a SQLite database
            (:func:`~nasforge.naming.default_checkpoint_dir`), else nowhere.
        keep_checkpoints: ``False`` keeps no weights at all.
        training: Options of :func:`nasforge.evaluators.options.training_evaluator`
            (``data``, ``epochs``, ``channels``, ``cells``, ``lr``...).
        Others: as :func:`open_search`.

    Raises:
        NasforgeError: A bad setting or missing data, before anything is written (the
            evaluator is checked: data layout, network settings).
    """
    from nasforge.evaluators.options import training_evaluator

    check_settings(seed=seed, budget=budget, study_name=study_name)
    if study_name is None and storage is not None:
        study_name = default_study_name(space, strategy, dataset, seed=seed, evaluator="train")
    if not keep_checkpoints:
        checkpoint_dir = None
    elif checkpoint_dir is None:
        checkpoint_dir = default_checkpoint_dir(storage, study_name)
    evaluator = training_evaluator(
        space=space, dataset=dataset, seed=seed, checkpoint_dir=checkpoint_dir, **(training or {})
    )
    evaluator.check()  # type: ignore[attr-defined]  # data and settings now, not as failed trials
    return _open(
        storage,
        study_name,
        evaluator,
        space=space,
        strategy=strategy,
        seed=seed,
        strategy_params=dict(strategy_params or {}),
        objectives=list(objectives),
        dedupe=dedupe,
        constraints=list(constraints),
        stopping=stopping,
        stopping_params=stopping_params,
    )


def run_search(
    study: Study,
    evaluator: Evaluator,
    *,
    budget: float | None = None,
    n_trials: int | None = None,
    progress: SearchProgress | None = None,
    callbacks: Sequence[Callable[[Study, Trial], None]] = (),
) -> None:
    """``study.optimize(evaluator, budget=, n_trials=, callbacks=)``, telling ``progress``
    about it.

    The progress counts trials when the search is limited by trials alone or (for an
    evaluator that trains) when a trial limit is given; otherwise the cost spent.
    """
    limits: dict[str, Any] = {"budget": budget, "n_trials": n_trials}
    if progress is None:
        study.optimize(evaluator, callbacks=callbacks, **limits)
        return
    add_epoch_callback = getattr(evaluator, "add_epoch_callback", None)
    trains = add_epoch_callback is not None
    by_trials = n_trials is not None if trains else budget is None
    total = n_trials if by_trials else budget
    done = study.n_finished if by_trials else study.spent
    progress.start(
        study,
        by_trials=by_trials,
        total=total,
        completed=min(done, total or 0),
        best=best_trial(study),
        epochs=trains,
    )

    def on_trial(study: Study, trial: Trial) -> None:
        advance = 1 if by_trials else trial.cost
        progress.trial(study, trial, advance=advance, is_best=trial is best_trial(study))

    def on_epoch(arch: Architecture, report: EpochReport) -> None:
        progress.epoch(study, arch, report)

    if add_epoch_callback is not None:
        add_epoch_callback(on_epoch)
    try:
        study.optimize(evaluator, callbacks=[on_trial, *callbacks], **limits)
    finally:
        if add_epoch_callback is not None:
            evaluator.remove_epoch_callback(on_epoch)  # type: ignore[attr-defined]
