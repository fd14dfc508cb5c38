"""One-shot methods on tiny supernets and synthetic data: gradients, sampling, derivation,
recording, resume and bad input."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch
from resume_testing import whole_and_resumed

from nasforge import oneshot
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.evaluators.base import Evaluator
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.oneshot.darts import DARTS
from nasforge.oneshot.gdas import gumbel_hard
from nasforge.train import SyntheticImages
from nasforge.trial import Direction, Result, TrialState

TINY = SupernetSettings(channels=4, cells=1, batch_size=16)


@pytest.fixture(scope="module")
def data():
    return SyntheticImages(num_classes=4, n_train=64, n_test=4, size=8).load()


def _state(method: Any, data: Any, space: str = "nb201", settings: SupernetSettings = TINY):
    from nasforge import spaces

    search_data = _engine.SearchData.from_splits(data, settings, 0)
    with _engine.seeded(0):
        net = _engine.build_supernet(space, settings, data.num_classes, method.partial_channels)
    state = _engine.SearchState(
        supernet=net,
        data=search_data,
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        rng=np.random.default_rng(0),
        epochs=2,
        space=spaces.create(space),
    )
    method.setup(state)
    return state


def _batch(state: Any) -> tuple[torch.Tensor, ...]:
    return next(iter(state.data.paired(state.generator, state.device)))


@pytest.mark.parametrize("order", [1, 2])
def test_darts_architecture_step_moves_only_alpha_and_weight_step_only_weights(data, order):
    method = DARTS(order=order)
    state = _state(method, data)
    weights = [p.detach().clone() for p in state.supernet.parameters()]
    alpha = method.alphas[0].detach().clone()
    xt, yt, xv, yv = _batch(state)
    if order == 1:
        method.arch_step(state, xv, yv, 0, 0)
    else:
        method.unrolled_arch_step(state, (xt, yt, xv, yv), 0, 0)
    grad = method.alphas[0].grad
    assert grad is not None and bool((grad != 0).all())  # every op of every edge
    assert not torch.equal(method.alphas[0].detach(), alpha)
    # the second-order virtual step is undone: weights are exactly as before
    assert all(
        torch.equal(a, b.detach())
        for a, b in zip(weights, state.supernet.parameters(), strict=True)
    )
    alpha = method.alphas[0].detach().clone()
    method.weight_step(state, xt, yt, 0, 0)
    assert torch.equal(method.alphas[0].detach(), alpha)
    assert any(
        not torch.equal(a, b.detach())
        for a, b in zip(weights, state.supernet.parameters(), strict=True)
    )


def test_gdas_forward_is_one_hot_and_gradient_reaches_every_alpha(data):
    alpha = torch.randn(6, 5, requires_grad=True)
    hard, index = gumbel_hard(alpha, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(hard.detach(), torch.nn.functional.one_hot(torch.tensor(index), 5).float())
    (hard * torch.arange(5.0)).sum().backward()
    assert bool((alpha.grad != 0).all())
    method = oneshot.create("gdas")
    state = _state(method, data)
    xt, _, _, _ = _batch(state)
    calls = []
    for edge in state.supernet.modules():
        if isinstance(edge, _engine.Supernet.__mro__[0].__class__) or not hasattr(edge, "ops"):
            continue
        for i, op in enumerate(edge.ops):
            op.register_forward_hook(lambda *_, i=i: calls.append(i))
    method.forward(state, xt)
    assert len(calls) == 18  # one operation per edge, 6 edges x 3 cells
    assert calls[:6] == method.last_index[0]
    assert method.temperature(0, 10) == 10.0 and math.isclose(method.temperature(9, 10), 0.1)


def test_pc_darts_builds_partial_edges_and_normalises_edges_per_node(data):
    method = oneshot.create("pc-darts", k=2, warmup_epochs=0)
    state = _state(method, data)
    assert state.supernet.partial_channels == 2
    edge_weights = method.edge_weights(state)[0]
    for edges in state.supernet.node_edges[0]:
        assert math.isclose(float(edge_weights[list(edges)].sum().detach()), 1.0, rel_tol=1e-6)
    _, _, xv, yv = _batch(state)
    method.arch_step(state, xv, yv, 0, 0)
    assert bool((method.alphas[1].grad[1:] != 0).all())  # beta of nodes with 2+ inputs


def test_derivation_takes_the_argmax_per_edge():
    net = _engine.build_supernet("nb201", TINY)
    w = torch.zeros(6, 5)
    picks = [3, 0, 1, 4, 2, 3]
    w[range(6), picks] = 1.0
    assert net.derive([w]).choices == tuple(picks)
    darts = _engine.build_supernet("darts", SupernetSettings(channels=4, cells=5))
    weights = []
    for _ in range(2):
        d = torch.full((14, 8), 0.1)
        d[:, 0] = 5.0  # none is never kept
        d[1, 4] = d[0, 5] = 1.0  # node 2: both inputs
        d[4, 6] = 0.9
        d[3, 3] = 0.8  # node 3: inputs 2 and 1
        weights.append(d)
    choices = darts.derive(weights).choices
    assert choices[:8] == (0, 4, 1, 3, 2, 5, 1, 2)  # ties: the lower input first


class _ParamsEvaluator(Evaluator):
    """Scores a DARTS architecture by how many separable convolutions it has."""

    space = "darts"

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch: Architecture, fidelity: Any = None) -> Result:
        return Result({"valid_acc": float(sum(op in (3, 4) for op in arch.choices[1::2]))})


def test_darts_space_search_records_each_epoch(data):
    settings = SupernetSettings(channels=4, cells=5, batch_size=32)
    params = {"population": 2, "generations": 2, "top_k": 1, "recal_images": 16, "eval_images": 16}
    result = oneshot.search(
        "spos",
        data,
        space="darts",
        settings=settings,
        epochs=1,
        device="cpu",
        evaluator=_ParamsEvaluator(),
        params=params,
    )
    trials = result.study.trials
    assert [t.metrics["epoch"] for t in trials] == [1.0, 2.0]  # the training epoch has none
    assert all(t.state is TrialState.COMPLETE and t.arch.space == "darts" for t in trials)
    assert trials[1].metrics["search_seconds"] > trials[0].metrics["search_seconds"]
    assert 0.0 <= trials[0].metrics["param_free_share"] <= 1.0


@pytest.mark.parametrize(
    ("name", "params", "epochs", "stop_after"),
    [
        ("darts", {}, 2, 1),
        (
            "spos",
            {"population": 2, "generations": 2, "top_k": 1, "recal_images": 16, "eval_images": 16},
            1,
            1,
        ),
        # stopped in the fine-tuning phase, after its optimiser was reset
        pytest.param("darts-pt", {"proj_intv": 1, "proj_images": 16}, 1, 3, marks=pytest.mark.slow),
    ],
)
def test_resume_continues_from_the_same_state(data, tmp_path, name, params, epochs, stop_after):
    whole, resumed, a, b = whole_and_resumed(
        name, data, tmp_path, stop_after=stop_after, params=params, settings=TINY, epochs=epochs
    )
    assert resumed.resumed_from >= 1
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in whole.study.trials]
    assert a["epoch"] == b["epoch"]
    for key, tensor in a["supernet"].items():
        assert torch.equal(tensor, b["supernet"][key]), key
    if "alphas" in a["method_state"]:
        for x, y in zip(a["method_state"]["alphas"], b["method_state"]["alphas"], strict=True):
            assert torch.equal(x, y)


def test_unknown_method_and_space_without_supernet(data):
    with pytest.raises(UnknownNameError, match="Did you mean 'darts'"):
        oneshot.search("dart", data, settings=TINY)
    with pytest.raises(UnknownNameError, match="Unknown search space 'mobilenet-v9'"):
        oneshot.search("darts", data, space="mobilenet-v9", settings=TINY)


def test_data_too_small_for_the_split():
    tiny = SyntheticImages(num_classes=2, n_train=20, n_test=2, size=8).load()
    with pytest.raises(InvalidConfigError, match=r"too small for the split.*20 training images"):
        oneshot.search("darts", tiny, settings=TINY)


class _Exploding(DARTS):
    def forward(self, state, x, detach=False):
        logits = super().forward(state, x, detach)
        return logits * math.nan if self._epoch >= 1 else logits

    def train_epoch(self, state, epoch):
        self._epoch = epoch
        return super().train_epoch(state, epoch)


def test_non_finite_loss_fails_the_epoch_and_keeps_the_checkpoint(data, tmp_path):
    result = _engine.search(
        _Exploding(),
        "darts",
        data,
        settings=TINY,
        epochs=3,
        device="cpu",
        checkpoint_dir=tmp_path,
    )
    trials = result.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAILED]
    assert "non-finite loss" in trials[1].fail_reason and "epoch 2" in trials[1].fail_reason
    assert result.failed is not None and result.epochs_done == 1
    assert _engine.load_checkpoint(tmp_path / "oneshot.pt")["epoch"] == 1


def test_fixed_evaluation_images_mix_the_classes_of_sorted_data():
    from nasforge.train.data import DataSplits, ImageData

    labels = torch.arange(4).repeat_interleave(32)  # sorted by class, as image folders are
    images = torch.zeros(128, 3, 8, 8, dtype=torch.uint8)
    part = ImageData(images, labels, ("a", "b", "c", "d"))
    splits = DataSplits("folder", part, part, (0.5,) * 3, (0.25,) * 3)
    search_data = _engine.SearchData.from_splits(splits, TINY, 0)
    seen = torch.cat([y for _, y in search_data.fixed("valid", 16, torch.device("cpu"))])
    assert len(set(seen.tolist())) >= 3
