"""NSGA-II (nasforge's own and Optuna's): survival, determinism, resume, search quality."""

from __future__ import annotations

import numpy as np
import pytest

import nasforge
from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.pareto import front_indices
from nasforge.spaces.base import SearchSpace
from nasforge.storage import InMemoryStorage
from nasforge.strategies.nsga2 import NSGA2
from nasforge.testing import check_strategy
from nasforge.trial import Trial, TrialState

OBJECTIVES = ["test_acc:max", "latency_ms[edgegpu]:min"]


def completed(number: int, arch, scores) -> Trial:
    return Trial(number, arch, TrialState.COMPLETE, scores=tuple(float(s) for s in scores))


def scores_of(bench, arch) -> tuple[float, float]:
    return (
        bench.query(arch, "cifar10", "test_acc"),
        -bench.query(arch, "cifar10", "latency_ms[edgegpu]"),
    )


def drive(strategy, bench, n: int) -> list[Architecture]:
    archs = []
    for i in range(n):
        arch = strategy.ask().arch
        archs.append(arch)
        strategy.tell(completed(i, arch, scores_of(bench, arch)))
    return archs


def test_first_generation_is_random_and_distinct(nb201):
    nsga = NSGA2(nb201, seed=0, population_size=10)
    archs = [nsga.ask().arch for _ in range(10)]
    assert len(set(archs)) == 10
    assert nsga.generation == 0 and nsga.population == []


def test_survival_keeps_the_non_dominated_set(nb201):
    nsga = NSGA2(nb201, seed=0, population_size=4, offspring_size=4)
    scores = [(1.0, 1.0), (0.0, 0.0), (2.0, 0.0), (0.0, 2.0)]  # (0, 0) is dominated by all
    for i, s in enumerate(scores):
        nsga.tell(completed(i, nsga.ask().arch, s))
    assert nsga.generation == 1
    assert [t.scores for t in nsga.population] == [(1, 1), (2, 0), (0, 2), (0, 0)]
    # children: one beats everything, one joins the front, two are dominated
    children = [(3.0, 3.0), (4.0, -1.0), (-1.0, -1.0), (0.5, 0.5)]
    for i, s in enumerate(children, start=4):
        nsga.tell(completed(i, nsga.ask().arch, s))
    assert nsga.generation == 2
    kept = {t.scores for t in nsga.population}
    # fronts of the 8: {(3,3), (4,-1)}, then {(1,1), (2,0), (0,2)}: the second front is cut
    # to two by crowding, where (1,1) (between the others) is the most crowded
    assert kept == {(3.0, 3.0), (4.0, -1.0), (2.0, 0.0), (0.0, 2.0)}


def test_population_is_the_front_when_it_fits(nb201, bench):
    nsga = NSGA2(nb201, seed=3, population_size=30)
    archs = drive(nsga, bench, 90)
    everything = np.array([scores_of(bench, a) for a in archs])
    best = {archs[int(i)] for i in front_indices(everything)}
    assert len(best) <= 30
    assert best <= {t.arch for t in nsga.population}


def test_failed_and_unscored_trials_never_join(nb201):
    nsga = NSGA2(nb201, seed=0, population_size=3)
    first = nsga.ask().arch
    nsga.tell(Trial(0, first, TrialState.FAILED, fail_reason="boom"))
    nsga.tell(Trial(1, nsga.ask().arch, TrialState.COMPLETE, scores=None))  # infeasible
    nsga.tell(completed(2, nsga.ask().arch, (1.0, 1.0)))
    assert [t.number for t in nsga.population] == [2]
    assert nsga.ask().arch != first  # children are varied away from proposed ones


def test_all_failed_first_generation_starts_again(nb201):
    nsga = NSGA2(nb201, seed=0, population_size=2)
    for i in range(2):
        nsga.tell(Trial(i, nsga.ask().arch, TrialState.FAILED))
    assert nsga.population == [] and nsga.generation == 0
    for i in range(2, 4):
        nsga.tell(completed(i, nsga.ask().arch, (float(i),)))
    assert nsga.generation == 1 and len(nsga.population) == 2


def test_same_seed_same_trials(nb201, bench):
    first = drive(NSGA2(nb201, seed=7), bench, 80)
    assert drive(NSGA2(nb201, seed=7), bench, 80) == first
    assert drive(NSGA2(nb201, seed=8), bench, 80) != first


def test_contract_with_small_population():
    check_strategy("nsga2", params={"population_size": 6, "offspring_size": 3})


def run_study(strategy: str, n: int, storage=None, params=None):
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=OBJECTIVES_METRICS)
    study = nasforge.create_study(
        strategy=strategy,
        seed=5,
        objectives=OBJECTIVES,
        storage=storage,
        study_name="mo",
        strategy_params=params,
    )
    return study.optimize(ev, n_trials=n)


OBJECTIVES_METRICS = ["test_acc", "latency_ms[edgegpu]"]


def test_multi_objective_study_resumes_exactly():
    whole = [t.arch for t in run_study("nsga2", 70).trials]
    storage = InMemoryStorage()
    run_study("nsga2", 33, storage)  # stops inside the second generation
    resumed = nasforge.load_study("mo", storage).optimize(n_trials=70)
    assert [t.arch for t in resumed.trials] == whole


class Ring(SearchSpace):
    """Twelve architectures on a ring; no decisions, so no crossover."""

    name = "ring"

    def sample(self, rng):
        return self.from_choices([int(rng.integers(12))])

    def parse(self, text):
        return self.from_choices([int(text)])

    def from_choices(self, choices):
        return Architecture(self.name, (int(choices[0]) % 12,), str(int(choices[0]) % 12))

    def neighbours(self, arch):
        return [self.from_choices([arch.choices[0] - 1]), self.from_choices([arch.choices[0] + 1])]


def test_space_without_crossover_gets_mutation_only():
    ring = Ring()
    nsga = NSGA2(ring, seed=0, population_size=4, offspring_size=4, crossover_prob=1.0)
    assert not nsga.crossover
    for i in range(12):
        arch = nsga.ask().arch
        ring.check(arch)
        nsga.tell(completed(i, arch, (float(arch.choices[0] % 5), float(-i))))
    assert nsga.generation == 3


def test_crossover_is_the_spaces_own(monkeypatch):
    darts = spaces.create("darts")
    nsga = NSGA2(darts, seed=0, population_size=4, offspring_size=4, crossover_prob=1.0)
    assert nsga.crossover  # DARTS crosses whole nodes (space.crossover)
    calls = []
    original = darts.crossover

    def counting(first, second, rng):
        calls.append((first, second))
        return original(first, second, rng)

    monkeypatch.setattr(darts, "crossover", counting)
    for i in range(12):
        arch = nsga.ask().arch
        darts.check(arch)
        nsga.tell(completed(i, arch, (float(i % 5), float(-i))))
    assert nsga.generation == 3 and len(calls) == 8


def test_beats_random_search_on_hypervolume_at_100_queries():
    from nasforge.experiments.pareto import run_pareto_comparison

    pytest.importorskip("moocore")
    result = run_pareto_comparison(["nsga2"], objectives=OBJECTIVES, seeds=10, budget=100, n_jobs=1)
    ours = result.ratios("nsga2", 100, reference="median")
    random = result.ratios("random", 100, reference="median")
    # the strict reference: the part of the front better than a typical cell in both
    assert ours.mean() > random.mean() + 0.05


@pytest.mark.parametrize(
    "params",
    [
        {"population_size": 1},
        {"offspring_size": 0},
        {"crossover_prob": 1.5},
        {"mutation_prob": -0.1},
    ],
)
def test_invalid_parameters(nb201, params):
    with pytest.raises(InvalidConfigError):
        NSGA2(nb201, **params)


# -- optuna-nsga2 -------------------------------------------------------------------------------
def test_optuna_nsga2_tells_every_objective(nb201, bench):
    optuna = pytest.importorskip("optuna")
    from nasforge.strategies.optuna_samplers import OptunaNSGAIISearch

    nsga = OptunaNSGAIISearch(nb201, seed=0, n_objectives=2, population_size=6)
    archs = drive(nsga, bench, 14)
    directions = nsga.optuna_study.directions
    assert directions == [optuna.study.StudyDirection.MAXIMIZE] * 2
    done = nsga.optuna_study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert [t.values for t in done] == [list(scores_of(bench, a)) for a in archs]
    again = drive(OptunaNSGAIISearch(nb201, seed=0, n_objectives=2, population_size=6), bench, 14)
    assert again == archs


def test_optuna_nsga2_fails_unscored_trials_and_refuses_a_wrong_count(nb201):
    optuna = pytest.importorskip("optuna")
    from nasforge.strategies.optuna_samplers import OptunaNSGAIISearch

    nsga = OptunaNSGAIISearch(nb201, seed=0, n_objectives=2)
    arch = nsga.ask().arch
    nsga.tell(Trial(0, arch, TrialState.COMPLETE, scores=None))
    assert nsga.optuna_study.trials[0].state is optuna.trial.TrialState.FAIL
    with pytest.raises(InvalidConfigError, match="n_objectives"):
        nsga.tell(completed(1, nsga.ask().arch, (1.0, 2.0, 3.0)))
    with pytest.raises(InvalidConfigError):
        OptunaNSGAIISearch(nb201, n_objectives=0)


def test_optuna_nsga2_in_a_multi_objective_study_resumes():
    pytest.importorskip("optuna")
    params = {"n_objectives": 2, "population_size": 8}
    whole = [t.arch for t in run_study("optuna-nsga2", 20, params=params).trials]
    storage = InMemoryStorage()
    run_study("optuna-nsga2", 11, storage, params=params)
    resumed = nasforge.load_study("mo", storage).optimize(n_trials=20)
    assert [t.arch for t in resumed.trials] == whole
