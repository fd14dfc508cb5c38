"""Augmentation: shapes and dtypes, what each transform does, reproducible from a generator."""

from __future__ import annotations

import torch

from nasforge.train.augment import Augment, cutout, normalize, random_crop, random_flip, resize


def _batch(n: int = 6, size: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def test_crop_is_a_shifted_window_of_the_padded_image() -> None:
    x = _batch()
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        windows = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert torch.equal(random_crop(x, 0, torch.Generator()), x)


def test_flip_mirrors_some_images_and_keeps_the_others() -> None:
    x = _batch(n=32)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(out[i], x[i].flip(2)) for i in range(32)]
    kept = [torch.equal(out[i], x[i]) for i in range(32)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 4 < sum(flipped) < 28


def test_cutout_blanks_a_square_of_at_most_length_squared_pixels() -> None:
    x = torch.ones((16, 3, 8, 8))
    out = cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert zeros.max() == 16 and zeros.min() >= 4  # a corner square is clipped, never empty
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)  # the same square on every channel
    assert torch.equal(cutout(x, 0, torch.Generator()), x)


def test_normalize_and_pipeline() -> None:
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    out = normalize(x, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert out.dtype == torch.float32 and torch.allclose(out, torch.full_like(out, 2.0))
    aug = Augment(padding=2, cutout=3, mean=(0.5,) * 3, std=(0.25,) * 3)
    a = aug(_batch(), torch.Generator().manual_seed(7))
    b = aug(_batch(), torch.Generator().manual_seed(7))
    c = aug(_batch(), torch.Generator().manual_seed(8))
    assert a.shape == (6, 3, 8, 8) and torch.equal(a, b) and not torch.equal(a, c)
    assert aug.eval(_batch()).shape == (6, 3, 8, 8)


def test_resize_keeps_uint8_and_means() -> None:
    x = _batch(n=3, size=16)
    small = resize(x, 8)
    assert small.shape == (3, 3, 8, 8) and small.dtype == torch.uint8
    assert abs(small.float().mean() - x.float().mean()) < 2
    assert resize(x, 16) is x
