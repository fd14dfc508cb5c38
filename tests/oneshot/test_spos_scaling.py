"""SPOS scales its evolution's image counts to the search data and logs every phase."""

from __future__ import annotations

import logging

import pytest

from nasforge import oneshot
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.oneshot.spos import EVAL_SHARE, RECAL_SHARE, SPOS
from nasforge.train import SyntheticImages

SETTINGS = SupernetSettings(channels=4, cells=1, batch_size=16)


@pytest.fixture(scope="module")
def data():
    return SyntheticImages(num_classes=4, n_train=400, n_test=4, size=8).load()


class _Halves:
    """Stand-in search data of given half sizes (what image_counts reads)."""

    def __init__(self, train: int, valid: int, batch_size: int = 64) -> None:
        self.train, self.valid, self.batch_size = range(train), range(valid), batch_size


class _State:
    def __init__(self, train: int, valid: int, batch_size: int = 64) -> None:
        self.data = _Halves(train, valid, batch_size)


def test_default_image_counts_are_shares_of_the_halves():
    spos = SPOS()
    assert spos.image_counts(_State(25000, 25000)) == (2048, 10000)  # the former defaults
    assert spos.image_counts(_State(1250, 1250)) == (103, 500)  # --data-fraction 0.05
    assert spos.image_counts(_State(40, 30)) == (40, 30)  # at least a batch, at most the half
    assert RECAL_SHARE * 25000 == 2048 and EVAL_SHARE * 25000 == 10000


def test_given_image_counts_are_kept():
    spos = SPOS(recal_images=700, eval_images=900)
    assert spos.image_counts(_State(25000, 25000)) == (700, 900)
    assert spos.image_counts(_State(1250, 600)) == (700, 600)  # capped by the half
    assert spos.params()["recal_images"] == 700 and SPOS().params()["eval_images"] is None


def test_scaled_scores_use_the_counted_images(data, monkeypatch):
    """estimate() reads exactly image_counts() images of each half."""
    asked: list[tuple[str, int]] = []
    fixed = _engine.SearchData.fixed

    def spy(self, split, count, device):
        asked.append((split, count))
        return fixed(self, split, count, device)

    monkeypatch.setattr(_engine.SearchData, "fixed", spy)
    result = oneshot.search(
        "spos",
        data,
        settings=SETTINGS,
        epochs=1,
        device="cpu",
        params={"population": 2, "generations": 1, "top_k": 1},
    )
    halves = _engine.SearchData.from_splits(data, SETTINGS, 0)
    expected = SPOS().image_counts(_State(len(halves.train), len(halves.valid), 16))
    assert asked and set(asked) == {("train", expected[0]), ("valid", expected[1])}
    assert result.study.trials[0].metrics["candidates"] == 2


def test_every_epoch_and_generation_is_logged(data, caplog):
    caplog.set_level(logging.INFO, logger="nasforge")
    oneshot.search(
        "spos",
        data,
        settings=SETTINGS,
        epochs=2,
        device="cpu",
        params={"population": 2, "generations": 2, "top_k": 1},
    )
    text = [r.getMessage() for r in caplog.records]
    assert any(
        "training the supernet for 2 epochs" in t and "then 2 search rounds" in t for t in text
    )
    for line in ("spos epoch 1/2 done", "spos epoch 2/2 done", "spos search round 2/2 done"):
        assert any(t.startswith(line) for t in text), (line, text)
    generations = [t for t in text if t.startswith("SPOS generation")]
    assert [g.split(":")[0] for g in generations] == ["SPOS generation 1/2", "SPOS generation 2/2"]
    assert all("validation images" in g for g in generations)
