"""DASS on a tiny sparse supernet and synthetic 8 px images: the three steps of its search
(pre-training, pruning of the scores, fine-tuning), the architecture trained on the sparse
network, the recorded epochs, resume and bad input (nasforge.oneshot.dass)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasforge import oneshot
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.oneshot.dass import DASS
from nasforge.ops.sparse import learn_scores, magnitude_mask, sparse_layers, sparsity_of
from nasforge.spaces.dass import DassSpace
from nasforge.testing.contracts import HashEvaluator
from nasforge.train import SyntheticImages
from nasforge.trial import TrialState

TINY = SupernetSettings(channels=2, cells=5, batch_size=8)


@pytest.fixture(scope="module")
def data() -> Any:
    return SyntheticImages(num_classes=3, n_train=16, n_test=4, size=8).load()


def _search(method: DASS, data: Any, folder: Path | None = None, stop_after: int | None = None):
    def stop(study: Any, trial: Any) -> None:
        if stop_after is not None and len(study.trials) == stop_after:
            raise KeyboardInterrupt

    return _engine.search(
        method,
        "dass",
        data,
        space="dass",
        settings=TINY,
        epochs=3,
        device="cpu",
        threads=1,
        evaluator=HashEvaluator("dass"),
        storage=None if folder is None else f"sqlite:///{folder}/s.db",
        study_name=None if folder is None else "s",
        checkpoint_dir=folder,
        callbacks=[stop],
    )


@pytest.fixture(scope="module")
def whole(data: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[DASS, Any, Path]:
    folder = tmp_path_factory.mktemp("whole")
    method = DASS(sparsity=0.75)
    return method, _search(method, data, folder), folder


def test_search_records_the_three_steps_and_ends_at_the_target(whole: Any) -> None:
    method, result, _ = whole
    trials = result.study.trials
    assert [t.metrics["epoch"] for t in trials] == [0.0, 1.0, 2.0]
    assert all(t.state is TrialState.COMPLETE and t.arch.space == "dass" for t in trials)
    assert [t.metrics["phase"] for t in trials] == [0.0, 1.0, 2.0]
    assert method.bounds(3) == (1, 2) and method.bounds(10) == (4, 6)
    assert trials[0].metrics["sparsity"] == 0.0  # pre-training is dense
    assert all(t.metrics["sparsity"] == pytest.approx(0.75, abs=1e-2) for t in trials[1:])
    supernet = method._state.supernet  # type: ignore[union-attr]
    for _, layer in sparse_layers(supernet):  # fine-tuned: pruned weights are zero
        assert layer.sparsity == 0.75 and not layer.scores.requires_grad
        assert int((layer.weight[~layer.mask] != 0).sum()) == 0
    derived = method.extract()
    assert sparsity_of(derived) == pytest.approx(0.75, abs=1e-2)
    assert derived(torch.zeros(2, 3, 8, 8)).shape == (2, 3)
    net = DassSpace().build(result.arch, channels=2, layers=5, sparsity=0.75)
    assert sparsity_of(net) == pytest.approx(0.75, abs=1e-2)


def _state(method: DASS, data: Any) -> Any:
    space = DassSpace()
    search_data = _engine.SearchData.from_splits(data, TINY, 0)
    with _engine.seeded(0):
        net = method.build_network(space, TINY, search_data)
    state = _engine.SearchState(
        supernet=net,
        data=search_data,
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        rng=np.random.default_rng(0),
        epochs=3,
        space=space,
    )
    method.setup(state)
    return state


def _snapshot(state: Any, method: DASS) -> dict[str, Any]:
    layers = sparse_layers(state.supernet)
    return {
        "weights": [m.weight.detach().clone() for _, m in layers],
        "scores": [m.scores.detach().clone() for _, m in layers],
        "masks": [m.mask.clone() for _, m in layers],
        "alphas": [a.detach().clone() for a in method.alphas],
    }


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_each_step_trains_what_the_method_says(data: Any) -> None:
    """Pre-training moves weights and alpha (dense); pruning starts from the magnitude masks
    of the pre-trained weights and moves scores and alpha, never the weights; fine-tuning
    moves weights and alpha under fixed masks."""
    method = DASS(sparsity=0.9, prune_lr=1.0)
    state = _state(method, data)
    start = _snapshot(state, method)
    method.train_epoch(state, 0)
    pre = _snapshot(state, method)
    assert method.phase == "pretrain" and not _same(pre["weights"], start["weights"])
    assert not _same(pre["alphas"], start["alphas"])
    assert all(bool(m.all()) for m in pre["masks"])

    method._enter(state, "prune")
    entered = _snapshot(state, method)
    assert all(
        torch.equal(m, magnitude_mask(w, 0.9))
        for m, w in zip(entered["masks"], pre["weights"], strict=True)
    )
    method.train_epoch(state, 1)
    pruned = _snapshot(state, method)
    assert _same(pruned["weights"], pre["weights"])  # the weights are frozen
    assert not _same(pruned["scores"], entered["scores"])
    assert not _same(pruned["masks"], entered["masks"])  # the scores chose other weights
    assert not _same(pruned["alphas"], pre["alphas"])

    method.train_epoch(state, 2)
    tuned = _snapshot(state, method)
    assert method.phase == "finetune" and _same(tuned["masks"], pruned["masks"])
    assert not _same(tuned["weights"], pruned["weights"])
    assert not _same(tuned["alphas"], pruned["alphas"])
    assert sparsity_of(state.supernet) == pytest.approx(0.9, abs=1e-2)


def test_the_architecture_step_sees_the_sparse_network(data: Any) -> None:
    """In the pruning and fine-tuning steps alpha's gradient is that of the network whose
    dropped weights are zero, not of the dense one."""
    method = DASS(sparsity=0.9)
    state = _state(method, data)
    method._enter(state, "prune")  # masks from the initial weights' magnitudes
    _, _, xv, yv = next(iter(state.data.paired(state.generator, state.device)))
    state.supernet.train(False)
    layers = [m for _, m in sparse_layers(state.supernet)]
    masks = [m.mask.clone() for m in layers]

    def alpha_grad() -> list[torch.Tensor]:
        loss = torch.nn.functional.cross_entropy(method.forward(state, xv), yv)
        return list(torch.autograd.grad(loss, method.alphas))

    sparse = alpha_grad()
    learn_scores(state.supernet, False)
    for layer in layers:
        layer.mask.fill_(True)
    assert not _same(alpha_grad(), sparse)  # the dense network ranks otherwise
    with torch.no_grad():
        for layer, mask in zip(layers, masks, strict=True):
            layer.weight.mul_(mask)  # the dense network with the dropped weights at zero
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(alpha_grad(), sparse, strict=True))


def test_resume_continues_from_the_same_state(whole: Any, data: Any, tmp_path: Path) -> None:
    _, result, folder = whole
    with pytest.raises(KeyboardInterrupt):
        _search(DASS(sparsity=0.75), data, tmp_path, stop_after=2)  # stops inside pruning
    resumed = _search(DASS(sparsity=0.75), data, tmp_path)
    assert resumed.resumed_from == 2
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in result.study.trials]
    a = _engine.load_checkpoint(folder / "oneshot.pt")
    b = _engine.load_checkpoint(tmp_path / "oneshot.pt")
    for key, tensor in a["supernet"].items():
        assert torch.equal(tensor, b["supernet"][key]), key
    for x, y in zip(a["method_state"]["alphas"], b["method_state"]["alphas"], strict=True):
        assert torch.equal(x, y)
    assert a["method_state"]["phase"] == b["method_state"]["phase"] == "finetune"


def test_bad_input_is_refused_clearly(data: Any) -> None:
    for bad in (0.6, 1.0, -0.5):
        with pytest.raises(InvalidConfigError, match=r"0\.5, 0\.75, 0\.9"):
            oneshot.create("dass", sparsity=bad)
    with pytest.raises(InvalidConfigError, match="not 0"):
        oneshot.create("dass", sparsity=0.0)
    for phases in ((0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.3, 0.3), (-0.1, 0.6, 0.5)):
        with pytest.raises(InvalidConfigError, match="phases"):
            oneshot.create("dass", phases=phases)
    with pytest.raises(InvalidConfigError, match="prune_lr"):
        oneshot.create("dass", prune_lr=0)
    with pytest.raises(UnsupportedOperationError, match=r"space 'darts' has none.*'dass'"):
        oneshot.search(
            "dass", data, space="darts", settings=TINY, epochs=1, evaluator=HashEvaluator()
        )
    with pytest.raises(UnsupportedOperationError, match="space 'nb201' has none"):
        oneshot.search("dass", data, space="nb201", settings=TINY, epochs=1)
