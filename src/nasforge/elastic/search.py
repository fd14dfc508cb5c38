"""Sub-network search on a trained elastic supernet: Once-for-All's accuracy predictor and
evolutionary search under device constraints, every measured sub-network a trial.

Cai, H., Gan, C., Wang, T., Zhang, Z. and Han, S. "Once-for-All: Train One Network and
Specialize it for Efficient Deployment." ICLR 2020, arXiv:1908.09791, Section 3.3
("Specialized model deployment with once-for-all network") and the authors' code
(mit-han-lab/once-for-all ``ofa/nas``):

1. measure the inherited accuracy of random sub-networks (after batch-norm recalibration:
   :class:`~nasforge.evaluators.supernet.SupernetEvaluator`);
2. train an accuracy predictor on them: a multi-layer perceptron of three hidden layers of
   400 ReLU units (:class:`AccuracyPredictor`) on OFA's encoding (:func:`encode`): per block
   a one-hot kernel and a one-hot expansion, zeros for the blocks beyond the stage's depth,
   and a one-hot resolution;
3. run OFA's evolutionary search (:func:`evolve`) on the predictor's scores: a population of
   random sub-networks that meet the constraints, then generations that keep the best quarter
   (``parent_ratio``) as parents and refill the population with mutations (half,
   ``mutation_ratio``: resolution redrawn with probability 0.5, each block's kernel and
   expansion and each stage's depth with ``mutate_prob``) and uniform crossovers of two
   parents; a child that violates a constraint is drawn again from the same parents;
4. measure the ``top_k`` sub-networks of the highest predicted score and keep the best one
   that meets every constraint when measured.

The sub-networks are those of the resolutions the supernet was trained at
(:func:`nasforge.elastic._train.trained_resolutions`; ``resolutions=`` chooses others): the
random ones, the evolution's population and mutations, the measured candidates and the lowest
reachable cost of a bound no sub-network meets; the predictor's encoding keeps a column for
every resolution of the space.

Each measured inherited accuracy is kept in the supernet's folder
(:class:`~nasforge.evaluators.supernet.SupernetEvaluator`'s cache), so a search under another
constraint (another study) records the same random sub-networks as trials again, marked
``valid_acc_cached = 1``, without measuring them again, as OFA trains its predictor once and
reuses it for every constraint.

Constraints on parameters, MACs and per-layer-table latency are checked on every candidate
from :class:`~nasforge.evaluators.supernet.SubnetCosts` (sums of per-block entries, for whole
populations at once). A constraint on latency measured on this machine is checked during the
evolution on a latency model fitted to the random sub-networks' measured latencies (ridge
regression on the same encoding: a learned per-block table, as OFA's latency predictor), then
on the final candidates by measuring them; when none meets it, the smallest sub-network is
measured too, and if even it does not, the error reports its latency.

Where this differs from the paper: OFA measures 16,000 sub-networks on 10,000 validation
images and searches for 500 generations; the defaults here (100 measured, 1,000 images, 500
generations) fit a CPU, and the predictor is fitted full-batch with Adam
(:class:`~nasforge.predictors.MLPEnsemble` with one member) on standardised targets (OFA
subtracts the mean accuracy). Any registered strategy can search instead
(``strategy="regularized-evolution"``...), every proposal measured; it proposes from the whole
space, at any resolution (trained or not: the evaluator measures what it is given).

:meth:`SubnetScorer.score` scores a batch of candidates (predictor and constraint checks) at
once; ``benchmarks/`` times it on 1,000 candidates. On the project's shared 2-core machine
(``ofa-cifar``, width 0.25): 1,000 candidates scored with a MACs bound in 0.03 s, OFA's 500
generations of 100 in 2 s, the predictor fitted to 100 sub-networks in 3 s; measuring a
sub-network (recalibration and 1,000 images) dominates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.constraints import Constraint
from nasforge.elastic._evolution import (
    AccuracyPredictor,
    Evolution,
    LatencyModel,
    Scores,
    SubnetScorer,
    canonical_rows,
    check_settings,
    encode,
    evolve,
    option_counts,
    sample_feasible,
    to_choices,
)
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError, UnknownNameError
from nasforge.evaluators.base import Evaluator
from nasforge.study._subnets import open_subnet_study
from nasforge.trial import Direction, Objective, Result, Trial

if TYPE_CHECKING:
    from nasforge.evaluators.supernet import SubnetCosts, SupernetEvaluator
    from nasforge.study import Study

__all__ = [
    "STRATEGY",
    "AccuracyPredictor",
    "Evolution",
    "LatencyModel",
    "Scores",
    "SubnetScorer",
    "SubnetSearchResult",
    "canonical_rows",
    "encode",
    "evolve",
    "random_rows",
    "sample_feasible",
    "search_subnets",
]

logger = logging.getLogger(__name__)

#: The name of Once-for-All's predictor-guided evolution (the default strategy).
STRATEGY = "ofa-evolution"


# -- the search as a study ----------------------------------------------------------------------
@dataclass
class SubnetSearchResult:
    """What :func:`search_subnets` found.

    Attributes:
        study: The study; every measured sub-network is one of its trials.
        chosen: The best trial that meets every constraint (the study's best).
        arch: The chosen sub-network.
        metrics: Its measured metrics (accuracy, costs, latencies).
        predicted: The predictor's value of the objective for the chosen sub-network
            (``None`` when it was not scored by the predictor: another strategy, or a
            random sub-network of the predictor's training set).
        constraints: Each constraint's metric value for the chosen sub-network.
        candidates: The top candidates measured at the end: ``(arch text, predicted,
            measured)`` of the objective.
        history: The best predicted fitness after each generation of the evolution.
        scorer: The batched scoring the evolution used (predictor and cheap constraints):
            ``scorer.score(rows)`` is what ``benchmarks/`` times on 1,000 candidates
            (``random_rows`` draws them); ``None`` for another strategy.
    """

    study: Study
    chosen: Trial
    arch: Architecture
    metrics: dict[str, float]
    predicted: float | None
    constraints: dict[str, float]
    candidates: list[tuple[str, float, float]] = field(default_factory=list)
    history: list[float] = field(default_factory=list)
    scorer: SubnetScorer | None = None


def _noting(inner: SupernetEvaluator, *, free: bool = True) -> Evaluator:
    """``inner`` whose results say when the accuracy came from its cache (the metric
    ``valid_acc_cached``, 1). Without ``free``, also without free metrics, so that the study
    measures every random sub-network of the predictor's training set (a constraint then
    only keeps an infeasible one from being the best) instead of rejecting some before
    measuring them."""
    from nasforge.evaluators.supernet import CACHED

    class Noting(Evaluator):
        space = inner.space
        cost_unit = inner.cost_unit

        @property
        def metrics(self) -> Mapping[str, Direction]:
            return inner.metrics

        @property
        def free_metric_names(self) -> tuple[str, ...]:
            return inner.free_metric_names if free else ()

        def free_metrics(self, arch: Architecture) -> Mapping[str, float]:
            return inner.free_metrics(arch) if free else {}

        def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
            hit = inner.cached_accuracy(arch) is not None
            result = inner.evaluate(arch, fidelity)
            if not hit:
                return result
            return Result({**result.metrics, CACHED: 1.0}, result.cost, result.seconds)

        def spec(self) -> dict[str, Any] | None:
            return inner.spec()

        def __repr__(self) -> str:
            return repr(inner)

    return Noting()


def _evaluator(
    source: str | os.PathLike[str] | SupernetEvaluator,
    params: Mapping[str, Any],
    tables: Any,
    measure: bool | None,
    constraints: Sequence[Constraint],
) -> SupernetEvaluator:
    from nasforge.evaluators.supernet import SupernetEvaluator

    if isinstance(source, SupernetEvaluator):
        if params or tables or measure is not None:
            raise InvalidConfigError(
                "Give the evaluator's settings (evaluator_params, tables, measure) to the "
                "SupernetEvaluator itself, not beside it."
            )
        return source
    wanted = measure
    if wanted is None:
        wanted = any(
            c.metric.startswith("measured_latency_ms[") or c.metric == "latency_ms[cpu-torch]"
            for c in constraints
        )
    return SupernetEvaluator(source, **dict(params), tables=tables or (), measure=wanted)


def _check_constraints(
    evaluator: SupernetEvaluator, costs: SubnetCosts, constraints: Sequence[Constraint]
) -> None:
    """Refuse unknown metrics (listing the valid ones) and bounds no sub-network of the
    resolutions in use meets on a cost (reporting the lowest, or highest, reachable value
    and a sub-network reaching it)."""
    valid = sorted({*evaluator.metrics, *evaluator.free_metric_names})
    for c in constraints:
        if c.metric not in valid:
            raise UnknownNameError(f"constraint metric (of {evaluator!r})", c.metric, valid)
        if c.metric in costs.names:
            value, arch = costs.extreme(c.metric, lowest=c.upper)
            if not c.satisfied({c.metric: value}):
                word = "lowest" if c.upper else "highest"
                raise InfeasibleConstraintError(
                    f"No sub-network of the {evaluator.space} supernet at resolutions "
                    f"{list(costs.in_use)} meets {c}: the {word} reachable {c.metric} is "
                    f"{value:g} (sub-network {arch.text}). Loosen the bound."
                )


def random_rows(costs: SubnetCosts, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` sub-networks drawn uniformly at the resolutions in use (rows of choice
    indices), e.g. candidates to time :meth:`SubnetScorer.score` on."""
    options = option_counts(costs)
    return to_choices(costs, rng.integers(0, options, size=(count, len(options))))


def _distinct_random(costs: SubnetCosts, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct sub-networks (canonical rows) drawn uniformly at the resolutions in
    use, in order of draw."""
    options = option_counts(costs)
    rows = np.empty((0, len(options)), dtype=int)
    while len(rows) < count:
        drawn = rng.integers(0, options, size=(2 * count, len(options)))
        drawn = canonical_rows(costs, to_choices(costs, drawn))
        merged = np.concatenate([rows, drawn])
        _, first = np.unique(merged, axis=0, return_index=True)
        rows = merged[np.sort(first)]
    return rows[:count]


def search_subnets(
    out_dir: str | os.PathLike[str] | SupernetEvaluator,
    *,
    constraints: Sequence[str | Constraint] = (),
    storage: Any = None,
    study_name: str | None = None,
    strategy: str = STRATEGY,
    strategy_params: Mapping[str, Any] | None = None,
    objective: str = "valid_acc:max",
    measured: int = 100,
    population: int = 100,
    generations: int = 500,
    mutate_prob: float = 0.1,
    resolution_mutate_prob: float = 0.5,
    parent_ratio: float = 0.25,
    mutation_ratio: float = 0.5,
    top_k: int = 5,
    predictor_epochs: int = 300,
    n_trials: int | None = None,
    seed: int = 0,
    tables: Any = (),
    measure: bool | None = None,
    evaluator_params: Mapping[str, Any] | None = None,
    resolutions: Sequence[int] | None = None,
) -> SubnetSearchResult:
    """Search the sub-networks of the supernet trained in ``out_dir`` under ``constraints``.

    With ``strategy="ofa-evolution"`` (the default): Once-for-All's search (see the module
    docstring): ``measured`` random sub-networks measured, the accuracy predictor fitted to
    them, the evolution on its scores, the ``top_k`` best predicted sub-networks that meet
    the cheap constraints measured. Any other registered strategy searches with the
    evaluator directly for ``n_trials`` trials (default ``measured + top_k``). Either way
    every measured sub-network is a trial of the study (in ``storage``), and the result's
    ``chosen`` trial, the best that meets every constraint when measured, is the study's best
    (what ``nasforge export`` writes).

    Args:
        out_dir: The folder of the trained supernet, or a
            :class:`~nasforge.evaluators.supernet.SupernetEvaluator`.
        constraints: Bounds such as ``"macs_M<=5"``, ``"latency_ms[pixel1-lut]<=20"`` or
            ``"measured_latency_ms[cpu-torch-lut]<=3"``.
        storage, study_name: Where the study is kept and its name (an existing study of the
            same settings is resumed: what it measured is not measured again).
        strategy: ``"ofa-evolution"`` or a registered strategy's name.
        strategy_params: Keyword arguments of another strategy.
        objective: The metric the search maximises (or minimises), ``"valid_acc:max"``.
        measured: Random sub-networks measured to fit the predictor.
        population, generations, mutate_prob, resolution_mutate_prob, parent_ratio,
            mutation_ratio: OFA's evolution (:func:`evolve`).
        top_k: Best predicted sub-networks measured at the end.
        predictor_epochs: Adam steps of the predictor's fit.
        n_trials: Trials of another strategy.
        seed: Seed of the random sub-networks, the predictor and the evolution.
        tables: Per-layer latency tables (see the ``supernet`` evaluator).
        measure: Time the sub-networks here (default: when a constraint names a measured
            latency).
        evaluator_params: Other settings of the evaluator (``data``, ``dataset``,
            ``synthetic``, ``recalibration_batches``, ``valid_images``...).
        resolutions: The input sides of the sub-networks searched (default: those the
            supernet was trained at); options of the space. Only for ``"ofa-evolution"``:
            another strategy proposes from the whole space.

    Raises:
        UnknownNameError: A constraint on a metric the evaluator does not know (the valid
            ones are listed), or an unknown strategy.
        InfeasibleConstraintError: No sub-network meets a constraint (the message gives the
            lowest reachable value and a sub-network that reaches it).
        InvalidConfigError: Counts out of range, settings of a strategy they do not fit, or
            resolutions not of the space (the valid ones are listed).
    """
    parsed = [Constraint.parse(c) for c in constraints]
    goal = Objective.parse(objective)
    evaluator = _evaluator(out_dir, evaluator_params or {}, tables, measure, parsed)
    if resolutions is not None and strategy != STRATEGY:
        raise InvalidConfigError(
            f"resolutions applies to {STRATEGY!r}; the {strategy!r} strategy proposes "
            "sub-networks of the whole space."
        )
    costs = evaluator.costs if resolutions is None else evaluator.costs.restricted(resolutions)
    _check_constraints(evaluator, costs, parsed)
    if goal.metric not in evaluator.metrics:
        raise UnknownNameError("objective metric", goal.metric, evaluator.metrics)
    for name, value, least in (("measured", measured, 2), ("top_k", top_k, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidConfigError(f"{name} must be an integer >= {least}, got {value!r}.")
    if strategy == STRATEGY:
        check_settings(
            population, generations, mutate_prob, resolution_mutate_prob, parent_ratio,
            mutation_ratio,
        )  # fmt: skip
    else:
        return _with_strategy(
            evaluator, strategy, strategy_params, goal, parsed, storage, study_name, seed,
            n_trials if n_trials is not None else measured + top_k,
        )  # fmt: skip
    if strategy_params or n_trials is not None:
        raise InvalidConfigError(
            f"strategy_params and n_trials are for other strategies; {STRATEGY!r} takes "
            "measured, population, generations, ..., top_k."
        )
    params = {
        "measured": measured,
        "population": population,
        "generations": generations,
        "mutate_prob": mutate_prob,
        "resolution_mutate_prob": resolution_mutate_prob,
        "parent_ratio": parent_ratio,
        "mutation_ratio": mutation_ratio,
        "top_k": top_k,
        "predictor_epochs": predictor_epochs,
        "resolutions": list(costs.in_use),
    }
    study = open_subnet_study(evaluator, STRATEGY, params, seed, storage, study_name, goal, parsed)
    sample_rng, evolve_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
    )
    space = costs.space
    noting = _noting(evaluator)
    done = {t.arch.text: t for t in study.trials if t.state.finished}

    def measure_one(arch: Architecture, ev: Evaluator, extra: Mapping[str, float]) -> Trial:
        known = done.get(arch.text)
        if known is None:
            known = done[arch.text] = study.record_architecture(arch, ev, extra=extra)
        return known

    # (a) random sub-networks, every one measured
    view = _noting(evaluator, free=False)
    rows, values, trials = [], [], []
    for row in _distinct_random(costs, measured, sample_rng):
        trial = measure_one(space.from_choices(row.tolist()), view, {})
        if goal.metric in trial.metrics:
            rows.append(row)
            values.append(trial.metrics[goal.metric])
            trials.append(trial)
    if len(rows) < 2:
        raise InvalidConfigError(
            f"Only {len(rows)} of the {measured} random sub-networks could be measured; see "
            f"the failed trials of study {study.name!r} for why."
        )
    X = np.array(rows)
    # (b) the accuracy predictor, and latency models for constraints on measured latency
    predictor = AccuracyPredictor(costs, epochs=predictor_epochs, seed=seed).fit(
        X, np.array(values)
    )
    models = {
        c.metric: LatencyModel(costs, X, np.array([t.metrics[c.metric] for t in trials])).predict
        for c in parsed
        if c.metric in evaluator.measured_names
    }
    scorer = SubnetScorer(costs, predictor.predict, goal, parsed, models)
    # (c) OFA's evolution on the predictor's scores
    try:
        found: Evolution | None = evolve(
            scorer, evolve_rng, population=population, generations=generations,
            mutate_prob=mutate_prob, resolution_mutate_prob=resolution_mutate_prob,
            parent_ratio=parent_ratio, mutation_ratio=mutation_ratio,
        )  # fmt: skip
    except InfeasibleConstraintError:
        if not models and all(c.metric != goal.metric for c in parsed):
            raise
        found = None  # only predictions rule every candidate out: report what was measured
    # (d) the best predicted candidates, measured
    best = found.candidates[:top_k] if found is not None else np.empty((0, X.shape[1]), int)
    predicted = scorer.score(best).predicted
    key = f"predicted_{goal.metric}"
    finals = []
    for row, guess in zip(best, predicted, strict=True):
        trial = measure_one(space.from_choices(row.tolist()), noting, {key: float(guess)})
        finals.append((trial.arch.text, float(guess), trial.metrics.get(goal.metric, np.nan)))
    chosen = _chosen(study, evaluator, costs, noting, parsed, measure_one)
    guesses = {text: guess for text, guess, _ in finals}
    return SubnetSearchResult(
        study=study,
        chosen=chosen,
        arch=chosen.arch,
        metrics=dict(chosen.metrics),
        predicted=guesses.get(chosen.arch.text),
        constraints={c.metric: chosen.metrics[c.metric] for c in parsed},
        candidates=finals,
        history=found.history if found is not None else [],
        scorer=scorer,
    )


def _chosen(
    study: Study,
    evaluator: SupernetEvaluator,
    costs: SubnetCosts,
    noting: Evaluator,
    constraints: Sequence[Constraint],
    measure_one: Callable[[Architecture, Evaluator, Mapping[str, float]], Trial],
) -> Trial:
    """The study's best feasible trial. When none meets the constraints when measured and
    one of them bounds a latency measured here, the smallest sub-network of the resolutions
    in use (by table latency, else MACs) is measured too; if still none meets them, the
    error reports for each bound missed the tightest value measured (the smallest
    sub-network's for a latency)."""
    from nasforge.errors import StorageError

    try:
        return study.best_trial
    except StorageError:
        pass
    smallest = None
    if any(c.metric in evaluator.measured_names for c in constraints):
        cheapest = next((n for n in costs.names if n.startswith("latency_ms[")), "macs_M")
        smallest = costs.extreme(cheapest, lowest=True)[1]
        measure_one(smallest, noting, {})
        try:
            return study.best_trial
        except StorageError:
            pass
    parts = []
    for c in constraints:
        seen = [(t.metrics[c.metric], t) for t in study.trials if c.metric in t.metrics]
        if not seen or any(c.satisfied(t.metrics) for _, t in seen):
            continue
        value, trial = (min if c.upper else max)(seen, key=lambda pair: pair[0])
        word = "lowest" if c.upper else "highest"
        by = f", by the smallest sub-network {smallest.text}" if trial.arch == smallest else ""
        parts.append(f"{c}: the {word} {c.metric} measured was {value:g}{by}")
    raise InfeasibleConstraintError(
        f"None of the {len(study.trials)} sub-networks measured in study {study.name!r} meets "
        f"the constraints ({'; '.join(parts) or 'see its failed trials'}); loosen the bounds."
    )


def _with_strategy(
    evaluator: SupernetEvaluator,
    strategy: str,
    strategy_params: Mapping[str, Any] | None,
    goal: Objective,
    constraints: Sequence[Constraint],
    storage: Any,
    study_name: str | None,
    seed: int,
    n_trials: int,
) -> SubnetSearchResult:
    """Search with a registered strategy, every proposal measured by the evaluator (at any
    resolution the strategy proposes)."""
    from nasforge.study import create_study

    study = create_study(
        space=evaluator.space, strategy=strategy, strategy_params=strategy_params, seed=seed,
        storage=storage, study_name=study_name, objectives=[str(goal)], evaluator=evaluator,
        constraints=constraints, load_if_exists=True,
    )  # fmt: skip
    study.optimize(_noting(evaluator), n_trials=n_trials)
    chosen = study.best_trial
    return SubnetSearchResult(
        study=study,
        chosen=chosen,
        arch=chosen.arch,
        metrics=dict(chosen.metrics),
        predicted=None,
        constraints={c.metric: chosen.metrics[c.metric] for c in constraints},
    )
