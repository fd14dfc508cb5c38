"""AutoFormer's evolution: mutation and crossover stay in the space, children meet the
constraints, the search beats random draws of the same budget on a known fitness."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.transformer.evolution import DEFAULTS, autoformer_evolution, crossover, mutate

SPACE = spaces.create("vit-cifar")


def fitness(arch: Architecture) -> float:
    """A known optimum: the sum of every chosen option index (the largest sub-network)."""
    return float(sum(arch.choices))


def test_defaults_are_autoformers() -> None:
    assert DEFAULTS == {
        "population": 50,
        "generations": 20,
        "parents": 10,
        "mutations": 25,
        "crossovers": 25,
        "mutate_prob": 0.2,
        "structure_prob": 0.4,
    }


def test_mutation_and_crossover_give_canonical_members() -> None:
    rng = np.random.default_rng(0)
    a = SPACE.canonical(SPACE.sample(rng))
    b = a
    while b == a or SPACE.values(b)["depth"] != SPACE.values(a)["depth"]:
        b = SPACE.canonical(SPACE.sample(rng))  # parents of one depth, as AutoFormer pairs them
    for _ in range(50):
        child = mutate(SPACE, a, rng)
        assert SPACE.canonical(child) == child
        mixed = crossover(SPACE, a, b, rng)
        assert SPACE.canonical(mixed) == mixed
        assert all(c in (x, y) for c, x, y in zip(mixed.choices, a.choices, b.choices, strict=True))
    # with both probabilities 0 a mutation is the (canonical) parent
    assert mutate(SPACE, a, rng, mutate_prob=0.0, structure_prob=0.0) == SPACE.canonical(a)
    # with both probabilities 1 it changes something (almost surely)
    assert any(mutate(SPACE, a, rng, mutate_prob=1.0, structure_prob=1.0) != a for _ in range(5))


def test_children_meet_the_constraint_and_the_search_beats_random() -> None:
    limit = 1.0

    def feasible(arch: Architecture) -> bool:
        return SPACE.costs(arch)["params_M"] <= limit

    budget = 120
    found = autoformer_evolution(
        SPACE, fitness, feasible, np.random.default_rng(1), population=20, generations=10,
        parents=5, mutations=8, crossovers=8, budget=budget,
    )  # fmt: skip
    assert len(found.scored) == budget
    assert all(feasible(a) for a, _ in found.scored)
    assert len({a for a, _ in found.scored}) == budget
    assert found.history == sorted(found.history)
    rng = np.random.default_rng(1)
    random_best = []
    for _ in range(5):
        drawn = [SPACE.canonical(SPACE.sample(rng)) for _ in range(4 * budget)]
        kept = [fitness(a) for a in drawn if feasible(a)][:budget]
        random_best.append(max(kept))
    assert found.score > np.median(random_best)


def test_settings_out_of_range_and_nothing_feasible() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidConfigError, match="exceed the population"):
        autoformer_evolution(SPACE, fitness, lambda a: True, rng, population=10)
    with pytest.raises(InvalidConfigError, match="parents"):
        autoformer_evolution(SPACE, fitness, lambda a: True, rng, parents=0)
    with pytest.raises(InvalidConfigError, match="no sub-network"):
        autoformer_evolution(
            SPACE, fitness, lambda a: False, rng, population=4, generations=1, parents=2,
            mutations=1, crossovers=1, max_draws=20,
        )  # fmt: skip
