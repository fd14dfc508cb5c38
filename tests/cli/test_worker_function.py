"""nasforge worker on a user's Dataset and training function, named by import path from the
current folder: two worker processes on one SQLite study, and Ray tasks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import nasforge
from nasforge.cli import main
from nasforge.trial import TrialState

#: A user's project: a model with choices, a Dataset of (input, target) items, a training
#: function that reports each epoch's validation accuracy, and the same data for the
#: training evaluator.
PROJECT = '''
import torch
from torch import nn
from torch.utils.data import Dataset

import nasforge.nn as nnf
from nasforge.reporting import TrialStopped
from nasforge.train import UserData


class Net(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        width = nnf.ValueChoice([2, 8], label="width")
        self.hidden = nnf.Linear(4, width)
        self.act = nnf.LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act")
        self.head = nnf.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.act(self.hidden(x)))


class Blobs(Dataset):
    """Three classes of points around the corners of a simplex."""

    def __init__(self, n=90):
        g = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % 3
        self.x = torch.randn(n, 4, generator=g) * 0.5 + nn.functional.one_hot(self.y, 4) * 2.0

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


DATA = UserData(Blobs(), valid_fraction=0.3)


def train(model, context):
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    x, y = DATA.train.inputs, DATA.train.targets
    for epoch in range(1, 4):
        for start in range(0, len(y), 16):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[start:start + 16]), y[start:start + 16]).backward()
            opt.step()
        with torch.no_grad():
            out = model(DATA.valid.inputs)
        acc = 100.0 * float((out.argmax(1) == DATA.valid.targets).float().mean())
        context.report(acc, step=epoch)
        if context.should_stop():
            raise TrialStopped()
    return {"valid_acc": acc}
'''


@pytest.fixture
def project(tmp_path):
    """The user's folder (not on the import path: the command adds the current folder)."""
    name = f"byo_h3_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PROJECT))
    return tmp_path, name


def _worker(folder, name, url, *extra):
    args = [
        sys.executable, "-m", "nasforge", "worker", "--storage", url, "--study", "byo",
        "--strategy", "random", "--space", f"{name}:Net", "--evaluator", "function",
        "--fn", f"{name}:train", "--trials", "8", "--quiet", *extra,
    ]  # fmt: skip
    paths = [p for p in sys.path if p]  # nasforge itself; the user's module comes from cwd
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(args, cwd=folder, env=env, stderr=subprocess.PIPE, text=True)


def test_two_worker_processes_finish_a_study_of_a_users_function(project, monkeypatch):
    folder, name = project
    url = f"sqlite:///{folder / 'byo.db'}"
    procs = [_worker(folder, name, url, "--stopping", "median") for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    monkeypatch.syspath_prepend(str(folder))  # to rebuild the user's space here
    study = nasforge.load_study("byo", url)
    assert study.n_finished == 8 and len(study.trials) == 8
    assert len({t.worker for t in study.trials}) == 2  # both worked
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.STOPPED}
    assert TrialState.COMPLETE in {t.state for t in study.trials}
    assert study.space.name == f"{name}:Net"
    spec = study.record.evaluator
    assert (spec["name"], spec["fn"], spec["pass_model"]) == ("function", f"{name}:train", True)
    reports = study.storage.get_reports(study.record.study_id)
    evaluated = [t for t in study.trials if t.duplicate_of is None]
    assert all(reports[t.number] for t in evaluated)  # each trial's epochs, seen by both


def test_fn_is_refused_with_another_evaluator_and_required_by_function(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    base = ["worker", "--storage", url, "--study", "x", "--strategy", "random", "--trials", "2"]
    with pytest.raises(SystemExit) as info:
        main([*base, "--fn", "a.b:c"])
    assert info.value.code == 2 and "add --evaluator function" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([*base, "--evaluator", "function"])
    assert info.value.code == 2 and "needs --fn package.module:function" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([*base, "--evaluator", "function", "--fn", "no_such_h3_module:train"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Cannot import module 'no_such_h3_module'" in err
    assert not (tmp_path / "x.db").exists()  # refused before anything was written


def test_the_training_evaluator_on_a_users_data_by_import_path(project, monkeypatch, capsys):
    folder, name = project
    monkeypatch.chdir(folder)
    url = f"sqlite:///{folder / 't.db'}"
    recipe = '{"epochs": 2, "batch_size": 16, "lr": 0.2, "weight_decay": 0.0}'
    with pytest.raises(SystemExit) as info:
        main(["worker", "--storage", url, "--study", "t", "--strategy", "random", "--space",
              f"{name}:Net", "--evaluator", "train", "--evaluator-param", f"data={name}:DATA",
              "--evaluator-param", f"recipe={recipe}", "--evaluator-param", "threads=1",
              "--trials", "3", "--quiet"])  # fmt: skip
    assert info.value.code == 0, capsys.readouterr().err
    study = nasforge.load_study("t", url)
    assert study.n_finished == 3
    assert all(0 <= t.metrics["valid_acc"] <= 100 for t in study.trials)
    assert study.record.evaluator["data"] == f"{name}:DATA"
    with pytest.raises(SystemExit) as info:  # nasforge search --data takes the import path too
        main(["search", "--space", f"{name}:Net", "--strategy", "random", "--evaluator", "train",
              "--data", f"{name}:DATA", "--epochs", "1", "--batch-size", "16", "--trials", "2",
              "--threads", "1", "--quiet"])  # fmt: skip
    assert info.value.code in (0, None), capsys.readouterr().err
    assert "valid_acc" in capsys.readouterr().out


@pytest.mark.slow
def test_ray_tasks_run_a_users_function(project, monkeypatch):
    pytest.importorskip("ray")
    folder, name = project
    url = f"sqlite:///{folder / 'ray.db'}"
    proc = _worker(folder, name, url, "--executor", "ray", "--workers", "2")
    _, err = proc.communicate(timeout=400)
    if proc.returncode != 0 and "ray" in err.lower() and not (folder / "ray.db").exists():
        pytest.skip(f"Ray could not start here: {err.strip().splitlines()[-1]}")
    assert proc.returncode == 0, err
    monkeypatch.syspath_prepend(str(folder))
    study = nasforge.load_study("byo", url)
    assert study.n_finished == 8
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
