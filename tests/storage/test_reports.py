"""Intermediate reports in every storage: written per step, replaced when written again,
read per study and trial, removed with the study; schema 3 and its upgrade from schema 2."""

from __future__ import annotations

import sqlite3

import pytest

from nasforge.errors import StorageError
from nasforge.storage import SCHEMA_VERSION, InMemoryStorage, get_storage
from nasforge.testing.storages import RECORD, nb201_arch
from nasforge.trial import Trial, TrialState


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    if request.param == "memory":
        return InMemoryStorage()
    return get_storage(f"sqlite:///{tmp_path / 'r.db'}")


def test_reports_are_stored_per_trial_and_step_and_read_back_in_order(storage):
    study_id = storage.create_study(RECORD).study_id
    storage.add_reports(study_id, 1, {2: {"valid_acc": 50.0}})
    storage.add_reports(study_id, 0, {3: {"valid_acc": 70.0, "loss": 0.5}, 1: {"valid_acc": 30}})
    storage.add_reports(study_id, 1, {1: {"valid_acc": 20.0}})
    got = storage.get_reports(study_id)
    assert got == {
        0: {1: {"valid_acc": 30.0}, 3: {"valid_acc": 70.0, "loss": 0.5}},
        1: {1: {"valid_acc": 20.0}, 2: {"valid_acc": 50.0}},
    }
    assert [list(steps) for steps in got.values()] == [[1, 3], [1, 2]]
    assert storage.get_reports(study_id, [1]) == {1: got[1]}
    assert storage.get_reports(study_id, [7]) == {}


def test_a_step_written_again_is_replaced_not_duplicated(storage):
    study_id = storage.create_study(RECORD).study_id
    storage.add_reports(study_id, 0, {1: {"valid_acc": 30.0}, 2: {"valid_acc": 40.0}})
    storage.add_reports(study_id, 0, {2: {"valid_acc": 45.0}})
    storage.add_reports(study_id, 0, {2: {"valid_acc": 45.0}})  # the same twice: no change
    assert storage.get_reports(study_id) == {0: {1: {"valid_acc": 30.0}, 2: {"valid_acc": 45.0}}}


def test_reports_are_kept_per_study_and_removed_with_it(storage):
    import dataclasses

    first = storage.create_study(RECORD).study_id
    second = storage.create_study(dataclasses.replace(RECORD, name="other")).study_id
    storage.add_reports(first, 0, {1: {"valid_acc": 1.0}})
    storage.add_reports(second, 0, {1: {"valid_acc": 2.0}})
    storage.delete_study(RECORD.name)
    assert storage.get_reports(second) == {0: {1: {"valid_acc": 2.0}}}
    again = storage.create_study(RECORD).study_id
    assert storage.get_reports(again) == {}


def test_a_stopped_trial_is_stored_and_read_back_stopped(storage):
    study_id = storage.create_study(RECORD).study_id
    number = storage.add_trial(study_id, Trial(number=-1, arch=nb201_arch(3), worker="w"))
    done = storage.get_trials(study_id)[number]
    done.state, done.metrics, done.cost = TrialState.STOPPED, {"valid_acc": 12.5}, 2.0
    done.fail_reason = "stopped early at step 2 by the 'asha' rule"
    assert storage.finish_trial(study_id, done)
    back = storage.get_trials(study_id)[number]
    assert (back.state, back.metrics, back.cost) == (TrialState.STOPPED, {"valid_acc": 12.5}, 2.0)
    assert back.fail_reason == done.fail_reason and back.finish_seq == 1
    assert storage.study_counts()[study_id] == {"STOPPED": 1}


def test_a_schema_2_database_is_upgraded_with_an_empty_reports_table(tmp_path):
    path = tmp_path / "v2.db"
    url = f"sqlite:///{path}"
    first = get_storage(url)
    study_id = first.create_study(RECORD).study_id
    for i in range(2):
        first.add_trial(study_id, Trial(number=-1, arch=nb201_arch(i), worker="w"))
    done = first.get_trials(study_id)[0]
    done.state, done.metrics = TrialState.COMPLETE, {"valid_acc": 91.0}
    first.finish_trial(study_id, done)
    first.close()
    with sqlite3.connect(path) as conn:  # what nasforge wrote before reports existed
        conn.execute("DROP TABLE nasforge_reports")
        conn.execute("UPDATE nasforge_schema SET schema_version = 2")
    conn.close()
    with pytest.raises(StorageError, match=r"older nasforge \(schema 2"):
        get_storage(url, read_only=True)
    upgraded = get_storage(url)
    trials = upgraded.get_trials(study_id)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.RUNNING]
    assert [(t.asked_after, t.finish_seq) for t in trials] == [(0, 1), (0, None)]
    assert upgraded.get_reports(study_id) == {}
    upgraded.add_reports(study_id, 1, {1: {"valid_acc": 50.0}})
    upgraded.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT schema_version FROM nasforge_schema").fetchone() == (3,)
        assert conn.execute("SELECT number, step FROM nasforge_reports").fetchall() == [(1, 1)]
    conn.close()
    assert SCHEMA_VERSION == 3
    reader = get_storage(url, read_only=True)
    assert reader.get_reports(study_id) == {1: {1: {"valid_acc": 50.0}}}
    with pytest.raises(StorageError, match="read-only"):
        reader.add_reports(study_id, 1, {2: {"valid_acc": 60.0}})


def test_a_damaged_report_is_refused_with_the_sql_that_deletes_it(tmp_path):
    path = tmp_path / "bad.db"
    store = get_storage(f"sqlite:///{path}")
    study_id = store.create_study(RECORD).study_id
    store.add_reports(study_id, 4, {2: {"valid_acc": 1.0}})
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute('UPDATE nasforge_reports SET metrics = \'{"valid_acc": "high"}\'')
    conn.close()
    again = get_storage(f"sqlite:///{path}")
    with pytest.raises(StorageError, match=r"report of trial 4 at step 2.*DELETE FROM"):
        again.get_reports(study_id)
