"""The stopping rules on hand-made report sequences: each stops a clearly bad trial and
keeps a good one; parameters are checked; a spec rebuilds the rule."""

from __future__ import annotations

import pytest

from nasforge import stopping
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.stopping import ReportHistory
from nasforge.stopping._sink import StudySink


def curves(**finals: float) -> dict[int, dict[int, float]]:
    """Trials named t0, t1... whose value at step s is final * (1 - 0.5**s), steps 1..4."""
    return {
        int(name[1:]): {s: final * (1 - 0.5**s) for s in range(1, 5)}
        for name, final in finals.items()
    }


def test_registry_names_the_four_rules():
    assert stopping.names() == ["asha", "hyperband", "median", "successive-halving"]
    with pytest.raises(UnknownNameError, match="asha"):
        stopping.create("ashaa")


@pytest.mark.parametrize("name", ["median", "successive-halving", "hyperband", "asha"])
def test_a_spec_rebuilds_an_equal_rule(name):
    rule = stopping.create(name)
    again = stopping.from_spec(rule.spec())
    assert again.spec() == rule.spec() and rule.spec()["name"] == name


def test_unknown_and_bad_parameters_are_refused_with_the_valid_ones():
    with pytest.raises(InvalidConfigError, match=r"'etta' \(did you mean 'eta'\?\).*min_step"):
        stopping.create("asha", etta=2)
    with pytest.raises(InvalidConfigError, match="eta must be a number above 1"):
        stopping.create("successive-halving", eta=1)
    with pytest.raises(InvalidConfigError, match="min_step must be an integer above 0"):
        stopping.create("asha", min_step=0)
    with pytest.raises(InvalidConfigError, match=r"max_step .* must be above min_step"):
        stopping.create("hyperband", min_step=9, max_step=3)
    with pytest.raises(InvalidConfigError, match="min_trials"):
        stopping.create("median", min_trials=True)


# -- median stopping (Vizier) --------------------------------------------------------------
def test_median_stops_a_trial_below_the_completed_running_averages_and_keeps_a_good_one():
    done = curves(t0=80, t1=85, t2=90, t3=70, t4=75)
    rule = stopping.create("median", min_trials=5)
    bad = ReportHistory({**done, 9: {1: 10.0, 2: 15.0}}, frozenset(done))
    good = ReportHistory({**done, 9: {1: 60.0, 2: 70.0}}, frozenset(done))
    assert rule.should_stop(9, 2, bad)
    assert not rule.should_stop(9, 2, good)


def test_median_uses_the_running_average_up_to_the_step_and_the_trials_best_value():
    # completed trials' running averages at step 2: (40+60)/2=50 and (20+40)/2=30, 45...
    done = {0: {1: 40.0, 2: 60.0}, 1: {1: 20.0, 2: 40.0}, 2: {1: 40.0, 2: 50.0}}
    rule = stopping.create("median", min_trials=3)
    # median of (50, 30, 45) = 45: a best of 46 (reached at step 1) is kept, 44 is stopped
    keep = ReportHistory({**done, 5: {1: 46.0, 2: 10.0}}, frozenset(done))
    stop = ReportHistory({**done, 5: {1: 44.0, 2: 10.0}}, frozenset(done))
    assert not rule.should_stop(5, 2, keep)
    assert rule.should_stop(5, 2, stop)


def test_median_ignores_running_trials_and_waits_for_enough_completed_ones():
    reports = curves(t0=80, t1=85, t2=90)
    rule = stopping.create("median", min_trials=3)
    bad = {**reports, 9: {1: 1.0}}
    assert not rule.should_stop(9, 1, ReportHistory(bad, frozenset()))  # none completed
    assert not rule.should_stop(9, 1, ReportHistory(bad, frozenset({0, 1})))  # too few
    assert rule.should_stop(9, 1, ReportHistory(bad, frozenset({0, 1, 2})))
    warm = stopping.create("median", min_trials=3, warmup_steps=2)
    assert not warm.should_stop(9, 1, ReportHistory(bad, frozenset({0, 1, 2})))


# -- successive halving ---------------------------------------------------------------------
def test_successive_halving_keeps_the_top_third_at_a_rung():
    rule = stopping.create("successive-halving", min_step=1, eta=3)
    history = ReportHistory({n: {1: float(n)} for n in range(9)})
    decisions = {n: rule.should_stop(n, 1, history) for n in range(9)}
    assert [n for n, stop in decisions.items() if not stop] == [6, 7, 8]


def test_successive_halving_judges_at_the_highest_rung_reached_and_not_before_the_first():
    rule = stopping.create("successive-halving", min_step=2, eta=2)
    assert rule.rungs[:3] == (2, 4, 8)
    history = ReportHistory({0: {1: 9.0, 2: 9.0, 4: 1.0}, 1: {1: 1.0, 2: 1.0, 4: 9.0}})
    assert not rule.should_stop(1, 1, history)  # below the first rung
    assert rule.should_stop(1, 2, history)  # rung 2: 1.0 is below 9.0 (keep 1 of 2)
    assert not rule.should_stop(1, 4, history)  # rung 4: it leads
    assert rule.should_stop(0, 5, history)  # rung 4 again, for trial 0


def test_successive_halving_stops_an_early_leader_once_the_rung_fills_with_better_ones():
    rule = stopping.create("successive-halving", min_step=1, eta=2)
    alone = ReportHistory({0: {1: 5.0}})
    assert not rule.should_stop(0, 1, alone)
    later = ReportHistory({0: {1: 5.0, 2: 5.0}, 1: {1: 8.0}, 2: {1: 9.0}, 3: {1: 7.0}})
    assert rule.should_stop(0, 1, later)  # keep 2 of 4 at rung 1: 9 and 8


def test_max_step_leaves_no_rung_at_the_end_of_training():
    rule = stopping.create("successive-halving", min_step=1, eta=3, max_step=9)
    assert rule.rungs == (1, 3)
    history = ReportHistory({0: {3: 9.0, 9: 1.0}, 1: {3: 1.0, 9: 5.0}})
    assert not rule.should_stop(0, 9, history)  # judged at rung 3, where it leads
    assert stopping.create("asha", min_step=1, eta=2, min_early_stopping_rate=1).rungs[0] == 2


# -- ASHA ---------------------------------------------------------------------------------------
def test_asha_stops_a_trial_arriving_below_the_leaders_and_promotes_a_good_one():
    rule = stopping.create("asha", min_step=1, eta=3)
    history = ReportHistory({n: {1: float(n)} for n in range(6)} | {9: {1: 0.5}, 10: {1: 5.5}})
    assert rule.should_stop(9, 1, history)
    assert not rule.should_stop(10, 1, history)


def test_asha_judges_each_rung_once_and_never_revokes_a_promotion():
    rule = stopping.create("asha", min_step=2, eta=2)
    sh = stopping.create("successive-halving", min_step=2, eta=2)
    alone = ReportHistory({0: {2: 5.0}})
    assert not rule.should_stop(0, 2, alone) and not sh.should_stop(0, 2, alone)
    # better trials reach rung 2 while trial 0 trains on towards rung 4
    later = ReportHistory({0: {2: 5.0, 3: 5.0}, 1: {2: 8.0}, 2: {2: 9.0}, 3: {2: 7.0}})
    assert not rule.should_stop(0, 3, later, previous=2)  # promoted at arrival: kept
    assert sh.should_stop(0, 3, later)  # successive halving judges rung 2 again
    assert rule.should_stop(0, 3, later, previous=None)  # arriving now, it is stopped


# -- Hyperband ----------------------------------------------------------------------------------
def test_hyperband_brackets_follow_algorithm_1():
    rule = stopping.create("hyperband", min_step=1, max_step=81, eta=3)
    assert [(s, n) for s, n, _ in rule.brackets] == [(4, 81), (3, 34), (2, 15), (1, 8), (0, 5)]
    assert dict((s, r) for s, _, r in rule.brackets)[2] == (9, 27)
    shares = [rule.bracket_of(n) for n in range(1430)]
    for s, n_s, _ in rule.brackets:  # trials spread over the brackets as n_s / sum(n)
        assert shares.count(s) / len(shares) == pytest.approx(n_s / 143, abs=0.02)


def test_hyperband_compares_a_trial_only_within_its_bracket_and_never_stops_bracket_0():
    rule = stopping.create("hyperband", min_step=1, max_step=9, eta=3)
    by_bracket: dict[int, list[int]] = {}
    for n in range(60):
        by_bracket.setdefault(rule.bracket_of(n), []).append(n)
    first = by_bracket[2][:4]  # bracket 2: rungs 1 and 3
    others = by_bracket[1][:4]  # bracket 1: rung 3 only
    values = {n: {1: 10.0 + i, 3: 10.0 + i} for i, n in enumerate(first)}
    values |= {n: {1: 100.0, 3: 100.0} for n in others}  # far better, other bracket
    history = ReportHistory(values)
    assert not rule.should_stop(first[-1], 1, history)  # best of its bracket
    assert rule.should_stop(first[0], 1, history)
    full = by_bracket[0][0]
    history = ReportHistory({**values, full: {1: 0.0, 3: 0.0, 8: 0.0}})
    assert not rule.should_stop(full, 8, history)


# -- the sink: direction and the objective's metric ----------------------------------------
def test_the_sink_orients_a_minimised_metric_and_skips_reports_without_it():
    sink = StudySink(study_id=1, metric="loss", maximize=False)
    got = sink.oriented({0: {1: {"loss": 2.0}, 2: {"acc": 0.5}}, 1: {1: {"acc": 1.0}}})
    assert got == {0: {1: -2.0}}
    rule = {"name": "asha", "min_step": 1, "eta": 2.0}
    snapshot = ({0: {1: {"loss": 0.1}}}, frozenset({0}))
    low = StudySink(study_id=1, metric="loss", maximize=False, rule=rule, snapshot=snapshot)
    assert low.decide(1, 1, {1: {"loss": 5.0}})  # a high loss is the worse one
    high = StudySink(study_id=1, metric="loss", maximize=False, rule=rule, snapshot=snapshot)
    assert not high.decide(1, 1, {1: {"loss": 0.01}})
