"""The DASS space: DARTS cells built from sparse layers (nasforge.spaces.dass), its published
cells and its supernet (nasforge.ops.dass_supernet)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge import spaces
from nasforge.errors import InvalidConfigError, UnknownNameError
from nasforge.ops.sparse import (
    SparseConv2d,
    SparseLinear,
    magnitude_mask,
    prune_magnitude,
    sparse_layers,
    sparsity_of,
)
from nasforge.spaces.darts import GENOTYPES
from nasforge.spaces.dass import DASS_GENOTYPES, SPARSE_OPS, DassSpace


@pytest.fixture(scope="module")
def space() -> DassSpace:
    found = spaces.create("dass")
    assert isinstance(found, DassSpace)
    return found


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_choices_are_darts_and_the_published_cells_read_back(space: DassSpace) -> None:
    darts = spaces.create("darts")
    for name in GENOTYPES:
        assert space.named(name).choices == darts.named(name).choices
        assert space.named(name).space == "dass"
    assert space.size == darts.size
    assert SPARSE_OPS == ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    for name, genotype in DASS_GENOTYPES.items():
        arch = space.named(name)
        assert space.parse(str(arch)) == arch
        assert list(space.to_genotype(arch).normal) == list(genotype.normal)
    assert space.to_genotype(space.named("dass-99")).reduce[-1] == ("skip_connect", 4)
    with pytest.raises(UnknownNameError, match="dass-95"):
        space.named("dass-50")


def test_build_makes_every_layer_sparse_at_the_magnitude_mask(space: DassSpace) -> None:
    arch = space.named("dass-95")
    for sparsity in (0.5, 0.9):
        torch.manual_seed(0)
        net = space.build(arch, channels=4, layers=5, auxiliary=False, sparsity=sparsity)
        layers = _layers(net)
        assert layers and all(isinstance(m, (SparseConv2d, SparseLinear)) for m in layers)
        assert isinstance(net.stem[0], SparseConv2d) and isinstance(net.classifier, SparseLinear)
        for _, m in sparse_layers(net):
            assert m.sparsity == sparsity and not m.scores.requires_grad
            assert torch.equal(m.mask, magnitude_mask(m.weight.detach(), sparsity))
        assert sparsity_of(net) == pytest.approx(sparsity, abs=1e-2)
        assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)
        assert sparsity_of(prune_magnitude(net, sparsity)) == pytest.approx(sparsity, abs=1e-2)
    dense = space.build(arch, channels=4, layers=5, auxiliary=False, sparsity=0.0)
    assert sparsity_of(dense) == 0.0
    with pytest.raises(InvalidConfigError, match=r"0\.5, 0\.75, 0\.9"):
        space.build(arch, channels=4, layers=5, sparsity=0.3)


def test_a_built_network_trains_under_its_fixed_mask(space: DassSpace) -> None:
    torch.manual_seed(1)
    net = space.build(space.named("dass-90"), channels=4, layers=5, auxiliary=False)
    masks = {n: m.mask.clone() for n, m in sparse_layers(net)}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    for _ in range(2):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    for name, m in sparse_layers(net):
        assert torch.equal(m.mask, masks[name]) and m.scores.grad is None
    assert sparsity_of(net) == pytest.approx(0.75, abs=1e-2)


def test_supernet_is_darts_with_sparse_layers(space: DassSpace) -> None:
    torch.manual_seed(0)
    net = space.supernet(channels=2, layers=5, num_classes=3)
    assert net.arch_shapes == ((14, 8), (14, 8))
    layers = _layers(net)
    assert layers and all(isinstance(m, (SparseConv2d, SparseLinear)) for m in layers)
    assert len(net.sparse_layers()) == len(layers) and sparsity_of(net) == 0.0
    weights = [torch.randn(14, 8).softmax(-1) for _ in range(2)]
    assert net(torch.randn(2, 3, 8, 8), weights).shape == (2, 3)
    arch = net.derive(weights)
    assert arch.space == "dass"
    assert space.canonical(net.from_path(net.path(arch))) == space.canonical(arch)
    sparse = space.supernet(channels=2, layers=5, num_classes=3, sparsity=0.9)
    assert sparsity_of(sparse) == pytest.approx(0.9, abs=1e-2)
    extracted = sparse.extract(arch)
    sparse.train(False)
    extracted.train(False)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(extracted(x), sparse(x, None, sparse.path(arch)), atol=1e-6)
    assert sparsity_of(extracted) == pytest.approx(0.9, abs=1e-2)
    with pytest.raises(InvalidConfigError, match=r"0\.5, 0\.75, 0\.9"):
        space.supernet(channels=2, layers=5, sparsity=0.95)
