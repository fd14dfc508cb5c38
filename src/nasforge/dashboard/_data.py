"""Everything the dashboard and the HTML report show, read from a storage that is never
written: :class:`DashboardData`.

Each study's trials are kept in memory and refreshed incrementally (``get_trials(since=...,
finished_since=...)``: only trials added or finished since the last look are read), and its
summaries are recomputed only when it changed. The overview asks the storage two questions
(the studies and their counts per state, one query each) and reads trials only of the
studies whose counts moved.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nasforge.dashboard._compare import load_comparison
from nasforge.dashboard._importance import decision_importance
from nasforge.dashboard._records import comparison_entry, cost_unit, evaluator_label, tabular_front
from nasforge.dashboard._safe import iso, num, plain
from nasforge.dashboard._summaries import (
    ROW_FIELDS,
    Scoring,
    best_of,
    failures,
    finish_order,
    metric_columns,
    oneshot_epochs,
    retried,
    scatter,
    spent,
    trajectory,
    trial_row,
)
from nasforge.errors import NasforgeError, StudyNotFoundError, UnknownNameError
from nasforge.storage import InMemoryStorage, Storage, StudyRecord, get_storage, mask_url
from nasforge.trial import Objective, Trial

__all__ = ["DashboardData"]

#: The states every count lists (zero when none).
_STATES = ("COMPLETE", "FAILED", "RUNNING", "STOPPED")


@dataclass(eq=False)
class _Cache:
    """What is known of one study: its record, its trials and what was computed from them
    (read and changed only with ``lock`` held)."""

    record: StudyRecord
    serial: int = 0  # tells this cache from an earlier one of a study of the same name
    lock: threading.RLock = field(default_factory=threading.RLock)
    trials: dict[int, Trial] = field(default_factory=dict)
    since: int = 0  # the next trial number to read
    seq: int = 0  # the highest finish_seq read
    version: int = 0  # bumped whenever a trial or the record changed
    scoring: Scoring | None = None
    counts: dict[str, int] = field(default_factory=dict)
    summary: dict[str, Any] | None = None  # the overview row, at summary_version
    summary_version: int = -1
    detail: dict[str, Any] | None = None  # the study page without its rows, at detail_version
    detail_version: int = -1
    detail_serial: int = 0  # bumped whenever ``detail`` is made again (its token's suffix)
    columns: list[str] = field(default_factory=list)
    columns_at: tuple[int, int] = (0, 0)  # (known, seq) when the columns last changed
    rows: dict[int, list[Any]] = field(default_factory=dict)
    stale_rows: set[int] = field(default_factory=set)  # trials whose rows must be made again
    metric_names: dict[str, None] = field(default_factory=dict)  # every metric, first seen first
    reports: dict[int, dict[int, dict[str, float]]] = field(default_factory=dict)
    reports_unread: set[int] = field(default_factory=set)  # one-shot trials, weights not read
    space: Any = None
    space_error: BaseException | None = None
    fronts: dict[tuple[str, str], tuple[list[list[Any]], str] | None] = field(default_factory=dict)
    cost_unit: str | None = None
    cost_unit_known: bool = False

    @property
    def study_id(self) -> int:
        assert self.record.study_id is not None
        return self.record.study_id

    def get_scoring(self) -> Scoring:
        if self.scoring is None:
            self.scoring = Scoring.of(self.record.objectives, self.record.options)
        return self.scoring


class DashboardData:
    """The dashboard's data: what each page shows, as JSON-safe dictionaries (no NaN or
    infinity: ``None``; floats rounded to 6 significant digits), computed from a storage
    opened read-only. Safe to call from several threads: each study has its own lock, so a
    study's page is answered while the overview reads another study.

    The payloads are described in the methods; treat them as read-only (parts are cached and
    shared between calls).

    Args:
        storage: A storage URL (opened with ``read_only=True``: nothing is ever written) or
            a storage.
        comparisons: Folders written by ``nasforge compare --out DIR``, read now.

    Raises:
        StorageError: The URL cannot be opened as a study database (one line, the URL with
            its password hidden).
        InvalidConfigError: A comparison folder is missing or unreadable.

    Example:
        >>> import nasforge
        >>> from nasforge.storage import InMemoryStorage
        >>> storage = InMemoryStorage()
        >>> study = nasforge.create_study(strategy="random", seed=0, storage=storage,
        ...                               study_name="demo", dedupe=False)
        >>> _ = study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"),
        ...                    budget=10)
        >>> data = DashboardData(storage)
        >>> row = data.overview()["studies"][0]
        >>> row["name"], row["n_trials"], row["best"]["number"] == study.best_trial.number
        ('demo', 10, True)
        >>> page = data.study("demo")
        >>> len(page["trials"]["rows"]), page["version"]["known"]
        (10, 10)
        >>> data.study("demo", **page["version"])["trials"]["rows"]  # nothing changed since
        []
    """

    def __init__(self, storage: str | Storage, *, comparisons: Sequence[str | Path] = ()) -> None:
        self._lock = threading.Lock()  # the dict of caches (held briefly), and close()
        if isinstance(storage, Storage):
            self._storage = storage
            self._owned = False
            url = getattr(storage, "url", None)
            self.storage_label = mask_url(str(url)) if url else _label(storage)
        else:
            self.storage_label = mask_url(str(storage))
            self._storage = get_storage(str(storage), read_only=True)
            self._owned = True
        try:
            self._comparisons = [load_comparison(p, i) for i, p in enumerate(comparisons)]
        except BaseException:
            self.close()
            raise
        self._caches: dict[str, _Cache] = {}
        # tells this object's detail tokens from another's (a restarted server's)
        self._instance = os.urandom(4).hex()
        self._made = 0  # caches made so far (each gets the next number: a study read anew)

    # -- the pages ------------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        """The first page: every study of the storage, oldest first, and the comparisons.

        Returns:
            ``{"storage", "generated_at", "studies": [{"name", "space", "strategy",
            "evaluator" ("tabular · cifar10"), "objectives", "oneshot", "created_at",
            "counts": {state: n}, "n_trials", "best": {"number", "arch", "metric", "value"}
            | None, "cost", "cost_unit", "last_finish_at"}], "comparisons": [{"id", "name",
            "benchmark", "datasets", "strategies"}]}``.
        """
        records = self._storage.list_studies()
        counts = self._storage.study_counts()
        alive = {r.name for r in records}
        with self._lock:
            for name in [n for n in self._caches if n not in alive]:
                del self._caches[name]
        studies = []
        for record in records:
            with self._held(record) as cache:
                stored = {k: v for k, v in counts.get(cache.study_id, {}).items() if v}
                try:
                    if stored != {k: v for k, v in cache.counts.items() if v} or not cache.since:
                        self._refresh(cache)
                    studies.append(self._summary(cache))
                except NasforgeError as error:  # a damaged study is listed, with the reason
                    studies.append(_unreadable_row(record, stored, error))
        return {
            "storage": self.storage_label,
            "generated_at": datetime.now(timezone.utc).isoformat(),
            "studies": studies,
            "comparisons": [comparison_entry(c) for c in self._comparisons],
        }

    def study(
        self, name: str, *, known: int = 0, seq: int = 0, detail: str | None = None
    ) -> dict[str, Any]:
        """The study page; with ``known``/``seq`` (the ``version`` of an earlier answer) only
        the trials added or finished since then are in ``trials.rows`` (``delta`` is then
        true: merge them by number). With ``detail`` (the ``detail_token`` of an earlier
        answer) still current, the page's summaries are left out (``same_detail`` is true:
        keep the earlier ones), so that a poll of an unchanged large study is small.

        Returns:
            The study's settings (``name``, ``space``, ``strategy``, ``strategy_params``,
            ``space_params``, ``evaluator`` spec, ``seed``, ``options``, ``created_at``,
            ``objectives`` ``[{"metric", "direction"}]``), ``counts``, ``n_trials``,
            ``cost``, ``cost_unit``, ``best`` (as in :meth:`overview`, plus the ``metrics``
            ``nasforge show`` shows), ``version`` ``{"known", "seq"}`` (send it back),
            ``delta``, ``detail_token`` (send it back as ``detail``), ``same_detail``,
            and (unless ``same_detail``):

            - ``trials``: ``{"fields", "metrics", "rows"}``, one row per trial: number,
              state, arch, cost, seconds, worker, fail_reason, duplicate_of, finished_at,
              then the ``metrics`` columns (objectives, constraints' metrics, up to six
              more; device-table metrics only in :meth:`trial`);
            - ``trajectory``: the best so far of the first objective, ``by_trial`` and
              ``by_cost`` (see :func:`._summaries.trajectory`), or ``None``;
            - ``scatter``: two objectives (or the objective against a size metric) with the
              Pareto ``front`` and, on a tabular benchmark, its ``true_front``, or ``None``;
            - ``importance``: each decision's main-effect share of variance, or a
              ``reason`` (see :func:`._importance.decision_importance`);
            - ``failures``: ``{"by_reason": [{"reason", "count", "example"}], "trials":
              [{"number", "arch", "reason"}]}``;
            - ``oneshot``: ``None``, or for a one-shot study its epochs, parameter-free
              shares, per-epoch metrics and each group's per-row architecture weights (see
              :func:`._summaries.oneshot_epochs`).

        Raises:
            StudyNotFoundError: No study of that name (or it was deleted); the message lists
                the studies of the storage.
        """
        with self._current(name) as cache:
            self._read_reports(cache)
            summaries = self._detail(cache)
            prefix = f"{self._instance}.{cache.serial}."
            token = f"{prefix}{cache.detail_serial}"
            same = detail == token
            # a token of another cache: the page holds another study of this name (deleted
            # and created again) or comes from a restarted server; its version means nothing
            foreign = detail is not None and not detail.startswith(prefix)
            self._update_rows(cache)
            n = len(cache.trials)
            delta = (known > 0 or seq > 0) and known <= n and seq <= cache.seq and not foreign
            if delta and (known < cache.columns_at[0] or seq < cache.columns_at[1]):
                delta = False  # the metric columns changed since: every row again
            if delta:
                numbers = [
                    number
                    for number, trial in cache.trials.items()
                    if number >= known or (trial.finish_seq or 0) > seq
                ]
            else:
                numbers = list(cache.trials)
            return {
                **({"name": name} if same else summaries),
                "version": {"known": n, "seq": cache.seq},
                "delta": bool(delta),
                "detail_token": token,
                "same_detail": same,
                "trials": {
                    "fields": [*ROW_FIELDS, *cache.columns],
                    "metrics": list(cache.columns),
                    "rows": [cache.rows[number] for number in numbers],
                },
            }

    def trial(self, name: str, number: int) -> dict[str, Any]:
        """One trial in full: every metric, its times and a drawing of its architecture
        (``space.drawing(arch)``; ``drawing_error`` says why there is none).

        Raises:
            StudyNotFoundError: No study of that name.
            UnknownNameError: The study has no trial ``number``.
        """
        with self._current(name, int(number)) as cache:
            trial = cache.trials.get(int(number))
            if trial is None:
                span = f"0..{len(cache.trials) - 1}" if cache.trials else "none yet"
                raise UnknownNameError(f"trial number of study {name!r}", str(number), [span])
            drawing, error = self._drawing(cache, trial)
            return {
                "number": trial.number,
                "state": trial.state.value,
                "arch": trial.arch.text,
                "metrics": {k: num(v) for k, v in trial.metrics.items()},
                "cost": num(trial.cost),
                "seconds": num(trial.seconds),
                "fail_reason": trial.fail_reason,
                "worker": trial.worker,
                "started_at": iso(trial.started_at),
                "finished_at": iso(trial.finished_at),
                "duplicate_of": trial.duplicate_of,
                "drawing": drawing,
                "drawing_error": error,
            }

    def comparisons(self) -> list[dict[str, Any]]:
        """Every comparison folder's payload (see :func:`._compare.load_comparison`)."""
        return list(self._comparisons)

    def close(self) -> None:
        """Release the storage (when this object opened it)."""
        with self._lock:
            if self._owned:
                self._storage.close()
                self._owned = False

    def __enter__(self) -> DashboardData:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the caches -----------------------------------------------------------------------------
    @contextmanager
    def _held(self, record: StudyRecord) -> Iterator[_Cache]:
        """The cache of ``record``'s study, with its lock held: new when the study is new or
        was replaced by another of the same name (SQLite gives a study re-created after the
        last one was deleted the same id: its creation time tells them apart); a record that
        changed (its evaluator set at its first search, its options) is taken in."""
        with self._lock:
            cache = self._caches.get(record.name)
            if cache is None or (cache.record.study_id, cache.record.created_at) != (
                record.study_id,
                record.created_at,
            ):
                self._made += 1
                cache = self._caches[record.name] = _Cache(record, serial=self._made)
        with cache.lock:
            if cache.record != record:
                cache.record = record
                cache.scoring = None
                cache.stale_rows.update(cache.trials)  # the constraints may name other columns
                cache.cost_unit_known = False
                cache.fronts.clear()
                cache.version += 1
            yield cache

    @contextmanager
    def _current(self, name: str, number: int | None = None) -> Iterator[_Cache]:
        """The study's cache, refreshed (with ``number``: only when that trial is not known
        finished, since a finished trial never changes), with its lock held;
        :class:`StudyNotFoundError` when the study is gone."""
        record = self._storage.get_study(name)
        if record is None:
            with self._lock:
                self._caches.pop(name, None)
            names = [r.name for r in self._storage.list_studies()]
            raise StudyNotFoundError(name, self.storage_label, names)
        with self._held(record) as cache:
            known = None if number is None else cache.trials.get(number)
            if known is None or not known.state.finished:
                self._refresh(cache)
            yield cache

    def _refresh(self, cache: _Cache) -> None:
        """Read the trials added or finished since the last look."""
        fresh = self._storage.get_trials(
            cache.study_id, since=cache.since, finished_since=cache.seq
        )
        changed = []
        known, counts = cache.trials, cache.counts
        for trial in fresh:
            old = known.get(trial.number)
            if old is not None:
                if (old.state, old.finish_seq) == (trial.state, trial.finish_seq):
                    old.heartbeat_at = trial.heartbeat_at
                    continue
                counts[old.state.value] -= 1
            known[trial.number] = trial
            state = trial.state.value
            counts[state] = counts.get(state, 0) + 1
            changed.append(trial)
        if cache.record.options.get("oneshot"):  # their weights are read for the study page
            cache.reports_unread.update(t.number for t in changed if t.state.finished)
        if not changed:
            return
        cache.since = max(cache.since, max(t.number for t in changed) + 1)
        cache.seq = max(cache.seq, max(t.finish_seq or 0 for t in changed))
        if len(known) != cache.since:  # numbers with gaps: keep them in order
            cache.trials = dict(sorted(known.items()))
        cache.version += 1
        cache.stale_rows.update(t.number for t in changed)

    def _update_rows(self, cache: _Cache) -> None:
        """Bring the trial table's columns and rows up to date (only the rows of trials that
        changed are made again, unless the columns changed)."""
        if not cache.stale_rows:
            return
        for number in sorted(cache.stale_rows):  # the trials' metrics, in the order first seen
            cache.metric_names.update(dict.fromkeys(cache.trials[number].metrics))
        columns = metric_columns(cache.metric_names, cache.get_scoring())
        if columns != cache.columns:
            cache.columns = columns
            cache.columns_at = (len(cache.trials), cache.seq)
            cache.rows = {n: trial_row(t, columns) for n, t in cache.trials.items()}
        else:
            for number in cache.stale_rows:
                cache.rows[number] = trial_row(cache.trials[number], columns)
        cache.stale_rows.clear()

    def _read_reports(self, cache: _Cache) -> None:
        """Read the architecture weights of the one-shot trials not read yet; a trial whose
        weights are not stored yet (the search stores them just after it records the trial)
        is asked again at the next look."""
        wanted = sorted(cache.reports_unread)
        if not wanted:
            return
        try:
            found = self._storage.get_reports(cache.study_id, wanted)
        except NasforgeError:  # a storage without reports: no weights
            cache.reports_unread.clear()
            return
        if found:
            cache.reports.update(found)
            cache.detail_version = -1  # the weights are part of the study page
        cache.reports_unread = {
            n
            for n in wanted
            if n not in cache.reports and "param_free_weight" in cache.trials[n].metrics
        }

    # -- what is computed from a cache ------------------------------------------------------------
    def _summary(self, cache: _Cache) -> dict[str, Any]:
        if cache.summary is not None and cache.summary_version == cache.version:
            return cache.summary
        record = cache.record
        trials = list(cache.trials.values())
        scoring = cache.get_scoring()
        best = best_of(trials, scoring)
        first = scoring.objectives[0].metric
        finished = (t.finished_at for t in trials if t.finished_at is not None)
        last_finish = max(finished, default=None)
        counts = {state: cache.counts.get(state, 0) for state in _STATES}
        cache.summary = {
            "name": record.name,
            "space": record.space,
            "strategy": record.strategy,
            "evaluator": evaluator_label(record.evaluator),
            "objectives": [str(o) for o in scoring.objectives],
            "oneshot": bool(record.options.get("oneshot", False)),
            "created_at": iso(record.created_at),
            "counts": counts,
            "n_trials": len(trials),
            "best": None
            if best is None
            else {
                "number": best.number,
                "arch": best.arch.text,
                "metric": first,
                "value": num(best.metrics.get(first)),
            },
            "cost": num(spent(trials)),
            "cost_unit": self._cost_unit(cache),
            "last_finish_at": iso(last_finish),
        }
        cache.summary_version = cache.version
        return cache.summary

    def _detail(self, cache: _Cache) -> dict[str, Any]:
        if cache.detail is not None and cache.detail_version == cache.version:
            return cache.detail
        from nasforge.cli._summary import shown_metrics

        record = cache.record
        summary = self._summary(cache)
        trials = list(cache.trials.values())
        scoring = cache.get_scoring()
        best = None
        if summary["best"] is not None:
            trial = cache.trials[summary["best"]["number"]]
            shown = shown_metrics(record.objectives)
            best = {
                **summary["best"],
                "metrics": {m: num(trial.metrics[m]) for m in shown if m in trial.metrics},
            }
        options = dict(record.options)
        if "enqueued" in options:  # the queue of enqueue_trial: how long, not every entry
            options["enqueued"] = len(options["enqueued"] or ())
        cache.detail = {
            "name": record.name,
            "space": record.space,
            "strategy": record.strategy,
            "strategy_params": plain(record.strategy_params),
            "space_params": plain(record.space_params),
            "evaluator": plain(record.evaluator),
            "seed": record.seed,
            "options": plain(options),
            "oneshot": summary["oneshot"],
            "created_at": summary["created_at"],
            "objectives": [
                {"metric": o.metric, "direction": str(o).rpartition(":")[2]}
                for o in scoring.objectives
            ],
            "counts": summary["counts"],
            "n_trials": summary["n_trials"],
            "cost": summary["cost"],
            "cost_unit": summary["cost_unit"],
            "best": best,
            "trajectory": trajectory(finish_order(trials), scoring, retried(trials)),
            "scatter": scatter(trials, scoring, self._true_front_of(cache)),
            "importance": decision_importance(
                trials, scoring.objectives[0], lambda: self._space(cache)
            ),
            "failures": failures(trials),
        }
        # a one-shot study's epochs replace the flag (null for other studies)
        cache.detail["oneshot"] = (
            oneshot_epochs(trials, cache.reports, record.objectives, self._row_names(cache))
            if summary["oneshot"]
            else None
        )
        cache.detail_version = cache.version
        cache.detail_serial += 1
        return cache.detail

    def _space(self, cache: _Cache) -> Any:
        """The study's search space, built once (the error again when it cannot be)."""
        if cache.space is None and cache.space_error is None:
            from nasforge import spaces

            try:
                cache.space = spaces.create(cache.record.space, **cache.record.space_params)
            except Exception as error:  # a user's space may fail to import in any way
                cache.space_error = error
        if cache.space_error is not None:
            raise cache.space_error
        return cache.space

    def _drawing(self, cache: _Cache, trial: Trial) -> tuple[dict[str, Any] | None, str | None]:
        try:
            space = self._space(cache)
        except Exception as error:
            return None, f"the search space cannot be built here: {error}"
        draw = getattr(space, "drawing", None)
        if draw is None:
            return None, f"space {cache.record.space!r} has no drawing()"
        try:
            return plain(draw(trial.arch)), None
        except Exception as error:  # a drawing never takes the page down
            return None, f"{type(error).__name__}: {error}"

    def _row_names(self, cache: _Cache) -> Callable[[str, int], str | None]:
        """Row labels of a one-shot study's weights: the space's decision names when its
        supernet has one group with a row per decision (NB-201's edges), else none."""
        keys = [k.split("|") for s in cache.reports.values() for r in s.values() for k in r]
        rows = {(k[1], k[2]) for k in keys if k[0] == "w" and len(k) == 4}
        try:
            decisions = self._space(cache).decisions()
        except Exception:  # a space without decisions: the default labels
            decisions = ()
        single = len({group for group, _ in rows}) == 1 and len(rows) == len(decisions)

        def name(group: str, row: int) -> str | None:
            return str(decisions[row].name) if single and row < len(decisions) else None

        return name

    def _true_front_of(
        self, cache: _Cache
    ) -> Callable[[Objective, Objective], tuple[list[list[Any]], str] | None] | None:
        """The true front of a study on a tabular benchmark, for :func:`scatter`."""
        spec = cache.record.evaluator or {}
        if spec.get("name") != "tabular" or not spec.get("dataset"):
            return None

        def source(x: Objective, y: Objective) -> tuple[list[list[Any]], str] | None:
            key = (str(x), str(y))
            if key not in cache.fronts:
                cache.fronts[key] = tabular_front(spec, x, y)
            return cache.fronts[key]

        return source

    def _cost_unit(self, cache: _Cache) -> str | None:
        if not cache.cost_unit_known:
            cache.cost_unit = cost_unit(cache.record.evaluator)
            cache.cost_unit_known = True
        return cache.cost_unit


def _unreadable_row(
    record: StudyRecord, counts: dict[str, int], error: NasforgeError
) -> dict[str, Any]:
    """The overview row of a study whose trials cannot be read (a damaged row...): its
    settings and counts, no best, and ``error`` saying why."""
    return {
        "name": record.name,
        "space": record.space,
        "strategy": record.strategy,
        "evaluator": evaluator_label(record.evaluator),
        "objectives": list(record.objectives),
        "oneshot": bool(record.options.get("oneshot", False)),
        "created_at": iso(record.created_at),
        "counts": {state: counts.get(state, 0) for state in _STATES},
        "n_trials": sum(counts.values()),
        "best": None,
        "cost": None,
        "cost_unit": None,
        "last_finish_at": None,
        "error": str(error),
    }


def _label(storage: Storage) -> str:
    """How a storage given as an object (not a URL) is named on the pages."""
    return "memory" if isinstance(storage, InMemoryStorage) else type(storage).__name__
