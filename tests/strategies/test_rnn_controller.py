"""The rnn-controller strategy: it learns towards rewarded choices (REINFORCE and PPO), is a
function of its seed and tells, and refuses bad input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from nasforge import spaces, strategies
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.strategies.rnn_controller import RNNController
from nasforge.trial import Trial, TrialState

OPTIONS = ("a", "b", "c")


class Triple(SearchSpace):
    """Five decisions of three options (243 architectures)."""

    name = "test-triple"

    def decisions(self) -> tuple[Decision, ...]:
        return tuple(Decision(f"d{i}", OPTIONS) for i in range(5))

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = self.check_choices(choices)
        return Architecture(self.name, values, "".join(OPTIONS[c] for c in values))

    def parse(self, text: str) -> Architecture:
        return self.from_choices([OPTIONS.index(c) for c in text])


class Unordered(SearchSpace):
    """A space without decisions (it only samples)."""

    name = "test-unordered"

    def sample(self, rng: np.random.Generator) -> Architecture:
        return Architecture(self.name, (0,), "x")

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        return Architecture(self.name, tuple(choices), "x")

    def parse(self, text: str) -> Architecture:
        return Architecture(self.name, (0,), "x")


def favour_c(arch: Architecture) -> float:
    """A score that grows with the number of decisions taking option 2 (``c``)."""
    return 50.0 + 10.0 * sum(c == 2 for c in arch.choices)


def run(strategy: RNNController, n: int, score=favour_c) -> list[Trial]:
    trials = []
    for number in range(n):
        arch = strategy.ask().arch
        trial = Trial(number, arch, TrialState.COMPLETE, scores=(score(arch),))
        strategy.tell(trial)
        trials.append(trial)
    return trials


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo"])
@pytest.mark.parametrize("seed", [0, 1])
def test_probabilities_move_towards_the_rewarded_option(algorithm: str, seed: int) -> None:
    strategy = RNNController(Triple(), seed=seed, algorithm=algorithm)
    before = strategy.probabilities((2,) * 5)
    assert np.allclose(before, 1 / 3, atol=0.05)  # weights near zero: near uniform
    trials = run(strategy, 100)
    after = strategy.probabilities((2,) * 5)
    assert strategy.updates == 100 // strategy.batch_size
    # the rewarded option gained on average over the decisions and is the likeliest of most
    assert np.mean([row[2] for row in after]) > 0.6, after
    assert sum(row[2] == max(row) for row in after) >= 4, after
    late = np.mean([favour_c(t.arch) for t in trials[-20:]])
    early = np.mean([favour_c(t.arch) for t in trials[:20]])
    assert late > early + 10.0  # one more decision takes c, on average


def test_a_reward_against_an_option_lowers_it() -> None:
    strategy = RNNController(Triple(), seed=3)
    run(strategy, 60, score=lambda a: 90.0 - 10.0 * sum(c == 2 for c in a.choices))
    assert all(row[2] < 0.2 for row in strategy.probabilities((0,) * 5))


def test_same_seed_and_tells_give_the_same_proposals_and_failures_teach_nothing() -> None:
    a, b = RNNController(Triple(), seed=5), RNNController(Triple(), seed=5)
    assert [t.arch for t in run(a, 23)] == [t.arch for t in run(b, 23)]
    assert a.probabilities() == b.probabilities()
    other = RNNController(Triple(), seed=6)
    assert [t.arch for t in run(other, 23)] != [t.arch for t in run(a, 23)]
    before = a.probabilities()
    for number in range(10):
        a.tell(Trial(number, a.ask().arch, TrialState.FAILED))
    assert a.probabilities() == before and a.updates == 9


def test_learning_waits_for_a_full_batch() -> None:
    strategy = RNNController(Triple(), seed=0, batch_size=4)
    before = strategy.probabilities()
    run(strategy, 3)
    assert strategy.probabilities() == before and strategy.baseline == 0.0
    run(strategy, 1)
    assert strategy.probabilities() != before and strategy.updates == 1
    assert strategy.baseline > 0.0


def test_it_searches_nb201_with_a_valid_proposal_every_time() -> None:
    space = spaces.create("nb201")
    strategy = strategies.create("rnn-controller", space, seed=0, algorithm="ppo")
    for trial in run(strategy, 12, score=lambda a: float(sum(a.choices))):
        assert space.parse(trial.arch.text) == trial.arch


def test_bad_parameters_and_spaces_are_refused() -> None:
    with pytest.raises(UnsupportedOperationError, match="decisions"):
        RNNController(Unordered(), seed=0)
    for params in (
        {"algorithm": "a2c"},
        {"learning_rate": 0.0},
        {"batch_size": 0},
        {"baseline_decay": 1.0},
        {"entropy_weight": -1.0},
        {"temperature": 0.0},
        {"hidden": True},
    ):
        with pytest.raises(InvalidConfigError):
            strategies.create("rnn-controller", Triple(), seed=0, **params)
