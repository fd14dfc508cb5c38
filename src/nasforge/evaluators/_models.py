"""The networks of a training evaluator: built from a seed and checked on a probe input, or
built on the meta device to count their costs (private; imports torch when called)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError
from nasforge.evaluators._values import describe, first_line

if TYPE_CHECKING:
    from torch import nn

    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace

__all__ = ["build_network", "count_costs"]


def build_network(
    space: SearchSpace, arch: Architecture, kwargs: Mapping[str, Any], resolution: int, seed: int
) -> nn.Module:
    """``space.build(arch, **kwargs)`` initialised from ``seed``, checked on two images of
    ``resolution`` (its batch-norm statistics restored after the probe).

    Raises:
        InvalidConfigError: The network cannot run at that resolution (a layer would be
            empty), or a setting the space refuses.
    """
    import torch

    from nasforge.train.trainer import seeded

    with seeded(seed):
        model: nn.Module = space.build(arch, **kwargs)
    state = copy.deepcopy(model.state_dict())
    probe = torch.zeros((2, 3, resolution, resolution))
    try:
        with torch.no_grad():
            model.train()  # training mode also runs auxiliary heads
            model(probe)
    except (RuntimeError, ValueError, IndexError) as err:
        raise InvalidConfigError(
            f"The {space.name} network of {arch.text!r} with {describe(kwargs)} cannot run "
            f"on {resolution}x{resolution} images (a layer would be "
            f"empty): {first_line(err)}. Use a larger resolution or more channels."
        ) from None
    model.load_state_dict(state)  # the probe moved the batch-norm statistics
    return model


def count_costs(
    space: SearchSpace, arch: Architecture, kwargs: Mapping[str, Any], resolution: int
) -> dict[str, float]:
    """``params_M``, ``macs_M`` and ``flops_M`` of ``space.build(arch, **kwargs)`` on
    ``resolution``-sided images, counted on the meta device (an auxiliary head left out)."""
    import torch

    with torch.device("meta"):
        model: nn.Module = space.build(arch, **kwargs)
    shape = (3, resolution, resolution)
    try:
        from nasforge.hardware import count_flops
    except ImportError:  # pragma: no cover - the hardware package ships with nasforge
        params = sum(p.numel() for n, p in model.named_parameters() if "auxiliary" not in n)
        return {"params_M": params / 1e6}
    exclude = ("auxiliary_head",) if kwargs.get("auxiliary") else ()
    metrics: dict[str, float] = count_flops(model, shape, exclude=exclude).as_metrics()
    return metrics
