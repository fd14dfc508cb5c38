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

__all__ = ["WorkerReport", "join_study", "make_executor", "run_worker"]

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


def join_study(
    storage: str,
    study_name: str,
    *,
    create: Mapping[str, Any] | None = None,
    expect: Mapping[str, Any] | None = None,
) -> Any:
    """Open a shared study, creating it first when absent and ``create`` is given.

    Args:
        storage: The storage URL.
        study_name: The study's name.
        create: Settings for :func:`nasforge.create_study` (``strategy``, ``space``,
            ``evaluator``...) used when the study does not exist yet.
        expect: Settings the caller asked for (``{"strategy": "random"}``); a study stored
            with other values is refused.

    Raises:
        StudyConflictError: The stored study has other settings than ``expect``.
        UnknownNameError: No such study and nothing to create it from.
    """
    import nasforge
    from nasforge.storage import get_storage

    store = get_storage(storage)
    record = store.get_study(study_name)
    if record is None and create:
        return nasforge.create_study(
            storage=store, study_name=study_name, load_if_exists=True, **create
        )
    if record is None:
        names = [r.name for r in store.list_studies()]
        if not names:
            raise StorageError(
                f"No study named {study_name!r} in {_display(store)}; the first worker creates "
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
    stored = dict(study.record.options.get("limits") or {})
    given = {k: v for k, v in (("n_trials", n_trials), ("budget", budget)) if v is not None}
    for label, value in given.items():
        if isinstance(value, bool) or not value > 0:
            raise InvalidConfigError(f"{label} must be a positive number, got {value!r}.")
    if given and given != stored:
        study.storage.update_options(study.record.study_id, {"limits": given})
    limits = given or stored
    if not limits:
        raise InvalidConfigError(
            f"Study {study.name!r} has no stored limit; give the worker --trials N or "
            "--budget B (stored with the study for the workers that join later)."
        )
    if heartbeat_grace is not None:
        if not heartbeat_grace > 0:
            raise InvalidConfigError(
                f"heartbeat_grace must be a positive number of seconds, got {heartbeat_grace!r}."
            )
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
