"""What the trainings of super-networks in a folder share: the identity of the data a run
trained on, the differences between a saved and a given run, checkpoint reading, the atomic
manifest write, the seed of an epoch, and the check of saved settings' keys.

Used by :mod:`nasforge.elastic._train` (elastic supernets) and :mod:`nasforge.transformer._train`
(super-transformers). Torch is imported when a checkpoint is read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Container, Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import InvalidConfigError

if TYPE_CHECKING:
    from nasforge.train.data import DataSplits

__all__ = [
    "data_identity",
    "differences",
    "epoch_seed",
    "known_settings",
    "listed_differences",
    "read_checkpoint",
    "write_manifest",
]


def data_identity(data: DataSplits) -> dict[str, Any]:
    """The data a run trained on, as its identity records it."""
    return {
        "name": data.name,
        "train_images": len(data.train),
        "num_classes": data.num_classes,
        "resolution": data.resolution,
    }


def differences(
    saved: Mapping[str, Any],
    given: Mapping[str, Any],
    prefix: str = "",
    *,
    whole: Container[str] = (),
) -> list[tuple[str, Any, Any]]:
    """``(dotted key, saved value, given value)`` for every key where two runs differ; nested
    mappings are compared key by key, except those under a key in ``whole``."""
    out = []
    for key in sorted(set(saved) | set(given)):
        a, b = saved.get(key), given.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping) and key not in whole:
            out += differences(a, b, f"{prefix}{key}.", whole=whole)
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out


def listed_differences(diffs: list[tuple[str, Any, Any]]) -> str:
    """``"key: saved A, given B; ..."`` for :func:`differences`' answer."""
    return "; ".join(f"{k}: saved {a!r}, given {b!r}" for k, a, b in diffs)


def read_checkpoint(path: Path, kind: str, version: int, what: str, how: str) -> dict[str, Any]:
    """The checkpoint at ``path``, checked to be of format ``kind`` and at most ``version``.

    Raises:
        InvalidConfigError: Unreadable, of another format (``what`` names the expected kind of
            checkpoint, ``how`` the function that trains one) or of a newer version.
    """
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise InvalidConfigError(f"Cannot read {str(path)!r} as a checkpoint: {err}") from None
    if not isinstance(data, dict) or data.get("format") != kind:
        raise InvalidConfigError(
            f"{str(path)!r} is not a nasforge {what} checkpoint (train one with {how})."
        )
    if int(data.get("version", 0)) > version:
        raise InvalidConfigError(
            f"{str(path)!r} was written by a newer nasforge; upgrade nasforge to read it."
        )
    return data


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest`` as JSON at ``path`` atomically (a reader never sees half a file)."""
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def epoch_seed(seed: int, *parts: int) -> int:
    """The seed of one epoch: a 32-bit word of ``SeedSequence([seed, *parts])``."""
    return int(np.random.SeedSequence([int(seed), *parts]).generate_state(1)[0])


def known_settings(cls: type, values: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``values`` as a dict, checked to name only fields of the dataclass ``cls``.

    Raises:
        InvalidConfigError: An unknown key (``what`` names the settings; the valid ones are
            listed).
    """
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InvalidConfigError(f"Unknown {what} {unknown}; the settings are {sorted(names)}.")
    return dict(values)
