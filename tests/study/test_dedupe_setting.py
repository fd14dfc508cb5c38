"""Functional deduplication as a setting of the study: its default, who follows it, and the
spaces it cannot apply to."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import nasforge
from nasforge import spaces
from nasforge.architecture import Architecture
from nasforge.errors import UnsupportedOperationError
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.spaces.nb201 import NB201Space

BLIND = "test-dedupe-blind"
HASHED = "test-dedupe-hashed"


@spaces.register(BLIND)
class Blind(SearchSpace):
    """Two decisions, no canonical form and no builder: nothing says what is equal."""

    name = BLIND

    def decisions(self) -> tuple[Decision, ...]:
        return (Decision("a", ("x", "y")), Decision("b", ("x", "y")))

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        values = self.check_choices(choices)
        return Architecture(BLIND, values, "-".join("xy"[c] for c in values))

    def parse(self, text: str) -> Architecture:
        return self.from_choices(["xy".index(c) for c in text.split("-")])


@spaces.register(HASHED)
class Hashed(NB201Space):
    """NB201 without its hand-written canonical form: only the builder's networks tell."""

    name = HASHED
    canonical = SearchSpace.canonical


def test_the_default_is_on_where_the_space_has_a_canonical_form() -> None:
    assert nasforge.spaces.create("nb201").dedupe_method == "canonical"
    assert nasforge.create_study(space="nb201").dedupe is True
    assert nasforge.create_study(space="nb201", dedupe=False).dedupe is False
    assert nasforge.create_study(space=BLIND).dedupe is False
    assert Hashed().dedupe_method == "hash"
    assert nasforge.create_study(space=HASHED).dedupe is False  # hashing costs builds: asked for


def test_dedupe_on_a_space_that_cannot_tell_is_refused_with_the_fix() -> None:
    with pytest.raises(UnsupportedOperationError, match="neither a canonical form") as caught:
        nasforge.create_study(space=BLIND, dedupe=True)
    assert "dedupe=False" in str(caught.value)
    with pytest.raises(UnsupportedOperationError, match="neither a canonical form"):
        Blind().functional_key(Blind().parse("x-y"))


def test_the_strategy_gets_the_study_s_functional_key() -> None:
    on = nasforge.create_study(space="nb201", strategy="random")
    off = nasforge.create_study(space="nb201", strategy="random", dedupe=False)
    assert on._strategy.functional_key is not None and off._strategy.functional_key is None
    space = on.space
    a = space.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|")
    assert on._strategy.functional_key(a) == space.canonical(a)


def test_a_space_with_only_a_builder_dedupes_by_hashing_its_networks() -> None:
    space = Hashed()
    a = space.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|")
    twin = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert space.functional_key(a) == space.functional_key(twin)
    assert isinstance(space.functional_key(a), str)
    study = nasforge.create_study(space=HASHED, strategy="random", dedupe=True)
    study.enqueue_trial(a)
    study.enqueue_trial(twin)
    trials = study.optimize(_Score(), n_trials=2).trials
    assert trials[1].duplicate_of == trials[0].number and trials[1].cost == 0


class _Score(nasforge.evaluators.base.Evaluator):
    space = HASHED

    @property
    def metrics(self):  # type: ignore[no-untyped-def]
        from nasforge.trial import Direction

        return {"valid_acc": Direction.MAXIMIZE}

    def evaluate(self, arch, fidelity=None):  # type: ignore[no-untyped-def]
        from nasforge.trial import Result

        return Result({"valid_acc": float(sum(arch.choices))}, cost=1.0)


def test_a_search_converged_on_known_architectures_stops_without_error(caplog) -> None:
    study = nasforge.create_study(
        strategy="regularized-evolution",
        strategy_params={"population_size": 4, "tournament_size": 2},
        seed=1,
    )
    study.max_free_streak, study.max_free_per_paid = 30, 0  # at most 30 free answers
    with caplog.at_level("WARNING"):
        study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), budget=500)
    paid = [t for t in study.trials if t.duplicate_of is None]
    assert len(paid) == study.spent < 500  # stopped early, everything it evaluated kept
    assert "the search has converged" in caplog.text
    # with a constraint in the mix the same bound is an error that names the fix (see
    # test_free_answers.py): there, stopping would hide an infeasible constraint
