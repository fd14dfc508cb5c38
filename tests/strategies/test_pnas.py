"""PNAS grows complexity step by step, ranks expansions with its surrogate, beats random."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import nasforge
from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError
from nasforge.spaces.base import Decision, SearchSpace
from nasforge.spaces.nb201 import NB201Space
from nasforge.strategies.pnas import PNAS
from nasforge.trial import Trial, TrialState


@pytest.fixture(scope="module")
def valid(bench):
    return bench.column("cifar10", "valid_acc")


def run(strategy, space, valid, n):
    """Ask and tell ``n`` times; each record is (arch, level, progressive) at its ask."""
    records = []
    for number in range(n):
        arch = strategy.ask().arch
        records.append((arch, strategy.level, strategy.progressive))
        score = float(valid[space.index(arch)])
        strategy.tell(Trial(number=number, arch=arch, state=TrialState.COMPLETE, scores=(score,)))
    return records


def complexity(arch):
    return sum(op != 0 for op in arch.choices)


def expansions(space, cell):
    """Cells that turn one ``none`` edge of ``cell`` into an operation, in canonical form."""
    out = set()
    for edge, op in itertools.product(range(6), range(1, 5)):
        if cell.choices[edge] == 0:
            choices = list(cell.choices)
            choices[edge] = op
            out.add(space.canonical(space.from_choices(choices)))
    return out


def test_first_step_is_every_cell_of_complexity_one(nb201):
    pnas = PNAS(nb201, seed=0, canonical=True)
    first = [pnas.ask().arch for _ in range(5)]
    # 0->3 carrying one of the 4 operations, and one cell whose output is a learned constant
    # (a convolution fed by a zero node: the BatchNorm shift); the other 19 single-edge
    # cells compute zero, like the empty cell
    expected = {(0, 0, 0, op, 0, 0) for op in range(1, 5)} | {(0, 0, 0, 0, 0, 2)}
    assert {a.choices for a in first} == expected
    assert pnas.level == 1
    for raw in (PNAS(nb201, seed=0, canonical=False), PNAS(nb201, seed=0)):  # no study
        cells = {raw.ask().arch for _ in range(24)}
        assert len(cells) == 24 and all(complexity(a) == 1 for a in cells)


def test_complexity_grows_one_step_at_a_time_from_the_kept_cells(nb201, valid):
    pnas = PNAS(nb201, seed=2, beam_size=8, canonical=True)
    records = run(pnas, nb201, valid, 60)
    progressive = [(arch, level) for arch, level, prog in records if prog]
    levels = [level for _, level in progressive]
    assert levels == sorted(levels) and levels[-1] == 6  # non-decreasing, reaches 6
    assert all(complexity(arch) == level for arch, level in progressive)
    steps = {b: [a for a, level in progressive if level == b] for b in range(1, 7)}
    for b in range(2, 7):
        assert 1 <= len(steps[b]) <= 8
        grown = set().union(*(expansions(nb201, cell) for cell in steps[b - 1]))
        assert set(steps[b]) <= grown
    # after complexity 6: a local search around the best evaluated cells
    local = [arch for arch, _, prog in records if not prog]
    assert local and not pnas.progressive
    evaluated = [arch for arch, _, _ in records]
    for arch in local:
        assert any(
            sum(x != y for x, y in zip(arch.choices, other.choices, strict=True)) == 1
            for other in evaluated
        )


def test_each_step_proposes_the_expansions_the_surrogate_ranks_best(nb201, valid):
    pnas = PNAS(nb201, seed=4, beam_size=6, canonical=True)
    first = [a for a, _, _ in run(pnas, nb201, valid, 5)]
    step2 = [pnas.ask().arch for _ in range(6)]
    candidates = sorted(
        {c for cell in first for c in expansions(nb201, cell) if complexity(c) == 2},
        key=lambda a: a.choices,
    )
    mean, _ = pnas.predictor.predict(np.stack([nb201.encode(c) for c in candidates]))
    best = sorted(mean)[-6:]
    got = [mean[candidates.index(a)] for a in step2]
    assert got == pytest.approx(sorted(best, reverse=True))


def test_never_proposes_a_function_twice(nb201, valid):
    records = run(PNAS(nb201, seed=1, beam_size=12, canonical=True), nb201, valid, 120)
    archs = [a for a, _, _ in records]
    assert len(set(archs)) == 120
    assert all(nb201.canonical(a) == a for a in archs)


class HashedNB201(NB201Space):
    """NB201 whose functional key is a string, as a generic hash of the built network is."""

    def functional_key(self, arch):
        return "hash:" + str(self.canonical(arch))


def test_follows_the_functional_key_a_deduplicating_study_sets(nb201, valid):
    follows = PNAS(nb201, seed=1, beam_size=12)
    follows.functional_key = nb201.functional_key  # what create_study(dedupe=True) does
    archs = [a for a, _, _ in run(follows, nb201, valid, 60)]
    assert all(nb201.canonical(a) == a for a in archs)
    own = PNAS(nb201, seed=1, beam_size=12, canonical=True)
    assert archs == [a for a, _, _ in run(own, nb201, valid, 60)]
    never = PNAS(nb201, seed=1, canonical=False)
    never.functional_key = nb201.functional_key
    assert len({never.ask().arch for _ in range(24)}) == 24  # the 19 dead cells too

    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])
    study = nasforge.create_study(strategy="pnas", seed=0, dedupe=True, evaluator=ev)
    study.optimize(ev, n_trials=30)
    forms = [nb201.canonical(t.arch) for t in study.trials]
    assert len(set(forms)) == 30  # no proposal computes what an earlier one did


def test_a_string_functional_key_keeps_the_first_cell_of_each_class(valid):
    space = HashedNB201()
    records = run(PNAS(space, seed=0, canonical=True), space, valid, 60)
    keys = [space.functional_key(a) for a, _, _ in records]
    assert len(set(keys)) == 60
    # the 19 single-edge cells that compute nothing share the empty cell's key
    assert sum(level == 1 for _, level, _ in records) == 5
    progressive = [(a, level) for a, level, prog in records if prog]
    assert all(complexity(nb201_canonical(space, a)) == level for a, level in progressive)


def nb201_canonical(space, arch):
    return NB201Space.canonical(space, arch)


def test_canonical_true_needs_a_space_that_knows_functions():
    with pytest.raises(UnsupportedOperationError, match=r"canonical=True .* neither a canonical"):
        PNAS(Bits(), empty_option="off", canonical=True)
    assert PNAS(Bits(), empty_option="off").ask().arch.choices.count(1) == 1  # follows: off
    with pytest.raises(InvalidConfigError, match="canonical must be None"):
        PNAS(Bits(), empty_option="off", canonical="yes")


def test_without_functional_knowledge_seeds_differ_and_end_on_grown_cells(nb201, valid):
    bests, runs = [], []
    for seed in range(6):
        pnas = PNAS(nb201, seed=seed)
        archs = [a for a, _, _ in run(pnas, nb201, valid, 100)]
        assert not pnas.progressive  # the local search after complexity 6 was reached
        best = max(archs, key=lambda a: valid[nb201.index(a)])
        # not a chance-level cell, nor the best single-edge one (88.5): grown and searched
        assert valid[nb201.index(best)] > 90.5
        bests.append(best)
        runs.append(tuple(archs))
    assert len(set(runs)) == 6 and len(set(bests)) > 1


def test_beats_random_search_at_100_queries(bench, nb201, valid):
    test = bench.column("cifar10", "test_acc")

    def best_test(rows):
        return test[max(rows, key=lambda i: valid[i])]

    rng = np.random.default_rng(0)
    found, baseline = [], []
    for seed in range(20):
        records = run(PNAS(nb201, seed=seed), nb201, valid, 100)
        found.append(best_test([nb201.index(a) for a, _, _ in records]))
        baseline.append(best_test(rng.integers(len(valid), size=100)))
    # without functional knowledge (no study): measured over these seeds, about 94.2
    # against 93.7 for random search
    assert np.mean(found) > np.mean(baseline) + 0.25


class Bits(SearchSpace):
    """Eight decisions between ``"off"`` and ``"on"``."""

    name = "bits"
    encodings = ("onehot",)
    options: tuple[str, ...] = ("off", "on")

    def sample(self, rng):
        return self.from_choices(rng.integers(2, size=8).tolist())

    def parse(self, text):
        return self.from_choices([int(c) for c in text])

    def from_choices(self, choices):
        text = "".join(str(int(c)) for c in choices)
        return nasforge.Architecture("bits", tuple(int(c) for c in choices), text)

    def decisions(self):
        return tuple(Decision(f"bit{i}", self.options) for i in range(8))

    def encode(self, arch, kind="onehot"):
        return np.asarray(arch.choices, dtype=np.float64)


def test_other_spaces_name_their_empty_option():
    with pytest.raises(UnsupportedOperationError, match=r"bit0, .* have no option 'none'"):
        PNAS(Bits())
    pnas = PNAS(Bits(), seed=0, empty_option="off", beam_size=3)
    levels = []
    for number in range(20):
        arch = pnas.ask().arch
        levels.append(sum(arch.choices))
        trial = Trial(number=number, arch=arch, state=TrialState.COMPLETE, scores=(levels[-1],))
        pnas.tell(trial)
    # all 8 cells of one bit, then the 3 best-ranked of two bits, ... up to 8 bits
    assert levels[:8] == [1] * 8 and levels[8:11] == [2, 2, 2]
    assert levels[:20] == sorted(levels[:20])


def test_needs_a_space_of_decisions():
    class NoDecisions(Bits):
        decisions = SearchSpace.decisions

    with pytest.raises(UnsupportedOperationError, match="decisions"):
        PNAS(NoDecisions(), empty_option="off")


def test_parameter_errors(nb201):
    with pytest.raises(InvalidConfigError, match="beam_size must be at least 1"):
        PNAS(nb201, beam_size=0)
    with pytest.raises(InvalidConfigError, match="exploration must be"):
        PNAS(nb201, exploration=-1.0)
    with pytest.raises(InvalidConfigError, match="local_radius must be at least 1"):
        PNAS(nb201, local_radius=0)
    with pytest.raises(InvalidConfigError, match=r"floor_quantile must be in \[0, 1\)"):
        PNAS(nb201, floor_quantile=-0.1)
    with pytest.raises(UnknownNameError, match="encoding"):
        PNAS(nb201, encoding="adjacency")


def test_pretrained_surrogate_is_fine_tuned_and_resumes():
    from nasforge.testing import check_strategy

    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])
    space = nasforge.spaces.create("nb201")
    pnas = PNAS(space, seed=0, pretrain=True, canonical=True)
    pnas.free_metrics = ev.free_metrics
    valid = ev.benchmark.column("cifar10", "valid_acc")
    run(pnas, space, valid, 13)  # step 1, then the first ranked step
    base = pnas._surrogate.pretrained()
    assert pnas.predictor is not None
    assert pnas.predictor is not base  # each step fine-tunes a copy
    check_strategy("pnas", n_trials=12, params={"pretrain": True})
