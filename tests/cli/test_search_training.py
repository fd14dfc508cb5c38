"""``nasforge search --evaluator train``: real training, resume, export, errors, progress bars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_testing import assert_usage_error, force_progress, invoke
from PIL import Image

TINY = (
    "--epochs",
    "1",
    "--channels",
    "4",
    "--cells",
    "1",
    "--resolution",
    "8",
    "--threads",
    "1",
    "--batch-size",
    "32",
    "--device",
    "cpu",
)


MOBILE = ("--evaluator", "train", "--dataset", "synthetic", "--trials", "1", "--space", "mobilenet")


def write_tree(root: Path, classes: tuple[str, ...], n: int = 4, size: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("test", 2)):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(25 * k, 20, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def test_search_with_training_on_an_image_folder(tmp_path: Path) -> None:
    classes = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    data = write_tree(tmp_path / "cifar", classes)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    args = (
        "search",
        "--evaluator",
        "train",
        "--data",
        str(data),
        "--trials",
        "2",
        "--strategy",
        "random",
        "--storage",
        url,
        *TINY,
    )
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["n_complete"] == 2 and summary["evaluator"] == "train"
    assert summary["study"] == "nb201-random-train-cifar10-seed0"
    assert summary["training"]["epochs"] == 1 and summary["training"]["channels"] == 4
    assert summary["cost_unit"] == "seconds" and summary["spent"] > 0
    checkpoints = tmp_path / "runs.db-checkpoints" / summary["study"]
    assert len(list(checkpoints.glob("*.pt"))) == 2
    # the same command resumes the stored study; a third trial is trained
    again = invoke(*args[: -len(TINY)], *TINY, "--trials", "3")
    assert again.exit_code == 0, again.stderr
    assert "3 (3 complete)" in again.stdout and "training" in again.stdout
    # export the best as PyTorch and as ONNX
    out = invoke("export", summary["study"], "--storage", url, "--out", str(tmp_path / "best.pt"))
    assert out.exit_code == 0, out.stderr
    assert "trained" in out.stdout and (tmp_path / "best.pt").is_file()
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (extra [onnx])")
    pytest.importorskip("onnx", reason="onnx not installed (extra [onnx])")
    onnx_out = invoke(
        "export",
        summary["study"],
        "--storage",
        url,
        "--format",
        "onnx",
        "--out",
        str(tmp_path / "x"),
        "--trial",
        "1",
        "--json",
    )
    assert onnx_out.exit_code == 0, onnx_out.stderr
    data_out = json.loads(onnx_out.stdout)
    assert data_out["path"].endswith("model.onnx") and data_out["max_abs_diff"] <= 1e-4


def test_search_synthetic_with_a_nan_trial_reports_the_failure(tmp_path: Path) -> None:
    result = invoke(
        "search",
        "--evaluator",
        "train",
        "--dataset",
        "synthetic",
        "--trials",
        "1",
        "--lr",
        "1e12",
        "--epochs",
        "3",
        *TINY[2:],
    )
    assert result.exit_code == 1
    assert "no trial completed; first failure: TrainingDivergedError" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--evaluator", "train", "--trials", "1"], ["needs --data PATH", "never downloads"]),
        (
            ["--evaluator", "train", "--data", "/nowhere", "--trials", "1"],
            ["No data at '/nowhere'"],
        ),
        (["--evaluator", "train", "--dataset", "synthetic"], ["--trials N", "--budget SECONDS"]),
        (["--epochs", "3"], ["--epochs applies to --evaluator train"]),
        (
            ["--evaluator", "train", "--dataset", "synthetic", "--trials", "1", "--fidelity", "12"],
            ["--fidelity looks up a tabular benchmark"],
        ),
        (["--evaluator", "trian"], ["Unknown evaluator 'trian'", "Did you mean 'train'?"]),
        (
            [
                "--evaluator",
                "train",
                "--dataset",
                "synthetic",
                "--trials",
                "1",
                "--optimizer",
                "adam",
            ],
            ["Unknown optimizer 'adam'"],
        ),
        (
            [
                "--evaluator",
                "train",
                "--dataset",
                "synthetic",
                "--trials",
                "1",
                "--space",
                "darts",
                "--cells",
                "3",
            ],
            ["layers=3 leaves stage(s)"],
        ),
        (["--trials", "0"], ["--trials must be from 1 to 1,000,000,000, got 0."]),
        (["--preset", "reduced"], ["--preset applies to --evaluator train"]),
        (["--build", "width_mult=0.5"], ["--build applies to --evaluator train"]),
        (
            [*MOBILE, "--preset", "tiny"],
            ["Unknown preset of space 'mobilenet' 'tiny'", "cifar, paper, reduced, search"],
        ),
        (
            [*MOBILE, "--channels", "8"],
            ["--channels is not a setting of space 'mobilenet'", "--preset, --build"],
        ),
        (
            [*MOBILE, "--build", "width_mult"],
            ["Malformed --build 'width_mult'", "--build width_mult=0.5"],
        ),
        ([*MOBILE, "--build", "depth=3"], ["'depth'", "width_mult"]),
        (
            ["--strategy", "darts", "--dataset", "synthetic", "--preset", "tiny"],
            ["has no 'tiny' preset", "'reduced'", "'search'"],
        ),
    ],
)
def test_search_training_errors_are_one_line(args: list[str], fragments: list[str]) -> None:
    assert_usage_error(invoke("search", *args), *fragments)


def test_search_trains_a_mobilenet_preset(tmp_path: Path) -> None:
    args = (
        "search",
        *MOBILE,
        "--strategy",
        "random",
        "--preset",
        "reduced",
        "--build",
        "width_mult=0.1",
        "--epochs",
        "1",
        "--eval-limit",
        "20",
        "--threads",
        "1",
        "--device",
        "cpu",
    )
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["n_complete"] == 1 and summary["space"] == "mobilenet"
    training = summary["training"]
    assert training["preset"] == "reduced" and training["build"] == {"width_mult": 0.1}
    assert training["resolution"] == 32 and training["data_fraction"] == 0.1
    text = invoke(*args)
    assert text.exit_code == 0, text.stderr
    assert "preset reduced, width_mult=0.1, 32px, 0.1 of the data" in text.stdout


def test_bad_data_layout_is_one_line(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", ("a", "b"))
    (root / "test" / "b").rename(root / "test" / "c")
    result = invoke(
        "search",
        "--evaluator",
        "train",
        "--dataset",
        "folder",
        "--data",
        str(root),
        "--trials",
        "1",
        *TINY,
    )
    assert_usage_error(result, "only in train/: b; only in test/: c")
    good = write_tree(tmp_path / "e", ("a", "b"))
    (good / "train" / "a" / "1.png").write_bytes(b"broken")
    result = invoke(
        "search",
        "--evaluator",
        "train",
        "--dataset",
        "folder",
        "--data",
        str(good),
        "--trials",
        "1",
        *TINY,
    )
    assert_usage_error(result, "Cannot decode image", "train/a/1.png")


def test_progress_bars_over_trials_and_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a terminal, a bar counts the trials and another the epochs of the running trial."""
    updates: list[dict[str, Any]] = []
    import rich.progress

    real_update = rich.progress.Progress.update

    def spy(self: Any, task_id: Any, **fields: Any) -> None:
        updates.append(fields)
        real_update(self, task_id, **fields)

    force_progress(monkeypatch)
    monkeypatch.setattr(rich.progress.Progress, "update", spy)
    result = invoke(
        "search",
        "--evaluator",
        "train",
        "--dataset",
        "synthetic",
        "--trials",
        "2",
        "--epochs",
        "2",
        *TINY[2:],
    )
    assert result.exit_code == 0, result.stderr
    epochs = [
        u["completed"]
        for u in updates
        if "completed" in u and "info" in u and str(u["info"]).startswith("loss")
    ]
    assert epochs == [1, 2, 1, 2]  # each trial's bar runs over its epochs
    assert sum(1 for u in updates if u.get("advance") == 1) == 2  # the trials bar
