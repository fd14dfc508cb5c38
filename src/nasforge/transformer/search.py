"""Sub-network search on a trained super-transformer as a study, under parameter, MACs or
latency constraints: AutoFormer's evolution by default (:mod:`nasforge.transformer.evolution`;
Chen et al., ICCV 2021, arXiv:2107.00651, Section 3.3), every measured sub-network a trial
of the ``super-transformer`` evaluator; any registered strategy may search instead.

Constraints on free metrics (``params_M``, ``macs_M``, ``latency_ms[<table>]``) are checked
before a sub-network is measured: a violating child is drawn again (AutoFormer's
``is_legal``). A bound that no sub-network meets is refused up front with the lowest (for an
upper bound; highest for a lower bound) reachable value: at each patch size the space's
smallest (largest) sub-network, every other decision at its first (last) option, is the
cheapest (dearest) in parameters, MACs and per-layer latency, so the extreme is the best of
those (:func:`extremes`). A bound on a latency measured here is checked on the measured
trials; the study's best trial is the best that meets every constraint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.constraints import Constraint
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError, UnknownNameError
from nasforge.study._subnets import open_subnet_study
from nasforge.transformer.evolution import (
    DEFAULTS,
    NothingScoredError,
    autoformer_evolution,
    check_settings,
)
from nasforge.trial import Objective, Trial

if TYPE_CHECKING:
    from nasforge.evaluators.super_transformer import SuperTransformerEvaluator
    from nasforge.study import Study

__all__ = ["STRATEGY", "SubViTSearchResult", "search_subvits"]

#: The name of AutoFormer's evolution (the default strategy).
STRATEGY = "autoformer-evolution"


@dataclass
class SubViTSearchResult:
    """What :func:`search_subvits` found.

    Attributes:
        study: The study; every measured sub-network is one of its trials.
        chosen: The best trial that meets every constraint (the study's best).
        arch: Its sub-network.
        metrics: Its measured metrics.
        constraints: Each constraint's metric value for it.
        history: The best objective after each generation (AutoFormer's evolution only).
    """

    study: Study
    chosen: Trial
    arch: Architecture
    metrics: dict[str, float]
    constraints: dict[str, float]
    history: list[float] = field(default_factory=list)


def _evaluator(
    source: str | os.PathLike[str] | SuperTransformerEvaluator,
    params: Mapping[str, Any],
    tables: Any,
    measure: bool,
) -> SuperTransformerEvaluator:
    from nasforge.evaluators.super_transformer import SuperTransformerEvaluator

    if isinstance(source, SuperTransformerEvaluator):
        if params or tables or measure:
            raise InvalidConfigError(
                "Give the evaluator's settings (evaluator_params, tables, measure) to the "
                "SuperTransformerEvaluator itself, not beside it."
            )
        return source
    return SuperTransformerEvaluator(source, **dict(params), tables=tables or (), measure=measure)


def extremes(space: Any, lowest: bool) -> list[Architecture]:
    """The candidates for the lowest (or highest) reachable cost: the space's smallest (or
    largest) sub-network at each patch size. Every other dimension adds parameters, MACs and
    latency as it grows, but a larger patch has fewer tokens (fewer MACs) and a larger patch
    embedding (more parameters), so each patch size is tried."""
    base = space.smallest() if lowest else space.largest()
    names = [d.name for d in space.decisions()]
    if "patch_size" not in names:
        return [base]
    k = names.index("patch_size")
    out = []
    for option in range(len(space.decisions()[k].options)):
        choices = list(base.choices)
        choices[k] = option
        out.append(space.canonical(space.from_choices(choices)))
    return out


def check_constraints(
    evaluator: SuperTransformerEvaluator, constraints: Sequence[Constraint]
) -> None:
    """Refuse constraints on unknown metrics (the valid ones are listed) and free-metric
    bounds that no sub-network meets (the lowest, or highest, reachable value is given)."""
    valid = sorted({*evaluator.metrics, *evaluator.free_metric_names})
    space: Any = evaluator._space
    for c in constraints:
        if c.metric not in valid:
            raise UnknownNameError(f"constraint metric (of {evaluator!r})", c.metric, valid)
        if c.metric in evaluator.free_metric_names:
            pick = min if c.upper else max
            value, extreme = pick(
                ((evaluator.free_metrics(a)[c.metric], a) for a in extremes(space, c.upper)),
                key=lambda pair: pair[0],
            )
            if not c.satisfied({c.metric: value}):
                word = "lowest" if c.upper else "highest"
                raise InfeasibleConstraintError(
                    f"No sub-network of the {evaluator.space} super-transformer meets {c}: the "
                    f"{word} reachable {c.metric} is {value:g} (sub-network {extreme.text}). "
                    "Loosen the bound."
                )


def _best(study: Study, constraints: Sequence[Constraint]) -> Trial:
    from nasforge.errors import StorageError

    try:
        return study.best_trial
    except StorageError:
        pass
    parts = []
    for c in constraints:
        seen = [t.metrics[c.metric] for t in study.trials if c.metric in t.metrics]
        if seen and not any(c.satisfied({c.metric: v}) for v in seen):
            word = "lowest" if c.upper else "highest"
            parts.append(
                f"{c}: the {word} {c.metric} measured was {(min if c.upper else max)(seen):g}"
            )
    raise InfeasibleConstraintError(
        f"None of the {len(study.trials)} sub-networks measured in study {study.name!r} meets "
        f"the constraints ({'; '.join(parts) or 'see its failed trials'}); loosen the bounds."
    )


def search_subvits(
    out_dir: str | os.PathLike[str] | SuperTransformerEvaluator,
    *,
    constraints: Sequence[str | Constraint] = (),
    storage: Any = None,
    study_name: str | None = None,
    strategy: str = STRATEGY,
    strategy_params: Mapping[str, Any] | None = None,
    objective: str = "valid_acc:max",
    n_trials: int | None = None,
    seed: int = 0,
    population: int = DEFAULTS["population"],  # type: ignore[assignment]
    generations: int = DEFAULTS["generations"],  # type: ignore[assignment]
    parents: int = DEFAULTS["parents"],  # type: ignore[assignment]
    mutations: int = DEFAULTS["mutations"],  # type: ignore[assignment]
    crossovers: int = DEFAULTS["crossovers"],  # type: ignore[assignment]
    mutate_prob: float = DEFAULTS["mutate_prob"],
    structure_prob: float = DEFAULTS["structure_prob"],
    tables: Any = (),
    measure: bool = False,
    evaluator_params: Mapping[str, Any] | None = None,
) -> SubViTSearchResult:
    """Search the sub-networks of the super-transformer trained in ``out_dir``.

    With ``strategy="autoformer-evolution"`` (the default) AutoFormer's evolution
    (:func:`~nasforge.transformer.evolution.autoformer_evolution`; at most ``n_trials``
    sub-networks measured when given); any other registered strategy searches with the
    evaluator for ``n_trials`` trials (default 100). Every measured sub-network is a trial of
    the study in ``storage``; an existing study of the same settings is resumed (its
    sub-networks are not measured again).

    Args:
        out_dir: The folder of the trained super-transformer, or a
            :class:`~nasforge.evaluators.super_transformer.SuperTransformerEvaluator`.
        constraints: Bounds such as ``"params_M<=5.7"``, ``"macs_M<=1300"`` or
            ``"latency_ms[cpu]<=3"``.
        storage, study_name: Where the study is kept and its name.
        strategy: ``"autoformer-evolution"`` or a registered strategy's name.
        strategy_params: Keyword arguments of another strategy.
        objective: The metric optimised, ``"valid_acc:max"``.
        n_trials: Budget of measured sub-networks.
        seed: Seed of the search.
        population, generations, parents, mutations, crossovers, mutate_prob,
            structure_prob: AutoFormer's evolution.
        tables, measure, evaluator_params: Settings of the evaluator (``data``, ``dataset``,
            ``synthetic``, ``valid_images``...).

    Raises:
        UnknownNameError: A constraint or objective on a metric the evaluator does not know.
        InfeasibleConstraintError: No sub-network meets a constraint (the lowest reachable
            value is given).
        InvalidConfigError: Settings out of range or of another strategy.
    """
    parsed = [Constraint.parse(c) for c in constraints]
    goal = Objective.parse(objective)
    evaluator = _evaluator(out_dir, evaluator_params or {}, tables, measure)
    if goal.metric not in evaluator.metrics:
        raise UnknownNameError("objective metric", goal.metric, sorted(evaluator.metrics))
    check_constraints(evaluator, parsed)
    if n_trials is not None and (isinstance(n_trials, bool) or n_trials < 1):
        raise InvalidConfigError(f"n_trials must be a positive integer, got {n_trials!r}.")
    if strategy != STRATEGY:
        from nasforge.study import create_study

        study = create_study(
            space=evaluator.space, strategy=strategy, strategy_params=strategy_params,
            seed=seed, storage=storage, study_name=study_name, objectives=[str(goal)],
            evaluator=evaluator, constraints=parsed, load_if_exists=True,
        )  # fmt: skip
        study.optimize(evaluator, n_trials=n_trials if n_trials is not None else 100)
        chosen = _best(study, parsed)
        return SubViTSearchResult(
            study, chosen, chosen.arch, dict(chosen.metrics),
            {c.metric: chosen.metrics[c.metric] for c in parsed},
        )  # fmt: skip
    if strategy_params:
        raise InvalidConfigError(
            f"strategy_params are for other strategies; {STRATEGY!r} takes population, "
            "generations, parents, mutations, crossovers, mutate_prob and structure_prob."
        )
    params = {
        "population": population,
        "generations": generations,
        "parents": parents,
        "mutations": mutations,
        "crossovers": crossovers,
        "mutate_prob": mutate_prob,
        "structure_prob": structure_prob,
        "n_trials": n_trials,
    }
    check_settings(
        dict(population=population, generations=generations, parents=parents,
             mutations=mutations, crossovers=crossovers, mutate_prob=mutate_prob,
             structure_prob=structure_prob)
    )  # fmt: skip
    study = open_subnet_study(evaluator, STRATEGY, params, seed, storage, study_name, goal, parsed)
    done = {t.arch.text: t for t in study.trials if t.state.finished}
    free = [c for c in parsed if c.metric in evaluator.free_metric_names]

    def feasible(arch: Architecture) -> bool:
        values = evaluator.free_metrics(arch)
        return all(c.satisfied(values) for c in free)

    def score(arch: Architecture) -> float | None:
        trial = done.get(arch.text)
        if trial is None:
            trial = done[arch.text] = study.record_architecture(arch, evaluator)
        value = trial.metrics.get(goal.metric)
        if value is None or not all(c.satisfied(trial.metrics) for c in parsed):
            return None
        return goal.oriented(float(value))

    try:
        history = autoformer_evolution(
            evaluator._space, score, feasible, np.random.default_rng(seed),
            population=population, generations=generations, parents=parents,
            mutations=mutations, crossovers=crossovers, mutate_prob=mutate_prob,
            structure_prob=structure_prob, budget=n_trials,
        ).history  # fmt: skip
    except NothingScoredError:  # nothing met the constraints measured: report what was seen
        history = []
    chosen = _best(study, parsed)
    return SubViTSearchResult(
        study=study,
        chosen=chosen,
        arch=chosen.arch,
        metrics=dict(chosen.metrics),
        constraints={c.metric: chosen.metrics[c.metric] for c in parsed},
        history=[goal.oriented(v) for v in history],
    )
