"""``nasforge search --strategy <one-shot method> --data PATH``."""

from __future__ import annotations

import json
import pickle

import numpy as np
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.train.data import CIFAR10_CLASSES


def _release(root):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, name in enumerate([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]):
        batch = {
            b"labels": [(k + i) % 10 for i in range(16)],
            b"data": rng.integers(0, 256, size=(16, 3072), dtype=np.uint8),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def test_search_routes_one_shot_methods_and_resumes(tmp_path):
    data = _release(tmp_path)
    args = [
        "search",
        "--strategy",
        "single-level-darts",
        "--data",
        str(data),
        "--epochs",
        "1",
        "--channels",
        "4",
        "--cells",
        "1",
        "--resolution",
        "8",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--storage",
        f"sqlite:///{tmp_path}/s.db",
        "--json",
        "-q",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["strategy"] == "single-level-darts" and summary["n_trials"] == 1
    assert summary["oneshot"]["epochs"] == 1 and summary["oneshot"]["checkpoint"].endswith(".pt")
    assert "test_acc" in summary["oneshot"]["final"]["metrics"]
    again = CliRunner().invoke(app, args)  # the same command finds the finished search
    assert again.exit_code == 0 and json.loads(again.stdout)["n_trials"] == 1


def test_one_shot_bad_input_is_one_line(tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["search", "--strategy", "gdas", "--budget", "5", "--data", "x"])
    assert out.exit_code == 2 and "--budget does not apply" in out.output
    out = runner.invoke(app, ["search", "--strategy", "gdas"])
    assert out.exit_code == 2 and "give --data PATH" in out.output
    out = runner.invoke(app, ["search", "--strategy", "dartz", "--data", "x"])
    assert out.exit_code == 2 and "Did you mean 'darts'" in out.output


def test_one_shot_search_scored_by_any_registered_evaluator(tmp_path):
    """A space without a table (here the DARTS space) is searched from the command line with
    another evaluator: the zero-cost ``proxy`` evaluator counts each derived cell's
    parameters."""
    data = _release(tmp_path)
    args = [
        "search",
        "--strategy",
        "darts",
        "--space",
        "darts",
        "--evaluator",
        "proxy",
        "--evaluator-param",
        "space=darts",
        "--evaluator-param",
        "proxies=params",
        "--evaluator-param",
        "batch_size=2",
        "--evaluator-param",
        'build={"channels": 2, "layers": 5, "auxiliary": false}',
        "--objective",
        "params:max",
        "--data",
        str(data),
        "--epochs",
        "1",
        "--channels",
        "4",
        "--cells",
        "5",
        "--resolution",
        "8",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--json",
        "-q",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["space"] == "darts" and summary["n_trials"] == 1
    assert summary["best"]["metrics"]["params"] > 0
