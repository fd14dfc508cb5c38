"""Sub-network search on a trained supernet: Once-for-All's encoding, accuracy predictor and
evolution under constraints, the search as a study, bad input, and the export of the chosen
sub-network with its inherited weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge import export, spaces
from nasforge.constraints import Constraint
from nasforge.elastic.search import (
    AccuracyPredictor,
    SubnetScorer,
    encode,
    evolve,
    random_rows,
    search_subnets,
)
from nasforge.errors import (
    InfeasibleConstraintError,
    InvalidArchitectureError,
    InvalidConfigError,
    UnknownNameError,
)
from nasforge.evaluators.supernet import SubnetCosts, SupernetEvaluator
from nasforge.trial import Objective

SYNTHETIC = {"n_train": 256, "n_test": 16, "size": 16, "num_classes": 4}
SMALL = {
    "dataset": "synthetic",
    "synthetic": SYNTHETIC,
    "recalibration_batches": 1,
    "valid_images": 64,
}
QUICK = {"measured": 6, "population": 10, "generations": 5, "top_k": 2, "predictor_epochs": 50}


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory):
    """An ofa-cifar supernet at width 0.25 trained for two steps of the uniform schedule."""
    from nasforge.elastic import TrainSettings, train_supernet
    from nasforge.train.data import SyntheticImages

    out = tmp_path_factory.mktemp("supernet")
    settings = TrainSettings(width_mult=0.25, epochs=1, batch_size=32, steps_per_epoch=2)
    data = SyntheticImages(**SYNTHETIC).load()
    train_supernet("ofa-cifar", "uniform", data, out, settings, device="cpu", threads=1)
    return out


@pytest.fixture(scope="module")
def costs():
    return SubnetCosts(spaces.create("ofa-cifar"), num_classes=4, width_mult=0.25)


def _rows(count, seed):
    return np.random.default_rng(seed).integers(0, 3, (count, 46))


def test_encoding_is_ofas(costs):
    space = costs.space
    arch = space.parse(
        "res=24;s1=e6k7,e3k5;s2=e4k3,e4k3,e4k3;s3=e3k3,e3k3;s4=e3k3,e3k3;s5=e3k3,e3k3"
    )
    x = encode(costs, np.array([arch.choices]))[0]
    assert x.shape == (3 + 20 * 3 * 2,)
    assert x[:3].tolist() == [0, 1, 0]  # resolution 24
    kernels = x[3:63].reshape(5, 4, 3)
    expansions = x[63:].reshape(5, 4, 3)
    assert kernels[0, 0].tolist() == [0, 0, 1] and expansions[0, 0].tolist() == [0, 0, 1]
    assert kernels[0, 1].tolist() == [0, 1, 0] and expansions[0, 1].tolist() == [1, 0, 0]
    assert not kernels[0, 2:].any() and not expansions[0, 2:].any()  # beyond the depth
    assert kernels[1, :3].sum() == 3 and not kernels[1, 3].any()
    # blocks beyond the depth do not change the encoding
    twin = space.parse(str(arch).replace("s1=e6k7,e3k5", "s1=e6k7,e3k5/e6k7,e6k7"))
    assert np.array_equal(encode(costs, np.array([twin.choices]))[0], x)


def test_predictor_learns_accuracy_as_a_function_of_macs(costs):
    rows = _rows(160, 0)
    macs = costs.batch(rows)["macs_M"]
    accuracy = 60.0 + 8.0 * np.log(macs)  # a made-up relation with the size
    predictor = AccuracyPredictor(costs, seed=0).fit(rows[:120], accuracy[:120])
    error = np.mean((predictor.predict(rows[120:]) - accuracy[120:]) ** 2)
    baseline = np.mean((accuracy[:120].mean() - accuracy[120:]) ** 2)
    assert error < 0.2 * baseline  # far better than predicting the mean


def _macs_scorer(costs, bound):
    """A scorer whose 'predicted accuracy' grows with the MACs, under a MACs bound."""
    return SubnetScorer(
        costs,
        lambda rows: np.log(costs.batch(rows)["macs_M"]),
        Objective.parse("valid_acc:max"),
        [Constraint.parse(f"macs_M<={bound}")],
    )


def test_evolution_under_a_macs_bound_keeps_feasible_and_improves(costs):
    low, _ = costs.extreme("macs_M")
    high, _ = costs.extreme("macs_M", lowest=False)
    bound = low + 0.3 * (high - low)
    found = evolve(_macs_scorer(costs, bound), np.random.default_rng(0), population=30,
                   generations=30)  # fmt: skip
    assert np.all(costs.batch(found.candidates)["macs_M"] <= bound)
    assert found.history[-1] > found.initial.max()  # better than the initial population
    assert np.all(np.diff(found.history) >= 0)  # the parents are kept
    assert found.fitness[0] == max(found.fitness) == found.history[-1]
    assert len(np.unique(found.candidates, axis=0)) == len(found.candidates)
    again = evolve(_macs_scorer(costs, bound), np.random.default_rng(0), population=30,
                   generations=30)  # fmt: skip
    assert np.array_equal(again.candidates, found.candidates)  # same seed, same search


def test_scoring_a_thousand_candidates_in_one_batch(costs):
    predictor = AccuracyPredictor(costs, epochs=5).fit(_rows(20, 1), np.arange(20.0))
    scorer = SubnetScorer(
        costs, predictor.predict, Objective.parse("valid_acc:max"), [Constraint.parse("macs_M<=9")]
    )
    rows = _rows(1000, 2)
    scores = scorer.score(rows)  # the timing is benchmarks/subnet_search.py's
    assert scores.predicted.shape == (1000,)
    assert np.allclose(scores.predicted[:10], scorer.score(rows[:10]).predicted)
    assert np.array_equal(scores.feasible, scores.metrics["macs_M"] <= 9)


def test_search_is_a_study_and_exports_the_chosen_sub_network(supernet_dir, tmp_path):
    ev = SupernetEvaluator(supernet_dir, **SMALL)
    low, _ = ev.costs.extreme("macs_M")
    bound = 2.5 * low
    url = f"sqlite:///{tmp_path / 'search.db'}"
    result = search_subnets(
        ev, constraints=[f"macs_M<={bound}"], storage=url, study_name="ofa", **QUICK
    )
    study = result.study
    assert QUICK["measured"] < len(study.trials) <= QUICK["measured"] + QUICK["top_k"]
    assert all("valid_acc" in t.metrics and "macs_M" in t.metrics for t in study.trials)
    assert result.chosen.number == study.best_trial.number
    assert result.constraints["macs_M"] <= bound and result.metrics == result.chosen.metrics
    measured_finals = [t for t in study.trials if "predicted_valid_acc" in t.metrics]
    assert all(t.metrics["macs_M"] <= bound for t in measured_finals)
    assert [c[0] for c in result.candidates] == [t.arch.text for t in measured_finals]
    rows = random_rows(ev.costs, 1000, np.random.default_rng(0))
    scores = result.scorer.score(rows)  # what the benchmark times
    assert scores.predicted.shape == (1000,)
    # the same command again resumes: nothing is measured twice
    again = search_subnets(
        ev, constraints=[f"macs_M<={bound}"], storage=url, study_name="ofa", **QUICK
    )
    assert len(again.study.trials) == len(study.trials) and again.arch == result.arch
    # the export: the stand-alone sub-network with the inherited, recalibrated weights
    written = export.export_trial(study, tmp_path / "chosen.pt")
    assert written.trained and written.arch == result.arch.text
    model = export.load(written.path)
    side = spaces.create("ofa-cifar").resolution(result.arch)
    x = torch.randn(4, 3, side, side, generator=torch.Generator().manual_seed(0))
    supernet = ev.prepare(result.arch).eval()
    try:
        with torch.no_grad():
            diff = (model(x) - supernet(x)).abs().max().item()
    finally:
        ev.restore()
    assert diff <= 1e-5


def test_any_registered_strategy_searches(supernet_dir):
    ev = SupernetEvaluator(supernet_dir, **SMALL)
    result = search_subnets(ev, strategy="random", n_trials=3, constraints=["params_M<=1"])
    assert len(result.study.trials) == 3 and result.predicted is None
    assert result.chosen.number == result.study.best_trial.number


def test_measured_latency_constraint(supernet_dir):
    ev = SupernetEvaluator(supernet_dir, measure=True, runs=3, **SMALL)
    (metric,) = ev.measured_names
    result = search_subnets(ev, constraints=[f"{metric}<=1000"], **QUICK)
    assert result.constraints[metric] <= 1000
    with pytest.raises(InfeasibleConstraintError) as info:
        search_subnets(ev, constraints=[f"{metric}<=0.000001"], **QUICK)
    # the smallest sub-network is measured too before giving up; which one times fastest
    # depends on the machine, so the message's value is checked, not whose it is
    assert f"lowest {metric} measured was" in str(info.value)
    value = float(str(info.value).split("measured was ")[1].split(",")[0].split(")")[0])
    assert 0.0 < value < 1000.0


def test_bad_input(supernet_dir):
    ev = SupernetEvaluator(supernet_dir, **SMALL)
    low, smallest = ev.costs.extreme("macs_M")
    with pytest.raises(InfeasibleConstraintError) as info:
        search_subnets(ev, constraints=[f"macs_M<={low / 2}"], **QUICK)
    assert f"lowest reachable macs_M is {low:g}" in str(info.value)
    assert smallest.text in str(info.value)
    high, _ = ev.costs.extreme("params_M", lowest=False)
    with pytest.raises(InfeasibleConstraintError, match=f"highest reachable params_M is {high:g}"):
        search_subnets(ev, constraints=[f"params_M>={2 * high}"], **QUICK)
    with pytest.raises(InfeasibleConstraintError, match="highest valid_acc measured was"):
        search_subnets(ev, constraints=["valid_acc>=101"], **QUICK)
    with pytest.raises(UnknownNameError, match="macs_M") as unknown:
        search_subnets(ev, constraints=["mac_M<=5"], **QUICK)
    assert "valid_acc" in str(unknown.value) and "params_M" in str(unknown.value)
    with pytest.raises(InvalidConfigError, match="measured must be"):
        search_subnets(ev, **{**QUICK, "measured": 1})
    with pytest.raises(InvalidConfigError, match="population"):
        search_subnets(ev, **{**QUICK, "population": 1})
    with pytest.raises(UnknownNameError, match="strategy"):
        search_subnets(ev, strategy="no-such-strategy", n_trials=1)


def test_a_few_shot_supernet_exports_its_sub_network(tmp_path):
    """The few-shot wrapper keeps its split as extra state (not a tensor): the export's
    save and restore of the statistics must carry it."""
    from nasforge.elastic import TrainSettings, create_schedule, train_supernet
    from nasforge.train.data import SyntheticImages

    out = tmp_path / "few"
    settings = TrainSettings(width_mult=0.25, epochs=2, batch_size=32, steps_per_epoch=1)
    data = SyntheticImages(**SYNTHETIC).load()
    schedule = create_schedule("few-shot", split="s2b0_kernel")
    train_supernet("ofa-cifar", schedule, data, out, settings, device="cpu", threads=1)
    ev = SupernetEvaluator(out, **SMALL)
    url = f"sqlite:///{tmp_path / 'few.db'}"
    result = search_subnets(ev, strategy="random", n_trials=2, storage=url, study_name="few")
    written = export.export_trial(result.study, tmp_path / "few.pt")
    model = export.load(written.path)
    side = spaces.create("ofa-cifar").resolution(result.arch)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    supernet = ev.prepare(result.arch).eval()
    try:
        with torch.no_grad():
            diff = (model(x) - supernet(x)).abs().max().item()
    finally:
        ev.restore()
    assert diff <= 1e-5


@pytest.fixture(scope="module")
def sixteen_dir(tmp_path_factory):
    """An ofa-cifar supernet trained only at 16 px (two steps of the uniform schedule)."""
    from nasforge.elastic import TrainSettings, train_supernet
    from nasforge.train.data import SyntheticImages

    out = tmp_path_factory.mktemp("sixteen")
    settings = TrainSettings(
        width_mult=0.25, epochs=1, batch_size=32, steps_per_epoch=2, resolutions=(16,)
    )
    data = SyntheticImages(**SYNTHETIC).load()
    train_supernet("ofa-cifar", "uniform", data, out, settings, device="cpu", threads=1)
    return out


def test_search_keeps_to_the_trained_resolutions(sixteen_dir, tmp_path):
    from nasforge.hardware.layer_lut import LayerLatencyTable

    space = spaces.create("ofa-cifar")
    # a latency table of the trained resolution only
    specs = space.layer_specs(num_classes=4, width_mult=0.25, resolutions=(16,))
    entries = {s.key: 0.01 * s.kernel * s.expansion for s in specs}
    table = LayerLatencyTable(entries, fixed_ms=0.1, backend="tflite", device="phone")
    ev = SupernetEvaluator(sixteen_dir, tables={"phone": table}, **SMALL)
    assert ev.trained_resolutions == (16,) and ev.costs.in_use == (16,)
    metric = "latency_ms[phone]"
    low, smallest = ev.costs.extreme(metric)
    high, _ = ev.costs.extreme(metric, lowest=False)
    result = search_subnets(ev, constraints=[f"{metric}<={(low + high) / 2}"], **QUICK)
    assert {space.resolution(t.arch) for t in result.study.trials} == {16}
    assert result.constraints[metric] <= (low + high) / 2
    with pytest.raises(InfeasibleConstraintError) as info:
        search_subnets(ev, constraints=[f"{metric}<={low / 2}"], **QUICK)
    assert f"lowest reachable {metric} is {low:g}" in str(info.value)
    assert smallest.text.startswith("res=16;") and smallest.text in str(info.value)
    # another set of resolutions of the space on request
    wider = SupernetEvaluator(sixteen_dir, **SMALL)
    other = search_subnets(wider, resolutions=(16, 32), **QUICK)
    sides = {space.resolution(t.arch) for t in other.study.trials}
    assert sides == {16, 32}
    with pytest.raises(InvalidConfigError, match=r"\[20\].*choose from \[16, 24, 32\]"):
        search_subnets(wider, resolutions=(20,), **QUICK)
    with pytest.raises(InvalidConfigError, match="resolutions applies to 'ofa-evolution'"):
        search_subnets(wider, strategy="random", n_trials=1, resolutions=(16,))


def test_evolution_draws_and_mutates_within_the_resolutions_in_use():
    costs = SubnetCosts(
        spaces.create("ofa-cifar"), num_classes=4, width_mult=0.25, resolutions=(16, 32)
    )
    assert costs.allowed.tolist() == [0, 2]
    rows = random_rows(costs, 300, np.random.default_rng(0))
    assert set(rows[:, costs.res_col].tolist()) == {0, 2}
    high, _ = costs.extreme("macs_M", lowest=False)
    # the predicted accuracy grows with the MACs, so 32 px wins; 24 px is never proposed
    found = evolve(_macs_scorer(costs, high), np.random.default_rng(0), population=20,
                   generations=20, resolution_mutate_prob=1.0)  # fmt: skip
    assert set(found.candidates[:, costs.res_col].tolist()) <= {0, 2}
    assert found.candidates[0, costs.res_col] == 2
    with pytest.raises(InvalidArchitectureError, match="resolution 24"):
        costs.batch(np.ones((1, len(costs.decisions)), dtype=int))


def test_another_constraint_reuses_the_measured_accuracies(supernet_dir, tmp_path, monkeypatch):
    from nasforge.elastic import _accuracy
    from nasforge.evaluators.supernet import CACHED

    own = {**SMALL, "valid_images": 48}  # settings of their own: a cache of their own
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    first = search_subnets(
        SupernetEvaluator(supernet_dir, **own), constraints=["params_M<=1"], storage=url,
        study_name="first", **QUICK,
    )  # fmt: skip
    assert not any(CACHED in t.metrics for t in first.study.trials)
    measured = {t.arch.text: t.metrics["valid_acc"] for t in first.study.trials}
    calls = []
    real = _accuracy.subnet_accuracy

    def counted(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(_accuracy, "subnet_accuracy", counted)
    low, _ = SubnetCosts(spaces.create("ofa-cifar"), num_classes=4, width_mult=0.25).extreme(
        "macs_M"
    )
    second = search_subnets(
        SupernetEvaluator(supernet_dir, **own), constraints=[f"macs_M<={3 * low}"], storage=url,
        study_name="second", **QUICK,
    )  # fmt: skip
    trials = second.study.trials
    randoms = trials[: QUICK["measured"]]
    assert all(t.metrics[CACHED] == 1.0 for t in randoms)  # recorded, marked, not measured
    assert all(t.metrics["valid_acc"] == measured[t.arch.text] for t in randoms)
    fresh = [t for t in trials if "valid_acc" in t.metrics and CACHED not in t.metrics]
    assert len(calls) == len(fresh)
