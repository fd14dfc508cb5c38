"""The one-shot methods search a user's model written with nasforge.nn choices, through the
supernet ModuleSpace derives from it (no supernet written by the user)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import nasforge.nn as nnf
from nasforge import oneshot
from nasforge.errors import UnsupportedOperationError
from nasforge.oneshot import SupernetSettings
from nasforge.spaces.module import ModuleSpace
from nasforge.testing.models import ParamCount
from nasforge.train import SyntheticImages


class Net(nn.Module):
    """A tiny CNN: a stem of chosen width and kernel, a pooling-or-skip choice (whose
    candidates take any share of the channels, so PC-DARTS can search it), a repeated block
    and a hidden layer of chosen width."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        width = nnf.ValueChoice([4, 8], label="width")
        kernel = nnf.ValueChoice([3, 5], label="kernel")
        self.stem = nn.Sequential(
            nnf.Conv2d(3, width, kernel, padding=kernel // 2), nnf.BatchNorm2d(width), nn.ReLU()
        )
        self.mix = nnf.LayerChoice(
            {"max": nn.MaxPool2d(3, 1, 1), "avg": nn.AvgPool2d(3, 1, 1), "skip": nn.Identity()},
            label="mix",
        )
        self.blocks = nnf.Repeat(
            lambda i: nn.Sequential(
                nnf.Conv2d(width, width, 3, padding=1), nnf.BatchNorm2d(width), nn.ReLU()
            ),
            (0, 2),
            label="depth",
        )
        hidden = nnf.ValueChoice([8, 16], label="hidden")
        self.head = nn.Sequential(
            nnf.Linear(width, hidden), nn.ReLU(), nnf.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.mix(self.stem(x))).mean((2, 3)))


class ConvChoice(nn.Module):
    """A layer choice between convolutions built for all the channels (no partial channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.op = nnf.LayerChoice(
            {"c3": nn.Conv2d(4, 4, 3, padding=1), "c1": nn.Conv2d(4, 4, 1)}, label="op"
        )
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op(self.stem(x)).mean((2, 3)))


PARAMS: dict[str, dict[str, Any]] = {
    "darts": {},
    "single-level-darts": {},
    "gdas": {},
    "pc-darts": {"k": 2, "warmup_epochs": 0},
    "spos": {"population": 4, "generations": 1, "top_k": 2},
}


@pytest.fixture(scope="module")
def data() -> Any:
    return SyntheticImages(num_classes=3, n_train=64, n_test=6, size=8).load()


@pytest.mark.parametrize("method", sorted(PARAMS))
def test_method_searches_a_user_model(method: str, data: Any) -> None:
    space = ModuleSpace(Net, name=f"{__name__}:Net")
    result = oneshot.search(
        method,
        data,
        space=space,
        params=PARAMS[method],
        settings=SupernetSettings(batch_size=16),
        epochs=1,
        seed=0,
        evaluator=ParamCount(space),
        device="cpu",
        threads=1,
    )
    trials = result.study.trials
    assert result.failed is None and trials
    assert all(t.arch.space == space.name and t.score is not None for t in trials)
    assert result.arch is not None and space.parse(str(result.arch)) == result.arch
    assert set(t.metrics["epoch"] for t in trials) == ({1.0} if method == "spos" else {0.0})
    net = space.build(result.arch)
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 3)


def test_darts_moves_the_architecture_weights_of_every_decision(data: Any) -> None:
    from nasforge.oneshot import _engine
    from nasforge.train.data import DataSplits

    space = ModuleSpace(Net, name=f"{__name__}:Net")
    method = oneshot.create("darts", arch_lr=0.01)
    settings = SupernetSettings(batch_size=16)
    assert isinstance(data, DataSplits)
    search_data = _engine.SearchData.from_splits(data, settings, 0)
    supernet = _engine.build_supernet(space, settings, 3)
    state = _engine.SearchState(
        supernet=supernet,
        data=search_data,
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        rng=__import__("numpy").random.default_rng(0),
        epochs=1,
        space=space,
    )
    method.setup(state)
    before = [a.detach().clone() for a in method.alphas]
    method.train_epoch(state, 0)
    moved = [bool((a.detach() != b).any()) for a, b in zip(method.alphas, before, strict=True)]
    assert [g.name for g in supernet.groups] == ["width", "kernel", "mix", "depth", "hidden"]
    assert all(moved)


def test_pc_darts_on_candidates_tied_to_the_width_names_the_choice(data: Any) -> None:
    space = ModuleSpace(ConvChoice, name=f"{__name__}:ConvChoice")
    with pytest.raises(UnsupportedOperationError, match="'op'"):
        oneshot.search(
            "pc-darts",
            data,
            space=space,
            params={"k": 2, "warmup_epochs": 0},
            settings=SupernetSettings(batch_size=16),
            epochs=1,
            evaluator=ParamCount(space),
            device="cpu",
            threads=1,
        )


@pytest.mark.parametrize("method", oneshot.names())
def test_every_method_runs_or_refuses_the_user_model_cleanly(method: str) -> None:
    from nasforge.testing.models import check_oneshot

    params = {"population": 4, "generations": 1} if method == "spos" else None
    check_oneshot(method, f"{__name__}:Net", params=params)
