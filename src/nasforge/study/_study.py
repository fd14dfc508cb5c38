"""The :class:`Study`: the public class, with the hand-driven interface (ask, tell, enqueue)
on top of the search loop (``_loop``) and the record (``_base``)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidConfigError,
    UnsupportedOperationError,
)
from nasforge.evaluators.base import Evaluator
from nasforge.reporting import TrialContext
from nasforge.study._loop import StudyLoop
from nasforge.study._support import (
    _LIVE_WORKERS,
    _Heartbeats,
    _parse_state,
)
from nasforge.trial import Result, Trial, TrialState


class Study(StudyLoop):
    """A search: a space, a strategy with its seed, objectives, and the trials recorded so far.

    Build one with :func:`create_study` or :func:`load_study`. Opening a study replays its
    stored trials through a fresh strategy built from the stored seed (no live object is ever
    pickled), so a resumed study continues exactly where it stopped: an interrupted search
    that is resumed ends with the same completed trials as one that never stopped.

    Trials that a dead worker left RUNNING (its process is gone, or its heartbeat is older
    than ``heartbeat_grace`` seconds) and trials interrupted with Ctrl-C are marked FAILED
    with ``retryable=True``; their proposal is evaluated again (at most ``max_retries`` times)
    before the strategy is asked for anything new. Failures of the evaluation itself are told
    to the strategy and not retried.

    Many workers (processes or machines: ``nasforge worker``) may optimise one study in a
    shared storage at once. Each reserves its next trial under the study's lock, right after
    catching up with the record: the strategy has been asked for every earlier trial, those
    still RUNNING in other workers included (pending: told when they finish), and told the
    finished ones in the order they finished. Each trial stores that order (``asked_after``,
    ``finish_seq``), so that a replay rebuilds the strategy exactly as the workers saw it.

    With the option ``dedupe`` (functional hashing, after Gillard et al., "Unified Functional
    Hashing in Automatic Machine Learning", arXiv:2302.05433), a proposal whose canonical form
    (``space.canonical``) and fidelity equal those of a finished trial is answered from that
    trial's record at no cost; the trial names it in ``duplicate_of``.

    :meth:`optimize` runs the whole loop; :meth:`ask` and :meth:`tell` let the caller run
    the evaluations (the same trials, recorded the same way), and :meth:`enqueue_trial` puts
    chosen architectures ahead of the strategy's proposals.
    """

    # -- driving the study by hand: ask / tell / enqueue_trial ---------------------------------
    def ask(self, evaluator: Evaluator | None = None) -> Trial:
        """Reserve the study's next trial and hand it out, RUNNING, to be evaluated by the
        caller and finished with :meth:`tell` (Optuna's ask-and-tell interface).

        The trial is taken exactly as :meth:`optimize` takes it (a retry first, then an
        enqueued architecture, then the strategy's next proposal) and recorded RUNNING in the
        storage, so a study driven by ``ask``/``tell`` resumes and replays like one driven by
        ``optimize``, and one call after the other gives the same trials as ``optimize`` with
        one slot. Proposals answered without evaluation (a constraint known for free rejects
        them, or ``dedupe`` knows them) are recorded and told on the way, as ``optimize``
        does; ``ask`` returns the first one that needs evaluating. While a trial is out, this
        process counts as its live worker (with a heartbeat in a persistent storage).

        Args:
            evaluator: Needed only when the study has constraints and no stored evaluator
                (its free metrics check them); stored with the study like ``optimize``'s.

        Returns:
            The RUNNING trial; ``trial.arch`` (and ``trial.fidelity``) is what to evaluate.
            The same object shows the outcome once told.

        Raises:
            UnsupportedOperationError: The study records a one-shot method's architectures.
            InvalidConfigError: Constraints without an evaluator to check them.

        Example:
            >>> import nasforge
            >>> study = nasforge.create_study(strategy="random", seed=0)
            >>> bench = nasforge.evaluators.create("tabular", dataset="cifar10")
            >>> for _ in range(3):
            ...     trial = study.ask()
            ...     _ = study.tell(trial, bench.evaluate(trial.arch))
            >>> [t.state.value for t in study.trials]
            ['COMPLETE', 'COMPLETE', 'COMPLETE']
        """
        self._refuse_external("ask()")
        chosen = self._evaluator_for_ask(evaluator)
        rejected = streak = 0
        while True:
            with self._storage.locked(self._study_id, durable=False):
                self._sync()
                proposal, retry_of = self._take_proposal()
                trial, free = self._reserve(chosen, proposal, retry_of)
            if not trial.state.finished:
                break
            rejected, streak, stop = self._after(trial, (), rejected, streak, False)
            if stop:
                raise InvalidConfigError(
                    f"Study {self.name!r}: strategy {self.strategy_name!r} has converged: "
                    f"{self._converged}; create the study with dedupe=False to evaluate "
                    "architectures again."
                )
        self._asked[trial.number] = free
        _LIVE_WORKERS.add(self._worker)
        if self._asked_beats is None:
            self._asked_beats = _Heartbeats(self).__enter__()
        self._asked_beats.add(trial)
        return trial

    def tell(
        self,
        trial: Trial | int,
        values: Result | Mapping[str, float] | float | Sequence[float] | None = None,
        state: TrialState | str = TrialState.COMPLETE,
        *,
        fail_reason: str | None = None,
    ) -> Trial:
        """Finish a trial handed out by :meth:`ask`: record its outcome and tell the strategy.

        Args:
            trial: The trial, or its number.
            values: What the evaluation measured: a :class:`~nasforge.trial.Result` (with its
                cost), a mapping of metric names to values (cost 1, one evaluation), or the
                objective values in the order of the study's objectives (a number for one).
                Wall time since ``ask`` is recorded unless a ``Result`` gives ``seconds``.
            state: ``COMPLETE`` (needs every objective's metric), ``FAILED`` (values
                optional; the strategy is told the failure, which is not retried) or
                ``STOPPED`` (ended early by a stopping rule: the values are the last ones
                reported, the cost what was spent; told to the strategy like a failure).
            fail_reason: Why it failed or stopped (``FAILED`` or ``STOPPED`` only).

        Returns:
            The finished trial (scored by the study's objectives and constraints).

        Raises:
            InvalidConfigError: A trial that does not exist, is already finished (a trial is
                told once), or was not asked by this ``Study`` object; values that lack an
                objective's metric or hold NaN for one; a state other than COMPLETE, FAILED
                or STOPPED.
        """
        number = self._asked_number(trial)
        final = _parse_state(state)
        local = self._trials[number]
        if final is TrialState.COMPLETE and values is None:
            raise InvalidConfigError(
                f"tell() needs the metrics of trial {number} to record it COMPLETE, e.g. "
                f"tell(trial, {{{self.objectives[0].metric!r}: 93.1}}); or tell(trial, "
                "state=TrialState.FAILED)."
            )
        if fail_reason is not None and final is TrialState.COMPLETE:
            raise InvalidConfigError("fail_reason is for state=TrialState.FAILED only.")
        result = None
        if values is not None:
            result = self._told_result(local, values, check=final is TrialState.COMPLETE)
            result = self._with_free(result, self._asked[number])
        reason = None if final is TrialState.COMPLETE else fail_reason or "failed (told)"
        if final is TrialState.STOPPED:
            told = result or self._told_result(local, {}, check=False)
            result, reason = dataclasses.replace(told, stopped=True), fail_reason
        self._finish(local, result, reason)
        self._close_asked(number)
        return self._trials[number]

    def trial_context(self, trial: Trial | int) -> TrialContext:
        """The reporting context of a trial handed out by :meth:`ask`, for evaluating it by
        hand with early stopping: ``context.report(value, step)`` stores intermediate
        values with the study, ``context.should_stop()`` asks the study's stopping rule; end
        a stopped trial with ``tell(trial, context.last, state="STOPPED")``.

        Raises:
            InvalidConfigError: The trial was not handed out by this object's ``ask()`` or
                is already told.

        Example:
            >>> import nasforge
            >>> study = nasforge.create_study(stopping="asha")
            >>> trial = study.ask()
            >>> context = study.trial_context(trial)
            >>> context.report(50.0, step=1)
            >>> context.should_stop()  # the first trial at its rung: it goes on
            False
            >>> study.tell(trial, {"valid_acc": 70.0}).state.value
            'COMPLETE'
        """
        from nasforge.study._reports import make_context

        number = self._asked_number(trial)
        return make_context(self, self._trials[number])

    def enqueue_trial(
        self, arch: Architecture | str, fidelity: Mapping[str, Any] | None = None
    ) -> None:
        """Evaluate ``arch`` before the strategy's next proposals (Optuna's
        ``enqueue_trial``): the next trial that is not a retry takes it, in the order
        enqueued, in :meth:`optimize` and :meth:`ask` alike, and its result is told to the
        strategy like any other trial.

        The queue is stored with the study (``record.options["enqueued"]``, each entry with
        the number of trials the study held when it was added): enqueued architectures not
        evaluated yet survive a resume, workers sharing the study see them, and a replay knows
        which trials came from the queue, so it replays exactly.

        Args:
            arch: An architecture of the study's space, or its text.
            fidelity: The fidelity to evaluate it at (``None``: full).

        Raises:
            InvalidArchitectureError: ``arch`` is not an architecture of the study's space.
            UnsupportedOperationError: A one-shot study, or a storage that cannot update a
                study's options.

        Example:
            >>> import nasforge
            >>> study = nasforge.create_study(strategy="random", seed=0)
            >>> import numpy as np
            >>> mine = study.space.sample(np.random.default_rng(7))
            >>> study.enqueue_trial(str(mine))
            >>> study.ask().arch == mine
            True
        """
        self._refuse_external("enqueue_trial()")
        parsed = self.space.parse(arch) if isinstance(arch, str) else self.space.check(arch)
        entry: dict[str, Any] = {"arch": parsed.text}
        if fidelity:
            entry["fidelity"] = dict(fidelity)
            try:
                json.dumps(entry["fidelity"])
            except (TypeError, ValueError):
                raise InvalidConfigError(
                    f"fidelity {fidelity!r} cannot be stored; give numbers or strings, e.g. "
                    "{'epochs': 12}."
                ) from None
        with self._storage.locked(self._study_id):
            self._sync()
            self._refresh_queue()
            entry["after"] = len(self._trials)
            entries = [*self._record.options.get("enqueued", ()), entry]
            try:
                self._storage.update_options(self._study_id, {"enqueued": entries})
            except NotImplementedError:
                raise UnsupportedOperationError(
                    f"Storage {type(self._storage).__name__} cannot update a study's options, "
                    "which enqueue_trial() needs to record the queue."
                ) from None
            self._load_queue(entries)

    def _refuse_external(self, what: str) -> None:
        if self.external:
            raise UnsupportedOperationError(
                f"Study {self.name!r} records the architectures a one-shot method derives; "
                f"{what} is for studies that ask a strategy."
            )

    def _evaluator_for_ask(self, evaluator: Evaluator | None) -> Evaluator | None:
        """The evaluator whose free metrics check the constraints (``None``: not needed)."""
        if evaluator is not None:
            self._ask_with = self._resolve_evaluator(evaluator)
            self._strategy.free_metrics = self._ask_with.free_metrics
        elif self._ask_with is None and self.constraints:
            if self._record.evaluator is None:
                raise InvalidConfigError(
                    f"Study {self.name!r} has constraints ({', '.join(map(str, self.constraints))}"
                    "), checked on the evaluator's free metrics; pass the evaluator: "
                    "study.ask(evaluator)."
                )
            self._ask_with = self._resolve_evaluator(None)
        return self._ask_with

    def _asked_number(self, trial: Trial | int) -> int:
        """The number of a trial that this object's ask() handed out and is not told yet."""
        number = trial.number if isinstance(trial, Trial) else trial
        if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
            raise InvalidConfigError(
                f"tell() takes a trial from ask() or its number, got {type(trial).__name__}."
            )
        number = int(number)
        known = len(self._trials)
        if not 0 <= number < known:
            held = f"trials 0 to {known - 1}" if known else "no trials"
            raise InvalidConfigError(
                f"Study {self.name!r} has no trial {number} (it holds {held}); tell() finishes "
                "a trial that ask() returned."
            )
        local = self._trials[number]
        if isinstance(trial, Trial) and trial.arch != local.arch:
            raise InvalidConfigError(
                f"Trial {number} of study {self.name!r} is {local.arch.text!r}, not "
                f"{trial.arch.text!r}: this trial belongs to another study."
            )
        if number in self._asked:
            return number
        if local.state.finished:
            raise InvalidConfigError(
                f"Trial {number} of study {self.name!r} is already {local.state.value}; a trial "
                "is told once."
            )
        raise InvalidConfigError(
            f"Trial {number} of study {self.name!r} is being evaluated by worker "
            f"{local.worker}; tell() finishes the trials that this Study object's ask() "
            "returned."
        )

    def _told_result(
        self,
        trial: Trial,
        values: Result | Mapping[str, float] | float | Sequence[float],
        check: bool,
    ) -> Result:
        """``values`` as a Result (wall time since ask() unless given); with ``check``, every
        objective's metric must be there and not NaN."""
        started = trial.started_at or datetime.now(timezone.utc)
        elapsed = (datetime.now(timezone.utc) - started).total_seconds()
        metrics = self._told_metrics(values)
        if isinstance(values, Result):
            result = Result(metrics, float(values.cost), float(values.seconds) or elapsed)
        else:
            result = Result(metrics, 1.0, elapsed)
        if check:
            for objective in self.objectives:
                value = metrics.get(objective.metric)
                if value is None or math.isnan(value):
                    given = ", ".join(sorted(metrics)) or "none"
                    raise InvalidConfigError(
                        f"tell() got no value for objective {objective.metric!r} of trial "
                        f"{trial.number} (metrics given: {given}); give it, or tell the trial "
                        "with state=TrialState.FAILED."
                    )
        return result

    def _told_metrics(
        self, values: Result | Mapping[str, float] | float | Sequence[float]
    ) -> dict[str, float]:
        if isinstance(values, Result):
            values = values.metrics
        if isinstance(values, Mapping):
            pairs = list(values.items())
        else:
            numbers = [values] if isinstance(values, (int, float, np.number)) else list(values)
            if len(numbers) != len(self.objectives):
                raise InvalidConfigError(
                    f"tell() got {len(numbers)} value(s) for {len(self.objectives)} objective(s) "
                    f"({', '.join(str(o) for o in self.objectives)}); give one per objective or "
                    "a mapping of metric names to values."
                )
            pairs = [(o.metric, v) for o, v in zip(self.objectives, numbers, strict=True)]
        out: dict[str, float] = {}
        for name, value in pairs:
            if (
                not isinstance(name, str)
                or isinstance(value, bool)
                or not isinstance(value, (int, float, np.number))
            ):
                raise InvalidConfigError(
                    f"tell() takes metric names and numbers, got {name!r}: {value!r}."
                )
            out[name] = float(value)
        return out

    def _close_asked(self, number: int) -> None:
        self._asked.pop(number, None)
        beats = self._asked_beats
        if beats is not None:
            with beats.lock:
                beats.numbers.discard(number)
        if not self._asked:
            if beats is not None:
                beats.__exit__(None, None, None)
            self._asked_beats = None
            _LIVE_WORKERS.discard(self._worker)
