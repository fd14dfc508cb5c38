"""Early stopping in studies: reporting evaluators' trials stopped by the study's rule are
recorded STOPPED with their cost, told to the strategy, resumed exactly; reports are shared
by process pools, Ray and worker processes on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import nasforge
from nasforge.cli import main
from nasforge.errors import InvalidConfigError, StudyConflictError, UnknownNameError
from nasforge.evaluators.function import FunctionEvaluator
from nasforge.execution.pool import ProcessPool
from nasforge.testing.curves import EPOCHS, CurveEvaluator, final_accuracy
from nasforge.trial import Result, TrialState

RULES = {
    "median": {"min_trials": 3},
    "successive-halving": {"min_step": 1, "eta": 3, "max_step": EPOCHS},
    "hyperband": {"min_step": 1, "max_step": EPOCHS, "eta": 3},
    "asha": {"min_step": 1, "eta": 3, "max_step": EPOCHS},
}


class Counting(CurveEvaluator):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def evaluate(self, arch, fidelity=None, context=None):
        self.calls += 1
        return super().evaluate(arch, fidelity, context)


def study_with(rule: str | None, storage=None, name=None, strategy="random", **kwargs):
    return nasforge.create_study(
        space="nb201",
        strategy=strategy,
        seed=3,
        stopping=rule,
        stopping_params=RULES.get(rule or ""),
        storage=storage,
        study_name=name,
        dedupe=False,
        **kwargs,
    )


@pytest.mark.parametrize("rule", sorted(RULES))
def test_stopped_trials_are_recorded_with_their_cost_below_full_and_the_best_is_kept(rule):
    study = study_with(rule).optimize(CurveEvaluator(), n_trials=24)
    states = [t.state for t in study.trials]
    stopped = [t for t in study.trials if t.state is TrialState.STOPPED]
    assert set(states) == {TrialState.COMPLETE, TrialState.STOPPED}
    for trial in stopped:
        assert 1 <= trial.cost < EPOCHS and trial.score is None
        assert trial.metrics["valid_acc"] < final_accuracy(trial.arch)  # the last reported
        assert f"by the {rule!r} rule" in (trial.fail_reason or "")
    assert all(t.cost == EPOCHS for t in study.trials if t.state is TrialState.COMPLETE)
    assert study.n_finished == 24 and study.spent == sum(t.cost for t in study.trials)
    assert study.spent < 24 * EPOCHS
    # the curves never cross: the best architecture is never stopped
    best = max(study.trials, key=lambda t: final_accuracy(t.arch))
    assert study.best_trial.number == best.number
    reports = study.storage.get_reports(study.record.study_id)
    assert {n: max(steps) for n, steps in reports.items()} == {
        t.number: int(t.cost) for t in study.trials
    }


def test_without_a_rule_every_reporting_trial_runs_to_the_end_and_its_reports_are_kept():
    study = study_with(None).optimize(CurveEvaluator(), n_trials=5)
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}
    assert study.spent == 5 * EPOCHS
    reports = study.storage.get_reports(study.record.study_id)
    assert all(list(steps) == list(range(1, EPOCHS + 1)) for steps in reports.values())


def test_an_evaluation_that_raises_trial_stopped_is_stopped_with_its_last_report():
    study = study_with("asha").optimize(CurveEvaluator(raise_stop=True), n_trials=12)
    stopped = [t for t in study.trials if t.state is TrialState.STOPPED]
    assert stopped
    reports = study.storage.get_reports(study.record.study_id)
    for trial in stopped:
        last = max(reports[trial.number])
        assert trial.metrics == reports[trial.number][last]
        assert trial.cost == pytest.approx(last)  # expected cost 9 epochs, times last/9


def test_a_study_with_a_rule_resumes_exactly_without_deciding_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    whole = study_with("asha", strategy="regularized-evolution").optimize(
        CurveEvaluator(), n_trials=20
    )
    first = study_with("asha", url, "s", strategy="regularized-evolution")
    first.optimize(CurveEvaluator(), n_trials=12)
    ev = Counting()
    resumed = nasforge.load_study("s", url)
    assert [t.state for t in resumed.trials] == [t.state for t in first.trials]
    resumed.optimize(ev, n_trials=20)
    assert ev.calls == 8  # the recorded decisions were replayed, not taken again
    assert [(t.arch, t.state, t.cost) for t in resumed.trials] == [
        (t.arch, t.state, t.cost) for t in whole.trials
    ]


def test_the_rule_is_stored_and_a_different_one_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    study = study_with("asha", url, "s")
    assert study.record.options["stopping"] == {"name": "asha", **RULES["asha"], "eta": 3.0} | {
        "min_early_stopping_rate": 0
    }
    with pytest.raises(StudyConflictError, match="stopping"):
        study_with("median", url, "s", load_if_exists=True)
    with pytest.raises(StudyConflictError, match="stopping"):
        study_with(None, url, "s", load_if_exists=True)
    with pytest.raises(InvalidConfigError, match="stopping_params were given without"):
        nasforge.create_study(stopping_params={"eta": 2})
    with pytest.raises(UnknownNameError, match="stopping rule"):
        nasforge.create_study(stopping="early")
    rule = nasforge.stopping.create("asha", eta=2)
    assert nasforge.create_study(stopping=rule).record.options["stopping"] == rule.spec()


def test_evaluators_that_do_not_report_are_never_stopped():
    study = study_with("asha")
    study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), n_trials=10)
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}


def test_ask_and_tell_with_the_trials_context_record_a_stopped_trial():
    study = study_with("asha")
    first = study.ask()
    context = study.trial_context(first)
    context.report({"valid_acc": 60.0}, step=1)
    assert not context.should_stop()  # alone at the rung
    study.tell(first, {"valid_acc": 70.0})
    second = study.ask()
    context = study.trial_context(second)
    context.report(20.0, step=1)  # a bare number: the objective, valid_acc
    assert context.should_stop()
    study.tell(second, Result(context.last, cost=1.0), state="STOPPED")
    assert second.state is TrialState.STOPPED and second.cost == 1.0 and study.n_finished == 2
    assert study.storage.get_reports(study.record.study_id)[1] == {1: {"valid_acc": 20.0}}
    frame = study.to_dataframe()
    assert list(frame["state"]) == ["COMPLETE", "STOPPED"]
    assert study.best_trial.number == 0
    with pytest.raises(InvalidConfigError, match="already STOPPED"):
        study.trial_context(second)


def test_a_function_evaluator_is_stopped_in_process_with_the_users_function():
    ev = FunctionEvaluator("nasforge.testing.curves:report_curve", pass_model=False)
    study = study_with("asha").optimize(ev, n_trials=10)
    assert TrialState.STOPPED in {t.state for t in study.trials}
    reports = study.storage.get_reports(study.record.study_id)
    assert all(max(reports[t.number]) < EPOCHS for t in study.trials if t.fail_reason)


@pytest.mark.parametrize("storage", ["memory", "sqlite"])
def test_a_process_pool_shares_reports_and_records_stopped_trials(storage, tmp_path):
    url = None if storage == "memory" else f"sqlite:///{tmp_path / 'p.db'}"
    study = study_with("asha", url, "pool")
    with ProcessPool(2) as pool:
        study.optimize(CurveEvaluator(), n_trials=10, executor=pool, in_order=False)
    reports = study.storage.get_reports(study.record.study_id)
    assert sorted(reports) == list(range(10))  # reports of the other processes came back
    stopped = [t for t in study.trials if t.state is TrialState.STOPPED]
    assert stopped and all(t.cost == max(reports[t.number]) < EPOCHS for t in stopped)


def test_two_processes_on_sqlite_see_each_others_reports(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    study = study_with("asha", url, "shared")
    study.optimize(CurveEvaluator(), n_trials=6)  # this process: 6 trials and their reports
    script = (
        "import sys, nasforge\n"
        "from nasforge.testing.curves import CurveEvaluator\n"
        "study = nasforge.load_study('shared', sys.argv[1])\n"
        "study.optimize(CurveEvaluator(), n_trials=12)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", script, url], check=True, env=env, timeout=120)
    again = nasforge.load_study("shared", url)
    reports = again.storage.get_reports(again.record.study_id)
    assert sorted(reports) == list(range(12))
    later = [t for t in again.trials[6:] if t.state is TrialState.STOPPED]
    assert later  # judged against the first process's reports at rung 1
    for trial in later:
        value = reports[trial.number][1]["valid_acc"]
        earlier = [reports[n][1]["valid_acc"] for n in range(6)]
        assert sum(v > value for v in earlier) >= 1


def test_nasforge_workers_on_sqlite_stop_trials_of_a_users_function(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    args = [
        "worker", "--storage", url, "--study", "byo", "--quiet",
        "--strategy", "random", "--evaluator", "function",
        "--evaluator-param", "fn=nasforge.testing.curves:report_curve",
        "--evaluator-param", "pass_model=false", "--stopping", "asha",
        "--stopping-param", "max_step=9", "--trials", "16",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as first:  # creates the study
        main([*args[:-2], "--trials", "4"])
    assert first.value.code == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    other = subprocess.Popen(
        [sys.executable, "-m", "nasforge", *args], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        with pytest.raises(SystemExit) as here:  # a second worker, beside the process
            main(args)
        assert here.value.code == 0
    finally:
        _, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    study = nasforge.load_study("byo", url)
    assert len(study.trials) == 16 and study.record.options["stopping"]["name"] == "asha"
    assert {t.state for t in study.trials} == {TrialState.COMPLETE, TrialState.STOPPED}
    reports = study.storage.get_reports(study.record.study_id)
    evaluated = [t.number for t in study.trials if t.duplicate_of is None]
    assert sorted(reports) == evaluated  # dedupe answers twins from the record
    with pytest.raises(SystemExit) as wrong:
        main([*args[:-8], "--stopping", "median", "--trials", "16"])
    assert wrong.value.code != 0 and "stopping rule" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["show", "byo", "--storage", url])
    shown = capsys.readouterr().out
    assert "stopped early (STOPPED)" in shown and "stopping" in shown


@pytest.mark.slow
def test_ray_tasks_share_reports_through_sqlite_and_record_stopped_trials(tmp_path):
    pytest.importorskip("ray")
    from nasforge.execution.ray_executor import RayExecutor

    url = f"sqlite:///{tmp_path / 'ray.db'}"
    study = study_with("asha", url, "ray")
    with RayExecutor(num_cpus=2, cpus_per_trial=1) as ray:
        study.optimize(CurveEvaluator(), n_trials=10, executor=ray, in_order=False)
    reports = study.storage.get_reports(study.record.study_id)
    assert sorted(reports) == list(range(10))
    stopped = [t for t in study.trials if t.state is TrialState.STOPPED]
    assert stopped and all(t.cost == max(reports[t.number]) < EPOCHS for t in stopped)


def test_nasforge_search_takes_a_stopping_rule_and_counts_the_stopped_trials(capsys):
    args = [
        "search", "--strategy", "random", "--evaluator", "function",
        "--evaluator-param", "fn=nasforge.testing.curves:report_curve",
        "--evaluator-param", "pass_model=false", "--trials", "10", "--quiet",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main([*args, "--stopping", "asha", "--stopping-param", "max_step=9"])
    assert done.value.code in (0, None)
    assert "stopped early" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        main([*args, "--stopping-param", "eta=2"])
    assert bad.value.code == 2 and "without a stopping rule" in capsys.readouterr().err
