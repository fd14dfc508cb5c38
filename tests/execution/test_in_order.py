"""Several slots, one seed, the same trials: results are taken in the order trials were asked."""

from __future__ import annotations

import time
import zlib

import pytest

import nasforge
from nasforge.evaluators.tabular import TabularEvaluator
from nasforge.execution import ProcessPool

EVO = {"population_size": 8, "tournament_size": 3}


class Jitter(TabularEvaluator):
    """A table lookup that takes 0 to 60 ms, by architecture and by run (``salt``), so trials
    finish in another order than they were asked, and in a different order on each run."""

    def __init__(self, salt: int = 0) -> None:
        super().__init__("nb201", "cifar10")
        self.salt = salt

    def __getstate__(self):  # the table's file handle is reopened by the receiving process
        return {"salt": self.salt}

    def __setstate__(self, state):
        self.__init__(state["salt"])

    def evaluate(self, arch, fidelity=None):
        time.sleep(zlib.crc32(f"{self.salt}{arch.text}".encode()) % 7 * 0.01)
        return super().evaluate(arch, fidelity)


def run(tmp_path, name: str, salt: int, *, in_order: bool = True) -> nasforge.Study:
    study = nasforge.create_study(
        strategy="regularized-evolution",
        seed=4,
        strategy_params=EVO,
        storage=f"sqlite:///{tmp_path / (name + '.db')}",
        study_name=name,
    )
    with ProcessPool(3) as pool:
        study.optimize(Jitter(salt), n_trials=24, executor=pool, in_order=in_order)
    return study


def test_a_seed_gives_the_same_trials_with_several_slots_whatever_the_timing(tmp_path):
    first = run(tmp_path, "a", salt=1)
    second = run(tmp_path, "b", salt=2)  # other durations: another completion order
    assert [t.arch for t in first.trials] == [t.arch for t in second.trials]
    # told in the order asked
    for study in (first, second):
        assert [t.finish_seq for t in study.trials] == sorted(t.finish_seq for t in study.trials)
        # asked_after counts the results recorded before the ask: those of trials 0 .. j - 3
        assert all(t.asked_after == t.number - 2 for t in study.trials[3:])
    # and the replay of a stored study rebuilds the same strategy
    again = nasforge.load_study("a", first.storage)
    assert [t.arch for t in again.trials] == [t.arch for t in first.trials]


@pytest.mark.parametrize("in_order", [True, False])
def test_no_trial_lost_or_duplicated_either_way(tmp_path, in_order):
    study = run(tmp_path, f"s{in_order}", salt=3, in_order=in_order)
    assert [t.number for t in study.trials] == list(range(24))
    assert study.n_finished == 24
    assert len({t.finish_seq for t in study.trials}) == 24
