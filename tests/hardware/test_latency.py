"""Latency measurements: structure and sanity of the results, settings restored, errors.

Never asserts an absolute time: the machine is shared and its speed unknown.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch
from torch import nn

from nasforge import hardware
from nasforge.errors import (
    InvalidConfigError,
    MissingDependencyError,
    NasforgeError,
    UnknownNameError,
)
from nasforge.hardware import Latency, measure_latency


def _small_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


def _check_consistent(result: Latency, runs: int) -> None:
    assert result.runs == runs == len(result.times_ms)
    assert all(t > 0 for t in result.times_ms)
    assert min(result.times_ms) <= result.p10_ms <= result.median_ms
    assert result.median_ms <= result.p90_ms <= max(result.times_ms)
    assert result.mean_ms == pytest.approx(sum(result.times_ms) / runs)
    assert result.std_ms >= 0


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


# -- PyTorch eager --------------------------------------------------------------------------
def test_torch_latency_fields(restore_threads):
    result = measure_latency(_small_net(), (3, 8, 8), batch_size=2, runs=7, warmup=2)
    _check_consistent(result, 7)
    assert (result.batch_size, result.threads, result.backend, result.device) == (
        2,
        1,
        "torch",
        "cpu",
    )
    assert result.max_abs_diff is None
    assert result.metric == "latency_ms[cpu-torch_2]"
    assert "times_ms" not in repr(result)


def test_thread_setting_and_modes_are_restored(restore_threads):
    torch.set_num_threads(2)
    net = _small_net().train()
    net[1].eval()
    measure_latency(net, (3, 8, 8), runs=2, warmup=0, threads=1)
    assert torch.get_num_threads() == 2
    assert net.training and net[0].training and not net[1].training


def test_thread_setting_is_restored_after_an_error(restore_threads):
    torch.set_num_threads(2)
    with pytest.raises(InvalidConfigError):
        measure_latency(_small_net(), (8, 8), runs=2, threads=1)
    assert torch.get_num_threads() == 2


def test_summary_statistics_of_known_times():
    result = Latency.from_times(
        [5.0, 1.0, 3.0, 2.0, 4.0], batch_size=1, threads=1, backend="torch", device="cpu"
    )
    assert (result.p10_ms, result.median_ms, result.p90_ms) == pytest.approx((1.4, 3.0, 4.6))
    assert result.mean_ms == 3.0
    assert result.std_ms == pytest.approx(math.sqrt(2.5))
    one = Latency.from_times([2.0], batch_size=1, threads=1, backend="torch", device="cpu")
    assert (one.median_ms, one.p10_ms, one.p90_ms, one.std_ms) == (2.0, 2.0, 2.0, 0.0)


def test_metric_names():
    assert hardware.latency_metric_name() == "latency_ms[cpu-torch]"
    assert hardware.latency_metric_name("cuda", "onnxruntime", 32) == (
        "latency_ms[cuda-onnxruntime_32]"
    )


def test_metrics_for_an_evaluator(restore_threads):
    plain = hardware.metrics(_small_net(), (3, 8, 8))
    assert list(plain) == hardware.metric_names() == ["params_M", "macs_M", "flops_M"]
    timed = hardware.metrics(_small_net(), (3, 8, 8), latency=True, runs=3, warmup=1)
    assert list(timed) == hardware.metric_names(latency=True)
    assert timed["latency_ms[cpu-torch]"] > 0
    assert {k: timed[k] for k in plain} == plain
    with pytest.raises(UnknownNameError, match="onnxruntime"):
        hardware.metric_names(latency=True, backend="onnx-runtime")


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"),
    [("threads", 0), ("runs", 0), ("warmup", -1), ("batch_size", 0), ("runs", 2.5), ("runs", True)],
)
def test_bad_counts_are_errors(option, value):
    with pytest.raises(InvalidConfigError, match=rf"{option} must be an integer >= \d"):
        measure_latency(nn.Linear(2, 2), (2,), **{option: value})


def test_unknown_backend_and_device_list_the_valid_ones():
    with pytest.raises(UnknownNameError, match=r"choose from onnxruntime, torch.*'onnxruntime'"):
        measure_latency(nn.Linear(2, 2), (2,), backend="onnx")
    with pytest.raises(UnknownNameError, match="choose from cpu, cuda"):
        measure_latency(nn.Linear(2, 2), (2,), device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_a_gpu_is_an_error():
    with pytest.raises(InvalidConfigError, match="no CUDA device"):
        measure_latency(nn.Linear(2, 2), (2,), device="cuda")


def test_wrong_input_shape_is_an_error_that_explains_the_shape():
    with pytest.raises(InvalidConfigError, match=r"batch of shape \(1, 1, 3, 8, 8\).*without the"):
        measure_latency(_small_net(), (1, 3, 8, 8), runs=1)
    with pytest.raises(InvalidConfigError, match="positive sizes of one sample"):
        measure_latency(_small_net(), (3, 0, 8), runs=1)


def test_module_on_meta_device_cannot_be_timed():
    with torch.device("meta"):
        net = nn.Linear(2, 2)
    with pytest.raises(InvalidConfigError, match="meta device"):
        measure_latency(net, (2,), runs=1)


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'nasforge\[onnx\]'") as info:
        measure_latency(nn.Linear(2, 2), (2,), backend="onnxruntime")
    assert isinstance(info.value, ImportError) and isinstance(info.value, NasforgeError)


# -- ONNX Runtime ---------------------------------------------------------------------------
def test_onnxruntime_latency_and_outputs_match(restore_threads):
    pytest.importorskip(
        "onnxruntime", reason="ONNX Runtime is not installed: pip install 'nasforge[onnx]'"
    )
    pytest.importorskip("onnx", reason="ONNX is not installed: pip install 'nasforge[onnx]'")
    torch.set_num_threads(2)
    net = _small_net().train()
    result = measure_latency(net, (3, 8, 8), batch_size=3, runs=5, warmup=1, backend="onnxruntime")
    _check_consistent(result, 5)
    assert (result.backend, result.batch_size, result.threads) == ("onnxruntime", 3, 1)
    assert result.metric == "latency_ms[cpu-onnxruntime_3]"
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    assert torch.get_num_threads() == 2
    assert net.training


def test_export_onnx_writes_a_valid_model(tmp_path):
    onnx = pytest.importorskip("onnx", reason="ONNX is not installed: pip install 'nasforge[onnx]'")
    path = hardware.export_onnx(_small_net(), torch.zeros(1, 3, 8, 8), tmp_path / "net.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17
    assert [i.name for i in model.graph.input] == ["input"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_torch_latency():
    result = measure_latency(_small_net(), (3, 8, 8), runs=3, warmup=1, device="cuda")
    _check_consistent(result, 3)
    assert result.metric == "latency_ms[cuda-torch]"
