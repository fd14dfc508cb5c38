"""Inherited accuracy of a sub-network of an elastic supernet: batch-norm recalibration on a
few training batches, then top-1 accuracy on fixed validation images (Once-for-All's
``set_running_statistics`` before measuring a sub-network, Cai et al., ICLR 2020,
arXiv:1908.09791, Section 3.3). Public as :func:`nasforge.elastic.subnet_accuracy`; this
module imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.oneshot._data import SearchData

__all__ = ["recalibrate", "subnet_accuracy"]


def _batch_norms(module: Any) -> list[nn.modules.batchnorm._BatchNorm]:
    if hasattr(module, "bn_modules"):
        return list(module.bn_modules())
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate(
    supernet: Any, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], resolution: int
) -> None:
    """Recompute the batch norms' running statistics of the active sub-network: reset them,
    then a cumulative average over ``batches`` (resized to ``resolution``) in training mode
    without gradients (Once-for-All's ``set_running_statistics``)."""
    from nasforge.ops.elastic import resize_images

    norms = [m for m in _batch_norms(supernet) if m.track_running_stats]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    before = supernet.training
    supernet.train()
    try:
        for x, _ in batches:
            supernet(resize_images(x, resolution) if x.shape[-1] != resolution else x)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        supernet.train(before)


@torch.no_grad()
def subnet_accuracy(
    supernet: Any,
    arch: str | Architecture,
    data: SearchData,
    *,
    recalibrate_batches: int = 8,
    images: int = 1000,
    keep_statistics: bool = False,
) -> float:
    """Top-1 accuracy (percent) of sub-network ``arch`` with the supernet's weights.

    Sets ``arch`` active, recalibrates the batch norms on the first ``recalibrate_batches``
    batches of the data's ``train`` half (fixed images, not augmented, resized to the
    arch's resolution; the shared statistics of a supernet fit no single sub-network), and
    measures the first ``images`` images of the ``valid`` half in eval mode. The same call
    gives the same number. The supernet's statistics are put back afterwards unless
    ``keep_statistics`` (then the arch's recalibrated statistics stay, e.g. for
    ``supernet.extract(arch)``); the arch stays active and the supernet in eval mode.

    Raises:
        InvalidArchitectureError: ``arch`` is not a member of the supernet's space.
        InvalidConfigError: ``recalibrate_batches`` or ``images`` below 1.
    """
    if recalibrate_batches < 1 or images < 1:
        raise InvalidConfigError(
            f"recalibrate_batches and images must be at least 1, got {recalibrate_batches} "
            f"and {images}."
        )
    supernet.set_active(arch)
    resolution = int(supernet.active_resolution)
    device = next(supernet.parameters()).device
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in _batch_norms(supernet)]
    try:
        calibration = data.fixed("train", recalibrate_batches * data.batch_size, device)
        recalibrate(supernet, calibration, resolution)
        supernet.eval()
        hits = seen = 0
        for x, y in data.fixed("valid", images, device):
            if x.shape[-1] != resolution:
                from nasforge.ops.elastic import resize_images

                x = resize_images(x, resolution)
            hits += int((supernet(x).argmax(1) == y).sum())
            seen += int(y.shape[0])
    finally:
        if not keep_statistics:
            for m, state in zip(_batch_norms(supernet), saved, strict=True):
                m.load_state_dict(state)
    return 100.0 * hits / max(1, seen)
