"""Per-layer latency tables of transformer layers: input shapes, the default builder, what a
table predicts and lists as missing, the CSV, calibration on whole networks, both runtimes.

Tiny layers and few passes; never asserts an absolute time (the machine is shared).
"""

from __future__ import annotations

import math
import warnings

import pytest

from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.hardware import LayerLatencyTable, all_specs, measure_table
from nasforge.hardware.layer_lut import input_shape, token_vocabulary
from nasforge.hardware.layer_measure import build_default_layer
from nasforge.spaces.base import Decision, SearchSpace

torch = pytest.importorskip("torch")
vit = pytest.importorskip("nasforge.ops.vit")

Spec = vit.TransformerLayerSpec
FAST = {"runs": 3, "warmup": 1}
ENC_A = Spec("encoder", 16, 5, heads=2, qkv=16, mlp=32)
ENC_B = Spec("encoder", 16, 5, heads=4, qkv=32, mlp=48)
ENC_LONG = Spec("encoder", 16, 17, heads=2, qkv=16, mlp=32)  # same widths, more tokens


@pytest.fixture(autouse=True)
def _quiet_tracer():
    """The ONNX exporter warns that the attention's scale is a traced constant (it is: the
    shapes are static); keep the output readable."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def _vit_config(heads: int, mlp: int, depth: int = 1) -> vit.ViTConfig:
    layers = tuple(vit.LayerConfig(heads, 8, mlp) for _ in range(depth))
    return vit.ViTConfig(8, 4, 8, layers, num_classes=3)


class TinyViT(SearchSpace):
    """Patch size (so 17 or 5 tokens) and two encoder layers of 8-wide tokens on 8x8 images,
    heads and MLP width per layer; built by :class:`nasforge.ops.vit.VisionTransformer`."""

    name = "tiny-vit"

    def decisions(self):
        layers = tuple(
            Decision(f"l{i}_{what}", options)
            for i in range(2)
            for what, options in (("heads", (1, 2)), ("mlp", (8, 16)))
        )
        return (Decision("patch", (2, 4)), *layers)

    def from_choices(self, choices):
        choices = self.check_choices(choices)
        values = [d.options[c] for d, c in zip(self.decisions(), choices, strict=True)]
        return Architecture(self.name, choices, "-".join(map(str, values)))

    def parse(self, text):
        values = [int(v) for v in text.split("-")]
        options = [d.options for d in self.decisions()]
        return self.from_choices([o.index(v) for o, v in zip(options, values, strict=True)])

    def config(self, arch):
        v = [int(t) for t in arch.text.split("-")]
        layers = (vit.LayerConfig(v[1], 8, v[2]), vit.LayerConfig(v[3], 8, v[4]))
        return vit.ViTConfig(8, v[0], 8, layers, num_classes=3)

    def layers(self, arch):
        return self.config(arch).layer_specs()

    def build(self, arch):
        return vit.VisionTransformer(self.config(arch))

    def layer_specs(self):
        return [s for arch in self for s in self.layers(arch)]


# -- shapes and builders ------------------------------------------------------------------------
def test_input_shapes_come_from_the_spec():
    patch = Spec("patch_embed", 16, 17, patch=4, in_channels=3, resolution=16)
    tokens = Spec("token_embed", 16, 12, out=50)
    assert input_shape(ENC_A) == (5, 16)
    assert input_shape(patch) == (3, 16, 16)
    assert input_shape(tokens) == (12,)
    assert token_vocabulary(tokens) == 50
    assert token_vocabulary(ENC_A) is None and token_vocabulary(patch) is None
    with pytest.raises(InvalidConfigError, match="vocabulary size"):
        token_vocabulary(Spec("token_embed", 16, 12, out=0))


def test_a_spec_with_a_bad_input_shape_is_refused():
    class Odd:
        key = "odd"
        input_shape = (4, 0)

    with pytest.raises(InvalidConfigError, match="positive integers"):
        input_shape(Odd())


def test_the_default_builder_dispatches_on_the_spec_type():
    from nasforge.ops import mobile

    assert isinstance(build_default_layer(ENC_A), vit.Block)
    head = build_default_layer(Spec("head", 16, 5, out=3))
    assert isinstance(head, vit.ClassifierHead)
    conv = mobile.LayerSpec("stem", 3, 8, kernel=3, stride=2, resolution=16)
    assert not isinstance(build_default_layer(conv), (vit.Block, vit.ClassifierHead))


# -- prediction, missing layers, CSV ------------------------------------------------------------
def test_a_table_of_two_layers_predicts_their_sum():
    table = measure_table(None, [ENC_A, ENC_B], backend="torch", calibration=0, **FAST)
    assert sorted(table.entries) == sorted([ENC_A.key, ENC_B.key])
    a, b = table.entries[ENC_A.key], table.entries[ENC_B.key]
    assert a > 0 and b > 0 and (table.factor, table.fixed_ms) == (1.0, 0.0)
    assert table.predict([ENC_A, ENC_B, ENC_A]) == pytest.approx(2 * a + b)


def test_missing_layers_are_listed_and_named():
    table = measure_table(None, [ENC_A], backend="torch", calibration=0, **FAST)
    other = [ENC_A, ENC_LONG, ENC_B, ENC_LONG]
    assert table.missing(other) == [ENC_LONG, ENC_B]  # sequence length is part of the key
    with pytest.raises(InvalidConfigError) as err:
        table.predict(other)
    assert ENC_LONG.key in str(err.value) and "layer 1 of the network" in str(err.value)
    extended = measure_table(None, [ENC_B], backend="torch", calibration=0, table=table, **FAST)
    assert extended.missing(other) == [ENC_LONG]
    assert extended.entries[ENC_A.key] == table.entries[ENC_A.key]  # not measured again


def test_csv_round_trip_keeps_the_transformer_fields(tmp_path):
    patch = Spec("patch_embed", 16, 5, patch=4, in_channels=3, resolution=8)
    table = LayerLatencyTable(
        {ENC_A.key: 0.5, patch.key: 0.25},
        fixed_ms=0.01,
        backend="torch",
        layers={ENC_A.key: _fields(ENC_A), patch.key: _fields(patch)},
        factor=1.2,
    )
    path = table.to_csv(tmp_path / "vit.csv")
    header = next(line for line in path.read_text().splitlines() if not line.startswith("#"))
    assert header.endswith(
        ",resolution,embed,seq,heads,qkv,mlp,out,patch,causal,conv_stem,latency_ms"
    )
    back = LayerLatencyTable.from_csv(path)
    assert back == table
    enc = back.layers[ENC_A.key]
    assert (enc["embed"], enc["seq"], enc["heads"], enc["qkv"], enc["mlp"]) == (
        "16",
        "5",
        "2",
        "16",
        "32",
    )
    assert back.layers[patch.key]["patch"] == "4" and back.predict([patch, ENC_A]) == 0.76


def _fields(spec):
    from nasforge.hardware.layer_lut import spec_fields

    return spec_fields(spec)


# -- calibration on whole networks --------------------------------------------------------------
def test_a_space_of_transformers_is_measured_and_calibrated_on_whole_networks():
    space = TinyViT()
    arch = space.parse("4-2-16-1-8")
    table = measure_table(space, "all", backend="torch", calibration=2, seed=1, **FAST)
    # two patch embeddings, 2 sequence lengths x 2 heads x 2 MLP widths, one classifier
    assert len(table) == len(all_specs(space)) == 2 + 8 + 1
    assert table.factor > 0 and math.isfinite(table.fixed_ms) and table.factor != 1.0
    assert table.missing(space.layers(arch)) == []
    assert table.predict(space.layers(arch)) > table.fixed_ms
    alone = measure_table(space, [arch], backend="torch", calibration=0, **FAST)
    assert set(alone.entries) == {s.key for s in space.layers(arch)}


def test_spec_sequences_calibrate_without_a_space():
    net = _vit_config(2, 16, depth=2).layer_specs()
    table = measure_table(None, [net], backend="torch", calibration=[net], **FAST)
    assert sorted(table.entries) == sorted({s.key for s in net})
    assert table.factor > 0 and table.factor != 1.0


# -- ONNX Runtime -------------------------------------------------------------------------------
def test_onnxruntime_measures_transformer_layers_and_token_ids():
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: nasforge[onnx]")
    pytest.importorskip("onnx", reason="onnx is not installed: nasforge[onnx]")
    from torch import nn

    net = _vit_config(2, 16).layer_specs()
    table = measure_table(None, [net], backend="onnxruntime", calibration=[net], **FAST)
    assert table.backend == "onnxruntime" and table.missing(net) == []
    assert table.factor > 0 and table.predict(net) > 0

    tokens = Spec("token_embed", 8, 6, out=20)
    causal = Spec("encoder", 8, 6, heads=2, qkv=8, mlp=16, causal=True)

    def build(spec):
        return nn.Embedding(spec.out, spec.embed) if spec.kind == "token_embed" else None

    def builder(spec):
        return build(spec) or build_default_layer(spec)

    lm = measure_table(None, [[tokens, causal]], backend="onnxruntime", calibration=0,
                       builder=builder, **FAST)  # fmt: skip
    assert set(lm.entries) == {tokens.key, causal.key}


def test_vit_cifar_space_if_present():
    if "vit-cifar" not in spaces.names():
        pytest.skip("the vit-cifar space has not landed yet")
    space = spaces.create("vit-cifar")
    arch = space.smallest()
    table = measure_table(space, [arch], backend="torch", calibration=[arch], runs=1, warmup=0)
    assert table.missing(space.layers(arch)) == []
    assert {s.key for s in space.layers(arch)} <= {s.key for s in all_specs(space)}


# -- the runtime's call, taken off each layer ---------------------------------------------------
class Timed:
    """Modules that know their made-up time alone: ``mlp / 100`` ms plus a call of 0.2 ms."""

    def __call__(self, spec):
        from torch import nn

        layer = nn.Identity()
        layer.ms = spec.mlp / 100
        return layer


def _fake_measure(module, first, backend, threads, runs, warmup):
    """One call costs 0.2 ms; a layer alone is its time plus one call, a network one call
    plus 1.5 times the time of its layers."""
    from nasforge.hardware.latency import Latency

    children = list(module.children())
    if children:
        ms = 0.2 + 1.5 * sum(child.ms for child in children)
    else:
        ms = 0.2 + getattr(module, "ms", 0.0)
    return Latency.from_times([ms], batch_size=1, threads=threads, backend=backend, device="cpu")


def test_subtract_call_takes_the_runtime_call_off_each_layer(monkeypatch):
    from nasforge.hardware import layer_measure

    monkeypatch.setattr(layer_measure, "_measure", _fake_measure)
    nets = [(ENC_A, ENC_B), (ENC_A,), (ENC_B, ENC_B, ENC_A)]
    table = measure_table(
        None, [], backend="torch", calibration=nets, builder=Timed(), subtract_call=True
    )
    assert table.factor == pytest.approx(1.5) and table.fixed_ms == pytest.approx(0.2)
    assert table.entries[ENC_B.key] == pytest.approx(1.5 * 0.48)
    for net in nets:
        assert table.predict(net) == pytest.approx(0.2 + 1.5 * sum(s.mlp / 100 for s in net))
    kept = measure_table(None, [], backend="torch", calibration=nets, builder=Timed())
    assert kept.factor != pytest.approx(1.5)  # the calls of the layers alone stay in
    # a layer added later loses the table's call too
    more = measure_table(
        None, [ENC_LONG], backend="torch", calibration=0, builder=Timed(), table=table,
        subtract_call=True,
    )  # fmt: skip
    assert more.entries[ENC_LONG.key] == pytest.approx(1.5 * 0.32)


def test_llm_space_if_present():
    if "llm" not in spaces.names():
        pytest.skip("the llm space has not landed yet")
    space = spaces.create("llm")
    arch = space.smallest()
    layers = space.layers(arch)
    assert layers[0].kind == "token_embed"  # timed on token ids by the default builder
    table = measure_table(space, [arch], backend="torch", calibration=[arch], runs=1, warmup=0)
    assert layers[0].key in table and table.missing(layers) == []
    assert table.factor > 0
