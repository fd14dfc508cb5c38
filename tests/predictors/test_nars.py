"""NARS pretraining: free statistics make a target, the pretrained predictor ranks by them."""

from __future__ import annotations

import numpy as np
import pytest

import nasforge
from nasforge.errors import InvalidConfigError
from nasforge.predictors import MLPEnsemble
from nasforge.predictors.nars import free_target, pretrain, random_pool


@pytest.fixture(scope="module")
def tabular():
    return nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])


def test_target_is_the_mean_standardised_log_of_the_statistics():
    stats = [{"params_M": p, "flops_M": 10 * p, "other": 1.0} for p in (1.0, 2.0, 4.0)]
    target = free_target(stats)
    logs = np.log([1.0, 2.0, 4.0])
    assert np.allclose(target, (logs - logs.mean()) / logs.std())
    # a constant metric adds nothing; a metric with a non-positive value is not logged
    assert np.allclose(free_target(stats, ["params_M", "other"]), target / 2)
    assert np.allclose(
        free_target([{"x": -1.0}, {"x": 0.0}, {"x": 1.0}], ["x"]), [-1.2247, 0, 1.2247], atol=1e-4
    )


def test_target_errors_name_the_available_metrics():
    with pytest.raises(InvalidConfigError, match=r"'params_M'.*available free metrics: flops_M"):
        free_target([{"flops_M": 1.0}])
    with pytest.raises(InvalidConfigError, match="nan"):
        free_target([{"params_M": float("nan"), "flops_M": 1.0}])
    with pytest.raises(InvalidConfigError, match="at least one"):
        free_target([{"params_M": 1.0}], [])


def test_pool_is_distinct_seeded_and_avoids_exclusions(nb201):
    first = random_pool(nb201, np.random.default_rng(0), 50)
    assert len(set(first)) == 50
    assert first == random_pool(nb201, np.random.default_rng(0), 50)
    second = random_pool(nb201, np.random.default_rng(0), 50, exclude=first[:25])
    assert not set(second) & set(first[:25])
    with pytest.raises(InvalidConfigError, match="at least 1"):
        random_pool(nb201, np.random.default_rng(0), 0)


def test_pool_stops_when_the_space_runs_out():
    from nasforge.spaces.base import SearchSpace

    class Three(SearchSpace):
        name = "three"

        def sample(self, rng):
            return self.from_choices([int(rng.integers(3))])

        def parse(self, text):
            return self.from_choices([int(text)])

        def from_choices(self, choices):
            return nasforge.Architecture("three", tuple(choices), str(choices[0]))

    assert len(random_pool(Three(), np.random.default_rng(0), 10)) == 3


@pytest.mark.parametrize(("encoding", "least"), [("onehot", 0.95), ("path", 0.6)])
def test_pretrained_predictor_ranks_by_parameters_before_fine_tuning(
    nb201, tabular, encoding, least
):
    rng = np.random.default_rng(0)
    pool = random_pool(nb201, rng, 200)
    held_out = random_pool(nb201, rng, 200, exclude=pool)

    def encode(arch):
        return nb201.encode(arch, encoding)

    model = pretrain(MLPEnsemble(seed=0), pool, encode, tabular.free_metrics)
    predicted = model.predict(np.stack([encode(a) for a in held_out]))[0]
    params = np.log([tabular.free_metrics(a)["params_M"] for a in held_out])
    # the path encoding drops edges on no path, whose convolutions still count as parameters
    assert np.corrcoef(predicted, params)[0, 1] > least


def test_fine_tuning_starts_from_the_pretrained_weights(nb201, tabular):
    rng = np.random.default_rng(1)
    pool = random_pool(nb201, rng, 200)

    def encode(arch):
        return nb201.encode(arch, "onehot")

    model = pretrain(MLPEnsemble(seed=0, finetune_epochs=5), pool, encode, tabular.free_metrics)
    measured = random_pool(nb201, rng, 10, exclude=pool)
    X = np.stack([encode(a) for a in measured])
    accuracy = np.array([tabular.evaluate(a).metrics["valid_acc"] for a in measured])
    tuned = model.fit(X, accuracy, warm_start=True)  # 5 epochs: still ranks by size
    params = np.log([tabular.free_metrics(a)["params_M"] for a in pool])
    ranked = tuned.predict(np.stack([encode(a) for a in pool]))[0]
    assert np.corrcoef(ranked, params)[0, 1] > 0.8
    # ... and predicts on the accuracy scale
    assert abs(float(np.mean(tuned.predict(X)[0])) - accuracy.mean()) < 5 * accuracy.std()


def test_transform_orients_the_target(nb201, tabular):
    pool = random_pool(nb201, np.random.default_rng(2), 100)

    def encode(arch):
        return nb201.encode(arch, "onehot")

    model = pretrain(
        MLPEnsemble(seed=0), pool, encode, tabular.free_metrics, transform=lambda z: -z
    )
    predicted = model.predict(np.stack([encode(a) for a in pool]))[0]
    params = [tabular.free_metrics(a)["params_M"] for a in pool]
    assert np.corrcoef(predicted, np.log(params))[0, 1] < -0.95


def test_empty_pool(nb201, tabular):
    with pytest.raises(InvalidConfigError, match="non-empty pool"):
        pretrain(MLPEnsemble(), [], lambda a: nb201.encode(a), tabular.free_metrics)
