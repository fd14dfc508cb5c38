"""Export: PyTorch round trip (same outputs), ONNX round trip (when installed), untrained
exports of tabular studies, and clear errors for missing or mismatching weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import nasforge
from nasforge import evaluators
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.export import export_trial, load, load_record, save
from nasforge.train import CheckpointMismatchError, Recipe

HAS_ONNX = bool(importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime"))


@pytest.fixture(scope="module")
def trained_study(tmp_path_factory: pytest.TempPathFactory) -> nasforge.Study:
    folder = tmp_path_factory.mktemp("study")
    ev = evaluators.create(
        "train",
        dataset="synthetic",
        synthetic={"num_classes": 3, "n_train": 48, "n_test": 12, "size": 8},
        recipe=Recipe(epochs=1, batch_size=24),
        channels=4,
        cells_per_stage=1,
        threads=1,
        device="cpu",
        hardware=False,
        checkpoint_dir=folder / "ckpt",
    )
    study = nasforge.create_study(
        strategy="random",
        seed=0,
        storage=f"sqlite:///{folder / 's.db'}",
        study_name="s",
        evaluator=ev,
    )
    return study.optimize(ev, n_trials=2)


def _batch(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn((3, *shape), generator=torch.Generator().manual_seed(0))


def test_pytorch_round_trip_gives_the_same_outputs(
    trained_study: nasforge.Study, tmp_path: Path
) -> None:
    result = export_trial(trained_study, tmp_path / "best.pt")
    assert result.trained and result.note is None and result.path == tmp_path / "best.pt"
    assert result.trial == trained_study.best_trial.number
    record = load_record(result.path)
    assert record.arch == trained_study.best_trial.arch.text and record.space == "nb201"
    assert record.build == {"num_classes": 3, "channels": 4, "cells_per_stage": 1}
    assert record.input_shape == (3, 8, 8) and record.classes == ("class0", "class1", "class2")
    # the raw file is a plain dictionary that torch.load reads with weights_only=True
    raw = torch.load(result.path, weights_only=True)
    assert raw["format"] == "nasforge-model" and isinstance(raw["state_dict"], dict)
    module = load(result.path)
    ckpt = evaluators.create(
        "train", **{k: v for k, v in trained_study.record.evaluator.items() if k != "name"}
    )
    path = ckpt.checkpoint_path(trained_study.best_trial.arch)
    reference = load(path)
    x = _batch(record.input_shape)
    with torch.no_grad():
        assert torch.equal(module(x), reference(x))
    # a folder gets model.pt and model.json
    folder = export_trial(trained_study, tmp_path / "out", trial=0).path
    assert folder == tmp_path / "out" / "model.pt" and (folder.parent / "model.json").is_file()
    assert load(tmp_path / "out").training is False


def test_mismatching_weights_name_the_keys(trained_study: nasforge.Study, tmp_path: Path) -> None:
    record = load_record(export_trial(trained_study, tmp_path / "a.pt").path)
    state = dict(record.state_dict or {})
    state.pop("classifier.bias")
    state["classifier.weight"] = torch.zeros(5, 7)
    state["extra.weight"] = torch.zeros(1)
    from dataclasses import replace

    save(replace(record, state_dict=state), tmp_path / "bad.pt")
    with pytest.raises(
        CheckpointMismatchError,
        match=r"missing keys \[classifier.bias\]; "
        r"unexpected keys \[extra.weight\]; shape mismatches "
        r"\[classifier.weight \(checkpoint \(5, 7\), network \(3, 16\)\)\]",
    ):
        load(tmp_path / "bad.pt")
    save(replace(record, build={**record.build, "channels": 8}), tmp_path / "wide.pt")
    with pytest.raises(CheckpointMismatchError, match="shape mismatches"):
        load(tmp_path / "wide.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InvalidConfigError, match="Cannot read"):
        load(tmp_path / "junk.pt")


def test_tabular_study_exports_a_seeded_untrained_network(tmp_path: Path) -> None:
    study = nasforge.create_study(seed=0)
    study.optimize(evaluators.create("tabular", dataset="cifar100"), n_trials=3)
    first = export_trial(study, tmp_path / "a.pt")
    second = export_trial(study, tmp_path / "b.pt")
    assert not first.trained and "untrained" in (first.note or "")
    a, b = load_record(first.path), load_record(second.path)
    assert a.build == {"num_classes": 100} and a.input_shape == (3, 32, 32)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)  # type: ignore[index]
    assert "metrics" in a.info and a.info["trial"] == study.best_trial.number


def test_missing_weights_and_bad_requests(trained_study: nasforge.Study, tmp_path: Path) -> None:
    spec = dict(trained_study.record.evaluator)
    spec.pop("name")
    ckpt = evaluators.create("train", **spec)
    path = ckpt.checkpoint_path(trained_study.trials[1].arch)
    moved = path.with_suffix(".moved")
    path.rename(moved)
    try:
        with pytest.raises(
            InvalidConfigError, match=r"Trial 1 .* no saved weights: its checkpoint"
        ):
            export_trial(trained_study, tmp_path / "x.pt", trial=1)
        result = export_trial(trained_study, tmp_path / "x.pt", trial=1, untrained=True)
        assert not result.trained and "freshly initialised" in (result.note or "")
    finally:
        moved.rename(path)
    with pytest.raises(InvalidConfigError, match=r"trials 0\.\.1, not 7"):
        export_trial(trained_study, tmp_path / "y.pt", trial=7)
    with pytest.raises(UnknownNameError, match="onnx"):
        export_trial(trained_study, tmp_path / "y.pt", format="keras")


@pytest.mark.skipif(not HAS_ONNX, reason="onnx/onnxruntime not installed (extra [onnx])")
def test_onnx_round_trip(trained_study: nasforge.Study, tmp_path: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort

    result = export_trial(trained_study, tmp_path / "m.onnx", format="onnx")
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["space"] == "nb201" and props["arch"] == result.arch
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    x = _batch((3, 8, 8))
    (got,) = session.run(None, {"input": x.numpy()})  # a batch of 3: the batch axis is dynamic
    with torch.no_grad():
        expected = load_record_module(tmp_path, trained_study)(x).numpy()
    assert np.max(np.abs(got - expected)) <= 1e-4


def load_record_module(tmp_path: Path, study: nasforge.Study) -> torch.nn.Module:
    return load(export_trial(study, tmp_path / "ref.pt").path)


def test_onnx_without_the_extra_names_it(
    trained_study: nasforge.Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_onnx(name: str, *args: object, **kwargs: object) -> object:
        if name in ("onnx", "onnxruntime"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    monkeypatch.delitem(__import__("sys").modules, "onnx", raising=False)
    from nasforge.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match=r"pip install 'nasforge\[onnx\]'"):
        export_trial(trained_study, tmp_path / "m.onnx", format="onnx")
