"""The TrialContext an evaluation reports through: values, steps, decisions, pickling."""

from __future__ import annotations

import pickle

import pytest

from nasforge import spaces
from nasforge.errors import InvalidConfigError
from nasforge.reporting import TrialContext, TrialStopped
from nasforge.stopping._sink import StudySink
from nasforge.storage import InMemoryStorage
from nasforge.testing.storages import RECORD

ARCH = spaces.create("nb201").from_index(7)


class Always:
    """A sink whose rule stops every trial (and records what it was shown)."""

    metric = "valid_acc"

    def __init__(self) -> None:
        self.written: list[tuple[int, int, dict[str, float]]] = []
        self.asked = 0

    def write(self, number, step, values):
        self.written.append((number, step, dict(values)))

    def decide(self, number, step, own):
        self.asked += 1
        return True


def test_a_number_is_the_objective_and_a_mapping_is_kept_whole():
    sink = Always()
    context = TrialContext(4, ARCH, sink=sink)
    context.report(50, step=1)
    context.report({"valid_acc": 60.0, "loss": 0.7}, step=2)
    context.report(55.0, step=1)  # a step again replaces it
    assert context.reports == {1: {"valid_acc": 55.0}, 2: {"valid_acc": 60.0, "loss": 0.7}}
    assert context.last == {"valid_acc": 60.0, "loss": 0.7} and context.last_step == 2
    assert sink.written[0] == (4, 1, {"valid_acc": 50.0})
    alone = TrialContext(0, ARCH)
    alone.report(1.0, step=0)
    assert alone.reports == {0: {"value": 1.0}} and not alone.should_stop()


@pytest.mark.parametrize("step", [-1, 1.5, "3", True, None])
def test_a_step_must_be_a_non_negative_integer(step):
    with pytest.raises(InvalidConfigError, match="non-negative integer"):
        TrialContext(0, ARCH).report(1.0, step=step)


def test_a_value_must_be_a_number():
    context = TrialContext(0, ARCH, metric="valid_acc")
    with pytest.raises(InvalidConfigError, match="'valid_acc' must be a number"):
        context.report("high", step=1)
    with pytest.raises(InvalidConfigError, match="is a bool"):
        context.report({"valid_acc": True}, step=1)
    with pytest.raises(InvalidConfigError, match="empty mapping"):
        context.report({}, step=1)


def test_stop_true_raises_once_the_rule_stops_and_the_answer_sticks():
    sink = Always()
    context = TrialContext(0, ARCH, sink=sink)
    assert not context.should_stop()  # nothing reported yet: nothing to judge
    with pytest.raises(TrialStopped):
        context.report(10.0, step=1, stop=True)
    assert context.stopped and context.should_stop() and sink.asked == 1


def test_nothing_is_stopped_at_or_after_the_last_step():
    sink = Always()
    context = TrialContext(0, ARCH, sink=sink)
    context.max_step = 3
    context.report(10.0, step=3)
    assert not context.should_stop() and sink.asked == 0


def test_a_sink_travels_without_its_storage():
    storage = InMemoryStorage()
    study_id = storage.create_study(RECORD).study_id
    sink = StudySink(study_id=study_id, metric="valid_acc", storage=storage, url=None)
    context = TrialContext(2, ARCH, sink=sink)
    context.report(30.0, step=1)
    assert storage.get_reports(study_id) == {2: {1: {"valid_acc": 30.0}}}
    copy = pickle.loads(pickle.dumps(context))
    assert copy.reports == context.reports and copy._sink._storage is None
    copy.report(40.0, step=2)  # no storage there: kept, and returned with the result
    assert copy.reports[2] == {"valid_acc": 40.0} and 2 not in storage.get_reports(study_id)[2]
