"""SimQ-NAS: the joint (sub-network, quantization policy) search on a tiny elastic supernet,
as a multi-objective study (both objectives recorded, a non-dominated front), its resume,
its predictor-guided proposals and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.errors import InvalidConfigError, StudyConflictError, UnknownNameError
from nasforge.pareto import dominates
from nasforge.predictors import MLPEnsemble
from nasforge.quant.simq import (
    QuantizedSubnetEvaluator,
    _fit,
    _Loop,
    _onehot,
    search_quantized_subnets,
)

SYNTHETIC = {"n_train": 256, "n_test": 16, "size": 16, "num_classes": 4}
QUICK = {
    "population": 4,
    "inner_evaluations": 40,
    "recalibration_batches": 1,
    "calibration_batches": 1,
    "valid_images": 32,
}


@pytest.fixture(scope="module")
def data():
    from nasforge.train.data import SyntheticImages

    return SyntheticImages(**SYNTHETIC).load()


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory, data):
    """An ofa-cifar supernet at width 0.25, trained for two steps at 16 px."""
    from nasforge.elastic import TrainSettings, train_supernet

    out = tmp_path_factory.mktemp("simq-supernet")
    settings = TrainSettings(
        width_mult=0.25, epochs=1, batch_size=32, steps_per_epoch=2, resolutions=(16,)
    )
    torch.set_num_threads(1)
    train_supernet("ofa-cifar", "uniform", data, out, settings, device="cpu", threads=1)
    return out


@pytest.fixture(scope="module")
def searched(supernet_dir, data, tmp_path_factory):
    """A search of 8 pairs in a SQLite study (two LINAS iterations of 4)."""
    db = tmp_path_factory.mktemp("simq-db") / "simq.db"
    storage = f"sqlite:///{db}"
    result = search_quantized_subnets(
        supernet_dir, data, evaluations=8, seed=0, storage=storage, study_name="simq", **QUICK
    )
    return result, storage


def test_every_measured_pair_is_a_trial_with_both_objectives(searched):
    result, _ = searched
    trials = result.study.trials
    assert len(trials) == 8
    assert all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:
        assert 0.0 <= t.metrics["accuracy"] <= 100.0
        assert t.metrics["model_bits"] > 0
        assert t.scores == (t.metrics["accuracy"], -t.metrics["model_bits"])
    # the pairs are of the trained resolution, in canonical form, and all distinct
    space = result.space
    assert all(space.split(t.arch)[0].text.startswith("res=16") for t in trials)
    assert all(space.canonical(t.arch) == t.arch for t in trials)
    assert len({t.arch for t in trials}) == 8
    # the policies choose among int8 and fp32, and both occur
    used = {p for t in trials for p in space.split(t.arch)[1]}
    assert used == {"int8", "fp32"}


def test_the_recorded_size_is_that_of_the_quantized_network(searched):
    from nasforge.ops.quant import model_bits, policy_of

    result, _ = searched
    trial = result.study.trials[5]
    qmodel, side = result.evaluator.quantized(trial.arch)
    assert side == 16
    assert model_bits(qmodel) == trial.metrics["model_bits"]
    space = result.space
    assert set(policy_of(qmodel)) <= set(space.split(trial.arch)[1])
    # the same sub-network all in fp32 is 32 bits a parameter, all in int8 about a quarter
    base = space.split(trial.arch)[0]
    fp32, int8 = (
        result.evaluator.evaluate(space.join(base, [p] * len(space.slots))).metrics
        for p in ("fp32", "int8")
    )
    assert fp32["model_bits"] == round(32 * fp32["params_M"] * 1e6)
    assert 0.2 < int8["model_bits"] / fp32["model_bits"] < 0.3
    assert int8["model_bits"] <= trial.metrics["model_bits"] <= fp32["model_bits"]


def test_the_front_is_the_non_dominated_trials(searched):
    result, _ = searched
    front = result.front
    assert front
    for a in front:
        assert not any(dominates(b.scores, a.scores) for b in result.study.trials)
    for t in result.study.trials:
        if t not in front:
            assert any(dominates(a.scores, t.scores) for a in front)


def test_the_second_iteration_is_proposed_by_the_predictors(searched):
    result, _ = searched
    first, second = result.study.trials[:4], result.study.trials[4:]
    assert all(t.metrics["simq_iteration"] == 0 for t in first)
    assert all(t.metrics["simq_iteration"] == 1 for t in second)
    assert all("predicted_accuracy" not in t.metrics for t in first)
    assert all(
        "predicted_accuracy" in t.metrics and "predicted_model_bits" in t.metrics for t in second
    )
    assert [i["measured"] for i in result.iterations] == [4, 8]


def test_resume_measures_only_the_missing_pairs(searched, supernet_dir, data, monkeypatch):
    result, storage = searched
    before = [(t.arch, dict(t.metrics)) for t in result.study.trials]
    calls = []
    original = QuantizedSubnetEvaluator.evaluate

    def counted(self, arch, fidelity=None):
        calls.append(arch)
        return original(self, arch, fidelity)

    monkeypatch.setattr(QuantizedSubnetEvaluator, "evaluate", counted)
    again = search_quantized_subnets(
        supernet_dir, data, evaluations=8, seed=0, storage=storage, study_name="simq", **QUICK
    )
    assert calls == [] and [(t.arch, t.metrics) for t in again.study.trials] == before
    more = search_quantized_subnets(
        supernet_dir, data, evaluations=12, seed=0, storage=storage, study_name="simq", **QUICK
    )
    assert len(calls) == 4
    assert [(t.arch, t.metrics) for t in more.study.trials[:8]] == before
    assert more.iterations[-1] == {"iteration": 2, "proposed": 4, "measured": 12, "fresh": 4}
    # the same settings in a fresh study: the same pairs in the same order
    fresh = search_quantized_subnets(supernet_dir, data, evaluations=12, seed=0, **QUICK)
    assert [t.arch for t in fresh.study.trials] == [t.arch for t in more.study.trials]


def test_the_inner_search_follows_the_predictors(searched):
    """With predictors that reward small kernels (accuracy) and fp32 layers (at a size
    cost), the proposals have far smaller kernels than random pairs of the same seed."""
    result, _ = searched
    space = result.space
    names = [d.name for d in space.decisions()]
    kernel_cols = [i for i, n in enumerate(names) if n.endswith("_kernel")]
    counts = np.array([len(d.options) for d in space.decisions()])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    small = np.zeros(int(counts.sum()))
    small[offsets[kernel_cols]] = 1.0  # the first kernel option of each block
    fp32 = np.zeros(int(counts.sum()))
    for i, d in enumerate(space.decisions()):
        if "fp32" in d.options and d.name not in (names[c] for c in kernel_cols):
            fp32[offsets[i] + d.options.index("fp32")] = 1.0
    models = [lambda X: X @ small + 0.1 * (X @ fp32), lambda X: X @ fp32]
    loop = _Loop(space, result.evaluator, result.study, ("accuracy", "model_bits"), (16,),
                 "ridge", 0, 8)  # fmt: skip
    batch, guesses = loop._propose(models, 1, 400)
    rng = np.random.default_rng(np.random.SeedSequence([0, 0]))
    random = loop._random(rng, 8)
    assert len(batch) == 8 and len(set(batch)) == 8 and batch != random
    kernels = lambda archs: _onehot(space, archs) @ small  # noqa: E731
    assert kernels(batch).mean() > kernels(random).mean() + 5
    assert all(set(g) == {"predicted_accuracy", "predicted_model_bits"} for g in guesses)


@pytest.mark.parametrize(
    ("predictor", "least"),
    [("ridge", 0.9), ("mlp", 0.25), (MLPEnsemble(n_members=2, seed=1), 0.25)],
)
def test_each_predictor_learns_a_per_layer_additive_metric(predictor, least):
    """Model size is a sum of per-layer terms: every predictor ranks unseen pairs by it
    (ridge, the default, almost exactly; the MLP ensemble, heavier, overfits 60 pairs)."""
    from nasforge.ranks import kendall

    rng = np.random.default_rng(0)
    X = (rng.random((160, 30)) < 0.5).astype(float)
    y = X @ rng.random(30) * 1e6
    predict = _fit(predictor, X[:60], y[:60], seed=0)
    assert kendall(predict(X[60:]), y[60:]) > least


def test_a_supernet_module_and_search_data_are_accepted(supernet_dir, data):
    from nasforge.elastic import load_supernet, training_data

    trained = load_supernet(supernet_dir)
    split = training_data("ofa-cifar", data, trained.settings)
    quick = {**QUICK, "evaluations": 4, "resolutions": (16,), "objectives": ("accuracy", "bops")}
    result = search_quantized_subnets(trained.supernet, split, **quick)
    assert len(result.study.trials) == 4
    assert result.study.objectives[1].metric == "bops"
    assert all(t.metrics["bops"] > 0 for t in result.study.trials)
    assert result.study.record.strategy_params["supernet"] == "in-memory supernet"


def test_bad_input(supernet_dir, data):
    quick = {**QUICK, "evaluations": 4}
    with pytest.raises(InvalidConfigError, match="int4"):
        search_quantized_subnets(supernet_dir, data, precisions=("int5", "fp32"), **quick)
    with pytest.raises(InvalidConfigError, match="at least two precisions"):
        search_quantized_subnets(supernet_dir, data, precisions=("int8", 8), **quick)
    with pytest.raises(UnknownNameError, match="model_bits"):
        search_quantized_subnets(supernet_dir, data, objectives=("accuracy", "latency"), **quick)
    with pytest.raises(InvalidConfigError, match="accuracy"):
        search_quantized_subnets(supernet_dir, data, objectives=("model_bits", "bops"), **quick)
    with pytest.raises(InvalidConfigError, match="evaluations"):
        search_quantized_subnets(supernet_dir, data, **{**quick, "evaluations": 1})
    with pytest.raises(InvalidConfigError, match="inner_evaluations"):
        search_quantized_subnets(supernet_dir, data, **{**quick, "inner_evaluations": 2})
    with pytest.raises(InvalidConfigError, match="ridge"):
        search_quantized_subnets(supernet_dir, data, predictor="svr", **quick)
    with pytest.raises(InvalidConfigError, match="trained elastic supernet"):
        search_quantized_subnets(42, data, **quick)
    with pytest.raises(InvalidConfigError, match="DataSplits"):
        search_quantized_subnets(supernet_dir, [1, 2], **quick)
    with pytest.raises(InvalidConfigError, match="16"):
        search_quantized_subnets(supernet_dir, data, resolutions=(20,), **quick)
    with pytest.raises(InvalidConfigError, match="valid_images"):
        search_quantized_subnets(supernet_dir, data, **{**quick, "valid_images": 0})


def test_a_study_of_other_settings_is_refused(searched, supernet_dir, data):
    _, storage = searched
    quick = {**QUICK, "evaluations": 8, "storage": storage, "study_name": "simq"}
    with pytest.raises(StudyConflictError, match="precisions"):
        search_quantized_subnets(supernet_dir, data, precisions=("int4", "int8"), **quick)
    with pytest.raises(StudyConflictError, match="population"):
        search_quantized_subnets(supernet_dir, data, **{**quick, "population": 3})
