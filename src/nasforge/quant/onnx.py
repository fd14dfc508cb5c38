"""An int8 fake-quantized network as an ONNX model with QuantizeLinear/DequantizeLinear pairs,
run and timed with ONNX Runtime.

:func:`export_int8` writes the network of :mod:`nasforge.ops.quant` in ONNX's "QDQ" form: every
quantized layer's input goes through ``QuantizeLinear`` -> ``DequantizeLinear`` (uint8, per
tensor, the calibrated or trained range) and its weight is stored as an int8 initializer (per
output channel, symmetric) read through ``DequantizeLinear``; ONNX Runtime's graph optimiser
fuses such groups into integer kernels (``QLinearConv``, ``QLinearMatMul``) where the pattern
allows (a ``DequantizeLinear`` -> ``Conv`` -> ``QuantizeLinear`` chain, ReLU between them
included), and computes the rest in float from the dequantized values. The integer arithmetic
is Jacob, B. et al. "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference." CVPR 2018, arXiv:1712.05877 (Section 2); the ONNX operators
are those of the ONNX standard (``QuantizeLinear``/``DequantizeLinear``, per-axis from opset 13).

How it is written: the fake-quantize operators (``torch.fake_quantize_per_tensor_affine`` and
``..._per_channel_affine``) export as QuantizeLinear/DequantizeLinear pairs with PyTorch's
TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``, opset 17, the exporter
and opset :func:`nasforge.hardware.latency.export_onnx` and ``nasforge export`` use, for the
reasons given there), with the scales and zero points fixed as constants first
(:func:`nasforge.ops.quant.freeze_qparams`). Each weight's QuantizeLinear, whose inputs are all
constants, is then computed once (``round-half-to-even(w / s) + z``, saturated, as the ONNX
operator defines it) and stored as the int8 tensor itself, so the file holds int8 weights and
the runtime does not re-quantize them at every pass.

What ONNX QDQ cannot hold: integer ranges other than 8 bits (int2/int3/int4: ONNX's 4-bit
types arrive in opset 21, beyond what the TorchScript exporter writes) and FP8 (ONNX's FLOAT8
types in QuantizeLinear arrive in opset 19; PyTorch's TorchScript exporter cannot write the
float8 casts at all). :func:`export_int8` refuses a network with such a layer, naming it.

Latency (:func:`onnx_latency`) follows the protocol of :mod:`nasforge.hardware.latency`
(untimed warm-up passes, then timed passes one by one, median and spread; one intra-op thread
by default), on a given ONNX file, so that a float export (:func:`export_float`) and an int8
one are timed alike. Needs the extra ``[onnx]``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.hardware.latency import (
    _INPUT_SEED,
    Latency,
    _ort_session,
    _require,
    _time_calls,
    export_onnx,
)
from nasforge.ops.quant import freeze_qparams, quantized_layers

__all__ = [
    "ONNX_OPSET",
    "QDQ_PRECISIONS",
    "check_exportable",
    "export_float",
    "export_int8",
    "onnx_latency",
    "qdq_counts",
    "run_onnx",
]

#: The opset written (QuantizeLinear/DequantizeLinear per axis need 13 at least).
ONNX_OPSET = 17
#: Layer precisions an int8 QDQ export holds.
QDQ_PRECISIONS: tuple[str, ...] = ("int8", "fp32")


def check_exportable(model: nn.Module) -> None:
    """Refuse a network that an int8 QDQ export cannot represent.

    Raises:
        UnsupportedOperationError: ``model`` has no quantized layer, or a quantized layer
            whose weight or input precision is neither int8 nor fp32 (its module path and
            precisions are named, with what to do).
    """
    layers = quantized_layers(model)
    if not layers:
        raise UnsupportedOperationError(
            f"export_int8: {type(model).__name__} has no quantized layer; quantize it first, "
            "e.g. quantize_model(model, 'int8') then calibrate(model, batches)."
        )
    for name, layer in layers:
        w, a = layer.weight_precision, layer.act_precision
        if w in QDQ_PRECISIONS and a in QDQ_PRECISIONS:
            continue
        bad = w if w not in QDQ_PRECISIONS else a
        why = (
            "ONNX QuantizeLinear/DequantizeLinear at opset 17 hold 8-bit integers only"
            if bad.startswith("int")
            else "PyTorch's ONNX exporter cannot write FP8 (ONNX's FLOAT8 QDQ needs opset 19)"
        )
        raise UnsupportedOperationError(
            f"Layer {name!r} ({type(layer).__name__}) computes with {w} weights and {a} "
            f"inputs; {why}, so its {bad} cannot be exported. Set that layer to int8 (or fp32 "
            "to keep it float) before exporting, e.g. with set_policy(model, policy)."
        )


def export_int8(
    model: nn.Module,
    path: str | Path,
    example_input: torch.Tensor,
    *,
    opset: int = ONNX_OPSET,
) -> Path:
    """Write the fake-quantized ``model`` (int8 or fp32 layers) as an ONNX QDQ model.

    The model is copied (it is not changed), put in evaluation mode, its scales and zero
    points are fixed (:func:`nasforge.ops.quant.freeze_qparams`) and it is exported with a
    dynamic batch dimension (input ``input``, output ``logits``); the weights are stored as
    int8 initializers (see the module docstring) and the model passes ``onnx.checker``.

    Args:
        model: A network of :func:`nasforge.ops.quant.quantize_model`, trained or calibrated
            (every quantized input needs its activation range).
        path: The ``.onnx`` file to write (folders are created).
        example_input: An input batch (its shape apart from the batch size is fixed).
        opset: The ONNX opset (13 or more).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        UnsupportedOperationError: A layer ONNX QDQ cannot represent (named), no quantized
            layer, or the exporter fails.
        InvalidConfigError: A quantized input without an activation range (layer named).
        MissingDependencyError: onnx is not installed.
    """
    onnx = _require("onnx", "export_int8")
    check_exportable(model)
    if opset < 13:
        raise InvalidConfigError(
            f"export_int8(opset={opset}): per-channel QuantizeLinear needs opset 13 or more."
        )
    net = copy.deepcopy(model).eval()
    freeze_qparams(net)
    target = _export(net, Path(path), example_input, opset)
    graph = onnx.load(str(target))
    stored = _store_int8_weights(graph)
    counts = qdq_counts(graph)
    if not stored or not counts["DequantizeLinear"]:
        raise UnsupportedOperationError(
            f"The ONNX export of {type(model).__name__} holds no quantized weights "
            f"({counts}); the fake-quantize operators did not export as QDQ pairs."
        )
    onnx.checker.check_model(graph)
    onnx.save(graph, str(target))
    return target


def export_float(
    model: nn.Module, path: str | Path, example_input: torch.Tensor, *, opset: int = ONNX_OPSET
) -> Path:
    """Write ``model`` as it computes (float, or fake-quantized without the int8 weight
    storage) with the same exporter and settings as :func:`export_int8`: the float
    reference to time an int8 export against."""
    _require("onnx", "export_float")
    return _export(copy.deepcopy(model).eval(), Path(path), example_input, opset)


def _export(net: nn.Module, target: Path, example: torch.Tensor, opset: int) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    # the frozen scales and zero points are constants of the trace, as they should be
    ignore = (".*registered as constants in the trace", ".*might cause the trace to be incorrect")
    return export_onnx(net, example, target, opset=opset, dynamic_batch=True, ignore=ignore)


def qdq_counts(model: Any) -> dict[str, int]:
    """How many ``QuantizeLinear`` and ``DequantizeLinear`` nodes an ONNX model (a
    ``ModelProto`` or a file path) holds."""
    if isinstance(model, (str, Path)):
        model = _require("onnx", "qdq_counts").load(str(model))
    kinds = [node.op_type for node in model.graph.node]
    return {op: kinds.count(op) for op in ("QuantizeLinear", "DequantizeLinear")}


def _store_int8_weights(model: Any) -> int:
    """Replace each QuantizeLinear of constant inputs by the integer tensor it computes;
    drop the constants left unused. Returns how many were replaced."""
    from onnx import numpy_helper

    graph = model.graph
    values: dict[str, np.ndarray] = {
        init.name: numpy_helper.to_array(init) for init in graph.initializer
    }
    alias: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "Identity":
            alias[node.output[0]] = node.input[0]

    def constant(name: str) -> np.ndarray | None:
        while name not in values and name in alias:
            name = alias[name]
        return values.get(name)

    kept, replaced = [], 0
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) == 3:
            x, scale, zero = (constant(name) for name in node.input)
            if x is not None and scale is not None and zero is not None:
                axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
                shape = [1] * x.ndim
                if scale.ndim:
                    shape[axis] = -1
                info = np.iinfo(zero.dtype)
                q = np.rint(x.astype(np.float32) / scale.reshape(shape).astype(np.float32))
                q = np.clip(q + zero.reshape(shape).astype(np.float32), info.min, info.max)
                graph.initializer.append(
                    numpy_helper.from_array(q.astype(zero.dtype), node.output[0])
                )
                replaced += 1
                continue
        kept.append(node)
    # drop Constant/Identity nodes and initializers nothing reads any more
    while True:
        used = {name for node in kept for name in node.input} | {o.name for o in graph.output}
        unused = [
            n for n in kept if n.op_type in ("Constant", "Identity") and n.output[0] not in used
        ]
        if not unused:
            break
        kept = [n for n in kept if n not in unused]
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in kept for name in node.input} | {o.name for o in graph.output}
    inits = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    return replaced


def _check_count(name: str, value: Any, least: int, caller: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidConfigError(f"{caller}: {name} must be an integer >= {least}, got {value!r}.")


def _session(path: str | Path, threads: int, caller: str) -> Any:
    ort = _require("onnxruntime", caller)
    _check_count("threads", threads, 1, caller)
    if not Path(path).is_file():
        raise InvalidConfigError(f"No ONNX model at {str(path)!r}; write one with export_int8.")
    return _ort_session(ort, Path(path), threads, "cpu")


def run_onnx(
    path: str | Path,
    inputs: torch.Tensor | np.ndarray,
    *,
    threads: int = 1,
    batch_size: int = 256,
) -> np.ndarray:
    """The first output (the logits) of the ONNX model at ``path`` on ``inputs``, computed by
    ONNX Runtime on the CPU in batches of ``batch_size``.

    Raises:
        InvalidConfigError: No file at ``path``, or a count below 1.
        MissingDependencyError: onnxruntime is not installed.
    """
    _check_count("batch_size", batch_size, 1, "run_onnx")
    session = _session(path, threads, "run_onnx")
    name = session.get_inputs()[0].name
    array = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else inputs
    array = np.ascontiguousarray(array, dtype=np.float32)
    parts = [
        session.run(None, {name: array[start : start + batch_size]})[0]
        for start in range(0, len(array), batch_size)
    ]
    return np.concatenate(parts, axis=0)


def onnx_latency(
    path: str | Path,
    input_shape: Sequence[int],
    *,
    batch_size: int = 1,
    runs: int = 50,
    warmup: int = 10,
    threads: int = 1,
) -> Latency:
    """Time ONNX Runtime passes of the ONNX model at ``path`` on one random batch (fixed seed)
    with the protocol and session settings of :func:`nasforge.hardware.latency.measure_latency`
    (``ORT_ENABLE_ALL``, sequential execution, ``threads`` intra-op threads).

    Args:
        path: The ONNX file.
        input_shape: The shape of one sample without the batch dimension, e.g. (3, 32, 32).
        batch_size, runs, warmup, threads: As in ``measure_latency``.

    Returns:
        The :class:`~nasforge.hardware.latency.Latency` (backend ``"onnxruntime"``).
    """
    from nasforge.hardware.costs import check_shape

    shape = check_shape(input_shape, "onnx_latency")
    _check_count("batch_size", batch_size, 1, "onnx_latency")
    _check_count("runs", runs, 1, "onnx_latency")
    _check_count("warmup", warmup, 0, "onnx_latency")
    session = _session(path, threads, "onnx_latency")
    generator = torch.Generator().manual_seed(_INPUT_SEED)
    batch = torch.randn((batch_size, *shape), generator=generator).numpy()
    feed = {session.get_inputs()[0].name: batch}
    times = _time_calls(lambda: session.run(None, feed), runs, warmup, lambda: None)
    return Latency.from_times(
        times, batch_size=batch_size, threads=threads, backend="onnxruntime", device="cpu"
    )
