"""MLflow: each trial as a child run of the study's run."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError, MissingDependencyError
from nasforge.tracking._base import (
    INSTALL,
    Tracker,
    best_value,
    hparams,
    masked,
    millis,
    storage_label,
    study_key,
)
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from nasforge.study import Study

__all__ = ["MLflowCallback"]


class MLflowCallback(Tracker):
    """Log each trial as an MLflow run (``mlflow ui`` or an MLflow server shows them).

    The experiment is ``experiment`` (default: ``MLFLOW_EXPERIMENT_NAME`` when set, else
    the study's name). With ``nested`` (the default) the study is one parent run and each
    trial one child run under it; the parent holds the study's settings as parameters and,
    at step = trial number, ``best_<metric>`` (the best value so far of the first
    objective), ``spent`` (the cost spent so far) and ``finished`` (the finished trials).
    The parent is found again by its tags (``nasforge.study`` and ``nasforge.study_key``, a
    hash of the study's name and creation time), so a resumed study and every worker of a
    shared study log under the same parent.

    A trial's run, ``trial-N``, has the architecture's decisions as parameters (for spaces
    without decisions, the architecture string alone) with ``arch``, ``strategy``, ``space``,
    ``trial`` and ``state``; all its metrics, ``cost`` and ``seconds`` as metrics (a name
    MLflow refuses is rewritten: ``latency_ms[pixel3]`` becomes ``latency_ms/pixel3``, other
    characters ``_``); tags ``nasforge.state`` and ``nasforge.fail_reason``; and the trial's
    start and end times. Its status is FINISHED for a COMPLETE trial, FAILED for a failed one
    and KILLED for one the stopping rule ended early.

    :meth:`close` (or the end of a ``with`` block, or of ``nasforge search`` and ``nasforge
    worker``) marks the parent FINISHED; logging to it again sets it RUNNING.

    Only the ``MlflowClient`` API is used, with explicit run ids: nothing touches MLflow's
    active run, so the callback runs beside a user's own MLflow runs and in threads.

    Args:
        tracking_uri: Where MLflow keeps runs: ``sqlite:///mlflow.db``, ``http://host:5000``,
            ... (default MLflow's own: ``MLFLOW_TRACKING_URI``, else its default store).
        experiment: The experiment's name (made when missing; default
            ``MLFLOW_EXPERIMENT_NAME``, else the study's name).
        nested: Trials as child runs of one run per study; ``False`` logs trials only.

    Raises:
        MissingDependencyError: mlflow is not installed.
        InvalidConfigError: MLflow does not support ``tracking_uri``.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        *,
        nested: bool = True,
    ) -> None:
        super().__init__()
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise MissingDependencyError(
                f"Tracking to MLflow needs the mlflow package: {INSTALL} "
                "(or pip install mlflow-skinny)."
            ) from None
        self.tracking_uri = tracking_uri
        self._client_class = MlflowClient
        self._client: Any = self._connect()
        self.experiment = experiment
        self.nested = nested
        self._experiments: dict[str, str] = {}
        self._parents: dict[str, str] = {}

    def _connect(self) -> Any:
        """An ``MlflowClient``; ``None`` when the store cannot be opened now (the first trial
        tries again, and a failure there is the tracker's warning).

        A URI whose scheme MLflow does not know is refused here. Opening a new store runs
        MLflow's schema migrations, and two workers that run them at once trip over each
        other: a SQLite store is opened under a lock (:meth:`_open`), and a failure is retried
        twice.
        """
        from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

        for attempt in range(3):
            try:
                return self._open()
            except UnsupportedModelRegistryStoreURIException:
                scheme = (self.tracking_uri or "").partition(":")[0]
                raise InvalidConfigError(
                    f"MLflow cannot track to {masked(self.tracking_uri or '')!r}: it has no "
                    f"store for the scheme {scheme!r}. Give e.g. mlflow:sqlite:///mlflow.db or "
                    "mlflow:http://HOST:5000."
                ) from None
            except Exception:
                if attempt < 2:
                    time.sleep(0.5 * 2**attempt)
        return None

    def _open(self) -> Any:
        """``MlflowClient(tracking_uri)``; for a SQLite store, under an exclusive lock on the
        database's file (made empty when missing, as SQLite would), so that workers started
        at once run MLflow's schema migrations one after the other: the later ones wait and
        then find the tables made (without ``fcntl``, on Windows, the retries alone)."""
        try:
            import fcntl
        except ImportError:
            return self._client_class(self.tracking_uri)
        path = _sqlite_file(self.tracking_uri)
        if path is None:
            return self._client_class(self.tracking_uri)
        with open(path, "ab") as handle:  # closing it releases the lock
            fcntl.flock(handle, fcntl.LOCK_EX)
            return self._client_class(self.tracking_uri)

    def _secrets(self) -> tuple[str, ...]:
        from urllib.parse import unquote, urlsplit

        try:
            password = urlsplit(self.tracking_uri or "").password
        except ValueError:
            return ()
        return () if not password else (password, unquote(password))

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` the callback logs with."""
        if self._client is None:
            self._client = self._open()
        return self._client

    @property
    def description(self) -> str:
        where = self.tracking_uri or "its default tracking URI"
        return f"MLflow at {masked(where)}"

    def _close(self) -> None:
        """Mark the parent runs used FINISHED (a resume sets them RUNNING again)."""
        parents, self._parents = list(self._parents.values()), {}
        for parent in parents:
            self.client.set_terminated(parent, "FINISHED")

    def parent_run_id(self, study: Study) -> str:
        """The id of the study's parent run, found by its tags or made."""
        with self._lock:
            return self._parent(study, self._experiment_id(study))

    def _log(self, study: Study, trial: Trial) -> None:
        from mlflow.entities import Metric, Param

        experiment_id = self._experiment_id(study)
        parent = self._parent(study, experiment_id) if self.nested else None
        tags = {
            "nasforge.study": study.name,
            "nasforge.trial": str(trial.number),
            "nasforge.state": trial.state.value,
        }
        if trial.fail_reason:
            tags["nasforge.fail_reason"] = trial.fail_reason
        if trial.duplicate_of is not None:
            tags["nasforge.duplicate_of"] = str(trial.duplicate_of)
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(
            experiment_id,
            start_time=millis(trial.started_at),
            tags=tags,
            run_name=f"trial-{trial.number}",
        )
        run_id = run.info.run_id
        at = millis(trial.finished_at)
        params = {
            "arch": str(trial.arch),
            "strategy": study.strategy_name,
            "space": study.space.name,
            "trial": str(trial.number),
            "state": trial.state.value,
        }
        params.update({_mlflow_key(k): str(v) for k, v in hparams(study.space, trial).items()})
        values = {_mlflow_key(k): float(v) for k, v in trial.metrics.items()}
        values.setdefault("cost", float(trial.cost))
        values.setdefault("seconds", float(trial.seconds))
        if parent is None:
            best = best_value(study)
            if best is not None:
                values.setdefault(f"best_{_mlflow_key(study.objectives[0].metric)}", best)
        metrics = [Metric(k, v, at, 0) for k, v in values.items()]
        self._batch(run_id, metrics, [Param(k, v[:6000]) for k, v in params.items()], [])
        status = {TrialState.FAILED: "FAILED", TrialState.STOPPED: "KILLED"}
        self.client.set_terminated(run_id, status.get(trial.state, "FINISHED"), end_time=at)
        if parent is not None:
            steps = [Metric("spent", float(study.spent), at, trial.number)]
            steps.append(Metric("finished", float(study.n_finished), at, trial.number))
            best = best_value(study)
            if best is not None:
                key = f"best_{_mlflow_key(study.objectives[0].metric)}"
                steps.append(Metric(key, best, at, trial.number))
            self.client.log_batch(parent, metrics=steps)

    def _batch(self, run_id: str, metrics: list[Any], params: list[Any], tags: list[Any]) -> None:
        """``log_batch`` in pieces within MLflow's limits (100 params, 1000 entities)."""
        while params or metrics or tags:
            part_params, params = params[:100], params[100:]
            part_tags, tags = tags[:100], tags[100:]
            room = 1000 - len(part_params) - len(part_tags)
            part_metrics, metrics = metrics[:room], metrics[room:]
            self.client.log_batch(run_id, metrics=part_metrics, params=part_params, tags=part_tags)

    def _experiment_id(self, study: Study) -> str:
        name = self.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or study.name
        known = self._experiments.get(name)
        if known is not None:
            return known
        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                made = self.client.create_experiment(name, tags={"nasforge.study": study.name})
            except Exception:  # another worker made it first
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
            else:
                self._experiments[name] = str(made)
                return str(made)
        if found.lifecycle_stage == "deleted":
            raise InvalidConfigError(
                f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments "
                f"restore --experiment-id {found.experiment_id}) or track to another experiment."
            )
        self._experiments[name] = str(found.experiment_id)
        return str(found.experiment_id)

    def _parent(self, study: Study, experiment_id: str) -> str:
        key = study_key(study)
        known = self._parents.get(key)
        if known is not None:
            return known
        query = f"tags.`nasforge.study_key` = '{key}' and tags.`nasforge.role` = 'study'"
        runs = self._find(experiment_id, query)
        if not runs:
            record = study.record
            made = self.client.create_run(
                experiment_id,
                run_name=study.name,
                tags={
                    "nasforge.study": study.name,
                    "nasforge.study_key": key,
                    "nasforge.role": "study",
                    "nasforge.storage": storage_label(study),
                },
            )
            params = {
                "space": record.space,
                "strategy": record.strategy,
                "seed": str(record.seed),
                "objectives": ",".join(record.objectives),
                "strategy_params": json.dumps(record.strategy_params, sort_keys=True, default=str),
                "space_params": json.dumps(record.space_params, sort_keys=True, default=str),
                "evaluator": json.dumps(record.evaluator, sort_keys=True, default=str),
            }
            from mlflow.entities import Param

            self._batch(made.info.run_id, [], [Param(k, v[:6000]) for k, v in params.items()], [])
            # two workers that started at once may both have made one: all keep the oldest
            # (the start time is when the run was made, which orders them)
            runs = self._find(experiment_id, query)
            if made.info.run_id not in {r.info.run_id for r in runs}:
                runs.append(made)
            oldest = min(runs, key=lambda r: (r.info.start_time, r.info.run_id))
            if oldest.info.run_id != made.info.run_id:
                self.client.delete_run(made.info.run_id)
            runs = [oldest]
        found = min(runs, key=lambda r: (r.info.start_time, r.info.run_id))
        if found.info.status != "RUNNING":  # finished by an earlier run; logging again
            self.client.update_run(found.info.run_id, status="RUNNING")
        self._parents[key] = str(found.info.run_id)
        return str(found.info.run_id)

    def _find(self, experiment_id: str, query: str) -> list[Any]:
        return list(self.client.search_runs([experiment_id], filter_string=query, max_results=50))


def _mlflow_key(name: str) -> str:
    """A metric or parameter name MLflow accepts: ``metric[device]`` becomes
    ``metric/device``, other refused characters ``_``."""
    key = re.sub(r"\[([^\]]*)\]", r"/\1", name)
    key = re.sub(r"[^\w.\- /]", "_", key)
    key = "/".join(part for part in key.split("/") if part not in ("", ".", ".."))
    return key[:250] or "_"


def _sqlite_file(tracking_uri: str | None) -> Path | None:
    """The database file of a SQLite tracking URI (MLflow's default URI when ``None``), its
    folder made; ``None`` for another store, an in-memory database or a folder that cannot be
    made (MLflow then says what is wrong)."""
    from mlflow.tracking import get_tracking_uri
    from sqlalchemy.engine import make_url

    uri = tracking_uri or get_tracking_uri()
    if not uri.startswith("sqlite:"):
        return None
    try:
        database = make_url(uri).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        path = Path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
    except Exception:
        return None
    return path
