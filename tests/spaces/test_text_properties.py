"""Property-based tests (hypothesis) of architecture text: every architecture round-trips
through its text, and malformed text raises InvalidArchitectureError, never another error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nasforge
from nasforge.errors import InvalidArchitectureError

SPACES = ["nb201", "darts"]


def _space(name: str):
    return nasforge.spaces.create(name)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=6, max_size=6))
def test_nb201_choices_round_trip_through_text(choices):
    space = _space("nb201")
    arch = space.from_choices(choices)
    assert space.parse(str(arch)) == arch
    assert list(space.parse(str(arch)).choices) == choices
    canonical = space.canonical(arch)
    assert space.parse(str(canonical)) == canonical


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_sampled_architectures_round_trip_through_text(name, seed):
    space = _space(name)
    arch = space.sample(np.random.default_rng(seed))
    assert space.parse(str(arch)) == arch
    assert space.parse(str(space.canonical(arch))) == space.canonical(arch)


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_damaged_text_is_refused_with_invalid_architecture_error(name, seed, data):
    space = _space(name)
    text = str(space.sample(np.random.default_rng(seed)))
    start = data.draw(st.integers(0, len(text)))
    stop = data.draw(st.integers(start, min(len(text), start + 8)))
    insert = data.draw(st.text(alphabet="|+~_0123456789abcxyz ()[],'", max_size=6))
    damaged = text[:start] + insert + text[stop:]
    try:
        arch = space.parse(damaged)
    except InvalidArchitectureError:
        return
    assert space.parse(str(arch)) == arch  # accepted text is a valid architecture


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=60))
def test_arbitrary_text_is_refused_with_invalid_architecture_error(name, text):
    space = _space(name)
    try:
        arch = space.parse(text)
    except InvalidArchitectureError:
        return
    assert space.parse(str(arch)) == arch
