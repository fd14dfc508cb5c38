"""Summaries of studies as JSON-ready dictionaries: what ``nasforge search`` and ``nasforge
show`` print, available to any script.

Example:
    >>> import nasforge
    >>> study = nasforge.create_study(strategy="random", seed=0)
    >>> evaluator = nasforge.evaluators.create("tabular", dataset="cifar10")
    >>> _ = study.optimize(evaluator, budget=5)
    >>> summary = search_summary(study, evaluator, budget=5, seconds=0.0, storage=None)
    >>> (summary["n_trials"], summary["benchmark"], summary["best"] is not None)
    (5, 'nb201', True)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from nasforge.evaluators.base import Evaluator
    from nasforge.study import Study
    from nasforge.trial import Trial

__all__ = [
    "best_trial",
    "safe_url",
    "search_summary",
    "studies_summary",
    "study_summary",
    "trial_summary",
]

#: Settings of a training evaluator's spec shown in a search summary.
_TRAINING_KEYS = (
    "data",
    "preset",
    "build",
    "channels",
    "cells_per_stage",
    "layers",
    "resolution",
    "data_fraction",
    "checkpoint_dir",
)


def safe_url(url: str) -> str:
    """The storage URL with any password hidden (``***``), also when it is malformed."""
    from nasforge.storage import mask_url

    return mask_url(str(url))


def best_trial(study: Study) -> Trial | None:
    """The study's best trial, or ``None`` while none has completed."""
    try:
        return study.best_trial
    except NasforgeError:
        return None


def _arch_index(study: Study, trial: Trial) -> int | None:
    index = getattr(study.space, "index", None)
    if index is None:
        return None
    try:
        return int(index(trial.arch))
    except NasforgeError:
        return None


def trial_summary(study: Study, trial: Trial) -> dict[str, Any]:
    """A trial's number, architecture text, benchmark index (where the space has one), score
    and metrics."""
    return {
        "number": trial.number,
        "arch": trial.arch.text,
        "index": _arch_index(study, trial),
        "score": trial.score,
        "metrics": dict(trial.metrics),
    }


def search_summary(
    study: Study,
    evaluator: Evaluator,
    *,
    budget: float | None,
    seconds: float,
    storage: str | None,
    trials: int | None = None,
) -> dict[str, Any]:
    """The result of a search: its settings, what it spent and its best trial.

    Args:
        study: The study searched.
        evaluator: The evaluator that scored it (its spec names the benchmark or the data).
        budget: The budget the search was given (``None``: none).
        seconds: Wall-clock seconds the search took.
        storage: The storage URL (shown with its password hidden), ``None`` in memory.
        trials: The trial limit the search was given, when one was.
    """
    spec = evaluator.spec() or {}
    best = best_trial(study)
    summary: dict[str, Any] = {
        "study": study.name,
        "space": study.space.name,
        "strategy": study.strategy_name,
        "strategy_params": study.strategy_params,
        "benchmark": spec.get("benchmark"),
        "dataset": spec.get("dataset"),
        "fidelity": spec.get("fidelity"),
        "objectives": [str(o) for o in study.objectives],
        "seed": study.seed,
        "budget": budget,
        "storage": None if storage is None else safe_url(storage),
        "n_trials": len(study.trials),
        "n_complete": len(study.completed_trials),
        "n_stopped": sum(1 for t in study.trials if t.state.value == "STOPPED"),
        "dedupe": study.dedupe,
        "n_duplicates": _n_duplicates(study),
        "spent": study.spent,
        "best": None if best is None else trial_summary(study, best),
        "seconds": seconds,
    }
    if trials is not None:
        summary["trials"] = trials
    if spec.get("benchmark") is None or spec.get("name") == "train":  # training, a function...
        summary["evaluator"] = spec.get("name") or type(evaluator).__name__
        summary["cost_unit"] = evaluator.cost_unit
        if spec.get("fn") is not None:
            summary["fn"] = spec["fn"]
    if spec.get("name") == "train":
        training = {key: spec.get(key) for key in _TRAINING_KEYS if key in spec}
        for key in ("epochs", "optimizer", "lr"):
            training[key] = spec["recipe"][key]
        summary["training"] = training
    return summary


def studies_summary(storage: str) -> dict[str, Any]:
    """The studies stored at ``storage``: name, strategy, seed, dataset and trial counts.

    Raises:
        StorageError: No study database there, or a malformed URL (the storage is opened
            read-only: nothing is ever written).
    """
    from nasforge.storage import get_storage

    store = get_storage(storage, read_only=True)
    try:
        counts = store.study_counts()
        rows = []
        for record in store.list_studies():
            states = counts.get(record.study_id, {}) if record.study_id is not None else {}
            evaluator = record.evaluator or {}
            rows.append(
                {
                    "name": record.name,
                    "space": record.space,
                    "strategy": record.strategy,
                    "seed": record.seed,
                    "dataset": evaluator.get("dataset"),
                    "n_trials": sum(states.values()),
                    "n_complete": states.get("COMPLETE", 0),
                    "created_at": None if record.created_at is None else str(record.created_at),
                }
            )
    finally:
        store.close()
    return {"storage": safe_url(storage), "studies": rows}


def study_summary(study: Study, top: int) -> dict[str, Any]:
    """One study's settings, trial counts by state, cost, best trial and ``top`` best trials."""
    record = study.record
    states: dict[str, int] = {}
    for trial in study.trials:
        states[trial.state.value] = states.get(trial.state.value, 0) + 1
    ranked = sorted(study.completed_trials, key=lambda t: (-(t.score or -math.inf), t.number))
    best = best_trial(study)
    return {
        "study": study.name,
        "space": record.space,
        "space_params": dict(record.space_params),
        "strategy": record.strategy,
        "strategy_params": dict(record.strategy_params),
        "seed": record.seed,
        "objectives": list(record.objectives),
        "evaluator": record.evaluator,
        "created_at": None if record.created_at is None else str(record.created_at),
        "n_trials": len(study.trials),
        "states": states,
        "dedupe": study.dedupe,
        "n_duplicates": _n_duplicates(study),
        "spent": study.spent,
        "best": None if best is None else trial_summary(study, best),
        "top": [trial_summary(study, t) for t in ranked[:top]],
        "stopping": record.options.get("stopping"),
        "stopped": [
            {**trial_summary(study, t), "cost": t.cost, "reason": t.fail_reason}
            for t in study.trials
            if t.state.value == "STOPPED"
        ][:top],
    }


def _n_duplicates(study: Study) -> int:
    """Trials a deduplicating study answered from the record of a functional twin."""
    return sum(1 for t in study.trials if t.duplicate_of is not None)
