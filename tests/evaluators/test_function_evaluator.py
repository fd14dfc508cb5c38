"""The 'function' evaluator: a user's fn(model_or_arch, context) as an evaluator, its reports,
its spec by import path, and the errors of a function that returns no objective metric."""

from __future__ import annotations

import logging
import textwrap

import pytest
import torch

import nasforge
from nasforge import evaluators, spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.evaluators.function import FunctionEvaluator
from nasforge.reporting import TrialContext, TrialStopped
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.trial import Direction, TrialState

ARCH = spaces.create("nb201").from_index(6111)

USER_MODULE = '''
import time

from nasforge.reporting import TrialStopped


def score(arch, context):
    """A made-up learning curve that rises towards the sum of the choices."""
    final = float(sum(arch.choices))
    for epoch in range(1, 5):
        context.report(final * epoch / 4, step=epoch)
        if context.should_stop():
            raise TrialStopped()
    return {"valid_acc": final, "size": float(len(arch.choices))}


def width(model, context):
    return sum(p.numel() for p in model.parameters()) / 1e6
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = f"h3_user_fns_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


class Widths(SearchSpace):
    """A space without networks."""

    name = "widths"

    def decisions(self):
        return (Decision("w", (16, 32)),)

    def from_choices(self, choices):
        choices = self.check_choices(choices)
        return Architecture(self.name, choices, "-".join(map(str, choices)))

    def parse(self, text):
        return self.from_choices([int(c) for c in text.split("-")])


def by_arch(arch, context):
    return {"valid_acc": float(sum(arch.choices)), "latency_ms": 1.0}


def test_function_of_the_architecture_with_reports():
    seen = []

    def fn(arch, context):
        seen.append((arch, context.number, context.fidelity))
        context.report({"valid_acc": 1.0}, step=1)
        return {"valid_acc": 2.0, "loss": 0.5}

    ev = FunctionEvaluator(fn, metrics={"valid_acc": "max", "loss": "min"}, pass_model=False)
    assert ev.metrics == {"valid_acc": Direction.MAXIMIZE, "loss": Direction.MINIMIZE}
    context = TrialContext(7, ARCH, {"epochs": 3})
    result = ev.evaluate(ARCH, {"epochs": 3}, context)
    assert result.metrics == {"valid_acc": 2.0, "loss": 0.5} and not result.stopped
    assert seen == [(ARCH, 7, {"epochs": 3})] and context.reports == {1: {"valid_acc": 1.0}}
    assert result.cost == result.seconds >= 0.0 and ev.cost_unit == "seconds"


def test_a_bare_number_is_the_first_metric_and_other_cost_units():
    ev = FunctionEvaluator(lambda arch, ctx: 3, metrics={"score": "max"}, pass_model=False)
    assert ev.evaluate(ARCH).metrics == {"score": 3.0}
    counted = FunctionEvaluator(
        lambda arch, ctx: {"score": 1.0, "cost": 4.0}, metrics={"score": "max"},
        pass_model=False, cost_unit="queries",
    )  # fmt: skip
    result = counted.evaluate(ARCH)
    assert (result.metrics, result.cost, counted.cost_unit) == ({"score": 1.0}, 4.0, "queries")


def test_the_model_is_built_by_the_architectures_space_with_seeded_weights():
    models = []

    def fn(model, context):
        models.append(model)
        return sum(p.numel() for p in model.parameters()) / 1e6

    ev = FunctionEvaluator(fn, metrics={"params_M": "min"})
    first = ev.evaluate(ARCH).metrics["params_M"]
    ev.evaluate(ARCH)
    expected = sum(p.numel() for p in spaces.create("nb201").build(ARCH).parameters()) / 1e6
    assert isinstance(models[0], torch.nn.Module) and first == pytest.approx(expected)
    a, b = (dict(m.state_dict()) for m in models)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same architecture, the same weights
    other = FunctionEvaluator(fn, metrics={"params_M": "min"}, seed=1)
    other.evaluate(ARCH)
    c = models[-1].state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_stopping_returns_the_last_reports():
    def fn(arch, context):
        context.report(0.25, step=1)
        context.report(0.5, step=2)
        raise TrialStopped()

    ev = FunctionEvaluator(fn, pass_model=False)
    result = ev.evaluate(ARCH, None, TrialContext(0, ARCH, metric="valid_acc"))
    assert result.stopped and result.metrics == {"valid_acc": 0.5} and result.cost >= 0


def test_a_return_without_the_objective_metric_is_refused_naming_both():
    ev = FunctionEvaluator(lambda arch, ctx: {"acc": 1.0, "loss": 2.0}, pass_model=False)
    with pytest.raises(InvalidConfigError) as info:
        ev.evaluate(ARCH)
    message = str(info.value)
    assert "['acc', 'loss']" in message and "'valid_acc'" in message
    with pytest.raises(InvalidConfigError, match="must be a number"):
        FunctionEvaluator(lambda a, c: {"valid_acc": "high"}, pass_model=False).evaluate(ARCH)
    with pytest.raises(InvalidConfigError, match="returned NoneType"):
        FunctionEvaluator(lambda a, c: None, pass_model=False).evaluate(ARCH)
    # in a study the trial fails with that message, the others go on
    study = nasforge.create_study(strategy="random", seed=0, evaluator=ev)
    study.optimize(ev, n_trials=2)
    assert all(t.state is TrialState.FAILED for t in study.trials)
    assert "but not 'valid_acc'" in study.trials[0].fail_reason


def test_bad_arguments():
    with pytest.raises(InvalidConfigError, match="must be a function"):
        FunctionEvaluator(3)
    with pytest.raises(InvalidConfigError, match="Cannot import module 'no_such_mod_h3'"):
        FunctionEvaluator("no_such_mod_h3:fn")
    with pytest.raises(InvalidConfigError, match=r"'package\.module:attribute'"):
        FunctionEvaluator("not a path")
    with pytest.raises(InvalidConfigError, match="metrics must map"):
        FunctionEvaluator(by_arch, metrics={})
    with pytest.raises(UnsupportedOperationError, match="pass_model=False"):
        FunctionEvaluator(by_arch, space=Widths())
    assert FunctionEvaluator(by_arch, space=Widths(), pass_model=False).space == "widths"


def test_spec_by_import_path_rebuilds_the_evaluator(user_module):
    ev = evaluators.create("function", fn=f"{user_module}:score", pass_model=False)
    spec = ev.spec()
    assert spec == {
        "name": "function",
        "fn": f"{user_module}:score",
        "metrics": {"valid_acc": "maximize"},
        "space": None,
        "pass_model": False,
        "cost_unit": "seconds",
        "seed": 0,
    }
    params = dict(spec)
    again = evaluators.create(params.pop("name"), **params)
    assert again.evaluate(ARCH).metrics == ev.evaluate(ARCH).metrics
    # a module-level function object is recorded by its import path too
    module = __import__(user_module)
    assert FunctionEvaluator(module.width).spec()["fn"] == f"{user_module}:width"


def test_a_local_function_has_no_spec_and_says_why(caplog):
    with caplog.at_level(logging.WARNING, logger="nasforge.evaluators.function"):
        ev = FunctionEvaluator(lambda arch, ctx: 1.0, pass_model=False)
    assert ev.spec() is None
    assert "'package.module:function'" in caplog.text and "this process only" in caplog.text


def test_a_study_records_it_and_its_stopping_rule_ends_poor_trials(user_module, tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    ev = FunctionEvaluator(f"{user_module}:score", pass_model=False)
    study = nasforge.create_study(
        strategy="random", seed=0, evaluator=ev, storage=url, study_name="f", stopping="median"
    )
    study.optimize(ev, n_trials=16)
    states = {t.state for t in study.trials}
    assert states == {TrialState.COMPLETE, TrialState.STOPPED}
    stopped = [t for t in study.trials if t.state is TrialState.STOPPED]
    assert all(t.cost is not None and t.cost >= 0 for t in stopped)
    reopened = nasforge.load_study("f", url)  # the evaluator is rebuilt from its spec
    reopened.optimize(n_trials=18)
    assert reopened.n_finished == 18
