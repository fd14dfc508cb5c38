"""ENAS and random search with weight sharing on tiny supernets and synthetic data: the
controller's decisions over a supernet, its learning, recording, resume and refusals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from resume_testing import whole_and_resumed

from nasforge import oneshot, spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.oneshot.enas import ENAS, PathPlan, RandomWeightSharing
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.testing.contracts import HashEvaluator
from nasforge.train import SyntheticImages

TINY = SupernetSettings(channels=4, cells=1, batch_size=16)
HASH = HashEvaluator("nb201")  # made-up scores: no table to load
FAST = {"controller_steps": 2, "controller_aggregate": 3, "derive_samples": 5}


@pytest.fixture(scope="module")
def data() -> Any:
    return SyntheticImages(num_classes=4, n_train=64, n_test=4, size=8).load()


def _state(method: Any, data: Any, space: str = "nb201", cells: int = 1) -> Any:
    settings = SupernetSettings(channels=4, cells=cells, batch_size=16)
    with _engine.seeded(0):
        net = _engine.build_supernet(space, settings, data.num_classes)
    state = _engine.SearchState(
        supernet=net,
        data=_engine.SearchData.from_splits(data, settings, 0),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        rng=np.random.default_rng(0),
        epochs=2,
        space=spaces.create(space),
    )
    method.setup(state)
    return state


def test_the_plan_of_nb201_is_one_operation_per_edge(data: Any) -> None:
    state = _state(RandomWeightSharing(), data)
    plan = PathPlan(state.supernet)
    assert [(s.kind, s.options) for s in plan.steps] == [(0, 5)] * 6
    arch = state.space.parse(
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    )
    assert plan.index(arch.choices) == state.supernet.path(arch)


def test_the_plan_of_darts_picks_two_distinct_inputs_then_their_operations(data: Any) -> None:
    state = _state(RandomWeightSharing(), data, "darts", cells=5)
    plan = PathPlan(state.supernet)
    # two cells of four nodes: (input, input, op, op) per node
    assert len(plan.steps) == 2 * 4 * 4 and plan.roles == ("op", "input", "op", "input")
    method = RandomWeightSharing()
    method.setup(state)
    for _ in range(20):
        sequence, masks = method.sample()
        index = plan.index(sequence)
        arch = state.supernet.from_path(index)
        assert state.supernet.path(arch) == index  # a genotype of two distinct inputs per node
        assert state.space.parse(str(arch)) == arch
        assert all(any(m) for m in masks)
    # the second input of a node cannot repeat the first
    assert plan.mask(1, [1]) == [True, False]


def test_the_controller_learns_towards_paths_rewarded_on_validation(data: Any) -> None:
    method = ENAS(controller_steps=25, controller_aggregate=4, controller_lr=0.02)
    state = _state(method, data)
    favoured = 3  # nor_conv_3x3 on every edge is rewarded

    def reward(state: Any, sequence: list[int], batch: Any) -> float:
        return 100.0 * sum(c == favoured for c in sequence) / len(sequence)

    method.path_accuracy = reward  # type: ignore[method-assign]
    assert method.controller is not None
    start = method.controller.probabilities([favoured] * 6)
    stats = method.train_sampler(state, 0)
    end = method.controller.probabilities([favoured] * 6)
    assert all(b[favoured] > a[favoured] for a, b in zip(start, end, strict=True))
    assert stats["controller_steps"] == 25.0 and 0.0 < stats["baseline"] < 1.0
    drawn = [method.sample()[0] for _ in range(50)]
    assert np.mean([c == favoured for s in drawn for c in s]) > 0.3  # uniform: 0.2


def test_enas_records_every_epoch_with_controller_statistics(data: Any) -> None:
    result = oneshot.search(
        "enas", data, settings=TINY, epochs=2, device="cpu", params=FAST, evaluator=HASH
    )
    trials = result.study.trials
    assert [t.metrics["epoch"] for t in trials] == [0.0, 1.0]
    assert all(t.arch.space == "nb201" for t in trials)
    assert {"train_loss", "controller_reward", "controller_entropy", "baseline"} <= set(
        trials[0].metrics
    )
    assert trials[1].metrics["baseline"] != trials[0].metrics["baseline"]


def test_random_ws_derives_the_best_of_its_samples_and_never_trains_a_controller(
    data: Any,
) -> None:
    method = RandomWeightSharing(derive_samples=8)
    state = _state(method, data)
    assert method.controller is not None
    weights = [p.detach().clone() for p in method.controller.parameters()]
    method.train_epoch(state, 0)
    choices = method.derive(state)
    assert choices == max(method.scored, key=lambda s: s[1])[0]
    assert 1 <= len(method.scored) <= 8
    assert all(
        torch.equal(a, b) for a, b in zip(weights, method.controller.parameters(), strict=True)
    )


def test_both_methods_train_on_the_same_batches(data: Any) -> None:
    enas, uniform = ENAS(**FAST), RandomWeightSharing(derive_samples=5)
    a, b = _state(enas, data), _state(uniform, data)
    for method, state in ((enas, a), (uniform, b)):
        method.train_epoch(state, 0)
        method.derive(state)
    # the controller's draws come from the method's own generator, not the search's
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


@pytest.mark.parametrize("name", ["enas", "random-ws"])
def test_a_resumed_search_continues_from_the_same_state(
    data: Any, tmp_path: Any, name: str
) -> None:
    params = FAST if name == "enas" else {"derive_samples": 5}
    whole, resumed, _, _ = whole_and_resumed(
        name, data, tmp_path, stop_after=1, params=params, settings=TINY, epochs=2, evaluator=HASH
    )
    assert resumed.resumed_from == 1
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in whole.study.trials]
    assert [t.metrics.get("baseline") for t in resumed.study.trials] == [
        t.metrics.get("baseline") for t in whole.study.trials
    ]


def test_bad_input_is_refused(data: Any) -> None:
    class Widths(SearchSpace):  # decisions, but no supernet
        name = "test-widths"

        def decisions(self) -> tuple[Decision, ...]:
            return (Decision("w", (8, 16)),)

        def from_choices(self, choices: Any) -> Architecture:
            values = self.check_choices(choices)
            return Architecture(self.name, values, str(values[0]))

        def parse(self, text: str) -> Architecture:
            return self.from_choices([int(text)])

    for name in ("enas", "random-ws"):
        with pytest.raises(UnsupportedOperationError, match=r"capability supernet\(\)"):
            oneshot.search(name, data, space=Widths(), settings=TINY, epochs=1, device="cpu")
    for params in ({"controller_aggregate": 0}, {"derive_samples": 0}, {"baseline_decay": 1.0},
                   {"temperature": -1.0}, {"lr": 0.0}):  # fmt: skip
        with pytest.raises(InvalidConfigError):
            oneshot.create("enas", **params)
    with pytest.raises(InvalidConfigError):
        oneshot.create("random-ws", controller_lr=0.1)  # random-ws has no controller
