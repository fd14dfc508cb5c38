"""Bad input on the command line, by class: every generated option value gives a result
(exit 0) or one line ``error: ...`` (exit 2, no traceback); commands that only read a storage
(show, pareto, export) never change a byte of it, whatever the file holds; a refused command
creates nothing; no message shows a password; no study name places files outside the
checkpoint folder."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_testing import assert_usage_error, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nasforge

PASSWORD = "s3cr3t-pw"

#: Option values as a user (or a slip of the keyboard) may type them.
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "1e23", "1e400", "0", "-0", "0.0", "1e-320", "2**63"]),
)
TEXTS = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="./\\:~ab", max_size=12),
    st.sampled_from(
        ["", " ", "../../x", "/etc/passwd", "a" * 400, "nb201", "cuda:99999", "None", "\u2028"]
    ),
)
VALUES = st.one_of(NUMBERS, TEXTS)


#: Set NASFORGE_FUZZ_EXAMPLES to try more generated values, NASFORGE_FUZZ_LOG to a file to
#: count the outcomes (one line each: ok, refused or traceback).
EXAMPLES = int(os.environ.get("NASFORGE_FUZZ_EXAMPLES", "40"))
_LOG = os.environ.get("NASFORGE_FUZZ_LOG")


def _outcome(result: Any) -> str:
    """``"ok"`` (exit 0) or ``"refused"`` (exit 2, one ``error:`` line, no traceback)."""
    clean = "Traceback" not in result.output and (
        result.exit_code == 0
        or result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    # exit 1: the search ran and nothing completed (a budget below one evaluation's cost):
    # a result on stdout and one line saying so
    ran_empty = result.exit_code == 1 and result.stderr.startswith("error: no trial completed")
    outcome = ("ok" if result.exit_code == 0 or ran_empty else "refused") if clean else "traceback"
    if _LOG:
        with open(_LOG, "a") as log:
            log.write(f"{outcome}\n")
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 0:
        assert result.exception is None
        return "ok"
    if ran_empty:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stdout.strip(), "a search that ran prints its result"
        return "ok"
    assert_usage_error(result)
    return "refused"


@contextlib.contextmanager
def _unchanged(path: Path) -> Iterator[None]:
    before = path.read_bytes() if path.exists() else None
    yield
    assert (path.read_bytes() if path.exists() else None) == before, f"{path} was changed"
    for suffix in ("-wal", "-shm", "-journal"):
        assert not Path(f"{path}{suffix}").exists() or before is not None


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study database: 'two' (valid_acc:max, params_M:min) and 'one' (valid_acc:max)."""
    path = tmp_path_factory.mktemp("studies") / "s.db"
    url = f"sqlite:///{path}"
    evaluator = nasforge.evaluators.create("tabular", dataset="cifar10")
    for name, objectives in (("two", ["valid_acc:max", "params_M:min"]), ("one", None)):
        study = nasforge.create_study(
            storage=url,
            study_name=name,
            strategy="random",
            objectives=objectives or ["valid_acc:max"],
        )
        study.optimize(evaluator, n_trials=4)
        study.storage.close()
    return path


def _copy(path: Path) -> tuple[Path, str]:
    folder = Path(tempfile.mkdtemp())
    copy = folder / path.name
    copy.write_bytes(path.read_bytes())
    return copy, f"sqlite:///{copy}"


def _damaged(kind: str, template: Path, folder: Path) -> Path:
    path = folder / f"{kind}.db"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"not a database at all " * 50)
    elif kind == "truncated":
        path.write_bytes(template.read_bytes()[:3000])
    elif kind in ("foreign", "no-tables"):
        with contextlib.closing(sqlite3.connect(path)) as conn:
            if kind == "foreign":
                conn.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
                conn.execute("INSERT INTO customers VALUES (1, 'x')")
            else:
                conn.execute("PRAGMA user_version = 1")
            conn.commit()
    else:  # a nasforge database with one damaged trial row
        path.write_bytes(template.read_bytes())
        column, value = {
            "bad-json": ("metrics", "{not json"),
            "bad-state": ("state", "EXPLODED"),
            "bad-cost": ("cost", "lots"),
        }[kind]
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute(f"UPDATE nasforge_trials SET {column} = ? WHERE number = 1", (value,))
            conn.commit()
    return path


DAMAGE = ["empty", "garbage", "truncated", "foreign", "no-tables", "bad-json", "bad-state"]
DAMAGE += ["bad-cost"]


# -- reading never writes ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", DAMAGE)
def test_readers_refuse_a_bad_file_in_one_line_and_leave_it_byte_identical(
    kind: str, studies: Path, tmp_path: Path
) -> None:
    path = _damaged(kind, studies, tmp_path)
    url = f"sqlite:///{path}"
    commands = [
        ["show", "--storage", url],
        ["show", "two", "--storage", url],
        ["show", "one", "--storage", url, "--json"],
        ["pareto", "two", "--storage", url],
        ["export", "two", "--storage", url, "--out", str(tmp_path / "n.pt"), "--untrained"],
    ]
    for args in commands:
        with _unchanged(path):
            result = invoke(*args)
        # a damaged row may lie outside what a command reads (a listing reads no trials)
        if _outcome(result) == "ok":
            assert kind.startswith("bad-") and args[1] == "--storage", (args, result.stdout)


@pytest.mark.parametrize("kind", ["bad-json", "bad-state", "bad-cost"])
def test_a_damaged_trial_row_stops_show_resume_and_worker_with_one_line(
    kind: str, studies: Path, tmp_path: Path
) -> None:
    path = _damaged(kind, studies, tmp_path)
    url = f"sqlite:///{path}"
    line = assert_usage_error(invoke("show", "two", "--storage", url))
    assert "trial" in line
    for args in (
        ["search", "--storage", url, "--study", "one", "--strategy", "random", "--trials", "9"],
        ["worker", "--storage", url, "--study", "one", "--trials", "9", "--quiet"],
    ):
        assert "trial" in assert_usage_error(invoke(*args))


def test_a_reader_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    for args in (
        ["show", "--storage", f"sqlite:///{path}"],
        ["show", "s", "--storage", f"sqlite:///{path}"],
        ["pareto", "s", "--storage", f"sqlite:///{path}"],
        ["export", "s", "--storage", f"sqlite:///{path}", "--out", str(tmp_path / "n.pt")],
        ["worker", "--storage", f"sqlite:///{path}", "--study", "s", "--trials", "3"],
    ):
        assert_usage_error(invoke(*args), "missing.db")
        assert list(tmp_path.iterdir()) == []


def test_a_reader_leaves_a_study_with_a_dead_workers_trial_as_it_is(studies: Path) -> None:
    path, url = _copy(studies)
    with contextlib.closing(sqlite3.connect(path)) as conn:  # a worker died mid-trial
        conn.execute(
            "UPDATE nasforge_trials SET state = 'RUNNING', worker = 'gone:1:x', "
            "heartbeat_at = '2000-01-01 00:00:00.000000', finished_at = NULL, "
            "finish_seq = NULL WHERE number = 3"
        )
        conn.commit()
    with _unchanged(path):
        result = invoke("show", "two", "--storage", url, "--json")
    assert result.exit_code == 0, result.stderr
    assert '"RUNNING": 1' in result.stdout


# -- limits before anything is stored ----------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--trials", "0"], ["--trials must be from 1"]),
        (["--budget", "1e23"], ["--budget", "1e+23"]),
        (["--budget", "inf"], ["'inf' is not a finite number"]),
        (["--heartbeat-grace", "inf"], ["--heartbeat-grace must be a finite number"]),
        (["--seed", "-4"], ["seed"]),
        (["--seed", str(2**64)], ["seed"]),
        (["--param", "population_size=NaN"], ["not a finite number"]),
        ([], ["needs a limit", "--trials N or --budget B"]),
        (["--executor", "ray", "--ray-address", "ray://127.0.0.1:1"], ["--ray-address"]),
        (["--executor", "ray", "--ray-address", "auto"], ["--ray-address 'auto'", "ray start"]),
        (["--executor", "warp"], ["executor 'warp'"]),
    ],
)
def test_a_refused_worker_creates_nothing(
    args: list[str], fragments: list[str], tmp_path: Path
) -> None:
    if "ray" in args:
        pytest.importorskip("ray")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    base = ["worker", "--storage", url, "--study", "s", "--strategy", "random", "--quiet"]
    if not any(a in args for a in ("--trials", "--budget")) and args:
        base += ["--trials", "3"]
    assert_usage_error(invoke(*base, *args), *fragments)
    assert list(tmp_path.iterdir()) == []
    # the corrected command then runs, and a later worker joins the study it created
    assert invoke(*base, "--trials", "3").exit_code == 0
    assert invoke("worker", "--storage", url, "--study", "s", "--quiet").exit_code == 0


def test_a_stored_infinite_limit_is_refused_with_how_to_replace_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    base = ["worker", "--storage", url, "--study", "s", "--quiet"]
    assert invoke(*base, "--strategy", "random", "--trials", "2").exit_code == 0
    store = nasforge.storage.get_storage(url)
    record = store.get_study("s")
    assert record is not None and record.study_id is not None
    store.update_options(record.study_id, {"limits": {"budget": float("inf")}})
    store.close()
    assert_usage_error(invoke(*base), "stores a limit that is out of range", "--budget B")
    assert invoke(*base, "--trials", "3").exit_code == 0


@pytest.mark.parametrize(
    "command",
    [
        ["search", "--evaluator", "train", "--trials", "1"],
        ["search", "--strategy", "darts"],
        ["compare", "--strategies", "darts"],
        ["proxies", "6111"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
@pytest.mark.parametrize("device", ["tpu", "cuda:x", "gpu0", "", "cuda:-1", "cpu cpu"])
def test_an_unknown_device_is_one_line_in_every_command(command: list[str], device: str) -> None:
    assert_usage_error(invoke(*command, "--device", device), "'--device'", "cuda:N")


LONG = "q" * 2000


@pytest.mark.parametrize(
    "args",
    [
        ["search", "--strategy", LONG],
        ["search", "--space", LONG],
        ["search", "--dataset", LONG],
        ["search", "--budget", LONG],
        ["search", "--objectives", f"{LONG}:max"],
        ["search", "--objective", f"valid_acc:{LONG}"],
        ["search", "--constraint", f"{LONG}<=3"],
        ["search", "--param", LONG],
        ["search", "--param", f"{LONG}=3"],
        ["search", "--study", LONG, "--storage", "sqlite:///:memory:"],
        ["search", "--device", LONG],
        ["search", "--storage", f"sqlite:///{LONG}/x.db"],
        ["show", LONG, "--storage", f"sqlite:///{LONG}.db"],
        ["worker", "--storage", "sqlite:///:memory:", "--study", LONG, "--trials", "2"],
        ["list", LONG],
        ["profile", LONG],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_long_value_is_abbreviated_in_the_message(args: list[str], tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        line = assert_usage_error(invoke(*args))
    finally:
        os.chdir(cwd)
    assert "q" * 200 not in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--cells", "15624", "--cells must be at most 32"),
        ("--cells", "0", "--cells must be a positive whole number"),
        ("--channels", "100000", "--channels must be at most 256"),
        ("--channels", "-1", "--channels must be a positive whole number"),
        ("--resolution", "1000000", "--resolution must be at most 1,024"),
        ("--num-classes", str(2**40), "--num-classes must be at most 100,000"),
        ("--batch-size", "0", "--batch-size"),
        ("--runs", str(10**9), "--runs must be at most"),
    ],
)
def test_profile_settings_have_stated_bounds(option: str, value: str, fragment: str) -> None:
    assert_usage_error(invoke("profile", "6111", option, value), fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["compare", "--seeds", "99999999999"], "more than 10,000 seeds"),
        (["compare", "--seeds", f"0,{2**64}"], "from 0 to 2**63 - 1"),
        (["worker", "--storage", "sqlite:///:memory:", "--study", "s", "--executor", "pool",
          "--workers", "100000", "--trials", "2", "--strategy", "random"], "from 1 to 1024"),
    ],
)  # fmt: skip
def test_counts_of_seeds_and_processes_have_stated_bounds(args: list[str], fragment: str) -> None:
    assert_usage_error(invoke(*args), fragment)


def test_pareto_of_a_single_objective_study_says_it_needs_two(studies: Path) -> None:
    path, url = _copy(studies)
    with _unchanged(path):
        assert_usage_error(invoke("pareto", "one", "--storage", url), "one objective", "two")
    assert invoke("pareto", "two", "--storage", url).exit_code == 0


# -- unwritable outputs ------------------------------------------------------------------------
def _unwritable_paths(tmp_path: Path) -> list[Path]:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    paths = [
        tmp_path / "no" / "such" / "folder" / "out.png",
        a_file / "out.png",
        tmp_path / ("x" * 300 + ".png"),
    ]
    if os.geteuid() != 0:  # root writes in any folder
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        paths.append(locked / "out.png")
    return paths


def test_an_unwritable_output_is_refused_in_one_line(studies: Path, tmp_path: Path) -> None:
    path, url = _copy(studies)
    for target in _unwritable_paths(tmp_path):
        with _unchanged(path):
            line = assert_usage_error(
                invoke("pareto", "two", "--storage", url, "--plot", str(target)), "--plot"
            )
            assert len(line) < 400
            line = assert_usage_error(
                invoke("export", "two", "--storage", url, "--out", str(target.with_suffix(".pt")))
            )
            assert "--out" in line or "check the path" in line
    (tmp_path / "plots.png").mkdir()
    assert_usage_error(
        invoke("pareto", "two", "--storage", url, "--plot", str(tmp_path / "plots.png")),
        "is a folder",
    )


# -- security ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg//u:{PASSWORD}@h/db",
        f"postgresql://u:{PASSWORD}@h:99999/db",
        f"postgresql+psycopg://u:{PASSWORD}@[h/db",
        f"sqlite:///x.db?password={PASSWORD}",
    ],
)
def test_no_message_shows_a_password(url: str, tmp_path: Path) -> None:
    for args in (
        ["show", "--storage", url],
        ["show", "s", "--storage", url],
        ["pareto", "s", "--storage", url],
        ["search", "--storage", url, "--budget", "3"],
        ["worker", "--storage", url, "--study", "s", "--strategy", "random", "--trials", "3"],
    ):
        result = invoke(*args)
        assert result.exit_code != 0
        assert PASSWORD not in result.output
        assert "Traceback" not in result.output


def test_the_summary_hides_the_password_of_a_malformed_url() -> None:
    from nasforge.runs.summary import safe_url

    for url in (f"postgresql+psycopg//u:{PASSWORD}@h/db", f"postgresql://u:{PASSWORD}@h/db"):
        assert PASSWORD not in safe_url(url)


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=80).filter(lambda n: n.strip() != ""))
def test_no_study_name_places_checkpoints_outside_their_folder(name: str) -> None:
    from nasforge.naming import default_checkpoint_dir

    base = Path("/data/runs/t.db-checkpoints")
    folder = default_checkpoint_dir("sqlite:////data/runs/t.db", name)
    assert folder is not None
    resolved = Path(os.path.normpath(folder))
    assert resolved.parent == base
    assert resolved.name not in ("", ".", "..")


@settings(max_examples=40, deadline=None)
@given(a=st.text(min_size=1, max_size=20), b=st.text(min_size=1, max_size=20))
def test_two_study_names_never_share_a_checkpoint_folder(a: str, b: str) -> None:
    from nasforge.naming import folder_name

    assert (folder_name(a) == folder_name(b)) == (a == b)


# -- generated option values -------------------------------------------------------------------
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SEARCH_OPTIONS = [
    "--budget", "--seed", "--study", "--objectives", "--objective", "--constraint", "--device",
    "--fidelity", "--dataset", "--strategy", "--space", "--benchmark", "--param",
    "--evaluator", "--evaluator-param", "--storage",
]  # fmt: skip


@FUZZ
@given(
    option=st.sampled_from(SEARCH_OPTIONS),
    value=VALUES,
    key=st.sampled_from(["population_size", "sample_size", "x"]),
)
def test_search_with_any_option_value_runs_or_is_refused_in_one_line(
    option: str, value: str, key: str, tmp_path: Path
) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    if option in ("--param", "--evaluator-param"):
        value = f"{key}={value}"
    args = ["search", "--trials", "2", "--json", option, value]
    if option == "--study":
        args += ["--storage", f"sqlite:///{folder / 's.db'}"]
    cwd = os.getcwd()
    os.chdir(folder)  # a generated --storage lands in this folder
    try:
        outcome = _outcome(invoke(*args))
    finally:
        os.chdir(cwd)
    if outcome == "refused":
        assert list(folder.iterdir()) == [], "a refused search left files behind"


@FUZZ
@given(
    option=st.sampled_from(
        ["STUDY", "--top", "--reference", "--plot", "--out", "--trial", "--format"]
    ),
    command=st.sampled_from(["show", "pareto", "export"]),
    value=VALUES,
)
def test_readers_with_any_option_value_answer_or_refuse_and_change_no_byte(
    option: str, command: str, value: str, studies: Path, tmp_path: Path
) -> None:
    path = studies
    url = f"sqlite:///{path}"
    out = Path(tempfile.mkdtemp(dir=tmp_path))
    args = {
        "show": ["show", "two", "--storage", url],
        "pareto": ["pareto", "two", "--storage", url],
        "export": ["export", "two", "--storage", url, "--out", str(out / "n.pt"), "--untrained"],
    }[command]
    if option == "STUDY":
        args[1] = value
    elif option == "--out" and command == "export":
        args[args.index("--out") + 1] = str(out / value) if value else value
    elif option == "--plot" and command == "pareto":
        args += ["--plot", str(out / value) if value else value]
    else:
        args += [option, value]
    with _unchanged(path):
        _outcome(invoke(*args))


@FUZZ
@given(
    option=st.sampled_from(
        ["--study", "--seed", "--heartbeat-grace", "--workers", "--executor", "--space", "--budget"]
    ),
    value=VALUES,
)
def test_worker_with_any_option_value_runs_or_is_refused_and_then_creates_nothing(
    option: str, value: str, tmp_path: Path
) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    url = f"sqlite:///{folder / 'w.db'}"
    args = ["worker", "--storage", url, "--study", "s", "--strategy", "random", "--quiet"]
    args += ["--trials", "2", option, value]
    if option == "--executor" and value in ("pool", "ray"):
        value = "inprocess"
        args[-1] = value
    if _outcome(invoke(*args)) == "refused":
        assert list(folder.iterdir()) == [], "a refused worker left files behind"
