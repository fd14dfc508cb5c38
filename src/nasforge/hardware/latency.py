"""Latency of a module measured on this machine, with PyTorch eager or ONNX Runtime.

The protocol: build one random input batch (fixed seed), run ``warmup`` untimed forward
passes, then time ``runs`` passes one by one with :func:`time.perf_counter_ns`, with the
garbage collector paused, and report the median and spread of the times. The median, not the
mean, is the figure to compare: on a machine shared with other jobs a few passes are delayed
by the scheduler, which moves the mean and the 90th percentile but hardly the median. With
``threads > 1`` the intra-op threads wait for each other at every operator, so one thread
descheduled by another job delays the whole pass: on a busy machine time with one thread,
or compare only measurements taken under the same load. Asking for more threads than the
process has CPUs logs a warning.

* ``backend="torch"``: the module in evaluation mode under ``torch.inference_mode()``, with
  ``torch.set_num_threads(threads)`` for the measurement (the previous setting is restored).
  On ``device="cuda"`` each pass is followed by ``torch.cuda.synchronize()`` inside the timed
  interval, so the time is that of the kernels, not of their launch.
* ``backend="onnxruntime"``: the module is exported with ``torch.onnx.export`` (the
  TorchScript-based exporter, ``dynamo=False``, opset 17, static shapes of the measured batch)
  to a temporary file and run by an ``onnxruntime.InferenceSession`` with
  ``intra_op_num_threads=threads``, ``inter_op_num_threads=1``, sequential execution and all
  graph optimisations (``ORT_ENABLE_ALL``); other options keep ONNX Runtime's defaults
  (its worker threads spin while waiting, which is what its own benchmarks measure). The
  time of a pass includes passing the numpy input and returning the numpy output. On
  ``device="cuda"`` the session uses the ``CUDAExecutionProvider`` (package
  ``onnxruntime-gpu``) and each pass copies the input from and the output to host memory.
  ONNX Runtime's outputs are compared with PyTorch's on the same input:
  :attr:`Latency.max_abs_diff`.

Why the TorchScript-based exporter: it needs nothing beyond PyTorch and the ``onnx``
package, works offline, and writes opset 17 as asked. The newer ``torch.export``-based
exporter (the default of ``torch.onnx.export`` since PyTorch 2.9) needs the ``onnxscript``
package, took 12 to 16 s for a NAS-Bench-201 network on a 2-core machine with PyTorch 2.13,
and writes opset 18 at least (its conversion down to 17 failed). PyTorch deprecates the
TorchScript exporter; when it is removed, :func:`export_onnx` is the one place to change.

ONNX and ONNX Runtime are optional dependencies: ``pip install 'nasforge[onnx]'``.
"""

from __future__ import annotations

import copy
import gc
import importlib
import itertools
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import (
    InvalidConfigError,
    MissingDependencyError,
    UnknownNameError,
    UnsupportedOperationError,
)
from nasforge.hardware.costs import check_shape, eval_mode

__all__ = [
    "BACKENDS",
    "DEVICES",
    "Latency",
    "export_onnx",
    "latency_metric_name",
    "measure_latency",
]

logger = logging.getLogger(__name__)

#: Runtimes :func:`measure_latency` can time.
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")
#: Devices :func:`measure_latency` can time on.
DEVICES: tuple[str, ...] = ("cpu", "cuda")
#: The extra that installs ONNX and ONNX Runtime.
INSTALL_HINT = "pip install 'nasforge[onnx]'"
#: The ONNX opset :func:`export_onnx` writes by default.
ONNX_OPSET = 17
#: Seed of the random input batch.
_INPUT_SEED = 0


@dataclass(frozen=True)
class Latency:
    """Times of ``runs`` forward passes of one batch, in milliseconds.

    Attributes:
        median_ms: The median time of a pass (the figure to report and compare).
        p10_ms: The 10th percentile (linear interpolation between passes).
        p90_ms: The 90th percentile.
        mean_ms: The mean.
        std_ms: The sample standard deviation (0 for a single run).
        runs: Timed passes (after ``warmup`` untimed ones).
        batch_size: Samples in the batch of each pass.
        threads: Intra-op threads of the runtime.
        backend: ``"torch"`` or ``"onnxruntime"``.
        device: ``"cpu"`` or ``"cuda"``.
        max_abs_diff: For ONNX Runtime, the largest absolute difference between its outputs
            and PyTorch's on the measured input (a check of the export); ``None`` for PyTorch.
        times_ms: The time of every pass, in order.
    """

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    runs: int
    batch_size: int
    threads: int
    backend: str
    device: str
    max_abs_diff: float | None = None
    times_ms: tuple[float, ...] = field(default=(), repr=False)

    @property
    def metric(self) -> str:
        """The metric name of :attr:`median_ms`, e.g. ``"latency_ms[cpu-torch]"``."""
        return latency_metric_name(self.device, self.backend, self.batch_size)

    @classmethod
    def from_times(
        cls,
        times_ms: Sequence[float],
        *,
        batch_size: int,
        threads: int,
        backend: str,
        device: str,
        max_abs_diff: float | None = None,
    ) -> Latency:
        """Summarise the times of the passes (at least one)."""
        times = np.asarray(times_ms, dtype=np.float64)
        p10, median, p90 = np.percentile(times, [10, 50, 90])
        return cls(
            median_ms=float(median),
            p10_ms=float(p10),
            p90_ms=float(p90),
            mean_ms=float(times.mean()),
            std_ms=float(times.std(ddof=1)) if times.size > 1 else 0.0,
            runs=int(times.size),
            batch_size=batch_size,
            threads=threads,
            backend=backend,
            device=device,
            max_abs_diff=max_abs_diff,
            times_ms=tuple(float(t) for t in times),
        )


def latency_metric_name(device: str = "cpu", backend: str = "torch", batch_size: int = 1) -> str:
    """The metric name of a latency measured here.

    The tabular benchmarks name latencies ``latency_ms[device]``, with the batch size after the
    last ``_`` where it is not 1 (HELP's ``latency_ms[titanx_256]``). A latency measured by
    nasforge names the runtime too, since PyTorch and ONNX Runtime differ on the same
    machine: ``latency_ms[cpu-torch]``, ``latency_ms[cpu-onnxruntime]``,
    ``latency_ms[cuda-torch]``, and ``latency_ms[cpu-torch_64]`` for a batch of 64. The
    number of threads is not part of the name: compare latencies measured with the same.

    Example:
        >>> latency_metric_name("cpu", "onnxruntime")
        'latency_ms[cpu-onnxruntime]'
        >>> latency_metric_name("cpu", "torch", batch_size=64)
        'latency_ms[cpu-torch_64]'
    """
    suffix = "" if batch_size == 1 else f"_{batch_size}"
    return f"latency_ms[{device}-{backend}{suffix}]"


def measure_latency(
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    batch_size: int = 1,
    runs: int = 50,
    warmup: int = 10,
    threads: int = 1,
    backend: str = "torch",
    device: str = "cpu",
    token_ids: int | None = None,
) -> Latency:
    """Time forward passes of ``module`` on this machine (see the module docstring).

    The module is not changed: it is put in evaluation mode for the measurement and every
    submodule's mode is restored; where it lives on another device than ``device``, a copy is
    moved there.

    Args:
        module: A module whose ``forward`` takes one tensor of shape
            ``(batch_size, *input_shape)``.
        input_shape: The shape of one sample without the batch dimension, e.g. ``(3, 32, 32)``.
        batch_size: Samples per pass.
        runs: Timed passes (at least 1; 50 gives a stable median on a quiet machine).
        warmup: Untimed passes before (caches, allocator, lazy initialisation).
        threads: Intra-op threads of the runtime (``torch.set_num_threads`` or ONNX Runtime's
            ``intra_op_num_threads``).
        backend: ``"torch"`` (PyTorch eager) or ``"onnxruntime"``.
        device: ``"cpu"`` or ``"cuda"``.
        token_ids: When given, the input is random integer ids in ``[0, token_ids)``
            (``int64``) instead of normal floats: the token ids of a module that starts with
            an embedding table (a language model), ``token_ids`` its vocabulary size.

    Returns:
        The :class:`Latency` summary, with every time in :attr:`Latency.times_ms`.

    Raises:
        InvalidConfigError: A count is out of range, the shape is not positive integers, CUDA
            is not available, or the module fails on an input of the given shape.
        UnknownNameError: ``backend`` or ``device`` is not one of the known names.
        MissingDependencyError: ``backend="onnxruntime"`` without ONNX Runtime and ONNX
            installed.
        UnsupportedOperationError: The module cannot be exported to ONNX.

    Example:
        >>> from torch import nn
        >>> result = measure_latency(nn.Linear(8, 2), (8,), runs=5, warmup=1)
        >>> result.runs, result.metric, result.p10_ms <= result.median_ms <= result.p90_ms
        (5, 'latency_ms[cpu-torch]', True)
    """
    shape = check_shape(input_shape, "measure_latency")
    _check_count("batch_size", batch_size, 1)
    _check_count("runs", runs, 1)
    _check_count("warmup", warmup, 0)
    _check_count("threads", threads, 1)
    if token_ids is not None:
        _check_count("token_ids", token_ids, 1)
    if backend not in BACKENDS:
        raise UnknownNameError("latency backend", str(backend), BACKENDS)
    if device not in DEVICES:
        raise UnknownNameError("latency device", str(device), DEVICES)
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidConfigError(
            "measure_latency(device='cuda'): PyTorch sees no CUDA device here; "
            "use device='cpu' or a CUDA build of PyTorch on a machine with a GPU."
        )
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cpus is not None and threads > cpus:
        logger.warning(
            "measure_latency(threads=%d) on %d CPUs: threads will wait for each other and the "
            "times will mostly measure the operating system's scheduler",
            threads,
            cpus,
        )
    ort: ModuleType | None = None
    if backend == "onnxruntime":
        ort = _require("onnxruntime", "measure_latency(backend='onnxruntime')")
        _require("onnx", "measure_latency(backend='onnxruntime')")  # the exporter needs it

    generator = torch.Generator().manual_seed(_INPUT_SEED)
    if token_ids is None:
        batch = torch.randn((batch_size, *shape), generator=generator).to(device)
    else:
        size = (batch_size, *shape)
        batch = torch.randint(0, token_ids, size, generator=generator).to(device)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        net = _on_device(module, device)
        with eval_mode(net):
            with torch.inference_mode():
                reference = _checked_forward(net, batch)
            if ort is None:
                sync = torch.cuda.synchronize if device == "cuda" else _nothing
                with torch.inference_mode():
                    times = _time_calls(lambda: net(batch), runs, warmup, sync)
                return Latency.from_times(
                    times, batch_size=batch_size, threads=threads, backend=backend, device=device
                )
            with tempfile.TemporaryDirectory(prefix="nasforge-onnx-") as folder:
                path = export_onnx(net, batch, Path(folder) / "model.onnx")
                session = _ort_session(ort, path, threads, device)
            feed = {session.get_inputs()[0].name: batch.cpu().numpy()}
            outputs = session.run(None, feed)
            diff = _max_abs_diff(reference, outputs)
            times = _time_calls(lambda: session.run(None, feed), runs, warmup, _nothing)
            return Latency.from_times(
                times,
                batch_size=batch_size,
                threads=threads,
                backend=backend,
                device=device,
                max_abs_diff=diff,
            )
    finally:
        torch.set_num_threads(previous_threads)


def export_onnx(
    module: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    *,
    opset: int = ONNX_OPSET,
    dynamic_batch: bool = False,
    what: str | None = None,
    ignore: tuple[str, ...] = (),
) -> Path:
    """Export ``module`` to an ONNX file for inputs shaped like ``example``.

    Uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``, see the
    module docstring for why), in evaluation mode (modes restored), with constant folding,
    one input named ``input`` and static shapes.

    Args:
        module: The module to export.
        example: An input batch of the shape the model will be run on.
        path: The file to write.
        opset: The ONNX operator set version.
        dynamic_batch: Name the output ``logits`` and leave the batch dimension of the input
            and the output free (the exported networks of :mod:`nasforge.export`).
        what: How an export error names the module (default its class name).
        ignore: More warning messages (regular expressions) of the trace to silence.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        MissingDependencyError: The ``onnx`` package, which the exporter needs, is missing.
        UnsupportedOperationError: The exporter cannot export the module (the message
            includes its reason).
    """
    _require("onnx", "export_onnx")
    target = Path(path)
    with eval_mode(module), warnings.catch_warnings():
        # the exporter's notice that it is deprecated, once per call; keep all other warnings
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="The feature will be removed")
        for message in ignore:
            warnings.filterwarnings("ignore", message=message)
        free: dict[str, Any] = {}
        if dynamic_batch:
            free = {
                "output_names": ["logits"],
                "dynamic_axes": {"input": {0: "batch"}, "logits": {0: "batch"}},
            }
        try:
            torch.onnx.export(
                module,
                (example,),
                str(target),
                dynamo=False,
                opset_version=opset,
                input_names=["input"],
                do_constant_folding=True,
                **free,
            )
        except Exception as err:
            raise UnsupportedOperationError(
                f"Could not export {what or type(module).__name__} to ONNX (opset {opset}) "
                f"with torch.onnx.export(dynamo=False): {err}"
            ) from err
    return target


def _check_count(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidConfigError(
            f"measure_latency: {name} must be an integer >= {least}, got {value!r}."
        )


def _require(package: str, who: str) -> ModuleType:
    """Import an optional ``package``, or raise :class:`MissingDependencyError` naming the extra."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingDependencyError(
            f"{who} needs the {package} package, which is not installed: {INSTALL_HINT}"
        ) from None


def _on_device(module: nn.Module, device: str) -> nn.Module:
    """``module`` if its tensors are all on ``device``, else a copy moved there."""
    kinds = {t.device.type for t in itertools.chain(module.parameters(), module.buffers())}
    if "meta" in kinds:
        raise InvalidConfigError(
            f"measure_latency: {type(module).__name__} has tensors on the meta device (shapes "
            "without data) and cannot run; build it on the CPU to time it."
        )
    if kinds <= {device}:
        return module
    return copy.deepcopy(module).to(device)


def _checked_forward(net: nn.Module, batch: torch.Tensor) -> Any:
    try:
        return net(batch)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise InvalidConfigError(
            f"measure_latency: {type(net).__name__} failed on an input batch of shape "
            f"{tuple(batch.shape)} (batch_size, *input_shape); input_shape is the shape of "
            f"one sample without the batch dimension, e.g. (3, 32, 32): {err}"
        ) from err


def _nothing() -> None:
    return None


def _time_calls(
    call: Callable[[], Any], runs: int, warmup: int, sync: Callable[[], None]
) -> list[float]:
    """Milliseconds of each of ``runs`` calls after ``warmup`` untimed ones, GC paused."""
    for _ in range(warmup):
        call()
    sync()
    times: list[float] = []
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(runs):
            start = time.perf_counter_ns()
            call()
            sync()
            times.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        if collecting:
            gc.enable()
    return times


def _ort_session(ort: ModuleType, path: Path, threads: int, device: str) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InvalidConfigError(
                "measure_latency(backend='onnxruntime', device='cuda') needs ONNX Runtime's "
                "CUDAExecutionProvider (package onnxruntime-gpu); available here: "
                f"{ort.get_available_providers()}."
            )
        providers = ["CUDAExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


def _max_abs_diff(reference: Any, outputs: Sequence[Any]) -> float:
    """The largest absolute difference between PyTorch's outputs and ONNX Runtime's."""
    expected = _flatten(reference)
    if len(expected) != len(outputs):
        return float("nan")
    diff = 0.0
    for ours, theirs in zip(expected, outputs, strict=True):
        ref = ours.detach().float().cpu().numpy()
        got = np.asarray(theirs, dtype=np.float32)
        if ref.shape != got.shape:
            return float("nan")
        if ref.size:
            diff = max(diff, float(np.max(np.abs(ref - got))))
    return diff


def _flatten(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _flatten(item)]
    if isinstance(output, dict):
        return [t for item in output.values() for t in _flatten(item)]
    return []
