"""Every registered strategy and space passes the shared contract."""

from __future__ import annotations

import pytest

from nasforge import spaces, strategies
from nasforge.errors import MissingDependencyError
from nasforge.testing import check_space, check_strategy


@pytest.mark.parametrize("name", strategies.names())
def test_strategy_contract(name):
    try:
        strategies.create(name, spaces.create("nb201"), seed=0)
    except MissingDependencyError as exc:
        pytest.skip(f"optional dependency missing: {exc}")
    check_strategy(name)


@pytest.mark.parametrize("name", spaces.names())
def test_space_contract(name):
    check_space(spaces.create(name))
