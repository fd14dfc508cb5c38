"""Shared fixtures: the bundled NB201 space and benchmark, and the optional shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasforge import spaces, tabular

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


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
