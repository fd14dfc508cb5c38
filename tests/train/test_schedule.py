"""The shared cosine schedule: SGDR's curve, and the one-shot methods' values bit for bit."""

from __future__ import annotations

import itertools
import math

import pytest

from nasforge.train import cosine_annealing


def test_runs_from_lr_to_min_lr_through_the_midpoint() -> None:
    assert cosine_annealing(0, 50, lr=0.025, min_lr=0.001) == 0.025
    assert cosine_annealing(25, 50, lr=0.025, min_lr=0.001) == pytest.approx(0.013)
    assert cosine_annealing(50, 50, lr=0.025, min_lr=0.001) == pytest.approx(0.001)
    values = [cosine_annealing(e, 50, lr=0.025, min_lr=0.001) for e in range(51)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_a_single_step_keeps_lr() -> None:
    assert cosine_annealing(0, 1, lr=0.3, min_lr=0.1) == 0.3
    assert cosine_annealing(0, 0, lr=0.3) == 0.3


def test_same_bits_as_the_one_shot_formula() -> None:
    """The arithmetic DARTS-style epochs used before the schedule was shared."""
    for epochs in range(2, 120):
        for epoch in range(epochs + 1):
            for lr, low in ((0.025, 0.001), (0.05, 0.0), (0.1, 1e-4)):
                expected = low + (lr - low) * (1 + math.cos(math.pi * epoch / epochs)) / 2
                assert cosine_annealing(epoch, epochs, lr=lr, min_lr=low) == expected
