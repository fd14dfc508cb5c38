"""What a network costs to run: parameters, MACs and FLOPs (``torch.utils.flop_counter``) and
latency measured on this machine (PyTorch eager, ONNX Runtime), as metrics.

Example:
    >>> from nasforge import hardware
    >>> from nasforge.ops.nb201 import NB201Network
    >>> net = NB201Network((3, 3, 3, 1, 3, 2), num_classes=10)  # NAS-Bench-201 cell 6111
    >>> hardware.count_flops(net, (3, 32, 32))
    Costs(params_M=1.073466, macs_M=153.27296, flops_M=306.54592)

ONNX Runtime is optional: ``pip install 'nasforge[onnx]'``.

The names below are loaded on first use (PEP 562), so ``nasforge.hardware.lut`` (latency
lookup tables fitted from a benchmark's device columns) and ``nasforge.hardware.layer_lut``
(per-layer tables of measured layers, read and predicted) work without importing PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_WHERE = {
    "Costs": "costs",
    "count_flops": "costs",
    "count_params": "costs",
    "BACKENDS": "latency",
    "DEVICES": "latency",
    "Latency": "latency",
    "export_onnx": "latency",
    "latency_metric_name": "latency",
    "measure_latency": "latency",
    "LayerLatencyTable": "layer_lut",
    "write_template": "layer_lut",
    "all_specs": "layer_measure",
    "measure_network": "layer_measure",
    "measure_table": "layer_measure",
    "COST_METRICS": "summary",
    "metric_names": "summary",
    "metrics": "summary",
}

__all__ = sorted(_WHERE, key=str.lower)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'nasforge.hardware' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nasforge.hardware.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
