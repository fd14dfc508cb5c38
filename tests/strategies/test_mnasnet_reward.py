"""MnasNet's reward: values by hand, the wrapper's tells, targets and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nasforge
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.strategies.mnasnet_reward import MnasNetReward, mnasnet_reward
from nasforge.testing import check_strategy
from nasforge.trial import Trial, TrialState

LATENCY = "latency_ms[edgegpu]"


def test_soft_reward_by_hand():
    # alpha = beta = -0.07: half the target gains 2**0.07 - 1 = 4.97 %, twice loses 4.74 %
    assert mnasnet_reward(0.75, 40.0, 80.0) == pytest.approx(0.75 * 2**0.07)
    assert mnasnet_reward(0.75, 160.0, 80.0) == pytest.approx(0.75 * 2**-0.07)
    assert mnasnet_reward(0.75, 80.0, 80.0) == pytest.approx(0.75)


def test_hard_reward_by_hand():
    # alpha = 0: at or under the target only accuracy counts; beta = -1: over it, acc * T / LAT
    assert mnasnet_reward(0.75, 40.0, 80.0, alpha=0.0, beta=-1.0) == 0.75
    assert mnasnet_reward(0.75, 80.0, 80.0, alpha=0.0, beta=-1.0) == 0.75
    assert mnasnet_reward(0.75, 160.0, 80.0, alpha=0.0, beta=-1.0) == pytest.approx(0.375)
    with pytest.raises(InvalidConfigError, match="positive"):
        mnasnet_reward(0.75, 0.0, 80.0)


def test_variants_set_the_exponents(nb201):
    soft = MnasNetReward(nb201, base="random", target=5.0)
    hard = MnasNetReward(nb201, base="random", target=5.0, reward="hard")
    mixed = MnasNetReward(nb201, base="random", target=5.0, reward="hard", beta=-0.5)
    assert (soft.alpha, soft.beta) == (-0.07, -0.07)
    assert (hard.alpha, hard.beta) == (0.0, -1.0)
    assert (mixed.alpha, mixed.beta) == (0.0, -0.5)
    assert hard.reward_of(90.0, 10.0) == pytest.approx(45.0)


class Recorder:
    """Stands in for the base strategy's tell: keeps what it was told."""

    def __init__(self) -> None:
        self.told: list[Trial] = []

    def __call__(self, trial: Trial) -> None:
        self.told.append(trial)


def test_the_base_strategy_is_told_the_reward(nb201, bench):
    strategy = MnasNetReward(nb201, base="regularized-evolution", target=5.0)
    recorder = Recorder()
    strategy.base.tell = recorder  # type: ignore[method-assign]
    arch = strategy.ask().arch
    acc, lat = bench.query(arch, "cifar10", "test_acc"), bench.query(arch, "cifar10", LATENCY)
    trial = Trial(
        0, arch, TrialState.COMPLETE, metrics={"test_acc": acc, LATENCY: lat}, scores=(acc, -lat)
    )
    strategy.tell(trial)
    (told,) = recorder.told
    assert told.score == pytest.approx(acc * (lat / 5.0) ** -0.07)
    assert told.scores is not None and len(told.scores) == 1
    assert told.arch == arch and told.metrics == trial.metrics
    assert trial.scores == (acc, -lat)  # the study's own trial is left alone


def test_failed_and_unscored_trials_are_passed_on_unchanged(nb201):
    strategy = MnasNetReward(nb201, base="random", target=5.0)
    recorder = Recorder()
    strategy.base.tell = recorder  # type: ignore[method-assign]
    failed = Trial(0, strategy.ask().arch, TrialState.FAILED, fail_reason="boom")
    infeasible = Trial(1, strategy.ask().arch, TrialState.COMPLETE, scores=None)
    strategy.tell(failed)
    strategy.tell(infeasible)
    assert recorder.told == [failed, infeasible]


def test_latency_comes_from_free_metrics_when_not_returned(nb201, bench):
    # the evaluator returns only accuracy; the latency is read from the table for free
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])
    strategy = MnasNetReward(nb201, base="random", target=5.0)
    strategy.free_metrics = ev.free_metrics
    recorder = Recorder()
    strategy.base.tell = recorder  # type: ignore[method-assign]
    for i in range(5):
        arch = strategy.ask().arch
        metrics = dict(ev.evaluate(arch).metrics)
        strategy.tell(
            Trial(i, arch, TrialState.COMPLETE, metrics=metrics, scores=(metrics["valid_acc"],))
        )
    for trial in recorder.told:
        lat = bench.query(trial.arch, "cifar10", LATENCY)
        assert LATENCY not in trial.metrics
        assert trial.score == pytest.approx(mnasnet_reward(trial.metrics["valid_acc"], lat, 5.0))


def test_default_target_is_the_median_of_random_architectures(nb201):
    ev = nasforge.evaluators.create("tabular", dataset="cifar10")
    strategy = MnasNetReward(nb201, base="random")
    strategy.free_metrics = ev.free_metrics
    assert target_of(strategy) is None  # estimated at first use
    reward = strategy.reward_of(90.0, 4.0)
    rng = np.random.default_rng(0)
    costs = [ev.free_metrics(nb201.sample(rng))[LATENCY] for _ in range(256)]
    target = target_of(strategy)
    assert target == pytest.approx(float(np.median(costs)))
    assert target is not None and reward == pytest.approx(mnasnet_reward(90.0, 4.0, target))
    column = nasforge.tabular.create("nb201").column("cifar10", LATENCY)
    assert abs(target - float(np.median(column))) < 0.1 * float(np.median(column))


def target_of(strategy: MnasNetReward) -> float | None:
    return strategy.target


def test_free_metrics_reach_the_base_strategy():
    # regularized evolution's early-exit constraint needs free metrics: the wrapper passes them
    study = nasforge.create_study(
        strategy="mnasnet-reward",
        strategy_params={
            "base": "regularized-evolution",
            "base_params": {
                "population_size": 10,
                "tournament_size": 5,
                "constraint": "params_M<=0.3",
            },
            "metric": "params_M",
            "target": 0.3,
        },
    )
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])
    study.optimize(ev, n_trials=10)
    assert all(ev.free_metrics(t.arch)["params_M"] <= 0.3 for t in study.trials)


def test_hard_reward_search_stays_under_the_target(bench):
    column = bench.column("cifar10", LATENCY)
    target = float(np.quantile(column, 0.25))
    params = {"base": "regularized-evolution", "target": target, "reward": "hard"}
    study = nasforge.create_study(
        strategy="mnasnet-reward", strategy_params=params, seed=0, objectives=["test_acc:max"]
    )
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["test_acc", LATENCY])
    study.optimize(ev, n_trials=150)
    rewards = [
        mnasnet_reward(t.metrics["test_acc"], t.metrics[LATENCY], target, alpha=0.0, beta=-1.0)
        for t in study.trials
    ]
    best = study.trials[int(np.argmax(rewards))]
    assert best.metrics[LATENCY] <= target
    late = [t.metrics[LATENCY] <= target for t in study.trials[100:]]
    early = [t.metrics[LATENCY] <= target for t in study.trials[:30]]
    assert np.mean(late) > np.mean(early)


def test_contract_over_local_search():
    check_strategy(
        "mnasnet-reward", params={"base": "local-search", "target": 3.0, "reward": "hard"}
    )


def test_errors(nb201):
    with pytest.raises(InvalidConfigError, match="own base"):
        MnasNetReward(nb201, base="mnasnet-reward")
    with pytest.raises(InvalidConfigError, match="soft"):
        MnasNetReward(nb201, reward="medium")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="target"):
        MnasNetReward(nb201, target=0.0)
    strategy = MnasNetReward(nb201, base="random", target=5.0, metric="latency_ms[nowhere]")
    strategy.free_metrics = lambda arch: {"params_M": 1.0}
    with pytest.raises(UnknownNameError, match="nowhere"):
        strategy.tell(Trial(0, strategy.ask().arch, TrialState.COMPLETE, scores=(90.0,)))
    negative = MnasNetReward(nb201, base="random", target=5.0)
    negative.free_metrics = lambda arch: {LATENCY: 1.0}
    with pytest.raises(InvalidConfigError, match="positive accuracy"):
        negative.tell(Trial(0, negative.ask().arch, TrialState.COMPLETE, scores=(-3.0,)))
    assert math.isclose(negative.reward_of(1.0, 5.0), 1.0)


def test_mnasnet_on_the_mobilenet_space_with_a_per_layer_latency_table():
    """Issue 18: MnasNet's search on the mobile space, LAT from a per-layer table (a device
    named ``latency_ms[<table>]``), read as a free metric for the default target."""
    from nasforge.evaluators.latency_table import LatencyTableEvaluator
    from nasforge.hardware.layer_lut import LayerLatencyTable
    from nasforge.testing.contracts import HashEvaluator

    space = nasforge.spaces.create("mobilenet")
    small = {"num_classes": 10, "width_mult": 0.25, "resolution": 32}
    small.update(stem_stride=1, first_stride=1)
    entries = {
        spec.key: 0.01 * spec.kernel * spec.expansion + 0.02 for spec in space.layer_specs(**small)
    }
    table = LayerLatencyTable(entries, fixed_ms=0.1, backend="torch")
    metric = f"latency_ms[{table.name}]"
    evaluator = LatencyTableEvaluator(space, [table], evaluator=HashEvaluator(), build=small)
    study = nasforge.create_study(
        space="mobilenet",
        strategy="mnasnet-reward",
        strategy_params={"base": "regularized-evolution", "metric": metric, "reward": "hard"},
        evaluator=evaluator,
        seed=0,
    )
    study.optimize(evaluator, n_trials=30)
    strategy = study._strategy
    assert isinstance(strategy, MnasNetReward)
    rng = np.random.default_rng(0)  # the default target: median latency of 256 random networks
    sample = [space.sample(rng) for _ in range(256)]
    median = float(np.median([table.predict(space.layers(a, **small)) for a in sample]))
    assert strategy.target == pytest.approx(median)
    for trial in study.trials:
        latency = trial.metrics[metric]
        assert latency == pytest.approx(table.predict(space.layers(trial.arch, **small)))
        reward = strategy.reward_of(trial.metrics["valid_acc"], latency)
        expected = trial.metrics["valid_acc"] * min(1.0, strategy.target / latency)
        assert reward == pytest.approx(expected)
