"""Value-aware layers: one path is the sliced (and centre-cropped) layer, the dense form the
weighted sum of those layers' outputs, zero-padded to the largest width."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import nasforge.nn as nnf
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.nn.layers import copy_sliced


def _pad_channels(x: torch.Tensor, width: int, dim: int = 1) -> torch.Tensor:
    shape = list(x.shape)
    shape[dim] = width - x.shape[dim]
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


def test_plain_numbers_give_the_torch_layers() -> None:
    assert type(nnf.Conv2d(3, 8, 3, padding=1)) is nn.Conv2d
    assert type(nnf.Conv1d(3, 8, 3)) is nn.Conv1d
    assert type(nnf.Linear(3, 8)) is nn.Linear
    assert type(nnf.BatchNorm2d(8)) is nn.BatchNorm2d
    assert type(nnf.BatchNorm1d(8)) is nn.BatchNorm1d


def test_conv_one_path_is_the_sliced_centre_cropped_convolution() -> None:
    torch.manual_seed(0)
    width = nnf.ValueChoice([4, 6], label="w")
    kernel = nnf.ValueChoice([3, 5], label="k")
    conv = nnf.Conv2d(3, width, kernel, padding=kernel // 2)
    assert isinstance(conv, nn.Conv2d) and conv.weight.shape == (6, 3, 5, 5)
    x = torch.randn(2, 3, 7, 7)
    width.site.set(index=0)
    kernel.site.set(index=0)
    plain = nn.Conv2d(3, 4, 3, padding=1)
    copy_sliced(conv, plain)
    assert torch.equal(plain.weight, conv.weight[:4, :, 1:4, 1:4])
    assert torch.allclose(conv(x), plain(x), atol=1e-6)


def test_conv_dense_is_the_weighted_sum_over_widths_and_kernels() -> None:
    torch.manual_seed(0)
    width = nnf.ValueChoice([4, 6], label="w")
    kernel = nnf.ValueChoice([1, 3, 5], label="k")
    conv = nnf.Conv2d(3, width, kernel, padding=kernel // 2)
    x = torch.randn(2, 3, 7, 7)
    ww, wk = torch.tensor([0.3, 0.7]), torch.tensor([0.2, 0.3, 0.5])
    expected = torch.zeros(2, 6, 7, 7)
    for (a, wa), (b, wb) in itertools.product(enumerate(ww), enumerate(wk)):
        width.site.set(index=a)
        kernel.site.set(index=b)
        expected += wa * wb * _pad_channels(conv(x), 6)
    width.site.set(weights=ww)
    kernel.site.set(weights=wk)
    assert torch.allclose(conv(x), expected, atol=1e-5)


def test_an_input_width_choice_slices_the_input() -> None:
    torch.manual_seed(0)
    width = nnf.ValueChoice([2, 4], label="w")
    conv = nnf.Conv1d(width, 5, 3, padding=1)
    width.site.set(index=0)
    x = torch.randn(2, 4, 9)
    plain = nn.Conv1d(2, 5, 3, padding=1)
    copy_sliced(conv, plain)
    assert torch.allclose(conv(x), plain(x[:, :2]), atol=1e-6)


def test_depthwise_convolution_with_a_width_choice() -> None:
    torch.manual_seed(0)
    width = nnf.ValueChoice([2, 4], label="w")
    conv = nnf.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
    x = torch.randn(1, 4, 5, 5)
    width.site.set(index=0)
    plain = nn.Conv2d(2, 2, 3, padding=1, groups=2, bias=False)
    copy_sliced(conv, plain)
    assert torch.allclose(conv(x[:, :2]), plain(x[:, :2]), atol=1e-6)
    width.site.set(weights=torch.tensor([0.5, 0.5]))
    full = nn.functional.conv2d(x, conv.weight, None, 1, 1, 1, 4)
    assert torch.allclose(conv(x), full * torch.tensor([1.0, 1.0, 0.5, 0.5]).view(1, 4, 1, 1))


def test_linear_dense_and_one_path() -> None:
    torch.manual_seed(0)
    out = nnf.ValueChoice([3, 5], label="o")
    layer = nnf.Linear(4, out)
    x = torch.randn(6, 4)
    outputs = []
    for i in range(2):
        out.site.set(index=i)
        outputs.append(_pad_channels(layer(x), 5, dim=-1))
    out.site.set(weights=torch.tensor([0.4, 0.6]))
    assert torch.allclose(layer(x), 0.4 * outputs[0] + 0.6 * outputs[1], atol=1e-6)


def test_batch_norm_one_path_uses_the_first_channels_statistics() -> None:
    torch.manual_seed(0)
    width = nnf.ValueChoice([2, 4], label="w")
    norm = nnf.BatchNorm2d(width)
    x = torch.randn(8, 2, 3, 3)
    width.site.set(index=0)
    plain = nn.BatchNorm2d(2)
    assert torch.allclose(norm(x), plain(x), atol=1e-6)
    assert torch.allclose(norm.running_mean[:2], plain.running_mean)
    assert torch.equal(norm.running_mean[2:], torch.zeros(2))  # untouched
    assert int(norm.num_batches_tracked) == 1
    width.site.set(weights=torch.tensor([0.5, 0.5]))
    wide = torch.randn(8, 4, 3, 3)
    reference = nn.functional.batch_norm(wide, None, None, norm.weight, norm.bias, True)
    mask = torch.tensor([1.0, 1.0, 0.5, 0.5]).view(1, 4, 1, 1)
    assert torch.allclose(norm(wide), reference * mask, atol=1e-5)


def test_gdas_weights_leave_the_value_and_carry_the_gradient() -> None:
    width = nnf.ValueChoice([2, 4], label="w")
    layer = nnf.Linear(3, width)
    x = torch.randn(5, 3)
    logits = torch.zeros(2, requires_grad=True)
    probs = logits.softmax(-1)
    hard = torch.tensor([0.0, 1.0]) - probs.detach() + probs
    width.site.set(index=1)
    plain = layer(x)
    width.site.set(weights=hard, index=1)
    out = layer(x)
    assert torch.allclose(out, plain)
    out.pow(2).sum().backward()
    assert logits.grad is not None and bool((logits.grad != 0).all())


def test_a_kernel_choice_needs_padding_that_follows_it() -> None:
    kernel = nnf.ValueChoice([3, 5], label="k")
    with pytest.raises(InvalidConfigError, match=r"'k'.*padding=kernel // 2"):
        nnf.Conv2d(3, 4, kernel, padding=1)
    same = nnf.Conv2d(3, 4, kernel, padding="same")
    kernel.site.set(index=0)
    assert same(torch.randn(1, 3, 6, 6)).shape == (1, 4, 6, 6)
    with pytest.raises(UnsupportedOperationError, match="groups"):
        nnf.Conv2d(nnf.ValueChoice([2, 4]), 4, 3, groups=2)


def test_fixed_layers_equal_the_hand_written_ones() -> None:
    with nnf.fixed({"w": 6, "k": 5}):
        width = nnf.ValueChoice([4, 6], label="w")
        kernel = nnf.ValueChoice([3, 5], label="k")
        conv = nnf.Conv2d(3, width, kernel, padding=kernel // 2)
        norm = nnf.BatchNorm2d(width)
    assert type(conv) is nn.Conv2d and str(conv) == str(nn.Conv2d(3, 6, 5, padding=2))
    assert type(norm) is nn.BatchNorm2d and norm.num_features == 6
