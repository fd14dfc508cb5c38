"""Once-for-All's accuracy predictor, batched candidate scoring and evolutionary search
(private; the public names are re-exported by :mod:`nasforge.elastic.search`, whose
docstring describes the method: Cai et al., "Once-for-All: Train One Network and Specialize
it for Efficient Deployment", ICLR 2020, arXiv:1908.09791, Section 3.3).

Works on rows of choice indices of an ``ofa`` space, laid out by
:class:`~nasforge.evaluators.supernet.SubnetCosts`; no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nasforge.constraints import Constraint
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError
from nasforge.trial import Direction, Objective

if TYPE_CHECKING:
    from nasforge.evaluators.supernet import SubnetCosts

__all__ = [
    "AccuracyPredictor",
    "Evolution",
    "LatencyModel",
    "Scores",
    "SubnetScorer",
    "canonical_rows",
    "check_settings",
    "encode",
    "evolve",
    "option_counts",
    "sample_feasible",
    "to_choices",
]


# -- encoding and predictors --------------------------------------------------------------------
def encode(costs: SubnetCosts, choices: np.ndarray) -> np.ndarray:
    """OFA's encoding of each row of ``choices``: a one-hot resolution, then per block (stage
    by stage) a one-hot kernel, then per block a one-hot expansion; blocks beyond their
    stage's depth are all zeros.

    Example:
        >>> from nasforge import spaces
        >>> from nasforge.evaluators.supernet import SubnetCosts
        >>> space = spaces.create("ofa-cifar")
        >>> x = encode(SubnetCosts(space), np.array([space.smallest().choices]))
        >>> x.shape, int(x.sum())  # 3 + 20 * 3 + 20 * 3 columns; 1 + 10 + 10 ones
        ((1, 123), 21)
    """
    choices = np.asarray(choices, dtype=int)
    n = len(choices)
    active = costs.active(choices)[..., None]
    kernels = np.eye(costs.n_kernels)[choices[:, costs.kernel_cols]] * active
    expansions = np.eye(costs.n_expansions)[choices[:, costs.expansion_cols]] * active
    resolution = np.eye(len(costs.resolutions))[choices[:, costs.res_col]]
    blocks = [
        part.reshape(n, costs.stages * costs.max_depth * part.shape[-1])
        for part in (kernels, expansions)
    ]
    return np.concatenate([resolution, *blocks], axis=1)


class AccuracyPredictor:
    """OFA's accuracy predictor: three hidden layers of ``hidden`` ReLU units on
    :func:`encode`, fitted to measured accuracies (mean squared error on standardised
    targets, full-batch Adam).

    OFA fits it to 16,000 measured sub-networks; fitted to a hundred, the network
    interpolates them and predicts little better than their mean unless its weights are
    penalised: on 120 random ``ofa-cifar`` sub-networks whose made-up accuracy is a function
    of their MACs, the held-out error was 87% of the mean's without the penalty, 2% with
    ``weight_decay=1e-2`` and ``lr=1e-2`` (300 steps), hence the defaults.

    Args:
        costs: The space's layout (:class:`~nasforge.evaluators.supernet.SubnetCosts`).
        hidden: Width of each of the three hidden layers (OFA: 400).
        epochs: Adam steps of a fit.
        lr: Adam's learning rate.
        weight_decay: L2 penalty on the weights.
        seed: Seed of the initial weights.
    """

    def __init__(
        self,
        costs: SubnetCosts,
        *,
        hidden: int = 400,
        epochs: int = 300,
        lr: float = 1e-2,
        weight_decay: float = 1e-2,
        seed: int = 0,
    ) -> None:
        from nasforge.predictors import MLPEnsemble

        self.costs = costs
        self.model = MLPEnsemble(
            n_members=1,
            hidden=(hidden,) * 3,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
        )

    def fit(self, choices: np.ndarray, values: np.ndarray) -> AccuracyPredictor:
        """Fit to the measured ``values`` of the rows of ``choices``."""
        self.model.fit(encode(self.costs, choices), np.asarray(values, dtype=float))
        return self

    def predict(self, choices: np.ndarray) -> np.ndarray:
        """The predicted value of each row of ``choices``."""
        mean, _ = self.model.predict(encode(self.costs, choices))
        return np.asarray(mean)


class LatencyModel:
    """Latency measured here, predicted by ridge regression on :func:`encode` (a learned
    per-block table) from the sub-networks measured so far."""

    def __init__(self, costs: SubnetCosts, choices: np.ndarray, values: np.ndarray) -> None:
        from nasforge.predictors.ridge import ridge_loo

        self.costs = costs
        self.fit = ridge_loo(encode(costs, choices), np.asarray(values, dtype=float))

    def predict(self, choices: np.ndarray) -> np.ndarray:
        return np.asarray(self.fit.predict(encode(self.costs, choices)))


# -- scoring ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scores:
    """What :meth:`SubnetScorer.score` says of a batch of candidates.

    Attributes:
        predicted: The predicted objective of each (in the metric's own sense).
        fitness: What the evolution maximises (``predicted``, negated for a metric to
            minimise).
        metrics: The cheap metrics of each (costs and predicted latencies), by name.
        feasible: Whether each meets every constraint checked cheaply.
    """

    predicted: np.ndarray
    fitness: np.ndarray
    metrics: dict[str, np.ndarray]
    feasible: np.ndarray


class SubnetScorer:
    """Scores candidate sub-networks (rows of choice indices) in batches: the predicted
    objective, the costs, and the constraints that can be checked without measuring.

    Args:
        costs: The cost model of the sub-networks.
        predict: The predicted objective of a batch of rows.
        objective: The objective (``valid_acc:max``).
        constraints: Checked on the costs, on the predicted objective, or on ``models``.
        models: Predictors of other metrics (a measured latency) by metric name.
    """

    def __init__(
        self,
        costs: SubnetCosts,
        predict: Callable[[np.ndarray], np.ndarray],
        objective: Objective,
        constraints: Sequence[Constraint] = (),
        models: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    ) -> None:
        self.costs = costs
        self.predict = predict
        self.objective = objective
        self.models = dict(models or {})
        known = {*costs.names, objective.metric, *self.models}
        self.cheap = [c for c in constraints if c.metric in known]

    def feasible(self, choices: np.ndarray) -> np.ndarray:
        """Whether each row meets the cheaply checked constraints (without the predictor
        unless a constraint is on the objective)."""
        return self._check(choices, None)[1]

    def _check(
        self, choices: np.ndarray, predicted: np.ndarray | None
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        metrics = self.costs.batch(choices)
        for name, model in self.models.items():
            metrics[name] = model(choices)
        if any(c.metric == self.objective.metric for c in self.cheap):
            metrics[self.objective.metric] = (
                self.predict(choices) if predicted is None else predicted
            )
        ok = np.ones(len(choices), dtype=bool)
        for c in self.cheap:
            ok &= c.satisfied_array(metrics[c.metric])
        return metrics, ok

    def score(self, choices: np.ndarray) -> Scores:
        """Predictions, cheap metrics and feasibility of every row of ``choices``."""
        choices = np.asarray(choices, dtype=int)
        predicted = np.asarray(self.predict(choices), dtype=float)
        metrics, ok = self._check(choices, predicted)
        sign = 1.0 if self.objective.direction is Direction.MAXIMIZE else -1.0
        return Scores(predicted, sign * predicted, metrics, ok)


# -- Once-for-All's evolution -------------------------------------------------------------------
@dataclass(frozen=True)
class Evolution:
    """The outcome of :func:`evolve`.

    Attributes:
        candidates: Every distinct sub-network scored (canonical rows of choices), best
            predicted first; all meet the cheap constraints.
        fitness: Their fitness (the predicted objective, larger is better).
        history: The best fitness of the population after each generation (the first entry:
            the initial population).
        initial: The fitness of the initial population.
    """

    candidates: np.ndarray
    fitness: np.ndarray
    history: list[float]
    initial: np.ndarray


def canonical_rows(costs: SubnetCosts, choices: np.ndarray) -> np.ndarray:
    """``choices`` with the kernel and expansion of the blocks beyond each stage's depth set
    to their first options (those blocks are not part of the network)."""
    out = np.array(choices, dtype=int, copy=True)
    inactive = ~costs.active(out)
    out[:, costs.kernel_cols] = np.where(inactive, 0, out[:, costs.kernel_cols])
    out[:, costs.expansion_cols] = np.where(inactive, 0, out[:, costs.expansion_cols])
    return out


def option_counts(costs: SubnetCosts) -> np.ndarray:
    """How many options a draw has for each decision: the resolutions in use for the
    resolution (``costs.allowed``), every option for the others; :func:`to_choices` maps a
    draw to choice indices."""
    counts = np.array([len(d.options) for d in costs.decisions])
    counts[costs.res_col] = len(costs.allowed)
    return counts


def to_choices(costs: SubnetCosts, draws: np.ndarray) -> np.ndarray:
    """Rows drawn within :func:`option_counts` as choice indices of the space (the
    resolution's draw indexes the resolutions in use; the same rows when all are)."""
    out = np.array(draws, dtype=int, copy=True)
    out[:, costs.res_col] = costs.allowed[out[:, costs.res_col]]
    return out


def sample_feasible(
    scorer: SubnetScorer, count: int, rng: np.random.Generator, *, rounds: int = 200
) -> np.ndarray:
    """``count`` sub-networks drawn uniformly among those that meet the cheap constraints
    (OFA's ``random_valid_sample``: draw until one fits), in batches.

    Raises:
        InfeasibleConstraintError: Fewer than ``count`` feasible ones in ``rounds`` batches.
    """
    options = option_counts(scorer.costs)
    found: list[np.ndarray] = []
    have = drawn = 0
    batch = max(256, 2 * count)
    for _ in range(rounds):
        rows = to_choices(scorer.costs, rng.integers(0, options, size=(batch, len(options))))
        kept = rows[scorer.feasible(rows)]
        found.append(kept)
        have += len(kept)
        drawn += batch
        if have >= count:
            return np.concatenate(found)[:count]
    shown = ", ".join(map(str, scorer.cheap))
    raise InfeasibleConstraintError(
        f"Only {have} of {drawn} random sub-networks meet the constraints together ({shown}), "
        f"fewer than the {count} the evolution starts from; loosen the bounds, or give a "
        "smaller population."
    )


def _mutate(
    costs: SubnetCosts,
    parents: np.ndarray,
    rng: np.random.Generator,
    mutate_prob: float,
    resolution_prob: float,
) -> np.ndarray:
    """OFA's mutation: the resolution redrawn (among those in use) with ``resolution_prob``,
    each block's kernel and expansion (together) and each stage's depth with
    ``mutate_prob``."""
    n = len(parents)
    child = np.array(parents, dtype=int, copy=True)
    redraw = rng.random(n) < resolution_prob
    drawn = costs.allowed[rng.integers(0, len(costs.allowed), n)]
    child[:, costs.res_col] = np.where(redraw, drawn, child[:, costs.res_col])
    shape = (n, *costs.kernel_cols.shape)
    blocks = rng.random(shape) < mutate_prob
    kernels = rng.integers(0, costs.n_kernels, shape)
    expansions = rng.integers(0, costs.n_expansions, shape)
    child[:, costs.kernel_cols] = np.where(blocks, kernels, child[:, costs.kernel_cols])
    child[:, costs.expansion_cols] = np.where(blocks, expansions, child[:, costs.expansion_cols])
    stages = rng.random((n, costs.stages)) < mutate_prob
    depths = rng.integers(0, len(costs.depth_options), (n, costs.stages))
    child[:, costs.depth_cols] = np.where(stages, depths, child[:, costs.depth_cols])
    return child


def _crossover(first: np.ndarray, second: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """OFA's crossover: every decision taken from either parent with equal odds."""
    return np.where(rng.random(first.shape) < 0.5, first, second)


def _children(
    make: Callable[[np.ndarray], np.ndarray],
    pick: np.ndarray,
    fallback: np.ndarray,
    scorer: SubnetScorer,
    rounds: int,
) -> np.ndarray:
    """Children ``make(pick)`` that meet the cheap constraints: the infeasible ones are made
    again from the same parents (OFA's loop), at most ``rounds`` times, then replaced by
    ``fallback`` (a feasible parent)."""
    out = make(pick)
    bad = ~scorer.feasible(out)
    for _ in range(rounds):
        if not bad.any():
            return out
        out[bad] = make(pick[bad])
        bad[bad] = ~scorer.feasible(out[bad])
    out[bad] = fallback[bad]
    return out


def check_settings(
    population: int,
    generations: int,
    mutate_prob: float,
    resolution_mutate_prob: float,
    parent_ratio: float,
    mutation_ratio: float,
) -> None:
    """Refuse settings :func:`evolve` cannot run with (before anything is measured).

    Raises:
        InvalidConfigError: A population below 2, negative generations, probabilities
            outside [0, 1] or ratios outside (0, 1].
    """
    if isinstance(population, bool) or not isinstance(population, int) or population < 2:
        raise InvalidConfigError(f"population must be an integer >= 2, got {population!r}.")
    if isinstance(generations, bool) or not isinstance(generations, int) or generations < 0:
        raise InvalidConfigError(f"generations must be an integer >= 0, got {generations!r}.")
    for name, value in (
        ("mutate_prob", mutate_prob),
        ("resolution_mutate_prob", resolution_mutate_prob),
    ):
        if not 0.0 <= value <= 1.0:
            raise InvalidConfigError(f"{name} must be in [0, 1], got {value!r}.")
    for name, value in (("parent_ratio", parent_ratio), ("mutation_ratio", mutation_ratio)):
        if not 0.0 < value <= 1.0:
            raise InvalidConfigError(f"{name} must be in (0, 1], got {value!r}.")


def evolve(
    scorer: SubnetScorer,
    rng: np.random.Generator,
    *,
    population: int = 100,
    generations: int = 500,
    mutate_prob: float = 0.1,
    resolution_mutate_prob: float = 0.5,
    parent_ratio: float = 0.25,
    mutation_ratio: float = 0.5,
    retries: int = 50,
) -> Evolution:
    """Once-for-All's evolutionary search on ``scorer``'s fitness (see the module docstring;
    the defaults are OFA's ``EvolutionFinder``'s, ``generations`` its ``max_time_budget``).

    Raises:
        InvalidConfigError: A population below 2 or ratios outside (0, 1].
        InfeasibleConstraintError: The initial population cannot be drawn.
    """
    check_settings(
        population, generations, mutate_prob, resolution_mutate_prob, parent_ratio, mutation_ratio
    )
    costs = scorer.costs
    n_parents = max(1, round(parent_ratio * population))
    n_mutations = round(mutation_ratio * population)
    pool = sample_feasible(scorer, population, rng)
    fitness = scorer.score(pool).fitness
    initial = fitness.copy()
    seen_rows, seen_fit = [pool], [fitness]
    history = [float(fitness.max())]
    for _ in range(generations):
        order = np.argsort(-fitness, kind="stable")[:n_parents]
        parents, parent_fit = pool[order], fitness[order]
        first = rng.integers(0, n_parents, n_mutations)
        mutated = _children(
            lambda p: _mutate(costs, p, rng, mutate_prob, resolution_mutate_prob),
            parents[first], parents[first], scorer, retries,
        )  # fmt: skip
        pairs = rng.integers(0, n_parents, (population - n_mutations, 2))
        crossed = _children(
            lambda p: _crossover(p[:, 0], p[:, 1], rng),
            parents[pairs], parents[pairs[:, 0]], scorer, retries,
        )  # fmt: skip
        children = np.concatenate([mutated, crossed])
        child_fit = scorer.score(children).fitness
        pool = np.concatenate([parents, children])
        fitness = np.concatenate([parent_fit, child_fit])
        seen_rows.append(children)
        seen_fit.append(child_fit)
        history.append(float(fitness.max()))
    rows = canonical_rows(costs, np.concatenate(seen_rows))
    fits = np.concatenate(seen_fit)
    order = np.argsort(-fits, kind="stable")
    _, first_seen = np.unique(rows[order], axis=0, return_index=True)
    keep = order[np.sort(first_seen)]
    return Evolution(rows[keep], fits[keep], history, initial)
