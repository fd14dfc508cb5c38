"""What the dashboard shows of a study's trials, computed from the trials alone: the best
trial, the cost spent, the trial table's rows, the best-so-far trajectory, the objective
scatter with its Pareto front, the failures and a one-shot search's epochs.

Every function is pure (trials in, JSON-safe data out); :mod:`nasforge.dashboard._data`
caches the results and recomputes them only when a study changed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasforge.constraints import Constraint
from nasforge.dashboard._safe import iso, num
from nasforge.pareto import front_indices
from nasforge.trial import Direction, Objective, Trial, TrialState

__all__ = [
    "MAX_EXTRA_COLUMNS",
    "ROW_FIELDS",
    "Scoring",
    "failures",
    "finish_order",
    "metric_columns",
    "oneshot_epochs",
    "retried",
    "scatter",
    "spent",
    "trajectory",
    "trial_row",
]

#: Fields of each row of the trial table, before the metric columns.
ROW_FIELDS = (
    "number",
    "state",
    "arch",
    "cost",
    "seconds",
    "worker",
    "fail_reason",
    "duplicate_of",
    "finished_at",
)

#: Metric columns of the trial table beyond the objectives and constraints.
MAX_EXTRA_COLUMNS = 6

#: Size metrics tried, in order, as the x axis of a single-objective study's scatter.
_SIZE_METRICS = ("params_M", "flops_M", "macs_M")


@dataclass(frozen=True)
class Scoring:
    """How a study scores its trials, as :class:`nasforge.study.Study` does: a trial is a
    candidate when it is COMPLETE, at full fidelity, meets every constraint and has every
    objective measured; its scores are the objectives turned larger-is-better."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    #: Scores of finished trials by (number, finish_seq): a finished trial never changes.
    _memo: dict[tuple[int, int | None], tuple[float, ...] | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, objectives: Iterable[str], options: Mapping[str, Any]) -> Scoring:
        return cls(
            tuple(Objective.parse(o) for o in objectives),
            tuple(Constraint.parse(c) for c in options.get("constraints", ())),
        )

    def scores(self, trial: Trial) -> tuple[float, ...] | None:
        """The trial's oriented objective values, or ``None`` when it is no candidate."""
        if trial.state is not TrialState.COMPLETE or trial.fidelity:
            return None
        key = (trial.number, trial.finish_seq)
        if key in self._memo:
            return self._memo[key]
        found = self._scores(trial)
        self._memo[key] = found
        return found

    def _scores(self, trial: Trial) -> tuple[float, ...] | None:
        if self.constraints and not all(c.satisfied(trial.metrics) for c in self.constraints):
            return None
        out = []
        for objective in self.objectives:
            value = trial.metrics.get(objective.metric)
            if value is None or not math.isfinite(value):
                return None
            out.append(objective.oriented(float(value)))
        return tuple(out)


def _finish_key(trial: Trial) -> tuple[bool, int, int]:
    """Sorts trials in the order they finished (``finish_seq``; the number where a storage
    written before finish sequences has none)."""
    return (trial.finish_seq is None, trial.finish_seq or 0, trial.number)


def finish_order(trials: Iterable[Trial]) -> list[Trial]:
    """The finished trials in the order they finished."""
    return sorted((t for t in trials if t.state.finished), key=_finish_key)


def best_of(trials: Iterable[Trial], scoring: Scoring) -> Trial | None:
    """The best candidate by the first objective, the earliest finished among equals (as
    ``Study.best_trial``); ``trials`` in any order."""
    best, best_score = None, -math.inf
    for trial in trials:
        scores = scoring.scores(trial)
        if scores is None:
            continue
        if (
            best is None
            or scores[0] > best_score
            or (scores[0] == best_score and _finish_key(trial) < _finish_key(best))
        ):
            best, best_score = trial, scores[0]
    return best


def retried(trials: Iterable[Trial]) -> set[int]:
    """The numbers of the failed trials that were retried: their cost is not counted (as
    in ``Study.spent``)."""
    return {t.retry_of for t in trials if t.retry_of is not None}


def spent(trials: Sequence[Trial]) -> float:
    """Cost of the finished trials, leaving out failures that were retried."""
    skip = retried(trials)
    return float(
        sum(
            t.cost
            for t in trials
            if t.state.finished and math.isfinite(t.cost) and t.number not in skip
        )
    )


def trajectory(
    ordered: Sequence[Trial], scoring: Scoring, skip: Collection[int] = ()
) -> dict[str, Any] | None:
    """The best-so-far of the first objective over the finished trials in finish order: one
    point at each improvement and one at the last finished trial (a step plot).

    ``by_trial`` is against the highest trial number finished by then (the trial number of
    each improvement for a single worker), ``by_cost`` against the cumulative cost of the
    finished trials but those in ``skip`` (the :func:`retried` failures: it ends at
    :func:`spent`). ``None`` before the first candidate.
    """
    if not ordered:
        return None
    objective = scoring.objectives[0]
    n = len(ordered)
    values = np.full(n, np.nan)
    for i, trial in enumerate(ordered):
        scores = scoring.scores(trial)
        if scores is not None:
            values[i] = scores[0]
    if np.isnan(values).all():
        return None
    running = np.fmax.accumulate(np.where(np.isnan(values), -np.inf, values))
    improved = np.zeros(n, dtype=bool)
    improved[0] = np.isfinite(running[0])
    improved[1:] = running[1:] > running[:-1]
    keep = improved.copy()
    keep[-1] = True
    numbers = np.maximum.accumulate(np.array([t.number for t in ordered]))
    costs = np.cumsum(
        [t.cost if math.isfinite(t.cost) and t.number not in skip else 0.0 for t in ordered]
    )
    sign = 1.0 if objective.direction is Direction.MAXIMIZE else -1.0
    best = running * sign
    points = [i for i in np.flatnonzero(keep) if np.isfinite(running[i])]
    return {
        "metric": objective.metric,
        "direction": _word(objective.direction),
        "by_trial": [[int(numbers[i]), num(best[i])] for i in points],
        "by_cost": [[num(costs[i]), num(best[i])] for i in points],
    }


def metric_columns(names: Iterable[str], scoring: Scoring) -> list[str]:
    """The trial table's metric columns: the objectives, the constraints' metrics, then up
    to :data:`MAX_EXTRA_COLUMNS` more of ``names`` (the metrics of the trials, in the order
    first seen), leaving out device-table metrics (names with ``[``, such as
    ``latency_ms[pixel3]``)."""
    columns = [o.metric for o in scoring.objectives]
    for constraint in scoring.constraints:
        if constraint.metric not in columns:
            columns.append(constraint.metric)
    fixed = len(columns)
    for name in names:
        if len(columns) - fixed >= MAX_EXTRA_COLUMNS:
            break
        if name not in columns and "[" not in name:
            columns.append(name)
    return columns


def trial_row(trial: Trial, columns: Sequence[str]) -> list[Any]:
    """One row of the trial table: :data:`ROW_FIELDS`, then the values of ``columns``."""
    return [
        trial.number,
        trial.state.value,
        trial.arch.text,
        num(trial.cost),
        num(trial.seconds),
        trial.worker,
        trial.fail_reason,
        trial.duplicate_of,
        iso(trial.finished_at),
        *(num(trial.metrics.get(name)) for name in columns),
    ]


# -- the scatter --------------------------------------------------------------------------------
TrueFrontSource = Callable[[Objective, Objective], "tuple[list[list[Any]], str] | None"]


def scatter(
    trials: Sequence[Trial], scoring: Scoring, true_front: TrueFrontSource | None = None
) -> dict[str, Any] | None:
    """The objective scatter: the second objective (x) against the first (y); with one
    objective, a size metric (``params_M``, ``flops_M``, ``macs_M`` or a latency, minimised)
    against it. ``front`` holds the numbers of the candidates no other candidate dominates
    on these two metrics; ``true_front`` the benchmark's front over its whole table, where
    ``true_front(x, y)`` gives one. ``None`` without a second metric."""
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    y_objective = scoring.objectives[0]
    if len(scoring.objectives) > 1:
        x_objective = scoring.objectives[1]
    else:
        size = _size_metric(complete, y_objective.metric)
        if size is None:
            return None
        x_objective = Objective(size, Direction.MINIMIZE)
    points, oriented, numbers = [], [], []
    for trial in complete:
        x, y = trial.metrics.get(x_objective.metric), trial.metrics.get(y_objective.metric)
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            continue
        points.append([num(x), num(y), trial.number])
        if scoring.scores(trial) is not None:
            oriented.append([x_objective.oriented(x), y_objective.oriented(y)])
            numbers.append(trial.number)
    front: list[int] = []
    if oriented:
        front = sorted(numbers[i] for i in front_indices(np.asarray(oriented)))
    found = true_front(x_objective, y_objective) if true_front is not None else None
    return {
        "x": {"metric": x_objective.metric, "direction": _word(x_objective.direction)},
        "y": {"metric": y_objective.metric, "direction": _word(y_objective.direction)},
        "points": points,
        "front": front,
        "true_front": None if found is None else found[0],
        "true_front_label": None if found is None else found[1],
    }


def _size_metric(trials: Sequence[Trial], objective: str) -> str | None:
    seen: set[str] = set()
    for trial in trials:
        seen.update(trial.metrics)
    for name in _SIZE_METRICS:
        if name in seen and name != objective:
            return name
    latencies = sorted(n for n in seen if n.startswith("latency") and n != objective)
    return latencies[0] if latencies else None


# -- failures ------------------------------------------------------------------------------------
_VARIABLE = re.compile(r"[\w.:/+-]*\d[\w.:/+-]*")


def reason_kind(reason: str | None) -> str:
    """A failure reason with what varies between trials (numbers, worker ids, paths with
    digits) replaced by ``#``, its first line: failures of one cause share it.

    Example:
        >>> reason_kind("worker vm:1:ab12 stopped (no heartbeat for 60 s)")
        'worker # stopped (no heartbeat for # s)'
    """
    if not reason or not reason.strip():
        return "no reason recorded"
    first = reason.strip().splitlines()[0]
    return _VARIABLE.sub("#", first)[:300]


def failures(trials: Iterable[Trial]) -> dict[str, Any]:
    """The FAILED trials grouped by :func:`reason_kind` (most frequent first; each group
    with one full reason as its ``example``), and each one with its reason."""
    groups: dict[str, dict[str, Any]] = {}
    listed = []
    for trial in trials:
        if trial.state is not TrialState.FAILED:
            continue
        kind = reason_kind(trial.fail_reason)
        group = groups.setdefault(
            kind, {"reason": kind, "count": 0, "example": trial.fail_reason or kind}
        )
        group["count"] += 1
        listed.append(
            {"number": trial.number, "arch": trial.arch.text, "reason": trial.fail_reason or ""}
        )
    by_reason = sorted(groups.values(), key=lambda g: (-g["count"], g["reason"]))
    return {"by_reason": by_reason, "trials": listed}


# -- one-shot searches ----------------------------------------------------------------------------
#: Metrics of a one-shot trial shown in their own places, not among its per-epoch series.
_ONESHOT_OWN = ("epoch", "param_free_share", "param_free_weight")


def oneshot_epochs(
    trials: Sequence[Trial],
    reports: Mapping[int, Mapping[int, Mapping[str, float]]],
    objectives: Sequence[str],
    row_names: Callable[[str, int], str | None] | None = None,
) -> dict[str, Any]:
    """A one-shot search epoch by epoch: the parameter-free share of the derived
    architecture and of the architecture weights, the recorded metrics, and each edge's
    weights from the reports the search stored (``"w|<group>|<row>|<option>"``; options
    marked parameter-free by ``"f|<group>|<option>"``).

    Args:
        trials: The study's trials (those with an ``epoch`` metric are the epochs).
        reports: ``storage.get_reports`` of those trials.
        objectives: The study's objective metrics, listed first among the series.
        row_names: A label for row ``row`` of group ``group``, or ``None`` for the default
            ``"<group> <row>"``.
    """
    recorded = sorted(
        (t for t in trials if _finite(t.metrics.get("epoch"))),
        key=lambda t: (t.metrics["epoch"], t.number),
    )
    epochs, by_epoch = [], {}
    for trial in recorded:  # one trial per epoch (a resumed search never records one twice)
        epoch = int(trial.metrics["epoch"])
        if epoch not in by_epoch:
            by_epoch[epoch] = trial
            epochs.append(epoch)
    chosen = [by_epoch[e] for e in epochs]
    names: list[str] = [Objective.parse(o).metric for o in objectives]
    for trial in chosen:
        for name in trial.metrics:
            if name not in names and "[" not in name:
                names.append(name)
    series = {
        name: [num(t.metrics.get(name)) for t in chosen]
        for name in names
        if name not in _ONESHOT_OWN and any(name in t.metrics for t in chosen)
    }
    return {
        "epochs": epochs,
        "param_free_share": [num(t.metrics.get("param_free_share")) for t in chosen],
        "param_free_weight": [num(t.metrics.get("param_free_weight")) for t in chosen],
        "metrics": series,
        "groups": _weight_groups(chosen, epochs, reports, row_names),
    }


def _weight_groups(
    chosen: Sequence[Trial],
    epochs: Sequence[int],
    reports: Mapping[int, Mapping[int, Mapping[str, float]]],
    row_names: Callable[[str, int], str | None] | None,
) -> list[dict[str, Any]]:
    options: dict[str, list[str]] = {}
    rows: dict[str, set[int]] = {}
    free: dict[str, set[str]] = {}
    per_epoch: list[dict[tuple[str, int, str], float]] = []
    for trial, epoch in zip(chosen, epochs, strict=True):
        steps = reports.get(trial.number, {})
        report = steps.get(epoch) or (next(iter(steps.values())) if len(steps) == 1 else {})
        values: dict[tuple[str, int, str], float] = {}
        for key, value in report.items():
            parts = key.split("|")
            if parts[0] == "w" and len(parts) == 4 and parts[2].isdigit():
                group, row, option = parts[1], int(parts[2]), parts[3]
                known = options.setdefault(group, [])
                if option not in known:
                    known.append(option)
                rows.setdefault(group, set()).add(row)
                values[(group, row, option)] = value
            elif parts[0] == "f" and len(parts) == 3:
                free.setdefault(parts[1], set()).add(parts[2])
        per_epoch.append(values)
    out = []
    for group, names in options.items():
        group_rows = []
        for row in sorted(rows[group]):
            label = (row_names(group, row) if row_names is not None else None) or f"{group} {row}"
            weights = [
                [num(values.get((group, row, o))) for o in names]
                if any((group, row, o) in values for o in names)
                else None
                for values in per_epoch
            ]
            group_rows.append({"label": label, "weights": weights})
        out.append(
            {
                "name": group,
                "options": list(names),
                "param_free": [o in free.get(group, set()) for o in names],
                "rows": group_rows,
            }
        )
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _word(direction: Direction) -> str:
    return "max" if direction is Direction.MAXIMIZE else "min"
