"""Epoch callbacks of the training evaluator: progress without replacing a method."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from nasforge import evaluators, spaces
from nasforge.errors import InvalidConfigError
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.train import Recipe

CELL = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"


def tiny(**changes: Any) -> TrainingEvaluator:
    ev = evaluators.create(
        "train",
        dataset="synthetic",
        synthetic={"n_train": 64, "n_test": 16, "size": 8},
        recipe=Recipe(epochs=2, batch_size=32, lr=0.1),
        channels=4,
        cells_per_stage=1,
        threads=1,
        device="cpu",
        hardware=False,
        **changes,
    )
    assert isinstance(ev, TrainingEvaluator)
    return ev


def test_added_callbacks_run_after_on_epoch_in_order_and_can_be_removed() -> None:
    seen: list[tuple[str, int]] = []
    ev = tiny(on_epoch=lambda a, r: seen.append(("init", r.epoch)))

    def first(arch: Any, report: Any) -> None:
        seen.append(("first", report.epoch))

    def second(arch: Any, report: Any) -> None:
        seen.append(("second", report.epoch))

    ev.add_epoch_callback(first)
    ev.add_epoch_callback(second)
    arch = spaces.create("nb201").parse(CELL)
    ev.evaluate(arch, {"epochs": 1})
    assert seen == [(n, e) for e in (0, 1) for n in ("init", "first", "second")]
    ev.remove_epoch_callback(first)
    seen.clear()
    ev.evaluate(arch, {"epochs": 1})
    assert seen == [("init", 0), ("second", 0), ("init", 1), ("second", 1)]
    with pytest.raises(InvalidConfigError, match="add_epoch_callback"):
        ev.remove_epoch_callback(first)
    with pytest.raises(InvalidConfigError, match="callable"):
        ev.add_epoch_callback("progress")  # type: ignore[arg-type]


def test_callbacks_are_not_pickled_nor_part_of_the_spec() -> None:
    ev = tiny()
    spec = ev.spec()
    ev.add_epoch_callback(lambda a, r: None)
    assert ev.spec() == spec
    clone = pickle.loads(pickle.dumps(ev))
    assert clone._epoch_callbacks_now() == []
