"""Per-layer latency tables as devices of an evaluator: ``latency_ms[<table>]`` for mobilenet."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

import nasforge
from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError
from nasforge.evaluators.base import Evaluator
from nasforge.evaluators.latency_table import LatencyTableEvaluator
from nasforge.hardware import LayerLatencyTable
from nasforge.trial import Direction, Result


@pytest.fixture(scope="module")
def mobilenet():
    return nasforge.spaces.create("mobilenet")


@pytest.fixture(scope="module")
def archs(mobilenet):
    rng = np.random.default_rng(3)
    return [mobilenet.sample(rng) for _ in range(6)]


def _table(mobilenet, archs, backend="onnxruntime", scale=1.0, **build) -> LayerLatencyTable:
    """A table with a different made-up entry per distinct layer of ``archs``."""
    keys = sorted({spec.key for arch in archs for spec in mobilenet.layers(arch, **build)})
    entries = {key: scale * (1 + i % 7) / 8 for i, key in enumerate(keys)}
    return LayerLatencyTable(entries, fixed_ms=0.375, backend=backend)


class Accuracy(Evaluator):
    """An evaluator of mobilenet with one metric and a cost of 2 seconds."""

    space = "mobilenet"
    cost_unit = "seconds"

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch, fidelity=None) -> Result:
        return Result({"valid_acc": float(len(arch.text))}, cost=2.0, seconds=2.0)

    @property
    def free_metric_names(self):
        return ("params_M",)

    def free_metrics(self, arch):
        return {"params_M": 1.5}


def test_the_device_metric_is_the_table_prediction(mobilenet, archs, tmp_path):
    table = _table(mobilenet, archs)
    path = table.to_csv(tmp_path / "cpu.csv")
    ev = nasforge.evaluators.create("latency-table", space="mobilenet", tables=[path])
    assert ev.metrics == {"latency_ms[cpu-onnxruntime-lut]": Direction.MINIMIZE}
    assert ev.devices == ("cpu-onnxruntime-lut",)
    for arch in archs:
        layers = mobilenet.layers(arch)
        result = ev.evaluate(arch)
        expected = 0.375 + sum(table.entries[spec.key] for spec in layers)
        assert result.metrics == {"latency_ms[cpu-onnxruntime-lut]": pytest.approx(expected)}
        assert result.cost == 1.0 and ev.expected_cost(arch) == 1.0
        assert ev.free_metrics(arch) == result.metrics
    assert ev.free_metric_names == ("latency_ms[cpu-onnxruntime-lut]",)


def test_several_named_devices_and_unknown_names(mobilenet, archs):
    torch_table = _table(mobilenet, archs, backend="torch", scale=3.0)
    ev = LatencyTableEvaluator(
        mobilenet,
        {"laptop": _table(mobilenet, archs), "phone": torch_table},
    )
    metrics = ev.evaluate(archs[0]).metrics
    assert set(metrics) == {"latency_ms[laptop]", "latency_ms[phone]"}
    assert metrics["latency_ms[phone]"] > metrics["latency_ms[laptop]"]
    assert ev.predict(archs[0], "phone") == {"latency_ms[phone]": metrics["latency_ms[phone]"]}
    with pytest.raises(UnknownNameError) as err:
        ev.table("pixel3")
    assert "laptop" in str(err.value) and "phone" in str(err.value)
    with pytest.raises(InvalidConfigError, match="Two latency tables are named"):
        LatencyTableEvaluator(mobilenet, [torch_table, torch_table])
    with pytest.raises(InvalidConfigError, match="at least one table"):
        LatencyTableEvaluator(mobilenet, [])


def test_a_wrapped_evaluator_keeps_its_metrics_and_cost(mobilenet, archs):
    ev = LatencyTableEvaluator(mobilenet, _table(mobilenet, archs), evaluator=Accuracy())
    result = ev.evaluate(archs[1])
    assert set(result.metrics) == {"valid_acc", "latency_ms[cpu-onnxruntime-lut]"}
    assert (result.cost, result.seconds, ev.cost_unit) == (2.0, 2.0, "seconds")
    assert ev.metrics["valid_acc"] is Direction.MAXIMIZE
    assert set(ev.free_metrics(archs[1])) == {"params_M", "latency_ms[cpu-onnxruntime-lut]"}
    assert ev.spec() is None  # the wrapped evaluator has no spec to rebuild it from


def test_constraints_and_objectives_name_the_device(mobilenet, archs, tmp_path):
    path = _table(mobilenet, archs).to_csv(tmp_path / "t.csv")
    ev = LatencyTableEvaluator("mobilenet", [path])
    study = nasforge.create_study(
        space="mobilenet",
        objectives=["latency_ms[cpu-onnxruntime-lut]:min"],
        constraints=["latency_ms[cpu-onnxruntime-lut]<=20"],
        evaluator=ev,
    )
    assert study.constraints[0].metric == "latency_ms[cpu-onnxruntime-lut]"
    with pytest.raises(UnknownNameError) as err:
        nasforge.create_study(
            space="mobilenet",
            objectives=["latency_ms[cpu-onnxruntime-lut]:min"],
            constraints=["latency_ms[pixel3]<=20"],
            evaluator=ev,
        )
    assert "latency_ms[cpu-onnxruntime-lut]" in str(err.value)


def test_spec_rebuilds_the_evaluator_from_its_files(mobilenet, archs, tmp_path):
    path = _table(mobilenet, archs).to_csv(tmp_path / "t.csv")
    ev = LatencyTableEvaluator("mobilenet", {"mine": path})
    spec = dict(ev.spec())
    assert spec["tables"] == {"mine": str(path)}
    again = nasforge.evaluators.create(spec.pop("name"), **spec)
    assert again.evaluate(archs[2]).metrics == ev.evaluate(archs[2]).metrics
    assert LatencyTableEvaluator("mobilenet", _table(mobilenet, archs)).spec() is None


def test_a_layer_missing_from_the_table_is_named(mobilenet, archs):
    ev = LatencyTableEvaluator(mobilenet, _table(mobilenet, archs), build={"resolution": 192})
    with pytest.raises(InvalidConfigError) as err:
        ev.evaluate(archs[0])
    first = mobilenet.layers(archs[0], resolution=192)[0]
    assert first.key in str(err.value) and "layer 0 of the network" in str(err.value)


def test_a_space_without_layers_is_refused():
    table = LayerLatencyTable({"a": 1.0}, 0.0, "torch")
    with pytest.raises(UnsupportedOperationError, match="layers"):
        LatencyTableEvaluator("nb201", [table])


def test_a_preset_prices_the_networks_of_that_preset(mobilenet, archs, tmp_path):
    reduced = {k: v for k, v in mobilenet.presets()["reduced"].items()}
    settings = {k: reduced[k] for k in ("width_mult", "resolution", "stem_stride", "first_stride")}
    table = _table(mobilenet, archs, num_classes=10, **settings)
    ev = LatencyTableEvaluator("mobilenet", table, preset="reduced", num_classes=10)
    assert ev.build == {**settings, "num_classes": 10}  # data and training settings left out
    layers = mobilenet.layers(archs[1], num_classes=10, **settings)
    assert ev.evaluate(archs[1]).metrics[table.metric] == pytest.approx(table.predict(layers))
    # the same table does not price the 224x224 ImageNet networks of the default
    with pytest.raises(InvalidConfigError, match="no entry for the layer"):
        LatencyTableEvaluator("mobilenet", table).evaluate(archs[1])
    path = table.to_csv(tmp_path / "reduced.csv")
    spec = dict(LatencyTableEvaluator("mobilenet", path, preset="reduced", num_classes=10).spec())
    again = nasforge.evaluators.create(spec.pop("name"), **spec)  # resumes with the same layers
    assert again.build == ev.build
    with pytest.raises(UnknownNameError, match="cifar, paper, reduced, search"):
        LatencyTableEvaluator("mobilenet", table, preset="tiny")
    with pytest.raises(InvalidConfigError, match="num_classes"):
        LatencyTableEvaluator("mobilenet", table, num_classes=0)


def test_measure_puts_the_measured_latency_beside_the_predicted_one(mobilenet, archs, tmp_path):
    small = {"num_classes": 10, "width_mult": 0.25, "resolution": 32}
    small.update(stem_stride=1, first_stride=1)
    table = _table(mobilenet, archs, backend="torch", **small)
    ev = LatencyTableEvaluator("mobilenet", table, build=small, measure=True, runs=3)
    measured = f"measured_latency_ms[{table.name}]"
    assert set(ev.metrics) == {table.metric, measured}
    assert ev.free_metric_names == (table.metric,)  # measuring is not free
    metrics = ev.evaluate(archs[0]).metrics
    assert metrics[table.metric] == pytest.approx(
        table.predict(mobilenet.layers(archs[0], **small))
    )
    assert 0.0 < metrics[measured] < 10_000.0
    path = table.to_csv(tmp_path / "t.csv")
    spec = dict(LatencyTableEvaluator("mobilenet", path, build=small, measure=True).spec())
    assert spec["measure"] is True
    phone = LayerLatencyTable(dict(table.entries), fixed_ms=0.5, backend="tflite", device="pixel3")
    with pytest.raises(InvalidConfigError, match="another device or runtime"):
        LatencyTableEvaluator("mobilenet", phone, build=small, measure=True)
