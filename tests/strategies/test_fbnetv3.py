"""FBNetV3's joint search: quasi Monte-Carlo start, constraints, early stopping, Stage 2."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

import nasforge
from nasforge import spaces, strategies
from nasforge.architecture import Architecture
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError, UnknownNameError
from nasforge.evaluators.base import Evaluator
from nasforge.strategies.fbnetv3 import FBNetV3
from nasforge.trial import Direction, Result, Trial, TrialState

SPACE = spaces.create("nb201+recipe")
CONVS = (2, 3)  # nb201's nor_conv_1x1 and nor_conv_3x3


def convs(arch: Architecture) -> int:
    base = SPACE.network_arch(arch) if arch.space == SPACE.name else arch
    return sum(c in CONVS for c in base.choices)


class MadeUp(Evaluator):
    """A cheap made-up score: convolutions help, a learning-rate factor of 2 helps, mixup
    hurts; ``params_M`` and ``flops_M`` (free) grow with the convolutions. Remembers the
    fidelity of each evaluation."""

    cost_unit = "queries"

    def __init__(self) -> None:
        self.fidelities: list[Mapping[str, Any] | None] = []

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        self.fidelities.append(fidelity)
        score = 10.0 * convs(arch)
        if arch.space == SPACE.name:
            recipe = SPACE.split(arch)[1]
            score += 15.0 * (recipe["lr"] == 2.0) - 5.0 * recipe["mixup"] * 5
        return Result({"valid_acc": score}, cost=1.0)

    @property
    def free_metric_names(self) -> tuple[str, ...]:
        return ("params_M", "flops_M")

    def free_metrics(self, arch: Architecture) -> Mapping[str, float]:
        n = convs(arch)
        return {"params_M": 0.1 + n, "flops_M": 1.0 + 10.0 * n}


def run(params: dict[str, Any], n_trials: int, evaluator: MadeUp | None = None) -> Any:
    study = nasforge.create_study(
        space="nb201+recipe", strategy="fbnetv3", seed=0, strategy_params=params
    )
    study.optimize(evaluator or MadeUp(), n_trials=n_trials)
    return study


def test_registered_and_default_encoding_is_joint():
    search = strategies.create("fbnetv3", SPACE, seed=0)
    assert isinstance(search, FBNetV3)
    assert search.encoding == "joint"
    assert strategies.create("fbnetv3", spaces.create("nb201"), seed=0).encoding == "onehot"


def test_first_batch_is_quasi_monte_carlo_balanced():
    search = FBNetV3(SPACE, seed=3, n_initial=16, pretrain=False)
    first = [search.ask().arch for _ in range(16)]
    assert len(set(first)) == 16
    count = len(SPACE.base.decisions())
    for k, decision in enumerate(SPACE.decisions()[count:]):
        if len(decision.options) == 2:  # a Sobol sequence splits every axis evenly
            column = [a.choices[count + k] for a in first]
            assert column.count(0) == 8, decision.name


def test_search_improves_over_its_initial_samples():
    params = {"n_initial": 12, "batch_size": 6, "n_iterations": 2, "pool_size": 300}
    study = run(params, 36)
    scores = [t.metrics["valid_acc"] for t in study.trials]
    initial, later = scores[:12], scores[24:]
    assert max(later) > max(initial)
    assert np.mean(later) > np.mean(initial) + 10
    best = study.best_trial.arch
    assert SPACE.split(best)[1]["lr"] == 2.0 and SPACE.split(best)[1]["mixup"] == 0.0


def test_constraints_are_met_by_every_proposal():
    params = {
        "n_initial": 8,
        "batch_size": 4,
        "n_iterations": 1,
        "pool_size": 200,
        "constraints": ["params_M<=2.5"],
    }
    study = run(params, 24)
    assert all(convs(t.arch) <= 2 for t in study.trials)
    # the search climbs to the bound: the best candidates have two convolutions
    assert convs(study.best_trial.arch) == 2


def test_infeasible_constraint_is_refused():
    with pytest.raises(InfeasibleConstraintError, match="params_M"):
        run({"constraints": ["params_M<=0.01"], "pretrain": False}, 2)


def test_constraint_on_a_metric_that_is_not_free_is_refused():
    with pytest.raises(InvalidConfigError, match="latency_ms"):
        run({"constraints": ["latency_ms<=1"], "pretrain": False}, 2)


def test_early_stopping_fidelity_in_stage_one_only():
    evaluator = MadeUp()
    params = {"n_initial": 6, "batch_size": 3, "n_iterations": 1, "early_stop": {"epochs": 2}}
    study = run({**params, "pool_size": 100, "pretrain": False}, 15, evaluator)
    fidelities = [dict(t.fidelity or {}) for t in study.trials]
    assert fidelities == [{"epochs": 2}] * 9 + [{}] * 6
    assert {"epochs": 2} in evaluator.fidelities and None in evaluator.fidelities


def test_pretrained_predictor_ranks_by_free_statistics_before_fine_tuning():
    search = FBNetV3(SPACE, seed=0, n_initial=4, batch_size=2, pool_size=50, pretrain=True)
    search.free_metrics = MadeUp().free_metrics
    for number in range(4):
        arch = search.ask().arch
        search.tell(Trial(number, arch, TrialState.COMPLETE, scores=(10.0 * convs(arch),)))
    search.ask()
    pretrained = search._surrogate.pretrained()
    pool = [SPACE.sample(np.random.default_rng(i)) for i in range(60)]
    predicted = pretrained.predict(np.stack([SPACE.encode(a, "joint") for a in pool]))[0]
    assert np.corrcoef(predicted, [convs(a) for a in pool])[0, 1] > 0.8


def test_stage_two_proposes_unseen_candidates_and_keeps_going():
    search = FBNetV3(
        SPACE, seed=0, n_initial=4, batch_size=2, n_iterations=0, pool_size=50, pretrain=False
    )
    seen = set()
    for number in range(14):
        arch = search.ask().arch
        assert arch not in seen
        seen.add(arch)
        search.tell(Trial(number, arch, TrialState.COMPLETE, scores=(float(convs(arch)),)))
    assert search.stage == 2 and search.predictor is not None


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"n_initial": 0}, InvalidConfigError),
        ({"tolerance": -1.0}, InvalidConfigError),
        ({"constraints": ["params_M<<1"]}, InvalidConfigError),
        ({"encoding": "graph"}, UnknownNameError),
    ],
)
def test_bad_parameters_are_refused(params, error):
    with pytest.raises(error):
        FBNetV3(SPACE, seed=0, **params)
