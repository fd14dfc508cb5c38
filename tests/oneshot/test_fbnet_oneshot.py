"""Tests of FBNet's Gumbel-softmax search on the mobile supernets."""

from __future__ import annotations

import math

import pytest
from mobile_testing import SETTINGS, SMALL, table_for

from nasforge import oneshot, spaces
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError, UnsupportedOperationError
from nasforge.storage import get_storage
from nasforge.testing.contracts import HashEvaluator
from nasforge.train import SyntheticImages


@pytest.fixture(scope="module")
def data():
    """32 images: one step of 16 on each half per epoch (every candidate runs in FBNet)."""
    return SyntheticImages(num_classes=4, n_train=32, n_test=4, size=32).load()


def run(data, space="fbnet", epochs=2, seed=0, **params):
    return oneshot.search(
        "fbnet",
        data,
        space=space,
        params={"warmup_epochs": 0, "unit": "us", **params},
        settings=SETTINGS,
        epochs=epochs,
        seed=seed,
        evaluator=HashEvaluator(space),
        device="cpu",
        threads=1,
    )


@pytest.mark.parametrize("space", ["fbnet", "mobilenet"])
def test_a_tiny_search_records_each_epoch_with_its_predicted_latency(data, space):
    net, table = table_for(space)
    result = run(data, space, epochs=3, table=table, warmup_epochs=1, target_ms=100.0)
    trials = result.study.trials
    assert [t.metrics["epoch"] for t in trials] == [0.0, 1.0, 2.0]
    # the temperature stays at 5.0 through the warm-up, then falls by exp(-0.045) per epoch
    taus = [t.metrics["tau"] for t in trials]
    assert taus == pytest.approx([5.0, 5.0, 5.0 * math.exp(-0.045)], rel=1e-3)
    assert "arch_loss" not in trials[0].metrics and "arch_loss" in trials[1].metrics
    for trial in trials:
        layers = spaces.create(space).layers(trial.arch, num_classes=4, **SMALL)
        assert trial.metrics["predicted_latency_ms"] == pytest.approx(table.predict(layers))
        assert net.contains(trial.arch)
        assert trial.metrics["latency_target_ms"] == 100.0


def test_the_warm_up_leaves_theta_alone(data):
    _, table = table_for("fbnet")
    result = run(data, epochs=1, table=table, warmup_epochs=1)
    # theta at its 1e-3 initialisation: every layer's probabilities nearly uniform, so the
    # expected latency is the mean of the candidates' latencies
    net, _ = table_for("fbnet")
    rows, fixed = net.candidate_latency(table)
    uniform = fixed + sum(float(t.mean(dim=-1).sum()) for t in rows)
    assert result.study.trials[0].metrics["expected_latency_ms"] == pytest.approx(uniform, rel=1e-2)


def test_a_strong_latency_exponent_derives_a_faster_network():
    data = SyntheticImages(num_classes=4, n_train=64, n_test=4, size=32).load()
    _, table = table_for("fbnet")
    common = {"table": table, "arch_lr": 0.1}
    fast = run(data, beta=6.0, **common).study.trials[-1].metrics["predicted_latency_ms"]
    free = run(data, beta=1e-6, **common).study.trials[-1].metrics["predicted_latency_ms"]
    assert fast < 0.8 * free


def test_bad_input_is_refused(data):
    net, table = table_for("fbnet")
    with pytest.raises(InvalidConfigError, match="unit"):
        oneshot.create("fbnet", unit="s")
    with pytest.raises(InvalidConfigError, match="tau_decay"):
        oneshot.create("fbnet", tau_decay=1.5)
    with pytest.raises(InvalidConfigError, match="beta"):
        oneshot.create("fbnet", beta=0.0)
    with pytest.raises(InvalidConfigError, match="unit='us'"):  # log(LAT) of a < 1 ms network
        run(data, epochs=1, table=table, unit="ms")
    low, _ = net.latency_range(table)
    with pytest.raises(InfeasibleConstraintError, match=f"fastest reachable is {low:.4g} ms"):
        run(data, epochs=1, table=table, target_ms=low / 2)
    spec = net.layers[4].specs[2]
    _, partial = table_for("fbnet", skip={spec.key})
    with pytest.raises(InvalidConfigError, match="no entry for the layer"):
        run(data, epochs=1, table=partial)
    storage = get_storage(None)
    with pytest.raises(UnsupportedOperationError, match="layers"):
        oneshot.search("fbnet", data, space="nb201", storage=storage, device="cpu")
    assert storage.list_studies() == []


def test_the_default_unit_keeps_log_latency_positive_for_sub_millisecond_networks(data):
    net, table = table_for("fbnet")
    low, _ = net.latency_range(table)
    assert low < 1.0  # the paper's milliseconds would make log(LAT) negative: refused above
    assert oneshot.create("fbnet").unit == "auto"
    result = oneshot.search(
        "fbnet", data, space="fbnet", params={"table": table, "warmup_epochs": 0},
        settings=SETTINGS, epochs=1, seed=0, evaluator=HashEvaluator("fbnet"), device="cpu",
        threads=1,
    )  # fmt: skip
    assert result.failed is None and len(result.study.trials) == 1
    # "auto" chose microseconds: the search equals one run with unit="us"
    same = run(data, epochs=1, table=table)
    assert same.study.trials[0].arch == result.study.trials[0].arch
