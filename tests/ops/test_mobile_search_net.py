"""Tests of the mobile supernet (ProxylessNAS's backbone of ``mobilenet``, FBNet's layers)."""

from __future__ import annotations

import pytest
import torch

from nasforge import spaces
from nasforge.errors import (
    InfeasibleConstraintError,
    InvalidArchitectureError,
    InvalidConfigError,
    UnknownNameError,
)
from nasforge.hardware.layer_lut import LayerLatencyTable
from nasforge.ops.mobile_search_net import (
    FBNetSearchNet,
    MobileNetSearchNet,
    resolve_table,
)
from nasforge.ops.mobile_supernet import binarize

SMALL = {"width_mult": 0.25, "resolution": 32, "stem_stride": 1, "first_stride": 1}


def synthetic_table(net, skip=()):
    """A deterministic table: each layer's cost grows with its kernel, expansion and size."""
    entries = {
        s.key: 1e-6 * s.kernel**2 * s.expansion * (s.in_channels + s.out_channels) * s.resolution**2
        + 0.01
        for s in net.all_specs()
        if s.key not in skip
    }
    return LayerLatencyTable(entries, fixed_ms=0.25, backend="torch")


@pytest.fixture(scope="module", params=["mobilenet", "fbnet"])
def net(request):
    space = spaces.create(request.param)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        supernet = space.supernet(num_classes=10, **SMALL)
        # give the batch norms statistics of their own, so eval mode is not the identity
        generator = torch.Generator().manual_seed(1)
        supernet.train()
        with torch.no_grad():
            for _ in range(3):
                index = random_path(supernet, generator)
                supernet(torch.randn(4, 3, 32, 32), None, index)
    supernet.eval()
    return supernet


def random_path(net, generator):
    return [torch.randint(n, (rows,), generator=generator).tolist() for rows, n in net.arch_shapes]


def test_groups_are_the_papers_candidates(net):
    if isinstance(net, MobileNetSearchNet):
        # ProxylessNAS: k{3,5,7} x e{3,6}, + zero after the first block of a stage
        assert [(g.name, len(g.options)) for g in net.groups] == [("first", 6), ("block", 7)]
        assert net.groups[1].options[-1] == "zero"
        assert [g.rows for g in net.groups] == [6, 15]  # depths 4, 4, 4, 4, 4, 1
    else:
        assert [(g.name, g.rows, len(g.options)) for g in net.groups] == [("layer", 22, 9)]


@pytest.mark.parametrize("seed", range(4))
def test_extracted_network_equals_the_supernet_path(net, seed):
    generator = torch.Generator().manual_seed(seed)
    index = random_path(net, generator)
    arch = net.from_path(index)
    extracted = net.extract(arch)
    assert not extracted.training
    x = torch.randn(3, 3, 32, 32, generator=generator)
    with torch.no_grad():
        diff = (extracted(x) - net(x, None, index)).abs().max()
    assert float(diff) <= 1e-5
    # the derived architecture is a point of the space: space.build gives the same layers
    space = net.space
    built = space.build(arch, **net.build_settings)
    assert [s.key for s in built.specs] == [s.key for s in extracted.specs]
    assert tuple(built.specs) == net.specs(index)
    assert sum(p.numel() for p in built.parameters()) == sum(
        p.numel() for p in extracted.parameters()
    )
    assert net.path(arch) == index and net.contains(arch)


def test_zero_layers_remove_their_block():
    space = spaces.create("mobilenet")
    net = MobileNetSearchNet(space, num_classes=10, **SMALL)
    full = [[0] * rows for rows, _ in net.arch_shapes]
    zero = [list(full[0]), [6] * net.groups[1].rows]  # every non-first block the zero layer
    assert len(net.specs(full)) - len(net.specs(zero)) == net.groups[1].rows
    arch = net.from_path(zero)
    assert "skip:" in str(arch)
    assert len(space.layers(arch, **net.build_settings)) == len(net.specs(zero))
    assert net.extract(arch).num_blocks == 1 + 6  # stage 0's block + one per stage


def test_mixing_forms_agree_with_the_one_path_value(net):
    generator = torch.Generator().manual_seed(5)
    index = random_path(net, generator)
    x = torch.randn(2, 3, 32, 32, generator=generator)
    onehot = [
        torch.nn.functional.one_hot(torch.tensor(rows), n).float()
        for rows, (_, n) in zip(index, net.arch_shapes, strict=True)
    ]
    with torch.no_grad():
        path = net(x, None, index)
        assert torch.allclose(net(x, onehot), path, atol=1e-5)  # dense
        assert torch.allclose(net(x, onehot, index), path, atol=1e-5)  # straight-through
    # binarized gates: the value is the active path's
    alphas = [torch.zeros(shape, requires_grad=True) for shape in net.arch_shapes]
    gates = [[binarize(row, generator) for row in a] for a in alphas]
    active = [[gate.active for gate in rows] for rows in gates]
    out = net(x, None, gates)
    assert torch.allclose(out, net(x, None, active), atol=1e-5)
    out.sum().backward()
    for a, rows in zip(alphas, gates, strict=True):
        for r, gate in enumerate(rows):
            touched = set(torch.nonzero(a.grad[r]).flatten().tolist())
            assert touched <= set(gate.sampled)


def test_latency_of_a_path_is_the_tables_prediction(net):
    table = synthetic_table(net)
    rows, fixed = net.candidate_latency(table)
    generator = torch.Generator().manual_seed(2)
    for _ in range(3):
        index = random_path(net, generator)
        arch = net.from_path(index)
        chosen = fixed + sum(
            float(t[r, i]) for t, row in zip(rows, index, strict=True) for r, i in enumerate(row)
        )
        predicted = table.predict(net.space.layers(arch, **net.build_settings))
        assert chosen == pytest.approx(predicted, rel=1e-5)
    low, high = net.latency_range(table)
    fastest = [t.argmin(dim=-1).tolist() for t in rows]
    assert low == pytest.approx(table.predict(net.specs(fastest)), rel=1e-5)
    assert low < high
    net.check_target(table, low * 1.01)
    with pytest.raises(InfeasibleConstraintError, match="fastest reachable is"):
        net.check_target(table, low * 0.5)


def test_a_table_missing_a_candidate_names_the_layer(net):
    spec = net.layers[3].specs[1]
    table = synthetic_table(net, skip={spec.key})
    with pytest.raises(InvalidConfigError, match="no entry for the layer"):
        net.candidate_latency(table)
    with pytest.raises(InvalidConfigError, match=spec.key.replace("+", r"\+")):
        resolve_table(net, table)
    with pytest.raises(InvalidConfigError, match="LayerLatencyTable"):
        resolve_table(net, 3.0)


def test_bad_settings_are_refused():
    mobilenet, fbnet = spaces.create("mobilenet"), spaces.create("fbnet")
    with pytest.raises(UnknownNameError, match="proxylessnas-mobile"):
        MobileNetSearchNet(mobilenet, backbone="resnet50")
    with pytest.raises(InvalidConfigError, match="kernels"):
        MobileNetSearchNet(mobilenet, kernels=(3, 4), **SMALL)
    with pytest.raises(InvalidConfigError, match="depths"):
        MobileNetSearchNet(mobilenet, depths=(4, 4, 4, 4, 4), **SMALL)
    with pytest.raises(InvalidConfigError, match="head"):
        FBNetSearchNet(fbnet, head=1000, **SMALL)
    with pytest.raises(InvalidConfigError, match="resolution"):
        MobileNetSearchNet(mobilenet, width_mult=0.25, resolution=30)
    with pytest.raises(TypeError, match="partial_channels"):
        mobilenet.supernet(partial_channels=4, **SMALL)
    net = MobileNetSearchNet(mobilenet, num_classes=10, **SMALL)
    with pytest.raises(InvalidConfigError, match="one option per row"):
        net.specs([[0] * 6])
    with pytest.raises(InvalidConfigError, match="path"):
        net(torch.zeros(1, 3, 32, 32))
    # MobileNetV2's widths are not the ProxylessNAS backbone's: not a network of it
    with pytest.raises(InvalidArchitectureError, match="not a network of this supernet"):
        net.extract(mobilenet.named("mobilenetv2"))


def test_a_table_read_from_its_csv_serves_the_supernet(net, tmp_path):
    table = synthetic_table(net)
    path = table.to_csv(tmp_path / "cpu-torch.csv")
    read = resolve_table(net, path)
    assert read.entries == table.entries
    assert net.latency_range(read) == pytest.approx(net.latency_range(table))
    (tmp_path / "bad.csv").write_text("key,latency_ms\nfixed,0\n")
    with pytest.raises(InvalidConfigError, match="lacks the column"):
        resolve_table(net, tmp_path / "bad.csv")
