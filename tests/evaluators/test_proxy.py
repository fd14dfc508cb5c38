from __future__ import annotations

import pytest

import nasforge
from nasforge import evaluators
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.trial import Direction

pytest.importorskip("torch")

TINY = {"channels": 4, "cells_per_stage": 1}


def make(**kwargs):
    base = dict(proxies=["synflow", "nwot", "params"], batch_size=8, build=TINY)
    return evaluators.create("proxy", **{**base, **kwargs})


def test_metrics_are_the_proxies_and_the_table_accuracy(nb201):
    ev = make(benchmark="nb201")
    assert ev.metrics == dict.fromkeys(
        ["synflow", "nwot", "params", "valid_acc", "test_acc"], Direction.MAXIMIZE
    )
    result = ev.evaluate(nb201.from_index(6111))
    assert set(result.metrics) == set(ev.metrics)
    assert result.metrics["test_acc"] == pytest.approx(94.373, abs=1e-3)
    assert result.cost > 0 and ev.cost_unit == "seconds"
    again = make(benchmark="nb201").evaluate(nb201.from_index(6111))
    assert again.metrics == result.metrics  # fixed seed and batch


def test_a_study_searches_by_a_proxy():
    study = nasforge.create_study(strategy="random", seed=0, objectives=["synflow:max"])
    study.optimize(make(), n_trials=3)
    assert len(study.trials) == 3
    assert all("synflow" in t.metrics for t in study.trials)


def test_bad_configuration():
    with pytest.raises(UnknownNameError):
        make(proxies=["synflw"])
    with pytest.raises(UnknownNameError):
        make(dataset="mnist")
    with pytest.raises(InvalidConfigError, match="batch_size"):
        make(batch_size=1)
    with pytest.raises(InvalidConfigError, match="fidelity"):
        make().evaluate(nasforge.spaces.create("nb201").from_index(0), {"epochs": 12})
