"""The training evaluator on a user's Dataset / DataLoader / tensors with a user loss and
metric, its per-epoch reports (both data paths) and its spec by import path."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nasforge
from nasforge import evaluators, spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.evaluators.training import TrainingEvaluator
from nasforge.reporting import TrialContext
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.train import DatasetError, UserData
from nasforge.trial import Direction, TrialState

RECIPE = {"epochs": 3, "batch_size": 16, "lr": 0.1, "weight_decay": 0.0}


class Mlp(SearchSpace):
    """Hidden width and depth of an MLP on 4 features: a user's own space."""

    name = "h3-mlp"

    def decisions(self):
        return (Decision("width", (4, 16)), Decision("depth", (1, 2)))

    def from_choices(self, choices):
        choices = self.check_choices(choices)
        return Architecture(self.name, choices, "-".join(map(str, choices)))

    def parse(self, text):
        return self.from_choices([int(c) for c in text.split("-")])

    def build(self, arch, num_classes=1):
        width = (4, 16)[arch.choices[0]]
        layers: list[nn.Module] = [nn.Linear(4, width), nn.ReLU()]
        for _ in range(arch.choices[1]):
            layers += [nn.Linear(width, width), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(width, num_classes))


def _blobs(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 4, generator=g) * 0.4 + nn.functional.one_hot(y, 4).float() * 2
    return x, y


def _ev(data, **kw):
    return TrainingEvaluator(data, space=Mlp(), recipe=RECIPE, threads=1, **kw)


def test_a_dataset_a_loader_and_tensors_train_the_same():
    x, y = _blobs()
    arch = Mlp().from_choices((1, 0))
    results = [
        _ev(source).evaluate(arch)
        for source in ((x, y), TensorDataset(x, y), DataLoader(TensorDataset(x, y), batch_size=9))
    ]
    assert results[0].metrics == results[1].metrics == results[2].metrics
    metrics = results[0].metrics
    assert set(metrics) == {"valid_acc", "train_loss", "epochs", "params_M"}
    assert metrics["valid_acc"] >= 90.0 and metrics["epochs"] == 3.0
    assert metrics["params_M"] == pytest.approx(sum(
        p.numel() for p in Mlp().build(arch, num_classes=3).parameters()) / 1e6)  # fmt: skip
    ev = _ev((x, y))
    assert (ev.dataset, ev.space, ev.fidelity_keys) == (
        "user",
        "h3-mlp",
        ("epochs", "data_fraction"),
    )
    assert ev.num_classes() == 3


def test_user_loss_metric_and_test_split():
    x, y = _blobs()
    calls = []

    def loss(out, target):
        calls.append(1)
        return nn.functional.cross_entropy(out, target)

    def errors(out, target):
        return float((out.argmax(1) != target).sum())

    data = UserData((x, y), test=(x[:30], y[:30]))
    ev = _ev(data, loss=loss, metric=errors, metric_direction="min")
    assert ev.metrics["valid_errors"] is Direction.MINIMIZE and "test_errors" in ev.metrics
    result = ev.evaluate(Mlp().from_choices((1, 1)), {"epochs": 2})
    assert calls and result.metrics["valid_errors"] < 12 and result.metrics["epochs"] == 2.0
    assert "test_errors" in result.metrics
    mse = _ev(data, metric="mse")
    assert mse.metrics["valid_mse"] is Direction.MINIMIZE


def test_regression_with_the_default_loss():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(100, 4, generator=g)
    ev = _ev((x, x.sum(1)), metric="mse")  # no num_classes: one output
    result = ev.evaluate(Mlp().from_choices((1, 0)), {"epochs": 1})
    assert ev.num_classes() == 0 and result.metrics["valid_mse"] >= 0


def test_each_epoch_is_reported_and_the_last_is_the_result():
    x, y = _blobs()
    arch = Mlp().from_choices((0, 1))
    ev = _ev((x, y))
    progress = []
    ev.add_epoch_callback(lambda arch, report: progress.append(report.epoch))
    context = TrialContext(0, arch, metric="valid_acc")
    result = ev.evaluate(arch, None, context)
    assert sorted(context.reports) == [1, 2, 3] and context.max_step == 3
    assert progress == [0, 1, 2, 3]
    assert context.reports[3]["valid_acc"] == result.metrics["valid_acc"]
    assert ev.evaluate(arch).metrics == result.metrics  # reporting changes nothing


def test_image_training_reports_each_epoch_without_changing_its_result():
    ev = TrainingEvaluator(dataset="synthetic", synthetic={"n_train": 80, "n_test": 20, "size": 8},
        recipe={"epochs": 2, "batch_size": 20, "lr": 0.05}, channels=4, cells_per_stage=1,
        threads=1, hardware=False)  # fmt: skip
    arch = spaces.create("nb201").from_index(6111)
    plain = ev.evaluate(arch)
    context = TrialContext(0, arch, metric="valid_acc")
    reported = ev.evaluate(arch, None, context)
    assert reported.metrics == plain.metrics
    assert sorted(context.reports) == [1, 2]
    assert context.reports[2]["valid_acc"] == plain.metrics["valid_acc"]


def test_a_study_with_a_stopping_rule_stops_trainings():
    x, y = _blobs()
    ev = _ev((x, y), epochs=4)
    study = nasforge.create_study(
        space=Mlp(), strategy="random", seed=0, evaluator=ev, stopping="median",
        stopping_params={"min_trials": 1},
    )  # fmt: skip
    study.optimize(ev, n_trials=6)
    states = [t.state for t in study.trials]
    assert TrialState.COMPLETE in states
    for trial in study.trials:
        if trial.state is TrialState.STOPPED:
            assert trial.metrics["epochs"] < 4 and trial.cost > 0


USER_MODULE = """
import torch
from torch.utils.data import TensorDataset

g = torch.Generator().manual_seed(0)
y = torch.arange(90) % 3
x = torch.randn(90, 4, generator=g) + torch.nn.functional.one_hot(y, 4).float() * 2
data = TensorDataset(x, y)


def make():
    return TensorDataset(x, y)


def loss(out, target):
    return torch.nn.functional.cross_entropy(out, target)


def hits(out, target):
    return float((out.argmax(1) == target).sum())
"""


def test_spec_names_the_data_loss_and_metric_by_import_path(tmp_path, monkeypatch):
    name = f"h3_user_data_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    ev = evaluators.create("train", data=f"{name}:make", space="nb201", recipe=RECIPE,
        loss=f"{name}:loss", metric=f"{name}:hits", channels=4, cells_per_stage=1,
        threads=1, hardware=False, build={})  # fmt: skip
    spec = ev.spec()
    assert spec["data"] == f"{name}:make" and spec["dataset"] == "user"
    assert (spec["loss"], spec["metric"]) == (f"{name}:loss", f"{name}:hits")
    assert "resolution" not in spec and "synthetic" not in spec
    params = dict(spec)
    again = evaluators.create(params.pop("name"), **params)
    assert again.spec() == spec and again.metrics == ev.metrics
    # objects that cannot be imported by name leave no spec
    assert _ev(_blobs()).spec() is None


def test_bad_input():
    x, y = _blobs()
    with pytest.raises(InvalidConfigError, match="apply to your own data"):
        TrainingEvaluator(dataset="synthetic", metric="mse")
    with pytest.raises(InvalidConfigError, match="apply to image data sets"):
        _ev((x, y), resolution=16)
    with pytest.raises(InvalidConfigError, match="dataset='user' needs data="):
        TrainingEvaluator(dataset="user", space=Mlp())
    with pytest.raises(UnknownNameError, match="user"):
        TrainingEvaluator(dataset="mnist")
    with pytest.raises(InvalidConfigError, match="Unknown metric 'f1'"):
        _ev((x, y), metric="f1")
    with pytest.raises(InvalidConfigError, match="built in"):
        _ev((x, y), metric="mse", metric_direction="max")
    with pytest.raises(DatasetError, match="Item 0 of the training data is a Tensor"):
        _ev([x[0], x[1], x[2]])
