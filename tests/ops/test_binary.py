"""Binary operations against their definitions (Hubara et al. 2016; XNOR-Net; Bi-Real Net)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from nasforge import spaces
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.ops.binary import (
    BinaryActivation,
    BinaryConv2d,
    BinaryConvBN,
    BinaryLinear,
    binarize,
    binary_layers,
    binary_weight,
    set_binary,
    sign_ste,
)


def _sign(x: torch.Tensor) -> torch.Tensor:
    """The definition: +1 for x >= 0, -1 otherwise, element by element in Python."""
    return torch.tensor([1.0 if v >= 0 else -1.0 for v in x.flatten().tolist()]).reshape(x.shape)


def _conv_by_hand(x: torch.Tensor, w: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
    """A direct 2-D convolution (cross-correlation) by loops, groups = 1, no bias."""
    n, c_in, h, width = x.shape
    c_out, _, kh, kw = w.shape
    padded = torch.zeros(n, c_in, h + 2 * padding, width + 2 * padding)
    padded[:, :, padding : padding + h, padding : padding + width] = x
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (width + 2 * padding - kw) // stride + 1
    out = torch.zeros(n, c_out, oh, ow)
    for b in range(n):
        for o in range(c_out):
            for i in range(oh):
                for j in range(ow):
                    patch = padded[b, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
                    out[b, o, i, j] = float((patch * w[o]).sum())
    return out


def test_sign_is_plus_one_at_zero_and_gradient_is_the_ste() -> None:
    x = torch.tensor([-3.0, -1.0, -0.999, -1e-8, 0.0, 0.25, 1.0, 1.001, 7.0], requires_grad=True)
    y = sign_ste(x)
    assert y.tolist() == _sign(x.detach()).tolist()
    assert y[4].item() == 1.0
    upstream = torch.arange(1.0, 10.0)
    y.backward(upstream)
    expected = upstream * (x.detach().abs() <= 1).float()
    assert torch.equal(x.grad, expected)
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0, 0.0]


def test_binary_activation_switch() -> None:
    x = torch.tensor([[-0.5, 0.0, 2.0]])
    act = BinaryActivation()
    assert act(x).tolist() == [[-1.0, 1.0, 1.0]]
    act.binary_activations = False
    assert torch.equal(act(x), x)


def test_binary_weight_is_alpha_times_sign_per_output_channel() -> None:
    w = torch.tensor(
        [[[[0.5, -1.5], [0.0, 2.0]]], [[[-0.25, -0.25], [0.25, -0.75]]]], requires_grad=True
    )
    out = binary_weight(w)
    alpha = [(0.5 + 1.5 + 0.0 + 2.0) / 4, (0.25 + 0.25 + 0.25 + 0.75) / 4]
    expected = torch.stack([alpha[o] * _sign(w.detach()[o]) for o in range(2)])
    assert torch.allclose(out, expected)
    assert out[0, 0, 1, 0].item() == alpha[0]  # sign(0) = +1
    upstream = torch.randn_like(w)
    out.backward(upstream)
    reference = w.detach().clone().requires_grad_(True)
    reference.clamp(-1, 1).backward(upstream)
    assert torch.equal(w.grad, reference.grad)
    assert w.grad[0, 0, 0, 1].item() == 0.0 and w.grad[0, 0, 1, 1].item() == 0.0  # |w| > 1


def test_binary_conv_equals_conv_of_signs_by_hand() -> None:
    torch.manual_seed(0)
    conv = BinaryConv2d(2, 3, 3, stride=2, padding=1, bias=False)
    x = torch.randn(1, 2, 5, 5)
    x[0, 0, 0, 0] = 0.0
    w = conv.weight.detach()
    alpha = w.abs().mean(dim=(1, 2, 3))
    scaled = torch.stack([alpha[o] * _sign(w[o]) for o in range(3)])
    expected = _conv_by_hand(_sign(x), scaled, stride=2, padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    # the same through the library convolution
    assert torch.allclose(
        conv(x), nn.functional.conv2d(_sign(x), scaled, stride=2, padding=1), atol=1e-6
    )


def test_binary_conv_gradients_are_the_ste() -> None:
    torch.manual_seed(1)
    conv = BinaryConv2d(2, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight[0, 0, 0, 0] = 1.7  # a weight outside [-1, 1] gets no gradient
    x = (torch.randn(1, 2, 4, 4) * 1.5).requires_grad_(True)
    upstream = torch.randn(1, 2, 4, 4)
    conv(x).backward(upstream)
    # reference: the convolution of the straight-through proxies hardtanh(x), clamp(W)
    # evaluated at the binary values: grad_x = (grad wrt sign(x)) * 1{|x|<=1} and
    # grad_W = (grad wrt alpha*sign(W)) * 1{|W|<=1}
    signs = _sign(x.detach()).requires_grad_(True)
    w = conv.weight.detach()
    scaled = (w.abs().mean(dim=(1, 2, 3), keepdim=True) * _sign(w)).requires_grad_(True)
    nn.functional.conv2d(signs, scaled, padding=1).backward(upstream)
    assert torch.allclose(x.grad, signs.grad * (x.detach().abs() <= 1).float(), atol=1e-6)
    assert torch.allclose(conv.weight.grad, scaled.grad * (w.abs() <= 1).float(), atol=1e-6)
    assert conv.weight.grad[0, 0, 0, 0].item() == 0.0


def test_binary_linear_equals_its_definition() -> None:
    torch.manual_seed(2)
    lin = BinaryLinear(4, 3)
    x = torch.randn(2, 4)
    w = lin.weight.detach()
    scaled = w.abs().mean(dim=1, keepdim=True) * _sign(w)
    assert torch.allclose(lin(x), _sign(x) @ scaled.T + lin.bias.detach(), atol=1e-6)


def test_set_binary_switches_each_half() -> None:
    torch.manual_seed(3)
    model = nn.Sequential(BinaryActivation(), BinaryConv2d(2, 2, 1, bias=False))
    conv = model[1]
    x = torch.randn(1, 2, 3, 3)
    w = conv.weight.detach()
    scaled = w.abs().mean(dim=(1, 2, 3), keepdim=True) * _sign(w)
    set_binary(model, activations=False)
    assert not model[0].binary_activations and conv.binary_weights
    assert torch.allclose(model(x), nn.functional.conv2d(x, scaled), atol=1e-6)
    set_binary(model, activations=True, weights=False)
    assert conv.binary_activations and not conv.binary_weights
    assert torch.allclose(conv(x), nn.functional.conv2d(_sign(x), w), atol=1e-6)
    set_binary(model, weights=True)  # activations left as they are
    assert conv.binary_activations and conv.binary_weights
    set_binary(model, activations=False, weights=False)
    assert torch.allclose(conv(x), nn.functional.conv2d(x, w), atol=1e-6)


def test_binary_conv_bn_identity_shortcut() -> None:
    torch.manual_seed(4)
    block = BinaryConvBN(3, 3, 3, padding=1).eval()
    assert isinstance(block.shortcut, nn.Identity)
    x = torch.randn(2, 3, 4, 4)
    expected = block.bn(block.conv(x)) + x
    assert torch.allclose(block(x), expected)
    plain = BinaryConvBN(3, 3, 3, padding=1, shortcut=False).eval()
    assert plain.shortcut is None
    assert torch.allclose(plain(x), plain.bn(plain.conv(x)))


def test_binary_conv_bn_downsampling_shortcut() -> None:
    torch.manual_seed(5)
    block = BinaryConvBN(2, 4, 3, stride=2, padding=1).eval()
    with torch.no_grad():
        for bn in (block.bn, block.shortcut[2]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(1, 2, 5, 5)  # odd side: the 2x2 pooling uses ceil mode without padding
    pooled = torch.zeros(1, 2, 3, 3)
    for i in range(3):
        for j in range(3):
            pooled[:, :, i, j] = x[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean(dim=(2, 3))
    conv1x1 = block.shortcut[1].weight.detach()
    projected = torch.einsum("oc,bchw->bohw", conv1x1[:, :, 0, 0], pooled)
    bn = block.shortcut[2]
    shortcut = (projected - bn.running_mean[None, :, None, None]) / torch.sqrt(
        bn.running_var[None, :, None, None] + bn.eps
    ) * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    expected = block.bn(block.conv(x)) + shortcut
    assert torch.allclose(block(x), expected.detach(), atol=1e-5)
    only_pool = BinaryConvBN(2, 2, 3, stride=2, padding=1).eval()
    assert [type(m) for m in only_pool.shortcut] == [nn.AvgPool2d]
    assert torch.allclose(only_pool(x), only_pool.bn(only_pool.conv(x)) + pooled, atol=1e-6)
    width_only = BinaryConvBN(2, 4, 1)
    assert [type(m) for m in width_only.shortcut] == [nn.Conv2d, nn.BatchNorm2d]


def test_binary_conv_bn_refuses_bad_groups() -> None:
    with pytest.raises(InvalidConfigError, match="groups"):
        BinaryConvBN(3, 4, 3, groups=2)


def _small_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 6),
        nn.ReLU(),
        nn.Linear(6, 2),
    )


def test_binarize_keeps_first_and_last_real_and_copies_weights() -> None:
    torch.manual_seed(6)
    model = _small_net()
    out = binarize(model)
    assert out is not model and type(model[3]) is nn.Conv2d  # the original is untouched
    assert type(out[0]) is nn.Conv2d and type(out[9]) is nn.Linear
    assert isinstance(out[3], BinaryConv2d) and isinstance(out[7], BinaryLinear)
    assert [name for name, _ in binary_layers(out)] == ["3", "7"]
    for index in (0, 3, 7, 9):
        assert torch.equal(out[index].weight, model[index].weight)
    assert out[3].weight.data_ptr() != model[3].weight.data_ptr()
    everything = binarize(model, keep_first=False, keep_last=False, drop_relu=False)
    assert [name for name, _ in binary_layers(everything)] == ["0", "3", "7", "9"]
    kept = binarize(model, keep=("3",))
    assert [name for name, _ in binary_layers(kept)] == ["7"]
    x = torch.randn(2, 3, 6, 6)
    set_binary(everything, activations=False, weights=False)
    assert torch.allclose(everything.eval()(x), model.eval()(x), atol=1e-6)


def test_binarize_refuses_unknown_keep_name() -> None:
    with pytest.raises(InvalidConfigError, match="nope"):
        binarize(_small_net(), keep=("nope",))


def test_binarize_refuses_operations_without_binary_form() -> None:
    with pytest.raises(UnsupportedOperationError, match="'1' \\(Conv1d\\)"):
        binarize(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Conv1d(1, 1, 1), nn.Linear(1, 1)))
    space = spaces.create("vit-cifar")
    vit = space.build_preset(space.sample(np.random.default_rng(0)), "reduced")
    first_odd = next(
        name
        for name, module in vit.named_modules()
        if name
        and type(module) not in (nn.Conv2d, nn.Linear)
        and list(module.parameters(recurse=False))
    )
    with pytest.raises(UnsupportedOperationError, match="has no binary form") as info:
        binarize(vit)
    kind = type(vit.get_submodule(first_odd)).__name__
    assert f"Layer {first_odd!r} ({kind})" in str(info.value)


def test_binarize_drops_a_relu_right_before_a_binary_layer_whose_sign_would_be_constant():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    # a sign after a ReLU is +1 everywhere: the binary convolution would see a constant
    relu_then_sign = sign_ste(torch.relu(torch.randn(2, 4, 5, 5)))
    assert torch.all(relu_then_sign == 1)
    binary = binarize(net)
    assert isinstance(binary[2], nn.Identity)  # before the binary convolution
    assert isinstance(binary[5], nn.ReLU)  # before pooling: kept
    assert isinstance(binarize(net, drop_relu=False)[2], nn.ReLU)
    # nor_conv layers of NAS-Bench-201 are ReLU, convolution, batch norm
    nb201 = spaces.create("nb201")
    cell_net = binarize(
        nb201.build(
            nb201.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
            channels=4,
            cells_per_stage=1,
        )
    )
    leaves = [m for m in cell_net.modules() if not list(m.children())]
    for before, layer in itertools.pairwise(leaves):
        if isinstance(layer, BinaryConv2d):
            assert not isinstance(before, nn.ReLU)
