"""Free answers (dedupe twins, constraint rejections) are bounded: a budget that cannot be
spent ends in a clear error instead of a loop that records trials forever."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import nasforge
from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.trial import Direction, Result

TINY = "test-free-tiny"


@spaces.register(TINY)
class Tiny(SearchSpace):
    """Two layers of two options: four architectures, no functional twins."""

    name = TINY

    def decisions(self) -> tuple[Decision, ...]:
        return (Decision("a", ("x", "y")), Decision("b", ("x", "y")))

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = self.check_choices(choices)
        return Architecture(TINY, values, "-".join("xy"[c] for c in values))

    def parse(self, text: str) -> Architecture:
        return self.from_choices(["xy".index(c) for c in text.split("-")])

    def canonical(self, arch: Architecture) -> Architecture:
        return arch  # said explicitly: every architecture is its own class, so dedupe works


class TinyScore(Evaluator):
    space = TINY

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    @property
    def free_metric_names(self) -> tuple[str, ...]:
        return ("size",)

    def free_metrics(self, arch: Architecture) -> Mapping[str, float]:
        return {"size": float(sum(arch.choices))}

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        return Result({"valid_acc": 50.0 + sum(arch.choices)})


def paid(study: nasforge.Study) -> int:
    return sum(1 for t in study.trials if t.cost > 0)


@pytest.mark.parametrize("strategy", ["random", "regularized-evolution", "local-search"])
def test_a_used_up_space_stops_with_an_error_naming_the_fix(strategy):
    ev = TinyScore()
    study = nasforge.create_study(space=TINY, strategy=strategy, dedupe=True, evaluator=ev)
    with pytest.raises(InvalidConfigError, match=r"used up: all 4 of its architectures") as err:
        study.optimize(ev, budget=100)
    assert "without dedupe" in str(err.value) and "Lower the budget" in str(err.value)
    assert paid(study) == 4
    # every architecture is proposed at least once before the error, and not much more
    assert {t.arch for t in study.trials} == set(Tiny())
    assert len(study.trials) < 4 + study.max_free_streak


def test_a_used_up_space_with_a_constraint_is_infeasible():
    ev = TinyScore()
    study = nasforge.create_study(
        space=TINY, strategy="random", dedupe=True, constraints=["size<=1"], evaluator=ev
    )
    with pytest.raises(InfeasibleConstraintError, match="loosen the constraints"):
        study.optimize(ev, n_trials=50)
    assert paid(study) == 3  # x-x, x-y, y-x; y-y is rejected for free


@pytest.mark.parametrize("dedupe", [True, False])
def test_a_constraint_few_architectures_meet_bounds_the_free_answers(dedupe):
    ev = nasforge.evaluators.create("tabular", dataset="cifar10")
    study = nasforge.create_study(
        strategy="regularized-evolution",
        dedupe=dedupe,
        constraints=["params_M<=0.1"],
        evaluator=ev,
        seed=0,
    )
    study.max_free_streak, study.max_free_per_paid = 200, 5
    with pytest.raises(InfeasibleConstraintError, match=r"params_M<=0\.1") as err:
        study.optimize(ev, budget=100)
    assert "answered without cost" in str(err.value)
    assert paid(study) < 100
    free = len(study.trials) - paid(study)
    assert free <= study.max_free_streak + study.max_free_per_paid * paid(study) + 1


def test_a_mixed_run_of_twins_and_rejections_is_bounded(monkeypatch):
    """Alternating twins and rejections reset each kind's own streak; their run is bounded."""
    ev = TinyScore()
    study = nasforge.create_study(
        space=TINY, strategy="random", dedupe=True, constraints=["size<=1"], evaluator=ev
    )
    first, rejected = Tiny().from_choices([0, 0]), Tiny().from_choices([1, 1])
    study.enqueue_trial(first)
    study.optimize(ev, n_trials=1)
    assert paid(study) == 1
    proposals = iter([first, rejected] * 100)
    monkeypatch.setattr(study._strategy, "ask", lambda: nasforge.trial.Proposal(next(proposals)))
    study.max_free_streak = 30
    with pytest.raises(InfeasibleConstraintError, match="30 proposals in a row") as err:
        study.optimize(ev, n_trials=200)
    assert "15 violated the constraints" in str(err.value)
    assert len(study.trials) == 1 + 30


def test_generous_limits_leave_ordinary_searches_alone():
    ev = nasforge.evaluators.create("tabular", dataset="cifar10")
    study = nasforge.create_study(
        strategy="regularized-evolution", dedupe=True, constraints=["params_M<=0.6"], seed=1
    )
    study.optimize(ev, budget=150)
    assert study.spent == pytest.approx(150)
