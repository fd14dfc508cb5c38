"""Every registered strategy and space passes the shared contract."""

from __future__ import annotations

import pytest

from nasforge import spaces, strategies
from nasforge.testing import check_space, check_strategy


@pytest.mark.parametrize("name", strategies.names())
def test_strategy_contract(name):
    check_strategy(name)


@pytest.mark.parametrize("name", spaces.names())
def test_space_contract(name):
    check_space(spaces.create(name))
