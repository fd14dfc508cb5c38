"""MCTS follows DeepArchitect's UCT searcher: selection, expansion, rollout, back-up."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

import nasforge
from nasforge import spaces, strategies
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.strategies.mcts import MCTS
from nasforge.testing import check_strategy
from nasforge.trial import Trial, TrialState


def told(arch: Architecture, score: float | None) -> Trial:
    if score is None:
        return Trial(number=0, arch=arch, state=TrialState.FAILED)
    return Trial(number=0, arch=arch, state=TrialState.COMPLETE, scores=(score,))


class Grid(SearchSpace):
    """A product of decisions of the given sizes, declared through ``decisions``."""

    name = "grid"

    def __init__(self, *sizes: int) -> None:
        self.sizes = sizes

    def decisions(self) -> tuple[Decision, ...]:
        return tuple(Decision(f"d{i}", tuple(range(n))) for i, n in enumerate(self.sizes))

    def parse(self, text: str) -> Architecture:
        return self.from_choices([int(c) for c in text.split("-")])

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        ops = self.check_choices(choices)
        return Architecture(self.name, ops, "-".join(map(str, ops)))


def search(
    mcts: MCTS, score: Callable[[tuple[int, ...]], float | None], n: int
) -> list[tuple[int, ...]]:
    """Ask and tell ``n`` times; the choices asked, in order."""
    asked = []
    for _ in range(n):
        arch = mcts.ask().arch
        asked.append(tuple(arch.choices))
        mcts.tell(told(arch, score(tuple(arch.choices))))
    return asked


def test_uct_visits_the_best_child_most() -> None:
    # option 2 of the first decision is worth 1, the others 0 (plus a little noise below)
    space = Grid(4, 5, 5, 5)  # 125 architectures under each first option
    mcts = MCTS(space, seed=0)
    search(mcts, lambda c: float(c[0] == 2) + 0.01 * c[1], 80)
    visits = {option: s.visits for option, s in mcts.children().items()}
    assert max(visits, key=visits.__getitem__) == 2
    assert visits[2] > 80 / 2
    assert all(visits[o] < visits[2] / 3 for o in (0, 1, 3))


def test_statistics_of_a_hand_computed_case() -> None:
    # the score depends on the first decision alone: 0.2, 0.9, 0.5; rewards in [0, 1] as
    # given (score_range), c = 0.5. The first three asks try each first option once; then
    # (N = root visits, n = child visits, bonus = 0.5 * sqrt(2 ln N / n)):
    #   ask 4, N=3: 0.9 + b(3,1) beats 0.5 + b(3,1)                -> option 1
    #   ask 5, N=4: 0.9 + 0.5*sqrt(2 ln 4 / 2) = 1.489 > 0.5 + 0.5*sqrt(2 ln 4) = 1.333 -> 1
    #   ask 6, N=5: 0.9 + 0.5*sqrt(2 ln 5 / 3) = 1.417 > 0.5 + 0.5*sqrt(2 ln 5) = 1.397 -> 1
    #   ask 7, N=6: 0.9 + 0.5*sqrt(2 ln 6 / 4) = 1.373 < 0.5 + 0.5*sqrt(2 ln 6) = 1.447 -> 2
    space = Grid(3, 10)
    mcts = MCTS(space, seed=3, exploration=0.5, score_range=(0.0, 1.0))
    asked = search(mcts, lambda c: (0.2, 0.9, 0.5)[c[0]], 7)
    assert sorted(c[0] for c in asked[:3]) == [0, 1, 2]
    assert [c[0] for c in asked[3:]] == [1, 1, 1, 2]
    root = mcts.stats()
    assert (root.visits, root.told, root.failed) == (7, 7, 0)
    assert root.mean == pytest.approx((0.2 + 4 * 0.9 + 2 * 0.5) / 7)
    children = mcts.children()
    assert {o: s.visits for o, s in children.items()} == {0: 1, 1: 4, 2: 2}
    assert {o: s.value for o, s in children.items()} == pytest.approx({0: 0.2, 1: 0.9, 2: 0.5})
    # below option 1: its first visit expanded it, the next three each added one child
    below = mcts.children([1])
    assert sum(1 for s in below.values() if s.visits == 1) == 3
    # one node per ask joined the tree; a walk may also have met a child whose only
    # architecture a rollout had proposed already: that one is kept, unvisited, and skipped
    unvisited = [(o, p) for o in children for p, s in mcts.children([o]).items() if not s.visits]
    assert all((o, p) in asked for o, p in unvisited)
    assert mcts.node_count == 1 + 7 + len(unvisited)
    # the rollouts never repeat an architecture
    assert len(set(asked)) == 7


def test_every_choice_is_the_uct_argmax_of_the_reported_statistics() -> None:
    # replays UCT from what stats() reports, with rewards mapped by the scores told so far
    space = Grid(3, 4, 2)
    c = 0.7
    mcts = MCTS(space, seed=5, exploration=c)
    rng = np.random.default_rng(0)
    table = {
        (a, b, d): float(rng.normal(50, 10)) for a in range(3) for b in range(4) for d in range(2)
    }
    scores: list[float] = []
    firsts: list[int] = []
    for _ in range(18):
        before = mcts.children()
        parent = mcts.stats()
        arch = mcts.ask().arch
        first = arch.choices[0]
        if len(before) == 3:  # every first option tried: UCT decides
            low, high = min(scores), max(scores)
            ucb = {}
            for option, s in before.items():
                assert s.mean is not None
                value = (s.mean - low) / (high - low)
                assert s.value == pytest.approx(value)
                ucb[option] = value + c * math.sqrt(2 * math.log(parent.visits) / s.visits)
            assert ucb[first] == pytest.approx(max(ucb.values()))
        else:  # an untried first option comes first
            assert first not in before
        score = table[tuple(arch.choices)]
        scores.append(score)
        firsts.append(first)
        mcts.tell(told(arch, score))
    # the root's children hold the counts and mean scores of the trials through them
    for option, s in mcts.children().items():
        mine = [x for x, f in zip(scores, firsts, strict=True) if f == option]
        assert (s.visits, s.told) == (len(mine), len(mine))
        assert s.mean == pytest.approx(np.mean(mine))


def test_proposals_are_valid_and_distinct_on_the_registered_spaces() -> None:
    for name in ("nb201", "mobilenet", "ofa"):
        space = spaces.create(name)
        for restructure in (False, True):
            mcts = MCTS(space, seed=0, restructure=restructure)
            asked = search(mcts, lambda c: float(sum(c) % 7), 25)
            for choices in asked:
                arch = space.from_choices(choices)
                assert space.parse(str(arch)) == arch
            assert len(set(asked)) == 25


def test_memory_grows_with_the_asks_not_the_space() -> None:
    space = spaces.create("mobilenet")  # 119 decisions
    mcts = MCTS(space, seed=0)
    search(mcts, lambda c: float(c[0] + c[1]), 40)
    assert mcts.node_count <= 1 + 40


def test_no_duplicates_until_the_space_is_used_up_then_plain_uct() -> None:
    space = Grid(2, 3)  # 6 architectures
    mcts = MCTS(space, seed=1)
    asked = search(mcts, lambda c: float(c[0] * 3 + c[1]), 6)
    assert len(set(asked)) == 6
    assert mcts.stats().visits == 6
    # then it goes on, repeating (the study's dedupe would stop it)
    more = search(mcts, lambda c: float(c[0] * 3 + c[1]), 10)
    assert set(more) <= set(asked)
    assert mcts.stats().visits == 16


def test_a_subtree_used_up_by_the_rollouts_is_not_selected_again() -> None:
    # first option 0 has 2 architectures: once both are proposed (by the tree walk or by a
    # rollout), the walk must go elsewhere although option 0 scores best
    space = Grid(3, 2)
    mcts = MCTS(space, seed=0, exploration=0.0)
    asked = search(mcts, lambda c: 10.0 if c[0] == 0 else 1.0, 6)
    assert len(set(asked)) == 6
    assert mcts.children()[0].visits == 2


def test_restructured_tree_bisects_each_decision() -> None:
    space = Grid(5, 2)
    mcts = MCTS(space, seed=0, restructure=True)
    asked = search(mcts, lambda c: float(c[0]), 10)
    assert len(set(asked)) == 10
    root = mcts.children()
    assert set(root) <= {0, 1}
    # the lower half is options 0..1, the upper 2..4
    low = sum(1 for c in asked if c[0] < 2)
    assert root[0].visits == low and root[1].visits == 10 - low


def test_failures_count_as_the_worst_reward() -> None:
    space = Grid(3, 5, 5)
    mcts = MCTS(space, seed=2)
    search(mcts, lambda c: None if c[0] == 0 else 60.0 + c[0] + 0.1 * c[1], 60)
    children = mcts.children()
    assert children[0].failed == children[0].visits and children[0].told == 0
    assert children[0].value == 0.0 and children[0].mean is None
    assert children[0].visits < min(children[1].visits, children[2].visits)
    assert mcts.stats().failed == children[0].failed


def test_asks_ahead_of_tells_are_distinct_and_told_in_any_order() -> None:
    space = Grid(4, 4, 4)
    mcts = MCTS(space, seed=0)
    archs = [mcts.ask().arch for _ in range(6)]
    assert len(set(archs)) == 6
    assert mcts.stats().visits == 6 and mcts.stats().told == 0
    for arch in reversed(archs):
        mcts.tell(told(arch, float(sum(arch.choices))))
    root = mcts.stats()
    assert (root.visits, root.told) == (6, 6)
    assert sum(s.visits for s in mcts.children().values()) == 6


def test_a_trial_it_did_not_propose_is_backed_up_along_the_tree() -> None:
    space = Grid(3, 3)
    mcts = MCTS(space, seed=0)
    arch = mcts.ask().arch
    mcts.tell(told(arch, 1.0))
    other = space.from_choices((arch.choices[0], (arch.choices[1] + 1) % 3))
    mcts.tell(told(other, 3.0))  # e.g. enqueued by the user
    child = mcts.children()[arch.choices[0]]
    assert (child.visits, child.told, child.mean) == (2, 2, 2.0)
    assert other not in {mcts.ask().arch for _ in range(5)}


def test_same_seed_same_proposals_and_replay() -> None:
    def run(seed: int) -> list[tuple[int, ...]]:
        return search(MCTS(spaces.create("nb201"), seed=seed), lambda c: float(sum(c)), 30)

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_contract() -> None:
    check_strategy("mcts")
    check_strategy("mcts", params={"restructure": True, "exploration": 1.0}, n_trials=20)


def test_space_without_decisions_is_refused_naming_the_capability() -> None:
    with pytest.raises(UnsupportedOperationError, match=r"capability decisions\(\)") as info:
        MCTS(spaces.create("darts"))
    assert "'darts'" in str(info.value)
    assert "mobilenet" in str(info.value) and "nb201" in str(info.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"exploration": -0.1}, "exploration must be >= 0"),
        ({"exploration": float("nan")}, "exploration must be a finite number"),
        ({"exploration": float("inf")}, "exploration must be a finite number"),
        ({"score_range": (1.0, 1.0)}, "score_range must be two finite numbers"),
        ({"score_range": (0.0, float("inf"))}, "score_range must be two finite numbers"),
    ],
)
def test_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        MCTS(spaces.create("nb201"), **params)  # type: ignore[arg-type]


def test_bad_parameter_types_are_refused_by_the_registry() -> None:
    with pytest.raises(InvalidConfigError, match="exploration"):
        strategies.create("mcts", spaces.create("nb201"), exploration="a lot")
    with pytest.raises(InvalidConfigError, match="did you mean 'exploration'"):
        strategies.create("mcts", spaces.create("nb201"), explorations=0.5)


def test_stats_of_a_path_not_in_the_tree() -> None:
    mcts = MCTS(Grid(3, 3), seed=0)
    with pytest.raises(InvalidConfigError, match="no node at path"):
        mcts.stats([2, 1])


def test_beats_random_search_on_nb201() -> None:
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])

    def mean_best(strategy: str) -> float:
        best = []
        for seed in range(12):
            study = nasforge.create_study(space="nb201", strategy=strategy, seed=seed)
            study.optimize(ev, n_trials=100)
            best.append(max(t.score for t in study.trials if t.score is not None))
        return float(np.mean(best))

    assert mean_best("mcts") > mean_best("random")
