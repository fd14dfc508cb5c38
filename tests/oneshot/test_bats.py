"""BATS's search: the temperature of the softmax, the staged binarisation, recording and
resuming a search, and the refusal of a space without binary form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from nasforge import oneshot
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.evaluators.base import Evaluator
from nasforge.oneshot import SupernetSettings, _engine
from nasforge.oneshot.bats import BATS
from nasforge.oneshot.darts import DARTS
from nasforge.ops.binary import binary_layers
from nasforge.train import SyntheticImages
from nasforge.trial import Direction, Result

TINY = SupernetSettings(channels=4, cells=5, batch_size=16)


@pytest.fixture(scope="module")
def data():
    return SyntheticImages(num_classes=4, n_train=32, n_test=4, size=8).load()


class _ConvCount(Evaluator):
    """Scores a BATS cell by its number of convolutions (no training)."""

    space = "bats"

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch: Architecture, fidelity: Any = None) -> Result:
        return Result({"valid_acc": float(sum(op >= 3 for op in arch.choices[1::2]))})


def _state(method: Any, data: Any, epochs: int = 2) -> _engine.SearchState:
    from nasforge import spaces

    search_data = _engine.SearchData.from_splits(data, TINY, 0)
    with _engine.seeded(0):
        net = method.build_network(spaces.create("bats"), TINY, search_data)
    state = _engine.SearchState(
        supernet=net,
        data=search_data,
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        rng=np.random.default_rng(0),
        epochs=epochs,
        space=spaces.create("bats"),
    )
    method.setup(state)
    return state


def test_temperature_sharpens_the_softmax_as_defined(data):
    sharp, plain = BATS(temperature=0.2), BATS(temperature=1.0)
    state = _state(sharp, data)
    plain_state = _state(plain, data)
    darts = DARTS()
    darts.alphas = plain.alphas
    with torch.no_grad():
        for a in (*sharp.alphas, *plain.alphas):
            a.copy_(torch.randn(a.shape, generator=torch.Generator().manual_seed(1)))
    for alpha, weights in zip(sharp.alphas, sharp.op_weights(state), strict=True):
        assert torch.allclose(weights, torch.softmax(alpha / 0.2, dim=-1))
    # T = 1 is DARTS's softmax
    for ours, theirs in zip(
        plain.op_weights(plain_state), darts.op_weights(plain_state), strict=True
    ):
        assert torch.equal(ours, theirs)

    def entropy(w: torch.Tensor) -> torch.Tensor:
        return -(w * w.log()).sum(-1)

    for low, high in zip(sharp.op_weights(state), plain.op_weights(plain_state), strict=True):
        assert bool((entropy(low) < entropy(high)).all())
        assert torch.equal(low.argmax(-1), high.argmax(-1))  # same derived operations


def test_staged_schedule_binarises_the_weights_at_the_set_epoch(data):
    method = BATS(weights_from=0.5)
    assert [method.binarisation(e, 4) for e in range(4)] == [
        (True, False),
        (True, False),
        (True, True),
        (True, True),
    ]
    assert [BATS(staged=False).binarisation(e, 4) for e in range(4)] == [(True, True)] * 4
    assert BATS(weights_from=0.0).binarisation(0, 4) == (True, True)
    state = _state(method, data, epochs=2)
    layers = [layer for _, layer in binary_layers(state.supernet)]
    stats = method.train_epoch(state, 0)
    assert stats["binary_weights"] == 0.0
    assert all(m.binary_activations and not m.binary_weights for m in layers)
    stats = method.train_epoch(state, 1)
    assert stats["binary_weights"] == 1.0 and stats["temperature"] == 0.2
    assert all(m.binary_activations and m.binary_weights for m in layers)


def test_search_records_epochs_and_resumes_from_its_checkpoint(data, tmp_path):
    def run(folder, stop_after=None):
        folder.mkdir(exist_ok=True)

        def stop(study, trial):
            if stop_after is not None and len(study.trials) == stop_after:
                raise KeyboardInterrupt

        return oneshot.search(
            "bats",
            data,
            space="bats",
            settings=TINY,
            epochs=2,
            device="cpu",
            threads=1,
            evaluator=_ConvCount(),
            storage=f"sqlite:///{folder}/s.db",
            study_name="s",
            checkpoint_dir=folder,
            callbacks=[stop],
        )

    whole = run(tmp_path / "a")
    trials = whole.study.trials
    assert [t.metrics["epoch"] for t in trials] == [0.0, 1.0]
    assert [t.metrics["binary_weights"] for t in trials] == [0.0, 1.0]
    assert all(0.0 <= t.metrics["param_free_share"] <= 1.0 for t in trials)
    assert all(t.arch.space == "bats" for t in trials)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_after=1)
    resumed = run(tmp_path / "b")
    assert resumed.resumed_from == 1
    assert [t.arch for t in resumed.study.trials] == [t.arch for t in trials]
    a = _engine.load_checkpoint(tmp_path / "a" / "oneshot.pt")
    b = _engine.load_checkpoint(tmp_path / "b" / "oneshot.pt")
    for key, tensor in a["supernet"].items():
        assert torch.equal(tensor, b["supernet"][key]), key
    for x, y in zip(a["method_state"]["alphas"], b["method_state"]["alphas"], strict=True):
        assert torch.equal(x, y)


def test_space_without_binary_form_and_bad_settings_are_refused(data):
    with pytest.raises(UnsupportedOperationError, match=r"'nb201' has no binary form.*nor_conv"):
        oneshot.search(
            "bats",
            data,
            space="nb201",
            settings=SupernetSettings(channels=4, cells=1, batch_size=16),
            epochs=1,
            device="cpu",
        )
    with pytest.raises(InvalidConfigError, match="temperature must be positive"):
        oneshot.create("bats", temperature=0.0)
    with pytest.raises(InvalidConfigError, match="weights_from"):
        oneshot.create("bats", weights_from=1.5)


@pytest.mark.parametrize("method", ["darts", "gdas", "spos"])
def test_other_one_shot_methods_search_the_binary_supernet(data, method):
    params = {"population": 2, "generations": 1, "top_k": 1} if method == "spos" else {}
    if method == "spos":
        params.update(recal_images=16, eval_images=16)
    result = oneshot.search(
        method,
        data,
        space="bats",
        params=params,
        settings=TINY,
        epochs=1,
        device="cpu",
        threads=1,
        evaluator=_ConvCount(),
    )
    assert result.failed is None and result.arch is not None
    assert result.arch.space == "bats" and "group_conv" in str(result.arch)
