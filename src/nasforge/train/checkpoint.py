"""A network saved as plain data: architecture, space, build arguments and weights.

A :class:`ModelRecord` is written with ``torch.save`` as a plain dictionary of strings,
numbers, lists and tensors, so it loads with ``torch.load(weights_only=True)`` (no pickled
classes, no code run on load) and rebuilds without the study that produced it::

    {"format": "nasforge-model", "version": 1,
     "space": "nb201", "arch": "|nor_conv_3x3~0|+|...|",
     "build": {"num_classes": 10, "channels": 16, "cells_per_stage": 5},
     "input_shape": [3, 32, 32], "mean": [...], "std": [...], "classes": [...],
     "trained": True, "info": {...}, "state_dict": {name: tensor}}

The training evaluator writes one per trial (when given a ``checkpoint_dir``) and
:mod:`nasforge.export` writes them for users.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasforge.errors import InvalidConfigError, NasforgeError

__all__ = [
    "FORMAT",
    "CheckpointMismatchError",
    "ModelRecord",
    "build_model",
    "load_record",
    "load_weights",
    "save_record",
]

FORMAT = "nasforge-model"
VERSION = 1


class CheckpointMismatchError(NasforgeError, ValueError):
    """Saved weights do not fit the network built from the architecture; the message lists
    the missing and unexpected keys and the shapes that differ."""


@dataclass(frozen=True)
class ModelRecord:
    """Everything needed to rebuild a network and its weights.

    Attributes:
        space: Registry name of the search space.
        arch: The architecture's canonical text (``str(arch)``).
        build: Keyword arguments of ``space.build`` (``num_classes``, ``channels``...).
        state_dict: The weights, or ``None`` for an architecture without trained weights.
        input_shape: Shape of one input image ``(C, H, W)``.
        mean, std: Per-channel normalisation of ``[0, 1]`` images the network expects.
        classes: Names of the output classes, where known.
        trained: Whether the weights were trained (``False``: freshly initialised).
        info: Anything else worth keeping (metrics, study, trial, seed, recipe), plain values.
    """

    space: str
    arch: str
    build: dict[str, Any]
    state_dict: dict[str, torch.Tensor] | None
    input_shape: tuple[int, ...] = (3, 32, 32)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    classes: tuple[str, ...] | None = None
    trained: bool = True
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "space": self.space,
            "arch": self.arch,
            "build": dict(self.build),
            "input_shape": list(self.input_shape),
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "classes": None if self.classes is None else list(self.classes),
            "trained": self.trained,
            "info": dict(self.info),
            "state_dict": None if self.state_dict is None else dict(self.state_dict),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "the record") -> ModelRecord:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise InvalidConfigError(
                f"{source} is not a nasforge model file (no 'format': {FORMAT!r}); write one with "
                "nasforge export or nasforge.export.save."
            )
        if int(data.get("version", 0)) > VERSION:
            raise InvalidConfigError(
                f"{source} was written by a newer nasforge (format version {data['version']}); "
                "upgrade nasforge to read it."
            )
        try:
            return cls(
                space=str(data["space"]),
                arch=str(data["arch"]),
                build=dict(data["build"]),
                state_dict=None if data.get("state_dict") is None else dict(data["state_dict"]),
                input_shape=tuple(int(v) for v in data.get("input_shape") or (3, 32, 32)),
                mean=_floats(data.get("mean")),
                std=_floats(data.get("std")),
                classes=None if data.get("classes") is None else tuple(data["classes"]),
                trained=bool(data.get("trained", True)),
                info=dict(data.get("info") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidConfigError(
                f"{source} is a malformed nasforge model file: {err!r}"
            ) from None


def _floats(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def save_record(record: ModelRecord, path: str | os.PathLike[str]) -> Path:
    """Write ``record`` to ``path`` with ``torch.save`` (atomically: a partial file is never
    left under the final name). Returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    data = record.to_dict()
    if data["state_dict"] is not None:
        data["state_dict"] = {k: v.detach().cpu() for k, v in data["state_dict"].items()}
    torch.save(data, temporary)
    os.replace(temporary, target)
    return target


def load_record(path: str | os.PathLike[str]) -> ModelRecord:
    """Read a file written by :func:`save_record` (``torch.load(weights_only=True)``).

    Raises:
        InvalidConfigError: No such file, or not a nasforge model file.
    """
    source = Path(path)
    if not source.is_file():
        raise InvalidConfigError(f"No model file at {str(source)!r}.")
    try:
        data = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise InvalidConfigError(
            f"Cannot read {str(source)!r} as a nasforge model file: {err}"
        ) from None
    return ModelRecord.from_dict(data, source=repr(str(source)))


def build_model(record: ModelRecord) -> nn.Module:
    """The network of ``record`` with its weights loaded (in evaluation mode).

    Raises:
        UnknownNameError, InvalidArchitectureError: The space or architecture is unknown.
        CheckpointMismatchError: The weights do not fit the network.
    """
    from nasforge import spaces

    space = spaces.create(record.space)
    arch = space.parse(record.arch)
    module: nn.Module = space.build(arch, **record.build)
    if record.state_dict is not None:
        load_weights(module, record.state_dict, what=f"architecture {record.arch!r}")
    return module.eval()


def load_weights(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, what: str) -> None:
    """Load ``state_dict`` into ``module`` exactly, or say which keys and shapes differ.

    Raises:
        CheckpointMismatchError: Missing or unexpected keys, or tensors of other shapes.
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{key} (checkpoint {tuple(state_dict[key].shape)}, network {tuple(own[key].shape)})"
        for key in sorted(set(own) & set(state_dict))
        if tuple(state_dict[key].shape) != tuple(own[key].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_few(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches {_few(shapes)}")
        raise CheckpointMismatchError(
            f"The weights do not match the network of {what}: {'; '.join(parts)}. The "
            "checkpoint was saved for another architecture or other build settings "
            "(channels, cells, classes)."
        )
    module.load_state_dict(dict(state_dict), strict=True)


def _few(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"[{shown}]{more}"
