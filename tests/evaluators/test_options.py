"""The training evaluator from command-line options."""

from __future__ import annotations

import pytest

from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.evaluators.options import scale_keys, training_evaluator
from nasforge.spaces import create


def test_options_map_onto_the_evaluator_and_the_recipe(tmp_path) -> None:
    ev = training_evaluator(space="darts", dataset="synthetic", seed=4, cells=5, channels=8,
                            recipe="darts", warmup=2.0, lr=None, threads=1)  # fmt: skip
    assert (ev.channels, ev.depth, ev.seed, ev.threads) == (8, 5, 4, 1)
    assert ev.recipe.warmup_epochs == 2.0 and ev.recipe.lr == 0.025  # None changes nothing
    assert scale_keys(create("darts")) == ("channels", "layers")
    assert scale_keys(create("nb201")) == ("channels", "cells_per_stage")


def test_bad_options_are_refused() -> None:
    with pytest.raises(InvalidConfigError, match="needs --data PATH"):
        training_evaluator(space="nb201", dataset="cifar10", seed=0)
    with pytest.raises(InvalidConfigError, match="not used with --dataset synthetic"):
        training_evaluator(space="nb201", dataset="synthetic", seed=0, data="x")
    with pytest.raises(InvalidConfigError, match="Unknown recipe option"):
        training_evaluator(space="nb201", dataset="synthetic", seed=0, momentum=0.8)
    with pytest.raises(UnknownNameError):
        training_evaluator(space="nb201", dataset="synthetic", seed=0, recipe="resnet")
