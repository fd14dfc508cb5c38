"""What every tracker shares: the callback that never stops the search, and what a trial
logs (its decisions, its state, the study's best so far)."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nasforge.errors import StorageError
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace
    from nasforge.study import Study

logger = logging.getLogger("nasforge.tracking")

#: How to install what the trackers need.
INSTALL = "pip install 'nasforge[tracking]'"


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
        return hide(text, self._secrets())[:400]

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


def decisions(space: SearchSpace, arch: Architecture) -> dict[str, Any]:
    """The value of each decision of ``arch`` by decision name; ``{}`` for a space without
    decisions (``space.decisions()``)."""
    return space.values(arch) if space.supports("decisions") else {}


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
        ident += "\n" + storage_label(study)
    return hashlib.sha1(ident.encode()).hexdigest()[:20]


def best_value(study: Study) -> float | None:
    """The study's best value so far of its first objective, ``None`` before one."""
    try:
        best = study.best_trial
    except StorageError:
        return None
    value = best.metrics.get(study.objectives[0].metric)
    return None if value is None else float(value)


def state_text(trial: Trial) -> str | None:
    if trial.state is TrialState.COMPLETE:
        if trial.duplicate_of is None:
            return None
        return f"COMPLETE: a duplicate of trial {trial.duplicate_of}"
    reason = f": {trial.fail_reason}" if trial.fail_reason else ""
    return f"{trial.state.value}{reason}"


def markdown_code(text: str) -> str:
    """``text`` as Markdown inline code (TensorBoard renders text as Markdown, and ``|`` in
    an architecture string would start a table)."""
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks} {text} {ticks}"


def seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def millis(moment: datetime | None) -> int:
    return int(1000 * (moment.timestamp() if moment is not None else time.time()))


def storage_label(study: Study) -> str:
    from nasforge.storage import mask_url

    url = getattr(study.storage, "url", None)
    return mask_url(str(url)) if url else type(study.storage).__name__


def masked(text: str) -> str:
    from nasforge.storage import mask_url

    return mask_url(text)


def one_line(text: str) -> str:
    return " ".join(text.split())


def hide(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` on one line with ``secrets`` and the password of every URL in it hidden."""
    from nasforge.storage._url import scrub

    text = scrub(one_line(text), secrets)
    return re.sub(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"]+", lambda m: masked(m.group(0)), text)
