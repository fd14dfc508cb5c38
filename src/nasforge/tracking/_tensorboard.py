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
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            raise MissingDependencyError(
                f"Tracking to TensorBoard needs the tensorboard package: {INSTALL} "
                "(or pip install tensorboard)."
            ) from None
        self._writer_class = EventFileWriter
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
        from tensorboard.compat.proto.summary_pb2 import Summary

        folder = self.run_dir(study.name)
        writer = self._writers.get(folder)
        if writer is None:
            writer = self._writers[folder] = self._writer_class(str(folder))
        metrics = self._chosen(trial.metrics)
        values = [Summary.Value(tag=f"trial/{k}", simple_value=v) for k, v in metrics.items()]
        for objective, score in zip(study.objectives, trial.scores or (), strict=False):
            values.append(Summary.Value(tag=f"score/{objective.metric}", simple_value=score))
        best = best_value(study)
        if best is not None:
            tag = f"best/{study.objectives[0].metric}"
            values.append(Summary.Value(tag=tag, simple_value=best))
        values.append(Summary.Value(tag="cost/trial", simple_value=trial.cost))
        values.append(Summary.Value(tag="cost/cumulative", simple_value=study.spent))
        values.append(Summary.Value(tag="time/seconds", simple_value=trial.seconds))
        values.append(_text("arch", markdown_code(str(trial.arch))))
        state = state_text(trial)
        if state is not None:
            values.append(_text("state", state))
        at = seconds(trial.finished_at) or time.time()
        writer.add_event(_event(at, trial.number, values))
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
            return Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))

        started = seconds(trial.started_at) or time.time()
        start = plugin_data_pb2.SessionStartInfo(
            group_name=str(trial.number), start_time_secs=started
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
        ended = seconds(trial.finished_at) or time.time()
        end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=ended)
        session = self._writer_class(str(folder / f"trial-{trial.number:05d}"))
        try:
            start_value = summary(metadata.SESSION_START_INFO_TAG, session_start_info=start)
            session.add_event(_event(started, 0, [start_value]))
            scalars = [Summary.Value(tag=k, simple_value=v) for k, v in metrics.items()]
            session.add_event(_event(ended, trial.number, scalars))
            end_value = summary(metadata.SESSION_END_INFO_TAG, session_end_info=end)
            session.add_event(_event(ended, 0, [end_value]))
        finally:
            session.close()


def _event(wall_time: float, step: int, values: Sequence[Any]) -> Any:
    """An ``Event`` of a ``Summary`` of ``values`` at ``step``."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary

    return Event(wall_time=wall_time, step=step, summary=Summary(value=values))


def _text(tag: str, text: str) -> Any:
    """``text`` (Markdown) as a value of TensorBoard's text plugin, under the tag
    ``<tag>/text_summary`` as TensorBoard's own text summaries name it."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.compat.proto.types_pb2 import DT_STRING
    from tensorboard.plugins.text.metadata import create_summary_metadata

    tensor = TensorProto(
        dtype=DT_STRING, string_val=[text.encode()], tensor_shape=TensorShapeProto()
    )
    metadata = create_summary_metadata(display_name=None, description=None)
    return Summary.Value(tag=f"{tag}/text_summary", metadata=metadata, tensor=tensor)
