"""Pre-training, InstaTune fine-tuning, training alone, perplexity and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.errors import InvalidConfigError
from nasforge.lm import corpus as corpus_module
from nasforge.lm.corpus import ByteCorpus, load_corpus
from nasforge.lm.train import (
    TrainSettings,
    finetune_supernet,
    perplexity,
    train_alone,
    train_largest,
)
from nasforge.ops.super_lm import SuperLM
from nasforge.spaces.llm import LLMSpace
from nasforge.testing.models import TINY_LLM
from nasforge.train.trainer import seeded


@pytest.fixture(scope="module")
def text(tmp_path_factory: pytest.TempPathFactory) -> ByteCorpus:
    path = tmp_path_factory.mktemp("text") / "poem.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 60)
    return load_corpus(path)


def _supernet() -> SuperLM:
    with seeded(0):
        return SuperLM(LLMSpace(**TINY_LLM))


def test_perplexity_of_uniform_predictions_is_the_vocabulary(text: ByteCorpus) -> None:
    space = LLMSpace(**TINY_LLM)
    lm = space.build(space.smallest())
    with torch.no_grad():
        lm.head.fc.weight.zero_()
        lm.head.fc.bias.zero_()
    assert perplexity(lm, text, max_windows=5) == pytest.approx(256.0, rel=1e-6)
    with pytest.raises(InvalidConfigError, match="position embedding"):
        perplexity(lm, text, seq_len=17)


def test_pretraining_then_finetuning_trains_the_sub_networks(text: ByteCorpus) -> None:
    net = _supernet()
    before = perplexity(net, text, max_windows=8)
    log = train_largest(net, text, TrainSettings(steps=40, batch_size=8, lr=3e-3, warmup=4))
    assert len(log.losses) == 40 and np.mean(log.losses[-5:]) < np.mean(log.losses[:5])
    assert net.active == net.largest() and not net.training
    largest = perplexity(net, text, max_windows=8)
    assert largest < before / 4
    net.set_active(net.smallest())
    smallest_before = perplexity(net, text, max_windows=8)
    finetune_supernet(
        net, text, TrainSettings(steps=30, batch_size=8, lr=3e-3, warmup=2), sampled=2
    )
    net.set_active(net.smallest())
    assert perplexity(net, text, max_windows=8) < smallest_before
    net.set_active(net.largest())
    assert perplexity(net, text, max_windows=8) < 2 * largest


def test_resume_takes_the_steps_an_uninterrupted_run_takes(
    text: ByteCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = TrainSettings(steps=6, batch_size=4, warmup=1)
    whole = _supernet()
    finetune_supernet(whole, text, settings, out=tmp_path / "whole.pt", checkpoint_every=2)

    original = ByteCorpus.batch
    calls = {"n": 0}

    def failing(self: ByteCorpus, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(corpus_module.ByteCorpus, "batch", failing)
    with pytest.raises(KeyboardInterrupt):
        finetune_supernet(_supernet(), text, settings, out=tmp_path / "cut.pt", checkpoint_every=2)
    monkeypatch.setattr(corpus_module.ByteCorpus, "batch", original)
    resumed = _supernet()
    log = finetune_supernet(resumed, text, settings, out=tmp_path / "cut.pt", checkpoint_every=2)
    assert log.resumed_from == 4 and len(log.losses) == 6
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(InvalidConfigError, match="another run"):
        finetune_supernet(_supernet(), text, TrainSettings(steps=7), out=tmp_path / "cut.pt")


def test_train_alone_and_bad_settings(text: ByteCorpus) -> None:
    space = LLMSpace(**TINY_LLM)
    with seeded(1):
        lm = space.build(space.smallest())
    before = perplexity(lm, text, max_windows=8)
    train_alone(lm, text, TrainSettings(steps=20, batch_size=8, warmup=2))
    assert perplexity(lm, text, max_windows=8) < before
    with pytest.raises(InvalidConfigError, match="position embedding"):
        train_alone(lm, text, TrainSettings(steps=1, seq_len=32))
    with pytest.raises(InvalidConfigError, match="batch_size"):
        TrainSettings(batch_size=0)
    with pytest.raises(InvalidConfigError, match="sampled"):
        finetune_supernet(_supernet(), text, sampled=-1)
