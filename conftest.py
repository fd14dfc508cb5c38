"""Fixtures for every test pytest collects here: the tests under ``tests/`` and the doctests
under ``src/nasforge`` (``testpaths``), which ``tests/conftest.py`` does not reach."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Model tests and doctests run with one intra-op thread: on a loaded 2-core machine,
    torch's default of one thread per core makes small forward passes many times slower
    (the one-shot doctest took 15 s inside the suite and 3 s alone)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
