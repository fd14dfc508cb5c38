"""Many workers on one study: no trial lost or evaluated twice, a consistent replay, dead
workers' trials retried, a deleted study, crash safety, Ray tasks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

import nasforge
from nasforge.cli import main
from nasforge.errors import InvalidConfigError, StudyConflictError, StudyDeletedError
from nasforge.evaluators.tabular import TabularEvaluator
from nasforge.execution.worker import join_study, run_worker
from nasforge.storage import get_storage
from nasforge.trial import Trial, TrialState

EVO = {"population_size": 10, "tournament_size": 3}

WORKER = textwrap.dedent(
    """
    import sys, time
    import nasforge
    from nasforge.evaluators.tabular import TabularEvaluator
    from nasforge.execution.worker import run_worker

    class Slow(TabularEvaluator):
        def evaluate(self, arch, fidelity=None):
            time.sleep(float(sys.argv[4]))
            return super().evaluate(arch, fidelity)

    url, name, n, _, strategy = sys.argv[1:6]
    params = {"population_size": 10, "tournament_size": 3} if strategy != "random" else {}
    study = nasforge.create_study(strategy=strategy, seed=5, storage=url, study_name=name,
        strategy_params=params, load_if_exists=True)
    study.optimize(Slow("nb201", "cifar10"), n_trials=int(n))
    """
)


class Slow(TabularEvaluator):
    def __init__(self, delay: float = 0.0, on_call=None) -> None:
        super().__init__("nb201", "cifar10")
        self.delay = delay
        self.calls = 0
        self.on_call = on_call

    def __getstate__(self):  # the table's file handle is reopened by the receiving process
        return {"delay": self.delay}

    def __setstate__(self, state):
        self.__init__(state["delay"])

    def evaluate(self, arch, fidelity=None):
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        time.sleep(self.delay)
        return super().evaluate(arch, fidelity)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'w.db'}"


def _spawn(script, url: str, name: str, n: int, delay: float, strategy: str):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [sys.executable, str(script), url, name, str(n), str(delay), strategy]
    return subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)


def _check_no_loss_no_duplicate(study: nasforge.Study, n: int) -> None:
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers)))
    assert study.n_finished == n
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    assert len(study.trials) == n


@pytest.mark.parametrize("strategy", ["random", "regularized-evolution"])
def test_two_worker_processes_share_a_study(url, tmp_path, strategy):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    n = 30
    procs = [_spawn(script, url, "w", n, 0.02, strategy) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    study = nasforge.load_study("w", url)  # a fresh replay agrees with the workers' record
    _check_no_loss_no_duplicate(study, n)
    assert len({t.worker for t in study.trials}) == 2  # both worked
    concurrent = [t for t in study.trials if t.asked_after is not None and t.asked_after < t.number]
    assert concurrent  # some trials were proposed while another was running
    if strategy == "random":  # asks do not depend on tells: the same proposals as one worker
        alone = nasforge.create_study(strategy="random", seed=5).optimize(Slow(), n_trials=n)
        assert [t.arch for t in study.trials] == [t.arch for t in alone.trials]


def test_async_executor_keeps_slots_busy_and_replays(tmp_path):
    from nasforge.execution import ProcessPool

    storage = f"sqlite:///{tmp_path / 'p.db'}"
    study = nasforge.create_study(
        strategy="regularized-evolution",
        seed=2,
        strategy_params=EVO,
        storage=storage,
        study_name="p",
    )
    with ProcessPool(2) as pool:
        study.optimize(Slow(0.05), n_trials=16, executor=pool)
    _check_no_loss_no_duplicate(study, 16)
    # the second trial was proposed before the first one finished: two in flight
    assert study.trials[1].asked_after == 0
    again = nasforge.load_study("p", storage)
    assert [t.arch for t in again.trials] == [t.arch for t in study.trials]
    assert again.best_trial.number == study.best_trial.number


def _ghost(study: nasforge.Study, worker: str, beat_age: float) -> Trial:
    """Record the strategy's next proposal as RUNNING in another worker's name."""
    twin = nasforge.load_study(study.name, study.storage)
    proposal = twin._strategy.ask()
    now = datetime.now(timezone.utc)
    trial = Trial(number=-1, arch=proposal.arch, worker=worker, started_at=now)
    number = study.storage.add_trial(study.record.study_id, trial)
    if beat_age:
        import sqlalchemy as sa

        engine = sa.create_engine(study.storage.url)
        old = (now - timedelta(seconds=beat_age)).replace(tzinfo=None)
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE nasforge_trials SET heartbeat_at = :t WHERE number = :n"),
                {"t": old, "n": number},
            )
        engine.dispose()
    return trial


def test_silent_worker_is_declared_dead_after_the_grace_period_and_retried(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    study = nasforge.create_study(
        strategy="random", seed=1, storage=url, study_name="g", heartbeat_grace=1.0
    )
    study.optimize(Slow(), n_trials=3)
    ghost = _ghost(study, "elsewhere:1:x", beat_age=0)  # alive a moment ago, on another host
    started = time.monotonic()
    study.optimize(Slow(), n_trials=4)  # the ghost's trial is the last one: wait for it
    waited = time.monotonic() - started
    dead, retry = study.trials[3], study.trials[4]
    assert waited >= 0.9  # it waited for the grace period before declaring the ghost dead
    assert dead.state is TrialState.FAILED and dead.retryable
    assert "elsewhere:1:x" in dead.fail_reason and "heartbeat" in dead.fail_reason
    assert retry.retry_of == 3 and retry.arch == ghost.arch
    assert retry.state is TrialState.COMPLETE and study.n_finished == 4


def test_retry_limit_tells_the_strategy_the_failure(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    study = nasforge.create_study(
        strategy="random", seed=1, storage=url, study_name="r", max_retries=0
    )
    study.optimize(Slow(), n_trials=2)
    _ghost(study, "elsewhere:1:x", beat_age=3600)
    study.optimize(Slow(), n_trials=4)
    assert study.trials[2].state is TrialState.FAILED
    assert all(t.retry_of is None for t in study.trials)  # counted as failed, not retried
    assert study.n_finished == 4 and len(study.trials) == 4
    with pytest.raises(InvalidConfigError, match="max_retries"):
        nasforge.create_study(strategy="random", max_retries=-1)


def test_late_result_of_a_trial_declared_dead_is_dropped(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    study = nasforge.create_study(strategy="random", seed=1, storage=url, study_name="l")

    def declare_dead(call: int) -> None:
        if call == 2:  # another worker declares trial 1 dead while it is evaluated
            store = get_storage(url)
            trial = store.get_trials(study.record.study_id)[1]
            trial.state, trial.retryable, trial.fail_reason = TrialState.FAILED, True, "dead"
            assert store.finish_trial(study.record.study_id, trial)
            store.close()

    study.optimize(Slow(on_call=declare_dead), n_trials=3)
    assert study.trials[1].state is TrialState.FAILED and study.trials[1].fail_reason == "dead"
    assert study.trials[2].retry_of == 1 and study.trials[2].state is TrialState.COMPLETE
    assert "result is dropped" in caplog.text


def test_study_deleted_while_a_worker_runs(url):
    study = nasforge.create_study(strategy="random", seed=0, storage=url, study_name="d")

    def delete(call: int) -> None:
        if call == 3:
            store = get_storage(url)
            store.delete_study("d")
            store.close()

    with pytest.raises(StudyDeletedError, match="deleted"):
        study.optimize(Slow(on_call=delete), n_trials=10)


def test_worker_joins_with_stored_settings_and_limits(tmp_path):
    url = f"sqlite:///{tmp_path / 'j.db'}"
    create = {"strategy": "random", "seed": 4, "evaluator": Slow()}
    first = join_study(url, "j", create=create)
    report = run_worker(first, n_trials=6)
    assert report.trials == 6 and report.study_finished == 6
    second = join_study(url, "j", expect={"strategy": "random"})
    assert run_worker(second).limits == {"n_trials": 6}  # the stored limit
    with pytest.raises(StudyConflictError, match=r"strategy: stored 'random'.*'local-search'"):
        join_study(url, "j", expect={"strategy": "local-search"})
    with pytest.raises(StudyConflictError, match="space"):
        join_study(url, "j", expect={"space": "darts"})
    bare = nasforge.create_study(strategy="random", storage=url, study_name="bare")
    with pytest.raises(InvalidConfigError, match="no stored limit"):
        run_worker(bare)


def test_worker_command(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    args = ["worker", "--storage", url, "--study", "c", "--quiet"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--strategy", "random", "--trials", "5", "--json"])
    assert exit_info.value.code == 0
    assert '"study_finished": 5' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--strategy", "regularized-evolution"])
    assert exit_info.value.code == 2
    assert "created with other settings" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--executor", "spark"])
    assert exit_info.value.code == 2
    assert "Unknown executor 'spark'" in capsys.readouterr().err


def test_worker_command_hides_the_password_of_an_unreachable_database(monkeypatch, capsys):
    pytest.importorskip("psycopg")
    from nasforge.storage import rdb

    monkeypatch.setattr(
        rdb.RDBStorage.__init__, "__kwdefaults__", {"create": True, "retries": 1, "backoff": 0.01}
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://bob:hunter2@127.0.0.1:{port}/db"
    with pytest.raises(SystemExit) as exit_info:
        main(["worker", "--storage", url, "--study", "s", "--trials", "3"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "Cannot reach study database" in err and "bob:***@127.0.0.1" in err
    assert "hunter2" not in err


KILLED = textwrap.dedent(
    """
    import sys, time
    import nasforge
    from nasforge.evaluators.tabular import TabularEvaluator

    class Slow(TabularEvaluator):
        def evaluate(self, arch, fidelity=None):
            time.sleep(0.01)
            return super().evaluate(arch, fidelity)

    study = nasforge.create_study(strategy="regularized-evolution", seed=3, storage=sys.argv[1],
        study_name="k", load_if_exists=True,
        strategy_params={"population_size": 10, "tournament_size": 3})
    study.optimize(Slow("nb201", "cifar10"), n_trials=int(sys.argv[2]))
    """
)


def _finished(url: str) -> int:
    store = get_storage(url)
    try:
        record = store.get_study("k")
        if record is None:
            return 0
        return sum(t.state.finished for t in store.get_trials(record.study_id))
    finally:
        store.close()


@pytest.mark.slow
def test_sigkill_then_resume_on_postgres_equals_the_uninterrupted_run(postgres_url, tmp_path):
    script = tmp_path / "k.py"
    script.write_text(KILLED)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    n, before = 50, 0
    for extra in (0.0, 0.004, 0.011):
        proc = subprocess.Popen([sys.executable, str(script), postgres_url, str(n)], env=env)
        deadline = time.monotonic() + 120
        while _finished(postgres_url) < before + 5 and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        time.sleep(extra)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = [t for t in nasforge.load_study("k", postgres_url).trials if t.state.finished]
        assert len(done) >= before + 5
        before = len(done)
    subprocess.run([sys.executable, str(script), postgres_url, str(n)], env=env, check=True)
    study = nasforge.load_study("k", postgres_url)
    reference = nasforge.create_study(
        strategy="regularized-evolution", seed=3, strategy_params=EVO
    ).optimize(Slow(), n_trials=n)
    assert [t.arch for t in study.completed_trials] == [t.arch for t in reference.trials]
    assert study.n_finished == n


def test_killed_worker_of_a_shared_study_loses_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    n = 40
    victim = _spawn(script, url, "a", n, 0.03, "regularized-evolution")
    other = _spawn(script, url, "a", n, 0.03, "regularized-evolution")
    deadline = time.monotonic() + 120
    store = get_storage(url)
    while time.monotonic() < deadline:
        record = store.get_study("a")
        if record is not None and len(store.get_trials(record.study_id)) >= 8:
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    other.communicate(timeout=180)
    assert other.returncode == 0
    study = nasforge.load_study("a", url)
    finished = [t for t in study.trials if t.state.finished]
    assert study.n_finished == n
    # a trial the victim left RUNNING was failed for retry and evaluated again, once
    retried = Counter(t.retry_of for t in study.trials if t.retry_of is not None)
    assert all(count == 1 for count in retried.values())
    complete = [t for t in finished if t.state is TrialState.COMPLETE]
    assert len(complete) == n
    store.close()


@pytest.mark.slow
def test_ray_tasks_run_concurrently_and_lost_workers_are_retried(tmp_path):
    pytest.importorskip("ray")
    from nasforge.execution.ray_executor import RayExecutor

    url = f"sqlite:///{tmp_path / 'ray.db'}"
    study = nasforge.create_study(strategy="random", seed=0, storage=url, study_name="r")
    flag = tmp_path / "crashed"
    evaluator = CrashOnce(str(flag))
    with RayExecutor(num_cpus=2, cpus_per_trial=1) as ex:
        assert ex.max_workers == 2
        study.optimize(evaluator, n_trials=8, executor=ex)
    trials = study.trials
    assert study.n_finished == 8
    lost = [t for t in trials if t.state is TrialState.FAILED]
    assert len(lost) == 1 and lost[0].retryable and "worker lost" in lost[0].fail_reason
    assert [t.retry_of for t in trials if t.retry_of is not None] == [lost[0].number]
    assert trials[1].asked_after == 0  # two tasks in flight at once
    assert nasforge.load_study("r", url).n_finished == 8


class CrashOnce(TabularEvaluator):
    """Sleeps 0.4 s per evaluation; the first evaluation kills its worker process."""

    def __init__(self, flag: str) -> None:
        super().__init__("nb201", "cifar10")
        self.flag = flag

    def spec(self):
        return None  # travels pickled, not rebuilt from the spec

    def __getstate__(self):
        return {"flag": self.flag}

    def __setstate__(self, state):
        self.__init__(state["flag"])

    def evaluate(self, arch, fidelity=None):
        try:  # atomic: of two evaluations started at once, exactly one crashes
            os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os._exit(1)
        time.sleep(0.4)
        return super().evaluate(arch, fidelity)


def test_concurrent_threads_on_memory_storage_agree():
    storage = nasforge.storage.InMemoryStorage()
    first = nasforge.create_study(strategy="random", seed=9, storage=storage, study_name="m")
    second = nasforge.load_study("m", storage)
    errors: list[BaseException] = []

    def work(study: nasforge.Study) -> None:
        try:
            study.optimize(Slow(0.005), n_trials=20)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    _check_no_loss_no_duplicate(nasforge.load_study("m", storage), 20)
