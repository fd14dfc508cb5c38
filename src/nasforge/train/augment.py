"""Batched image augmentation with torch operations (no torchvision).

Each function takes a batch ``(N, C, H, W)`` and a :class:`torch.Generator` that draws the
random parameters on the CPU, so that a run is reproducible from its seed whatever the
device of the batch, and no global random state is touched. The standard CIFAR pipeline is
:class:`Augment`: random crop with zero padding, horizontal flip, normalisation, cutout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nasforge.errors import InvalidConfigError

__all__ = ["Augment", "cutout", "normalize", "random_crop", "random_flip", "resize"]


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each image by ``padding`` zeros on every side and crop it back to ``H x W`` at a
    uniformly random offset (the crop of ``torchvision.transforms.RandomCrop(H, padding)``).
    """
    if padding <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    flip = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    """Cutout (DeVries, T. and Taylor, G. W. "Improved Regularization of Convolutional Neural
    Networks with Cutout." arXiv:1708.04552, 2017): set a ``length x length`` square of each
    image to zero. The square's centre is a uniformly random pixel, so the square may lie
    partly outside the image (the paper's choice); applied after normalisation, as in the
    authors' code, zero is the data's mean.
    """
    if length <= 0:
        return x
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=generator).to(x.device)
    cx = torch.randint(0, w, (n,), generator=generator).to(x.device)
    half = length // 2
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_rows = (ys >= (cy[:, None] - half)) & (ys < (cy[:, None] - half + length))
    in_cols = (xs >= (cx[:, None] - half)) & (xs < (cx[:, None] - half + length))
    hole = in_rows[:, :, None] & in_cols[:, None, :]
    return x.masked_fill(hole[:, None, :, :], 0.0)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (or [0, 1] float) images to float32 ``(x / 255 - mean) / std`` per channel."""
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    m = torch.tensor(mean, dtype=x.dtype, device=x.device)[None, :, None, None]
    s = torch.tensor(std, dtype=x.dtype, device=x.device)[None, :, None, None]
    return (x - m) / s


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` resized to ``size x size`` (bilinear with antialiasing
    when shrinking, as PIL does), rounded back to uint8. Done once per resolution, not per
    batch. Raises :class:`InvalidConfigError` for a size below 1.
    """
    if size < 1:
        raise InvalidConfigError(f"A resolution must be at least 1 pixel, got {size}.")
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], 4096):  # bounded float memory
        chunk = images[start : start + 4096].float()
        scaled = F.interpolate(
            chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        out[start : start + 4096] = scaled.round_().clamp_(0, 255).to(torch.uint8)
    return out


@dataclass(frozen=True)
class Augment:
    """The CIFAR training pipeline on a uint8 batch: random crop with ``padding``, random
    horizontal flip, normalisation with ``mean``/``std``, then cutout of side ``cutout``.

    Example:
        >>> aug = Augment(padding=4, cutout=8, mean=(0.5,) * 3, std=(0.25,) * 3)
        >>> batch = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
        >>> out = aug(batch, torch.Generator().manual_seed(0))
        >>> out.shape, out.dtype
        (torch.Size([5, 3, 32, 32]), torch.float32)
    """

    padding: int = 4
    flip: bool = True
    cutout: int = 0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = random_crop(batch, self.padding, generator)
        if self.flip:
            x = random_flip(x, generator)
        x = normalize(x, self.mean, self.std)
        return cutout(x, self.cutout, generator)

    def eval(self, batch: torch.Tensor) -> torch.Tensor:
        """The evaluation transform: normalisation only."""
        return normalize(batch, self.mean, self.std)
