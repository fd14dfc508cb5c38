"""Shared fixtures: the bundled NB201 space and benchmark, and the optional shared data (the
one-torch-thread fixture is in the repository's conftest.py, for the doctests too)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nasforge import spaces, tabular

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory):
    """Data caches (extracted archives, decoded image folders) go to the user's cache folder;
    the tests use a private one instead of the real ``~/.cache/nasforge``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("user-cache")))
        yield


@pytest.fixture(scope="session")
def nb201():
    return spaces.create("nb201")


@pytest.fixture(scope="session")
def bench():
    return tabular.create("nb201")


@pytest.fixture(scope="session")
def shared_nb201() -> Path:
    path = SHARED / "nb201"
    if not (path / "nb201_accuracy.csv.gz").exists():
        pytest.skip(f"needs the shared NB201 tables in {path} (absent in this checkout)")
    return path


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (skipped where it cannot run; CI sets
    NASFORGE_REQUIRE_POSTGRES=1 so that it fails instead of skipping)."""
    from nasforge.testing.postgres import TemporaryPostgres, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("NASFORGE_REQUIRE_POSTGRES"):
            pytest.fail(f"NASFORGE_REQUIRE_POSTGRES is set but {reason}")
        pytest.skip(f"needs a PostgreSQL server: {reason}")
    server = TemporaryPostgres()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of an empty database on the session's PostgreSQL server."""
    postgres_server.reset()
    return postgres_server.url
