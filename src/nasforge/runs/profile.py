"""What an architecture's network costs: parameters, MACs, FLOPs and measured latency, as
``nasforge profile`` prints them.

Example:
    >>> data = profile_arch("6111")
    >>> round(data["metrics"]["params_M"], 4), data["input_shape"]
    (1.0735, [3, 32, 32])
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError, NasforgeError, UnknownNameError

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace

__all__ = ["PROFILE_DATASETS", "PROFILE_LIMITS", "parse_arch", "profile_arch"]

#: Classes and image size of the datasets :func:`profile_arch` knows.
PROFILE_DATASETS: dict[str, tuple[int, int]] = {
    "cifar10": (10, 32),
    "cifar100": (100, 32),
    "imagenet16-120": (120, 16),
}


def parse_arch(space: SearchSpace, text: str) -> Architecture:
    """An architecture from its text, a benchmark index (spaces with ``from_index``) or a
    published name (spaces with ``named``)."""
    stripped = text.strip()
    from_index = getattr(space, "from_index", None)
    if from_index is not None and stripped.isdigit():
        return from_index(int(stripped))  # type: ignore[no-any-return]
    named = getattr(space, "named", None)
    if named is not None and not any(c in stripped for c in "|~=("):
        return named(stripped)  # type: ignore[no-any-return]
    return space.parse(stripped)


def _innermost(space: SearchSpace) -> SearchSpace:
    """The registered space under the forms of ``space`` (``"nb201+binary"`` -> ``nb201``)."""
    from nasforge.spaces.base import SearchSpace

    while isinstance(getattr(space, "base", None), SearchSpace):
        space = space.base  # type: ignore[attr-defined]
    return space


#: Largest value of each setting of :func:`profile_arch` (a network this size still fits in a
#: few GB of memory; beyond it a typo such as ``--cells 15624`` would exhaust the machine).
PROFILE_LIMITS = {
    "--num-classes": 100_000,
    "--resolution": 1024,
    "--channels": 256,
    "--cells": 32,
    "--batch-size": 1024,
    "--runs": 100_000,
    "--threads": 1024,
}


def _positive(label: str, value: int) -> int:
    """``value`` if it is a whole number from 1 to ``PROFILE_LIMITS[label]``."""
    top = PROFILE_LIMITS.get(label)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidConfigError(f"{label} must be a positive whole number, got {value!r}.")
    if top is not None and value > top:
        raise InvalidConfigError(f"{label} must be at most {top:,}, got {value:,}.")
    return value


def profile_arch(
    text: str,
    *,
    space: str = "nb201",
    dataset: str | None = None,
    num_classes: int | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    cells: int | None = None,
    latency: bool = False,
    backends: Sequence[str] | None = None,
    batch_size: int = 1,
    runs: int = 50,
    threads: int = 1,
) -> dict[str, Any]:
    """The costs of the network of ``text`` (see :func:`parse_arch`) in ``space``.

    The network is built as deployed: a head used only in training (an auxiliary
    classifier) is left out. ``dataset`` gives the classes and image size (default the
    space's ``default_input``, ``(num_classes, resolution)``, where it has one, e.g. the
    ImageNet input of ``mobilenet``, else cifar10's); ``num_classes`` and ``resolution``
    instead of it. A space whose ``build`` takes ``resolution`` is built for that size.
    ``backends``: latency backends (default PyTorch, and ONNX Runtime where installed).

    Returns:
        ``arch``, ``space``, ``build`` (the build keywords), ``input_shape``, ``metrics``
        (``params_M``, ``macs_M``, ``flops_M``), ``latency`` (per backend) and ``notes``.

    Raises:
        InvalidConfigError: Conflicting settings, a setting that is not a whole number from
            1 to its limit in :data:`PROFILE_LIMITS`, a width or depth for a space without
            them, or a network that cannot run at that image size.
        UnknownNameError: An unknown dataset or latency backend.
    """
    import nasforge
    from nasforge.evaluators.options import scale_keys

    for label, given in (
        ("--channels", channels),
        ("--cells", cells),
        ("--batch-size", batch_size),
        ("--runs", runs),
        ("--threads", threads),
    ):
        if given is not None:
            _positive(label, given)
    if dataset is not None and (num_classes is not None or resolution is not None):
        raise InvalidConfigError("Give --dataset, or --num-classes and --resolution, not both.")
    space_obj = nasforge.spaces.create(space)
    classes, size = getattr(space_obj, "default_input", None) or PROFILE_DATASETS["cifar10"]
    if dataset is not None:
        key = dataset.lower()
        if key not in PROFILE_DATASETS:
            raise UnknownNameError("dataset", dataset, PROFILE_DATASETS)
        classes, size = PROFILE_DATASETS[key]
    if num_classes is not None:
        classes = _positive("--num-classes", num_classes)
    if resolution is not None:
        size = _positive("--resolution", resolution)
    arch = parse_arch(space_obj, text)
    build: dict[str, Any] = {"num_classes": classes}
    keys = scale_keys(space_obj) if (channels, cells) != (None, None) else None
    for label, value, index in (("--channels", channels, 0), ("--cells", cells, 1)):
        if value is not None:
            build_key = None if keys is None else keys[index]
            if build_key is None:
                raise InvalidConfigError(f"{label} is not a setting of space {space!r}.")
            build[build_key] = value
    builder = _innermost(space_obj)  # a form ("mobilenet+quant") takes its base's keywords
    if "resolution" in inspect.signature(builder.build).parameters:
        build["resolution"] = size  # a space whose layers know their input size
    if "auxiliary" in inspect.signature(builder.build).parameters:
        build["auxiliary"] = False  # what is deployed; the head only trains
    try:
        from nasforge import hardware
    except ImportError as exc:  # pragma: no cover - ships with nasforge
        raise InvalidConfigError(f"nasforge.hardware cannot be imported: {exc}") from None
    try:
        module = space_obj.build(arch, **build)
    except MemoryError:
        raise InvalidConfigError(
            f"The {space} network with {build} does not fit in memory; give smaller "
            "--channels, --cells or --num-classes."
        ) from None
    shape = (3, size, size)
    try:
        metrics = hardware.count_flops(module, shape).as_metrics()
    except NasforgeError:
        raise
    except Exception as exc:  # a layer that is empty at this size
        raise InvalidConfigError(
            f"The {space} network of {arch.text!r} cannot run on {size}x{size} images: {exc}"
        ) from None
    if builder is not space_obj:  # a form adds its own costs (model bits, BOPs)
        form_costs = space_obj.costs(arch, **build)  # type: ignore[attr-defined]
        metrics.update({k: v for k, v in form_costs.items() if k not in metrics})
    notes: list[str] = []
    timings: dict[str, Any] = {}
    if latency:
        if backends is None:
            names = ["torch"]
            if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
                names.append("onnxruntime")
            else:
                notes.append(
                    "ONNX Runtime is not installed, so only PyTorch is timed: "
                    "pip install 'nasforge[onnx]'"
                )
        else:
            names = list(backends)
        for name in names:
            result = hardware.measure_latency(
                module, shape, backend=name, batch_size=batch_size, runs=runs, threads=threads
            )
            timings[name] = {
                "median_ms": result.median_ms,
                "p10_ms": result.p10_ms,
                "p90_ms": result.p90_ms,
                "runs": result.runs,
                "batch_size": result.batch_size,
                "threads": result.threads,
                "max_abs_diff": result.max_abs_diff,
                "metric": result.metric,
            }
    return {
        "arch": arch.text,
        "space": space,
        "build": build,
        "input_shape": list(shape),
        "metrics": metrics,
        "latency": timings,
        "notes": notes,
    }
