"""SD-DARTS: the distillation term is zero at the first step and the KL divergence from
the earlier supernets' vote afterwards (checked by hand), at most ``teachers`` steps vote,
weight 0 is DARTS, derived architectures belong to the space, and a search resumes exactly."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import torch
from resume_testing import whole_and_resumed

from nasforge import oneshot, spaces
from nasforge.errors import InvalidConfigError
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.oneshot.darts import DARTS
from nasforge.oneshot.sd_darts import SDDARTS, distillation, vote
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


def _state(method: DARTS, data: Any) -> _engine.SearchState:
    search_data = _engine.SearchData.from_splits(data, TINY, 0)
    with _engine.seeded(0):
        net = _engine.build_supernet("nb201", TINY, data.num_classes)
    state = _engine.SearchState(
        supernet=net,
        data=search_data,
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        rng=np.random.default_rng(0),
        epochs=2,
        space=spaces.create("nb201"),
    )
    with _engine.seeded(1):
        method.setup(state)
    return state


def _batches(state: _engine.SearchState, n: int) -> list[tuple[torch.Tensor, ...]]:
    found: list[tuple[torch.Tensor, ...]] = []
    while len(found) < n:
        found.extend(state.data.paired(state.generator, state.device))
    return found[:n]


def test_vote_and_distillation_match_the_formulas():
    a, b = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.0, 2.0, 0.0]])
    p = vote([a, b], 2.0)
    by_hand = (torch.softmax(a / 2, -1) + torch.softmax(b / 2, -1)) / 2
    assert torch.allclose(p, by_hand) and math.isclose(float(p.sum()), 1.0, rel_tol=1e-6)
    student = torch.tensor([[0.5, -0.5, 0.0], [0.0, 0.0, 3.0]])
    teacher = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    q = torch.softmax(student / 2.0, -1)
    kl = sum(
        float(teacher[i, j]) * math.log(float(teacher[i, j]) / float(q[i, j]))
        for i in range(2)
        for j in range(3)
    )
    assert math.isclose(float(distillation(student, teacher, 2.0)), 4.0 * kl / 2, rel_tol=1e-5)
    assert float(distillation(student, torch.softmax(student / 2.0, -1), 2.0)) < 1e-6


def test_the_term_is_zero_first_then_the_kl_from_the_earlier_supernet(data):
    method = SDDARTS(teachers=1, distill_weight=0.7, temperature=2.0)
    state = _state(method, data)
    (x1, y1, _, _), (x2, y2, _, _) = _batches(state, 2)
    first = copy.deepcopy(state.supernet)  # the supernet of step 1, the teacher of step 2
    method.weight_step(state, x1, y1, 0, 0)
    assert method.last_distill == 0.0 and len(method.history) == 1
    weights = method.op_weights(state, detach=True)
    with torch.no_grad():
        teacher = first(x2, weights)
        student = state.supernet(x2, weights)
    p = torch.softmax(teacher / 2.0, -1)
    log_q = torch.log_softmax(student / 2.0, -1)
    by_hand = 0.7 * 4.0 * float((p * (p.log() - log_q)).sum(-1).mean())
    assert by_hand > 0
    with torch.no_grad():
        assert math.isclose(float(method.distill_term(state, x2, student)), by_hand, rel_tol=1e-5)
    method.weight_step(state, x2, y2, 0, 1)
    assert math.isclose(method.last_distill, by_hand, rel_tol=1e-5)


def test_at_most_the_last_k_steps_vote_with_their_own_alpha(data):
    method = SDDARTS(teachers=2)
    state = _state(method, data)
    snapshots = []
    for i, (xt, yt, xv, yv) in enumerate(_batches(state, 3)):
        method.arch_step(state, xv, yv, 0, i)  # alpha moves too: teachers keep their own
        snapshots.append([a.detach().clone() for a in method.alphas])
        method.weight_step(state, xt, yt, 0, i)
    assert len(method.history) == 2
    for kept, alphas in zip(method.history, snapshots[1:], strict=True):
        assert all(torch.equal(k, a) for k, a in zip(kept["alphas"], alphas, strict=True))
    assert len(method.teacher_logits(state, xt)) == 2


def test_without_the_term_it_is_darts(small):
    plain, quiet = DARTS(), SDDARTS(distill_weight=0.0)
    states = [_state(plain, small), _state(quiet, small)]
    for method, state in zip((plain, quiet), states, strict=True):
        method.train_epoch(state, 0)
    first, second = (s.supernet.parameters() for s in states)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(plain.alphas, quiet.alphas, strict=True))


@pytest.mark.parametrize(
    "space", ["nb201", pytest.param("darts", marks=pytest.mark.slow)]
)  # the fast contract (tests/testing/test_contracts.py) runs it on every space too
def test_search_derives_architectures_of_the_space(small, space):
    settings = TINY if space == "nb201" else SupernetSettings(channels=4, cells=5, batch_size=16)
    result = oneshot.search(
        "sd-darts",
        small,
        space=space,
        settings=settings,
        epochs=2,
        device="cpu",
        evaluator=HashEvaluator(space),
    )
    trials = result.study.trials
    the_space = spaces.create(space)
    assert all(the_space.parse(str(t.arch)) == t.arch for t in trials)
    # one step per epoch: the first has no earlier supernet, the second has
    assert [t.metrics["distill_loss"] > 0 for t in trials] == [False, True]


def test_resume_continues_bit_for_bit(small, tmp_path):
    whole, resumed, a, b = whole_and_resumed(
        "sd-darts",
        small,
        tmp_path,
        stop_after=2,
        settings=TINY,
        epochs=3,
        evaluator=HashEvaluator("nb201"),
    )
    assert resumed.resumed_from == 2
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in whole.study.trials]
    losses = [t.metrics["distill_loss"] for t in whole.study.trials]
    assert [t.metrics["distill_loss"] for t in resumed.study.trials] == losses
    for key, tensor in a["supernet"].items():
        assert torch.equal(tensor, b["supernet"][key]), key
    kept_a, kept_b = a["method_state"]["history"], b["method_state"]["history"]
    assert len(kept_a) == len(kept_b) == 2
    for x, y in zip(kept_a, kept_b, strict=True):
        assert all(torch.equal(v, y["weights"][k]) for k, v in x["weights"].items())


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"teachers": 0}, "teachers must be a positive integer"),
        ({"distill_weight": -0.5}, "distill_weight must be a number >= 0"),
        ({"temperature": 0}, "temperature must be a positive number"),
    ],
)
def test_bad_hyperparameters_are_refused(params, match):
    with pytest.raises(InvalidConfigError, match=match):
        oneshot.create("sd-darts", **params)
