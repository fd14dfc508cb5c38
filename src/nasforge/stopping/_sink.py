"""The channel between a running trial's :class:`~nasforge.reporting.TrialContext` and its
study: reports go to the study's storage, decisions come from the study's rule.

A sink travels with the context to wherever the evaluation runs. In the study's own process
it holds the storage itself. Sent to a pool process or a Ray worker it carries the storage's
URL instead and opens it there once per process, so every worker reads the reports of all
the others; a study in memory cannot be opened elsewhere, so its sink carries a snapshot of
the reports taken when the trial started (the trial's own reports come back with its result
and the study stores them).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from nasforge.stopping.base import ReportHistory, StoppingRule

__all__ = ["StudySink"]

logger = logging.getLogger("nasforge.stopping")

#: Storages opened by URL in this (worker) process.
_OPENED: dict[str, Any] = {}

Reports = dict[int, dict[int, dict[str, float]]]


class StudySink:
    """A :class:`~nasforge.reporting.ReportSink` for one trial of a study.

    Args:
        study_id: The study's id in its storage.
        metric: The study's first objective (bare numbers are reported under it; the rule
            reads it).
        maximize: Whether larger values of ``metric`` are better.
        rule: The spec of the study's stopping rule (``None``: reports are kept, nobody
            stops).
        storage: The study's storage, in the study's own process.
        url: The storage's URL, for reopening it in another process.
        snapshot: The study's reports and its COMPLETE trials when the trial started, for a
            sink that can reach no storage.
    """

    def __init__(
        self,
        *,
        study_id: int,
        metric: str,
        maximize: bool = True,
        rule: Mapping[str, Any] | None = None,
        storage: Any = None,
        url: str | None = None,
        snapshot: tuple[Reports, frozenset[int]] | None = None,
    ) -> None:
        self.study_id = study_id
        self.metric = metric
        self.maximize = maximize
        self.rule_spec = None if rule is None else dict(rule)
        self._storage = storage
        self.url = url
        self.snapshot = snapshot
        self._rule: StoppingRule | None = None
        self._asked: dict[int, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_storage"] = None  # reopened from the URL where the trial runs
        state["_rule"] = None
        return state

    @property
    def rule(self) -> StoppingRule | None:
        if self._rule is None and self.rule_spec is not None:
            from nasforge import stopping

            self._rule = stopping.from_spec(self.rule_spec)
        return self._rule

    def _store(self) -> Any:
        if self._storage is None and self.url is not None:
            store = _OPENED.get(self.url)
            if store is None:
                from nasforge.storage import get_storage

                store = _OPENED[self.url] = get_storage(self.url, create=False)
            self._storage = store
        return self._storage

    def write(self, number: int, step: int, values: Mapping[str, float]) -> None:
        store = self._store()
        if store is None:
            return  # kept by the context; the study stores them with the result
        try:
            store.add_reports(self.study_id, number, {step: dict(values)})
        except Exception as exc:  # the report also comes back with the result
            logger.warning("trial %d: report of step %d not stored: %s", number, step, exc)

    def decide(self, number: int, step: int, own: Mapping[int, Mapping[str, float]]) -> bool:
        rule = self.rule
        if rule is None:
            return False
        try:
            history = self.history(number, own, complete=rule.uses_complete)
        except Exception as exc:  # an unreadable record never stops a trial
            logger.warning("trial %d: reports unreadable, not stopping: %s", number, exc)
            return False
        previous = self._asked.get(number)
        self._asked[number] = step
        return bool(rule.should_stop(number, step, history, previous))

    def history(
        self, number: int, own: Mapping[int, Mapping[str, float]], *, complete: bool = True
    ) -> ReportHistory:
        """The study's reports as the rule reads them, with ``own`` as trial ``number``'s."""
        store = self._store()
        if store is not None:
            reports: Reports = store.get_reports(self.study_id)
            done: frozenset[int] = frozenset()
            if complete:
                from nasforge.trial import TrialState

                done = frozenset(
                    t.number
                    for t in store.get_trials(self.study_id)
                    if t.state is TrialState.COMPLETE
                )
        elif self.snapshot is not None:
            reports, done = dict(self.snapshot[0]), self.snapshot[1]
        else:
            reports, done = {}, frozenset()
        reports[number] = {**reports.get(number, {}), **{s: dict(v) for s, v in own.items()}}
        return ReportHistory(self.oriented(reports), done)

    def oriented(
        self, reports: Mapping[int, Mapping[int, Mapping[str, float]]]
    ) -> dict[int, dict[int, float]]:
        """The objective's values of ``reports``, larger is better, NaN and gaps left out."""
        sign = 1.0 if self.maximize else -1.0
        out: dict[int, dict[int, float]] = {}
        for number, steps in reports.items():
            values = {
                step: sign * float(v[self.metric])
                for step, v in sorted(steps.items())
                if self.metric in v and not math.isnan(float(v[self.metric]))
            }
            if values:
                out[number] = values
        return out
