"""Measuring per-layer latency tables on this machine (PyTorch eager, ONNX Runtime).

:func:`measure_table` builds every distinct layer of the given networks alone, times it on an
input of its shape with :func:`nasforge.hardware.measure_latency` and calibrates the fixed part
and the in-network factor on a few whole networks (see :mod:`nasforge.hardware.layer_lut` for
the model, the papers and why). PyTorch is imported only when something is measured.

Convolution blocks (:class:`nasforge.ops.mobile.LayerSpec`) and transformer layers
(:class:`nasforge.ops.vit.TransformerLayerSpec`: patch and token embeddings, encoder blocks
across heads x Q-K-V and MLP widths x sequence lengths, reductions, heads) are measured alike:
``measure_table("vit-cifar", archs)`` splits each network with the space's ``layers(arch)``,
``measure_table("vit-cifar", "all")`` measures its ``layer_specs()``, and the calibration
builds whole networks with ``space.build``. ``benchmarks/transformer_latency_lut.py`` checks
the predictions against whole networks for both runtimes.

PyTorch and the system allocator: PyTorch eager takes every activation tensor from
``malloc``; glibc maps large blocks afresh and returns them when freed, so each pass
page-faults its activations again at a cost that depends on what the process allocated
before (the same network's time varied by up to 40% within one process on a 2-core machine).
Measure PyTorch tables with a steady allocator: ``MALLOC_MMAP_THRESHOLD_=33554432
MALLOC_TRIM_THRESHOLD_=1073741824`` in the environment (glibc), or jemalloc / tcmalloc
preloaded, as PyTorch's CPU performance guide advises; ``benchmarks/mobile_latency_lut.py``
sets the glibc thresholds itself. ONNX Runtime allocates from its own arena.

How many layers? :func:`all_specs` lists every layer a space can produce at given settings:
the space's own ``layer_specs(**build)`` where it has one (layer positions times the options
that reach them), else every network of a space of at most :data:`ENUMERATION_LIMIT`
architectures, one by one. At 224x224 and width 1, ``mobilenet`` lists 4,104 layers (its stage
widths times kernels, expansions, SE variants and activations, per stage; about 5 minutes
with ONNX Runtime on one core of the project's machine) and ``fbnet`` 105, so
``measure_table(space, "all")`` covers every network of the space. Otherwise measure the
layers of the networks you need (``measure_table(space, archs)``) and extend the table later
(``table=``): only missing layers are measured.

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

import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError
from nasforge.hardware.layer_lut import (
    LayerLatencyTable,
    distinct_layers,
    input_shape,
    layer_key,
    spec_fields,
    token_vocabulary,
)

if TYPE_CHECKING:
    from nasforge.hardware.latency import Latency
    from nasforge.spaces.base import SearchSpace

__all__ = [
    "ENUMERATION_LIMIT",
    "all_specs",
    "build_default_layer",
    "measure_network",
    "measure_table",
    "network_specs",
]

logger = logging.getLogger(__name__)

#: Most architectures :func:`all_specs` enumerates one by one.
ENUMERATION_LIMIT = 100_000


def network_specs(
    space: SearchSpace | None, item: Any, build: Mapping[str, Any]
) -> tuple[Any, ...]:
    """The layers of one network: ``space.layers(arch, **build)``, or ``item`` itself when it
    is already a sequence of layer specs."""
    if isinstance(item, Architecture):
        if space is None or not hasattr(space, "layers"):
            raise UnsupportedOperationError(
                f"Space {getattr(space, 'name', None)!r} has no layers(arch, ...), so its "
                "networks cannot be split into table entries; use a space such as 'mobilenet'."
            )
        return tuple(cast(Any, space).layers(space.check(item), **build))
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
    layers = cast(Any, space).layers
    return distinct_layers(s for arch in space for s in layers(arch, **settings))


# -- measuring ----------------------------------------------------------------------------------
def measure_table(
    space: SearchSpace | str | None,
    items: Sequence[Any] | str,
    *,
    backend: str = "onnxruntime",
    threads: int = 1,
    runs: int = 20,
    warmup: int = 5,
    statistic: str = "median",
    build: Mapping[str, Any] | None = None,
    calibration: int | Sequence[Any] = 5,
    seed: int = 0,
    device: str = "cpu",
    builder: Callable[[Any], Any] | None = None,
    table: LayerLatencyTable | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    subtract_call: bool = False,
) -> LayerLatencyTable:
    """Measure a latency table on this machine (batch size 1).

    Every distinct layer is built alone (``builder``, by default :func:`build_default_layer`,
    which builds convolution blocks and transformer layers) and timed on an input of its shape
    (:func:`~nasforge.hardware.layer_lut.input_shape`; token ids for a token embedding) with
    :func:`nasforge.hardware.measure_latency` (``warmup`` untimed passes, then the median, or
    ``statistic``, of ``runs``); for ONNX Runtime each layer is exported on its own. Then the
    in-network factor and the fixed part are calibrated on whole networks
    (:mod:`nasforge.hardware.layer_lut`).

    Args:
        space: The space (or its registry name) whose ``layers(arch, **build)`` splits
            architectures; ``None`` when ``items`` are layer specs only.
        items: Architectures, layer specs, sequences of layer specs (one network each), or
            ``"all"``: every layer the space can produce at ``build`` (:func:`all_specs`).
        backend: ``"onnxruntime"`` or ``"torch"``.
        threads: Intra-op threads (1 in the issue's figures).
        runs, warmup: Timed and untimed passes per layer and per calibration network.
        statistic: The figure of the ``runs`` passes: ``"median"`` (as the papers), or
            ``"p10"``, their 10th percentile, the passes least delayed by other jobs on a
            shared machine (compare it with whole networks measured the same way).
        build: Settings of ``space.layers`` and ``space.build`` (``resolution``,
            ``width_mult``, ``num_classes``).
        calibration: Whole networks the in-network factor and the fixed part are calibrated
            on (see :mod:`nasforge.hardware.layer_lut`): a number drawn from the space with
            ``seed`` (0: factor 1 and fixed part 0, or the extended table's), or the
            architectures (or sequences of specs) themselves. Their layers are measured too.
        seed: Seed of the calibration draw.
        device: Name of this machine in the table (``"cpu"``); times are taken on the CPU.
        builder: Builds one layer from its spec (``nn.Module``).
        table: A table measured here with the same settings to extend: only layers it
            lacks are measured, and the result holds both (recalibrated when there are
            calibration networks, else with the table's factor and fixed part).
        progress: Called as ``progress(done, total, what)`` after each measurement.
        subtract_call: Take the fixed part (one call of the runtime on an empty network) off
            each layer's time alone before scaling it by the factor: each layer timed alone
            paid one call, a network pays one for all its layers. Matters where layers take
            tens of microseconds, as small transformer layers with ONNX Runtime (see
            :mod:`nasforge.hardware.layer_lut`); without calibration networks the fixed part
            is the extended table's (0 for a new one). Pass the same value when extending a
            table.

    Raises:
        UnknownNameError, MissingDependencyError: As :func:`~nasforge.hardware.measure_latency`.
        UnsupportedOperationError: The space has no ``layers``, or ``"all"`` cannot be listed.
        InvalidConfigError: ``table`` was measured with other settings.
    """
    from nasforge import spaces

    _figure(None, statistic)  # an unknown statistic is refused before measuring
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
    alone: dict[str, float] = {}  # times measured alone (an extended table's, unscaled)
    layers: dict[str, dict[str, str]] = {}
    factor, fixed = 1.0, 0.0
    if table is not None:
        wanted = {"device": device, "backend": backend, "threads": threads, "batch_size": 1}
        have = {name: getattr(table, name) for name in wanted}
        if have != wanted:
            raise InvalidConfigError(
                f"The table to extend was measured with {have}, not {wanted}; measure a new one."
            )
        todo = table.missing(todo)
        alone = {key: ms / table.factor for key, ms in table.entries.items()}
        layers = {key: dict(text) for key, text in table.layers.items()}
        factor, fixed = table.factor, table.fixed_ms
    make = builder or _default_builder()
    total = len(todo) + len(networks)
    for done, spec in enumerate(todo, start=1):
        timing = _measure(make(spec), spec, backend, threads, runs, warmup)
        alone[layer_key(spec)] = _figure(timing, statistic)
        layers[layer_key(spec)] = spec_fields(spec)
        if progress is not None:
            progress(done, total, layer_key(spec))
    fresh = {layer_key(spec) for spec in todo}  # measured now, the runtime's call included
    measured = []
    for done, net in enumerate(networks, start=len(todo) + 1):
        timing = measure_network(
            space,
            net,
            backend=backend,
            threads=threads,
            runs=runs,
            warmup=warmup,
            build=settings,
            builder=make,
        )
        measured.append(_figure(timing, statistic))
        if progress is not None:
            progress(done, total, "calibration network")
    if measured:  # see nasforge.hardware.layer_lut: the runtime's call, then the factor
        first = network_specs(space, networks[0], settings)[0]
        call = _measure(_empty_network(), first, backend, threads, runs, warmup)
        fixed = _figure(call, statistic)
    if subtract_call:  # each layer alone paid one call; a network pays one for all its layers
        alone.update({key: max(alone[key] - fixed, 0.0) for key in fresh})
    if measured:
        sums = [
            math.fsum(alone[layer_key(s)] for s in network_specs(space, net, settings))
            for net in networks
        ]
        ratios = (np.asarray(measured) - fixed) / np.asarray(sums)
        factor = float(np.median(ratios))
        logger.info(
            "latency table: fixed part %.4f ms, factor %.4f from %d networks (each: %s)",
            fixed,
            factor,
            len(measured),
            np.round(ratios, 4).tolist(),
        )
    entries = {key: factor * ms for key, ms in alone.items()}
    return LayerLatencyTable(
        entries, fixed, backend, threads, 1, device, layers=layers, factor=factor
    )


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
    return _measure(module, specs[0], backend, threads, runs, warmup)


def _measure(
    module: Any, first: Any, backend: str, threads: int, runs: int, warmup: int
) -> Latency:
    """Time ``module`` on the input of the layer spec ``first`` (token ids for a token
    embedding, else random floats of its shape)."""
    from nasforge.hardware.latency import measure_latency

    return measure_latency(
        module,
        input_shape(first),
        runs=runs,
        warmup=warmup,
        threads=threads,
        backend=backend,
        token_ids=token_vocabulary(first),
    )


def _calibration_networks(
    space: SearchSpace | None,
    calibration: int | Sequence[Any],
    seed: int,
) -> list[Any]:
    if isinstance(calibration, bool):
        raise InvalidConfigError(
            f"calibration must be a number of networks or the networks, got {calibration!r}."
        )
    if isinstance(calibration, int):
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


#: Figures of a :class:`~nasforge.hardware.Latency` that a table can hold.
STATISTICS = {"median": "median_ms", "p10": "p10_ms"}


def _figure(timing: Latency | None, statistic: str) -> float:
    if statistic not in STATISTICS:
        raise UnknownNameError("latency statistic", str(statistic), STATISTICS)
    return 0.0 if timing is None else float(getattr(timing, STATISTICS[statistic]))


def _empty_network() -> Any:
    """A network without layers: what a call of the runtime costs on the network's input."""
    from torch import nn

    return nn.Identity()


def _default_builder() -> Callable[[Any], Any]:
    return build_default_layer


def build_default_layer(spec: Any) -> Any:
    """The module of one layer spec: :func:`nasforge.ops.vit.build_layer` for a
    :class:`~nasforge.ops.vit.TransformerLayerSpec`, else :func:`nasforge.ops.mobile.build_layer`.

    The spec's type decides: a transformer spec exists only once :mod:`nasforge.ops.vit` is
    imported, so this module imports neither PyTorch nor the builders until a layer is built.
    """
    vit = sys.modules.get("nasforge.ops.vit")
    if vit is not None and isinstance(spec, vit.TransformerLayerSpec):
        return vit.build_layer(spec)
    try:
        from nasforge.ops.mobile import build_layer
    except ImportError as err:  # pragma: no cover - ships with nasforge
        raise UnsupportedOperationError(f"No layer builder available: {err}") from err
    return build_layer(spec)
