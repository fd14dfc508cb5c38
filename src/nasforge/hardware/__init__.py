"""What a network costs to run: parameters, MACs and FLOPs (``torch.utils.flop_counter``) and
latency measured on this machine (PyTorch eager, ONNX Runtime), as metrics.

Example:
    >>> from nasforge import hardware
    >>> from nasforge.ops.nb201 import NB201Network
    >>> net = NB201Network((3, 3, 3, 1, 3, 2), num_classes=10)  # NAS-Bench-201 cell 6111
    >>> hardware.count_flops(net, (3, 32, 32))
    Costs(params_M=1.073466, macs_M=153.27296, flops_M=306.54592)

ONNX Runtime is optional: ``pip install 'nasforge[onnx]'``.
"""

from __future__ import annotations

from nasforge.hardware.costs import Costs, count_flops, count_params
from nasforge.hardware.latency import (
    BACKENDS,
    DEVICES,
    Latency,
    export_onnx,
    latency_metric_name,
    measure_latency,
)
from nasforge.hardware.summary import COST_METRICS, metric_names, metrics

__all__ = [
    "BACKENDS",
    "COST_METRICS",
    "DEVICES",
    "Costs",
    "Latency",
    "count_flops",
    "count_params",
    "export_onnx",
    "latency_metric_name",
    "measure_latency",
    "metric_names",
    "metrics",
]
