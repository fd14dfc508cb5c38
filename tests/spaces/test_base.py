"""What a space gets from ``decisions()``: sampling, mutation, crossover, neighbours, a one-hot
encoding, size and enumeration; and every strategy searches a space that declares only
``decisions()``, ``parse`` and ``from_choices``."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from nasforge import spaces, strategies
from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    MissingDependencyError,
    UnsupportedOperationError,
)
from nasforge.evaluators.base import Evaluator
from nasforge.spaces.base import UNSEEN_TRIES, Decision, SearchSpace
from nasforge.testing import check_space
from nasforge.trial import Direction, Result, Trial, TrialState

OPTIONS = ("none", "narrow", "wide")
#: Made-up value of each option of each layer; the best architecture is narrow-wide-narrow-narrow.
WEIGHTS = np.array([[0.0, 3.0, 2.0], [0.0, 1.0, 4.0], [0.0, 2.0, 1.0], [0.0, 4.0, 3.0]])


class Layers(SearchSpace):
    """Four layers, each ``none``, ``narrow`` or ``wide`` (81 architectures): only decisions,
    parse and from_choices."""

    name = "test-layers"

    def decisions(self) -> tuple[Decision, ...]:
        return tuple(Decision(f"layer{i}", OPTIONS) for i in range(4))

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = self.check_choices(choices)
        return Architecture(self.name, values, "-".join(OPTIONS[c] for c in values))

    def parse(self, text: str) -> Architecture:
        names = text.split("-")
        if any(n not in OPTIONS for n in names):
            raise InvalidArchitectureError(f"Layers are {OPTIONS}, got {text!r}.")
        return self.from_choices([OPTIONS.index(n) for n in names])


class LayerScore(Evaluator):
    """A made-up score (larger is better), lower at a reduced fidelity; its free metric
    ``params_M`` counts the layers that are not ``none``."""

    space = "test-layers"

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    @property
    def free_metric_names(self) -> tuple[str, ...]:
        return ("params_M",)

    def free_metrics(self, arch: Architecture) -> Mapping[str, float]:
        return {"params_M": 1.0 + sum(c != 0 for c in arch.choices)}

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        score = 50.0 + float(WEIGHTS[np.arange(4), list(arch.choices)].sum())
        if fidelity:
            return Result({"valid_acc": score - 1.0}, cost=0.1)
        return Result({"valid_acc": score})


BEST = max(itertools.product(range(3), repeat=4), key=lambda c: WEIGHTS[np.arange(4), c].sum())

#: Strategies that cannot search Layers, and why: their candidates are scored by zero-cost
#: proxies, which need a network (``space.build``) or a precomputed score table.
NEEDS_PROXIES = {"robot", "training-free"}
#: Small settings that keep each run short.
PARAMS: dict[str, dict[str, Any]] = {
    "bananas": {"epochs": 20, "n_initial": 5},
    "pnas": {"epochs": 20, "beam_size": 4},
    "weaknas": {"epochs": 20, "initial_samples": 5, "batch_size": 5},
    "mnasnet-reward": {"metric": "params_M", "base": "regularized-evolution"},
    "regularized-evolution": {"population_size": 8, "tournament_size": 3},
    "nsga2": {"population_size": 6},
    "successive-halving": {"n_candidates": 6},
}


def search(name: str, seed: int, n: int = 30) -> list[Trial]:
    """``n`` trials of strategy ``name`` on Layers, scored by LayerScore through ask/tell."""
    space, evaluator = Layers(), LayerScore()
    strategy = strategies.create(name, space, seed=seed, **PARAMS.get(name, {}))
    strategy.free_metrics = evaluator.free_metrics
    trials = []
    for number in range(n):
        proposal = strategy.ask()
        space.check(proposal.arch)
        result = evaluator.evaluate(proposal.arch, proposal.fidelity)
        trial = Trial(
            number,
            proposal.arch,
            TrialState.COMPLETE,
            fidelity=proposal.fidelity,
            metrics=dict(result.metrics),
            cost=result.cost,
            scores=(result.metrics["valid_acc"],),
        )
        strategy.tell(trial)
        trials.append(trial)
    return trials


# -- the defaults ---------------------------------------------------------------------------
def test_a_decisions_only_space_has_every_capability() -> None:
    space = Layers()
    for capability in ("sample", "mutate", "crossover", "neighbours", "encode", "size", "iter"):
        assert space.supports(capability), capability
    assert space.encodings == ("onehot",) and space.size == 81
    check_space(space)


def test_sampling_is_uniform_per_decision_and_seeded() -> None:
    space = Layers()
    rng = np.random.default_rng(0)
    counts = np.zeros((4, 3))
    for _ in range(3000):
        counts[np.arange(4), list(space.sample(rng).choices)] += 1
    assert np.all(np.abs(counts - 1000) < 100)
    expected = np.random.default_rng(5).integers([3, 3, 3, 3]).tolist()
    assert list(space.sample(np.random.default_rng(5)).choices) == expected


def test_neighbours_change_one_decision_in_a_fixed_order() -> None:
    space = Layers()
    arch = space.parse("wide-none-narrow-none")
    neighbours = space.neighbours(arch)
    assert [n.text for n in neighbours[:3]] == [
        "none-none-narrow-none",
        "narrow-none-narrow-none",
        "wide-narrow-narrow-none",
    ]
    assert len(neighbours) == 8 and len(set(neighbours)) == 8
    for n in neighbours:
        assert sum(a != b for a, b in zip(n.choices, arch.choices, strict=True)) == 1


def test_mutation_is_a_uniform_neighbour() -> None:
    space = Layers()
    arch = space.parse("wide-none-narrow-none")
    neighbours = space.neighbours(arch)
    for seed in range(50):
        expected = neighbours[int(np.random.default_rng(seed).integers(len(neighbours)))]
        assert space.mutate(arch, np.random.default_rng(seed)) == expected


def test_mutation_with_a_rate_redraws_each_decision_as_documented() -> None:
    space = Layers()
    arch = space.parse("wide-none-narrow-none")
    for seed in range(30):
        rng = np.random.default_rng(seed)
        choices = list(arch.choices)
        for i in range(4):
            if rng.random() < 0.4:
                choices[i] = int(rng.integers(3))
        assert space.mutate(arch, np.random.default_rng(seed), rate=0.4).choices == tuple(choices)
    assert space.mutate(arch, np.random.default_rng(0), rate=0.0) == arch
    with pytest.raises(InvalidConfigError, match="probability"):
        space.mutate(arch, np.random.default_rng(0), rate=1.5)


def test_uniform_crossover_takes_each_decision_from_a_parent() -> None:
    space = Layers()
    first, second = space.parse("none-none-none-none"), space.parse("wide-wide-wide-wide")
    for seed in range(20):
        take = np.random.default_rng(seed).random(4) < 0.5
        child = space.crossover(first, second, np.random.default_rng(seed))
        assert child.choices == tuple(0 if t else 2 for t in take)


def test_onehot_encoding_and_enumeration() -> None:
    space = Layers()
    vector = space.encode(space.parse("wide-none-narrow-none"))
    assert vector.tolist() == [0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0]
    everything = list(space)
    assert len(everything) == 81 == len(set(everything))
    assert everything[1].text == "none-none-none-narrow"
    with pytest.raises(Exception, match="adjacency"):
        space.encode(everything[0], "adjacency")


def test_from_choices_is_checked_against_the_decisions() -> None:
    space = Layers()
    with pytest.raises(InvalidArchitectureError, match=r"layer2=3 \(0..2\) out of range"):
        space.from_choices([0, 1, 3, 0])
    with pytest.raises(InvalidArchitectureError, match="4 option indices"):
        space.from_choices([0, 1])
    with pytest.raises(InvalidArchitectureError, match="layer0: 0=none, 1=narrow, 2=wide"):
        space.from_choices(["a", 1, 1, 1])


def test_a_space_without_decisions_or_sample_is_refused_clearly() -> None:
    class Opaque(SearchSpace):
        name = "opaque"

        def parse(self, text: str) -> Architecture:
            return self.from_choices([int(text)])

        def from_choices(self, choices: Sequence[int]) -> Architecture:
            return Architecture(self.name, tuple(choices), str(choices[0]))

    space = Opaque()
    for capability in ("sample", "mutate", "crossover", "neighbours", "encode", "size", "iter"):
        assert not space.supports(capability), capability
    with pytest.raises(UnsupportedOperationError, match=r"sample\(\).*decisions\(\)"):
        space.sample(np.random.default_rng(0))
    with pytest.raises(UnsupportedOperationError, match="sample"):
        strategies.create("random", space)
    with pytest.raises(UnsupportedOperationError, match="encode"):
        strategies.create("bananas", space)


def test_nb201s_own_methods_equal_the_defaults_from_its_decisions() -> None:
    nb201 = spaces.create("nb201")

    class Plain(SearchSpace):
        name = "nb201"
        decisions = nb201.decisions
        parse = nb201.parse
        from_choices = nb201.from_choices

    plain = Plain()
    for seed in range(50):
        arch = nb201.sample(np.random.default_rng(seed))
        assert plain.sample(np.random.default_rng(seed)) == arch
        assert plain.neighbours(arch) == nb201.neighbours(arch)
        assert np.array_equal(plain.encode(arch), nb201.encode(arch))
        rng = np.random.default_rng(seed)
        assert plain.mutate(arch, rng, rate=0.3) == nb201.mutate(
            arch, np.random.default_rng(seed), rate=0.3
        )
    assert list(itertools.islice(plain, 3)) == [
        nb201.from_choices(c) for c in ((0,) * 6, (0,) * 5 + (1,), (0,) * 5 + (2,))
    ]


def test_drawing_unseen_and_distinct_architectures() -> None:
    space = Layers()
    everything = list(space)
    seen = set(everything[1:])
    assert space.sample_unseen(np.random.default_rng(0), seen) == everything[0]
    # used up: the first draw comes back at once, a repeat
    rng = np.random.default_rng(0)
    first = Layers().sample(np.random.default_rng(0))
    assert space.sample_unseen(rng, set(everything)) == first
    assert rng.bit_generator.state == _after_draws(1)

    # a key: the layers' count of "none"; 5 values only, so at most 5 distinct
    def nones(a: Architecture) -> int:
        return a.choices.count(0)

    drawn = space.sample_distinct(np.random.default_rng(0), 10, key=nones)
    assert sorted(nones(a) for a in drawn) == [0, 1, 2, 3, 4]
    excluded = space.sample_distinct(np.random.default_rng(0), 80, exclude={everything[0]})
    assert len(excluded) == 80 and everything[0] not in excluded
    assert UNSEEN_TRIES >= 100


def _after_draws(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    for _ in range(n):
        Layers().sample(rng)
    return rng.bit_generator.state


# -- every strategy searches a decisions-only space -----------------------------------------
#: Strategies that generate graphs (space.graph); tests/strategies/test_diffusion_nag.py
#: checks they refuse a space without graphs.
NEEDS_GRAPHS = {"diffusion-nag"}
SEARCHABLE = sorted(set(strategies.names()) - NEEDS_PROXIES - NEEDS_GRAPHS)


@pytest.mark.parametrize("name", SEARCHABLE)
def test_every_strategy_searches_a_decisions_only_space(name: str) -> None:
    requires = getattr(strategies.get(name), "requires", ())
    assert all(Layers().supports(c) for c in requires), requires
    try:
        trials = search(name, seed=0)
    except MissingDependencyError as exc:
        pytest.skip(f"optional dependency missing: {exc}")
    assert [t.arch for t in search(name, seed=0)] == [t.arch for t in trials]
    full = [t for t in trials if not t.fidelity]
    assert full, "no trial at full fidelity"
    best = max(t.metrics["valid_acc"] for t in full)
    assert best > 50.0 + WEIGHTS.mean(axis=1).sum()  # better than the average architecture


@pytest.mark.parametrize("name", ["bananas", "weaknas", "pnas", "regularized-evolution"])
def test_guided_strategies_find_the_best_architecture(name: str) -> None:
    trials = search(name, seed=0, n=40)
    assert tuple(BEST) in {t.arch.choices for t in trials}


@pytest.mark.parametrize("name", sorted(NEEDS_PROXIES))
def test_proxy_strategies_need_a_model_builder(name: str) -> None:
    with pytest.raises(UnsupportedOperationError, match="build"):
        search(name, seed=0, n=1)
