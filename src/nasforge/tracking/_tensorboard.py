"""TensorBoard: each trial as scalars, text and an HParams session."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError, MissingDependencyError
from nasforge.tracking._base import (
    INSTALL,
    Tracker,
    best_value,
    folder_name,
    hparams,
    markdown_code,
    seconds,
    state_text,
)
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from nasforge.study import Study

__all__ = ["TensorBoardCallback"]


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
                f"Tracking to TensorBoard needs the tensorboard package: {INSTALL} "
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
        at = seconds(trial.finished_at)
        metrics = self._chosen(trial.metrics)
        for name, value in metrics.items():
            writer.add_scalar(f"trial/{name}", value, step, walltime=at)
        for objective, score in zip(study.objectives, trial.scores or (), strict=False):
            writer.add_scalar(f"score/{objective.metric}", score, step, walltime=at)
        best = best_value(study)
        if best is not None:
            writer.add_scalar(f"best/{study.objectives[0].metric}", best, step, walltime=at)
        writer.add_scalar("cost/trial", trial.cost, step, walltime=at)
        writer.add_scalar("cost/cumulative", study.spent, step, walltime=at)
        writer.add_scalar("time/seconds", trial.seconds, step, walltime=at)
        writer.add_text("arch", markdown_code(str(trial.arch)), step, walltime=at)
        state = state_text(trial)
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
            group_name=str(trial.number), start_time_secs=seconds(trial.started_at) or 0.0
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
            status=status, end_time_secs=seconds(trial.finished_at) or time.time()
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
