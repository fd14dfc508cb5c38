"""The sparse baselines: random per-layer allocations and widths that meet the target,
random search at its stated cost, magnitude pruning with fine-tuning, and refused input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.errors import InvalidConfigError
from nasforge.ops.cifar_resnet import CifarResNet, ResNetLayout, full_widths
from nasforge.ops.sparse import masked_layers, sparsity_of
from nasforge.sparse.baselines import (
    magnitude_pruning,
    random_allocation,
    random_sparse_search,
    random_widths,
    train_dense,
    weight_sparsity,
)
from nasforge.train import Recipe, SyntheticImages

LAYOUT = ResNetLayout(blocks=1, base=4, num_classes=3, resolution=8)
RECIPE = Recipe(lr=0.05, epochs=1, batch_size=32)


@pytest.fixture(scope="module")
def data():
    return SyntheticImages(num_classes=3, n_train=80, n_test=12, size=8, seed=2).load()


@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_random_allocation_keeps_exactly_the_target_number_of_weights(sparsity):
    sizes = [216, 144, 576, 1152, 64, 2304]
    for seed in range(5):
        shares = random_allocation(sizes, sparsity, np.random.default_rng(seed))
        kept = sum(round((1 - s) * n) for s, n in zip(shares, sizes, strict=True))
        assert kept == round((1 - sparsity) * sum(sizes))
        assert all(0 <= s < 1 for s in shares)
    a = random_allocation(sizes, sparsity, np.random.default_rng(1))
    b = random_allocation(sizes, sparsity, np.random.default_rng(2))
    assert a != b and a == random_allocation(sizes, sparsity, np.random.default_rng(1))


@pytest.mark.parametrize("ratio", [0.5, 0.25, 0.1])
def test_random_widths_meet_the_parameter_target(ratio):
    layout = ResNetLayout(blocks=1, base=16)
    total = layout.params(full_widths(layout))
    draws = {random_widths(layout, ratio, np.random.default_rng(s)) for s in range(4)}
    assert len(draws) == 4
    for widths in draws:
        assert abs(layout.params(widths) / total - ratio) <= 0.05 * ratio


@pytest.mark.parametrize("kind", ["allocation", "width"])
def test_random_search_meets_the_sparsity_target_at_its_stated_cost(data, kind):
    model, result = random_sparse_search(
        LAYOUT,
        data.train,
        sparsity=0.75,
        kind=kind,
        mean=data.mean,
        std=data.std,
        n_candidates=2,
        candidate_recipe=RECIPE,
        final_recipe=Recipe(lr=0.05, epochs=2, batch_size=32),
        valid_size=20,
        seed=0,
    )
    dense = LAYOUT.params(full_widths(LAYOUT))
    assert result.kind == kind and len(result.candidates) == len(result.valid_acc) == 2
    assert result.images_seen == 2 * 60 + 2 * 80
    assert result.best == int(np.argmax(result.valid_acc))
    if kind == "allocation":
        assert sparsity_of(model) == pytest.approx(0.75, abs=1e-3)
        assert [m.sparsity for _, m in masked_layers(model)] == pytest.approx(
            result.candidates[result.best]
        )
    else:
        assert not masked_layers(model)
        assert model.widths == tuple(int(w) for w in result.candidates[result.best])
        assert weight_sparsity(model, dense) == pytest.approx(0.75, abs=0.75 * 0.05 + 1e-9)


def test_magnitude_pruning_prunes_to_the_target_and_keeps_zeros_through_fine_tuning(data):
    dense, run = train_dense(LAYOUT, data.train, recipe=RECIPE, mean=data.mean, std=data.std)
    assert run.images_seen == 80
    before = [p.detach().clone() for p in dense.parameters()]
    pruned, run = magnitude_pruning(
        dense, data.train, sparsity=0.9, recipe=RECIPE, mean=data.mean, std=data.std
    )
    assert run.method == "magnitude" and run.sparsity == pytest.approx(0.9, abs=2e-3)
    assert all(torch.equal(a, b) for a, b in zip(before, dense.parameters(), strict=True))
    layers = masked_layers(pruned)
    assert len(layers) == 8  # all but the stem convolution and the classifier
    for _, layer in layers:
        assert torch.count_nonzero(layer.weight[~layer.mask]) == 0
    assert 0.8 < weight_sparsity(pruned, LAYOUT.params(full_widths(LAYOUT))) < 0.9


def test_weight_sparsity_of_a_narrower_network():
    narrow = CifarResNet(LAYOUT, (2, 2, 2, 4, 4, 8, 8))
    full = LAYOUT.params(full_widths(LAYOUT))
    assert weight_sparsity(narrow, full) == pytest.approx(1 - LAYOUT.params(narrow.widths) / full)


@pytest.mark.parametrize("sparsity", [0.6, 0.95, 1.0, -0.5])
def test_sparsity_outside_the_supported_levels_is_refused(data, sparsity):
    with pytest.raises(InvalidConfigError, match=r"0\.5, 0\.75, 0\.9"):
        random_allocation([10, 20], sparsity, np.random.default_rng(0))
    with pytest.raises(InvalidConfigError, match=r"0\.5, 0\.75, 0\.9"):
        random_sparse_search(
            LAYOUT,
            data.train,
            sparsity=sparsity,
            mean=data.mean,
            std=data.std,
            candidate_recipe=RECIPE,
            final_recipe=RECIPE,
        )
    with pytest.raises(InvalidConfigError, match=r"0\.5, 0\.75, 0\.9"):
        magnitude_pruning(
            CifarResNet(LAYOUT),
            data.train,
            sparsity=sparsity,
            recipe=RECIPE,
            mean=data.mean,
            std=data.std,
        )


def test_bad_search_settings_are_refused(data):
    kw = {"mean": data.mean, "std": data.std, "candidate_recipe": RECIPE, "final_recipe": RECIPE}
    with pytest.raises(InvalidConfigError, match="allocation"):
        random_sparse_search(LAYOUT, data.train, sparsity=0.5, kind="channels", **kw)
    with pytest.raises(InvalidConfigError, match="n_candidates"):
        random_sparse_search(LAYOUT, data.train, sparsity=0.5, n_candidates=0, **kw)
    with pytest.raises(InvalidConfigError, match=r"\(0, 1\]"):
        random_widths(LAYOUT, 1.5, np.random.default_rng(0))
