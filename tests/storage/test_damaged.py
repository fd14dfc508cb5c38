"""Damaged databases: a damaged row is refused with a StorageError naming the study, the trial
and the column and saying how to repair it; any damaged file gives either a result or a clean
NasforgeError, and a reader leaves it byte-identical (property-based)."""

from __future__ import annotations

import contextlib
import math
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from nasforge.errors import NasforgeError, StorageError
from nasforge.storage import get_storage
from nasforge.testing.storages import RECORD, nb201_arch
from nasforge.trial import Trial, TrialState


def _write_study(path: Path) -> None:
    storage = get_storage(f"sqlite:///{path}")
    study_id = storage.create_study(RECORD).study_id
    assert study_id is not None
    for i in range(3):
        storage.add_trial(study_id, Trial(number=-1, arch=nb201_arch(i), worker="w"))
    for trial in storage.get_trials(study_id)[:2]:
        trial.state, trial.metrics, trial.cost = TrialState.COMPLETE, {"valid_acc": 90.0}, 1.0
        storage.finish_trial(study_id, trial)
    storage.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A study database: study 's' (id 1) with trials 0, 1 (COMPLETE) and 2 (RUNNING)."""
    path = tmp_path_factory.mktemp("template") / "s.db"
    _write_study(path)
    return path


def _without_not_null(conn: sqlite3.Connection, table: str) -> None:
    """Rebuild ``table`` without its NOT NULL constraints (so that a NULL can be stored)."""
    conn.execute(f"CREATE TABLE damaged AS SELECT * FROM {table}")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE damaged RENAME TO {table}")


def _damage(path: Path, table: str, column: str, value: object, where: str) -> None:
    conn = sqlite3.connect(path)
    if value is None:
        _without_not_null(conn, table)
    conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (value,))
    conn.commit()
    conn.close()


TRIAL_DAMAGE = [
    ("metrics", "{not json"),
    ("metrics", "[1, 2]"),
    ("metrics", '{"valid_acc": "high"}'),
    ("metrics", None),
    ("state", "FINISHED"),
    ("state", None),
    ("cost", "cheap"),
    ("cost", math.inf),
    ("cost", None),
    ("seconds", "NaN-ish"),
    ("choices", "[1, 2"),
    ("choices", '["a"]'),
    ("choices", None),
    ("arch", None),
    ("fidelity", "{"),
    ("started_at", "yesterday"),
    ("finished_at", "2026-13-45"),
    ("retryable", "maybe"),
    ("retry_of", "first"),
    ("asked_after", 1.5),
]


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize(("column", "value"), TRIAL_DAMAGE)
def test_a_damaged_trial_is_refused_with_its_study_number_column_and_repair(
    template, tmp_path, column, value, read_only
):
    path = tmp_path / "s.db"
    shutil.copy(template, path)
    _damage(path, "nasforge_trials", column, value, "number = 1")
    storage = get_storage(f"sqlite:///{path}", read_only=read_only)
    with pytest.raises(StorageError) as info:
        storage.get_trials(1)
    message = str(info.value)
    assert "Trial 1 of study 's'" in message and f"column {column!r}" in message
    assert "DELETE FROM nasforge_trials WHERE study_id = 1 AND number = 1;" in message
    assert "\n" not in message
    # trials before it are not the problem, and the listing never skips it silently
    assert [t.number for t in storage.get_trials(1, since=2)] == [2]


def test_the_repair_in_the_message_works(template, tmp_path):
    path = tmp_path / "s.db"
    shutil.copy(template, path)
    _damage(path, "nasforge_trials", "metrics", "{oops", "number = 0")
    storage = get_storage(f"sqlite:///{path}")
    with pytest.raises(StorageError, match="UPDATE nasforge_trials SET") as info:
        storage.get_trials(1)
    repair = str(info.value).split("repair it with: ")[1].split(";")[0]
    with sqlite3.connect(path) as conn:
        conn.execute(repair)
    conn.close()
    trials = storage.get_trials(1)
    assert trials[0].state is TrialState.FAILED and trials[0].metrics == {}
    assert trials[1].metrics == {"valid_acc": 90.0}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("objectives", "valid_acc:max"),
        ("strategy_params", "{"),
        ("options", "[]"),
        ("seed", "seven"),
        ("created_at", "yesterday"),
        ("space", None),
    ],
)
def test_a_damaged_study_row_is_refused_naming_the_study_and_column(
    template, tmp_path, column, value
):
    path = tmp_path / "s.db"
    shutil.copy(template, path)
    _damage(path, "nasforge_studies", column, value, "study_id = 1")
    storage = get_storage(f"sqlite:///{path}", read_only=True)
    for read in (storage.list_studies, lambda: storage.get_study("s")):
        with pytest.raises(StorageError, match=f"Study 's' .* column '{column}'"):
            read()


def test_damaged_options_are_refused_when_merged(template, tmp_path):
    path = tmp_path / "s.db"
    shutil.copy(template, path)
    _damage(path, "nasforge_studies", "options", "{nope", "study_id = 1")
    storage = get_storage(f"sqlite:///{path}")
    with pytest.raises(StorageError, match=r"column 'options'.*UPDATE nasforge_studies"):
        storage.update_options(1, {"limits": {}})


# -- property: any damaged file gives a result or a clean error, and a reader writes nothing --

_COLUMNS = {
    "nasforge_trials": [
        "number",
        "state",
        "arch",
        "choices",
        "fidelity",
        "metrics",
        "cost",
        "seconds",
        "retryable",
        "retry_of",
        "started_at",
        "finish_seq",
        "study_id",
    ],
    "nasforge_studies": ["name", "space", "seed", "objectives", "options", "created_at"],
    "nasforge_schema": ["schema_version"],
}
_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.none(),
    st.binary(max_size=20),
    st.sampled_from(["{}", "[]", "null", '{"valid_acc": NaN}', "RUNNING", "[999999]"]),
)


_KINDS = ["random", "header", "truncated", "flipped", "empty", "foreign", "row"]


def _damaged_file(data: st.DataObject, template: bytes, path: Path) -> str:
    """Write a damaged database file at ``path``; what was done (short: Hypothesis prints it)."""
    kind = data.draw(st.sampled_from(_KINDS), label="kind")
    if kind == "random":
        path.write_bytes(data.draw(st.binary(min_size=1, max_size=4096), label="bytes"))
    elif kind == "header":
        path.write_bytes(b"SQLite format 3\x00" + data.draw(st.binary(max_size=4096)))
    elif kind == "truncated":
        path.write_bytes(template[: data.draw(st.integers(1, len(template) - 1), label="size")])
    elif kind == "flipped":
        damaged = bytearray(template)
        changes = st.tuples(st.integers(0, len(damaged) - 1), st.integers(0, 255))
        for offset, byte in data.draw(st.lists(changes, min_size=1, max_size=8), label="bytes"):
            damaged[offset] = byte
        path.write_bytes(bytes(damaged))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "foreign":
        names = data.draw(st.lists(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), min_size=1))
        with contextlib.closing(sqlite3.connect(path)) as conn:
            for name in dict.fromkeys(names):
                conn.execute(f'CREATE TABLE IF NOT EXISTS "{name}" (x)')
            conn.commit()
    else:
        path.write_bytes(template)
        table = data.draw(st.sampled_from(sorted(_COLUMNS)), label="table")
        column = data.draw(st.sampled_from(_COLUMNS[table]), label="column")
        value = data.draw(_VALUES, label="value")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            if value is None:
                _without_not_null(conn, table)
            try:
                conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = 1", (value,))
            except sqlite3.IntegrityError:
                reject()  # the schema itself refuses this value
            conn.commit()
    return kind


def _read_everything(url: str, **options: bool) -> None:
    storage = get_storage(url, **options)
    try:
        storage.study_counts()
        for record in storage.list_studies():
            # a damaged name index may not find it again; what it finds is the same study
            assert storage.get_study(record.name) in (None, record)
            assert record.study_id is not None
            for trial in storage.get_trials(record.study_id):
                assert isinstance(trial.state, TrialState)
                assert math.isfinite(trial.cost) and math.isfinite(trial.seconds)
    finally:
        storage.close()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_damaged_file_gives_a_result_or_a_clean_error_and_a_reader_changes_no_byte(
    template, data
):
    folder = Path(tempfile.mkdtemp())
    try:
        path = folder / "s.db"
        kind = _damaged_file(data, template.read_bytes(), path)
        before = path.read_bytes()
        try:
            _read_everything(f"sqlite:///{path}", read_only=True)
        except NasforgeError as exc:
            assert "\n" not in str(exc), str(exc)
        assert path.read_bytes() == before, kind
        # a writer refuses what is not a sound nasforge database before writing anything
        try:
            storage = get_storage(f"sqlite:///{path}")
        except NasforgeError as exc:
            assert "\n" not in str(exc), str(exc)
            assert path.read_bytes() == before, (kind, str(exc))
        else:
            storage.close()
    finally:
        shutil.rmtree(folder)
