"""Studies: determinism, resume after interruption at any trial, crash recovery, bad input."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import nasforge
from nasforge.errors import (
    EvaluationFailuresError,
    InvalidConfigError,
    StorageError,
    StudyConflictError,
    UnknownNameError,
)
from nasforge.evaluators.base import Evaluator
from nasforge.storage import InMemoryStorage
from nasforge.trial import Direction, Objective, TrialState

STRATEGIES = {
    "random": {},
    "regularized-evolution": {"population_size": 10, "tournament_size": 3},
}


def evaluator(dataset: str = "cifar10") -> Evaluator:
    return nasforge.evaluators.create("tabular", dataset=dataset, metrics=["valid_acc", "test_acc"])


def signature(study: nasforge.Study) -> list[tuple[str, float]]:
    """What a run found: the completed trials in order, architecture and result."""
    return [(t.arch.text, t.metrics["valid_acc"]) for t in study.completed_trials]


def run(
    strategy: str, n: int, seed: int = 0, storage=None, name: str = "s", dedupe: bool = False
) -> nasforge.Study:
    study = nasforge.create_study(
        strategy=strategy,
        seed=seed,
        storage=storage,
        study_name=name,
        strategy_params=STRATEGIES[strategy],
        dedupe=dedupe,
    )
    return study.optimize(evaluator(), n_trials=n)


class Interrupting(Evaluator):
    """Delegates to the tabular evaluator and raises KeyboardInterrupt on call ``at``."""

    def __init__(self, at: int) -> None:
        self.inner = evaluator()
        self.space = self.inner.space
        self.calls = 0
        self.at = at

    @property
    def metrics(self):
        return self.inner.metrics

    def evaluate(self, arch, fidelity=None):
        self.calls += 1
        if self.calls - 1 == self.at:
            raise KeyboardInterrupt
        return self.inner.evaluate(arch, fidelity)

    def spec(self):
        return self.inner.spec()


class Failing(Evaluator):
    """Raises for every architecture whose first edge is ``none``."""

    space = "nb201"

    def __init__(self) -> None:
        self.inner = evaluator()

    @property
    def metrics(self):
        return self.inner.metrics

    def evaluate(self, arch, fidelity=None):
        if arch.choices[0] == 0:
            raise RuntimeError("loss is NaN")
        return self.inner.evaluate(arch, fidelity)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_same_seed_same_trials_other_seed_other_trials(strategy):
    a, b, c = run(strategy, 60, 0), run(strategy, 60, 0), run(strategy, 60, 1)
    assert signature(a) == signature(b)
    assert signature(a) != signature(c)
    assert len(a.trials) == 60 and all(t.state is TrialState.COMPLETE for t in a.trials)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_resume_after_stopping_at_any_trial_equals_uninterrupted_run(strategy):
    n = 40
    reference = signature(run(strategy, n))
    for k in range(1, n):
        storage = InMemoryStorage()
        run(strategy, k, storage=storage)
        resumed = nasforge.load_study("s", storage).optimize(n_trials=n)
        assert signature(resumed) == reference, f"stopped after {k} trials"


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_ctrl_c_during_any_trial_then_resume_equals_uninterrupted_run(strategy):
    n = 30
    reference = signature(run(strategy, n))
    for k in range(n):
        storage = InMemoryStorage()
        study = nasforge.create_study(
            strategy=strategy,
            storage=storage,
            study_name="s",
            strategy_params=STRATEGIES[strategy],
            dedupe=False,  # the k-th evaluation is the k-th trial
        )
        with pytest.raises(KeyboardInterrupt):
            study.optimize(Interrupting(at=k), n_trials=n)
        interrupted = study.trials[-1]
        assert interrupted.state is TrialState.FAILED and interrupted.retryable
        resumed = nasforge.load_study("s", storage).optimize(n_trials=n)
        assert signature(resumed) == reference, f"interrupted in trial {k}"
        # nothing recorded is lost: the interrupted attempt stays, and is retried once
        assert resumed.trials[k].state is TrialState.FAILED
        assert resumed.trials[k + 1].retry_of == k
        assert resumed.n_finished == n


def test_sqlite_resume_after_stopping(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    reference = signature(run("regularized-evolution", 50))
    run("regularized-evolution", 17, storage=url)
    resumed = nasforge.load_study("s", url)
    assert len(resumed.trials) == 17
    resumed.optimize(n_trials=50)
    assert signature(nasforge.load_study("s", url)) == reference


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import nasforge
    from nasforge.evaluators.tabular import TabularEvaluator

    class Slow(TabularEvaluator):
        def evaluate(self, arch, fidelity=None):
            time.sleep(0.01)
            return super().evaluate(arch, fidelity)

    study = nasforge.create_study(strategy="regularized-evolution", seed=3,
        storage=sys.argv[1], study_name="k", load_if_exists=True,
        strategy_params={"population_size": 10, "tournament_size": 3})
    ev = Slow("nb201", "cifar10", metrics=["valid_acc", "test_acc"])
    study.optimize(ev, n_trials=int(sys.argv[2]))
    """
)


def _complete_trials(path: Path) -> int:
    """COMPLETE trials in a study database written by another process (0 if none yet)."""
    import sqlite3

    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM nasforge_trials WHERE state = 'COMPLETE'"
            ).fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    return int(row[0])


def test_sigkill_at_random_moments_loses_nothing_and_resumes_to_the_same_trials(tmp_path):
    script = tmp_path / "search.py"
    script.write_text(KILL_SCRIPT)
    path = tmp_path / "kill.db"
    url = f"sqlite:///{path}"
    n = 60
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    finished_before = 0
    for extra in (0.0, 0.013, 0.027):  # kill at different moments of a trial
        proc = subprocess.Popen([sys.executable, str(script), url, str(n)], env=env)
        deadline = time.monotonic() + 120
        # wait for progress (not for a fixed time: the machine may be loaded)
        while _complete_trials(path) < finished_before + 5 and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        time.sleep(extra)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        study = nasforge.load_study("k", url)
        finished = [t for t in study.trials if t.state is TrialState.COMPLETE]
        assert len(finished) >= finished_before + 5  # progress was made, nothing lost
        finished_before = len(finished)
    subprocess.run([sys.executable, str(script), url, str(n)], env=env, check=True)
    study = nasforge.load_study("k", url)
    reference = nasforge.create_study(
        strategy="regularized-evolution",
        seed=3,
        strategy_params={"population_size": 10, "tournament_size": 3},
    ).optimize(evaluator(), n_trials=n)
    assert signature(study) == signature(reference)
    assert study.n_finished == n


def test_trial_left_running_by_a_dead_worker_is_failed_and_retried():
    storage = InMemoryStorage()
    study = nasforge.create_study(strategy="random", storage=storage, study_name="s")
    study.optimize(evaluator(), n_trials=3)
    # forge a trial that a dead process left RUNNING
    ghost = study.trials[0].__class__(
        number=-1, arch=study.space.from_index(42), worker="elsewhere:1:x", started_at=None
    )
    assert ghost.state is TrialState.RUNNING
    storage.add_trial(study.record.study_id, ghost)
    # the ghost is not what the strategy would propose, so replay reports the mismatch
    with pytest.raises(StorageError, match="cannot be replayed"):
        nasforge.load_study("s", storage)


def test_stale_running_trial_is_retried_with_the_same_architecture():
    storage = InMemoryStorage()
    study = nasforge.create_study(strategy="random", storage=storage, study_name="s")
    study.optimize(evaluator(), n_trials=3)
    proposal = nasforge.strategies.create("random", study.space, seed=0)
    archs = [proposal.ask().arch for _ in range(4)]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs, on this host
    worker = f"{socket.gethostname()}:{dead.pid}:x"
    ghost = study.trials[0].__class__(number=-1, arch=archs[3], worker=worker)
    storage.add_trial(study.record.study_id, ghost)
    # a trial of a live worker elsewhere (fresh heartbeat) is left alone
    assert nasforge.load_study("s", storage).trials[3].state is TrialState.FAILED
    resumed = nasforge.load_study("s", storage)
    assert resumed.trials[3].state is TrialState.FAILED and resumed.trials[3].retryable
    resumed.optimize(n_trials=4)
    assert resumed.trials[4].arch == archs[3] and resumed.trials[4].retry_of == 3
    assert resumed.trials[4].state is TrialState.COMPLETE


def test_failed_evaluation_is_recorded_and_the_search_goes_on():
    study = nasforge.create_study(strategy="random", seed=0)
    study.optimize(Failing(), n_trials=50)
    failed = [t for t in study.trials if t.state is TrialState.FAILED]
    assert failed and all(t.fail_reason == "RuntimeError: loss is NaN" for t in failed)
    assert all(not t.retryable for t in failed)
    assert study.n_finished == 50 == len(study.trials)
    assert study.best_trial.arch.choices[0] != 0


class Broken(Evaluator):
    @property
    def metrics(self):
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch, fidelity=None):
        raise RuntimeError("no GPU here")


def test_an_evaluator_that_fails_every_trial_stops_a_budgeted_search():
    """Failures cost nothing, so a budget alone would never end: the search stops with the
    reason after max_failed_streak failures in a row, every failure recorded."""
    study = nasforge.create_study(strategy="random", seed=0)
    study.max_failed_streak = 12
    with pytest.raises(EvaluationFailuresError, match=r"last 12 trials.*no GPU here"):
        study.optimize(Broken(), budget=5)
    assert [t.state for t in study.trials] == [TrialState.FAILED] * 12
    # a success in between resets the count: 50 trials of a flaky evaluator go through
    flaky = nasforge.create_study(strategy="random", seed=0)
    flaky.max_failed_streak = 12
    flaky.optimize(Failing(), n_trials=50)
    assert flaky.n_finished == 50


def test_budget_counts_cost():
    study = nasforge.create_study(strategy="random", dedupe=False)
    study.optimize(evaluator(), budget=25)
    assert study.spent == pytest.approx(25) and len(study.trials) == 25
    # with dedupe (the default on NB201) functional twins are trials that cost nothing
    deduped = nasforge.create_study(strategy="random").optimize(evaluator(), budget=25)
    assert deduped.dedupe and deduped.spent == pytest.approx(25)
    twins = [t for t in deduped.trials if t.duplicate_of is not None]
    assert len(deduped.trials) == 25 + len(twins) and all(t.cost == 0 for t in twins)


def test_best_trial_follows_the_objective_direction():
    study = nasforge.create_study(strategy="random", objectives=["params_M:min"])
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["params_M"])
    study.optimize(ev, n_trials=40)
    smallest = min(t.metrics["params_M"] for t in study.trials)
    assert study.best_trial.metrics["params_M"] == smallest
    assert study.best_trial.score == -smallest


def test_objective_parsing():
    assert Objective.parse("valid_acc") == Objective("valid_acc", "max")
    assert Objective.parse("latency_ms[pixel3]:min").metric == "latency_ms[pixel3]"
    assert str(Objective.parse("params_M:MIN")) == "params_M:min"
    with pytest.raises(InvalidConfigError, match="'max'"):
        Objective.parse("valid_acc:up")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_trials": 0}, InvalidConfigError, "from 1 to"),
        ({"budget": -5}, InvalidConfigError, "above 0"),
        ({"budget": float("inf")}, InvalidConfigError, "finite"),
        ({"budget": 1e23}, InvalidConfigError, "at most"),
        ({"budget": float("nan")}, InvalidConfigError, "finite"),
        ({"n_trials": 2.5}, InvalidConfigError, "whole number"),
        ({"timeout": float("inf")}, InvalidConfigError, "finite"),
        ({}, InvalidConfigError, "limit"),
    ],
)
def test_bad_limits(kwargs, error, message):
    study = nasforge.create_study()
    with pytest.raises(error, match=message):
        study.optimize(evaluator(), **kwargs)


def test_unknown_objective_metric():
    study = nasforge.create_study(objectives=["valid_accuracy:max"])
    with pytest.raises(UnknownNameError, match="valid_acc"):
        study.optimize(evaluator(), n_trials=1)


def test_unknown_names_and_parameters():
    with pytest.raises(UnknownNameError, match="regularized-evolution"):
        nasforge.create_study(strategy="evolution")
    with pytest.raises(UnknownNameError, match="nb201"):
        nasforge.create_study(space="nb-201")
    with pytest.raises(InvalidConfigError, match="population_size"):
        nasforge.create_study(strategy="regularized-evolution", strategy_params={"size": 3})
    with pytest.raises(InvalidConfigError, match="tournament_size"):
        nasforge.create_study(
            strategy="regularized-evolution",
            strategy_params={"population_size": 3, "tournament_size": 5},
        )
    with pytest.raises(InvalidConfigError, match="seed"):
        nasforge.create_study(seed=-1)


def test_existing_name_is_refused_unless_resumed_with_same_settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    run("random", 5, storage=url)
    with pytest.raises(StudyConflictError, match="load_study"):
        nasforge.create_study(strategy="random", storage=url, study_name="s")
    with pytest.raises(StudyConflictError, match="seed: stored 0, requested 1"):
        nasforge.create_study(strategy="random", seed=1, storage=url, study_name="s")
    with pytest.raises(StudyConflictError, match="strategy: stored 'random'"):
        nasforge.create_study(
            strategy="regularized-evolution", storage=url, study_name="s", load_if_exists=True
        )
    same = nasforge.create_study(
        strategy="random", storage=url, study_name="s", load_if_exists=True
    )
    assert len(same.trials) == 5
    with pytest.raises(StudyConflictError, match="evaluator"):
        same.optimize(evaluator("cifar100"), n_trials=6)


def test_load_unknown_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    run("random", 2, storage=url, name="alpha")
    with pytest.raises(UnknownNameError, match="alpha"):
        nasforge.load_study("alpah", url)


def test_to_dataframe_has_one_row_per_trial():
    pd = pytest.importorskip("pandas")
    study = run("random", 12)
    frame = study.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 12 and {"arch", "valid_acc", "test_acc", "state"} <= set(frame.columns)


def test_import_does_not_load_torch():
    code = "import sys, nasforge; nasforge.spaces.names(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_database_path_is_kept_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run("random", 2, storage="sqlite:///rel.db")
    assert Path("rel.db").exists()


def test_dedupe_answers_functional_twins_for_free_and_replays():
    storage = InMemoryStorage()
    study = nasforge.create_study(
        strategy="regularized-evolution", seed=2, dedupe=True, storage=storage, study_name="d"
    )
    study.optimize(evaluator(), budget=60)
    twins = [t for t in study.trials if t.duplicate_of is not None]
    assert twins, "evolution re-proposes equivalent cells within 60 queries"
    for t in twins:
        original = study.trials[t.duplicate_of]
        assert study.space.canonical(t.arch) == study.space.canonical(original.arch)
        assert t.metrics == original.metrics and t.cost == 0.0
    assert study.spent == pytest.approx(60)
    resumed = nasforge.load_study("d", storage)
    assert [(t.arch, t.duplicate_of) for t in resumed.trials] == [
        (t.arch, t.duplicate_of) for t in study.trials
    ]
    with pytest.raises(StudyConflictError, match="options"):
        nasforge.create_study(
            strategy="regularized-evolution",
            seed=2,
            storage=storage,
            study_name="d",
            load_if_exists=True,
            dedupe=False,
        )
    # the default (on where the space has a canonical form) opens the study as stored
    reopened = nasforge.create_study(
        strategy="regularized-evolution", seed=2, storage=storage, study_name="d",
        load_if_exists=True,
    )  # fmt: skip
    assert reopened.dedupe and len(reopened.trials) == len(study.trials)


def test_a_proposal_that_does_not_fit_the_budget_waits_for_the_next_call():
    storage = InMemoryStorage()
    ev = evaluator()
    study = nasforge.create_study(storage=storage, study_name="h", strategy="successive-halving")
    study.optimize(ev, budget=10)
    assert study.spent <= 10
    study.optimize(ev, budget=40)
    resumed_later = nasforge.load_study("h", storage)
    one_go = nasforge.create_study(strategy="successive-halving").optimize(ev, budget=40)
    assert [t.arch for t in study.trials] == [t.arch for t in one_go.trials]
    assert len(resumed_later.trials) == len(one_go.trials)


def test_constraints_on_free_metrics_reject_before_evaluation_and_bind_the_best():
    ev = evaluator()
    bound = 0.3
    study = nasforge.create_study(
        strategy="regularized-evolution", constraints=[f"params_M<={bound}"], evaluator=ev
    ).optimize(ev, budget=60)
    rejected = [t for t in study.trials if t.fail_reason]
    assert rejected and all(t.cost == 0 and t.metrics["params_M"] > bound for t in rejected)
    assert all("infeasible before evaluation" in t.fail_reason for t in rejected)
    evaluated = [t for t in study.trials if not t.fail_reason]
    assert all(t.metrics["params_M"] <= bound for t in evaluated)
    assert study.best_trial.metrics["params_M"] <= bound
    assert study.spent == pytest.approx(60)


def test_constraint_checked_after_evaluation_when_not_free():
    ev = evaluator()
    study = nasforge.create_study(strategy="random", constraints=["test_acc<=90"], evaluator=ev)
    study.optimize(ev, budget=40)
    good = [t for t in study.trials if t.metrics["test_acc"] > 90]
    assert good and all(t.score is None and t.state is TrialState.COMPLETE for t in good)
    assert study.best_trial.metrics["test_acc"] <= 90


def test_infeasible_constraint_reports_the_tightest_value_seen():
    from nasforge.errors import InfeasibleConstraintError

    study = nasforge.create_study(strategy="random", constraints=["params_M<=0.01"])
    study.max_rejected_streak = 200
    with pytest.raises(InfeasibleConstraintError, match=r"smallest params_M seen was 0\.073306"):
        study.optimize(evaluator(), budget=10)


def test_constraint_errors():
    with pytest.raises(UnknownNameError, match="params_M"):
        nasforge.create_study(constraints=["param_M<=1"], evaluator=evaluator())
    with pytest.raises(InvalidConfigError, match="metric<=value"):
        nasforge.create_study(constraints=["params_M=<1"])


def test_constrained_studies_resume_to_the_same_trials():
    storage = InMemoryStorage()
    ev = evaluator()
    kwargs = dict(strategy="regularized-evolution", constraints=["params_M<=0.4"], evaluator=ev)
    one_go = nasforge.create_study(**kwargs).optimize(ev, budget=50)
    nasforge.create_study(storage=storage, study_name="c", **kwargs).optimize(ev, budget=20)
    resumed = nasforge.load_study("c", storage).optimize(budget=50)
    assert [t.arch for t in resumed.trials] == [t.arch for t in one_go.trials]


def test_pareto_front_of_a_two_objective_study():
    from nasforge.pareto import dominates

    ev = nasforge.evaluators.create("tabular", metrics=["test_acc", "latency_ms[edgegpu]"])
    study = nasforge.create_study(
        strategy="optuna-nsga2" if _has("optuna") else "random",
        objectives=["test_acc:max", "latency_ms[edgegpu]:min"],
        evaluator=ev,
    ).optimize(ev, budget=60)
    front = study.pareto_front()
    assert front
    scored = [t for t in study.trials if t.scores is not None]
    for t in front:  # nothing dominates a member of the front
        assert not any(dominates(o.scores, t.scores) for o in scored)
    for t in scored:  # everything else is dominated by a member
        if t not in front:
            assert any(dominates(f.scores, t.scores) for f in front) or any(
                f.scores == t.scores for f in front
            )


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
