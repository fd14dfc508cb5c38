"""The int8 QDQ export: ONNX Runtime's outputs against the fake-quantized network's, the
QDQ nodes and int8 weights in the graph, the refusals naming the layer, and the timing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.ops.quant import calibrate, quantize_model, set_policy

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from nasforge.quant.onnx import (  # noqa: E402
    export_float,
    export_int8,
    onnx_latency,
    qdq_counts,
    run_onnx,
)

torch.set_num_threads(1)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    ).eval()


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, 12, 12, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def quantized() -> nn.Module:
    q = quantize_model(_net(), "int8")
    calibrate(q, [_images(64, 1)])
    return q


def test_int8_export_agrees_with_the_fake_quantized_network(quantized, tmp_path):
    path = export_int8(quantized, tmp_path / "q.onnx", _images(1, 0))
    x = _images(128, 2)
    with torch.no_grad():
        expected = quantized(x).numpy()
    got = run_onnx(path, x, batch_size=50)
    assert got.shape == expected.shape == (128, 10)
    agree = float(np.mean(got.argmax(1) == expected.argmax(1)))
    assert agree >= 0.98
    spread = float(np.abs(expected).mean())
    assert float(np.abs(got - expected).mean()) < 0.01 * spread
    # the float network is further from both than they are from each other
    with torch.no_grad():
        floating = _net()(x).numpy()
    assert np.abs(got - expected).mean() < np.abs(floating - expected).mean()
    assert not quantized.training  # the model is left in its mode


def test_graph_holds_qdq_pairs_and_int8_weights(quantized, tmp_path):
    path = export_int8(quantized, tmp_path / "q.onnx", _images(1, 0))
    model = onnx.load(str(path))
    counts = qdq_counts(model)
    # one QuantizeLinear per quantized input (3 layers); one DequantizeLinear per input and
    # per weight; the weights' QuantizeLinear is computed once and stored
    assert counts == {"QuantizeLinear": 3, "DequantizeLinear": 6}
    int8 = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert sorted(tuple(i.dims) for i in int8) == [(8, 1, 3, 3), (8, 3, 3, 3), (10, 8)]
    float_path = export_float(quantized, tmp_path / "f.onnx", _images(1, 0))
    assert qdq_counts(float_path)["QuantizeLinear"] == 6  # weights re-quantized at each pass
    plain = export_float(_net(), tmp_path / "plain.onnx", _images(1, 0))
    assert qdq_counts(plain) == {"QuantizeLinear": 0, "DequantizeLinear": 0}


def test_layers_onnx_cannot_represent_are_refused_by_name(quantized, tmp_path):
    q = quantize_model(quantized, "int8")
    set_policy(q, ["int8", "int4", "int8"])
    with pytest.raises(UnsupportedOperationError, match=r"Layer '2'.*int4.*int8.*fp32"):
        export_int8(q, tmp_path / "q.onnx", _images(1, 0))
    set_policy(q, ["int8", "int8", "int8"], act_policy=["int8", "int8", "int2"])
    with pytest.raises(UnsupportedOperationError, match=r"Layer '7'.*int2 inputs"):
        export_int8(q, tmp_path / "q.onnx", _images(1, 0))
    set_policy(q, ["fp8_e4m3", "int8", "int8"])
    with pytest.raises(UnsupportedOperationError, match=r"Layer '0'.*FP8"):
        export_int8(q, tmp_path / "q.onnx", _images(1, 0))
    set_policy(q, ["int8", "fp32", "int8"])  # a float layer is fine
    assert export_int8(q, tmp_path / "mixed.onnx", _images(1, 0)).is_file()
    with pytest.raises(UnsupportedOperationError, match="no quantized layer"):
        export_int8(_net(), tmp_path / "q.onnx", _images(1, 0))
    with pytest.raises(InvalidConfigError, match=r"Layer '0' has no activation range"):
        export_int8(quantize_model(_net(), "int8"), tmp_path / "q.onnx", _images(1, 0))
    assert not (tmp_path / "q.onnx").exists()


def test_latency_of_an_onnx_file(quantized, tmp_path):
    path = export_int8(quantized, tmp_path / "q.onnx", _images(1, 0))
    result = onnx_latency(path, (3, 12, 12), runs=5, warmup=1)
    assert result.runs == 5 and result.backend == "onnxruntime" and result.threads == 1
    assert 0 < result.p10_ms <= result.median_ms <= result.p90_ms
    with pytest.raises(InvalidConfigError, match="No ONNX model"):
        onnx_latency(tmp_path / "missing.onnx", (3, 12, 12))
    with pytest.raises(InvalidConfigError, match="runs must be"):
        onnx_latency(path, (3, 12, 12), runs=0)
