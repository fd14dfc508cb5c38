"""One worker of a shared study: what ``nasforge worker`` runs.

Start :func:`run_worker` (or ``nasforge worker --storage URL --study NAME``) any number of
times, on any machine that reaches the database. Each worker replays the stored trials,
reserves the strategy's next proposal under the study's lock (so no two workers evaluate the
same proposal), records the result, and stops when the study's limit is reached. The first
worker may create the study and store its limits; later ones join with the stored settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nasforge.errors import InvalidConfigError, StorageError, StudyConflictError, UnknownNameError
from nasforge.execution.base import Executor

__all__ = ["WorkerReport", "check_worker_limits", "join_study", "make_executor", "run_worker"]

logger = logging.getLogger(__name__)

EXECUTORS = ("inprocess", "pool", "ray")


@dataclass
class WorkerReport:
    """What one worker did."""

    study: str
    worker: str
    trials: int
    study_trials: int
    study_finished: int
    seconds: float
    executor: str
    limits: dict[str, Any] = field(default_factory=dict)
    startup_seconds: float = 0.0


def make_executor(
    name: str,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
) -> Executor:
    """An executor by name: ``inprocess``, ``pool`` (local processes) or ``ray``."""
    if name == "inprocess":
        if workers not in (None, 1):
            raise InvalidConfigError(
                "--executor inprocess evaluates one trial at a time; use --executor pool or "
                "ray for --workers above 1."
            )
        from nasforge.execution.inprocess import InProcessExecutor

        return InProcessExecutor()
    if name == "pool":
        from nasforge.execution.pool import ProcessPool

        return ProcessPool(workers)
    if name == "ray":
        from nasforge.execution.ray_executor import RayExecutor

        return RayExecutor(
            ray_address,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            max_workers=workers,
        )
    raise UnknownNameError("executor", name, EXECUTORS)


def check_worker_limits(
    n_trials: int | None = None,
    budget: float | None = None,
    heartbeat_grace: float | None = None,
    *,
    prefix: str = "",
) -> None:
    """Refuse a worker's limits before anything is opened or written: ``n_trials`` and
    ``budget`` as :func:`nasforge.study._create.check_limits` (finite, within bounds),
    ``heartbeat_grace`` a finite number of seconds above 0.

    Raises:
        InvalidConfigError: A value out of range.
    """
    from nasforge.study._create import check_limits

    check_limits(n_trials=n_trials, budget=budget, prefix=prefix)
    if heartbeat_grace is not None:
        try:
            check_limits(timeout=heartbeat_grace)
        except InvalidConfigError:
            raise InvalidConfigError(
                f"{prefix}{'heartbeat-grace' if prefix else 'heartbeat_grace'} must be a finite "
                f"number of seconds above 0, got {heartbeat_grace!r}."
            ) from None


def join_study(
    storage: str,
    study_name: str,
    *,
    create: Mapping[str, Any] | None = None,
    expect: Mapping[str, Any] | None = None,
    limits: Mapping[str, Any] | None = None,
) -> Any:
    """Open a shared study, creating it first when absent and ``create`` is given.

    Nothing is written unless the study is created, and it is created only after every
    setting is checked: a refused worker leaves no study (nor database) behind.

    Args:
        storage: The storage URL.
        study_name: The study's name.
        create: Settings for :func:`nasforge.create_study` (``strategy``, ``space``,
            ``evaluator``...) used when the study does not exist yet.
        expect: Settings the caller asked for (``{"strategy": "random"}``); a study stored
            with other values is refused.
        limits: The limits this worker was given (``n_trials``, ``budget``, ``None`` for
            none); when given, a study is only created with one (it is stored for the
            workers that join later), so that a worker without one leaves nothing behind.

    Raises:
        StudyConflictError: The stored study has other settings than ``expect``.
        UnknownNameError: No such study and nothing to create it from.
        StorageError: No study database there and nothing to create a study from.
        InvalidConfigError: A study to create while ``limits`` holds none.
    """
    import nasforge
    from nasforge.storage import check_study_name, get_storage

    check_study_name(study_name)
    try:
        store = get_storage(storage, create=False)
    except StorageError:
        if not create:
            raise
        store = None  # no study database yet: create_study makes it after its checks
    record = None if store is None else store.get_study(study_name)
    if record is None and create:
        if limits is not None and not any(v is not None for v in limits.values()):
            raise InvalidConfigError(
                f"Study {study_name!r} does not exist yet; the worker that creates it needs a "
                "limit: give --trials N or --budget B (stored for the workers that join later)."
            )
        if store is not None:
            store.close()
        return nasforge.create_study(
            storage=storage, study_name=study_name, load_if_exists=True, **create
        )
    assert store is not None
    if record is None:
        names = [r.name for r in store.list_studies()]
        shown = _display(store)
        store.close()
        if not names:
            raise StorageError(
                f"No study named {study_name!r} in {shown}; the first worker creates "
                "it when given --strategy (and --space, --dataset, --trials or --budget)."
            )
        raise UnknownNameError("study", study_name, names)
    differ = []
    for key, wanted in (expect or {}).items():
        stored = getattr(record, key)
        if wanted is not None and stored != wanted:
            differ.append(f"{key}: stored {stored!r}, this worker asks for {wanted!r}")
    if differ:
        raise StudyConflictError(
            f"Study {study_name!r} was created with other settings ({'; '.join(differ)}); a "
            "worker joins a study with its stored settings. Leave the option out, or give a "
            "new --study name."
        )
    return nasforge.load_study(study_name, store)


def run_worker(
    study: Any,
    *,
    n_trials: int | None = None,
    budget: float | None = None,
    executor: Executor | None = None,
    executor_name: str = "inprocess",
    heartbeat_grace: float | None = None,
    callbacks: tuple[Any, ...] = (),
) -> WorkerReport:
    """Work on ``study`` until its limits are reached.

    Limits given here are stored with the study for the workers that join later; without
    them the stored ones apply.

    Raises:
        InvalidConfigError: No limit given and none stored.
        StudyDeletedError: The study was deleted while the worker ran.
    """
    from nasforge.study._create import check_limits

    check_worker_limits(n_trials, budget, heartbeat_grace)
    stored = dict(study.record.options.get("limits") or {})
    given = {k: v for k, v in (("n_trials", n_trials), ("budget", budget)) if v is not None}
    limits = given or stored
    if not limits:
        raise InvalidConfigError(
            f"Study {study.name!r} has no stored limit; give the worker --trials N or "
            "--budget B (stored with the study for the workers that join later)."
        )
    try:
        check_limits(n_trials=limits.get("n_trials"), budget=limits.get("budget"))
    except InvalidConfigError as exc:
        raise InvalidConfigError(
            f"Study {study.name!r} stores a limit that is out of range ({exc}); give this "
            "worker --trials N or --budget B to replace it."
        ) from None
    if given and given != stored:
        study.storage.update_options(study.record.study_id, {"limits": given})
    if heartbeat_grace is not None:
        study.heartbeat_grace = float(heartbeat_grace)
        study.heartbeat_interval = min(study.heartbeat_interval, heartbeat_grace / 4)
    before = {t.number for t in study.trials}
    started = time.perf_counter()
    study.optimize(
        n_trials=limits.get("n_trials"),
        budget=limits.get("budget"),
        executor=executor,
        callbacks=callbacks,
    )
    mine = [t for t in study.trials if t.number not in before and t.worker == study._worker]
    return WorkerReport(
        study=study.name,
        worker=study._worker,
        trials=sum(1 for t in mine if t.state.finished),
        study_trials=len(study.trials),
        study_finished=study.n_finished,
        seconds=time.perf_counter() - started,
        executor=executor_name,
        limits=dict(limits),
        startup_seconds=float(getattr(executor, "startup_seconds", 0.0)),
    )


def _display(store: Any) -> str:
    return str(getattr(store, "url", "the storage"))
