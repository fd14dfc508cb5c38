"""ModuleSpace: a user's model with nasforge.nn choices is a product space whose build is the
hand-written network of an architecture and whose supernet the one-shot methods train."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import nasforge
import nasforge.nn as nnf
from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.ops.module_supernet import ModuleSupernet
from nasforge.spaces.module import ModuleSpace
from nasforge.testing.models import ParamCount


def _block(width: object) -> nn.Module:
    return nn.Sequential(nnf.Conv2d(width, width, 3, padding=1), nnf.BatchNorm2d(width), nn.ReLU())


class Net(nn.Module):
    """The README's kind of model: a stem of chosen width and kernel, an operation choice, a
    repeated block and an input choice between the two last feature maps."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        width = nnf.ValueChoice([4, 8], label="width")
        kernel = nnf.ValueChoice([3, 5], label="kernel")
        self.stem = nn.Sequential(
            nnf.Conv2d(3, width, kernel, padding=kernel // 2), nnf.BatchNorm2d(width), nn.ReLU()
        )
        self.op = nnf.LayerChoice(
            {"conv": _block(width), "pool": nn.MaxPool2d(3, 1, 1), "skip": nn.Identity()},
            label="op",
        )
        self.blocks = nnf.Repeat(lambda i: _block(width), (1, 2), label="depth")
        self.pick = nnf.InputChoice(2, label="pick")
        self.head = nnf.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.op(self.stem(x))
        b = self.blocks(a)
        return self.head(self.pick([a, b]).mean((2, 3)))


class HandWritten(nn.Module):
    """Net at width=8, kernel=5, op=conv, depth=2, pick=1, written without choices."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.BatchNorm2d(8), nn.ReLU())
        self.op = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.Sequential(
            *[
                nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
                for _ in range(2)
            ]
        )
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.op(self.stem(x))).mean((2, 3)))


NAME = f"{__name__}:Net"


@pytest.fixture(scope="module")
def space() -> ModuleSpace:
    return ModuleSpace(Net, name=NAME)


def test_decisions_in_creation_order(space: ModuleSpace) -> None:
    assert [(d.name, d.options) for d in space.decisions()] == [
        ("width", (4, 8)),
        ("kernel", (3, 5)),
        ("op", ("conv", "pool", "skip")),
        ("depth", (1, 2)),
        ("pick", (0, 1)),
    ]
    assert space.size == 48


def test_the_space_contract_holds(space: ModuleSpace) -> None:
    from nasforge.testing.contracts import check_space

    check_space(space)


def test_text_round_trips_and_bad_text_is_named(space: ModuleSpace) -> None:
    rng = np.random.default_rng(0)
    for _ in range(10):
        arch = space.sample(rng)
        assert space.parse(str(arch)) == arch
    arch = space.parse("width=8,kernel=5,op=conv,depth=2,pick=1")
    assert arch.choices == (1, 1, 0, 1, 1)
    with pytest.raises(InvalidArchitectureError, match="width"):
        space.parse("width=6,kernel=5,op=conv,depth=2,pick=1")
    with pytest.raises(InvalidArchitectureError, match="colour"):
        space.parse("colour=1,width=8,kernel=5,op=conv,depth=2,pick=1")
    with pytest.raises(InvalidArchitectureError, match="pick"):
        space.parse("width=8,kernel=5,op=conv,depth=2")


def test_build_equals_the_hand_written_network(space: ModuleSpace) -> None:
    arch = space.parse("width=8,kernel=5,op=conv,depth=2,pick=1")
    built = space.build(arch)
    reference = HandWritten()
    own = {k: v.shape for k, v in built.state_dict().items()}
    assert own == {k: v.shape for k, v in reference.state_dict().items()}
    built.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 8, 8)
    built.eval()
    reference.eval()
    assert torch.equal(built(x), reference(x))
    small = space.build(space.parse("width=4,kernel=3,op=skip,depth=1,pick=0"), num_classes=5)
    assert isinstance(small.op, nn.Identity) and len(small.blocks) == 1
    assert small.head.out_features == 5 and small.stem[0].kernel_size == (3, 3)


def test_supernet_has_one_group_per_decision_and_mixes(space: ModuleSpace) -> None:
    supernet = space.supernet(num_classes=3)
    assert isinstance(supernet, ModuleSupernet)
    assert [(g.name, g.rows, g.options) for g in supernet.groups][2] == (
        "op",
        1,
        ("conv", "pool", "skip"),
    )
    x = torch.randn(4, 3, 8, 8)
    weights = [torch.softmax(torch.randn(1, len(g.options)), -1) for g in supernet.groups]
    assert supernet(x, weights).shape == (4, 3)
    arch = space.parse("width=4,kernel=3,op=pool,depth=2,pick=1")
    assert supernet.from_path(supernet.path(arch)) == arch
    assert supernet.derive([w.log() for w in weights]).space == NAME


def test_extract_inherits_the_weights_of_one_path(space: ModuleSpace) -> None:
    torch.manual_seed(0)
    supernet = space.supernet()
    x = torch.randn(4, 3, 8, 8)
    for text in ("width=4,kernel=3,op=conv,depth=2,pick=1", "width=8,kernel=5,op=pool,depth=1"):
        arch = space.parse(text + ("" if "pick" in text else ",pick=0"))
        net = space.build(arch)
        extracted = supernet.extract(arch)
        assert type(extracted) is type(net) and str(extracted) == str(net)
        assert torch.allclose(extracted(x), supernet(x, None, supernet.path(arch)), atol=1e-5)
        supernet.eval()
        extracted = supernet.extract(arch)
        assert not extracted.training
        assert torch.allclose(extracted(x), supernet(x, None, supernet.path(arch)), atol=1e-5)
        supernet.train()


def test_the_model_must_make_choices_and_the_same_ones() -> None:
    with pytest.raises(InvalidConfigError, match="no choice"):
        ModuleSpace(lambda: nn.Linear(2, 2), name="plain")
    with pytest.raises(InvalidConfigError, match="'w'"):
        ModuleSpace(
            lambda: nn.Sequential(
                nnf.Linear(2, nnf.ValueChoice([2, 4], label="w")),
                nnf.Linear(nnf.ValueChoice([2, 8], label="w"), 2),
            ),
            name="reused",
        )
    calls = []

    def drifting() -> nn.Module:
        calls.append(1)
        return nnf.LayerChoice([nn.ReLU()] * (len(calls) + 1), label=f"c{len(calls)}")

    drift = ModuleSpace(drifting, name="drift")
    with pytest.raises(InvalidConfigError, match="same choices"):
        drift.supernet()


@pytest.mark.parametrize("strategy", ["regularized-evolution", "bananas"])
def test_black_box_strategies_search_the_model(space: ModuleSpace, strategy: str) -> None:
    params = {"n_initial": 4, "n_candidates": 8, "epochs": 20} if strategy == "bananas" else {}
    study = nasforge.create_study(
        space=space, strategy=strategy, seed=0, strategy_params=params or None
    )
    study.optimize(ParamCount(space), n_trials=8)
    trials = study.trials
    assert len(trials) == 8 and all(t.arch.space == NAME for t in trials)
    assert study.best_trial.arch in {space.parse(str(t.arch)) for t in trials}
    assert study.best_trial.score == max(t.score for t in trials if t.score is not None)
