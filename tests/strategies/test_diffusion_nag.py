"""DiffusionNAG: a graph diffusion model over the space's architectures, guided by a predictor."""

from __future__ import annotations

import numpy as np
import pytest

import nasforge
from nasforge import spaces, strategies
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.strategies import _graph_diffusion as gd
from nasforge.strategies.diffusion_nag import DiffusionNAG
from nasforge.testing import HashEvaluator, check_strategy
from nasforge.trial import Trial, TrialState

#: A model small enough to pre-train in a second or two.
TINY = {"hidden": 128, "pretrain_steps": 400, "n_samples": 30, "sampling_steps": 20}


@pytest.fixture(scope="module")
def tiny() -> DiffusionNAG:
    strategy = DiffusionNAG(spaces.create("nb201"), seed=0, **TINY)
    strategy.pretrained()
    return strategy


def _ops(archs: list) -> np.ndarray:
    return np.concatenate([np.asarray(arch.choices) for arch in archs])


def test_samples_of_the_pretrained_model_are_architectures_of_the_space(tiny):
    codec, model = tiny.pretrained()
    assert codec.n_nodes == 8 and len(codec.free) == 0  # NB201's wiring is fixed
    vectors = gd.sample(model, 200, seed=1, steps=20)
    archs, projected, invalid = gd.decode_all(codec, vectors, tiny.space.from_graph)
    rate = (len(vectors) - projected - invalid) / len(vectors)
    print(f"valid as decoded: {rate:.1%}, projected {projected}, invalid {invalid}")
    assert rate >= 0.9, f"only {rate:.0%} of the samples decode to NB201 cells"
    assert invalid == 0 and len(archs) == 200
    assert all(a.space == "nb201" and tiny.space.parse(str(a)) == a for a in archs)
    assert len(set(archs)) > 150  # samples, not one memorised cell
    counts = np.bincount(_ops(archs), minlength=5)
    assert counts.min() > 0.4 * counts.mean()  # every operation is generated


def test_guidance_moves_samples_towards_what_the_predictor_favours(tiny):
    codec, model = tiny.pretrained()
    width = len(codec.vocabulary)
    conv = codec.vocabulary.index("nor_conv_3x3")

    def favours_conv(x, t):  # a stub predictor: the share of 3x3 convolutions
        return x.view(len(x), codec.n_nodes, width)[:, 1:-1, conv].mean(dim=1)

    def share(scale: float) -> float:
        vectors = gd.sample(model, 200, 3, steps=20, guide=favours_conv, target=1.0, scale=scale)
        archs, _, invalid = gd.decode_all(codec, vectors, tiny.space.from_graph)
        assert invalid == 0
        return float(np.mean(_ops(archs) == 3))

    plain, guided = share(0.0), share(30.0)
    assert guided > plain + 0.15, (plain, guided)


def test_a_study_gets_new_valid_architectures_and_the_sampling_counts():
    study = nasforge.create_study(strategy="diffusion-nag", seed=0, strategy_params=TINY)
    ev = nasforge.evaluators.create("tabular", dataset="cifar10", metrics=["valid_acc"])
    study.optimize(ev, n_trials=40)
    archs = [t.arch for t in study.trials]
    assert len(set(archs)) == 40  # never proposed twice
    strategy = DiffusionNAG(spaces.create("nb201"), seed=0, **TINY)
    for trial in study.trials:
        strategy.tell(trial)
    stats = strategy.sample_stats
    assert stats == dict.fromkeys(stats, 0)  # tells alone sample nothing
    for _ in range(12):
        strategy.ask()
    assert strategy.sample_stats["generated"] == 2 * TINY["n_samples"]
    assert strategy.validity is not None and strategy.validity >= 0.9


def test_replay_gives_the_same_trials():
    check_strategy("diffusion-nag", n_trials=25, params=TINY)


def test_pretraining_is_shared_by_seeds_and_keyed_by_its_settings(tiny):
    space = spaces.create("nb201")
    other_seed = DiffusionNAG(space, seed=7, **TINY)
    assert other_seed.pretrained()[1] is tiny.pretrained()[1]
    other_model = DiffusionNAG(space, seed=0, **{**TINY, "pretrain_steps": 5})
    assert other_model.pretrained()[1] is not tiny.pretrained()[1]


def test_a_space_without_graphs_is_refused_naming_the_capability():
    with pytest.raises(UnsupportedOperationError, match=r"graph\(\).*Spaces with graphs: .*nb201"):
        strategies.create("diffusion-nag", spaces.create("mobilenet"), seed=0)


@pytest.mark.parametrize(
    ("name", "value"), [("k", 0), ("n_initial", 1), ("guidance_scale", -1.0), ("hidden", 0)]
)
def test_bad_parameters_are_refused(name, value):
    with pytest.raises(InvalidConfigError, match=name):
        strategies.create("diffusion-nag", spaces.create("nb201"), seed=0, **{name: value})


def test_darts_cells_are_generated_with_their_wiring():
    """On DARTS the wiring varies (which input each operation reads): the model diffuses
    it with the operations, and the proposals are valid, distinct DARTS architectures."""
    space = spaces.create("darts")
    params = {"hidden": 128, "pretrain_steps": 300, "pretrain_pool": 1000, "n_samples": 30}
    strategy = DiffusionNAG(space, seed=0, n_initial=5, k=5, **params)
    codec, _ = strategy.pretrained()
    assert len(codec.free) == 56 and all(one_of for *_, one_of in codec.segments)
    evaluator = HashEvaluator()
    archs = []
    for number in range(15):
        arch = strategy.ask().arch
        score = evaluator.evaluate(arch).metrics["valid_acc"]
        strategy.tell(Trial(number=number, arch=arch, state=TrialState.COMPLETE, scores=(score,)))
        archs.append(arch)
    assert len(set(archs)) == 15 and all(space.parse(str(a)) == a for a in archs)
    stats = strategy.sample_stats
    decoded = (stats["valid"] + stats["projected"]) / stats["generated"]
    print(f"DARTS samples decoded to architectures: {decoded:.0%} ({stats})")
    assert stats["generated"] == 2 * 30 and decoded >= 0.3
