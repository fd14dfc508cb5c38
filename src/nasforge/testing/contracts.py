"""The shared contracts of strategies and spaces, as plain functions raising AssertionError."""

from __future__ import annotations

from typing import Any

import numpy as np

import nasforge
from nasforge.spaces.base import SearchSpace
from nasforge.storage import InMemoryStorage
from nasforge.trial import TrialState

__all__ = ["check_space", "check_strategy"]


def check_strategy(
    name: str,
    *,
    space: str = "nb201",
    dataset: str = "cifar10",
    n_trials: int = 40,
    params: dict[str, Any] | None = None,
) -> None:
    """Check the :class:`~nasforge.strategies.Strategy` contract of strategy ``name``.

    * the same seed gives the same trials, another seed other trials;
    * every proposal belongs to the space;
    * a study stopped after any number of trials and resumed ends with the same trials.
    """
    params = params or {}
    evaluator = nasforge.evaluators.create("tabular", dataset=dataset, metrics=["valid_acc"])

    def run(seed: int, n: int, storage: Any = None) -> list[tuple[str, str]]:
        study = nasforge.create_study(
            space=space,
            strategy=name,
            seed=seed,
            storage=storage,
            study_name="contract",
            strategy_params=params,
        )
        study.optimize(evaluator, n_trials=n)
        return [(t.arch.text, t.state.value) for t in study.trials]

    first, again, other = run(0, n_trials), run(0, n_trials), run(1, n_trials)
    assert first == again, f"strategy {name!r} is not deterministic for a fixed seed"
    assert first != other, f"strategy {name!r} ignores its seed"
    assert all(state == TrialState.COMPLETE.value for _, state in first)
    the_space = nasforge.spaces.create(space)
    for text, _ in first:
        the_space.parse(text)
    for stop in sorted({1, n_trials // 3, n_trials // 2, n_trials - 1}):
        storage = InMemoryStorage()
        run(0, stop, storage)
        resumed = nasforge.load_study("contract", storage).optimize(n_trials=n_trials)
        got = [(t.arch.text, t.state.value) for t in resumed.trials]
        assert got == first, f"strategy {name!r} resumed after {stop} trials differs"


def check_space(space: SearchSpace, *, samples: int = 50, seed: int = 0) -> None:
    """Check the :class:`~nasforge.spaces.SearchSpace` contract on random samples."""
    rng = np.random.default_rng(seed)
    for _ in range(samples):
        arch = space.sample(rng)
        assert arch.space == space.name
        assert space.parse(str(arch)) == arch, "parse(str(arch)) must give arch back"
        assert space.from_choices(arch.choices) == arch
        assert hash(arch) == hash(space.parse(str(arch)))
        if space.supports("mutate"):
            child = space.mutate(arch, rng)
            assert child.space == space.name and child != arch
        if space.supports("neighbours"):
            nbrs = space.neighbours(arch)
            assert arch not in nbrs and len(set(nbrs)) == len(nbrs)
        canonical = space.canonical(arch)
        assert space.canonical(canonical) == canonical, "canonical() must be idempotent"
        for kind in space.encodings:
            vector = space.encode(arch, kind)
            assert vector.ndim == 1 and np.all(np.isfinite(vector))
    a = space.sample(np.random.default_rng(seed))
    b = space.sample(np.random.default_rng(seed))
    assert a == b, "sample() must depend only on the generator"
