"""Parameters, MACs and FLOPs: by hand on single layers, against the NB201 table on cells."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge import hardware
from nasforge.errors import InvalidConfigError
from nasforge.hardware import Costs, count_flops, count_params
from nasforge.ops.nb201 import NB201Network

# dataset -> (classes, image side) of the NB201 table
NB201_DATA = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16-120": (120, 16)}


# -- parameters -----------------------------------------------------------------------------
def test_params_of_linear_are_weights_and_biases():
    assert count_params(nn.Linear(7, 5)) == 7 * 5 + 5
    assert count_params(nn.Linear(7, 5, bias=False)) == 7 * 5


def test_params_count_shared_ones_once_and_no_buffers():
    shared = nn.Linear(4, 4)
    net = nn.Sequential(shared, nn.BatchNorm1d(4), shared)
    assert count_params(net) == 4 * 4 + 4 + 2 * 4  # running statistics are buffers


def test_params_trainable_only():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    net[0].weight.requires_grad_(False)
    assert count_params(net, trainable_only=True) == 2 + 2 * 2 + 2


def test_params_exclude_by_submodule_name():
    net = nn.Module()
    net.head = nn.Linear(3, 2)
    net.header = nn.Linear(3, 1)
    net.auxiliary_head = nn.Sequential(nn.Linear(3, 4))
    assert count_params(net, exclude=("auxiliary_head",)) == 8 + 4
    # a name excludes itself and what lies below it, not a longer name sharing its prefix
    assert count_params(net, exclude=("head",)) == 4 + 16
    assert count_params(net, exclude="head.bias") == 6 + 4 + 16


def test_params_exclude_unknown_name_is_an_error_naming_the_children():
    net = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(InvalidConfigError, match=r"\['aux'\] match no parameter.*'0'"):
        count_params(net, exclude=("aux",))


# -- MACs and FLOPs by hand -----------------------------------------------------------------
@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_macs_of_a_convolution_by_hand(device):
    k, c_in, c_out, h, w = 3, 4, 6, 10, 12
    conv = nn.Conv2d(c_in, c_out, k, padding=1)
    costs = count_flops(conv, (c_in, h, w), device=device)
    macs = k * k * c_in * c_out * h * w  # same padding: output is h x w; bias not counted
    assert costs.macs_M * 1e6 == pytest.approx(macs, abs=1e-6)
    assert costs.flops_M == pytest.approx(2 * costs.macs_M)
    assert costs.params_M * 1e6 == pytest.approx(k * k * c_in * c_out + c_out)


def test_macs_of_a_strided_grouped_convolution_by_hand():
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=0, groups=4, bias=False)
    h_out = (15 - 3) // 2 + 1  # 7
    macs = 3 * 3 * (8 // 4) * 16 * h_out * h_out
    assert count_flops(conv, (8, 15, 15)).macs_M * 1e6 == pytest.approx(macs)


def test_macs_of_linear_and_example_batch():
    linear = nn.Linear(20, 30)
    assert count_flops(linear, (20,)).macs_M * 1e6 == pytest.approx(20 * 30)
    # an example tensor is counted for its own batch size
    assert count_flops(linear, torch.zeros(4, 20)).macs_M * 1e6 == pytest.approx(4 * 20 * 30)


def test_pooling_normalisation_activation_and_additions_are_not_counted():
    net = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten())
    assert count_flops(net, (3, 8, 8)) == Costs(params_M=6e-6, macs_M=0.0, flops_M=0.0)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_attention_is_counted_on_every_device_and_fast_path_restored(device):
    length, embed = 5, 8
    mha = nn.MultiheadAttention(embed, num_heads=2, batch_first=True)
    fastpath = torch.backends.mha.get_fastpath_enabled()

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mha(x, x, x, need_weights=False)[0]

    costs = count_flops(SelfAttention(), (length, embed), device=device)
    projections = 3 * embed * embed * length + embed * embed * length
    attention = 2 * length * length * embed  # Q K^T and A V over all heads
    assert costs.macs_M * 1e6 == pytest.approx(projections + attention)
    assert torch.backends.mha.get_fastpath_enabled() == fastpath


# -- NAS-Bench-201 --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("index", "dataset"),
    [
        (6111, "cifar10"),  # the best cifar10 cell: 3x3 and 1x1 convolutions
        (6111, "imagenet16-120"),  # 16x16 inputs, 120 classes
        (100, "cifar100"),  # a none edge beside convolutions and pooling
        (1835, "cifar10"),  # skip connections only
        (1651, "cifar10"),  # none on every edge
        (14452, "cifar10"),  # the median of the table's FLOPs
    ],
)
def test_nb201_params_and_macs_plus_classes_match_the_table(nb201, bench, index, dataset):
    arch = nb201.from_index(index)
    classes, side = NB201_DATA[dataset]
    net = NB201Network(arch.choices, num_classes=classes)
    costs = count_flops(net, (3, side, side))
    assert costs.params_M == pytest.approx(bench.query(arch, dataset, "params_M"), abs=5e-7)
    # the release's "FLOPs" are MACs plus the classifier's bias adds; the table's macs_M
    # and flops_M (2 x MACs) are the quantities counted here
    assert costs.macs_M == pytest.approx(bench.query(arch, dataset, "macs_M"), abs=5e-6)
    assert costs.flops_M == pytest.approx(bench.query(arch, dataset, "flops_M"), abs=1e-5)
    assert costs.flops_M == pytest.approx(2 * costs.macs_M)


def test_nb201_meta_and_cpu_counts_agree(nb201):
    # a narrow, shallow network: the CPU count does the arithmetic
    net = NB201Network(nb201.from_index(6111).choices, 10, channels=4, cells_per_stage=1)
    assert count_flops(net, (3, 32, 32), device="meta") == count_flops(
        net, (3, 32, 32), device="cpu"
    )


# -- modes, fallback, errors ----------------------------------------------------------------
class _TrainOnlyBranch(nn.Module):
    """Does an extra product in training mode, like an auxiliary head."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Linear(6, 6)
        self.auxiliary = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.main(x)
        return out + self.auxiliary(x) if self.training else out


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_counts_in_eval_mode_and_restores_every_submodules_mode(device):
    net = _TrainOnlyBranch().train()
    net.auxiliary.eval()  # a mixed state must come back as it was
    costs = count_flops(net, (6,), device=device)
    assert costs.macs_M * 1e6 == pytest.approx(36)
    assert net.training and net.main.training and not net.auxiliary.training


def test_falls_back_to_the_module_when_meta_cannot_run():
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum().item() >= 0:  # needs data: impossible on the meta device
                return self.linear(x)
            return x

    net = DataDependent()
    assert count_flops(net, (3,)).macs_M * 1e6 == pytest.approx(12)
    assert net.linear.weight.device.type == "cpu"


def test_costs_as_metrics():
    metrics = count_flops(nn.Linear(10, 5), (10,)).as_metrics()
    assert metrics == pytest.approx({"params_M": 55e-6, "macs_M": 50e-6, "flops_M": 100e-6})
    assert list(metrics) == list(hardware.COST_METRICS)


def test_unknown_device_is_an_error():
    with pytest.raises(InvalidConfigError, match=r"'meta'.*'cpu'"):
        count_flops(nn.Linear(2, 2), (2,), device="cuda")


@pytest.mark.parametrize("shape", [(), (3, 0, 4), (3, -1), (3.0, 32), "abc"])
def test_bad_shape_is_an_error(shape):
    with pytest.raises(InvalidConfigError, match="without the batch dimension"):
        count_flops(nn.Linear(2, 2), shape)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_wrong_input_shape_is_an_error_with_the_shape(device):
    net = NB201Network((1,) * 6, num_classes=10, cells_per_stage=1)
    with pytest.raises(InvalidConfigError, match=r"shape \(1, 32, 32\).*without the batch"):
        count_flops(net, (32, 32), device=device)
