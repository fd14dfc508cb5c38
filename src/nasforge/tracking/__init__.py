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

from nasforge.errors import InvalidConfigError
from nasforge.tracking._base import Tracker, decisions, folder_name, hparams, study_key
from nasforge.tracking._mlflow import MLflowCallback
from nasforge.tracking._tensorboard import TensorBoardCallback

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

#: The forms :func:`make_tracker` (and ``--track``) accepts.
FORMS = ("tensorboard", "tensorboard:DIR", "mlflow", "mlflow:URI")


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
