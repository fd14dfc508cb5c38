"""One-shot methods in a comparison, and the time axis every method shares."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.experiments import Comparison, run_comparison
from nasforge.oneshot import SupernetSettings
from nasforge.train import SyntheticImages

TINY = SupernetSettings(channels=4, cells=1, batch_size=16)
EPOCHS = 3
SPQ = 7.0  # seconds charged per black-box query


@pytest.fixture(scope="module")
def data():
    return SyntheticImages(num_classes=4, n_train=64, n_test=4, size=8).load()


@pytest.fixture(scope="module")
def mixed(data) -> Comparison:
    return run_comparison(
        ["regularized-evolution", "darts", "gdas"],
        seeds=2,
        budget=12,
        strategy_params={"regularized-evolution": {"population_size": 5, "tournament_size": 2}},
        n_jobs=1,
        data=data,
        oneshot_settings=TINY,
        oneshot_epochs=EPOCHS,
        seconds_per_query=SPQ,
        device="cpu",
        threads=1,
    )


def _rows(comparison: Comparison, strategy: str, seed: int) -> list[dict]:
    return [r for r in comparison.trial_rows() if r["strategy"] == strategy and r["seed"] == seed]


def test_one_shot_runs_record_one_trial_per_epoch_at_no_query_cost(mixed: Comparison) -> None:
    assert mixed.oneshot == ("darts", "gdas")
    assert mixed.strategies == ("regularized-evolution", "darts", "gdas", "random")
    for method in mixed.oneshot:
        for seed in mixed.seeds:
            rows = _rows(mixed, method, seed)
            assert len(rows) == EPOCHS
            assert all(r["cost"] == 0.0 for r in rows)
            seconds = [r["seconds"] for r in rows]
            assert seconds == sorted(seconds) and seconds[0] > 0
    assert mixed.oneshot_settings["channels"] == 4 and mixed.oneshot_settings["epochs"] == EPOCHS


def test_a_one_shot_run_stands_for_its_latest_architecture(mixed: Comparison) -> None:
    """Not the best of its epochs by validation: choosing that would consult the table."""
    for method in mixed.oneshot:
        finals = []
        for seed in mixed.seeds:
            rows = _rows(mixed, method, seed)
            for row in rows:  # after each epoch: that epoch's architecture
                assert row["best_test"] == row["test_acc"]
            finals.append(rows[-1]["test_acc"])
        (row,) = [r for r in mixed.summary([12]) if r.strategy == method]
        assert row.mean_test == pytest.approx(np.mean(finals))
        assert row.mean_seconds == pytest.approx(
            np.mean([_rows(mixed, method, s)[-1]["seconds"] for s in mixed.seeds])
        )
        # a one-shot run holds its final architecture at every query budget
        _, test = mixed.trajectories(method, "cifar10")
        assert np.all(test == np.array(finals)[:, None])


def test_latest_differs_from_best_by_validation_when_an_epoch_was_worse() -> None:
    from nasforge.experiments.results import _picked, _Run

    run = _Run(
        seed=0,
        archs=("a", "b", "c"),
        fidelity=("", "", ""),
        valid=np.array([90.0, 80.0, np.nan]),
        test=np.array([91.0, 81.0, np.nan]),
        cost=np.zeros(3),
        eligible=np.array([True, True, False]),
        seconds=np.array([1.0, 2.0, 3.0]),
        latest=True,
    )
    valid, test = _picked(run)
    assert list(valid) == [90.0, 80.0, 80.0]  # a failed epoch keeps the last good one
    assert list(test) == [91.0, 81.0, 81.0]
    best_valid, _ = _picked(_Run(**{**run.__dict__, "latest": False}))
    assert list(best_valid) == [90.0, 90.0, 90.0]


def test_the_time_axis_charges_each_query(mixed: Comparison) -> None:
    for strategy in ("regularized-evolution", "random"):
        for budget in (5, 12):
            (row,) = [r for r in mixed.summary([budget]) if r.strategy == strategy]
            # the measured wall time of a table query is far below a second
            assert budget * SPQ <= row.mean_seconds < budget * SPQ + 1.0
        # before the first charged query a black-box run stands for nothing yet
        _, test = mixed.time_trajectories(strategy, "cifar10", [SPQ * 0.5, 1e6])
        assert np.isnan(test[:, 0]).all()
        # long after the end: the best-by-validation of the whole run
        _, by_query = mixed.trajectories(strategy, "cifar10")
        assert np.array_equal(test[:, 1], by_query[:, -1])


def test_time_trajectories_follow_the_epochs(mixed: Comparison) -> None:
    for seed_index, seed in enumerate(mixed.seeds):
        rows = _rows(mixed, "darts", seed)
        times = [r["seconds"] for r in rows]
        grid = [times[0] / 2, *times, times[-1] * 10]
        _, test = mixed.time_trajectories("darts", "cifar10", grid)
        assert math.isnan(test[seed_index, 0])
        assert list(test[seed_index, 1:-1]) == [r["test_acc"] for r in rows]
        assert test[seed_index, -1] == rows[-1]["test_acc"]
    low, high = mixed.seconds_range()
    assert 0 < low < high and high >= 12 * SPQ


def test_to_json_and_files_carry_the_time_axis(mixed: Comparison, tmp_path) -> None:
    data = mixed.to_json()
    assert data["oneshot"] == ["darts", "gdas"] and data["seconds_per_query"] == SPQ
    assert data["datasets"]["cifar10"]["darts"]["mean_seconds"] > 0
    paths = mixed.write(tmp_path)
    assert paths["time_plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = paths["trials"].read_text().splitlines()[0]
    assert header.endswith(",seconds")


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"strategies": ["darts"]}, InvalidConfigError, "give data"),
        ({"datasets": ["cifar100"]}, InvalidConfigError, "datasets=['cifar10']"),
        ({"constraints": ["params_M<=1"]}, InvalidConfigError, "Constraints apply to black-box"),
        ({"oneshot_epochs": 0}, InvalidConfigError, "oneshot_epochs must be a positive"),
        ({"seconds_per_query": math.inf}, InvalidConfigError, "seconds_per_query must be"),
        ({"strategy_params": {"darts": {"order": 3}}}, InvalidConfigError, "order"),
        ({"strategies": ["dartz"]}, UnknownNameError, "one-shot method 'dartz'"),
    ],
)
def test_bad_one_shot_input_is_refused_before_anything_runs(data, kwargs, error, fragment):
    args = {"strategies": ["darts"], "data": data, "seeds": 1, "budget": 5, "n_jobs": 1}
    if kwargs.get("strategies") == ["darts"]:
        args.pop("data")
    args.update(kwargs)
    strategies = args.pop("strategies")
    with pytest.raises(error, match=None) as caught:
        run_comparison(strategies, **args)
    assert fragment in str(caught.value)
