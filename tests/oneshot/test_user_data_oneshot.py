"""One-shot search on a user's own data: tensors of any shape split in halves and used as they
are, DARTS and SPOS on a sequence model written with nasforge.nn, and the default evaluator."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import nasforge.nn as nnf
from nasforge.errors import InvalidConfigError
from nasforge.evaluators.function import FunctionEvaluator
from nasforge.oneshot import SupernetSettings, search
from nasforge.oneshot._data import TensorSearchData, default_evaluator
from nasforge.spaces.module import ModuleSpace
from nasforge.train import UserData
from nasforge.trial import TrialState


class Seq(nn.Module):
    """A 1-D convolution over two-channel sequences: its kernel, width and activation are
    choices."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        width = nnf.ValueChoice([4, 8], label="width")
        kernel = nnf.ValueChoice([3, 5], label="kernel")
        self.conv = nnf.Conv1d(2, width, kernel, padding="same")
        self.act = nnf.LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")
        self.head = nnf.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv(x)).mean(-1))


def _sequences(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 1: a rising ramp in channel 0; class 0: noise only."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, 16, generator=g) * 0.5
    x[:, 0] += y[:, None] * torch.linspace(-1, 1, 16)
    return x, y


SPACE = ModuleSpace(Seq, name=f"{__name__}:Seq")
SETTINGS = SupernetSettings(batch_size=16)


def test_halves_are_disjoint_balanced_and_the_items_as_given():
    x, y = _sequences()
    data = UserData((x, y), valid_fraction=0.25)
    halves = TensorSearchData.from_user(data, SETTINGS, seed=0)
    assert (len(halves.train), len(halves.valid)) == (36, 36)
    assert torch.bincount(halves.valid.targets).tolist() == [18, 18]
    rows = [tuple(r.flatten().tolist()) for r in (*halves.train.inputs, *halves.valid.inputs)]
    source = {tuple(r.flatten().tolist()) for r in data.train.inputs}
    assert len(set(rows)) == 72 and set(rows) == source  # the training items, no augmentation
    assert halves.steps_per_epoch == 2 and halves.num_classes == 2
    batches = list(halves.batches("train", torch.Generator().manual_seed(0), torch.device("cpu")))
    assert len(batches) == 2 and batches[0][0].shape == (16, 2, 16)
    assert all(tuple(r.flatten().tolist()) in source for r in batches[0][0])
    fixed = halves.fixed("valid", 20, torch.device("cpu"))
    assert [len(b[1]) for b in fixed] == [16, 4]
    assert torch.equal(torch.cat([b[0] for b in fixed]), halves.valid.inputs[:20])
    again = TensorSearchData.from_user(data, SETTINGS, seed=0)
    assert torch.equal(again.train.inputs, halves.train.inputs)


@pytest.mark.parametrize("method", ["darts", "spos"])
def test_darts_and_spos_search_a_sequence_model(method):
    x, y = _sequences()
    scored = []

    def score(model, context):
        scored.append(model)
        return float(sum(p.numel() for p in model.parameters()))

    evaluator = FunctionEvaluator(score, metrics={"params": "min"})
    result = search(method, TensorDataset(x, y), space=SPACE, settings=SETTINGS, epochs=2,
        evaluator=evaluator, objectives=("params:min",), device="cpu", threads=1,
        params={"population": 4, "generations": 1} if method == "spos" else None)  # fmt: skip
    trials = result.study.trials
    epochs = [t.metrics["epoch"] for t in trials]
    assert epochs == ([0.0, 1.0] if method == "darts" else [2.0])  # SPOS: after its evolution
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert result.arch is not None and result.arch.space == SPACE.name
    assert all(isinstance(m, Seq) for m in scored)  # the derived plain networks


def test_default_evaluator_trains_each_derived_network_once():
    x, y = _sequences()
    data = UserData((x, y))
    evaluator = default_evaluator(SPACE, data, SETTINGS, threads=1)
    arch = SPACE.sample(__import__("numpy").random.default_rng(0))
    first = evaluator.evaluate(arch)
    second = evaluator.evaluate(arch)
    assert 0 <= first.metrics["valid_acc"] <= 100 and first.cost > 0
    assert second.metrics == first.metrics and second.cost == 0.0
    result = search("darts", data, space=SPACE, settings=SETTINGS, epochs=1, device="cpu",
                    threads=1)  # fmt: skip
    assert "valid_acc" in result.study.trials[0].metrics


def test_user_data_that_cannot_be_searched_is_refused_before_recording():
    x, y = _sequences()
    with pytest.raises(InvalidConfigError, match="regression"):
        search("darts", (x, y.float()), space=SPACE, settings=SETTINGS, epochs=1, device="cpu")
    with pytest.raises(InvalidConfigError, match="resolution=None"):
        search("darts", (x, y), space=SPACE, epochs=1, device="cpu",
               settings=SupernetSettings(batch_size=16, resolution=8))  # fmt: skip
    with pytest.raises(InvalidConfigError, match="too small for the split"):
        search("darts", (x[:30], y[:30]), space=SPACE, settings=SETTINGS, epochs=1, device="cpu")
