"""Per-layer latency tables: prediction, CSV files, bad input, and measuring on this machine.

Never asserts an absolute time: the machine is shared and its speed unknown.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError
from nasforge.hardware import LayerLatencyTable, all_specs, measure_table, write_template
from nasforge.hardware.layer_lut import REQUIRED_COLUMNS
from nasforge.spaces.base import Decision, SearchSpace


@dataclass(frozen=True)
class Conv:
    """A stand-in for ``LayerSpec``: one 3x3 convolution at one input shape."""

    kind: str
    in_channels: int
    out_channels: int
    resolution: int
    stride: int = 1

    @property
    def key(self) -> str:
        shape = f"i{self.in_channels}-o{self.out_channels}-s{self.stride}-r{self.resolution}"
        return f"{self.kind}:{shape}"


class CountingBuilder:
    """Builds a convolution for a :class:`Conv` and counts what it built."""

    def __init__(self) -> None:
        self.built: list[str] = []

    def __call__(self, spec: Conv):
        from torch import nn

        self.built.append(spec.key)
        return nn.Conv2d(spec.in_channels, spec.out_channels, 3, spec.stride, padding=1)


class Chain(SearchSpace):
    """Three convolutions whose widths are the decisions; ``layers`` gives their specs."""

    name = "chain"

    def decisions(self):
        return tuple(Decision(f"w{i}", (4, 8)) for i in range(3))

    def from_choices(self, choices):
        choices = self.check_choices(choices)
        text = "-".join(str(self.decisions()[i].options[c]) for i, c in enumerate(choices))
        return Architecture(self.name, choices, text)

    def parse(self, text):
        return self.from_choices([(4, 8).index(int(w)) for w in text.split("-")])

    def layers(self, arch, *, resolution=8):
        widths = [3] + [int(w) for w in arch.text.split("-")]
        return tuple(Conv("conv", a, b, resolution) for a, b in itertools.pairwise(widths))


NET = (Conv("conv", 3, 4, 8), Conv("conv", 4, 4, 8), Conv("conv", 4, 8, 8))


def _table(**kwargs) -> LayerLatencyTable:
    entries = {NET[0].key: 0.5, NET[1].key: 0.25, NET[2].key: 1.125}
    layers = {spec.key: {"kind": "conv", "in_channels": str(spec.in_channels)} for spec in NET}
    return LayerLatencyTable(
        entries, fixed_ms=0.0625, backend="onnxruntime", layers=layers, **kwargs
    )


# -- prediction ---------------------------------------------------------------------------------
def test_predict_is_the_sum_of_the_entries_plus_the_fixed_part():
    table = _table()
    net = [NET[0], NET[1], NET[1], NET[2]]  # a layer used twice counts twice
    assert table.layer_latencies(net) == [0.5, 0.25, 0.25, 1.125]
    assert table.predict(net) == pytest.approx(0.0625 + 0.5 + 0.25 + 0.25 + 1.125)
    assert table.predict([]) == 0.0625
    assert NET[0] in table and NET[0].key in table and Conv("conv", 3, 16, 8) not in table


def test_missing_entry_names_the_layer_its_position_and_how_to_measure_it():
    table = _table()
    absent = Conv("conv", 8, 16, 8, stride=2)
    with pytest.raises(InvalidConfigError) as err:
        table.predict([NET[0], absent])
    message = str(err.value)
    assert absent.key in message
    assert "layer 1 of the network" in message
    assert "out_channels=16" in message and "stride=2" in message
    assert "measure_table" in message and "'onnxruntime'" in message
    assert table.missing([NET[0], absent, absent]) == [absent]


def test_names_and_metric():
    assert _table().metric == "latency_ms[cpu-onnxruntime-lut]"
    assert _table(device="pixel3", batch_size=8).name == "pixel3-onnxruntime-lut_8"


@pytest.mark.parametrize(
    ("entries", "kwargs"),
    [
        ({"a": -1.0}, {}),
        ({"a": float("nan")}, {}),
        ({"fixed": 1.0}, {}),
        ({"a": 1.0}, {"threads": 0}),
        ({"a": 1.0}, {"backend": "on nx"}),
        ({"a": 1.0}, {"fixed_ms": float("inf")}),
    ],
)
def test_bad_tables_are_refused(entries, kwargs):
    settings = {"fixed_ms": 0.0, "backend": "torch", **kwargs}
    with pytest.raises(InvalidConfigError):
        LayerLatencyTable(entries, **settings)


def test_merge_keeps_both_and_refuses_other_settings():
    extra = LayerLatencyTable({"other": 2.0, NET[0].key: 0.75}, 0.5, "onnxruntime")
    merged = _table().merge(extra)
    assert merged.entries[NET[0].key] == 0.75 and merged.entries["other"] == 2.0
    assert merged.entries[NET[2].key] == 1.125 and merged.fixed_ms == 0.5
    with pytest.raises(InvalidConfigError, match="measured differently"):
        _table().merge(LayerLatencyTable({"x": 1.0}, 0.0, "onnxruntime", threads=2))


# -- CSV ----------------------------------------------------------------------------------------
def test_csv_round_trip(tmp_path):
    table = _table(threads=2, device="laptop", factor=1.25)
    path = table.to_csv(tmp_path / "sub" / "table.csv")
    text = path.read_text()
    header = next(line for line in text.splitlines() if not line.startswith("#"))
    assert text.startswith("#") and header.startswith(
        "device,backend,threads,batch_size,factor,key,"
    )
    assert header.endswith(",latency_ms")
    back = LayerLatencyTable.from_csv(path)
    assert back == table
    assert back.source == str(path)
    assert dict(back.layers[NET[0].key]) == {"kind": "conv", "in_channels": "3"}
    assert back.to_csv(tmp_path / "again.csv").read_text() == text


def test_a_hand_written_csv_with_the_required_columns_only(tmp_path):
    path = tmp_path / "phone.csv"
    path.write_text(
        "key,latency_ms,backend,threads,batch_size\n"
        f"fixed,0.5,tflite,4,1\n{NET[0].key},2.0,tflite,4,1\n{NET[1].key},3,tflite,4,1\n"
    )
    table = LayerLatencyTable.from_csv(path)
    assert (table.device, table.backend, table.threads, table.name, table.factor) == (
        "cpu",
        "tflite",
        4,
        "cpu-tflite-lut",
        1.0,
    )
    assert table.predict(NET[:2]) == 5.5


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("key,latency,backend\nfixed,1.0,torch\n")
    with pytest.raises(InvalidConfigError) as err:
        LayerLatencyTable.from_csv(path)
    message = str(err.value)
    for column in ("threads", "batch_size", "latency_ms"):
        assert repr(column) in message.split("Columns found")[0]
    assert "'key'" not in message.split("; a table needs")[0]
    assert set(REQUIRED_COLUMNS) == {"backend", "threads", "batch_size", "key", "latency_ms"}


def test_missing_fixed_row_missing_file_and_empty_time(tmp_path):
    with pytest.raises(InvalidConfigError, match="missing"):
        LayerLatencyTable.from_csv(tmp_path / "nothing.csv")
    path = tmp_path / "nofixed.csv"
    path.write_text("key,latency_ms,backend,threads,batch_size\na,1.0,torch,1,1\n")
    with pytest.raises(InvalidConfigError, match="no row with key 'fixed'"):
        LayerLatencyTable.from_csv(path)
    template = write_template(tmp_path / "t.csv", [*NET, NET[0]], backend="torch")
    with pytest.raises(InvalidConfigError, match="measure it"):
        LayerLatencyTable.from_csv(template)
    lines = template.read_text().splitlines()
    body = [line for line in lines if not line.startswith("#")]
    assert len(body) == 1 + 1 + len(NET)  # header, fixed, one row per distinct layer
    assert all(line.endswith(",") for line in body[1:])  # latency_ms, the last column, empty
    comments = [line for line in lines if line.startswith("#")]
    template.write_text("\n".join([*comments, body[0], *(r + "1.5" for r in body[1:])]) + "\n")
    table = LayerLatencyTable.from_csv(template)
    assert table.predict(NET) == pytest.approx(1.5 * 4)
    assert table.layers[NET[2].key]["out_channels"] == "8"


def test_several_tables_in_one_file_are_picked_by_filter(tmp_path):
    a = _table().to_csv(tmp_path / "a.csv").read_text().splitlines()
    b = LayerLatencyTable({"x": 9.0}, 1.0, "torch").to_csv(tmp_path / "b.csv").read_text()
    both = tmp_path / "both.csv"
    both.write_text("\n".join(a) + "\n" + "\n".join(b.splitlines()[-2:]) + "\n")
    with pytest.raises(InvalidConfigError, match="2 tables"):
        LayerLatencyTable.from_csv(both)
    assert LayerLatencyTable.from_csv(both, backend="torch").entries == {"x": 9.0}
    assert LayerLatencyTable.from_csv(both, backend="onnxruntime") == _table()


def test_reading_and_predicting_do_not_import_torch(tmp_path):
    path = _table().to_csv(tmp_path / "t.csv")
    code = (
        "import sys; from nasforge.hardware import LayerLatencyTable; "
        f"t = LayerLatencyTable.from_csv({str(path)!r}); t.predict([]); "
        "import nasforge.hardware.layer_measure; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- measuring ----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_measuring_tiny_layers_gives_positive_finite_times(backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    builder = CountingBuilder()
    other = (Conv("conv", 3, 8, 8), Conv("conv", 8, 4, 8, stride=2))
    table = measure_table(
        None,
        [NET, NET[1], other],
        backend=backend,
        runs=3,
        warmup=1,
        calibration=[NET, other],
        builder=builder,
    )
    keys = {spec.key for spec in (*NET, *other)}
    assert set(table.entries) == keys
    assert sorted(builder.built[: len(keys)]) == sorted(keys)  # each layer built once
    assert all(math.isfinite(t) and t > 0 for t in table.entries.values())
    assert math.isfinite(table.fixed_ms) and table.fixed_ms != 0.0
    assert (table.backend, table.threads, table.batch_size) == (backend, 1, 1)
    assert table.layers[other[1].key]["stride"] == "2"


class Timed:
    """Builds modules that know their made-up time: a layer's is its output width / 10 ms."""

    def __call__(self, spec: Conv):
        from torch import nn

        layer = nn.Identity()
        layer.ms = spec.out_channels / 10
        return layer


def _fake_measure(module, shape, backend, threads, runs, warmup):
    """A call costs 0.2 ms, and a network 1.5 times the sum of its layers alone on top (one
    network was delayed by 100 ms)."""
    from nasforge.hardware.latency import Latency

    children = list(module.children())
    if not hasattr(module, "ms") and not children:  # the empty network: the call alone
        ms = 0.2
    elif children:
        ms = 0.2 + 1.5 * sum(child.ms for child in children)
        ms += 100.0 if len(children) == 4 else 0.0  # one network delayed by another job
    else:
        ms = module.ms
    return Latency.from_times([ms], batch_size=1, threads=threads, backend=backend, device="cpu")


def test_calibration_finds_the_factor_and_the_fixed_part(monkeypatch):
    from nasforge.hardware import layer_measure

    monkeypatch.setattr(layer_measure, "_measure", _fake_measure)
    nets = [NET, NET[:2], (NET[0],), (*NET, Conv("conv", 8, 8, 8))]
    table = measure_table(None, [], backend="torch", calibration=nets, builder=Timed())
    assert table.factor == pytest.approx(1.5) and table.fixed_ms == pytest.approx(0.2)
    assert table.entries[NET[2].key] == pytest.approx(1.5 * 0.8)  # factor times alone
    for net in nets[:3]:
        assert table.predict(net) == pytest.approx(
            0.2 + 1.5 * sum(s.out_channels / 10 for s in net)
        )
    # extending it keeps the factor for the new layers, or recalibrates with networks
    more = measure_table(
        None, [Conv("conv", 8, 16, 8)], backend="torch", calibration=0, builder=Timed(), table=table
    )
    assert more.entries[Conv("conv", 8, 16, 8).key] == pytest.approx(1.5 * 1.6)
    assert (more.factor, more.fixed_ms) == (table.factor, table.fixed_ms)
    with pytest.raises(InvalidConfigError, match="measured with"):
        measure_table(None, [], backend="onnxruntime", calibration=0, table=table)


def test_extending_a_table_measures_only_the_missing_layers():
    builder = CountingBuilder()
    start = LayerLatencyTable({NET[0].key: 0.5, NET[1].key: 0.5}, 0.25, "torch")
    table = measure_table(
        None, [NET], backend="torch", runs=2, warmup=0, calibration=0, builder=builder, table=start
    )
    assert builder.built == [NET[2].key]
    assert table.entries[NET[0].key] == 0.5 and NET[2].key in table
    assert table.fixed_ms == 0.25  # nothing to calibrate on: the table's own fixed part


def test_a_space_splits_architectures_and_all_specs_enumerates_it():
    space = Chain()
    specs = all_specs(space, {"resolution": 8})
    # first layer: 3->4 or 3->8; then 4 shapes for each of the two later layers (shared)
    assert len(specs) == len({s.key for s in specs}) == 2 + 4
    with pytest.raises(UnsupportedOperationError, match="layer_specs"):
        all_specs(space, limit=4)
    builder = CountingBuilder()
    arch = space.parse("8-4-8")
    table = measure_table(
        space, [arch], backend="torch", runs=2, warmup=0, calibration=2, seed=1, builder=builder
    )
    assert set(space.layers(arch)) <= set(specs)
    assert all(spec in table for spec in space.layers(arch))
    rng = np.random.default_rng(1)
    for calibrated in (space.sample(rng), space.sample(rng)):  # the same draws, measured too
        assert all(spec in table for spec in space.layers(calibrated))


def test_mobile_layer_with_the_default_builder():
    mobile = pytest.importorskip("nasforge.ops.mobile")
    spec = mobile.LayerSpec("mbconv", 8, 8, kernel=5, expansion=3, stride=1, resolution=8)
    table = measure_table(None, [spec], backend="torch", runs=3, warmup=1, calibration=0)
    assert table.latency(spec) > 0
    assert table.layers[spec.key]["kernel"] == "5"


def test_bad_measuring_settings_are_refused_before_measuring():
    builder = CountingBuilder()
    with pytest.raises(UnknownNameError, match="p10"):
        measure_table(None, [NET], backend="torch", statistic="mean", builder=builder)
    with pytest.raises(InvalidConfigError, match="space=None"):
        measure_table(None, [NET], backend="torch", calibration=2, builder=builder)
    with pytest.raises(UnsupportedOperationError, match="layers"):
        measure_table("nb201", [nasforge_arch()], backend="torch", builder=builder)
    assert builder.built == []


def nasforge_arch():
    from nasforge import spaces

    return spaces.create("nb201").from_index(0)


def test_a_spreadsheet_csv_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    text = "key,latency_ms,backend,threads,batch_size\nfixed,0.5,torch,1,1\n"
    path.write_text(f"\ufeff{text}{NET[0].key},2.0,torch,1,1\n", encoding="utf-8")
    assert LayerLatencyTable.from_csv(path).predict([NET[0]]) == 2.5


@pytest.mark.parametrize("name", ["mobilenet", "fbnet"])
def test_all_specs_of_a_macro_space_cover_its_networks(name):
    from nasforge import spaces

    space = spaces.create(name)
    settings = {"resolution": 224, "width_mult": 0.5} if name == "mobilenet" else {}
    keys = {spec.key for spec in all_specs(space, settings)}
    rng = np.random.default_rng(0)
    for _ in range(100):
        assert {spec.key for spec in space.layers(space.sample(rng), **settings)} <= keys
