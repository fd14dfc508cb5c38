"""BANANAS behaves as White et al. (2021) describe, and beats random search and evolution."""

from __future__ import annotations

import numpy as np
import pytest

import nasforge
from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError
from nasforge.predictors.mlp import MLPEnsemble
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.bananas import Bananas
from nasforge.trial import Trial, TrialState


@pytest.fixture(scope="module")
def table():
    return nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])


def run(strategy: Bananas, table, n: int, *, fail_every: int = 0) -> list[Trial]:
    """Ask and tell ``n`` times, answering from the table (every ``fail_every``-th fails)."""
    trials = []
    for number in range(n):
        arch = strategy.ask().arch
        if fail_every and number % fail_every == fail_every - 1:
            trial = Trial(number=number, arch=arch, state=TrialState.FAILED)
        else:
            score = table.evaluate(arch).metrics["valid_acc"]
            trial = Trial(number, arch, state=TrialState.COMPLETE, scores=(score,))
        strategy.tell(trial)
        trials.append(trial)
    return trials


def test_beats_random_search_and_evolution_at_50_queries():
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc", "test_acc"])

    def mean_best_test(strategy: str) -> float:
        found = []
        for seed in range(20):
            # without deduplication: the setting these margins were measured in
            study = nasforge.create_study(strategy=strategy, seed=seed, dedupe=False)
            study.optimize(ev, n_trials=50)
            found.append(study.best_trial.metrics["test_acc"])
        return float(np.mean(found))

    bananas = mean_best_test("bananas")
    # measured over these seeds: see the margins in the assertion messages
    assert bananas > mean_best_test("random") + 0.2
    assert bananas > mean_best_test("regularized-evolution") + 0.05


def test_never_proposes_an_architecture_twice(nb201, table):
    strategy = Bananas(nb201, seed=3, k=7, n_candidates=20)
    trials = run(strategy, table, 80, fail_every=9)
    archs = [t.arch for t in trials]
    assert len(set(archs)) == len(archs)


class HashedNB201(NB201Space):
    """NB201 whose functional key is a string, as a generic hash of the built network is."""

    def functional_key(self, arch):
        return "hash:" + str(self.canonical(arch))


def test_proposes_no_functional_twin_when_it_follows_a_functional_key(nb201, table):
    follows = Bananas(nb201, seed=3, k=7, n_candidates=20)
    follows.functional_key = nb201.functional_key  # what create_study(dedupe=True) does
    forms = [nb201.canonical(t.arch) for t in run(follows, table, 60)]
    assert len(set(forms)) == 60
    hashed = HashedNB201()
    own = Bananas(hashed, seed=3, k=7, n_candidates=20, canonical=True)
    assert len({hashed.functional_key(t.arch) for t in run(own, table, 60)}) == 60
    # without a deduplicating study it takes every architecture as its own: as canonical=False
    plain = [t.arch for t in run(Bananas(nb201, seed=3, k=7, n_candidates=20), table, 60)]
    never = Bananas(nb201, seed=3, k=7, n_candidates=20, canonical=False)
    never.functional_key = nb201.functional_key
    assert plain == [t.arch for t in run(never, table, 60)]


def test_canonical_true_needs_a_space_that_knows_functions():
    class Plain(SearchSpace):
        name = "plain"

        def parse(self, text):
            return self.from_choices([int(c) for c in text])

        def from_choices(self, choices):
            text = "".join(map(str, choices))
            return nasforge.Architecture("plain", tuple(choices), text)

        def decisions(self):
            return (Decision("a", ("x", "y", "z")), Decision("b", ("x", "y", "z")))

    with pytest.raises(UnsupportedOperationError, match=r"canonical=True .* neither a canonical"):
        Bananas(Plain(), canonical=True)
    assert Bananas(Plain(), seed=0).ask().arch.space == "plain"


def test_the_first_proposals_are_random_then_the_model_takes_over(nb201, table):
    strategy = Bananas(nb201, seed=0, n_initial=6, n_neighbour_parents=1)
    trials = run(strategy, table, 6)
    rng = np.random.default_rng(0)
    assert [t.arch for t in trials] == [nb201.sample(rng) for _ in range(6)]
    best = max(trials, key=lambda t: t.score).arch
    near = set(nb201.neighbours(best))
    batch = [strategy.ask().arch for _ in range(strategy.k)]
    # candidates are the neighbours of the best and mutants of the good ones
    assert any(arch in near for arch in batch)


def test_ensemble_is_fitted_once_per_k_asks(nb201, table, monkeypatch):
    fits = []
    original = MLPEnsemble.fit

    def counting(self, X, y, *, warm_start=False):
        fits.append(len(y))
        return original(self, X, y, warm_start=warm_start)

    monkeypatch.setattr(MLPEnsemble, "fit", counting)
    strategy = Bananas(nb201, seed=0, n_initial=10, k=5)
    run(strategy, table, 10)
    assert fits == []
    run(strategy, table, 15)
    assert fits == [10, 15, 20]  # one fit per batch of k=5, on everything measured so far


def test_thompson_sampling_picks_differ_between_seeds_not_within(nb201, table):
    history = run(Bananas(nb201, seed=0), table, 20)

    def batch(seed: int) -> list:
        strategy = Bananas(nb201, seed=seed, n_initial=1)
        for trial in history:
            strategy.tell(trial)
        return [strategy.ask().arch for _ in range(strategy.k)]

    assert batch(1) == batch(1)
    batches = {tuple(batch(seed)) for seed in range(1, 5)}
    assert len(batches) == 4


def test_parameter_errors(nb201):
    with pytest.raises(InvalidConfigError, match="n_initial must be at least 1"):
        Bananas(nb201, n_initial=0)
    with pytest.raises(InvalidConfigError, match="k must be at least 1"):
        Bananas(nb201, k=0)
    with pytest.raises(InvalidConfigError, match="n_neighbour_parents must be at least 0"):
        Bananas(nb201, n_neighbour_parents=-1)
    with pytest.raises(InvalidConfigError, match="pretrain_pool must be at least 2"):
        Bananas(nb201, pretrain_pool=1)
    with pytest.raises(InvalidConfigError, match="loss must be"):
        Bananas(nb201, loss="huber")
    with pytest.raises(UnknownNameError, match="onehot, ops, path"):
        Bananas(nb201, encoding="adjacency")
    with pytest.raises(InvalidConfigError, match="Unknown parameter 'n_init'"):
        nasforge.strategies.create("bananas", nb201, n_init=5)
    assert Bananas(nb201).encoding == "path"


def test_needs_a_space_that_encodes_and_neighbours():
    class NoEncode(SearchSpace):
        name = "toy"

        def sample(self, rng):
            return self.from_choices([int(rng.integers(3))])

        def parse(self, text):
            return self.from_choices([int(text)])

        def from_choices(self, choices):
            return nasforge.Architecture("toy", tuple(choices), str(choices[0]))

        def mutate(self, arch, rng):
            return self.from_choices([(arch.choices[0] + 1) % 3])

    with pytest.raises(UnsupportedOperationError, match="encode"):
        Bananas(NoEncode())

    class NoNeighbours(NoEncode):
        encodings = ("ops",)

        def encode(self, arch, kind="ops"):
            return np.array(arch.choices, dtype=float)

    with pytest.raises(UnsupportedOperationError, match="neighbours"):
        Bananas(NoNeighbours())
    assert Bananas(NoNeighbours(), n_neighbour_parents=0).encoding == "ops"


def test_pretraining_needs_free_metrics_and_fine_tunes(nb201, table, monkeypatch):
    strategy = Bananas(nb201, seed=0, n_initial=5, k=5, pretrain=True, pretrain_pool=100)
    run(strategy, table, 5)
    with pytest.raises(InvalidConfigError, match="metrics that cost no evaluation"):
        strategy.ask()

    warm = []
    original = MLPEnsemble.fit

    def recording(self, X, y, *, warm_start=False):
        warm.append((len(y), warm_start))
        return original(self, X, y, warm_start=warm_start)

    monkeypatch.setattr(MLPEnsemble, "fit", recording)
    strategy = Bananas(nb201, seed=0, n_initial=5, k=5, pretrain=True, pretrain_pool=100)
    strategy.free_metrics = table.free_metrics
    run(strategy, table, 15)
    # pretrained once on the pool, then fine-tuned on the measured trials at each batch
    assert warm == [(100, False), (5, True), (10, True)]


def test_study_with_pretraining_is_reproducible(table):
    def trials(seed: int) -> list[str]:
        study = nasforge.create_study(
            strategy="bananas",
            seed=seed,
            strategy_params={"pretrain": True, "pretrain_pool": 100, "k": 10},
        )
        return [t.arch.text for t in study.optimize(table, n_trials=25).trials]

    assert trials(0) == trials(0)
