"""The shared contracts of spaces, strategies, evaluators and tabular benchmarks, as plain
functions raising AssertionError (the contracts of proxies and one-shot methods, which need
torch, are in :mod:`nasforge.testing.models`; the storage contract in
:mod:`nasforge.testing.storages`)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

import nasforge
from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, NasforgeError
from nasforge.evaluators.base import Evaluator
from nasforge.spaces.base import SearchSpace
from nasforge.storage import InMemoryStorage
from nasforge.tabular.base import MetricInfo, TabularBenchmark
from nasforge.trial import Direction, Result, TrialState

__all__ = [
    "HashEvaluator",
    "check_benchmark",
    "check_evaluator",
    "check_space",
    "check_strategy",
]


class HashEvaluator(Evaluator):
    """A made-up, deterministic score of any architecture: a hash of its text.

    For contract tests that need an evaluator where a space has no table and training would
    be slow. ``valid_acc`` lies in [0, 100); each evaluation costs one query.

    Args:
        space: The space it accepts (``None``: any).
        metric: The name of the score.

    Example:
        >>> from nasforge import spaces
        >>> arch = spaces.create("nb201").from_index(6111)
        >>> HashEvaluator().evaluate(arch) == HashEvaluator().evaluate(arch)
        True
    """

    def __init__(self, space: str | None = None, metric: str = "valid_acc") -> None:
        self.space = space
        self._metric = metric

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {self._metric: Direction.MAXIMIZE}

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        if self.space is not None and arch.space != self.space:
            raise InvalidArchitectureError(
                f"This HashEvaluator scores space {self.space!r}, got {arch!r}."
            )
        digest = hashlib.blake2b(f"{arch.space}:{arch.text}".encode(), digest_size=8).digest()
        return Result({self._metric: int.from_bytes(digest, "big") / 2**64 * 100}, cost=1.0)


def check_strategy(
    name: str,
    *,
    space: str = "nb201",
    dataset: str = "cifar10",
    n_trials: int = 40,
    params: dict[str, Any] | None = None,
    evaluator: Evaluator | None = None,
) -> None:
    """Check the :class:`~nasforge.strategies.Strategy` contract of strategy ``name``.

    * the same seed gives the same trials, another seed other trials;
    * every proposal belongs to the space;
    * a study stopped after any number of trials and resumed ends with the same trials.

    Args:
        name: Registry name of the strategy.
        space: Registry name of the space searched.
        dataset: Dataset of the tabular benchmark that scores (``space`` must have one).
        n_trials: Trials of each run.
        params: The strategy's parameters.
        evaluator: Scores the trials instead of the benchmark (it must return
            ``valid_acc``), e.g. :class:`HashEvaluator` for a space without a benchmark.
    """
    params = params or {}
    if evaluator is None:
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


def _foreign(arch: Architecture) -> Architecture:
    """An architecture of a space no registry knows, with the choices of ``arch``."""
    return Architecture(f"not-{arch.space}", arch.choices, arch.text)


def check_evaluator(
    evaluator: Evaluator,
    *,
    space: SearchSpace | None = None,
    samples: int = 3,
    seed: int = 0,
    deterministic: bool = True,
) -> None:
    """Check the :class:`~nasforge.evaluators.Evaluator` contract on sampled architectures.

    * it declares at least one metric, each with a :class:`~nasforge.trial.Direction`;
    * an evaluation returns a :class:`~nasforge.trial.Result` whose metrics are declared
      ones, finite numbers, with a finite positive cost in the evaluator's ``cost_unit``;
      every declared metric is returned for at least one of the samples;
    * with ``deterministic``, the same architecture gets the same metrics again;
    * ``free_metrics`` returns only names of ``free_metric_names``; ``expected_cost`` is
      ``None`` or a finite non-negative number;
    * an evaluator that names its space refuses an architecture of another space with a
      :class:`~nasforge.errors.NasforgeError`;
    * its ``spec()``, when it has one, rebuilds through ``nasforge.evaluators.create`` an
      evaluator with the same spec (what resumed studies and workers do).

    Args:
        evaluator: The evaluator to check.
        space: Where the samples come from (default: ``evaluator.space``).
        samples: Architectures evaluated.
        seed: Seed of the samples.
        deterministic: Whether equal architectures must get equal metrics.
    """
    declared = dict(evaluator.metrics)
    assert declared, f"{type(evaluator).__name__} declares no metrics"
    assert all(isinstance(d, Direction) for d in declared.values()), "metrics map to Directions"
    assert evaluator.cost_unit in ("queries", "seconds"), f"cost_unit {evaluator.cost_unit!r}"
    if space is None:
        assert evaluator.space is not None, "give the space to sample from (evaluator.space=None)"
        space = nasforge.spaces.create(evaluator.space)
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(samples)]
    seen: set[str] = set()
    results = []
    for arch in archs:
        result = evaluator.evaluate(arch)
        assert isinstance(result, Result), f"evaluate() returned {type(result).__name__}"
        assert result.metrics, f"no metric for {arch}"
        undeclared = set(result.metrics) - set(declared)
        assert not undeclared, f"undeclared metrics {sorted(undeclared)}"
        for name, value in result.metrics.items():
            assert math.isfinite(float(value)), f"{name} of {arch} is {value!r}"
        cost = float(result.cost)
        assert math.isfinite(cost) and cost > 0, f"cost of {arch} is {result.cost!r}"
        expected = evaluator.expected_cost(arch)
        assert expected is None or (math.isfinite(expected) and expected >= 0)
        free = evaluator.free_metrics(arch)
        assert set(free) <= set(evaluator.free_metric_names), "free metrics must be declared"
        seen |= set(result.metrics)
        results.append(dict(result.metrics))
    missing = set(declared) - seen
    assert not missing, f"declared metrics never returned: {sorted(missing)}"
    if deterministic:
        again = dict(evaluator.evaluate(archs[0]).metrics)
        assert again == results[0], f"{archs[0]} evaluated twice: {results[0]} then {again}"
    if evaluator.space is not None:
        try:
            evaluator.evaluate(_foreign(archs[0]))
        except NasforgeError:
            pass
        else:
            raise AssertionError(
                f"an architecture of another space than {evaluator.space!r} was accepted"
            )
    spec = evaluator.spec()
    if spec is not None:
        params = dict(spec)
        rebuilt = nasforge.evaluators.create(params.pop("name"), **params)
        assert rebuilt.spec() == spec, f"spec {spec} rebuilds {rebuilt.spec()}"
        if deterministic:
            assert dict(rebuilt.evaluate(archs[0]).metrics) == results[0]


def _refused(call: Any, word: str) -> None:
    try:
        call()
    except NasforgeError as exc:
        assert word in str(exc), f"the error does not name {word!r}: {exc}"
    else:
        raise AssertionError(f"{word!r} was accepted")


def check_benchmark(bench: TabularBenchmark, *, samples: int = 5, seed: int = 0) -> None:
    """Check the :class:`~nasforge.tabular.TabularBenchmark` contract.

    * it names a registered space and at least one dataset; fidelities are highest first;
    * for each dataset (and fidelity), ``metrics`` lists :class:`MetricInfo`; a sampled
      architecture's ``query_all`` returns listed metrics as finite numbers, each equal to
      ``query`` of that metric and found in ``column`` of that metric;
    * a query costs 1 at the highest fidelity and a positive share of it below;
    * an unknown dataset or metric raises a :class:`~nasforge.errors.NasforgeError` that
      names it.
    """
    assert bench.datasets, f"benchmark {bench.name!r} has no dataset"
    assert list(bench.fidelities) == sorted(bench.fidelities, reverse=True)
    space = nasforge.spaces.create(bench.space)
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(samples)]
    for dataset in bench.datasets:
        for fidelity in (None, *bench.fidelities[1:2]):
            infos = bench.metrics(dataset, fidelity)
            assert infos and all(isinstance(i, MetricInfo) for i in infos)
            names = {i.name for i in infos}
            cost = bench.cost(dataset, fidelity)
            assert (cost == 1.0) if fidelity is None else (0 < cost <= 1), f"cost {cost}"
            seen: set[str] = set()
            for arch in archs:
                values = bench.query_all(arch, dataset, fidelity)
                assert set(values) <= names, f"unlisted metrics {set(values) - names}"
                seen |= set(values)
                for metric, value in values.items():
                    assert math.isfinite(value), f"{metric} of {arch} on {dataset} is {value}"
                    assert bench.query(arch, dataset, metric, fidelity) == value
            assert seen, f"no metric of {dataset} for the sampled architectures"
            metric = sorted(seen)[0]
            column = bench.column(dataset, metric, fidelity)
            if space.size is not None:
                assert len(column) == space.size, "column() has one value per architecture"
            value = bench.query(archs[0], dataset, metric, fidelity)
            assert np.any(np.isclose(column, value)), f"{metric} of {archs[0]} not in column()"
    dataset, arch = bench.datasets[0], archs[0]
    metric = next(iter(bench.query_all(arch, dataset)))
    _refused(lambda: bench.metrics("no-such-dataset"), "no-such-dataset")
    _refused(lambda: bench.query(arch, "no-such-dataset", metric), "no-such-dataset")
    _refused(lambda: bench.query_all(arch, "no-such-dataset"), "no-such-dataset")
    _refused(lambda: bench.query(arch, dataset, "no_such_metric"), "no_such_metric")
    _refused(lambda: bench.column(dataset, "no_such_metric"), "no_such_metric")
