"""Creating and opening studies: ``create_study`` and ``load_study``."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nasforge import strategies
from nasforge.constraints import Constraint
from nasforge.errors import (
    InvalidConfigError,
    StorageError,
    StudyConflictError,
    UnknownNameError,
)
from nasforge.evaluators.base import Evaluator
from nasforge.spaces.base import SearchSpace
from nasforge.storage import Storage, StudyRecord, get_storage
from nasforge.strategies.base import Strategy, check_params
from nasforge.study._specs import space_spec, strategy_spec, unrecordable
from nasforge.study._study import Study
from nasforge.study._support import (
    _with_objective_count,
    check_evaluator,
)
from nasforge.trial import Objective


class _Default(enum.Enum):
    """The default of ``create_study(seed=...)``: 0, or a strategy object's own seed."""

    SEED = 0

    def __repr__(self) -> str:
        return "0"


_DEFAULT_SEED = _Default.SEED


# -- public constructors ----------------------------------------------------------------------
def create_study(
    *,
    space: str | SearchSpace | None = None,
    strategy: str | Strategy = "random",
    seed: int | _Default | None = _DEFAULT_SEED,
    storage: str | Storage | None = None,
    study_name: str | None = None,
    objectives: Sequence[str | Objective] = ("valid_acc:max",),
    strategy_params: Mapping[str, Any] | None = None,
    space_params: Mapping[str, Any] | None = None,
    evaluator: Evaluator | None = None,
    dedupe: bool = False,
    constraints: Sequence[str | Constraint] = (),
    load_if_exists: bool = False,
    max_retries: int = 3,
    heartbeat_grace: float = 60.0,
) -> Study:
    """Create a study (or, with ``load_if_exists``, open one with the same settings).

    Args:
        space: Registry name of the search space (see ``nasforge.spaces.names()``), or a
            :class:`~nasforge.spaces.SearchSpace` of a registered class (``space_params``
            then say how it was built). ``None``: the strategy object's space, else
            ``"nb201"``.
        strategy: Registry name of the strategy (see ``nasforge.strategies.names()``), or a
            :class:`~nasforge.strategies.Strategy` of a registered class built with an
            integer seed on the study's space. The study records its registry name, seed and
            ``params()`` and builds its own copy from them (as a resume does); the object
            itself is not asked, and ``strategy_params`` must be left out.
        seed: Seed of the strategy; ``None`` draws one, which is stored with the study. 0 by
            default, or the strategy object's seed (a different one is refused).
        storage: ``None`` (memory), a URL such as ``"sqlite:///study.db"``, or a storage.
        study_name: Name of the study in the storage; generated when ``None``.
        objectives: Metrics to optimise, first is primary, e.g. ``["valid_acc:max"]``.
        strategy_params: Keyword arguments of the strategy (``{"population_size": 20}``).
        space_params: Keyword arguments of the space.
        evaluator: The evaluator the study will use. Optional here (``optimize`` takes it),
            but given here it is checked before anything is written: it must score this
            space and return every objective's metric, and it is stored with the study.
        dedupe: Answer proposals that are functionally identical to an evaluated
            architecture from the record, at no cost (see :class:`Study`).
        constraints: Bounds such as ``"params_M<=1.0"`` or ``"latency_ms[edgegpu]<=5"``. A
            bound on a metric the evaluator knows without evaluating (parameters, FLOPs, table
            latency) is checked before evaluation: the proposal is recorded as FAILED at no
            cost. Others are checked after: the trial is COMPLETE but never a best and is told
            to the strategy without a score.
        load_if_exists: Open the study if one with this name and the same settings exists
            (workers started together may all call this: one creates, the others open).
        max_retries: How many times the proposal of a trial whose worker died is evaluated
            again before it counts as FAILED (stored with the study: every worker agrees).
        heartbeat_grace: Seconds without a heartbeat after which another worker declares a
            RUNNING trial dead (same host: at once when its process is gone).

    Raises:
        StudyConflictError: A study of that name exists (with other settings, or
            ``load_if_exists`` is false).
        UnknownNameError, InvalidConfigError: A name or parameter is not valid; a space or
            strategy object that the record could not rebuild (unregistered class, no
            seed, parameters a persistent storage cannot hold), or a strategy object built
            on another space.

    Example:
        >>> import nasforge
        >>> study = nasforge.create_study(strategy="regularized-evolution", seed=0)
        >>> ev = nasforge.evaluators.create("tabular", dataset="cifar10")
        >>> study.optimize(ev, n_trials=50).best_trial.metrics["valid_acc"] > 85
        True

        Objects instead of names give the same study:

        >>> space = nasforge.spaces.create("nb201")
        >>> evolution = nasforge.strategies.create("regularized-evolution", space, seed=0)
        >>> twin = nasforge.create_study(strategy=evolution).optimize(ev, n_trials=50)
        >>> [t.arch for t in twin.trials] == [t.arch for t in study.trials]
        True
    """
    seed_given = not isinstance(seed, _Default)
    space, space_params, space_obj = space_spec(space, space_params, strategy)
    strategy, strategy_params, seed = strategy_spec(
        strategy,
        strategy_params,
        0 if isinstance(seed, _Default) else seed,
        seed_given,
        space_obj,
        space_params,
    )
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint32)[0])
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidConfigError(f"seed must be a non-negative integer, got {seed!r}.")
    parsed = tuple(Objective.parse(o) for o in objectives)
    if not parsed:
        raise InvalidConfigError("Give at least one objective, e.g. 'valid_acc:max'.")
    # build once to validate names and parameters before anything is written
    factory = strategies.get(strategy)
    params = _with_objective_count(strategy, strategy_params, len(parsed))
    if params.get("n_objectives", len(parsed)) != len(parsed):
        raise InvalidConfigError(
            f"Strategy {strategy!r} was built for {params['n_objectives']} objectives; the "
            f"study has {len(parsed)} ({', '.join(map(str, parsed))})."
        )
    if isinstance(factory, type):
        params = check_params(factory, params)
    factory(space_obj, seed=int(seed), **params)
    parsed_constraints = tuple(Constraint.parse(c) for c in constraints)
    options = _options(dedupe, parsed_constraints)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}.")
    if max_retries != Study.max_retries:
        options["max_retries"] = max_retries
    if not isinstance(heartbeat_grace, (int, float)) or not heartbeat_grace > 0:
        raise InvalidConfigError(
            f"heartbeat_grace must be a positive number of seconds, got {heartbeat_grace!r}."
        )
    if heartbeat_grace != Study.heartbeat_grace:
        options["heartbeat_grace"] = float(heartbeat_grace)
    spec = None
    if evaluator is not None:
        check_evaluator(evaluator, space, parsed, parsed_constraints)
        spec = evaluator.spec()
    store = get_storage(storage)
    bad = unrecordable(params) if store.persistent else []
    if bad:
        kinds = ", ".join(f"{k}: {type(params[k]).__name__}" for k in bad)
        raise InvalidConfigError(
            f"Parameters of strategy {strategy!r} that a storage cannot record ({kinds}), so "
            "the study could not be resumed; give recordable values (numbers, strings, "
            "lists) or use the memory storage."
        )
    name = study_name or f"{space}-{strategy}-seed{seed}-{uuid.uuid4().hex[:8]}"
    record = StudyRecord(
        name=name,
        space=space,
        strategy=strategy,
        seed=int(seed),
        objectives=tuple(str(o) for o in parsed),
        strategy_params=params,
        space_params=space_params,
        evaluator=spec,
        options=options,
    )
    existing = store.get_study(name)
    if existing is None:
        try:
            return Study(store.create_study(record), store)
        except StudyConflictError:  # another worker created it a moment ago
            existing = store.get_study(name)
            if existing is None:
                raise
    diffs = existing.differences(record)
    if diffs:
        raise StudyConflictError(
            f"Study {name!r} already exists with other settings ({'; '.join(diffs)}). "
            "Use another study name, or the stored settings to resume it."
        )
    if not load_if_exists:
        raise StudyConflictError(
            f"Study {name!r} already exists; resume it with nasforge.load_study({name!r}, "
            "storage) or create_study(..., load_if_exists=True), or choose another name."
        )
    return Study(existing, store)


def _options(dedupe: bool, constraints: Sequence[Constraint]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if dedupe:
        options["dedupe"] = True
    if constraints:
        options["constraints"] = [str(c) for c in constraints]
    return options


def load_study(study_name: str, storage: str | Storage) -> Study:
    """Open a stored study and replay its trials, ready to :meth:`Study.optimize` further.

    Raises:
        UnknownNameError: No study of that name (the message lists the stored ones).
        StorageError: The storage cannot be opened or is not a nasforge database.
    """
    store = get_storage(storage, create=False)
    record = store.get_study(study_name)
    if record is None:
        names = [r.name for r in store.list_studies()]
        if not names:
            raise StorageError(f"No study named {study_name!r}: the storage holds no studies.")
        raise UnknownNameError("study", study_name, names)
    return Study(record, store)
