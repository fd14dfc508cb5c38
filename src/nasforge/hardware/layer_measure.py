"""Measuring per-layer latency tables on this machine (PyTorch eager, ONNX Runtime).

:func:`measure_table` builds every distinct layer of the given networks alone, times it on an
input of its shape with :func:`nasforge.hardware.measure_latency` and calibrates the fixed part
on a few whole networks (see :mod:`nasforge.hardware.layer_lut` for the model, the papers and
why the fixed part is calibrated). PyTorch is imported only when something is measured.

How many layers? :func:`all_specs` lists every layer a space can produce at given settings:
the space's own ``layer_specs(**build)`` where it has one (layer positions times the options
that reach them), else every network of a space of at most :data:`ENUMERATION_LIMIT`
architectures, one by one. For a large space, measure the layers of the networks you need
(``measure_table(space, archs)``) and extend the table later (``table=``): only missing layers
are measured.

Example:
    >>> from dataclasses import dataclass
    >>> from torch import nn
    >>> @dataclass(frozen=True)
    ... class Conv:
    ...     in_channels: int
    ...     out_channels: int
    ...     resolution: int
    ...     @property
    ...     def key(self):
    ...         return f"conv-{self.in_channels}-{self.out_channels}-{self.resolution}"
    >>> build = lambda s: nn.Conv2d(s.in_channels, s.out_channels, 3, padding=1)
    >>> net = (Conv(3, 8, 16), Conv(8, 8, 16))
    >>> table = measure_table(None, [net], backend="torch", runs=3, warmup=1,
    ...                       calibration=0, builder=build)
    >>> sorted(table.entries), table.fixed_ms
    (['conv-3-8-16', 'conv-8-8-16'], 0.0)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.hardware.layer_lut import (
    LayerLatencyTable,
    distinct_layers,
    input_shape,
    layer_key,
    spec_fields,
)

if TYPE_CHECKING:
    from nasforge.hardware.latency import Latency
    from nasforge.spaces.base import SearchSpace

__all__ = ["ENUMERATION_LIMIT", "all_specs", "measure_network", "measure_table", "network_specs"]

logger = logging.getLogger(__name__)

#: Most architectures :func:`all_specs` enumerates one by one.
ENUMERATION_LIMIT = 100_000


def network_specs(space: SearchSpace | None, item: Any, build: Mapping[str, Any]) -> tuple:
    """The layers of one network: ``space.layers(arch, **build)``, or ``item`` itself when it
    is already a sequence of layer specs."""
    if isinstance(item, Architecture):
        if space is None or not hasattr(space, "layers"):
            raise UnsupportedOperationError(
                f"Space {getattr(space, 'name', None)!r} has no layers(arch, ...), so its "
                "networks cannot be split into table entries; use a space such as 'mobilenet'."
            )
        return tuple(space.layers(space.check(item), **build))
    if isinstance(item, (list, tuple)) and all(hasattr(s, "key") for s in item):
        return tuple(item)
    raise InvalidConfigError(
        f"Expected an Architecture or a sequence of layer specs, got {type(item).__name__}."
    )


def all_specs(
    space: SearchSpace, build: Mapping[str, Any] | None = None, *, limit: int = ENUMERATION_LIMIT
) -> list[Any]:
    """Every distinct layer spec the space can produce at the ``build`` settings.

    A space that knows them lists them (``space.layer_specs(**build)``: every layer position
    times the options that reach it, without enumerating networks). Otherwise, a space of at
    most ``limit`` architectures is enumerated network by network (``size`` of them) and the
    distinct layers kept.

    Raises:
        UnsupportedOperationError: The space lists no layers and is too large (its size is
            named): pass the architectures to measure instead.
    """
    settings = dict(build or {})
    lister = getattr(space, "layer_specs", None)
    if callable(lister):
        return distinct_layers(lister(**settings))
    size = space.size
    if size is None or size > limit:
        raise UnsupportedOperationError(
            f"Space {space.name!r} has {'unbounded' if size is None else size} architectures "
            f"(more than {limit}) and lists no layer_specs(); measure the layers of given "
            "architectures instead: measure_table(space, archs)."
        )
    return distinct_layers(s for arch in space for s in space.layers(arch, **settings))


# -- measuring ----------------------------------------------------------------------------------
def measure_table(
    space: SearchSpace | str | None,
    items: Sequence[Any] | str,
    *,
    backend: str = "onnxruntime",
    threads: int = 1,
    runs: int = 20,
    warmup: int = 5,
    build: Mapping[str, Any] | None = None,
    calibration: int | Sequence[Any] = 3,
    seed: int = 0,
    device: str = "cpu",
    builder: Callable[[Any], Any] | None = None,
    table: LayerLatencyTable | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> LayerLatencyTable:
    """Measure a latency table on this machine (batch size 1).

    Every distinct layer is built alone (``builder``, by default
    :func:`nasforge.ops.mobile.build_layer`) and timed on an input of its shape with
    :func:`nasforge.hardware.measure_latency` (``warmup`` untimed passes, the median of
    ``runs``); for ONNX Runtime each layer is exported on its own. Then the fixed part is
    calibrated on whole networks (see :mod:`nasforge.hardware.layer_lut`).

    Args:
        space: The space (or its registry name) whose ``layers(arch, **build)`` splits
            architectures; ``None`` when ``items`` are layer specs only.
        items: Architectures, layer specs, sequences of layer specs (one network each), or
            ``"all"``: every layer the space can produce at ``build`` (:func:`all_specs`).
        backend: ``"onnxruntime"`` or ``"torch"``.
        threads: Intra-op threads (1 in the issue's figures).
        runs, warmup: Timed and untimed passes per layer and per calibration network.
        build: Settings of ``space.layers`` and ``space.build`` (``resolution``,
            ``width_mult``, ``num_classes``).
        calibration: Whole networks the fixed part is calibrated on: a number drawn from the
            space with ``seed`` (0: the fixed part is 0), or the architectures (or sequences of
            specs) themselves. Their layers are measured too.
        seed: Seed of the calibration draw.
        device: Name of this machine in the table (``"cpu"``); times are taken on the CPU.
        builder: Builds one layer from its spec (``nn.Module``).
        table: An existing table of the same settings: only layers it lacks are measured,
            and the result merges both.
        progress: Called as ``progress(done, total, what)`` after each measurement.

    Raises:
        UnknownNameError, MissingDependencyError: As :func:`~nasforge.hardware.measure_latency`.
        UnsupportedOperationError: The space has no ``layers``, or ``"all"`` cannot be listed.
    """
    from nasforge import spaces

    if isinstance(space, str):
        space = spaces.create(space)
    settings = dict(build or {})
    if isinstance(items, str):
        if items != "all" or space is None:
            raise InvalidConfigError(f"items must be architectures, specs or 'all', got {items!r}.")
        specs = all_specs(space, settings)
    else:
        specs = []
        for item in items:
            specs.extend([item] if hasattr(item, "key") else network_specs(space, item, settings))
    networks = _calibration_networks(space, calibration, seed)
    for net in networks:
        specs.extend(network_specs(space, net, settings))
    todo = distinct_layers(specs)
    if table is not None:
        todo = table.missing(todo)
    make = builder or _default_builder()
    total = len(todo) + len(networks)
    entries: dict[str, float] = {}
    layers: dict[str, dict[str, str]] = {}
    for done, spec in enumerate(todo, start=1):
        timing = _measure(make(spec), input_shape(spec), backend, threads, runs, warmup)
        entries[layer_key(spec)] = timing.median_ms
        layers[layer_key(spec)] = spec_fields(spec)
        if progress is not None:
            progress(done, total, layer_key(spec))
    partial = LayerLatencyTable(entries, 0.0, backend, threads, 1, device, layers)
    if table is not None:
        partial = table.merge(partial)
    residuals = []
    for done, net in enumerate(networks, start=len(todo) + 1):
        measured = measure_network(
            space,
            net,
            backend=backend,
            threads=threads,
            runs=runs,
            warmup=warmup,
            build=settings,
            builder=make,
        ).median_ms
        residuals.append(measured - partial.predict(network_specs(space, net, settings)))
        if progress is not None:
            progress(done, total, "calibration network")
    if residuals:
        fixed = float(np.median(residuals))
    else:  # nothing to calibrate on: keep the extended table's fixed part, else none
        fixed = table.fixed_ms if table is not None else 0.0
    logger.info(
        "latency table %s: %d layers measured, fixed part %.4f ms (residuals %s)",
        partial.name,
        len(todo),
        fixed,
        [round(r, 4) for r in residuals],
    )
    return dataclasses.replace(partial, fixed_ms=fixed)


def measure_network(
    space: SearchSpace | None,
    item: Any,
    *,
    backend: str = "onnxruntime",
    threads: int = 1,
    runs: int = 20,
    warmup: int = 5,
    build: Mapping[str, Any] | None = None,
    builder: Callable[[Any], Any] | None = None,
) -> Latency:
    """Time a whole network, as the table predicts it: an architecture is built by
    ``space.build(arch, **build)``, a sequence of specs as its layers in order (``builder``)."""
    from torch import nn

    settings = dict(build or {})
    specs = network_specs(space, item, settings)
    if isinstance(item, Architecture) and space is not None and space.supports("build"):
        module = space.build(item, **settings)
    else:
        make = builder or _default_builder()
        module = nn.Sequential(*(make(spec) for spec in specs))
    return _measure(module, input_shape(specs[0]), backend, threads, runs, warmup)


def _measure(
    module: Any, shape: Sequence[int], backend: str, threads: int, runs: int, warmup: int
) -> Latency:
    from nasforge.hardware.latency import measure_latency

    return measure_latency(
        module, shape, runs=runs, warmup=warmup, threads=threads, backend=backend
    )


def _calibration_networks(
    space: SearchSpace | None,
    calibration: int | Sequence[Any],
    seed: int,
) -> list[Any]:
    if isinstance(calibration, int) and not isinstance(calibration, bool):
        if calibration < 0:
            raise InvalidConfigError(f"calibration must be >= 0, got {calibration}.")
        if calibration == 0:
            return []
        if space is None:
            raise InvalidConfigError(
                "calibration=N draws networks from the space; with space=None pass the "
                "calibration networks as sequences of layer specs (or calibration=0)."
            )
        rng = np.random.default_rng(seed)
        return [space.sample(rng) for _ in range(calibration)]
    return list(calibration)


def _default_builder() -> Callable[[Any], Any]:
    try:
        from nasforge.ops.mobile import build_layer
    except ImportError as err:  # pragma: no cover - ships with nasforge
        raise UnsupportedOperationError(f"No layer builder available: {err}") from err
    return build_layer
