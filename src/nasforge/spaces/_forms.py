"""What the forms of a space (``"<space>+binary"``, ``"<space>+quant"``) share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge.architecture import Architecture
from nasforge.spaces.base import SearchSpace

__all__ = ["input_side"]


def input_side(base: SearchSpace, arch: Architecture, build: Mapping[str, Any]) -> int:
    """The image side a network of ``arch`` (of ``base``) takes: the architecture's own
    resolution where the space decides it (``ofa``), else ``build["resolution"]``, else the
    side of the space's ``default_input``, else 32 (CIFAR)."""
    resolution = getattr(base, "resolution", None)
    if callable(resolution):
        return int(resolution(arch))
    if "resolution" in build:
        return int(build["resolution"])
    default = getattr(base, "default_input", None)
    return int(default[1]) if default else 32
