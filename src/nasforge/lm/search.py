"""Multi-objective search of the sub-networks of a fine-tuned ``llm`` super-network, as a
nasforge study.

Sarah, A., Sridhar, S. N., Szankin, M. and Sundaresan, S. "LLaMA-NAS: Efficient Neural
Architecture Search for Large Language Models." arXiv:2405.18377, Sec. 3-4: after one
fine-tuning, a genetic multi-objective search (LINAS, built on NSGA-II) looks for the
sub-networks on the Pareto front of task quality against model size, each candidate
evaluated with its inherited weights. Here the quality is the held-out perplexity of the
byte corpus (minimised) and the size ``params_M`` (or ``macs_M``, a latency stand-in; any
metric of the ``super-lm`` evaluator), searched by the registered ``nsga2`` strategy
(:class:`nasforge.strategies.nsga2.NSGA2`) or any other strategy.

Where this differs from the paper: LINAS also trains light predictors of the objectives to
pre-screen candidates; here every candidate is measured (one held-out pass of a small model).

The study lives in ``storage`` (``"sqlite:///search.db"`` to keep it): the same call with the
same ``study_name`` resumes it, and ``n_trials`` counts the whole study.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasforge.constraints import Constraint
from nasforge.errors import InfeasibleConstraintError, UnknownNameError
from nasforge.trial import Objective, Trial

if TYPE_CHECKING:
    from nasforge.evaluators.super_lm import SuperLMEvaluator
    from nasforge.study import Study

__all__ = ["SubLMSearchResult", "search_sublms"]

#: The default objectives.
OBJECTIVES = ("perplexity:min", "params_M:min")


@dataclass
class SubLMSearchResult:
    """What :func:`search_sublms` found.

    Attributes:
        study: The study (every measured sub-network a trial).
        front: Its Pareto front (feasible trials only), best first by the first objective.
    """

    study: Study
    front: list[Trial]


def _check_constraints(evaluator: SuperLMEvaluator, constraints: Sequence[Constraint]) -> None:
    """Refuse unknown metrics (listing the valid ones) and bounds on a cost that no
    sub-network meets (every cost grows with every dimension: the smallest sub-network has
    the lowest, the largest the highest)."""
    space = evaluator.lm_space
    valid = sorted(evaluator.metrics)
    for c in constraints:
        if c.metric not in valid:
            raise UnknownNameError("constraint metric (of the super-lm evaluator)", c.metric, valid)
        if c.metric in evaluator.free_metric_names:
            arch = space.smallest() if c.upper else space.largest()
            value = evaluator.free_metrics(arch)[c.metric]
            if not c.satisfied({c.metric: value}):
                word = "lowest" if c.upper else "highest"
                raise InfeasibleConstraintError(
                    f"No sub-network of the llm super-network meets {c}: the {word} reachable "
                    f"{c.metric} is {value:g} (sub-network {arch.text}). Loosen the bound."
                )


def search_sublms(
    source: str | os.PathLike[str] | SuperLMEvaluator,
    *,
    n_trials: int = 60,
    strategy: str = "nsga2",
    strategy_params: Mapping[str, Any] | None = None,
    objectives: Sequence[str] = OBJECTIVES,
    constraints: Sequence[str | Constraint] = (),
    storage: Any = None,
    study_name: str | None = None,
    seed: int = 0,
    evaluator_params: Mapping[str, Any] | None = None,
) -> SubLMSearchResult:
    """Search the sub-networks of the fine-tuned super-network in ``source`` (a folder of
    :func:`nasforge.lm.prepare_super_lm`, or a ``super-lm`` evaluator) for the Pareto front
    of ``objectives``.

    Args:
        source: The super-network's folder or its evaluator.
        n_trials: Trials of the whole study (a resumed study runs the rest).
        strategy: A registered strategy (``nasforge list strategies``); NSGA-II by default.
        strategy_params: Its keyword arguments.
        objectives: Metrics of the ``super-lm`` evaluator with directions.
        constraints: Bounds such as ``"params_M<=0.1"``; a bound on a cost is checked
            before the search.
        storage: Where the study is kept (``None``: memory).
        study_name: Its name (resumed when it exists with the same settings).
        seed: Seed of the strategy.
        evaluator_params: Keyword arguments of the evaluator (when ``source`` is a folder).

    Raises:
        UnknownNameError: An unknown metric or strategy.
        InfeasibleConstraintError: No sub-network meets a bound on a cost (the message gives
            the lowest reachable value), or no measured one meets a bound on perplexity (the
            message gives the lowest measured).
    """
    from nasforge.evaluators.super_lm import SuperLMEvaluator
    from nasforge.study import create_study

    if isinstance(source, SuperLMEvaluator):
        evaluator = source
    else:
        evaluator = SuperLMEvaluator(source, **dict(evaluator_params or {}))
    parsed = [Constraint.parse(c) for c in constraints]
    _check_constraints(evaluator, parsed)
    goals = [Objective.parse(o) for o in objectives]
    study = create_study(
        space=evaluator.lm_space, space_params=evaluator.lm_space.settings, strategy=strategy,
        strategy_params=strategy_params, seed=seed, storage=storage, study_name=study_name,
        objectives=[str(g) for g in goals], evaluator=evaluator, constraints=parsed,
        load_if_exists=True,
    )  # fmt: skip
    study.optimize(evaluator, n_trials=n_trials)
    front = sorted(
        study.pareto_front(), key=lambda t: goals[0].oriented(-t.metrics[goals[0].metric])
    )
    if not front:
        measured = [t for t in study.trials if goals[0].metric in t.metrics]
        parts = []
        for c in parsed:
            values = [t.metrics[c.metric] for t in measured if c.metric in t.metrics]
            if values:
                best = min(values) if c.upper else max(values)
                parts.append(f"{c}: {'lowest' if c.upper else 'highest'} measured {best:g}")
        raise InfeasibleConstraintError(
            f"None of the {len(study.trials)} sub-networks measured in study {study.name!r} "
            f"meets the constraints ({'; '.join(parts) or 'see its trials'}); loosen them."
        )
    return SubLMSearchResult(study=study, front=front)
