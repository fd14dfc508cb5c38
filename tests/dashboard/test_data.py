"""The dashboard's data layer on stored studies: counts, best trial, deltas, trajectory, front,
failures, one-shot weights, deleted studies, JSON safety, and a storage never written."""

from __future__ import annotations

import gc
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

import nasforge
from nasforge import spaces
from nasforge.dashboard._data import DashboardData
from nasforge.errors import StorageError, StudyNotFoundError, UnknownNameError
from nasforge.pareto import dominates
from nasforge.storage import StudyRecord, get_storage
from nasforge.trial import Trial, TrialState

OBJECTIVES = ["valid_acc:max", "params_M:min"]


def _search(url: str, name: str, budget: int, seed: int = 0) -> None:
    """Run a search and close its storage (its last writer checkpoints the file now, not when
    it is garbage-collected in the middle of a test that watches the file)."""
    study = nasforge.create_study(
        space="nb201",
        strategy="random",
        seed=seed,
        storage=url,
        study_name=name,
        objectives=OBJECTIVES,
        dedupe=False,
    )
    study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), budget=budget)
    study.storage.close()


def _record(storage, name: str, **kwargs) -> StudyRecord:
    settings = {"space": "nb201", "strategy": "random", "seed": 0}
    settings.update(kwargs)
    settings.setdefault("objectives", ("valid_acc:max",))
    return storage.create_study(StudyRecord(name=name, **settings))


def _add(storage, record, choices, state=TrialState.COMPLETE, metrics=None, reason=None) -> int:
    arch = spaces.create("nb201").from_choices(choices)
    study_id = record.study_id
    number = storage.add_trial(
        study_id, Trial(number=0, arch=arch, started_at=datetime.now(timezone.utc))
    )
    if state is not TrialState.RUNNING:
        storage.finish_trial(
            study_id,
            Trial(
                number=number,
                arch=arch,
                state=state,
                metrics=dict(metrics or {}),
                cost=1.0,
                fail_reason=reason,
                started_at=datetime.now(timezone.utc),
            ),
        )
    return number


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A SQLite file with two searched studies (written, then only read by the tests)."""
    folder = tmp_path_factory.mktemp("dash")
    url = f"sqlite:///{folder}/runs.db"
    _search(url, "re-a", 40, seed=1)
    _search(url, "re-b", 25, seed=2)
    return url


def test_counts_best_and_cost_match_the_study(db):
    with DashboardData(db) as data:
        overview = data.overview()
        assert [s["name"] for s in overview["studies"]] == ["re-a", "re-b"]
        json.dumps(overview, allow_nan=False)
        for row in overview["studies"]:
            study = nasforge.load_study(row["name"], db, read_only=True)
            best = study.best_trial
            assert row["n_trials"] == len(study.trials)
            assert row["counts"] == {
                "COMPLETE": len(study.trials),
                "FAILED": 0,
                "RUNNING": 0,
                "STOPPED": 0,
            }
            assert row["best"] == {
                "number": best.number,
                "arch": best.arch.text,
                "metric": "valid_acc",
                "value": pytest.approx(best.metrics["valid_acc"], rel=1e-6),
            }
            assert row["cost"] == pytest.approx(study.spent)
            assert row["cost_unit"] == "queries"
            assert row["evaluator"] == "tabular · cifar10"
            assert row["objectives"] == OBJECTIVES
            page = data.study(row["name"])
            json.dumps(page, allow_nan=False)
            assert page["best"]["number"] == best.number
            assert page["best"]["metrics"]["params_M"] == pytest.approx(
                best.metrics["params_M"], rel=1e-5
            )
            assert page["objectives"] == [
                {"metric": "valid_acc", "direction": "max"},
                {"metric": "params_M", "direction": "min"},
            ]
            study.storage.close()


def test_trial_columns_are_objectives_constraints_then_six_more_without_device_tables(tmp_path):
    storage = get_storage(None)
    record = _record(
        storage, "c", objectives=("valid_acc:max",), options={"constraints": ["flops_M<=100"]}
    )
    metrics = {"latency_ms[pixel3]": 1.0, "valid_acc": 90.0, "a": 1, "b": 2, "flops_M": 50}
    metrics.update({f"m{i}": i for i in range(8)})
    _add(storage, record, (0, 1, 2, 3, 4, 0), metrics=metrics)
    with DashboardData(storage) as data:
        trials = data.study("c")["trials"]
    assert trials["metrics"] == ["valid_acc", "flops_M", "a", "b", "m0", "m1", "m2", "m3"]
    assert trials["fields"][:9] == [
        "number",
        "state",
        "arch",
        "cost",
        "seconds",
        "worker",
        "fail_reason",
        "duplicate_of",
        "finished_at",
    ]
    (row,) = trials["rows"]
    assert row[trials["fields"].index("m3")] == 3
    assert row[:3] == [0, "COMPLETE", spaces.create("nb201").from_choices((0, 1, 2, 3, 4, 0)).text]


def test_delta_holds_only_what_changed_and_merges_into_the_full_table(tmp_path):
    url = f"sqlite:///{tmp_path}/d.db"
    _search(url, "s", 10)
    writer = get_storage(url)
    record = writer.get_study("s")
    with DashboardData(url) as data:
        first = data.study("s")
        assert not first["delta"] and len(first["trials"]["rows"]) == 10
        # a trial left running, then more trials, then the running one finishes
        running = _add(writer, record, (1, 1, 1, 1, 1, 1), state=TrialState.RUNNING)
        second = data.study("s", **first["version"])
        assert second["delta"] and [r[0] for r in second["trials"]["rows"]] == [running]
        assert second["trials"]["rows"][0][1] == "RUNNING"
        _add(writer, record, (2, 2, 2, 2, 2, 2), metrics={"valid_acc": 1.0, "params_M": 0.1})
        arch = spaces.create("nb201").from_choices((1, 1, 1, 1, 1, 1))
        writer.finish_trial(
            record.study_id,
            Trial(number=running, arch=arch, state=TrialState.FAILED, fail_reason="boom"),
        )
        third = data.study("s", **second["version"])
        assert third["delta"]
        assert sorted(r[0] for r in third["trials"]["rows"]) == [running, running + 1]
        merged = {r[0]: r for r in first["trials"]["rows"]}
        for page in (second, third):
            merged.update({r[0]: r for r in page["trials"]["rows"]})
        full = data.study("s")
        assert not full["delta"]
        assert [merged[n] for n in sorted(merged)] == full["trials"]["rows"]
        assert third["counts"]["FAILED"] == 1 and third["n_trials"] == 12
        unchanged = data.study("s", **third["version"])
        assert unchanged["delta"] and unchanged["trials"]["rows"] == []
        # a version from the future (another study of that name): everything again
        assert not data.study("s", known=99, seq=99)["delta"]
    writer.close()


def test_a_poll_with_a_current_detail_token_leaves_the_summaries_out(tmp_path):
    url = f"sqlite:///{tmp_path}/d.db"
    _search(url, "s", 10)
    writer = get_storage(url)
    record = writer.get_study("s")
    with DashboardData(url) as data:
        first = data.study("s")
        assert not first["same_detail"] and "trajectory" in first and "scatter" in first
        again = data.study("s", **first["version"], detail=first["detail_token"])
        assert again["same_detail"] and again["detail_token"] == first["detail_token"]
        assert "trajectory" not in again and "scatter" not in again and "best" not in again
        assert again["trials"]["rows"] == []
        # a new trial makes the summaries new: a new token, and they are sent again
        _add(writer, record, (2, 2, 2, 2, 2, 2), metrics={"valid_acc": 99.0, "params_M": 0.1})
        third = data.study("s", **again["version"], detail=again["detail_token"])
        assert not third["same_detail"] and third["detail_token"] != first["detail_token"]
        assert third["best"]["value"] == 99.0 and len(third["trials"]["rows"]) == 1
        # another object's token (a restarted server) is never taken for current
        with DashboardData(url) as other:
            fresh = other.study("s", **third["version"], detail=third["detail_token"])
            assert not fresh["same_detail"] and "trajectory" in fresh
    writer.close()


def test_trajectory_is_the_running_best_in_finish_order(db):
    with DashboardData(db) as data:
        page = data.study("re-a")
    study = nasforge.load_study("re-a", db, read_only=True)
    ordered = sorted(study.trials, key=lambda t: t.finish_seq)
    expected, best, cost = [], -math.inf, 0.0
    for trial in ordered:
        cost += trial.cost
        if trial.metrics["valid_acc"] > best:
            best = trial.metrics["valid_acc"]
            expected.append((trial.number, cost, best))
    trajectory = page["trajectory"]
    assert trajectory["metric"] == "valid_acc" and trajectory["direction"] == "max"
    by_trial, by_cost = trajectory["by_trial"], trajectory["by_cost"]
    values = [v for _, v in by_trial]
    assert values == sorted(values)  # never gets worse
    assert [x for x, _ in by_trial] == sorted(x for x, _ in by_trial)
    improvements = by_trial[:-1] if by_trial[-1][0] != expected[-1][0] else by_trial
    assert [(n, pytest.approx(v, rel=1e-6)) for n, v in improvements] == [
        (n, v) for n, _, v in expected
    ]
    assert by_trial[-1] == [ordered[-1].number, pytest.approx(best, rel=1e-6)]
    assert [c for c, _ in by_cost[: len(expected)]] == pytest.approx([c for _, c, _ in expected])
    assert by_cost[-1][0] == pytest.approx(cost)
    study.storage.close()


def test_scatter_front_is_the_non_dominated_trials_with_the_true_front(db):
    with DashboardData(db) as data:
        scatter = data.study("re-a")["scatter"]
    assert scatter["x"] == {"metric": "params_M", "direction": "min"}
    assert scatter["y"] == {"metric": "valid_acc", "direction": "max"}
    oriented = {n: (-x, y) for x, y, n in scatter["points"]}
    assert len(oriented) == 40
    front = set(scatter["front"])
    assert front
    for number, point in oriented.items():
        beaten = any(dominates(other, point) for other in oriented.values())
        assert beaten == (number not in front)
    assert scatter["true_front_label"] == "true front of nb201 · cifar10"
    true = scatter["true_front"]
    assert len(true) > 3 and [p[0] for p in true] == sorted(p[0] for p in true)
    # nothing the search found beats the true front
    for x, y, _ in scatter["points"]:
        assert not any(dominates((-x, y), (-tx, ty)) for tx, ty in true)


def test_one_objective_scatters_against_params_and_failures_are_grouped(tmp_path):
    storage = get_storage(None)
    record = _record(storage, "f")
    _add(storage, record, (0,) * 6, metrics={"valid_acc": 50.0, "params_M": 1.0})
    _add(storage, record, (1,) * 6, metrics={"valid_acc": 60.0, "params_M": 2.0})
    _add(storage, record, (2,) * 6, metrics={"valid_acc": 40.0, "params_M": 3.0})
    for worker in ("vm:12:ab3", "vm:99:cd4"):
        _add(
            storage,
            record,
            (3,) * 6,
            state=TrialState.FAILED,
            reason=f"worker {worker} stopped while evaluating this trial (no heartbeat for 60 s)",
        )
    _add(storage, record, (4,) * 6, state=TrialState.FAILED, reason="CUDA out of memory")
    with DashboardData(storage) as data:
        page = data.study("f")
    scatter = page["scatter"]
    assert scatter["x"]["metric"] == "params_M" and scatter["true_front"] is None
    assert scatter["front"] == [0, 1]  # trial 2 is larger and worse than both
    failures = page["failures"]
    assert [(g["reason"], g["count"]) for g in failures["by_reason"]] == [
        ("worker # stopped while evaluating this trial (no heartbeat for # s)", 2),
        ("CUDA out of memory", 1),
    ]
    assert failures["by_reason"][0]["example"].startswith("worker vm:12:ab3 stopped")
    assert [f["number"] for f in failures["trials"]] == [3, 4, 5]
    assert page["counts"] == {"COMPLETE": 3, "FAILED": 3, "RUNNING": 0, "STOPPED": 0}


def test_nan_and_infinite_values_become_null_and_floats_are_rounded():
    storage = get_storage(None)
    record = _record(storage, "n", objectives=("valid_acc:max", "params_M:min"))
    _add(storage, record, (0,) * 6, metrics={"valid_acc": math.nan, "params_M": math.inf})
    _add(storage, record, (1,) * 6, metrics={"valid_acc": 1 / 3, "params_M": 2.0})
    with DashboardData(storage) as data:
        page = data.study("n")
        trial = data.trial("n", 0)
    text = json.dumps({"page": page, "trial": trial}, allow_nan=False)
    assert "0.333333," in text or "0.333333]" in text
    assert trial["metrics"] == {"valid_acc": None, "params_M": None}
    assert page["best"]["number"] == 1 and page["n_trials"] == 2


def test_trial_holds_every_metric_and_a_drawing(db):
    with DashboardData(db) as data:
        trial = data.trial("re-b", 3)
        study = nasforge.load_study("re-b", db, read_only=True)
        stored = study.trials[3]
        assert trial["arch"] == stored.arch.text and trial["state"] == "COMPLETE"
        assert set(trial["metrics"]) == set(stored.metrics)
        assert trial["drawing_error"] is None and trial["drawing"]["kind"] == "cells"
        assert trial["drawing"] == json.loads(json.dumps(study.space.drawing(stored.arch)))
        with pytest.raises(UnknownNameError, match=r"0\.\.24"):
            data.trial("re-b", 25)
        json.dumps(trial, allow_nan=False)
        study.storage.close()


def test_a_study_deleted_while_cached_is_noticed(tmp_path):
    url = f"sqlite:///{tmp_path}/del.db"
    _search(url, "gone", 5)
    _search(url, "kept", 5)
    with DashboardData(url) as data:
        assert data.study("gone")["n_trials"] == 5
        writer = get_storage(url)
        writer.delete_study("gone")
        writer.close()
        with pytest.raises(
            StudyNotFoundError,
            match=r"No study 'gone' in sqlite:///.*; its "
            r"studies: kept\.",
        ):
            data.study("gone")
        with pytest.raises(StudyNotFoundError):
            data.trial("gone", 0)
        assert [s["name"] for s in data.overview()["studies"]] == ["kept"]


def test_unreadable_storage_is_one_line_with_the_password_hidden(tmp_path):
    with pytest.raises(StorageError) as info:
        DashboardData("nonsense://user:secret@host/db")
    assert "secret" not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(StorageError, match="No study database"):
        DashboardData(f"sqlite:///{tmp_path}/missing.db")


def test_a_read_only_storage_is_never_written(db):
    gc.collect()  # no writer of an earlier test left to checkpoint the file while we watch
    path = db.removeprefix("sqlite:///")
    before = (Path(path).read_bytes(), os.stat(path).st_mtime_ns)
    for _ in range(3):
        with DashboardData(db) as data:
            for _ in range(5):
                data.overview()
                for name in ("re-a", "re-b"):
                    page = data.study(name)
                    data.study(name, **page["version"])
                    data.trial(name, 0)
    assert (Path(path).read_bytes(), os.stat(path).st_mtime_ns) == before


def test_oneshot_study_shows_weights_per_epoch_summing_to_one(tmp_path):
    torch = pytest.importorskip("torch")
    from nasforge import oneshot
    from nasforge.oneshot import SupernetSettings
    from nasforge.train import SyntheticImages

    del torch
    data_set = SyntheticImages(num_classes=4, n_train=64, n_test=4, size=8).load()
    url = f"sqlite:///{tmp_path}/os.db"
    oneshot.search(
        "darts",
        data_set,
        settings=SupernetSettings(channels=4, cells=1, batch_size=16),
        epochs=2,
        device="cpu",
        storage=url,
        study_name="os",
    )
    with DashboardData(url) as data:
        page = data.study("os")
        assert data.overview()["studies"][0]["oneshot"] is True
    json.dumps(page, allow_nan=False)
    shot = page["oneshot"]
    assert shot["epochs"] == [0, 1]
    assert all(0.0 <= v <= 1.0 for v in shot["param_free_share"] + shot["param_free_weight"])
    assert "valid_acc" in shot["metrics"] and len(shot["metrics"]["valid_acc"]) == 2
    (group,) = shot["groups"]
    decisions = spaces.create("nb201").decisions()
    assert [r["label"] for r in group["rows"]] == [d.name for d in decisions]
    assert group["param_free"] == [
        o in ("none", "skip_connect", "avg_pool_3x3") for o in group["options"]
    ]
    for row in group["rows"]:
        assert len(row["weights"]) == 2
        for weights in row["weights"]:
            assert len(weights) == len(group["options"])
            assert sum(weights) == pytest.approx(1.0, abs=1e-4)
    # the mean parameter-free weight of an epoch is the mean over rows of the free options'
    for epoch, recorded in enumerate(shot["param_free_weight"]):
        rows = [r["weights"][epoch] for r in group["rows"]]
        mass = sum(sum(w for w, f in zip(ws, group["param_free"], strict=True) if f) for ws in rows)
        assert mass / len(rows) == pytest.approx(recorded, abs=1e-4)


def test_a_study_that_cannot_be_summarised_is_listed_with_the_reason():
    storage = get_storage(None)
    good = _record(storage, "good")
    _add(storage, good, (0,) * 6, metrics={"valid_acc": 1.0})
    bad = _record(storage, "bad", objectives=("valid_acc:sideways",))
    _add(storage, bad, (0,) * 6, metrics={"valid_acc": 1.0})
    with DashboardData(storage) as data:
        rows = {row["name"]: row for row in data.overview()["studies"]}
    assert rows["good"]["best"]["number"] == 0 and "error" not in rows["good"]
    assert rows["bad"]["n_trials"] == 1 and rows["bad"]["best"] is None
    assert "sideways" in rows["bad"]["error"]


def test_oneshot_weights_stored_after_their_trial_was_read_are_picked_up():
    from nasforge.storage import InMemoryStorage

    class Counting(InMemoryStorage):
        asked = 0

        def get_reports(self, *args, **kwargs):
            self.asked += 1
            return super().get_reports(*args, **kwargs)

    storage = Counting()
    record = _record(storage, "late", options={"oneshot": True})
    number = _add(
        storage,
        record,
        (3,) * 6,
        metrics={
            "valid_acc": 50.0,
            "epoch": 0.0,
            "param_free_share": 0.0,
            "param_free_weight": 0.25,
        },
    )
    with DashboardData(storage) as data:
        assert data.overview()["studies"][0]["oneshot"] and storage.asked == 0  # not shown there
        first = data.study("late")
        assert first["oneshot"]["epochs"] == [0] and first["oneshot"]["groups"] == []
        options = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
        weights = {f"w|edges|{r}|{o}": 0.25 for r in range(6) for o in options}
        weights.update({"f|edges|none": 1.0, "f|edges|skip_connect": 1.0})
        storage.add_reports(record.study_id, number, {0: weights})
        (group,) = data.study("late", **first["version"])["oneshot"]["groups"]
    assert group["name"] == "edges" and group["options"] == list(options)
    assert group["param_free"] == [True, True, False, False]
    assert [r["weights"] for r in group["rows"]] == [[[0.25] * 4]] * 6


def test_a_study_deleted_and_created_again_under_its_name_is_read_anew(tmp_path):
    url = f"sqlite:///{tmp_path}/again.db"
    _search(url, "again", 10)
    with DashboardData(url) as data:
        first = data.study("again")
        assert data.overview()["studies"][0]["n_trials"] == 10
        writer = get_storage(url)
        writer.delete_study("again")
        writer.close()
        _search(url, "again", 4, seed=5)  # SQLite gives it the id of the deleted study
        study = nasforge.load_study("again", url, read_only=True)
        assert data.overview()["studies"][0]["n_trials"] == 4
        page = data.study("again", **first["version"])
        assert not page["delta"] and page["n_trials"] == 4
        assert [row[2] for row in page["trials"]["rows"]] == [t.arch.text for t in study.trials]
        assert page["best"]["number"] == study.best_trial.number
        study.storage.close()
        # the new study grows past the old one while a page of the old one is open: every
        # row again (its version alone would look like a delta)
        resumed = nasforge.load_study("again", url)
        resumed.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), budget=14)
        resumed.storage.close()
        grown = data.study("again", **first["version"], detail=first["detail_token"])
        assert not grown["delta"] and len(grown["trials"]["rows"]) == grown["n_trials"] >= 10


def test_a_study_page_is_answered_while_the_overview_reads_another_study():
    import threading

    from nasforge.storage import InMemoryStorage

    class Slow(InMemoryStorage):
        """Reading study ``slow``'s trials waits until ``go`` is set."""

        def __init__(self) -> None:
            super().__init__()
            self.reading, self.go, self.slow_id = threading.Event(), threading.Event(), -1

        def get_trials(self, study_id, **kwargs):
            if study_id == self.slow_id:
                self.reading.set()
                assert self.go.wait(10)
            return super().get_trials(study_id, **kwargs)

    storage = Slow()
    slow = _record(storage, "slow")  # listed first: the overview reads it first
    fast = _record(storage, "fast")
    _add(storage, slow, (0,) * 6, metrics={"valid_acc": 1.0})
    _add(storage, fast, (1,) * 6, metrics={"valid_acc": 2.0})
    storage.slow_id = slow.study_id
    with DashboardData(storage) as data:
        overview: list[dict] = []
        reader = threading.Thread(target=lambda: overview.append(data.overview()))
        reader.start()
        try:
            assert storage.reading.wait(10)
            page: list[dict] = []
            asker = threading.Thread(target=lambda: page.append(data.study("fast")))
            asker.start()
            asker.join(10)
            answered = bool(page)  # before the overview could finish
        finally:
            storage.go.set()
            reader.join(10)
    assert answered and page[0]["best"]["number"] == 0 and page[0]["n_trials"] == 1
    assert [row["n_trials"] for row in overview[0]["studies"]] == [1, 1]


def test_the_best_among_equals_is_the_one_that_finished_first():
    storage = get_storage(None)
    record = _record(storage, "tie")
    arch = spaces.create("nb201").from_choices((2,) * 6)
    started = datetime.now(timezone.utc)
    for _ in range(2):  # two workers take a trial each
        storage.add_trial(record.study_id, Trial(number=0, arch=arch, started_at=started))
    for number in (1, 0):  # trial 1 finishes first, with the same accuracy as trial 0
        storage.finish_trial(
            record.study_id,
            Trial(
                number=number,
                arch=arch,
                state=TrialState.COMPLETE,
                metrics={"valid_acc": 70.0},
                cost=1.0,
                started_at=started,
            ),
        )
    with DashboardData(storage) as data:
        assert data.overview()["studies"][0]["best"]["number"] == 1  # as Study.best_trial
        page = data.study("tie")
    assert page["best"]["number"] == 1
    assert page["trajectory"]["by_trial"][0] == [1, 70.0]


def test_cost_leaves_out_retried_failures_in_the_total_and_the_trajectory():
    storage = get_storage(None)
    record = _record(storage, "retry")
    arch = spaces.create("nb201").from_choices((2,) * 6)
    now = datetime.now(timezone.utc)
    outcomes = [  # (retry_of, state, cost): trial 1 retries trial 0, which failed
        (None, TrialState.FAILED, 5.0),
        (0, TrialState.COMPLETE, 1.0),
        (None, TrialState.COMPLETE, 2.0),
    ]
    for retry_of, state, cost in outcomes:
        number = storage.add_trial(
            record.study_id, Trial(number=0, arch=arch, started_at=now, retry_of=retry_of)
        )
        storage.finish_trial(
            record.study_id,
            Trial(
                number=number,
                arch=arch,
                state=state,
                metrics={"valid_acc": 60.0 + number} if state is TrialState.COMPLETE else {},
                cost=cost,
                retry_of=retry_of,
                started_at=now,
            ),
        )
    with DashboardData(storage) as data:
        page = data.study("retry")
    assert page["cost"] == 3.0
    assert page["trajectory"]["by_cost"] == [[1.0, 61.0], [3.0, 62.0]]


def test_a_heartbeat_alone_recomputes_nothing():
    storage = get_storage(None)
    record = _record(storage, "beat")
    _add(storage, record, (1,) * 6, metrics={"valid_acc": 50.0})
    running = _add(storage, record, (2,) * 6, state=TrialState.RUNNING)
    with DashboardData(storage) as data:
        first = data.study("beat")
        storage.heartbeat(record.study_id, running)
        again = data.study("beat", **first["version"])
        assert again["delta"] and again["trials"]["rows"] == []
        assert again["trajectory"] is first["trajectory"]  # the summaries were kept
        _add(storage, record, (3,) * 6, metrics={"valid_acc": 60.0})
        changed = data.study("beat", **again["version"])
    assert changed["trajectory"]["by_trial"][-1] == [2, 60.0]
