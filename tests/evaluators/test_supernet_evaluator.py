"""The ``supernet`` evaluator: sub-networks of a trained elastic supernet as trials, their
costs consistent with the space's layers, and batch-norm recalibration per sub-network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nasforge
from nasforge import evaluators, spaces
from nasforge.errors import InvalidConfigError
from nasforge.evaluators.supernet import SubnetCosts, SupernetEvaluator, layer_costs
from nasforge.hardware import count_flops
from nasforge.hardware.layer_lut import LayerLatencyTable
from nasforge.ops.mobile import build_layer

SYNTHETIC = {"n_train": 256, "n_test": 16, "size": 16, "num_classes": 4}
SMALL = {
    "dataset": "synthetic",
    "synthetic": SYNTHETIC,
    "recalibration_batches": 1,
    "valid_images": 64,
    "threads": 1,
}


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory):
    """An ofa-cifar supernet at width 0.25 trained for two steps of the uniform schedule."""
    from nasforge.elastic import TrainSettings, train_supernet
    from nasforge.train.data import SyntheticImages

    out = tmp_path_factory.mktemp("supernet")
    settings = TrainSettings(width_mult=0.25, epochs=1, batch_size=32, steps_per_epoch=2)
    data = SyntheticImages(**SYNTHETIC).load()
    train_supernet("ofa-cifar", "uniform", data, out, settings, device="cpu", threads=1)
    return out


def _table(space, costs):
    """Made-up entries for every layer of the sub-networks (kernel x expansion x side)."""
    specs = set()
    for arch in (space.largest(), space.smallest()):
        for side in range(len(space.RESOLUTIONS)):
            for k in range(3):
                for e in range(3):
                    choices = np.array(arch.choices)
                    choices[costs.res_col] = side
                    choices[costs.kernel_cols] = k
                    choices[costs.expansion_cols] = e
                    specs.update(costs.layers(space.from_choices(choices.tolist())))
    entries = {s.key: 0.01 * s.kernel * s.expansion + 1e-4 * s.resolution for s in specs}
    return LayerLatencyTable(entries, fixed_ms=0.25, backend="torch")


def test_costs_are_those_of_the_space_layers(supernet_dir):
    space = spaces.create("ofa-cifar")
    plain = SubnetCosts(space, num_classes=4, width_mult=0.25)
    table = _table(space, plain)
    ev = SupernetEvaluator(supernet_dir, tables={"made-up": table}, **SMALL)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(6)]
    for arch in archs[:2]:
        side = space.resolution(arch)
        net = space.build(arch, num_classes=4, width_mult=0.25)
        counted = count_flops(net, (3, side, side))
        free = ev.free_metrics(arch)
        assert free["macs_M"] == pytest.approx(counted.macs_M, rel=1e-9)
        assert free["params_M"] == pytest.approx(counted.params_M, rel=1e-9)
        assert free["flops_M"] == pytest.approx(counted.flops_M, rel=1e-9)
        layers = space.layers(arch, num_classes=4, width_mult=0.25)
        assert free["latency_ms[made-up]"] == pytest.approx(table.predict(layers))
    # the batched costs of many sub-networks agree with the one-by-one ones
    batch = ev.costs.batch(np.array([a.choices for a in archs]))
    for i, arch in enumerate(archs):
        one = ev.costs.of(arch)
        for name in ev.costs.names:
            assert batch[name][i] == pytest.approx(one[name], rel=1e-9)


def test_layer_costs_match_the_flop_counter():
    space = spaces.create("ofa-cifar")
    for spec in space.layers(space.largest(), width_mult=0.25):
        side = spec.resolution
        counted = count_flops(build_layer(spec), (spec.in_channels, side, side))
        assert layer_costs(spec) == pytest.approx((counted.params_M, counted.macs_M), rel=1e-9)


def test_extremes_are_the_lowest_and_highest_reachable():
    space = spaces.create("ofa-cifar")
    costs = SubnetCosts(space, num_classes=4, width_mult=0.25)
    low, smallest = costs.extreme("macs_M")
    high, largest = costs.extreme("macs_M", lowest=False)
    assert low == pytest.approx(costs.of(space.smallest())["macs_M"])
    assert high == pytest.approx(costs.of(space.largest())["macs_M"])
    assert costs.of(smallest)["macs_M"] == pytest.approx(low)
    assert costs.of(largest)["macs_M"] == pytest.approx(high)
    sampled = costs.batch(np.random.default_rng(1).integers(0, 3, (500, 46)))["macs_M"]
    assert low <= sampled.min() and sampled.max() <= high


def test_inherited_accuracy_after_recalibration(supernet_dir):
    ev = evaluators.create("supernet", dir=str(supernet_dir), **SMALL)
    space = spaces.create("ofa-cifar")
    arch = space.sample(np.random.default_rng(3))
    supernet = ev.trained().supernet
    before = [m.running_mean.clone() for m in supernet.bn_modules()]
    result = ev.evaluate(arch)
    assert set(result.metrics) == {"valid_acc", "params_M", "macs_M", "flops_M"}
    assert 0.0 <= result.metrics["valid_acc"] <= 100.0 and result.cost > 0
    assert ev.evaluate(arch).metrics == result.metrics  # the same images, the same statistics
    after = [m.running_mean for m in supernet.bn_modules()]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))  # put back
    ev.prepare(arch)  # the recalibrated statistics of the sub-network, kept
    changed = [m.running_mean for m in supernet.bn_modules()]
    assert any(not torch.equal(a, b) for a, b in zip(before, changed, strict=True))
    ev.restore()
    restored = [m.running_mean for m in supernet.bn_modules()]
    assert all(torch.equal(a, b) for a, b in zip(before, restored, strict=True))


def test_contract_and_spec(supernet_dir):
    ev = evaluators.create("supernet", dir=str(supernet_dir), **SMALL)
    nasforge.testing.check_evaluator(ev, samples=2)
    assert ev.spec()["dir"] == str(supernet_dir)


def test_any_strategy_searches_sub_networks_under_a_constraint(supernet_dir):
    ev = evaluators.create("supernet", dir=str(supernet_dir), **SMALL)
    bound = ev.costs.of(spaces.create("ofa-cifar").smallest())["macs_M"] * 3
    study = nasforge.create_study(
        space="ofa-cifar", strategy="random", seed=0, evaluator=ev,
        constraints=[f"macs_M<={bound}"],
    )  # fmt: skip
    study.optimize(ev, n_trials=4)
    complete = [t for t in study.trials if t.state.value == "COMPLETE"]
    assert complete and all(t.metrics["macs_M"] <= bound for t in complete)
    assert all("valid_acc" in t.metrics for t in complete)
    rejected = [t for t in study.trials if t.state.value == "FAILED"]
    assert all("infeasible before evaluation" in (t.fail_reason or "") for t in rejected)


def test_bad_input(supernet_dir, tmp_path):
    with pytest.raises(InvalidConfigError, match="holds no trained supernet"):
        SupernetEvaluator(tmp_path, **SMALL)
    ev = SupernetEvaluator(supernet_dir, **SMALL)
    with pytest.raises(InvalidConfigError, match="scores 'ofa-cifar' architectures"):
        nasforge.create_study(space="mobilenet", evaluator=ev)
    with pytest.raises(nasforge.errors.InvalidArchitectureError):
        ev.evaluate(spaces.create("ofa").largest())
    other = {**SMALL, "synthetic": {**SYNTHETIC, "n_train": 128}}
    with pytest.raises(InvalidConfigError, match="256 training images"):
        SupernetEvaluator(supernet_dir, **other).evaluate(spaces.create("ofa-cifar").largest())
    with pytest.raises(InvalidConfigError, match="another device"):
        table = LayerLatencyTable({}, fixed_ms=0.0, backend="tflite", device="pixel1")
        SupernetEvaluator(supernet_dir, tables=table, measure=True, **SMALL)
    with pytest.raises(InvalidConfigError, match=r"path of the cifar10 data .*dataset='synthetic'"):
        SupernetEvaluator(supernet_dir)
    with pytest.raises(InvalidConfigError, match="valid_images"):
        SupernetEvaluator(supernet_dir, **{**SMALL, "valid_images": 0})


def test_measured_accuracies_are_cached_until_the_checkpoint_changes(tmp_path, monkeypatch):
    from nasforge.elastic import TrainSettings, _accuracy, train_supernet
    from nasforge.train.data import SyntheticImages

    out = tmp_path / "run"
    data = SyntheticImages(**SYNTHETIC).load()

    def train(steps):
        settings = TrainSettings(width_mult=0.25, epochs=1, batch_size=32, steps_per_epoch=steps)
        train_supernet("ofa-cifar", "uniform", data, out, settings, device="cpu", threads=1,
                       resume=False)  # fmt: skip

    train(1)
    space = spaces.create("ofa-cifar")
    arch = space.sample(np.random.default_rng(5))
    first = SupernetEvaluator(out, **SMALL).evaluate(arch).metrics
    [written] = out.glob("measured-*.json")
    calls = []
    real = _accuracy.subnet_accuracy
    monkeypatch.setattr(
        _accuracy, "subnet_accuracy", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    again = SupernetEvaluator(out, **SMALL)
    assert again.cached_accuracy(arch) == first["valid_acc"]
    assert again.evaluate(arch).metrics == first and calls == []  # no forward pass
    assert SupernetEvaluator(out, **SMALL, cache=False).evaluate(arch).metrics == first
    assert len(calls) == 1
    other = SupernetEvaluator(out, **{**SMALL, "recalibration_batches": 2})
    assert other.cached_accuracy(arch) is None  # another measurement: another key
    # the checkpoint changed under the same manifest: not answered from the cache
    checkpoint = out / "phase-1-uniform.pt"
    saved = torch.load(checkpoint, weights_only=False)
    saved["model"] = {k: v * 2 if v.is_floating_point() else v for k, v in saved["model"].items()}
    torch.save(saved, checkpoint)
    changed = SupernetEvaluator(out, **SMALL)
    assert changed.cached_accuracy(arch) is None
    changed.evaluate(arch)
    assert len(calls) == 2 and len(list(out.glob("measured-*.json"))) == 2
    # more training (the folder trained again, longer): measured anew
    train(3)
    longer = SupernetEvaluator(out, **SMALL)
    assert longer.cached_accuracy(arch) is None
    longer.evaluate(arch)
    assert len(calls) == 3 and written.exists()
