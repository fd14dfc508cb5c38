"""Hardware costs as metrics an evaluator returns: ``params_M``, ``macs_M``, ``flops_M``
and ``latency_ms[device-backend]``.

Every one of these metrics is better smaller (``Direction.MINIMIZE``). An evaluator that
trains or scores a network merges :func:`metrics` into its ``Result.metrics`` and declares
:func:`metric_names` in its ``metrics`` property.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import nn

from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.hardware.costs import count_flops
from nasforge.hardware.latency import BACKENDS, latency_metric_name, measure_latency

__all__ = ["COST_METRICS", "metric_names", "metrics"]

#: The metrics of :class:`~nasforge.hardware.costs.Costs`, always returned by :func:`metrics`.
COST_METRICS: tuple[str, ...] = ("params_M", "macs_M", "flops_M")


def metric_names(
    *,
    latency: bool = False,
    backend: str | Sequence[str] = "torch",
    device: str = "cpu",
    batch_size: int = 1,
) -> list[str]:
    """The names :func:`metrics` returns with the same options.

    Example:
        >>> metric_names(latency=True, backend=("torch", "onnxruntime"))
        ['params_M', 'macs_M', 'flops_M', 'latency_ms[cpu-torch]', 'latency_ms[cpu-onnxruntime]']
    """
    names = list(COST_METRICS)
    if latency:
        names += [latency_metric_name(device, b, batch_size) for b in _backends(backend)]
    return names


def metrics(
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    latency: bool = False,
    backend: str | Sequence[str] = "torch",
    device: str = "cpu",
    batch_size: int = 1,
    runs: int = 50,
    warmup: int = 10,
    threads: int = 1,
    exclude: Iterable[str] = (),
) -> dict[str, float]:
    """Parameters, MACs, FLOPs and, if asked, measured latencies of ``module`` as metrics.

    Args:
        module: The network.
        input_shape: The shape of one sample without the batch dimension, e.g. ``(3, 32, 32)``;
            the costs are those of one sample.
        latency: Also measure the latency (seconds of work; off by default).
        backend: ``"torch"``, ``"onnxruntime"`` or several of them, one metric each.
        device: Where the latency is measured (``"cpu"`` or ``"cuda"``).
        batch_size, runs, warmup, threads: Settings of
            :func:`~nasforge.hardware.latency.measure_latency`.
        exclude: Submodules left out of ``params_M`` (see
            :func:`~nasforge.hardware.costs.count_params`).

    Returns:
        ``{"params_M", "macs_M", "flops_M"}`` and, with ``latency=True``, the median time of a
        pass in milliseconds under :func:`~nasforge.hardware.latency.latency_metric_name`,
        e.g. ``"latency_ms[cpu-torch]"``.

    Example:
        >>> from torch import nn
        >>> metrics(nn.Linear(10, 5), (10,))
        {'params_M': 5.5e-05, 'macs_M': 5e-05, 'flops_M': 0.0001}
    """
    out = count_flops(module, input_shape, exclude=exclude).as_metrics()
    if latency:
        for name in _backends(backend):
            result = measure_latency(
                module,
                input_shape,
                batch_size=batch_size,
                runs=runs,
                warmup=warmup,
                threads=threads,
                backend=name,
                device=device,
            )
            out[result.metric] = result.median_ms
    return out


def _backends(backend: str | Sequence[str]) -> tuple[str, ...]:
    names = (backend,) if isinstance(backend, str) else tuple(backend)
    if not names:
        raise InvalidConfigError(
            f"Name at least one latency backend, from {', '.join(BACKENDS)}; got none."
        )
    for name in names:
        if name not in BACKENDS:
            raise UnknownNameError("latency backend", str(name), BACKENDS)
    return names
