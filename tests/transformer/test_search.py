"""Sub-network search on a super-transformer as a study: AutoFormer's evolution under a
parameter bound, another registered strategy, resuming a study, impossible and unknown
constraints."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasforge import spaces
from nasforge.errors import InfeasibleConstraintError, UnknownNameError
from nasforge.evaluators.super_transformer import SuperTransformerEvaluator
from nasforge.storage import InMemoryStorage
from nasforge.train import SyntheticImages
from nasforge.transformer import ViTTrainSettings, search_subvits, train_super_vit
from nasforge.transformer.search import extremes

SYNTHETIC = {"num_classes": 3, "n_train": 48, "n_test": 3, "size": 32, "seed": 1}
SPACE = spaces.create("vit-cifar")
SMALL = {"population": 4, "generations": 2, "parents": 2, "mutations": 1, "crossovers": 1}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("super-vit-search")
    settings = ViTTrainSettings(batch_size=8, epochs=1, steps_per_epoch=1, lr=1e-3, seed=2)
    train_super_vit(SPACE, out, settings, data=SyntheticImages(**SYNTHETIC).load(), device="cpu")
    return out


def params(folder: Path) -> dict[str, object]:
    return {"dataset": "synthetic", "synthetic": SYNTHETIC, "valid_images": 16}


def test_evolution_under_a_parameter_bound_is_a_study(folder: Path) -> None:
    storage = InMemoryStorage()
    found = search_subvits(
        folder, constraints=["params_M<=0.5"], storage=storage, study_name="evo", seed=1,
        evaluator_params=params(folder), **SMALL,
    )  # fmt: skip
    trials = found.study.trials
    assert len(trials) == 4 * 3  # a population per generation, every member measured
    assert all(t.metrics["params_M"] <= 0.5 for t in trials)
    best = max(trials, key=lambda t: t.metrics["valid_acc"])
    assert found.metrics["valid_acc"] == best.metrics["valid_acc"]
    assert found.constraints["params_M"] <= 0.5 and len(found.history) == 3
    # the same study again measures nothing new
    again = search_subvits(
        folder, constraints=["params_M<=0.5"], storage=storage, study_name="evo", seed=1,
        evaluator_params=params(folder), **SMALL,
    )  # fmt: skip
    assert len(again.study.trials) == len(trials)
    assert again.arch == found.arch


def test_budget_and_another_strategy(folder: Path) -> None:
    found = search_subvits(folder, n_trials=5, seed=0, evaluator_params=params(folder), **SMALL)
    assert len(found.study.trials) == 5
    other = search_subvits(
        folder, strategy="random", n_trials=3, constraints=["macs_M<=15"],
        evaluator_params=params(folder),
    )  # fmt: skip
    assert len(other.study.trials) == 3
    assert other.metrics["macs_M"] <= 15


def test_impossible_bound_reports_the_lowest_reachable_value(folder: Path) -> None:
    ev = SuperTransformerEvaluator(folder, **params(folder))  # type: ignore[arg-type]
    lowest_macs = min(ev.free_metrics(a)["macs_M"] for a in extremes(SPACE, True))
    assert lowest_macs < ev.free_metrics(SPACE.smallest())["macs_M"]  # a larger patch
    with pytest.raises(
        InfeasibleConstraintError, match=f"lowest reachable macs_M is {lowest_macs:g}"
    ):
        search_subvits(ev, constraints=["macs_M<=1"])
    highest = max(ev.free_metrics(a)["params_M"] for a in extremes(SPACE, False))
    with pytest.raises(
        InfeasibleConstraintError, match=f"highest reachable params_M is {highest:g}"
    ):
        search_subvits(ev, constraints=["params_M>=50"])
    with pytest.raises(UnknownNameError):
        search_subvits(ev, constraints=["flops_G<=1"])


def test_measured_latency_bound_is_checked_on_the_measured_trials(folder: Path) -> None:
    found = search_subvits(
        folder, constraints=["latency_ms[cpu-torch]<=10000"], measure=True, n_trials=2,
        evaluator_params={**params(folder), "runs": 2}, **SMALL,
    )  # fmt: skip
    assert all(t.metrics["latency_ms[cpu-torch]"] > 0 for t in found.study.trials)
    assert found.constraints["latency_ms[cpu-torch]"] <= 10000
    with pytest.raises(InfeasibleConstraintError, match="lowest latency_ms"):
        search_subvits(
            folder, constraints=["latency_ms[cpu-torch]<=0.0001"], measure=True, n_trials=2,
            evaluator_params={**params(folder), "runs": 2}, **SMALL,
        )  # fmt: skip


def test_bad_evolution_settings_are_refused_before_the_study(folder: Path) -> None:
    from nasforge.errors import InvalidConfigError

    storage = InMemoryStorage()
    with pytest.raises(InvalidConfigError, match="exceed the population"):
        search_subvits(
            folder, storage=storage, study_name="bad", evaluator_params=params(folder),
            population=4, mutations=3, crossovers=3,
        )  # fmt: skip
    assert storage.get_study("bad") is None
    with pytest.raises(InvalidConfigError, match="strategy_params"):
        search_subvits(folder, strategy_params={"x": 1}, evaluator_params=params(folder))
