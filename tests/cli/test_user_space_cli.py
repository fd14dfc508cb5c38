"""``nasforge search`` and ``nasforge worker`` on a define-by-run space of the user's own,
named ``--space my_module:function`` from the folder the command runs in."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_testing import assert_usage_error, invoke, search_json, sqlite

import nasforge
from nasforge.trial import TrialState

_COUNT = itertools.count()

SPACE = """
from torch import nn


def space(trial):
    depth = trial.integer("depth", 1, 3)
    layers, channels = [], 3
    for i in range(depth):
        width = trial.choice(f"width{i}", [4, 8, 16])
        if trial.boolean(f"wide_kernel{i}"):
            layers += [nn.Conv2d(channels, width, 5, padding=2)]
        else:
            layers += [nn.Conv2d(channels, width, 3, padding=1)]
        layers.append(nn.ReLU())
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 2))
"""

SCORE = """
def score(model, context):
    params = sum(p.numel() for p in model.parameters())
    context.report(params / 1000, step=1)
    return {"valid_acc": -abs(params - 2000) / 100}
"""


@pytest.fixture
def user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The user's modules in the current folder, which is not on the import path: NAME.py
    with the space, NAME_score.py with the function evaluator's function; NAME (unique)."""
    name = f"cli_space_{os.getpid()}_{next(_COUNT)}"
    (tmp_path / f"{name}.py").write_text(SPACE)
    (tmp_path / f"{name}_score.py").write_text(SCORE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    return name


def test_search_and_worker_take_a_define_by_run_space_from_the_current_folder(
    tmp_path: Path, user_folder: str
) -> None:
    url = sqlite(tmp_path)
    args = ["--space", f"{user_folder}:space", "--strategy", "regularized-evolution"]
    evaluator = ["--evaluator", "function", "--evaluator-param", f"fn={user_folder}_score:score"]
    out = search_json(*args, *evaluator, "--trials", "6", "--storage", url, "--study", "mine")
    assert out["space"] == f"{user_folder}:space"
    space = nasforge.spaces.create(f"{user_folder}:space")
    best = space.parse(out["best"]["arch"])
    assert out["best"]["metrics"]["valid_acc"] == pytest.approx(
        -abs(sum(p.numel() for p in space.build(best).parameters()) - 2000) / 100
    )
    worked = invoke("worker", "--storage", url, "--study", "mine", "--trials", "10", "--json")
    assert worked.exit_code == 0, worked.stderr
    assert json.loads(worked.stdout)["study_finished"] == 10
    study = nasforge.load_study("mine", url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 10
    assert all(space.parse(t.arch.text) == t.arch for t in study.trials)


def test_the_first_worker_creates_the_study_of_a_user_space(
    tmp_path: Path, user_folder: str
) -> None:
    url = sqlite(tmp_path, "worker.db")
    worked = invoke(
        "worker", "--storage", url, "--study", "first", "--strategy", "bananas",
        "--param", "n_initial=2", "--space", f"{user_folder}:space", "--evaluator", "function",
        "--evaluator-param", f"fn={user_folder}_score:score", "--trials", "4", "--json",
    )  # fmt: skip
    assert worked.exit_code == 0, worked.stderr
    study = nasforge.load_study("first", url)
    assert study.space.name == f"{user_folder}:space" and len(study.trials) == 4


def test_the_command_imports_the_space_from_the_current_folder(
    tmp_path: Path, user_folder: str
) -> None:
    out = search_json(
        "--space", f"{user_folder}:space", "--strategy", "local-search",
        "--param", "n_initial=2", "--evaluator", "proxy", "--evaluator-param", "proxies=params",
        "--evaluator-param", "batch_size=2", "--objective", "params:max", "--trials", "5",
    )  # fmt: skip
    assert out["n_trials"] == 5
    space = nasforge.spaces.create(f"{user_folder}:space")
    assert space.parse(out["best"]["arch"]).space == f"{user_folder}:space"


def test_the_installed_command_imports_the_space_from_its_folder(
    tmp_path: Path, user_folder: str
) -> None:
    url = sqlite(tmp_path, "command.db")
    command = [
        sys.executable, "-c", "import sys; from nasforge.cli import main; main(sys.argv[1:])",
        "search", "--space", f"{user_folder}:space", "--strategy", "random",
        "--evaluator", "function", "--evaluator-param", f"fn={user_folder}_score:score",
        "--trials", "3", "--storage", url, "--study", "command", "--json",
    ]  # fmt: skip
    # python -c puts "" (the current folder) on the path; a script in a bin folder does not
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONSAFEPATH": "1"}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_trials"] == 3


def test_a_space_that_does_not_import_is_one_line(user_folder: str) -> None:
    assert_usage_error(
        invoke("search", "--space", "no_such_module_z:space", "--evaluator", "function",
               "--evaluator-param", f"fn={user_folder}_score:score", "--trials", "2"),
        "no module 'no_such_module_z'", "PYTHONPATH",
    )  # fmt: skip
    assert_usage_error(
        invoke("search", "--space", f"{user_folder}:spcae", "--evaluator", "function",
               "--evaluator-param", f"fn={user_folder}_score:score", "--trials", "2"),
        "has no attribute 'spcae'",
    )  # fmt: skip
