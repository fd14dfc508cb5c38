"""The command line with real training: search --evaluator train, profile, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nasforge import cli

runner = CliRunner()
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


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args))


def assert_usage_error(result: Any, *fragments: str) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


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
        (["--trials", "0"], ["trials must be a positive number"]),
    ],
)
def test_search_training_errors_are_one_line(args: list[str], fragments: list[str]) -> None:
    assert_usage_error(invoke("search", *args), *fragments)


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


def test_profile_prints_costs_and_latency() -> None:
    result = invoke("profile", "6111", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["metrics"]["params_M"] == pytest.approx(1.073466)
    assert data["metrics"]["macs_M"] == pytest.approx(153.27296)
    assert data["latency"] == {}
    small = invoke(
        "profile",
        data["arch"],
        "--num-classes",
        "5",
        "--input-size",
        "16",
        "--channels",
        "4",
        "--cells",
        "1",
        "--latency",
        "--backend",
        "torch",
        "--runs",
        "2",
    )
    assert small.exit_code == 0, small.stderr
    assert "latency torch" in small.stdout and "3x16x16" in small.stdout
    darts = invoke(
        "profile",
        "darts-v2",
        "--space",
        "darts",
        "--dataset",
        "cifar100",
        "--channels",
        "8",
        "--cells",
        "5",
        "--json",
    )
    assert darts.exit_code == 0, darts.stderr
    assert json.loads(darts.stdout)["build"] == {
        "num_classes": 100,
        "channels": 8,
        "layers": 5,
        "auxiliary": False,
    }


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["|bad|"], ["Malformed NB201 cell string"]),
        (["20000"], ["out of range"]),
        (["1", "--dataset", "mnist"], ["Unknown dataset 'mnist'"]),
        (["1", "--dataset", "cifar10", "--num-classes", "3"], ["not both"]),
        (["6111", "--input-size", "1"], ["failed on inputs of shape (1, 3, 1, 1)", "too small"]),
        (["6111", "--latency", "--backend", "tensorrt", "--runs", "1"], ["latency backend"]),
    ],
)
def test_profile_errors(args: list[str], fragments: list[str]) -> None:
    assert_usage_error(invoke("profile", *args), *fragments)


def test_export_errors_and_tabular_note(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    assert invoke("search", "--budget", "5", "--storage", url, "--study", "tab").exit_code == 0
    result = invoke("export", "tab", "--storage", url, "--out", str(tmp_path / "m.pt"))
    assert result.exit_code == 0, result.stderr
    assert "untrained" in result.stdout and "note: study 'tab'" in result.stderr
    assert_usage_error(invoke("export", "tab", "--out", "x.pt"), "--storage URL")
    assert_usage_error(invoke("export", "tab", "--storage", url), "--out PATH")
    assert_usage_error(invoke("export", "nope", "--storage", url, "--out", "x.pt"), "study 'nope'")
    assert_usage_error(
        invoke("export", "tab", "--storage", url, "--out", "x.pt", "--format", "tflite"),
        "Unknown export format 'tflite'",
    )


def test_progress_bars_over_trials_and_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a terminal, a bar counts the trials and another the epochs of the running trial."""
    updates: list[dict[str, Any]] = []
    import rich.progress

    real_update = rich.progress.Progress.update

    def spy(self: Any, task_id: Any, **fields: Any) -> None:
        updates.append(fields)
        real_update(self, task_id, **fields)

    monkeypatch.setattr(cli, "_show_progress", lambda quiet: True)
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
