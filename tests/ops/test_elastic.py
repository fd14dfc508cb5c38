"""The elastic supernet of the ofa spaces: exact extraction of random sub-networks, the
kernel transformation, elastic depth and expansion, channel sorting, block-wise forward,
sampling restrictions and bad input (a tiny ofa-cifar supernet, width 0.25)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from nasforge import spaces
from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.ops.elastic import ElasticMobileNet, resize_images
from nasforge.ops.elastic_layers import DynamicBatchNorm2d, ElasticMBConv
from nasforge.ops.mobile import MBConv, expanded_channels, make_divisible

SPACE = spaces.create("ofa-cifar")


def _randomise(net: ElasticMobileNet, seed: int = 0) -> None:
    """Batch-norm statistics and affine parameters, transformation matrices and the
    classifier moved away from their initial values, so that a wrong slice shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in net.bn_modules():
            bn.running_mean.normal_(0.0, 0.3, generator=g)
            bn.running_var.uniform_(0.5, 2.0, generator=g)
            bn.weight.uniform_(0.5, 1.5, generator=g)
            bn.bias.normal_(0.0, 0.3, generator=g)
        for block in net.elastic_blocks():
            for matrix in block.transforms.values():
                matrix.add_(0.2 * torch.randn(matrix.shape, generator=g))
            for conv in (block.se_reduce, block.se_expand):
                if conv is not None:
                    conv.bias.normal_(0.0, 0.3, generator=g)
        for linear in (net.head.hidden[0], net.head.classifier):
            linear.weight.normal_(0.0, 0.3, generator=g)


@pytest.fixture(scope="module")
def net() -> ElasticMobileNet:
    torch.manual_seed(0)
    supernet = SPACE.supernet(width_mult=0.25)
    _randomise(supernet)
    return supernet.eval()


def _input(side: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(seed))


def test_extraction_is_exact_on_100_random_subnetworks(net):
    rng = np.random.default_rng(0)
    x16 = _input(16)
    worst, outputs = 0.0, []
    with torch.no_grad():
        for _ in range(100):
            arch = net.sample(rng)
            net.set_active(arch)
            x = resize_images(x16, net.active_resolution)
            sub = net.extract()
            assert isinstance(sub, torch.nn.Module) and not sub.training
            assert [s.kind for s in sub.specs].count("mbconv") == 1 + sum(
                SPACE.values(arch)[f"s{i}_depth"] for i in range(1, 6)
            )
            expected = net(x)
            worst = max(worst, float((sub(x) - expected).abs().max()))
            outputs.append(expected)
    assert worst <= 1e-5
    # the outputs differ between sub-networks, so the comparison above can fail
    assert min(float((a - outputs[0]).abs().max()) for a in outputs[1:]) > 1e-3


def test_extract_of_a_given_arch_leaves_the_active_one(net):
    rng = np.random.default_rng(1)
    active, other = net.sample(rng), net.sample(rng)
    net.set_active(active)
    sub = net.extract(str(other))
    assert net.active == active
    x = _input(SPACE.resolution(other), seed=1)
    net.set_active(other)
    with torch.no_grad():
        assert float((sub(x) - net(x)).abs().max()) <= 1e-5


def test_kernel_transformation_starts_as_the_centre_crop():
    torch.manual_seed(1)
    block = ElasticMBConv(8, 8, 1, se=True, act="relu", kernels=(3, 5, 7), expansions=(3, 4, 6))
    mid = expanded_channels(8, 4)
    weight = block.depthwise_conv.weight[:mid].detach()
    assert torch.equal(block.kernel_weight(7, mid), weight)
    assert torch.equal(block.kernel_weight(5, mid), weight[:, :, 1:6, 1:6])
    assert torch.equal(block.kernel_weight(3, mid), weight[:, :, 2:5, 2:5])
    # away from identity: 5 = M75 applied to the 5x5 centre; 3 = M53 applied to the centre of
    # the transformed 5x5 kernel (not of the original one)
    with torch.no_grad():
        for matrix in block.transforms.values():
            matrix.copy_(torch.randn(matrix.shape))
    m75, m53 = block.transforms["7to5"], block.transforms["5to3"]
    five = (weight[:, :, 1:6, 1:6].reshape(mid, 25) @ m75.T).reshape(mid, 1, 5, 5)
    three = (five[:, :, 1:4, 1:4].reshape(mid, 9) @ m53.T).reshape(mid, 1, 3, 3)
    assert torch.allclose(block.kernel_weight(5, mid), five, atol=1e-6)
    assert torch.allclose(block.kernel_weight(3, mid), three, atol=1e-6)
    assert not torch.allclose(three, weight[:, :, 2:5, 2:5] @ torch.eye(3), atol=1e-3)
    block.reset_transforms()
    assert torch.equal(block.kernel_weight(3, mid), weight[:, :, 2:5, 2:5])


def test_the_matrices_start_as_identity_and_learn_through_small_kernels():
    torch.manual_seed(2)
    sup = SPACE.supernet(width_mult=0.25)
    block = sup.elastic_blocks()[0]
    assert set(block.transforms) == {"7to5", "5to3"}
    assert torch.equal(block.transforms["7to5"], torch.eye(25))
    assert torch.equal(block.transforms["5to3"], torch.eye(9))
    sup.set_active(sup.sample(np.random.default_rng(0), kernels=[3], depths=[4]))
    sup(_input(SPACE.resolution(sup.active))).sum().backward()
    assert block.transforms["5to3"].grad is not None
    assert block.transforms["7to5"].grad.abs().sum() > 0
    sup.zero_grad()
    sup.set_active(sup.largest())
    sup(_input(32)).sum().backward()
    assert block.transforms["7to5"].grad is None or block.transforms["7to5"].grad.abs().sum() == 0


def test_a_stage_of_depth_d_runs_its_first_d_blocks(net):
    calls: list[tuple[int, int]] = []
    handles = [
        block.register_forward_hook(lambda *_, key=(s, b): calls.append(key))
        for s, stage in enumerate(net.stages, start=1)
        for b, block in enumerate(stage)
    ]
    try:
        rng = np.random.default_rng(2)
        for _ in range(5):
            arch = net.sample(rng)
            net.set_active(arch)
            calls.clear()
            with torch.no_grad():
                net(_input(net.active_resolution))
            values = SPACE.values(arch)
            expected = [(s, b) for s in range(1, 6) for b in range(values[f"s{s}_depth"])]
            assert calls == expected
    finally:
        for handle in handles:
            handle.remove()


def test_elastic_expansion_takes_the_first_channels_and_the_active_se_width(net):
    arch = SPACE.parse("res=16;s1=e3k3,e3k3;s2=e4k3,e6k3;s3=e3k3,e3k3;s4=e3k3,e3k3;s5=e3k3,e3k3")
    net.set_active(arch)
    block = net.stages[1][0]  # stage 2's first block, with squeeze-and-excitation
    mid = expanded_channels(block.in_channels, 4)
    assert block.active_mid == mid < block.max_mid
    assert block.active_squeezed == make_divisible(mid / 4)
    sub = net.extract()
    mbconv = sub.layers[4]
    assert isinstance(mbconv, MBConv) and mbconv.spec.mid_channels == mid
    assert mbconv.se.reduce.out_channels == make_divisible(mid / 4)


def test_training_mode_updates_only_the_active_channels_running_statistics():
    torch.manual_seed(3)
    sup = SPACE.supernet(width_mult=0.25)
    sup.set_active(sup.smallest())
    block = sup.elastic_blocks()[0]
    mid = block.active_mid
    before = block.expand_bn.running_mean.clone()
    sup.train()(_input(16))
    after = block.expand_bn.running_mean
    assert not torch.equal(after[:mid], before[:mid])
    assert torch.equal(after[mid:], before[mid:])
    assert all(isinstance(bn, torch.nn.BatchNorm2d) for bn in sup.bn_modules())
    assert sum(isinstance(bn, DynamicBatchNorm2d) for bn in sup.bn_modules()) == 20 * 3


def test_dynamic_batch_norm_follows_batch_norm_at_full_width():
    torch.manual_seed(4)
    dynamic, plain = DynamicBatchNorm2d(6, momentum=None), torch.nn.BatchNorm2d(6, momentum=None)
    for _ in range(3):
        x = torch.randn(4, 6, 3, 3)
        assert torch.allclose(dynamic(x), plain(x), atol=1e-6)
    assert torch.allclose(dynamic.running_var, plain.running_var, atol=1e-6)
    assert int(dynamic.num_batches_tracked) == 3


def test_reorder_channels_keeps_the_largest_network_and_sorts_importance(net):
    sup = copy.deepcopy(net)
    sup.set_active(sup.largest())
    x = _input(32, seed=3)
    with torch.no_grad():
        before = sup(x)
    unsorted = [
        not torch.all(b.channel_importance()[:-1] >= b.channel_importance()[1:])
        for b in sup.elastic_blocks()
    ]
    assert any(unsorted)
    small = sup.sample(np.random.default_rng(4), expansions=[3])
    sup.set_active(small)
    with torch.no_grad():
        small_before = sup(_input(SPACE.resolution(small)))
    sup.reorder_channels()
    for block in sup.elastic_blocks():
        importance = block.channel_importance()
        assert torch.all(importance[:-1] >= importance[1:])
        if block.se_expand is not None:
            se = block.se_expand.weight.abs().sum(dim=(0, 2, 3))
            assert torch.all(se[:-1] >= se[1:])
    with torch.no_grad():
        assert not torch.allclose(sup(_input(SPACE.resolution(small))), small_before)
        sup.set_active(sup.largest())
        assert float((sup(x) - before).abs().max()) <= 1e-5


def test_reorder_channels_at_a_later_stage_keeps_the_groups_of_wider_expansions():
    torch.manual_seed(5)
    sup = SPACE.supernet(width_mult=0.25)
    block = sup.elastic_blocks()[3]
    widths = [expanded_channels(block.in_channels, e) for e in (6, 4, 3)]
    tagged = block.project_conv.weight.detach().clone()
    sup.reorder_channels(expand_stage=1)
    # the channels of expansion 4 are still the first ones (as a set), sorted among themselves
    kept = {tuple(c.flatten().tolist()) for c in tagged.transpose(0, 1)[: widths[1]]}
    now = block.project_conv.weight.detach().transpose(0, 1)
    assert {tuple(c.flatten().tolist()) for c in now[: widths[1]]} == kept
    importance = block.channel_importance()[: widths[1]]
    assert torch.all(importance[:-1] >= importance[1:])
    with pytest.raises(InvalidConfigError, match=r"0\.\.2"):
        sup.reorder_channels(expand_stage=3)


def test_forward_blocks_compose_to_forward_and_block_shapes_match(net):
    rng = np.random.default_rng(5)
    for _ in range(4):
        net.set_active(net.sample(rng))
        side = net.active_resolution
        x = _input(side, seed=6)
        with torch.no_grad():
            out = x
            for index in range(net.num_blocks):
                out = net.forward_block(index, out)
                assert tuple(out.shape[1:]) == net.block_shape(index, side)
            assert torch.equal(out, net(x))
    assert net.num_blocks == 7
    assert net.block_shape(0, 32) == (make_divisible(16 * 0.25), 32, 32)
    assert net.block_shape(5, 32) == (make_divisible(160 * 0.25), 4, 4)
    assert net.block_shape(6, 32) == (10,)


def test_sample_respects_restrictions_and_draws_every_option(net):
    rng = np.random.default_rng(6)
    for _ in range(30):
        arch = net.sample(rng, resolutions=[24], depths=[2, 3], kernels=[5], expansions=[4, 6])
        values = SPACE.values(arch)
        assert values["resolution"] == 24
        for s in range(1, 6):
            depth = values[f"s{s}_depth"]
            assert depth in (2, 3)
            for b in range(depth):
                assert values[f"s{s}b{b}_kernel"] == 5
                assert values[f"s{s}b{b}_expansion"] in (4, 6)
        assert SPACE.canonical(arch) == arch
    seen = {SPACE.values(net.sample(rng))["s3b0_kernel"] for _ in range(40)}
    assert seen == {3, 5, 7}
    first = [net.sample(np.random.default_rng(7)) for _ in range(2)]
    assert first[0] == first[1]
    assert net.largest() == SPACE.largest() and net.smallest() == SPACE.smallest()


def test_settings_rebuild_the_same_supernet(net):
    again = ElasticMobileNet(SPACE, **json.loads(json.dumps(net.settings)))
    shapes = {k: v.shape for k, v in again.state_dict().items()}
    assert shapes == {k: v.shape for k, v in net.state_dict().items()}
    again.load_state_dict(net.state_dict())
    twin = copy.deepcopy(net)  # few-shot's sub-supernets are copies: their blocks are their own
    own = [block for stage in twin.stages for block in stage]
    assert all(a is b for a, b in zip(twin.elastic_blocks(), own, strict=True))
    assert not any(a is b for a, b in zip(twin.elastic_blocks(), net.elastic_blocks(), strict=True))


def test_bad_input_is_refused_clearly(net):
    mobile = spaces.create("mobilenet").named("mobilenetv2")
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'mobilenet'"):
        net.set_active(mobile)
    with pytest.raises(InvalidArchitectureError, match="ofa-cifar architecture"):
        net.set_active("res=32;s1=nonsense")
    with pytest.raises(InvalidArchitectureError, match="belongs to space 'ofa'"):
        net.extract(spaces.create("ofa").largest())
    with pytest.raises(InvalidConfigError, match=r"\[9\] not options.*valid kernels: 3, 5, 7"):
        net.sample(np.random.default_rng(0), kernels=[9])
    with pytest.raises(InvalidConfigError, match="valid resolutions: 16, 24, 32"):
        net.sample(np.random.default_rng(0), resolutions=[224])
    with pytest.raises(InvalidConfigError, match="no option"):
        net.sample(np.random.default_rng(0), depths=[])
    with pytest.raises(InvalidConfigError, match=r"blocks 0\.\.6"):
        net.forward_block(7, _input(16))
    with pytest.raises(InvalidConfigError, match="'ofa' space"):
        ElasticMobileNet(spaces.create("mobilenet"))
    with pytest.raises(InvalidConfigError, match="width_mult"):
        SPACE.supernet(width_mult=-1)
