"""`nasforge dashboard` and `nasforge report`: bad input in one line, a server that prints its
address, warns off a public host and stops cleanly on Ctrl-C, and a report file."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cli_testing import assert_usage_error, invoke, sqlite

import nasforge
from nasforge.dashboard._server import bind


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = sqlite(tmp_path_factory.mktemp("cli"), "runs.db")
    for name in ("alpha", "beta"):
        study = nasforge.create_study(
            space="nb201", strategy="random", storage=url, study_name=name
        )
        study.optimize(nasforge.evaluators.create("tabular", benchmark="nb201"), budget=8)
        study.storage.close()
    return url


def test_an_unreadable_storage_is_one_line_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("psycopg")
    from nasforge.storage import rdb

    defaults = {**(rdb.RDBStorage.__init__.__kwdefaults__ or {}), "retries": 1, "backoff": 0.01}
    monkeypatch.setattr(rdb.RDBStorage.__init__, "__kwdefaults__", defaults)  # fail fast
    url = "postgresql+psycopg://user:hunter2@127.0.0.1:9/nasforge"
    for args in (("dashboard",), ("report", "alpha", "--out", str(tmp_path / "r.html"))):
        line = assert_usage_error(invoke(*args, "--storage", url))
        assert "hunter2" not in line and "***" in line
    line = assert_usage_error(invoke("dashboard", "--storage", sqlite(tmp_path, "none.db")))
    assert "none.db" in line


def test_a_port_in_use_is_named_with_a_free_one(stored: str) -> None:
    taken = bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        line = assert_usage_error(invoke("dashboard", "--storage", stored, "--port", str(port)))
    finally:
        taken.close()
    found = re.search(rf"Port {port} on 127\.0\.0\.1 is in use; pass --port (\d+)", line)
    assert found is not None, line
    assert int(found.group(1)) != port


def test_report_of_a_missing_study_lists_the_studies(stored: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    line = assert_usage_error(invoke("report", "gamma", "--storage", stored, "--out", str(out)))
    assert "gamma" in line and "alpha, beta" in line
    assert not out.exists()
    line = assert_usage_error(invoke("report", "--storage", stored, "--out", str(out)))
    assert "--all" in line and "alpha, beta" in line
    line = assert_usage_error(invoke("report", "alpha", "--all", "--storage", stored))
    assert "not both" in line


def test_report_refuses_bad_options(stored: str, tmp_path: Path) -> None:
    line = assert_usage_error(
        invoke("report", "alpha", "--storage", stored, "--out", str(tmp_path / "r.png"))
    )
    assert ".html" in line
    line = assert_usage_error(
        invoke("report", "alpha", "--storage", stored, "--out", str(tmp_path / "no" / "r.html"))
    )
    assert "does not exist" in line
    line = assert_usage_error(
        invoke("report", "alpha", "--storage", stored, "--out", str(tmp_path / "r.html"),
               "--max-drawings", "-1")
    )  # fmt: skip
    assert "--max-drawings" in line


def test_report_all_writes_one_file(stored: str, tmp_path: Path) -> None:
    out = tmp_path / "all.html"
    result = invoke("report", "--all", "--storage", stored, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert str(out) in result.stdout and "alpha, beta" in result.stdout
    text = out.read_text(encoding="utf-8")
    data = re.search(r'<script id="nasforge-data" type="application/json">(.*?)</script>', text)
    assert data is not None
    assert sorted(json.loads(data.group(1))["studies"]) == ["alpha", "beta"]


def test_dashboard_serves_warns_on_a_public_host_and_stops_on_ctrl_c(stored: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "nasforge", "dashboard", "--storage", stored]
    process = subprocess.Popen(
        [*command, "--host", "0.0.0.0", "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        assert "anyone who can reach this machine" in text, text
        url = re.search(r"at (http://127\.0\.0\.1:\d+/)", text)
        assert url is not None, text
        with urllib.request.urlopen(url.group(1) + "api/overview", timeout=20) as answer:
            names = [row["name"] for row in json.load(answer)["studies"]]
        assert names == ["alpha", "beta"]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Dashboard stopped." in err and "Traceback" not in err
