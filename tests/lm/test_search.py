"""The fine-tuned super-network's folder, the super-lm evaluator and the sub-network search."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasforge import evaluators
from nasforge.errors import InfeasibleConstraintError, InvalidConfigError, UnknownNameError
from nasforge.lm import TrainSettings, load_corpus, load_super_lm, prepare_super_lm, search_sublms
from nasforge.lm.train import perplexity
from nasforge.pareto import dominates
from nasforge.spaces.llm import LLMSpace
from nasforge.testing.models import TINY_LLM


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("superlm")
    (root / "text.txt").write_text("pack my box with five dozen liquor jugs. " * 50)
    prepare_super_lm(
        root / "run", space=LLMSpace(**TINY_LLM), corpus=load_corpus(root / "text.txt"),
        pretrain=TrainSettings(steps=20, batch_size=8, warmup=2),
        finetune=TrainSettings(steps=10, batch_size=8, warmup=2), checkpoint_every=5,
    )  # fmt: skip
    return root / "run"


def test_folder_reloads_and_resumes(trained: Path) -> None:
    net, corpus, manifest = load_super_lm(trained)
    assert manifest["space"] == LLMSpace(**TINY_LLM).settings
    again = prepare_super_lm(
        trained, space=LLMSpace(**TINY_LLM), corpus=corpus,
        pretrain=TrainSettings(steps=20, batch_size=8, warmup=2),
        finetune=TrainSettings(steps=10, batch_size=8, warmup=2), checkpoint_every=5,
    )  # fmt: skip
    assert perplexity(again, corpus, max_windows=4) == perplexity(net, corpus, max_windows=4)
    with pytest.raises(InvalidConfigError, match="other settings"):
        prepare_super_lm(trained, space=LLMSpace(**TINY_LLM), corpus=corpus)
    with pytest.raises(InvalidConfigError, match="no fine-tuned llm"):
        load_super_lm(trained.parent / "nothing")


def test_evaluator_measures_inherited_perplexity(trained: Path) -> None:
    ev = evaluators.create("super-lm", dir=str(trained), max_windows=4)
    space = LLMSpace(**TINY_LLM)
    small, large = ev.evaluate(space.smallest()), ev.evaluate(space.largest())
    assert small.metrics["params_M"] < large.metrics["params_M"]
    assert small.metrics["params_M"] == pytest.approx(space.costs(space.smallest())["params_M"])
    assert 1.0 < large.metrics["perplexity"] < 256.0
    spec = ev.spec()
    assert spec is not None
    rebuilt = evaluators.create(spec.pop("name"), **spec)
    assert rebuilt.evaluate(space.largest()).metrics == large.metrics
    with pytest.raises(InvalidConfigError, match="position embedding"):
        evaluators.create("super-lm", dir=str(trained), seq_len=17)


def test_search_finds_a_front_and_resumes(trained: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'search.db'}"
    params = {"evaluator_params": {"max_windows": 4}, "storage": storage, "study_name": "lm"}
    first = search_sublms(trained, n_trials=8, **params)
    assert first.study.strategy_name == "nsga2" and len(first.study.trials) == 8
    archs = [t.arch for t in first.study.trials]
    points = [(t.metrics["perplexity"], t.metrics["params_M"]) for t in first.front]
    assert points
    for t in first.study.trials:
        p = (t.metrics["perplexity"], t.metrics["params_M"])
        assert not any(dominates([-p[0], -p[1]], [-q[0], -q[1]]) for q in points)
    assert [p[0] for p in points] == sorted(p[0] for p in points)
    resumed = search_sublms(trained, n_trials=10, **params)
    assert len(resumed.study.trials) == 10
    assert [t.arch for t in resumed.study.trials[:8]] == archs


def test_search_bad_constraints(trained: Path) -> None:
    lowest = LLMSpace(**TINY_LLM).costs(LLMSpace(**TINY_LLM).smallest())["params_M"]
    with pytest.raises(InfeasibleConstraintError, match=f"lowest reachable params_M is {lowest:g}"):
        search_sublms(trained, n_trials=2, constraints=["params_M<=0.001"])
    with pytest.raises(UnknownNameError):
        search_sublms(trained, n_trials=2, constraints=["latency_ms<=1"])
    with pytest.raises(InfeasibleConstraintError, match="lowest measured"):
        search_sublms(
            trained, n_trials=3, constraints=["perplexity<=1.0"],
            evaluator_params={"max_windows": 2},
        )  # fmt: skip


def test_text_changed_since_training_is_noticed(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("sphinx of black quartz, judge my vow. " * 40)
    settings = {
        "space": LLMSpace(**TINY_LLM),
        "pretrain": TrainSettings(steps=2, batch_size=4, warmup=1),
        "finetune": TrainSettings(steps=2, batch_size=4, warmup=1),
    }
    prepare_super_lm(tmp_path / "run", corpus=load_corpus(text), **settings)
    load_super_lm(tmp_path / "run")  # the same text: fine
    text.write_text("the five boxing wizards jump quickly. " * 40)
    with pytest.raises(InvalidConfigError, match="changed since"):
        load_super_lm(tmp_path / "run")
    with pytest.raises(InvalidConfigError, match="other settings"):
        prepare_super_lm(tmp_path / "run", corpus=load_corpus(text), **settings)
