"""DASS on a tiny sparse supernet and synthetic images: the sparsity-aware objective, the
recorded epochs, resume and bad input (nasforge.oneshot.dass)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from nasforge import oneshot
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.oneshot.dass import DASS
from nasforge.ops.sparse import masked_layers, prune_magnitude, sparsity_of
from nasforge.spaces.dass import DassSpace
from nasforge.testing.contracts import HashEvaluator
from nasforge.train import SyntheticImages
from nasforge.trial import TrialState

TINY = SupernetSettings(channels=2, cells=5, batch_size=16)


@pytest.fixture(scope="module")
def data() -> Any:
    return SyntheticImages(num_classes=3, n_train=32, n_test=4, size=8).load()


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
        epochs=2,
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


def test_search_records_epochs_and_reaches_the_target_sparsity(whole: Any) -> None:
    method, result, _ = whole
    trials = result.study.trials
    assert [t.metrics["epoch"] for t in trials] == [0.0, 1.0]
    assert all(t.state is TrialState.COMPLETE and t.arch.space == "dass" for t in trials)
    assert method.prune_epoch(2) == 1 and method.pruned  # the second epoch fine-tunes
    # the architecture is trained on the network projected onto the target sparsity
    assert all(t.metrics["sparsity"] == pytest.approx(0.75, abs=2e-3) for t in trials)
    assert "admm_gap" in trials[0].metrics and "admm_gap" not in trials[1].metrics
    # after the hard pruning every cell layer of the supernet is at the target
    supernet = method._state.supernet  # type: ignore[union-attr]
    layers = masked_layers(supernet)
    assert layers and all(m.sparsity == 0.75 for _, m in layers)
    for _, layer in layers:
        assert int((layer.weight == 0).sum()) >= round(0.75 * layer.weight.numel())
    derived = method.extract()
    assert sparsity_of(derived) == pytest.approx(0.75, abs=2e-3)
    assert derived(torch.zeros(2, 3, 8, 8)).shape == (2, 3)
    net = prune_magnitude(DassSpace().build(result.arch, channels=2, layers=5), 0.75)
    assert sparsity_of(net) == pytest.approx(0.75, abs=2e-3)


def test_admm_pulls_the_weights_towards_the_sparse_set(data: Any) -> None:
    """The ADMM penalty's gradient rho (W - Z + U) reaches the weights in a weight step."""
    method = DASS(sparsity=0.9, rho=1.0, lr=0.1, grad_clip=0.0, weight_decay=0.0, momentum=0.0)
    space = DassSpace()
    search_data = _engine.SearchData.from_splits(data, TINY, 0)
    with _engine.seeded(0):
        net = method.build_network(space, TINY, search_data)
    state = _engine.SearchState(
        supernet=net,
        data=search_data,
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        rng=__import__("numpy").random.default_rng(0),
        epochs=2,
        space=space,
    )
    method.setup(state)
    _, layer = method._admm[0]
    x, y = next(iter(search_data.batches("train", state.generator, state.device)))
    before = layer.weight.detach().clone()
    z = method._z[0]
    method.w_optimizer.zero_grad()
    method.forward(state, x).sum().mul(0).backward()  # only the penalty's gradient
    assert torch.allclose(layer.weight.grad, before - z)
    method.rho = 0.0
    method.w_optimizer.zero_grad()
    method.forward(state, x).sum().mul(0).backward()
    assert torch.count_nonzero(layer.weight.grad) == 0
    del y


@pytest.mark.slow
def test_resume_continues_from_the_same_state(whole: Any, data: Any, tmp_path: Path) -> None:
    _, result, folder = whole
    with pytest.raises(KeyboardInterrupt):
        _search(DASS(sparsity=0.75), data, tmp_path, stop_after=1)
    resumed = _search(DASS(sparsity=0.75), data, tmp_path)
    assert resumed.resumed_from == 1
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in result.study.trials]
    a = _engine.load_checkpoint(folder / "oneshot.pt")
    b = _engine.load_checkpoint(tmp_path / "oneshot.pt")
    for key, tensor in a["supernet"].items():
        assert torch.equal(tensor, b["supernet"][key]), key
    for name in ("alphas", "z", "u"):
        for x, y in zip(a["method_state"][name], b["method_state"][name], strict=True):
            assert torch.equal(x, y), name


def test_bad_input_is_refused_clearly(data: Any) -> None:
    for bad in (0.6, 1.0, -0.5):
        with pytest.raises(InvalidConfigError, match=r"0\.5, 0\.75, 0\.9"):
            oneshot.create("dass", sparsity=bad)
    with pytest.raises(InvalidConfigError, match="not 0"):
        oneshot.create("dass", sparsity=0.0)
    with pytest.raises(InvalidConfigError, match="prune_at"):
        oneshot.create("dass", prune_at=1.5)
    with pytest.raises(UnsupportedOperationError, match=r"space 'darts' has none.*'dass'"):
        oneshot.search(
            "dass", data, space="darts", settings=TINY, epochs=1, evaluator=HashEvaluator()
        )
    with pytest.raises(UnsupportedOperationError, match="space 'nb201' has none"):
        oneshot.search("dass", data, space="nb201", settings=TINY, epochs=1)
