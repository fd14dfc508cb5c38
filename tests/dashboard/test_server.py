"""The dashboard's server: its routes answer the storage's data as JSON, a missing or deleted
study is a 404, large answers are compressed, and the storage is never written."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import nasforge
from nasforge.dashboard import DashboardData, create_app
from nasforge.dashboard._server import (
    LOOPBACK_NAMES,
    bind,
    free_port,
    host_name,
    is_loopback,
    page_url,
    warm_up,
)
from nasforge.errors import InvalidConfigError
from nasforge.storage import get_storage

uvicorn = pytest.importorskip("uvicorn")

#: conftest's ``serve`` fixture: serve(app) -> a uvicorn server in a thread, with .url and .stop()
Serve = Callable[[Any], Any]

ODD = "</script><script>alert('x')</script> a/b %41"


def search(url: str, name: str, budget: int, objectives: list[str] | None = None) -> None:
    study = nasforge.create_study(
        space="nb201",
        strategy="regularized-evolution",
        seed=1,
        storage=url,
        study_name=name,
        objectives=objectives or ["valid_acc:max"],
        load_if_exists=True,
    )
    study.optimize(nasforge.evaluators.create("tabular", benchmark="nb201"), budget=budget)
    study.storage.close()


class Served:
    """``create_app(DashboardData(url))`` served by conftest's ``serve`` (uvicorn in a thread),
    with helpers to ask it."""

    def __init__(self, serve: Serve, url: str, **app: Any) -> None:
        self.data = DashboardData(url)
        self.server = serve(create_app(self.data, **app))
        self.base = self.server.url

    def get(self, path: str, **headers: str) -> tuple[int, Any, bytes]:
        """The status, the headers (names in any case) and the body of ``GET path``."""
        request = urllib.request.Request(self.base + path.lstrip("/"), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=20) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def json(self, path: str) -> tuple[int, Any]:
        status, headers, body = self.get(path)
        assert headers["Content-Type"].startswith("application/json")
        assert headers["Cache-Control"] == "no-store"
        return status, json.loads(body)

    def stop(self) -> None:
        self.server.stop()
        self.data.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{folder / 'runs.db'}"
    search(url, "mo", 60, ["valid_acc:max", "params_M:min"])
    search(url, ODD, 12)
    return folder / "runs.db"


@pytest.fixture(scope="module")
def served(serve: Serve, stored: Path) -> Iterator[Served]:
    server = Served(serve, f"sqlite:///{stored}")
    yield server
    server.stop()


def test_page_and_its_files_are_served(served: Served) -> None:
    status, headers, body = served.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'src="static/app.js"' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for name in ("app.js", "charts.js", "style.css"):
        status, headers, body = served.get(f"/static/{name}")
        assert status == 200 and body, name
    assert served.get("/static/missing.js")[0] == 404


def test_overview_lists_every_study(served: Served) -> None:
    status, payload = served.json("/api/overview")
    assert status == 200
    rows = {row["name"]: row for row in payload["studies"]}
    assert set(rows) == {"mo", ODD}
    assert rows["mo"]["n_trials"] == sum(rows["mo"]["counts"].values()) >= 60
    assert rows["mo"]["objectives"] == ["valid_acc:max", "params_M:min"]


def test_info_names_the_storage_without_reading_a_study(serve: Serve, stored: Path) -> None:
    server = Served(serve, f"sqlite:///{stored}")
    try:
        status, payload = server.json("/api/info")
        assert status == 200 and payload == {"storage": f"sqlite:///{stored}"}
        assert server.data._caches == {}  # no study was read to answer it
        assert server.get("/favicon.ico")[0] == 204
    finally:
        server.stop()


def test_study_page_and_its_delta(served: Served, stored: Path) -> None:
    status, page = served.json("/api/study/mo")
    assert status == 200 and page["name"] == "mo" and page["delta"] is False
    study = nasforge.load_study("mo", f"sqlite:///{stored}", read_only=True)
    assert page["n_trials"] == len(page["trials"]["rows"]) == len(study.trials)
    study.storage.close()
    known, seq = page["version"]["known"], page["version"]["seq"]
    status, delta = served.json(f"/api/study/mo?known={known}&seq={seq}")
    assert status == 200 and delta["delta"] is True and delta["trials"]["rows"] == []


def test_a_name_with_slashes_and_markup_is_one_study(served: Served) -> None:
    status, page = served.json("/api/study/" + quote(ODD, safe=""))
    assert status == 200 and page["name"] == ODD
    best = page["best"]["number"]
    status, trial = served.json(f"/api/study/{quote(ODD, safe='')}/trial/{best}")
    assert status == 200 and trial["number"] == best
    assert trial["drawing"]["kind"] == "cells"


def test_missing_study_and_trial_are_404_with_the_studies_listed(served: Served) -> None:
    status, answer = served.json("/api/study/nope")
    assert status == 404 and answer["error"] == "not_found"
    assert "nope" in answer["message"] and "mo" in answer["message"]
    status, answer = served.json("/api/study/nope/trial/0")
    assert status == 404 and answer["error"] == "not_found"
    status, answer = served.json("/api/study/mo/trial/99999")
    assert status == 404 and answer["error"] == "not_found"
    assert served.json("/api/study/mo/tree/1")[0] == 404


def test_bad_query_is_a_400(served: Served) -> None:
    for query in ("known=abc", "seq=-1"):
        status, answer = served.json(f"/api/study/mo?{query}")
        assert status == 400 and answer["error"] == "bad_request", query


def test_large_answers_are_gzipped(served: Served) -> None:
    status, headers, body = served.get("/api/study/mo", **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(body))["name"] == "mo"


def test_comparisons_without_folders(served: Served) -> None:
    assert served.json("/api/comparisons") == (200, [])


def test_the_storage_is_never_written(serve: Serve, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    search(url, "rs", 20)
    before = digest(tmp_path / "runs.db")
    server = Served(serve, url)
    try:
        for path in ("/", "/api/overview", "/api/study/rs", "/api/study/rs/trial/0", "/x"):
            server.get(path)
    finally:
        server.stop()
    assert digest(tmp_path / "runs.db") == before
    # reading a WAL database opens its -wal and -shm files; nothing is written to the log
    wal = tmp_path / "runs.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_deleted_study_answers_404_and_new_trials_appear(serve: Serve, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    search(url, "gone", 10)
    search(url, "kept", 10)
    server = Served(serve, url)
    try:
        assert server.json("/api/study/gone")[0] == 200
        status, page = server.json("/api/study/kept")
        search(url, "kept", 20)  # a worker finishes more trials
        version = page["version"]
        status, delta = server.json(
            f"/api/study/kept?known={version['known']}&seq={version['seq']}"
        )
        assert status == 200 and delta["delta"] is True and delta["trials"]["rows"]
        writer = get_storage(url)
        writer.delete_study("gone")
        writer.close()
        status, answer = server.json("/api/study/gone")
        assert status == 404 and "gone" in answer["message"] and "kept" in answer["message"]
    finally:
        server.stop()


def test_a_foreign_host_name_is_refused(serve: Serve, stored: Path) -> None:
    server = Served(serve, f"sqlite:///{stored}", allowed_hosts=LOOPBACK_NAMES)
    try:
        assert server.get("/api/overview")[0] == 200
        # the names a browser sends for a server on --host localhost or --host ::1
        for host in ("LocalHost:8080", "[::1]:8080", "[::1]"):
            assert server.get("/api/info", Host=host)[0] == 200, host
        for host in ("attacker.example", "attacker.example:8080", "[::2]:8080", "[", ""):
            assert server.get("/api/overview", Host=host)[0] == 400, host
    finally:
        server.stop()


def test_host_name_drops_the_port() -> None:
    assert host_name("[::1]:8080") == "[::1]" and host_name("[::1]") == "[::1]"
    assert host_name("LocalHost:80") == "localhost" and host_name("127.0.0.1") == "127.0.0.1"


def test_a_port_in_use_names_a_free_one() -> None:
    taken = bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(InvalidConfigError, match=f"Port {port} on 127.0.0.1 is in use") as info:
            bind("127.0.0.1", port)
        suggested = int(str(info.value).split("--port ")[1].split()[0])
        assert suggested != port
        bind("127.0.0.1", suggested).close()  # it is free indeed
    finally:
        taken.close()
    assert free_port("127.0.0.1", port) != port


def test_bad_hosts_and_ports() -> None:
    with pytest.raises(InvalidConfigError, match="--host"):
        bind("no-such-host.invalid", 0)
    with pytest.raises(InvalidConfigError, match="from 1 to 65535"):
        bind("127.0.0.1", 70000)
    assert is_loopback("127.0.0.1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert page_url("0.0.0.0", 8080) == "http://127.0.0.1:8080/"
    assert page_url("::1", 8080) == "http://[::1]:8080/"


def test_a_port_taken_while_free_port_looks_is_skipped() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        probe.listen()
        start = probe.getsockname()[1] - 1
        assert free_port("127.0.0.1", start) != start + 1


def test_warm_up_reads_every_study_and_prepares_the_latest_pages() -> None:
    class Data:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def overview(self) -> dict[str, Any]:
            self.asked.append("overview")
            finished = ["2026-01-03", None, "2026-01-09", "2026-01-05"]
            return {
                "studies": [{"name": str(i), "last_finish_at": f} for i, f in enumerate(finished)]
            }

        def study(self, name: str) -> dict[str, Any]:
            self.asked.append(name)
            if name == "3":
                raise OSError("the disk went away")  # logged, the server runs on
            return {}

    data = Data()
    warm_up(data, 2, delay=0).join(10)  # type: ignore[arg-type]
    assert data.asked == ["overview", "2", "3"]
    data = Data()
    warm_up(data, 1, delay=0).join(10)  # type: ignore[arg-type]
    assert data.asked == ["overview", "2"]
