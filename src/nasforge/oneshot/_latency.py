"""Settings the hardware-aware one-shot methods share (private): the latency target, the
runtime a table is measured with, and how a study records the table."""

from __future__ import annotations

import os
from typing import Any

from nasforge.errors import InvalidConfigError

__all__ = ["BACKENDS", "TablePricing", "check_backend", "check_target", "table_label"]

#: Runtimes a table can be measured with on this machine.
BACKENDS = ("torch", "onnxruntime")


def check_target(target_ms: Any) -> float | None:
    """``target_ms`` as a float (``None``: no target).

    Raises:
        InvalidConfigError: Not a positive number (a boolean is not one).
    """
    if target_ms is None:
        return None
    if isinstance(target_ms, bool) or not isinstance(target_ms, (int, float)) or target_ms <= 0:
        raise InvalidConfigError(f"target_ms must be a positive number, got {target_ms!r}.")
    return float(target_ms)


def check_backend(backend: Any) -> str:
    """``backend`` if it is a runtime of :data:`BACKENDS`.

    Raises:
        InvalidConfigError: Another value (the valid ones are named).
    """
    if backend not in BACKENDS:
        raise InvalidConfigError(f"Unknown backend {backend!r}; choose 'torch' or 'onnxruntime'.")
    return str(backend)


def table_label(table: Any) -> str | None:
    """How a method's ``params`` record its table: the CSV path it was given or read from,
    else the table's name (a table built in memory); ``None`` for none."""
    if table is None:
        return None
    if isinstance(table, (str, os.PathLike)):
        return os.fspath(table)
    return str(getattr(table, "source", None) or getattr(table, "name", table))


class TablePricing:
    """What ProxylessNAS and FBNet share to price their supernet's candidates with a
    per-layer table: :meth:`price` reads (or measures) the table and keeps each layer's
    candidate latencies, :meth:`mixture_latency` is the latency of a mixture of them."""

    table: Any
    backend: str
    target_ms: float | None
    latency: list[Any]
    fixed_ms: float

    def price(self, net: Any, device: Any) -> None:
        """The table of ``net`` (:func:`~nasforge.ops.mobile_search_net.resolve_table`: read,
        or measured here when none was given), each layer's candidate latencies on
        ``device`` and the fixed part; a target no network of ``net`` meets is refused."""
        from nasforge.ops.mobile_search_net import resolve_table

        self.table = resolve_table(net, self.table, backend=self.backend)
        rows, self.fixed_ms = net.candidate_latency(self.table)
        self.latency = [row.to(device) for row in rows]
        if self.target_ms is not None:
            net.check_target(self.table, self.target_ms)

    def mixture_latency(self, weights: Any) -> Any:
        """The fixed part plus, per layer, ``sum_i weights[i] * latency[i]`` (ms): the
        expected latency of the paper's ProxylessNAS and FBNet's ``LAT(a)``."""
        from nasforge.ops.mobile_supernet import expected_latency

        total: Any = self.fixed_ms
        for w, latency in zip(weights, self.latency, strict=True):
            total = total + expected_latency(w, latency)
        return total
