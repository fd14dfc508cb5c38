"""Define-by-run spaces: the choices a function draws from a trial are the architecture."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import nasforge
from nasforge import spaces
from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.spaces.define_by_run import DefineByRunSpace
from nasforge.testing import check_space
from nasforge.trial import Direction, Result, TrialState


def conv_net(trial: Any, num_classes: int = 3) -> nn.Module:
    """Up to three layers; a convolution's width and kernel exist only where it is chosen."""
    depth = trial.integer("depth", 1, 3)
    layers: list[nn.Module] = []
    channels = 3
    for i in range(depth):
        if trial.choice(f"op{i}", ["conv", "pool"]) == "conv":
            width = trial.choice(f"width{i}", [4, 8])
            kernel = trial.choice(f"kernel{i}", [1, 3])
            layers += [nn.Conv2d(channels, width, kernel, padding=kernel // 2), nn.ReLU()]
            channels = width
        else:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
    if trial.boolean("dropout"):
        layers.append(nn.Dropout(0.1))
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers, *head)


@pytest.fixture(scope="module")
def space() -> DefineByRunSpace:
    return DefineByRunSpace(conv_net, name="test:conv_net")


class _Recorder:
    """A trial of the test's own: answers from ``values`` and records the names drawn."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values
        self.drawn: list[str] = []

    def choice(self, name: str, options: Any) -> Any:
        self.drawn.append(name)
        return self.values[name]

    def integer(self, name: str, low: int, high: int, step: int = 1) -> int:
        return int(self.choice(name, None))

    def boolean(self, name: str) -> bool:
        return bool(self.choice(name, None))


def _all_values(space: DefineByRunSpace, arch: Any) -> dict[str, Any]:
    return {d.name: d.options[c] for d, c in zip(space.decisions(), arch.choices, strict=True)}


# -- decisions and architectures ---------------------------------------------------------------
def test_exploring_finds_every_choice_including_the_conditional_ones(space):
    found = {d.name: d.options for d in space.decisions()}
    assert list(found)[:4] == ["depth", "op0", "width0", "kernel0"]
    assert found["depth"] == (1, 2, 3)
    assert found["dropout"] == (False, True)
    for i in range(3):  # layer i exists only at depth > i; its width only under a convolution
        assert found[f"op{i}"] == ("conv", "pool")
        assert found[f"width{i}"] == (4, 8) and found[f"kernel{i}"] == (1, 3)
    assert len(found) == 11
    # per layer: a convolution (2 widths x 2 kernels) or a pool; then dropout or not
    assert space.size == 2 * sum(5**d for d in (1, 2, 3))
    every = list(space)
    assert len(every) == len(set(every)) == space.size


@pytest.mark.parametrize("layers", [2, 6])
def test_a_choice_only_a_combination_of_values_draws_is_found(layers):
    """Trying each option once, in the context where its choice was found, misses "bonus";
    a small space is enumerated, a larger one probed with random architectures."""

    def combination(trial):
        ops = [trial.choice(f"op{i}", ["a", "b", "c"]) for i in range(layers)]
        if ops[0] == "b" and ops[1] == "c":
            return ops, trial.integer("bonus", 1, 4)
        return ops, None

    space = DefineByRunSpace(combination, name="test:combination")
    assert [d.name for d in space.decisions()][-1] == "bonus"
    arch = space.parse(
        ",".join(["op0=b", "op1=c", *(f"op{i}=a" for i in range(2, layers))]) + ",bonus=3"
    )
    assert space.build(arch) == (["b", "c"] + ["a"] * (layers - 2), 3)
    rng = np.random.default_rng(1)
    for _ in range(100):
        space.sample(rng)  # no choice the exploration missed


def test_samples_make_exactly_the_choices_the_function_draws(space):
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        arch = space.sample(rng)
        recorder = _Recorder(_all_values(space, arch))
        conv_net(recorder)
        active = [part.split("=")[0] for part in arch.text.split(",")]
        assert active == recorder.drawn
        inactive = [k for k, d in enumerate(space.decisions()) if d.name not in active]
        assert all(arch.choices[k] == 0 for k in inactive)
        seen.add(arch)
    assert len(seen) > 50
    check_space(space, samples=30)


def test_equal_architectures_are_equal_whatever_their_inactive_choices(space):
    names = [d.name for d in space.decisions()]
    one = [0] * len(names)
    other = list(one)
    other[names.index("width2")] = 1  # layer 2 is absent at depth 1
    other[names.index("kernel1")] = 1
    a, b = space.from_choices(one), space.from_choices(other)
    assert a == b and a.text == b.text == "depth=1,op0=conv,width0=4,kernel0=1,dropout=False"
    assert space.parse("dropout=False , kernel0=1,op0=conv,depth=1,width0=4") == a
    assert space.active(a) == {
        "depth": 1,
        "op0": "conv",
        "width0": 4,
        "kernel0": 1,
        "dropout": False,
    }


def test_neighbours_change_one_active_choice_and_the_encoding_marks_only_active_ones(space):
    arch = space.parse("depth=2,op0=pool,op1=conv,width1=8,kernel1=3,dropout=True")
    neighbours = space.neighbours(arch)
    # depth 2 others, op0 1, op1 1, width1 1, kernel1 1, dropout 1
    assert len(neighbours) == len(set(neighbours)) == 7
    assert arch not in neighbours
    for other in neighbours:
        changed = {
            k
            for k, v in space.active(other).items()
            if k in space.active(arch) and space.active(arch)[k] != v
        }
        assert len(changed) == 1
    vector = space.encode(arch)
    assert vector.shape == (sum(len(d.options) for d in space.decisions()),)
    assert vector.sum() == 6  # one entry per active choice, none for the 5 inactive ones
    assert not np.array_equal(
        vector,
        space.encode(
            space.parse(
                "depth=2,op0=conv,width0=4,kernel0=1,op1=conv,width1=8,kernel1=3,dropout=True"
            )
        ),
    )


def test_build_replays_the_function_with_the_architectures_values(space):
    arch = space.parse("depth=2,op0=conv,width0=8,kernel0=3,op1=pool,dropout=False")
    model = space.build(arch)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(8, (3, 3))]
    assert next(model.parameters()).device.type == "cpu"
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 3)
    assert space.build(arch, num_classes=5)(torch.zeros(1, 3, 8, 8)).shape == (1, 5)
    with pytest.raises(InvalidConfigError, match="takes no build setting 'channels'"):
        space.build(arch, channels=16)


def test_settings_the_function_does_not_take_are_dropped_and_any_object_may_be_returned():
    def plain(trial):
        return {"lr": trial.choice("lr", [0.1, 0.01]), "layers": trial.integer("n", 2, 8, 2)}

    space = DefineByRunSpace(plain, name="test:plain")
    assert [d.options for d in space.decisions()] == [(0.1, 0.01), (2, 4, 6, 8)]
    arch = space.parse("lr=0.01,n=6")
    assert space.build(arch, num_classes=10) == {"lr": 0.01, "layers": 6}
    assert space.size == 8


def test_exploration_builds_on_the_meta_device_and_falls_back_where_it_cannot():
    devices: list[str] = []

    def recorded(trial):
        layer = nn.Linear(2, trial.choice("width", [2, 4]))
        devices.append(layer.weight.device.type)
        return layer

    space = DefineByRunSpace(recorded, name="test:recorded")
    assert set(devices) == {"meta"}
    assert space.build(space.parse("width=4")).weight.device.type == "cpu"

    def computes(trial):
        width = trial.choice("width", [2, 4])
        layer = nn.Linear(2, width)
        if layer.weight.sum().item() > 1e9:  # reads a value: impossible on the meta device
            trial.boolean("never")
        return layer

    space = DefineByRunSpace(computes, name="test:computes")
    assert [d.name for d in space.decisions()] == ["width"]
    assert space.from_choices([1]).text == "width=4"


# -- strategies and studies --------------------------------------------------------------------
class ChoiceScore(Evaluator):
    """A made-up accuracy from the architecture's values: deeper, wider, 3x3 kernels score more."""

    def __init__(self, space: DefineByRunSpace) -> None:
        self._space = space
        self.space = space.name

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch: Any, fidelity: Mapping[str, Any] | None = None) -> Result:
        values = self._space.active(arch)
        score = 10.0 * values["depth"] - 3.0 * values["dropout"]
        for i in range(values["depth"]):
            if values[f"op{i}"] == "conv":
                score += values[f"width{i}"] / 2 + (values[f"kernel{i}"] == 3)
        return Result({"valid_acc": score}, cost=1.0)


STRATEGIES = {
    "random": {},
    "regularized-evolution": {"population_size": 4, "tournament_size": 2},
    "bananas": {"n_initial": 4, "n_candidates": 8, "n_parents": 2, "n_members": 2},
    "local-search": {"n_initial": 2},
    "reinforce": {},
    "optuna-tpe": {"n_startup_trials": 4},
    "optuna-cmaes": {},
    "manas": {},
    "mcts": {},
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_on_decisions_searches_a_define_by_run_space(space, name):
    evaluator = ChoiceScore(space)

    def run(seed: int) -> list[Any]:
        study = nasforge.create_study(
            space=space, strategy=name, seed=seed, strategy_params=STRATEGIES[name]
        )
        study.optimize(evaluator, n_trials=12)
        return study.trials

    trials = run(0)
    assert len(trials) == 12 and all(t.state is TrialState.COMPLETE for t in trials)
    for trial in trials:
        assert space.parse(trial.arch.text) == trial.arch
    assert [t.arch for t in run(0)] == [t.arch for t in trials]


def test_bananas_beats_random_on_the_made_up_score(space):
    evaluator = ChoiceScore(space)
    best = {}
    for name in ("random", "bananas"):
        scores = []
        for seed in range(3):
            study = nasforge.create_study(
                space=space, strategy=name, seed=seed, strategy_params=STRATEGIES[name]
            )
            scores.append(study.optimize(evaluator, n_trials=20).best_trial.metrics["valid_acc"])
        best[name] = np.mean(scores)
    assert best["bananas"] >= best["random"]


# -- bad input ---------------------------------------------------------------------------------
def test_a_function_that_draws_differently_for_the_same_values_is_refused():
    state = {"extra": False, "skip": False}

    def fickle(trial):
        out = [trial.choice("a", [1, 2])]
        if state["extra"]:
            out.append(trial.choice("b", [1, 2]))
        if not state["skip"]:
            out.append(trial.choice("c", [1, 2]))
        return out

    space = DefineByRunSpace(fickle, name="test:fickle")
    arch = space.parse("a=2,c=1")
    state["extra"] = True
    with pytest.raises(InvalidConfigError, match=r"not deterministic.*asks for choice 'b'"):
        space.build(arch)
    state.update(extra=False, skip=True)
    with pytest.raises(InvalidConfigError, match=r"not deterministic.*skips choice 'c'"):
        space.build(arch)
    with pytest.raises(InvalidArchitectureError, match="does not draw choice 'c'"):
        space.parse("a=1,c=2")

    calls = [0]

    def alternating(trial):
        calls[0] += 1
        return trial.choice("a" if calls[0] % 2 else "b", [1, 2])

    with pytest.raises(InvalidConfigError, match=r"not deterministic.*choice 'a'"):
        DefineByRunSpace(alternating, name="test:alternating")


def test_a_choice_name_used_twice_with_other_options_is_refused_naming_both_lists():
    def twice(trial):
        return trial.choice("width", [16, 32]), trial.choice("width", [16, 64])

    with pytest.raises(InvalidConfigError, match=r"'width'.*\[16, 64\].*\[16, 32\]"):
        DefineByRunSpace(twice, name="test:twice")

    def branches(trial):  # the same name with other options under another choice
        if trial.integer("depth", 1, 2) == 1:
            return trial.choice("w", [8, 16])
        return trial.choice("w", [16, 32])

    with pytest.raises(InvalidConfigError, match=r"'w'.*\[16, 32\].*\[8, 16\]"):
        DefineByRunSpace(branches, name="test:branches")

    def shared(trial):  # the same name with the same options is one shared decision
        return trial.choice("act", ["relu", "gelu"]), trial.choice("act", ["relu", "gelu"])

    space = DefineByRunSpace(shared, name="test:shared")
    assert [d.name for d in space.decisions()] == ["act"]
    assert space.build(space.parse("act=gelu")) == ("gelu", "gelu")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (lambda t: t.integer("n", 5, 3), r"trial.integer\('n', 5, 3\) is an empty range"),
        (lambda t: t.integer("n", 1, 4, step=0), "step >= 1"),
        (lambda t: t.integer("n", 0, 10**6), "give a larger step"),
        (lambda t: t.choice("op", [1, [2]]), "is a list; options are str, int, float or bool"),
        (lambda t: t.choice("op", [np.int64(1)]), "options are str, int, float or bool"),
        (lambda t: t.choice("op", []), "has no options"),
        (lambda t: t.choice("op", "abc"), "takes a list of options"),
        (lambda t: t.choice("op", [1, 1]), "give each option once"),
        (lambda t: t.choice("a,b", [1, 2]), "contains ',' or '='"),
        (lambda t: t.choice("op", ["x,y"]), "contains ','"),
        (lambda t: None, "draws no choice"),
        (lambda t: t.choice("op", [1, 2]) / 0, "raised ZeroDivisionError"),
    ],
)
def test_bad_definitions_are_refused_with_what_was_wrong(body, match):
    with pytest.raises(InvalidConfigError, match=match):
        DefineByRunSpace(body, name="test:bad")


def test_endless_and_bad_texts_are_refused(space):
    def counter(trial):
        return [trial.choice(f"x{i}", [0, 1]) for i in range(trial.integer("n", 1, 200))]

    with pytest.raises(InvalidConfigError, match="took more than 50 runs"):
        DefineByRunSpace(counter, name="test:counter", max_runs=50)
    for text, match in [
        ("", "written 'name=value"),
        ("depth", "is not name=value"),
        ("depth=1,depht=2", "Unknown choice 'depht'"),
        ("depth=4", "'4' is not an option of 'depth'"),
        ("depth=1,depth=1", "written twice"),
        ("depth=1,op0=pool", "draws choice 'dropout'"),
        ("depth=1,op0=pool,dropout=True,width1=4", "does not draw choice 'width1'"),
    ]:
        with pytest.raises(InvalidArchitectureError, match=match):
            space.parse(text)
    foreign = spaces.create("nb201").from_index(0)
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'nb201'"):
        space.build(foreign)
