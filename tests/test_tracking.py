"""Tracking: the trials of a search read back from TensorBoard event files and MLflow runs."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import nasforge
from nasforge import cli
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, MissingDependencyError
from nasforge.evaluators.base import Evaluator
from nasforge.tracking import (
    MLflowCallback,
    TensorBoardCallback,
    decisions,
    folder_name,
    make_tracker,
)
from nasforge.trial import Direction, Result, TrialState

pytest.importorskip("tensorboard")
mlflow_tracking = pytest.importorskip("mlflow.tracking")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)
from tensorboard.plugins.hparams import metadata as hparams_metadata  # noqa: E402

EDGES = [f"edge{i}" for i in range(6)]


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow database for the module (making one takes seconds); each test uses its own
    experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def search(callbacks: list[Any], *, storage: str | None = None, name: str | None = None) -> Any:
    study = nasforge.create_study(
        space="nb201",
        strategy="random",
        seed=0,
        objectives=["valid_acc:max"],
        storage=storage,
        study_name=name,
        load_if_exists=storage is not None,
    )
    return study.optimize(
        nasforge.evaluators.create("tabular", dataset="cifar10"), budget=10, callbacks=callbacks
    )


def events(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator, tag: str) -> dict[int, float]:
    return {e.step: e.value for e in acc.Scalars(tag)}


def texts(acc: EventAccumulator, tag: str) -> dict[int, str]:
    return {
        e.step: e.tensor_proto.string_val[0].decode() for e in acc.Tensors(f"{tag}/text_summary")
    }


def session_hparams(folder: Path) -> tuple[dict[str, Any], int]:
    """The hyperparameters and the status of a trial's HParams session."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = events(folder)
    values: dict[str, Any] = {}
    start = acc.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG)
    data = plugin_data_pb2.HParamsPluginData.FromString(start.plugin_data.content)
    for name, value in data.session_start_info.hparams.items():
        values[name] = getattr(value, value.WhichOneof("kind"))
    end = acc.SummaryMetadata(hparams_metadata.SESSION_END_INFO_TAG)
    status = plugin_data_pb2.HParamsPluginData.FromString(end.plugin_data.content)
    return values, status.session_end_info.status


def nb201_values(arch: Architecture) -> dict[str, str]:
    """The six edge operations of an NB201 architecture string, read from the text."""
    ops = [part.split("~")[0] for part in str(arch).replace("+", "").split("|") if part]
    return dict(zip(EDGES, ops, strict=True))


# -- TensorBoard --------------------------------------------------------------------------------
def test_tensorboard_scalars_text_and_hparams_equal_the_trials(tmp_path):
    tracker = TensorBoardCallback(tmp_path / "runs")
    study = search([tracker])
    tracker.close()
    trials = study.trials
    assert len(trials) >= 10 and tracker.failure is None
    run = tmp_path / "runs" / study.name
    acc = events(run)
    numbers = [t.number for t in trials]
    for metric in ("valid_acc", "test_acc", "params_M", "latency_ms[pixel3]"):
        logged = scalars(acc, f"trial/{metric}")
        assert sorted(logged) == numbers
        for t in trials:
            assert logged[t.number] == pytest.approx(t.metrics[metric], rel=1e-6)
    best, running = scalars(acc, "best/valid_acc"), -1.0
    for t in trials:
        running = max(running, t.metrics["valid_acc"])
        assert best[t.number] == pytest.approx(running, rel=1e-6)
    spent, cumulative = scalars(acc, "cost/cumulative"), 0.0
    for t in trials:
        cumulative += t.cost
        assert scalars(acc, "cost/trial")[t.number] == pytest.approx(t.cost)
        assert spent[t.number] == pytest.approx(cumulative)
    assert spent[trials[-1].number] == pytest.approx(study.spent)
    arch_texts = texts(acc, "arch")
    assert all(str(t.arch) in arch_texts[t.number] for t in trials)
    # a duplicate answered for free says which trial it repeats
    duplicates = [t for t in trials if t.duplicate_of is not None]
    state_texts = texts(acc, "state") if duplicates else {}
    for t in duplicates:
        assert f"duplicate of trial {t.duplicate_of}" in state_texts[t.number]
    # each trial is an HParams session: its decisions and metrics
    sessions = sorted(p.name for p in run.glob("trial-*"))
    assert sessions == [f"trial-{n:05d}" for n in numbers]
    for t in trials[:4]:
        values, status = session_hparams(run / f"trial-{t.number:05d}")
        assert values == {**nb201_values(t.arch), "state": "COMPLETE"}
        assert status == 1  # STATUS_SUCCESS
        logged = events(run / f"trial-{t.number:05d}")
        assert logged.Scalars("valid_acc")[0].value == pytest.approx(t.metrics["valid_acc"])


def test_tensorboard_logs_only_the_chosen_metrics(tmp_path):
    tracker = TensorBoardCallback(tmp_path, metrics=["test_acc", "no_such_metric"])
    study = search([tracker])
    tracker.close()
    tags = events(tmp_path / study.name).Tags()["scalars"]
    assert [t for t in tags if t.startswith("trial/")] == ["trial/test_acc"]
    assert "best/valid_acc" in tags  # the objective's trajectory whatever is chosen


class Flaky(Evaluator):
    """Scores a DARTS genotype by its number of separable convolutions; fails on those with a
    max pooling in the normal cell's first node (a space without decisions)."""

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        text = str(arch)
        if "max_pool" in text.split("|")[0]:
            raise RuntimeError("ran out of memory")
        return Result({"valid_acc": float(text.count("sep_conv"))}, cost=1.0)


def test_failed_trials_and_spaces_without_decisions(tmp_path, mlflow_uri):
    tb = TensorBoardCallback(tmp_path)
    ml = MLflowCallback(mlflow_uri, experiment="darts-flaky")
    study = nasforge.create_study(space="darts", strategy="random", seed=3)
    study.optimize(Flaky(), n_trials=12, callbacks=[tb, ml])
    tb.close()
    failed = [t for t in study.trials if t.state is TrialState.FAILED]
    complete = [t for t in study.trials if t.state is TrialState.COMPLETE]
    assert failed and complete
    assert decisions(study.space, study.trials[0].arch) == {}
    run = tmp_path / study.name
    states = texts(events(run), "state")
    for t in failed:
        assert states[t.number].startswith("FAILED: ") and "ran out of memory" in states[t.number]
        values, status = session_hparams(run / f"trial-{t.number:05d}")
        assert values == {"arch": str(t.arch), "state": "FAILED"}
        assert status == 2  # STATUS_FAILURE
    assert set(states) == {t.number for t in failed}  # complete trials have no state text
    client = mlflow_tracking.MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("darts-flaky").experiment_id
    runs = client.search_runs([experiment], "tags.`nasforge.state` = 'FAILED'")
    assert sorted(int(r.data.tags["nasforge.trial"]) for r in runs) == [t.number for t in failed]
    for r in runs:
        assert r.info.status == "FAILED"
        assert "ran out of memory" in r.data.tags["nasforge.fail_reason"]
        assert r.data.params["arch"] == str(study.trials[int(r.data.params["trial"])].arch)


def test_trials_stopped_early_say_so(tmp_path, mlflow_uri):
    from nasforge.testing.curves import CurveEvaluator

    tb = TensorBoardCallback(tmp_path)
    ml = MLflowCallback(mlflow_uri, experiment="stopped")
    study = nasforge.create_study(
        space="nb201", strategy="random", seed=3, stopping="median",
        stopping_params={"min_trials": 3}, dedupe=False,
    )  # fmt: skip
    study.optimize(CurveEvaluator(), n_trials=12, callbacks=[tb, ml])
    tb.close()
    stopped = {t.number: t for t in study.trials if t.state is TrialState.STOPPED}
    assert stopped
    run = tmp_path / study.name
    states = texts(events(run), "state")
    assert set(states) == set(stopped)
    for number, t in stopped.items():
        assert states[number] == f"STOPPED: {t.fail_reason}" and "'median' rule" in states[number]
        values, status = session_hparams(run / f"trial-{number:05d}")
        assert values["state"] == "STOPPED" and status == 1  # the session ended as asked
        assert scalars(events(run), "trial/valid_acc")[number] == pytest.approx(
            t.metrics["valid_acc"]
        )  # the last reported value
    client = mlflow_tracking.MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("stopped").experiment_id
    runs = client.search_runs([experiment], "tags.`nasforge.state` = 'STOPPED'")
    assert sorted(int(r.data.params["trial"]) for r in runs) == sorted(stopped)
    assert {r.info.status for r in runs} == {"KILLED"}


def test_two_processes_write_their_own_event_files_into_one_run(tmp_path):
    """Two workers of one SQLite study (two Study objects, two trackers): each writes its own
    event file into the study's run folder and together they hold every trial."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    evaluator = nasforge.evaluators.create("tabular", dataset="cifar10")
    first = nasforge.create_study(
        space="nb201", strategy="random", seed=0, storage=storage, study_name="shared"
    )
    second = nasforge.load_study("shared", storage=storage)
    trackers = [TensorBoardCallback(tmp_path / "runs"), TensorBoardCallback(tmp_path / "runs")]
    first.optimize(evaluator, n_trials=4, callbacks=[trackers[0]])
    second.optimize(evaluator, n_trials=8, callbacks=[trackers[1]])
    for tracker in trackers:
        tracker.close()
    files = sorted((tmp_path / "runs" / "shared").glob("events.out.tfevents.*"))
    assert len(files) == 2
    steps = [set(scalars(events_file(f), "trial/valid_acc")) for f in files]
    assert steps[0].isdisjoint(steps[1]) and steps[0] | steps[1] == set(range(8))


def events_file(path: Path) -> EventAccumulator:
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def test_folder_names_keep_study_names_apart():
    assert folder_name("nb201-random-cifar10-seed0") == "nb201-random-cifar10-seed0"
    odd = [folder_name(n) for n in ("a b", "a_b", "a/b", "..", "<script>")]
    assert len(set(odd)) == len(odd)
    assert all("/" not in n and n not in (".", "..") for n in odd)


# -- MLflow -------------------------------------------------------------------------------------
def test_mlflow_child_runs_equal_the_trials_and_resume_keeps_the_parent(tmp_path, mlflow_uri):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = search([MLflowCallback(mlflow_uri, experiment="nb201-mlflow")], storage=storage)
    client = mlflow_tracking.MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("nb201-mlflow").experiment_id
    runs = client.search_runs([experiment], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("nasforge.role") == "study"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.params["space"] == "nb201" and parent.data.params["strategy"] == "random"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    by_number = {int(r.data.params["trial"]): r for r in children}
    assert sorted(by_number) == [t.number for t in study.trials]  # one child per trial
    for t in study.trials:
        run = by_number[t.number]
        assert run.info.run_name == f"trial-{t.number}"
        assert run.info.status == "FINISHED"
        assert {k: run.data.params[k] for k in EDGES} == nb201_values(t.arch)
        assert run.data.params["arch"] == str(t.arch)
        assert run.data.metrics["valid_acc"] == pytest.approx(t.metrics["valid_acc"])
        assert run.data.metrics["latency_ms/pixel3"] == pytest.approx(
            t.metrics["latency_ms[pixel3]"]
        )
        assert run.data.metrics["cost"] == pytest.approx(t.cost)
    history = client.get_metric_history(parent.info.run_id, "best_valid_acc")
    best, running = {m.step: m.value for m in history}, -1.0
    for t in study.trials:
        running = max(running, t.metrics["valid_acc"])
        assert best[t.number] == pytest.approx(running)
    # resume: a new process (a new callback) adds the new trials under the same parent
    before = len(study.trials)
    study.storage.close()
    assert parent.info.status == "RUNNING"  # nobody closed the first callback
    resumed = nasforge.load_study(study.name, storage=storage)
    with MLflowCallback(mlflow_uri, experiment="nb201-mlflow") as tracker:
        resumed.optimize(budget=15, callbacks=[tracker])
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"  # closed
    runs = client.search_runs([experiment], max_results=1000)
    assert [r.info.run_id for r in runs if r.data.tags.get("nasforge.role") == "study"] == [
        parent.info.run_id
    ]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(resumed.trials) > before
    assert sorted(int(r.data.params["trial"]) for r in children) == [
        t.number for t in resumed.trials
    ]
    resumed.storage.close()


def test_mlflow_workers_that_start_at_once_agree_on_one_parent(tmp_path, mlflow_uri):
    study = nasforge.create_study(space="nb201", strategy="random", seed=1, study_name="race")
    first, second = (MLflowCallback(mlflow_uri, experiment="race") for _ in range(2))
    made = first.parent_run_id(study)
    real_find = second._find
    calls: list[int] = []

    def late(experiment_id: str, query: str) -> list[Any]:  # did not see the first one yet
        calls.append(1)
        return [] if len(calls) == 1 else real_find(experiment_id, query)

    second._find = late  # type: ignore[method-assign]
    assert second.parent_run_id(study) == made
    client = mlflow_tracking.MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("race").experiment_id
    assert [r.info.run_id for r in client.search_runs([experiment])] == [made]


def test_mlflow_without_nesting_logs_trials_only(mlflow_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "flat")  # as MLflow's own API reads it
    study = search([MLflowCallback(mlflow_uri, nested=False)])
    client = mlflow_tracking.MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("flat").experiment_id])
    assert len(runs) == len(study.trials)
    assert not any("mlflow.parentRunId" in r.data.tags for r in runs)


def test_an_mlflow_store_that_cannot_be_opened_yet_is_opened_at_the_first_trial(
    mlflow_uri, monkeypatch
):
    """Two workers creating one SQLite store at once: the one that loses the race waits and
    tries again instead of stopping."""
    from nasforge.tracking import _mlflow

    real, tries = mlflow_tracking.MlflowClient, []

    def opening(uri: str | None) -> Any:
        tries.append(uri)
        if len(tries) <= 3:
            raise RuntimeError("(sqlite3.OperationalError) duplicate column name: step")
        return real(uri)

    monkeypatch.setattr(mlflow_tracking, "MlflowClient", opening)
    monkeypatch.setattr(_mlflow.time, "sleep", lambda seconds: None)
    tracker = MLflowCallback(mlflow_uri, experiment="late")
    assert len(tries) == 3  # tried three times, then left for the first trial
    study = search([tracker])
    assert tracker.failure is None and len(tries) == 4
    client = real(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("late").experiment_id])
    assert len(runs) == len(study.trials) + 1  # the trials and the study's parent run


def test_a_sqlite_store_is_opened_under_a_lock_on_its_file(tmp_path, monkeypatch):
    """Workers started at once must not run MLflow's schema migrations together (one fails on
    a table the other made): each opens the store holding an exclusive lock on its file."""
    import fcntl

    databases = [tmp_path / "new" / "m.db", tmp_path / "mlflow.db"]
    held: list[bool] = []

    def opening(uri: str | None) -> Any:
        with open(databases[len(held)], "rb") as other:  # another open file, as another worker's
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held.append(True)
            else:
                held.append(False)
        return object()

    monkeypatch.setattr(mlflow_tracking, "MlflowClient", opening)
    MLflowCallback(f"sqlite:///{databases[0]}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    MLflowCallback(None)  # MLflow's default store, a SQLite file in the working folder
    assert held == [True, True]
    for database in databases:
        with open(database, "rb") as after:  # released once opened
            fcntl.flock(after, fcntl.LOCK_EX | fcntl.LOCK_NB)


# -- failures do not stop the search ------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_failing_tracker_warns_once_and_the_search_goes_on(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = MLflowCallback(f"http://me:secret@127.0.0.1:{free_port()}")  # no server there
    blocked = TensorBoardCallback(tmp_path)
    (tmp_path / "nb201-blocked").write_text("a file where the run folder would go")
    study = nasforge.create_study(
        space="nb201", strategy="random", seed=0, study_name="nb201-blocked"
    )
    with caplog.at_level(logging.WARNING, logger="nasforge.tracking"):
        study.optimize(
            nasforge.evaluators.create("tabular", dataset="cifar10"),
            n_trials=6,
            callbacks=[down, blocked],
        )
    assert study.n_finished == 6
    warnings = [r.getMessage() for r in caplog.records if r.name == "nasforge.tracking"]
    assert len(warnings) == 2, warnings
    assert "MLflow at http://***@127.0.0.1" in warnings[0] and "search goes on" in warnings[0]
    assert "secret" not in warnings[0] and "secret" not in str(down.failure)
    assert "TensorBoard at" in warnings[1]
    assert down.failure is not None and blocked.failure is not None
    down.close()  # a failed tracker closes quietly
    blocked.close()


# -- building trackers, missing packages ------------------------------------------------------
def test_make_tracker_forms(tmp_path, mlflow_uri, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = make_tracker("tensorboard")
    assert isinstance(default, TensorBoardCallback) and default.log_dir == Path("runs")
    assert make_tracker(f"TensorBoard:{tmp_path / 'tb'}").log_dir == tmp_path / "tb"
    tracker = make_tracker(f"mlflow:{mlflow_uri}")
    assert isinstance(tracker, MLflowCallback) and tracker.tracking_uri == mlflow_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)  # MLflow's default, not a new store
    assert make_tracker("mlflow").tracking_uri is None
    for bad in ("wandb", "tensorboard:", "mlflow:  ", "", "tensorboardx:runs"):
        with pytest.raises(InvalidConfigError, match="tensorboard:DIR, mlflow, mlflow:URI"):
            make_tracker(bad)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InvalidConfigError, match="is a file"):
        make_tracker("tensorboard:a-file")
    with pytest.raises(InvalidConfigError, match="MLflow cannot track to 'nope://x': it has no st"):
        make_tracker("mlflow:nope://x")


def test_a_missing_package_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'nasforge\[tracking\]'"):
        TensorBoardCallback(tmp_path)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(MissingDependencyError, match="mlflow-skinny"):
        make_tracker("mlflow")


# -- the command line -----------------------------------------------------------------------------
runner = CliRunner()


def test_search_and_worker_track_to_tensorboard_and_mlflow(tmp_path, mlflow_uri):
    storage = f"sqlite:///{tmp_path / 'cli.db'}"
    track = ["--track", f"tensorboard:{tmp_path / 'tb'}", "--track", f"mlflow:{mlflow_uri}"]
    common = ["--storage", storage, "--study", "cli-study", "--json", "--quiet"]
    args = ["search", "--strategy", "random", "--budget", "5", *common, *track]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    args = ["worker", "--trials", "8", *common, *track]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["study_trials"] == 8
    study = nasforge.load_study("cli-study", storage=storage)
    numbers = [t.number for t in study.trials]
    files = list((tmp_path / "tb" / "cli-study").glob("events.out.tfevents.*"))
    assert len(files) == 2  # one of the search, one of the worker
    logged = {e.step for f in files for e in events_file(f).Scalars("trial/valid_acc")}
    assert sorted(logged) == numbers
    client = mlflow_tracking.MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("cli-study").experiment_id
    runs = client.search_runs([experiment], max_results=100)
    parents = [r for r in runs if r.data.tags.get("nasforge.role") == "study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(r.data.params["trial"]) for r in runs if "trial" in r.data.params) == numbers
    study.storage.close()


def test_a_tracked_tabular_search_does_not_import_torch(tmp_path):
    """The house rule (a search on a tabular benchmark never imports torch) holds with
    --track tensorboard: the events are written by the tensorboard package alone."""
    code = (
        "import sys\n"
        "from nasforge.cli import main\n"
        "try:\n"
        "    main(['search', '--budget', '3', '--study', 'no-torch', '--json', '--quiet',\n"
        f"          '--track', 'tensorboard:{tmp_path / 'tb'}'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "False"
    trials = json.loads(done.stdout)["n_trials"]
    logged = scalars(events(tmp_path / "tb" / "no-torch"), "trial/valid_acc")
    assert sorted(logged) == list(range(trials))


def test_a_bad_track_spec_is_one_line_and_makes_no_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'bad.db'}"
    result = runner.invoke(cli.app, ["search", "--storage", storage, "--track", "wandb"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Unknown tracker 'wandb'")
    assert "tensorboard:DIR" in lines[0] and "mlflow:URI" in lines[0]
    assert not (tmp_path / "bad.db").exists()
    result = runner.invoke(
        cli.app, ["worker", "--storage", storage, "--study", "s", "--track", "mlflow:"]
    )
    assert result.exit_code == 2 and "Unknown tracker 'mlflow:'" in result.stderr


def test_the_help_names_the_extra():
    for command in ("search", "worker"):
        result = runner.invoke(cli.app, [command, "--help"], env={"COLUMNS": "300"})
        assert result.exit_code == 0
        assert "pip install 'nasforge[tracking]'" in result.stdout  # not read as rich markup
