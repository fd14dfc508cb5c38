"""Behaviour of the one-shot building blocks for mobile spaces (issue 18, item 4):
ProxylessNAS's binarized paths, FBNet's Gumbel-softmax mixture, Single-Path NAS's superkernel,
their latency terms and losses, and the extraction of a chosen path."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.ops.mobile import LayerSpec, MBConv, build_layer
from nasforge.ops.mobile_supernet import (
    FBNET_TAU_DECAY,
    BinarizedMixedLayer,
    GumbelMixedLayer,
    binarize,
    derive_index,
    expected_latency,
    fbnet_loss,
    fbnet_temperature,
    gumbel_softmax,
    proxyless_loss,
    rescale_sampled,
)
from nasforge.ops.superkernel import (
    SuperKernelMBConv,
    indicator,
    single_path_loss,
    single_path_runtime,
)

C, SIDE = 8, 8
BLOCKS = ((3, 3), (5, 3), (3, 6), (5, 6))


def _candidates() -> list[nn.Module]:
    """Four MBConv candidates of one layer (kernel x expansion) and a skip."""
    torch.manual_seed(0)
    blocks: list[nn.Module] = [
        build_layer(LayerSpec("mbconv", C, C, kernel=k, expansion=e, resolution=SIDE))
        for k, e in BLOCKS
    ]
    return [*blocks, nn.Identity()]


def _x(seed: int = 1, channels: int = C, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, channels, SIDE, SIDE, generator=torch.Generator().manual_seed(seed))


# -- ProxylessNAS -----------------------------------------------------------------------------
def test_binarized_gates_give_gradients_to_exactly_the_sampled_paths() -> None:
    layer = BinarizedMixedLayer(_candidates())
    calls: list[int] = []
    for i, op in enumerate(layer.candidates):
        op.register_forward_hook(lambda m, a, o, i=i: calls.append(i))
    alpha = (0.3 * torch.randn(5, generator=torch.Generator().manual_seed(3))).requires_grad_()
    x = _x().requires_grad_()
    for seed in range(6):
        layer.zero_grad(set_to_none=True)
        alpha.grad, calls[:] = None, []
        gate = binarize(alpha, torch.Generator().manual_seed(seed))
        assert gate.weights is not None
        assert gate.weights.tolist() == [float(i == gate.active) for i in range(5)]
        out = layer(x, gate)
        # the forward value is the active path alone
        with torch.no_grad():
            assert torch.equal(out, layer.candidates[gate.active](x))
        calls.clear()
        out = layer(x, gate)
        assert sorted(calls) == sorted(gate.sampled), "unsampled candidates must not run"
        target = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
        loss = ((out - target) ** 2).mean()
        loss.backward()
        for i, op in enumerate(layer.candidates):
            grads = [p.grad for p in op.parameters()]
            if i == gate.active:  # (the skip candidate has no parameters)
                assert all(g is not None and g.abs().sum() > 0 for g in grads)
            else:  # the inactive sampled path runs without gradient; the others do not run
                assert all(g is None for g in grads)
        assert alpha.grad is not None
        nonzero = set(torch.nonzero(alpha.grad).flatten().tolist())
        assert nonzero == set(gate.sampled)
        # the paper's gradient: dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i) over the pair
        with torch.no_grad():
            active_out = layer.candidates[gate.active](x)
            grad_out = 2 * (active_out - target) / active_out.numel()
            pair = list(gate.sampled)
            p = alpha.detach()[pair].softmax(-1)
            dg = [float((grad_out * layer.candidates[j](x)).sum()) for j in pair]
            for a, i in enumerate(pair):
                want = sum(dg[b] * p[b] * (float(a == b) - p[a]) for b in range(2))
                assert float(alpha.grad[i]) == pytest.approx(float(want), rel=1e-4, abs=1e-7)


def test_one_path_mode_runs_and_trains_only_the_active_path() -> None:
    layer = BinarizedMixedLayer(_candidates())
    alpha = torch.zeros(5)
    gate = binarize(alpha, torch.Generator().manual_seed(0), two_paths=False)
    assert gate.inactive is None and gate.weights is None
    layer(_x(), gate).sum().backward()
    for i, op in enumerate(layer.candidates):
        for p in op.parameters():
            assert (p.grad is not None) == (i == gate.active)


def test_two_path_sampling_follows_the_probabilities() -> None:
    alpha = torch.tensor([4.0, 0.0, 0.0, -4.0])
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(4)
    for _ in range(400):
        for i in binarize(alpha, gen).sampled:
            counts[i] += 1
    assert counts[0] == 400  # almost surely in every pair
    assert counts[3] < 20 < counts[1]


def test_rescale_keeps_the_unsampled_probabilities() -> None:
    alpha = torch.tensor([0.5, -0.2, 0.1, 0.9], requires_grad=True)
    gate = binarize(alpha, torch.Generator().manual_seed(2))
    before = alpha.detach().softmax(-1).clone()
    (gate.weights * torch.tensor([1.0, -2.0, 3.0, 0.5])).sum().backward()
    torch.optim.SGD([alpha], lr=1.0).step()
    rescale_sampled(alpha, gate)
    after = alpha.detach().softmax(-1)
    rest = [i for i in range(4) if i not in gate.sampled]
    assert torch.allclose(after[rest], before[rest], atol=1e-6)
    assert not torch.allclose(after, before)


def test_latency_gradient_lowers_the_slow_operations() -> None:
    latency = torch.tensor([1.0, 2.0, 8.0, 4.0])
    # ProxylessNAS: E[LAT] over softmax(alpha)
    alpha = torch.zeros(4, requires_grad=True)
    (0.1 * expected_latency(alpha.softmax(-1), latency)).backward()
    torch.optim.SGD([alpha], lr=1.0).step()
    assert alpha[2] < alpha[3] < alpha[1] < alpha[0]
    # ProxylessNAS two-path mode: the pair's renormalised probabilities
    alpha = torch.zeros(4, requires_grad=True)
    gate = binarize(alpha, torch.Generator().manual_seed(5))
    expected_latency(gate.probs, latency).backward()
    torch.optim.SGD([alpha], lr=1.0).step()
    slow, fast = sorted(gate.sampled, key=lambda i: -latency[i])
    assert alpha[slow] < 0 < alpha[fast]
    # FBNet: LAT(a) over Gumbel-softmax weights, two layers at once
    theta = torch.zeros(2, 4, requires_grad=True)
    m = gumbel_softmax(theta, 5.0, torch.Generator().manual_seed(0))
    expected_latency(m, latency.expand(2, 4)).backward()
    torch.optim.SGD([theta], lr=1.0).step()
    for row in theta.detach():
        assert row[2] == row.min() and row[0] == row.max()


def test_latency_table_shapes_are_checked() -> None:
    with pytest.raises(InvalidConfigError, match="one latency per candidate"):
        expected_latency(torch.ones(3) / 3, torch.ones(4))
    with pytest.raises(InvalidConfigError, match="finite"):
        expected_latency(torch.ones(2) / 2, torch.tensor([1.0, float("nan")]))


def test_loss_forms() -> None:
    ce, lat = torch.tensor(2.0), torch.tensor(30.0)
    assert float(proxyless_loss(ce, lat, lam=0.1)) == pytest.approx(5.0)
    assert float(proxyless_loss(ce, lat, lam=0.2, target=20.0)) == pytest.approx(2.1)
    mul = proxyless_loss(ce, lat, form="mul", target=20.0)
    assert float(mul) == pytest.approx(2.0 * (math.log(30) / math.log(20)) ** 0.6)
    assert float(fbnet_loss(ce, lat)) == pytest.approx(2.0 * 0.2 * math.log(30) ** 0.6)
    with pytest.raises(InvalidConfigError, match="'add' or 'mul'"):
        proxyless_loss(ce, lat, form="sum")
    with pytest.raises(InvalidConfigError, match="target"):
        proxyless_loss(ce, lat, form="mul")
    with pytest.raises(InvalidConfigError, match="LAT > 1"):
        fbnet_loss(ce, torch.tensor(0.5))


# -- FBNet ------------------------------------------------------------------------------------
def test_fbnet_temperature_schedule() -> None:
    assert fbnet_temperature(0) == 5.0
    taus = [fbnet_temperature(e) for e in range(90)]
    assert all(b / a == pytest.approx(math.exp(-0.045)) for a, b in pairwise(taus))
    assert pytest.approx(math.exp(-0.045)) == FBNET_TAU_DECAY
    assert fbnet_temperature(89) == pytest.approx(5.0 * math.exp(-0.045 * 89))
    assert fbnet_temperature(3, initial=1.0, decay=0.5) == 0.125
    for bad in ({"epoch": -1}, {"epoch": 1, "initial": 0.0}, {"epoch": 1, "decay": 1.5}):
        with pytest.raises(InvalidConfigError):
            fbnet_temperature(**bad)


def test_gumbel_weights_sharpen_as_the_temperature_falls() -> None:
    theta = torch.tensor([[0.5, 0.0, -0.5, 0.2]])
    warm = gumbel_softmax(theta, 5.0, torch.Generator().manual_seed(4))
    cold = gumbel_softmax(theta, 0.01, torch.Generator().manual_seed(4))
    assert torch.allclose(warm.sum(-1), torch.ones(1)) and torch.allclose(
        cold.sum(-1), torch.ones(1)
    )
    assert float(cold.max()) > 0.99 > float(warm.max())
    assert int(cold.argmax()) == int(warm.argmax())  # the same noise, the same winner


def test_gumbel_layer_mixes_every_candidate() -> None:
    layer = GumbelMixedLayer(_candidates())
    x = _x()
    m = gumbel_softmax(torch.zeros(5, requires_grad=True), 1.0, torch.Generator().manual_seed(0))
    out = layer(x, m)
    want = sum(m[i] * op(x) for i, op in enumerate(layer.candidates))
    assert torch.allclose(out, want, atol=1e-6)
    out.sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    with pytest.raises(InvalidConfigError, match="weights of shape"):
        layer(x, torch.ones(3))


# -- derivation and extraction ----------------------------------------------------------------
def test_derive_index_takes_the_argmax() -> None:
    assert derive_index(torch.tensor([0.1, 0.7, 0.7, -1.0])) == [1]
    assert derive_index(torch.tensor([[0.0, 1.0], [2.0, 1.0]])) == [1, 0]


@pytest.mark.parametrize("train", [True, False])
def test_extracted_candidate_equals_the_path_output(train: bool) -> None:
    x = _x()
    binarized, gumbel = BinarizedMixedLayer(_candidates()), GumbelMixedLayer(_candidates())
    for layer in (binarized, gumbel):
        layer.train(train)
    for index in range(5):
        gate = binarize(
            torch.full((5,), -9.0).index_fill(0, torch.tensor([index]), 9.0),
            torch.Generator().manual_seed(index),
            two_paths=False,
        )
        assert gate.active == index
        with torch.no_grad():
            path = binarized(x, gate)
            alone = binarized.extract(index)(x)
            assert float((path - alone).abs().max()) <= 1e-5
            onehot = F.one_hot(torch.tensor(index), 5).float()
            mixed = gumbel(x, onehot)
            assert float((mixed - gumbel.extract(index)(x)).abs().max()) <= 1e-5
            assert float((gumbel(x, index=index) - mixed).abs().max()) <= 1e-5
    with pytest.raises(InvalidConfigError, match="Candidate index"):
        binarized.extract(5)


# -- Single-Path NAS superkernel --------------------------------------------------------------
def _select(layer: SuperKernelMBConv, choice: tuple[int, float] | None) -> None:
    """Set the thresholds 0.5 below or above the norms they gate so that the indicators
    select ``choice``."""
    with torch.no_grad():
        weight = layer.dw_conv.weight
        kj = len(layer.kernels) - 1 if choice is None else layer.kernels.index(choice[0])
        for j in range(1, len(layer.kernels)):
            norm = layer._norm(weight * layer.rings[j])
            layer.kernel_thresholds[j - 1] = norm - 0.5 if j <= kj else norm + 0.5
        _, _, kernel = layer.indicators()
        ej = -1 if choice is None else layer.expansions.index(choice[1])
        bounds = (0, *layer.widths)
        for j in range(len(layer.expansions)):
            norm = layer._norm(kernel[bounds[j] : bounds[j + 1]])
            layer.expansion_thresholds[j] = norm - 0.5 if j <= ej else norm + 0.5


def test_indicator_is_exact_forward_and_sigmoid_backward() -> None:
    x = torch.tensor([-0.3, 0.2, 2.0, -4.0], requires_grad=True)
    value = indicator(x)
    assert value.tolist() == [0.0, 1.0, 1.0, 0.0]
    value.sum().backward()
    soft = torch.sigmoid(x.detach())
    assert torch.allclose(x.grad, soft * (1 - soft))


@pytest.mark.parametrize("stride", [1, 2])
def test_superkernel_3x3_setting_is_the_centre_3x3_convolution(stride: int) -> None:
    torch.manual_seed(0)
    layer = SuperKernelMBConv(C, C if stride == 1 else 16, stride=stride, resolution=SIDE)
    _select(layer, (3, 6))
    _, _, kernel = layer.indicators()
    weight = layer.dw_conv.weight
    centre_only = torch.zeros_like(weight)
    centre_only[..., 1:4, 1:4] = weight[..., 1:4, 1:4]
    assert torch.equal(kernel, centre_only)
    h = _x(channels=weight.shape[0])
    groups = weight.shape[0]
    super_out = F.conv2d(h, kernel, stride=stride, padding=2, groups=groups)
    centre = F.conv2d(h, weight[..., 1:4, 1:4], stride=stride, padding=1, groups=groups)
    assert float((super_out - centre).detach().abs().max()) <= 1e-6
    _select(layer, (5, 6))  # the 5x5 setting is the whole superkernel
    assert torch.equal(layer.indicators()[2], weight)


@pytest.mark.parametrize(
    ("kwargs", "choices"),
    [
        ({"in_channels": C, "out_channels": C}, 5),
        (
            {
                "in_channels": C,
                "out_channels": 12,
                "stride": 2,
                "kernels": (3, 5, 7),
                "expansions": (2, 4, 6),
                "act": "hswish",
            },
            9,
        ),
    ],
)
def test_extracted_block_equals_the_superkernel_output(kwargs: dict, choices: int) -> None:
    torch.manual_seed(0)
    layer = SuperKernelMBConv(**kwargs, resolution=SIDE)
    assert len(layer.choices) == choices and (None in layer.choices) == (choices == 5)
    x = _x()
    for choice in layer.choices:
        _select(layer, choice)
        assert layer.decision() == choice
        for train in (True, False):
            layer.train(train)
            block = layer.extract()
            if choice is None:
                assert isinstance(block, nn.Identity)
            else:
                assert isinstance(block, MBConv) and block.spec.kernel == choice[0]
            with torch.no_grad():
                diff = (layer(x) - block(x)).abs().max()
            assert float(diff) <= 1e-5, (choice, train)
    with pytest.raises(InvalidConfigError, match="Unknown block"):
        layer.extract((7, 3))


def test_superkernel_trains_one_path() -> None:
    layer = SuperKernelMBConv(C, C, resolution=SIDE)
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3  # one expansion, one depthwise superkernel, one projection
    weights = sum(p.numel() for p in layer.parameters()) - 3  # less the three thresholds
    largest = build_layer(layer.spec(5, 6))
    assert weights == sum(p.numel() for p in largest.parameters())


def test_superkernel_runtime_is_the_chosen_blocks_entry() -> None:
    layer = SuperKernelMBConv(C, C, resolution=SIDE)
    table = {(3, 3): 1.0, (5, 3): 1.7, (3, 6): 2.2, (5, 6): 3.5}
    for choice in layer.choices:
        _select(layer, choice)
        want = 0.25 if choice is None else table[choice]
        assert layer.runtime(table, skip=0.25).item() == pytest.approx(want, rel=1e-7)
    with pytest.raises(InvalidConfigError, match="no entry for kernel 5, expansion 6"):
        layer.runtime({(3, 3): 1.0, (5, 3): 1.7, (3, 6): 2.2})


def test_runtime_aware_loss_lowers_the_runtime() -> None:
    torch.manual_seed(0)
    layers = [SuperKernelMBConv(C, C, resolution=SIDE), SuperKernelMBConv(C, 16, stride=2)]
    tables = [{(3, 3): 1.0, (5, 3): 1.6, (3, 6): 2.0, (5, 6): 3.0}] * 2
    start = single_path_runtime(layers, tables, fixed=1.0).item()
    assert start == 7.0 and [layer.decision() for layer in layers] == [(5, 6), (5, 6)]
    thresholds = [p for layer in layers for p in layer.threshold_parameters()]
    weights = [p for layer in layers for p in layer.parameters() if p.dim() > 1]
    optimizer = torch.optim.Adam(
        [{"params": thresholds, "lr": 0.5}, {"params": weights, "lr": 1e-3}]
    )
    runtimes = []
    for _ in range(40):
        optimizer.zero_grad()
        runtime = single_path_runtime(layers, tables, fixed=1.0)
        single_path_loss(torch.zeros(()), runtime, lam=0.02).backward()
        optimizer.step()
        runtimes.append(runtime.item())
    end = single_path_runtime(layers, tables, fixed=1.0).item()
    assert end < start and all(b <= a for a, b in pairwise(runtimes))
    assert layers[0].decision() is None  # the first layer's block is skipped
    assert layers[1].decision() == (3, 3)  # no skip without a shortcut: the cheapest block
    assert end == pytest.approx(1.0 + 1.0)


def test_superkernel_refuses_bad_settings() -> None:
    with pytest.raises(InvalidConfigError, match="odd"):
        SuperKernelMBConv(C, C, kernels=(3, 4))
    with pytest.raises(InvalidConfigError, match="above 1"):
        SuperKernelMBConv(C, C, expansions=(1, 6))
    with pytest.raises(InvalidConfigError, match="shortcut"):
        SuperKernelMBConv(C, 16, allow_skip=True)
    with pytest.raises(InvalidConfigError, match="one table per layer"):
        single_path_runtime([SuperKernelMBConv(C, C)], [])
    with pytest.raises(InvalidConfigError, match="positive runtime"):
        single_path_loss(torch.zeros(()), torch.tensor(0.0))
