"""The tabular evaluator answers from the bundled benchmark with the standard protocol."""

from __future__ import annotations

import pytest

import nasforge
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.trial import Direction


def test_cifar10_protocol_valid_from_train_split_test_from_train_plus_valid(nb201):
    ev = nasforge.evaluators.create("tabular", dataset="cifar10")
    result = ev.evaluate(nb201.from_index(6111))
    assert result.metrics["valid_acc"] == pytest.approx(91.606667, abs=1e-6)
    assert result.metrics["test_acc"] == pytest.approx(94.373333, abs=1e-6)
    assert result.metrics["test_acc_train_split"] < result.metrics["test_acc"]
    assert result.cost == 1.0
    assert ev.metrics["valid_acc"] is Direction.MAXIMIZE
    assert ev.metrics["latency_ms[pixel3]"] is Direction.MINIMIZE


def test_selected_metrics_and_low_fidelity(nb201):
    ev = nasforge.evaluators.create(
        "tabular", dataset="imagenet16-120", metrics=["valid_acc", "params_M"]
    )
    arch = nb201.from_index(1)
    full = ev.evaluate(arch)
    assert set(full.metrics) == {"valid_acc", "params_M"}
    low = ev.evaluate(arch, {"epochs": 12})
    assert low.cost == pytest.approx(12 / 200)
    assert low.metrics["valid_acc"] < full.metrics["valid_acc"]
    assert low.metrics["params_M"] == full.metrics["params_M"]


def test_spec_rebuilds_the_same_evaluator(nb201):
    ev = nasforge.evaluators.create("tabular", dataset="cifar100", metrics=["valid_acc"])
    spec = dict(ev.spec())
    again = nasforge.evaluators.create(spec.pop("name"), **spec)
    arch = nb201.from_index(77)
    assert again.evaluate(arch) == ev.evaluate(arch)


def test_bad_input():
    with pytest.raises(
        UnknownNameError, match=r"cifar10, cifar100, imagenet16-120\. Did you mean 'cifar100'"
    ):
        nasforge.evaluators.create("tabular", dataset="cifar-100")
    with pytest.raises(UnknownNameError, match="Did you mean 'test_acc'"):
        nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["test-acc"])
    with pytest.raises(UnknownNameError, match="nb201"):
        nasforge.evaluators.create("tabular", benchmark="nb101")
    ev = nasforge.evaluators.create("tabular")
    arch = nasforge.spaces.create("nb201").from_index(0)
    with pytest.raises(InvalidConfigError, match="only 'epochs'"):
        ev.evaluate(arch, {"resolution": 16})
    with pytest.raises(UnknownNameError, match="200"):
        ev.evaluate(arch, {"epochs": 50})
