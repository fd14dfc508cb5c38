"""Magnitude masks, masked layers, uniform magnitude pruning and DASS's sparse layers with
learned scores (nasforge.ops.sparse)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.ops.sparse import (
    SPARSITY_LEVELS,
    MaskedConv2d,
    MaskedLinear,
    SparseConv2d,
    SparseLinear,
    apply_masks,
    check_sparsity,
    learn_scores,
    magnitude_mask,
    masked_layers,
    nonzero_params,
    project_sparse,
    prune_magnitude,
    set_sparsity,
    sparse_layers,
    sparsify,
    sparsity_of,
    to_sparse,
)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(8, 4, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 6),
        nn.ReLU(),
        nn.Linear(6, 3),
    )


def test_magnitude_mask_drops_exactly_the_smallest() -> None:
    weight = torch.tensor([[0.5, -0.1, 2.0], [-3.0, 0.05, 0.7], [0.2, -0.3, 1.1], [0.0, 4, -5]])
    mask = magnitude_mask(weight, 0.5)
    assert mask.dtype == torch.bool and mask.shape == weight.shape
    assert int((~mask).sum()) == 6
    dropped = weight[~mask].abs()
    kept = weight[mask].abs()
    assert float(dropped.max()) < float(kept.min())
    assert sorted(dropped.tolist()) == pytest.approx([0.0, 0.05, 0.1, 0.2, 0.3, 0.5])


def test_magnitude_mask_counts_round_and_ties() -> None:
    weight = torch.randn(7, 11, generator=torch.Generator().manual_seed(1))
    for share in (0.0, *SPARSITY_LEVELS):
        assert int((~magnitude_mask(weight, share)).sum()) == round(share * 77)
    ties = torch.ones(4)
    assert magnitude_mask(ties, 0.5).tolist() == [False, False, True, True]


def test_project_sparse_is_the_masked_tensor() -> None:
    x = torch.tensor([1.0, -4.0, 0.5, 2.0])
    assert project_sparse(x, 0.5).tolist() == [0.0, -4.0, 0.0, 2.0]


def test_unsupported_sparsity_lists_the_supported_set() -> None:
    assert check_sparsity(0.75) == 0.75 and check_sparsity(0) == 0.0
    for bad in (0.6, 1.0, -0.5, True, "0.5"):
        with pytest.raises(InvalidConfigError, match=r"0\.5, 0\.75, 0\.9"):
            check_sparsity(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match=r"0\.75, 0\.9"):
        prune_magnitude(_net(), 0.8)


def test_masked_conv_equals_dense_conv_with_masked_weights() -> None:
    torch.manual_seed(2)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2)
    masked = MaskedConv2d.from_dense(conv, 0.75)
    keep = magnitude_mask(conv.weight, 0.75)
    assert torch.equal(masked.mask, keep)
    x = torch.randn(2, 4, 9, 9)
    reference = nn.functional.conv2d(
        x, conv.weight * keep, conv.bias, stride=2, padding=1, groups=2
    )
    assert torch.allclose(masked(x), reference, atol=1e-6)
    linear = nn.Linear(5, 3)
    masked_linear = MaskedLinear.from_dense(linear, 0.5)
    z = torch.randn(4, 5)
    expected = z @ (linear.weight * magnitude_mask(linear.weight, 0.5)).T + linear.bias
    assert torch.allclose(masked_linear(z), expected, atol=1e-6)


def test_update_mask_follows_the_weights_and_prune_zeroes_them() -> None:
    layer = MaskedLinear(2, 2, bias=False, sparsity=0.5)
    assert bool(layer.mask.all())  # all ones until computed
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0], [0.1, 3.0]]))
    layer.update_mask()
    assert layer.mask.tolist() == [[False, True], [False, True]]
    assert float(layer.weight.detach()[1, 0]) == pytest.approx(0.1)  # kept, only masked
    layer.prune(0.75)
    assert layer.weight.detach().tolist() == [[0.0, 0.0], [0.0, 3.0]] and layer.sparsity == 0.75


def test_prune_magnitude_keeps_first_and_last_dense() -> None:
    net = _net()
    pruned = prune_magnitude(net, 0.5)
    assert type(pruned[0]) is nn.Conv2d and type(pruned[10]) is nn.Linear
    assert [name for name, _ in masked_layers(pruned)] == ["3", "5", "8"]
    for _, layer in masked_layers(pruned):
        assert int((layer.masked_weight() == 0).sum()) == round(0.5 * layer.weight.numel())
    assert sparsity_of(pruned) == pytest.approx(0.5, abs=1e-3)
    assert sparsity_of(net) == 0.0 and type(net[3]) is nn.Conv2d  # the input is untouched
    everything = prune_magnitude(net, 0.9, keep_first=False, keep_last=False)
    assert len(masked_layers(everything)) == 5
    with pytest.raises(InvalidConfigError, match="not in the network"):
        prune_magnitude(net, 0.5, keep=("nope",))
    with pytest.raises(InvalidConfigError, match="scope"):
        prune_magnitude(net, 0.5, scope="channel")


def test_global_scope_ranks_all_weights_together() -> None:
    net = _net()
    with torch.no_grad():
        net[5].weight.mul_(100.0)  # this layer's weights are the largest: none pruned
    pruned = prune_magnitude(net, 0.5, scope="global")
    layers = dict(masked_layers(pruned))
    assert bool(layers["5"].mask.all())
    assert sparsity_of(pruned) == pytest.approx(0.5, abs=1e-3)
    dropped = torch.cat([m.weight.detach()[~m.mask].abs() for m in layers.values()])
    kept = torch.cat([m.weight.detach()[m.mask].abs() for m in layers.values()])
    assert float(dropped.max()) <= float(kept.min())


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_pruned_weights_stay_zero_through_training(optimizer: str) -> None:
    pruned = prune_magnitude(_net(), 0.75)
    before = {name: (~layer.mask).clone() for name, layer in masked_layers(pruned)}
    params = pruned.parameters()
    opt: torch.optim.Optimizer
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    elif optimizer == "adam":
        opt = torch.optim.Adam(params, lr=0.01, weight_decay=1e-4)
    else:
        opt = torch.optim.AdamW(params, lr=0.01, weight_decay=0.1)
    generator = torch.Generator().manual_seed(3)
    for _ in range(5):
        x = torch.randn(8, 3, 8, 8, generator=generator)
        y = torch.randint(0, 3, (8,), generator=generator)
        opt.zero_grad()
        nn.functional.cross_entropy(pruned(x), y).backward()
        opt.step()
    for name, layer in masked_layers(pruned):
        assert torch.equal(layer.weight[before[name]], torch.zeros(int(before[name].sum())))
        assert torch.equal(~layer.mask, before[name])
    assert sparsity_of(pruned) == pytest.approx(0.75, abs=1e-3)


def test_apply_masks_rezeroes_moved_weights() -> None:
    pruned = prune_magnitude(_net(), 0.5)
    with torch.no_grad():
        for p in pruned.parameters():
            p.add_(1.0)
    apply_masks(pruned)
    for _, layer in masked_layers(pruned):
        assert bool((layer.weight[~layer.mask] == 0).all())


def test_nonzero_params_counts_the_masked_weights() -> None:
    net = _net()
    dense = nonzero_params(net)
    assert dense == sum(int(torch.count_nonzero(p)) for p in net.parameters())
    pruned = prune_magnitude(net, 0.9)
    dropped = sum(round(0.9 * m.weight.numel()) for _, m in masked_layers(pruned))
    assert nonzero_params(pruned) == dense - dropped


def test_sparsify_in_place_with_all_ones_masks() -> None:
    net = _net()
    layers = sparsify(net, 0.0, skip=("0",))
    assert len(layers) == 4 and type(net[0]) is nn.Conv2d
    assert all(bool(m.mask.all()) for _, m in layers)
    x = torch.randn(2, 3, 8, 8)
    reference = _net()
    assert torch.allclose(net(x), reference(x), atol=1e-6)


def test_to_sparse_starts_from_hydra_scaled_scores_and_magnitude_masks() -> None:
    net = _net()
    dense = {
        n: m.weight.detach().clone()
        for n, m in net.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    }
    layers = to_sparse(net, 0.75, skip=["0"])
    assert [n for n, _ in layers] == ["3", "5", "8", "10"] and isinstance(net[0], nn.Conv2d)
    assert isinstance(net[3], SparseConv2d) and isinstance(net[10], SparseLinear)
    for name, layer in layers:
        weight = dense[name]
        assert torch.equal(layer.weight.detach(), weight)  # weights kept, not zeroed
        fan_in = weight[0].numel()
        expected = math.sqrt(6 / fan_in) * weight / weight.abs().max()
        assert torch.allclose(layer.scores.detach(), expected)
        assert torch.equal(layer.mask, magnitude_mask(weight, 0.75))
        assert not layer.scores.requires_grad
    assert sparsity_of(net) == pytest.approx(0.75, abs=2e-2)
    with pytest.raises(InvalidConfigError, match="not in the network"):
        to_sparse(_net(), 0.5, skip=["99"])


def test_sparse_conv_computes_with_the_top_scores_and_passes_gradients_through() -> None:
    torch.manual_seed(1)
    layer = SparseConv2d(4, 6, 3, padding=1, bias=False, sparsity=0.5)
    learn_scores(layer)
    with torch.no_grad():
        layer.scores.copy_(torch.randn_like(layer.scores))  # scores unlike the weights
    x = torch.randn(2, 4, 5, 5)
    out = layer(x)
    mask = magnitude_mask(layer.scores.detach(), 0.5)
    assert not torch.equal(mask, magnitude_mask(layer.weight.detach(), 0.5))
    assert torch.equal(layer.mask, mask)
    effective = (layer.weight.detach() * mask).requires_grad_(True)
    reference = nn.functional.conv2d(x, effective, padding=1)
    assert torch.allclose(out, reference, atol=1e-6)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    reference.backward(grad_out)
    # d loss / d scores = d loss / d (w * m) * w * sign(s): straight through the top-k
    expected = effective.grad * layer.weight.detach() * layer.scores.detach().sign()
    assert torch.allclose(layer.scores.grad, expected, atol=1e-6)
    assert torch.allclose(layer.weight.grad, effective.grad * mask, atol=1e-6)


def test_learning_scores_moves_the_mask_and_freezing_fixes_it() -> None:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    to_sparse(net, 0.5)
    learn_scores(net)
    for p in net.parameters():
        if not any(p is m.scores for _, m in sparse_layers(net)):
            p.requires_grad_(False)
    first = net[0]
    before = first.mask.clone()
    optimizer = torch.optim.SGD([m.scores for _, m in sparse_layers(net)], lr=1.0)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    for _ in range(20):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    net(x)
    assert not torch.equal(first.mask, before)  # the scores chose other weights
    assert int(first.mask.sum()) == first.weight.numel() // 2
    learn_scores(net, False)
    fixed = first.mask.clone()
    with torch.no_grad():
        first.weight.mul_(-3.0)  # weights move; a frozen mask does not follow them
    net(x)
    assert torch.equal(first.mask, fixed) and first.scores.grad is not None
    set_sparsity(net, 0.9)  # re-initialised from the weights: the magnitude mask
    assert torch.equal(first.mask, magnitude_mask(first.weight.detach(), 0.9))
    set_sparsity(net, 0.0)
    assert bool(first.mask.all()) and sparsity_of(net) == 0.0
