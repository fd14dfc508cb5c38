"""Creating and opening studies: ``create_study`` and ``load_study``."""

from __future__ import annotations

import dataclasses
import enum
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nasforge import strategies
from nasforge.constraints import Constraint
from nasforge.errors import (
    InvalidConfigError,
    NasforgeError,
    StorageError,
    StudyConflictError,
    UnknownNameError,
)
from nasforge.evaluators.base import Evaluator
from nasforge.spaces.base import SearchSpace
from nasforge.stopping.base import StoppingRule
from nasforge.storage import MAX_SEED, Storage, StudyRecord, check_study_name, get_storage
from nasforge.strategies.base import Strategy, check_params
from nasforge.study._specs import check_resumable, space_spec, strategy_spec, unrecordable
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

#: Most finished trials a study may be asked for (``n_trials``).
MAX_TRIALS = 10**9
#: Largest budget (queries of a table or seconds of training) and ``timeout`` in seconds:
#: a trillion, more than any search can spend; larger or infinite limits are refused.
MAX_BUDGET = 1e12


# -- validation --------------------------------------------------------------------------------
def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def check_limits(
    *, n_trials: Any = None, budget: Any = None, timeout: Any = None, prefix: str = ""
) -> None:
    """Refuse limits a search could never reach or a storage should not keep.

    ``n_trials`` must be a whole number from 1 to :data:`MAX_TRIALS`; ``budget`` and
    ``timeout`` finite numbers above 0 and at most :data:`MAX_BUDGET`. ``None`` is no limit.
    ``prefix`` is put before the names in messages (``"--"`` for the command line).

    Raises:
        InvalidConfigError: A limit out of range, infinite, NaN or not a number.
    """
    if n_trials is not None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)):
            raise InvalidConfigError(
                f"{prefix}{'trials' if prefix else 'n_trials'} must be a whole number, got "
                f"{_shown(n_trials)}."
            )
        if not 1 <= n_trials <= MAX_TRIALS:
            raise InvalidConfigError(
                f"{prefix}{'trials' if prefix else 'n_trials'} must be from 1 to {MAX_TRIALS:,}, "
                f"got {_shown(n_trials)}."
            )
    for label, value, unit in (("budget", budget, ""), ("timeout", timeout, " seconds")):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidConfigError(f"{prefix}{label} must be a number, got {_shown(value)}.")
        if not (math.isfinite(value) and 0 < value <= MAX_BUDGET):
            raise InvalidConfigError(
                f"{prefix}{label} must be a finite number above 0 and at most {MAX_BUDGET:.0e}"
                f"{unit}, got {_shown(value)}; give the cost the search may spend, e.g. 100."
            )


def check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidConfigError(
            f"seed must be a whole number from 0 to 2**63 - 1, got {_shown(seed)}."
        )
    if not 0 <= seed <= MAX_SEED:
        raise InvalidConfigError(
            f"seed must be from 0 to 2**63 - 1 = {MAX_SEED}, got {_shown(seed)}."
        )


def _check_values(owner: str, params: Mapping[str, Any]) -> None:
    """Refuse parameters holding NaN, infinities or integers a storage cannot keep."""

    def bad(value: Any) -> bool:
        if isinstance(value, (float, np.floating)):
            return not math.isfinite(value)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return not -(2**63) <= value < 2**63
        if isinstance(value, Mapping):
            return any(bad(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return any(bad(v) for v in value)
        return False

    for key, value in params.items():
        if bad(value):
            raise InvalidConfigError(
                f"Parameter {key}={_shown(value)} of {owner} is not a finite number (or is "
                "beyond 64 bits); give a finite value within the parameter's range."
            )


def _check_objectives(parsed: Sequence[Objective]) -> None:
    seen: set[str] = set()
    for objective in parsed:
        if objective.metric in seen:
            raise InvalidConfigError(
                f"The metric {objective.metric!r} is given twice among the objectives "
                f"({', '.join(map(str, parsed))}); give each metric once."
            )
        seen.add(objective.metric)


def _build(
    factory: Any, name: str, space: SearchSpace, seed: int, params: Mapping[str, Any]
) -> Any:
    """Build the strategy once to check its parameters; a Python error of the strategy's own
    checks (a wrong type or an impossible value) becomes an :class:`InvalidConfigError`."""
    try:
        return factory(space, seed=seed, **params)
    except NasforgeError:
        raise
    except (TypeError, ValueError, OverflowError, MemoryError, ZeroDivisionError) as exc:
        shown = ", ".join(f"{k}={_shown(v, 30)}" for k, v in params.items()) or "defaults"
        raise InvalidConfigError(
            f"Strategy {name!r} refused its parameters ({shown}): {type(exc).__name__}: "
            f"{_shown(str(exc), 200)[1:-1]}. Check the values (nasforge list strategies "
            "shows them)."
        ) from None


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
    dedupe: bool | None = None,
    constraints: Sequence[str | Constraint] = (),
    load_if_exists: bool = False,
    max_retries: int = 3,
    heartbeat_grace: float = 60.0,
    stopping: str | StoppingRule | None = None,
    stopping_params: Mapping[str, Any] | None = None,
) -> Study:
    """Create a study (or, with ``load_if_exists``, open one with the same settings).

    Args:
        space: Registry name of the search space (see ``nasforge.spaces.names()``), or a
            :class:`~nasforge.spaces.SearchSpace` of a registered class (``space_params``
            then say how it was built). ``None``: the strategy object's space, else
            ``"nb201"``. A space of your own: its import path (``"my_space:make_model"``),
            or the space object or define-by-run function itself (a persistent storage needs
            one it can import by name in another process).
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
            architecture from the record, at no cost (see :class:`Study`); strategies that
            take architectures up to function (PNAS, WeakNAS) follow this setting. ``None``
            (the default): on where the space has a canonical form
            (``space.dedupe_method == "canonical"``: NB201, DARTS), off otherwise. ``True`` on
            a space without a canonical form hashes the networks its builder makes
            (``space.functional_key``).
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
        stopping: An early-stopping rule (see ``nasforge.stopping.names()``: ``"median"``,
            ``"successive-halving"``, ``"hyperband"``, ``"asha"``) or a rule object; it
            judges the intermediate reports of evaluators that report (``takes_context``)
            and ends bad trials early: they are recorded STOPPED with what they cost. Stored
            with the study (a resume with another rule is refused).
        stopping_params: Keyword arguments of the rule (``{"min_step": 1, "eta": 3}``).

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
    if study_name is not None:
        check_study_name(study_name)
    if seed_given and seed is not None:
        check_seed(seed)
    _check_values("the strategy", strategy_params or {})
    _check_values("the space", space_params or {})
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
    check_seed(seed)
    parsed = tuple(Objective.parse(o) for o in objectives)
    if not parsed:
        raise InvalidConfigError("Give at least one objective, e.g. 'valid_acc:max'.")
    _check_objectives(parsed)
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
    _check_values(f"strategy {strategy!r}", params)
    _build(factory, strategy, space_obj, int(seed), params)
    parsed_constraints = tuple(Constraint.parse(c) for c in constraints)
    options = _options(_resolve_dedupe(dedupe, space_obj), parsed_constraints)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}.")
    if max_retries != Study.max_retries:
        options["max_retries"] = max_retries
    if (
        isinstance(heartbeat_grace, bool)
        or not isinstance(heartbeat_grace, (int, float))
        or not 0 < heartbeat_grace <= MAX_BUDGET
    ):
        raise InvalidConfigError(
            f"heartbeat_grace must be a positive number of seconds, got {heartbeat_grace!r}."
        )
    if heartbeat_grace != Study.heartbeat_grace:
        options["heartbeat_grace"] = float(heartbeat_grace)
    rule = stopping_spec(stopping, stopping_params)
    if rule is not None:
        options["stopping"] = rule
    spec = None
    if evaluator is not None:
        check_evaluator(evaluator, space, parsed, parsed_constraints)
        spec = evaluator.spec()
    store = get_storage(storage)
    if store.persistent:
        check_resumable(space, space_obj)
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
    if dedupe is None:  # auto: an existing study keeps the setting it was created with
        options = {k: v for k, v in record.options.items() if k != "dedupe"}
        if existing.options.get("dedupe"):
            options["dedupe"] = True
        record = dataclasses.replace(record, options=options)
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


def _resolve_dedupe(dedupe: bool | None, space: SearchSpace) -> bool:
    """``dedupe`` with ``None`` resolved for ``space``; refused where it cannot be done."""
    if dedupe is None:
        return space.dedupe_method == "canonical"
    if not isinstance(dedupe, bool):
        raise InvalidConfigError(
            f"dedupe must be True, False or None (on where the space has a canonical form), "
            f"got {dedupe!r}."
        )
    if dedupe:
        space.check_dedupe(
            "dedupe=True",
            "create the study with dedupe=False, or give the space a canonical() or a build()",
        )
    return dedupe


def stopping_spec(
    stopping: str | StoppingRule | None, params: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The stored spec of a study's stopping rule (checked by building it), or ``None``."""
    from nasforge import stopping as rules

    if stopping is None:
        if params:
            raise InvalidConfigError(
                "stopping_params were given without a stopping rule; add stopping='asha' (or "
                f"one of {', '.join(rules.names())})."
            )
        return None
    if isinstance(stopping, StoppingRule):
        if params:
            raise InvalidConfigError(
                "Give a stopping rule object or stopping_params, not both: the object "
                "carries its own parameters."
            )
        return stopping.spec()
    return rules.create(stopping, **dict(params or {})).spec()


def _options(dedupe: bool, constraints: Sequence[Constraint]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if dedupe:
        options["dedupe"] = True
    if constraints:
        options["constraints"] = [str(c) for c in constraints]
    return options


def load_study(study_name: str, storage: str | Storage, *, read_only: bool = False) -> Study:
    """Open a stored study and replay its trials, ready to :meth:`Study.optimize` further.

    Args:
        study_name: The study's name.
        storage: A URL or a storage. A URL is never turned into a new database: no file, an
            empty file or a database without nasforge's tables is an error.
        read_only: Open a URL read-only (see :func:`nasforge.storage.get_storage`): nothing
            is written, not even the trials of dead workers marked FAILED; for reading a
            study (``nasforge show``, ``pareto``, ``export``).

    Raises:
        UnknownNameError: No study of that name (the message lists the stored ones).
        StorageError: The storage cannot be opened or is not a nasforge database.
        InvalidConfigError: The name cannot name a study (empty, too long...).
    """
    check_study_name(study_name)
    store = get_storage(storage, create=False, read_only=read_only)
    try:
        record = store.get_study(study_name)
        if record is None:
            names = [r.name for r in store.list_studies()]
            if not names:
                raise StorageError(
                    f"No study named {study_name!r}: the storage holds no studies; create it "
                    "first (nasforge search --storage URL --study NAME, or create_study)."
                )
            raise UnknownNameError("study", study_name, names)
        return Study(record, store)
    except BaseException:
        if store is not storage:
            store.close()
        raise
