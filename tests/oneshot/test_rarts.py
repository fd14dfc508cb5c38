"""RARTS: the penalty pulls the two weight copies together, the architecture follows the
first-order gradient through both copies (no second derivative taken), derived
architectures belong to the space, and a search resumes exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from resume_testing import whole_and_resumed

from nasforge import oneshot, spaces
from nasforge.errors import InvalidConfigError
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.oneshot.rarts import RARTS
from nasforge.testing.contracts import HashEvaluator
from nasforge.train import SyntheticImages

TINY = SupernetSettings(channels=4, cells=1, batch_size=16)


@pytest.fixture(scope="module")
def data() -> Any:
    return SyntheticImages(num_classes=4, n_train=64, n_test=4, size=8).load()


@pytest.fixture(scope="module")
def small() -> Any:
    """32 images: one step of 16 on each half per epoch (searches stay quick)."""
    return SyntheticImages(num_classes=4, n_train=32, n_test=4, size=8).load()


def _state(method: RARTS, data: Any, space: str = "nb201") -> _engine.SearchState:
    search_data = _engine.SearchData.from_splits(data, TINY, 0)
    with _engine.seeded(0):
        net = _engine.build_supernet(space, TINY, data.num_classes)
    state = _engine.SearchState(
        supernet=net,
        data=search_data,
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        rng=np.random.default_rng(0),
        epochs=2,
        space=spaces.create(space),
    )
    with _engine.seeded(1):
        method.setup(state)
    return state


def _batch(state: _engine.SearchState) -> tuple[torch.Tensor, ...]:
    return next(iter(state.data.paired(state.generator, state.device)))


def test_the_copy_starts_at_w_and_its_step_adds_the_penalty_gradient(data):
    method = RARTS(penalty=4.0, momentum=0.0, weight_decay=0.0, grad_clip=0.0)
    state = _state(method, data)
    assert method.copy_distance(state) == 0.0
    with torch.no_grad():  # move w away from y, so the penalty has something to pull
        for p in state.supernet.parameters():
            p.add_(0.1)
    _, _, xv, yv = _batch(state)
    before = [p.detach().clone() for p in method.twin.parameters()]
    loss = torch.nn.functional.cross_entropy(method.twin_forward(state, xv, detach=True), yv)
    grads = torch.autograd.grad(loss, list(method.twin.parameters()), allow_unused=True)
    method.copy_step(state, xv, yv, 0, 0)
    lr = method.y_optimizer.param_groups[0]["lr"]
    for p, old, g, w in zip(
        method.twin.parameters(), before, grads, state.supernet.parameters(), strict=True
    ):
        g = torch.zeros_like(old) if g is None else g
        expected = old - lr * (g + 4.0 * (old - w.detach()))
        assert torch.allclose(p.detach(), expected, atol=1e-6)


def test_a_larger_penalty_keeps_the_copies_closer(data):
    distances = []
    for penalty in (0.0, 1.0, 20.0):
        method = RARTS(penalty=penalty)
        state = _state(method, data)
        for epoch in range(2):
            stats = method.train_epoch(state, epoch)
        assert stats["copy_distance"] == method.copy_distance(state) > 0
        distances.append(stats["copy_distance"])
    assert distances[0] > distances[1] > distances[2]


def test_alpha_follows_both_copies_by_first_derivatives_only(data, monkeypatch):
    method = RARTS(train_weight=0.5)
    state = _state(method, data)
    with torch.no_grad():  # two different copies, so both terms matter
        for p in method.twin.parameters():
            p.mul_(1.5)
    batch = _batch(state)
    xt, yt, xv, yv = batch
    ce = torch.nn.functional.cross_entropy
    g_val = torch.autograd.grad(ce(method.twin_forward(state, xv), yv), method.alphas)
    g_train = torch.autograd.grad(ce(method.forward(state, xt), yt), method.alphas)
    calls: list[bool] = []
    grad, backward = torch.autograd.grad, torch.autograd.backward

    def spy_grad(*args: Any, **kwargs: Any) -> Any:
        calls.append(bool(kwargs.get("create_graph", False)))
        return grad(*args, **kwargs)

    def spy_backward(*args: Any, **kwargs: Any) -> Any:
        calls.append(bool(kwargs.get("create_graph", False) or (len(args) > 3 and args[3])))
        return backward(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", spy_grad)
    monkeypatch.setattr(torch.autograd, "backward", spy_backward)
    method.relaxed_arch_step(state, batch, 0, 0)
    for a, v, t in zip(method.alphas, g_val, g_train, strict=True):
        assert torch.allclose(a.grad, v + 0.5 * t, atol=1e-6)
    method.train_epoch(state, 0)  # every kind of step, a whole epoch
    assert len(calls) > 3 and not any(calls)  # no graph of a gradient: no 2nd derivative


@pytest.mark.parametrize(
    "space", ["nb201", pytest.param("darts", marks=pytest.mark.slow)]
)  # the fast contract (tests/testing/test_contracts.py) runs it on every space too
def test_search_derives_architectures_of_the_space(small, space):
    settings = TINY if space == "nb201" else SupernetSettings(channels=4, cells=5, batch_size=16)
    result = oneshot.search(
        "rarts",
        small,
        space=space,
        settings=settings,
        epochs=1,
        device="cpu",
        evaluator=HashEvaluator(space),
    )
    (trial,) = result.study.trials
    the_space = spaces.create(space)
    assert the_space.parse(str(trial.arch)) == trial.arch
    assert trial.metrics["copy_distance"] > 0
    assert 0.0 <= trial.metrics["param_free_share"] <= 1.0


def test_resume_continues_bit_for_bit(small, tmp_path):
    whole, resumed, a, b = whole_and_resumed(
        "rarts",
        small,
        tmp_path,
        stop_after=1,
        settings=TINY,
        epochs=2,
        evaluator=HashEvaluator("nb201"),
    )
    assert resumed.resumed_from == 1
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in whole.study.trials]
    assert [t.metrics["copy_distance"] for t in resumed.study.trials] == [
        t.metrics["copy_distance"] for t in whole.study.trials
    ]
    a, b = a["method_state"], b["method_state"]
    for key, tensor in a["twin"].items():
        assert torch.equal(tensor, b["twin"][key]), key
    for x, y in zip(a["alphas"], b["alphas"], strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"penalty": -1.0}, "penalty must be a number >= 0"),
        ({"train_weight": "a"}, "train_weight"),
        ({"copy_lr": 0.0}, "copy_lr must be a positive number"),
    ],
)
def test_bad_hyperparameters_are_refused(params, match):
    with pytest.raises(InvalidConfigError, match=match):
        oneshot.create("rarts", **params)
