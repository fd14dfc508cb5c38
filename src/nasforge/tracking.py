"""Log each trial of a study to TensorBoard or MLflow while the search runs.

The trackers are callbacks of :meth:`nasforge.study.Study.optimize` (``callbacks=[...]``),
called after each trial this process finished, so they work the same in a plain search, with
a process pool, and in every ``nasforge worker`` of a shared study. On the command line,
``nasforge search --track SPEC`` and ``nasforge worker --track SPEC`` build them with
:func:`make_tracker`.

The trials stay in the study's storage whatever happens to a tracker: a tracker that fails (a
full disk, an MLflow server that went down) logs one warning and stops logging for the rest
of the run, and the search goes on.

Example:
    >>> import tempfile, nasforge
    >>> from nasforge.tracking import TensorBoardCallback
    >>> study = nasforge.create_study(space="nb201", strategy="random", seed=0)
    >>> tracker = TensorBoardCallback(tempfile.mkdtemp())
    >>> evaluator = nasforge.evaluators.create("tabular", dataset="cifar10")
    >>> _ = study.optimize(evaluator, n_trials=3, callbacks=[tracker])
    >>> tracker.close()
    >>> sorted(p.name for p in tracker.run_dir(study.name).glob("trial-*"))
    ['trial-00000', 'trial-00001', 'trial-00002']
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError, MissingDependencyError, StorageError
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace
    from nasforge.study import Study

__all__ = [
    "FORMS",
    "MLflowCallback",
    "TensorBoardCallback",
    "Tracker",
    "decisions",
    "folder_name",
    "hparams",
    "make_tracker",
    "study_key",
]

logger = logging.getLogger(__name__)

#: The forms :func:`make_tracker` (and ``--track``) accepts.
FORMS = ("tensorboard", "tensorboard:DIR", "mlflow", "mlflow:URI")

_INSTALL = "pip install 'nasforge[tracking]'"


class Tracker(ABC):
    """A callback ``tracker(study, trial)`` that logs finished trials somewhere.

    Safe to share between threads (one lock). An error while logging never reaches the
    search: the first one is logged as a warning, and the tracker logs nothing more in this
    run (:attr:`failure` says why).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Why this tracker stopped logging, ``None`` while it works.
        self.failure: str | None = None

    @property
    @abstractmethod
    def description(self) -> str:
        """Where this tracker writes, for messages (``TensorBoard at runs``)."""

    @abstractmethod
    def _log(self, study: Study, trial: Trial) -> None:
        """Log one finished trial (called under the lock)."""

    def __call__(self, study: Study, trial: Trial) -> None:
        if self.failure is not None:
            return
        try:
            with self._lock:
                self._log(study, trial)
        except Exception as exc:  # the search must go on; the storage has the trial
            self.failure = f"{type(exc).__name__}: {self._hide(str(exc))}"
            logger.warning(
                "tracking to %s failed at trial %d of study %r (%s); it logs nothing more in "
                "this run. The search goes on, and every trial is kept in the study's storage.",
                self.description,
                trial.number,
                study.name,
                self.failure,
            )

    def _hide(self, text: str) -> str:
        """``text`` (an error of the tracking library) on one line, cut to 400 characters,
        with the passwords of the URLs in it hidden."""
        return _hide(text, self._secrets())[:400]

    def _secrets(self) -> tuple[str, ...]:
        """Texts that a message must never show (a password of the tracking URI)."""
        return ()

    def close(self) -> None:
        """Write out what is buffered and release files (a tracker may log again after);
        a failure is logged as a warning, never raised."""
        if self.failure is not None:
            return
        try:
            with self._lock:
                self._close()
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {self._hide(str(exc))}"
            logger.warning("closing the tracking to %s failed (%s)", self.description, self.failure)

    def _close(self) -> None:  # noqa: B027 - optional hook
        """What :meth:`close` does (called under the lock)."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- TensorBoard ------------------------------------------------------------------------------
class TensorBoardCallback(Tracker):
    """Write each trial to TensorBoard event files (``tensorboard --logdir LOG_DIR``).

    One run folder per study, ``LOG_DIR/<study name>`` (in a name with other characters than
    letters, digits, ``.``, ``_`` and ``-``, those become ``_`` and a short hash of the name
    is added, so that two names never share a folder), holds scalars at step = trial number:

    - ``trial/<metric>``: each metric of the trial (all of them, or those in ``metrics``);
    - ``score/<metric>``: each objective turned so that larger is better (COMPLETE trials);
    - ``best/<metric>``: the study's best value so far of the first objective;
    - ``cost/trial``, ``cost/cumulative`` (the study's spent budget), ``time/seconds``;

    and as text ``arch`` (the architecture string) and ``state`` (for trials that did not
    complete: FAILED or STOPPED and why; for duplicates, the trial they repeat). Each trial
    is also a session of TensorBoard's HParams dashboard, in ``<run folder>/trial-NNNNN``:
    the decisions of the architecture (the architecture string alone for spaces without
    decisions), its state and fidelity as hyperparameters, and its metrics, so that the
    HParams tab compares decisions against metrics.

    Events are flushed after each trial, so a running ``tensorboard`` shows trials as they
    finish. Every process writes its own event files (TensorBoard names them with the host
    and process id), so several workers share a log folder safely; to follow them live, start
    ``tensorboard --logdir LOG_DIR --reload_multifile true``.

    Args:
        log_dir: The folder for the runs (made when missing).
        metrics: The trial metrics to log (default all); a metric a trial lacks is skipped.

    Raises:
        MissingDependencyError: tensorboard is not installed.
        InvalidConfigError: ``log_dir`` is a file.
    """

    def __init__(self, log_dir: str | Path = "runs", *, metrics: Sequence[str] | None = None):
        super().__init__()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MissingDependencyError(
                f"Tracking to TensorBoard needs the tensorboard package: {_INSTALL} "
                "(or pip install tensorboard)."
            ) from None
        self._writer_class = SummaryWriter
        self.log_dir = Path(log_dir)
        if self.log_dir.exists() and not self.log_dir.is_dir():
            raise InvalidConfigError(
                f"TensorBoard log folder {str(self.log_dir)!r} is a file; give a folder "
                "(made when missing), e.g. tensorboard:runs."
            )
        self.metrics = None if metrics is None else tuple(metrics)
        self._writers: dict[Path, Any] = {}

    @property
    def description(self) -> str:
        return f"TensorBoard at {self.log_dir}"

    def run_dir(self, study_name: str) -> Path:
        """The run folder of the study called ``study_name``."""
        return self.log_dir / folder_name(study_name)

    def _close(self) -> None:
        writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.close()

    def _log(self, study: Study, trial: Trial) -> None:
        folder = self.run_dir(study.name)
        writer = self._writers.get(folder)
        if writer is None:
            writer = self._writers[folder] = self._writer_class(log_dir=str(folder))
        step = trial.number
        at = _seconds(trial.finished_at)
        metrics = self._chosen(trial.metrics)
        for name, value in metrics.items():
            writer.add_scalar(f"trial/{name}", value, step, walltime=at)
        for objective, score in zip(study.objectives, trial.scores or (), strict=False):
            writer.add_scalar(f"score/{objective.metric}", score, step, walltime=at)
        best = _best(study)
        if best is not None:
            writer.add_scalar(f"best/{study.objectives[0].metric}", best, step, walltime=at)
        writer.add_scalar("cost/trial", trial.cost, step, walltime=at)
        writer.add_scalar("cost/cumulative", study.spent, step, walltime=at)
        writer.add_scalar("time/seconds", trial.seconds, step, walltime=at)
        writer.add_text("arch", _code(str(trial.arch)), step, walltime=at)
        state = _state_text(trial)
        if state is not None:
            writer.add_text("state", state, step, walltime=at)
        self._session(folder, study, trial, metrics)
        writer.flush()

    def _chosen(self, metrics: Mapping[str, float]) -> dict[str, float]:
        if self.metrics is None:
            return {k: float(v) for k, v in metrics.items()}
        return {k: float(metrics[k]) for k in self.metrics if k in metrics}

    def _session(
        self, folder: Path, study: Study, trial: Trial, metrics: Mapping[str, float]
    ) -> None:
        """The trial as a session of the HParams dashboard: its own run folder with the
        session's start (hyperparameters), its metrics and its end (status)."""
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        def summary(tag: str, **info: Any) -> Any:
            content = plugin_data_pb2.HParamsPluginData(
                version=metadata.PLUGIN_DATA_VERSION, **info
            )
            plugin = SummaryMetadata.PluginData(
                plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString()
            )
            value = Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))
            return Summary(value=[value])

        start = plugin_data_pb2.SessionStartInfo(
            group_name=str(trial.number), start_time_secs=_seconds(trial.started_at) or 0.0
        )
        for name, value in hparams(study.space, trial).items():
            slot = start.hparams[name]
            if isinstance(value, bool):
                slot.bool_value = value
            elif isinstance(value, (int, float)):
                slot.number_value = float(value)
            else:
                slot.string_value = str(value)
        status = (
            api_pb2.STATUS_FAILURE if trial.state is TrialState.FAILED else api_pb2.STATUS_SUCCESS
        )
        end = plugin_data_pb2.SessionEndInfo(
            status=status, end_time_secs=_seconds(trial.finished_at) or time.time()
        )
        session = self._writer_class(log_dir=str(folder / f"trial-{trial.number:05d}"))
        try:
            session._get_file_writer().add_summary(
                summary(metadata.SESSION_START_INFO_TAG, session_start_info=start)
            )
            for name, value in metrics.items():
                session.add_scalar(name, value, trial.number)
            session._get_file_writer().add_summary(
                summary(metadata.SESSION_END_INFO_TAG, session_end_info=end)
            )
        finally:
            session.close()


# -- MLflow -----------------------------------------------------------------------------------
class MLflowCallback(Tracker):
    """Log each trial as an MLflow run (``mlflow ui`` or an MLflow server shows them).

    The experiment is ``experiment`` (default: ``MLFLOW_EXPERIMENT_NAME`` when set, else
    the study's name). With ``nested`` (the
    default) the study is one parent run and each trial one child run under it; the parent
    holds the study's settings as parameters and, at step = trial number, ``best_<metric>``
    (the best value so far of the first objective), ``spent`` (the cost spent so far) and
    ``finished`` (the finished trials). The parent is found again by its tags
    (``nasforge.study`` and ``nasforge.study_key``, a hash of the study's name and creation
    time), so a resumed study and every worker of a shared study log under the same parent.

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
                f"Tracking to MLflow needs the mlflow package: {_INSTALL} "
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

        A URI whose scheme MLflow does not know is refused here. Opening a new SQLite store
        runs MLflow's schema migrations; two workers that open it at once can trip over each
        other, so a failure is retried twice.
        """
        from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

        for attempt in range(3):
            try:
                return self._client_class(self.tracking_uri)
            except UnsupportedModelRegistryStoreURIException as exc:
                raise InvalidConfigError(
                    f"MLflow cannot track to {_masked(self.tracking_uri or '')!r}: "
                    f"{self._hide(str(exc))[:300]} Give e.g. mlflow:sqlite:///mlflow.db or "
                    "mlflow:http://HOST:5000."
                ) from None
            except Exception:
                if attempt < 2:
                    time.sleep(0.5 * 2**attempt)
        return None

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
            self._client = self._client_class(self.tracking_uri)
        return self._client

    @property
    def description(self) -> str:
        where = self.tracking_uri or "its default tracking URI"
        return f"MLflow at {_masked(where)}"

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
            start_time=_millis(trial.started_at),
            tags=tags,
            run_name=f"trial-{trial.number}",
        )
        run_id = run.info.run_id
        at = _millis(trial.finished_at)
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
            best = _best(study)
            if best is not None:
                values.setdefault(f"best_{_mlflow_key(study.objectives[0].metric)}", best)
        metrics = [Metric(k, v, at, 0) for k, v in values.items()]
        self._batch(run_id, metrics, [Param(k, v[:6000]) for k, v in params.items()], [])
        status = {TrialState.FAILED: "FAILED", TrialState.STOPPED: "KILLED"}
        self.client.set_terminated(run_id, status.get(trial.state, "FINISHED"), end_time=at)
        if parent is not None:
            steps = [Metric("spent", float(study.spent), at, trial.number)]
            steps.append(Metric("finished", float(study.n_finished), at, trial.number))
            best = _best(study)
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
                    "nasforge.storage": _storage_label(study),
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


# -- building trackers by name ----------------------------------------------------------------
def make_tracker(spec: str) -> Tracker:
    """The tracker a ``--track`` value names.

    ``tensorboard`` (the folder ``runs``), ``tensorboard:DIR``, ``mlflow`` (MLflow's default
    tracking URI) or ``mlflow:URI`` (``mlflow:sqlite:///mlflow.db``,
    ``mlflow:http://host:5000``).

    Raises:
        InvalidConfigError: ``spec`` is none of these forms.
        MissingDependencyError: The tracker's package is not installed.
    """
    kind, sep, rest = str(spec).strip().partition(":")
    kind = kind.strip().lower()
    if kind in ("tensorboard", "mlflow") and not (sep and not rest.strip()):
        if kind == "tensorboard":
            return TensorBoardCallback(rest.strip() or "runs")
        return MLflowCallback(rest.strip() or None)
    raise InvalidConfigError(
        f"Unknown tracker {spec!r}; write one of {', '.join(FORMS)} (e.g. --track "
        "tensorboard:runs or --track mlflow:sqlite:///mlflow.db)."
    )


# -- what a trial logs ------------------------------------------------------------------------
def decisions(space: SearchSpace, arch: Architecture) -> dict[str, Any]:
    """The value of each decision of ``arch`` by decision name; ``{}`` for a space without
    decisions (``space.decisions()``)."""
    from nasforge.spaces.base import ValuedSpace

    if isinstance(space, ValuedSpace):
        return space.values(arch)
    if not space.supports("decisions"):
        return {}
    return {d.name: d.options[c] for d, c in zip(space.decisions(), arch.choices, strict=True)}


def hparams(space: SearchSpace, trial: Trial) -> dict[str, str | int | float | bool]:
    """What a tracker logs as the trial's hyperparameters: the decisions (values that are
    not numbers or booleans as text) or, for a space without decisions, the architecture
    string as ``arch``; the state; and the fidelity (``fidelity.epochs``)."""
    out: dict[str, str | int | float | bool] = {}
    for name, value in decisions(space, trial.arch).items():
        out[name] = value if isinstance(value, (bool, int, float)) else str(value)
    if not out:
        out["arch"] = str(trial.arch)
    out.setdefault("state", trial.state.value)
    for name, value in (trial.fidelity or {}).items():
        key = f"fidelity.{name}"
        out[key] = value if isinstance(value, (bool, int, float)) else str(value)
    return out


def folder_name(study_name: str) -> str:
    """A folder name for a study: the name itself when it is made of letters, digits, ``.``,
    ``_`` and ``-``; otherwise those kept, the rest ``_``, and a hash of the name added."""
    kept = re.sub(r"[^A-Za-z0-9._-]", "_", study_name)
    if kept == study_name and kept.strip("."):
        return kept
    digest = hashlib.sha1(study_name.encode()).hexdigest()[:8]
    return f"{kept.strip('.')[:80] or 'study'}-{digest}"


def study_key(study: Study) -> str:
    """A key that names one study wherever it is stored: a hash of its name and creation
    time (a study deleted and made again under the same name gets a new key)."""
    record = study.record
    ident = f"{record.name}\n{record.created_at.isoformat() if record.created_at else ''}"
    if record.created_at is None:
        ident += "\n" + _storage_label(study)
    return hashlib.sha1(ident.encode()).hexdigest()[:20]


def _best(study: Study) -> float | None:
    """The study's best value so far of its first objective, ``None`` before one."""
    try:
        best = study.best_trial
    except StorageError:
        return None
    value = best.metrics.get(study.objectives[0].metric)
    return None if value is None else float(value)


def _state_text(trial: Trial) -> str | None:
    if trial.state is TrialState.COMPLETE:
        if trial.duplicate_of is None:
            return None
        return f"COMPLETE: a duplicate of trial {trial.duplicate_of}"
    reason = f": {trial.fail_reason}" if trial.fail_reason else ""
    return f"{trial.state.value}{reason}"


def _code(text: str) -> str:
    """``text`` as Markdown inline code (TensorBoard renders text as Markdown, and ``|`` in
    an architecture string would start a table)."""
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks} {text} {ticks}"


def _mlflow_key(name: str) -> str:
    """A metric or parameter name MLflow accepts: ``metric[device]`` becomes
    ``metric/device``, other refused characters ``_``."""
    key = re.sub(r"\[([^\]]*)\]", r"/\1", name)
    key = re.sub(r"[^\w.\- /]", "_", key)
    key = "/".join(part for part in key.split("/") if part not in ("", ".", ".."))
    return key[:250] or "_"


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _millis(moment: datetime | None) -> int:
    return int(1000 * (moment.timestamp() if moment is not None else time.time()))


def _storage_label(study: Study) -> str:
    from nasforge.storage import mask_url

    url = getattr(study.storage, "url", None)
    return mask_url(str(url)) if url else type(study.storage).__name__


def _masked(text: str) -> str:
    from nasforge.storage import mask_url

    return mask_url(text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _hide(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` on one line with ``secrets`` and the password of every URL in it hidden."""
    from nasforge.storage._url import scrub

    text = scrub(_one_line(text), secrets)
    return re.sub(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"]+", lambda m: _masked(m.group(0)), text)
