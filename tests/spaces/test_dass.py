"""The DASS space: DARTS cells with sparse operations (nasforge.spaces.dass) and its supernet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nasforge import spaces
from nasforge.errors import InvalidArchitectureError, InvalidConfigError
from nasforge.ops.sparse import MaskedConv2d, masked_layers, prune_magnitude, sparsity_of
from nasforge.spaces.darts import GENOTYPES, Genotype
from nasforge.spaces.dass import DASS_GENOTYPE_OPS, SIZE, SPARSE_OPS, DassSpace


@pytest.fixture(scope="module")
def space() -> DassSpace:
    found = spaces.create("dass")
    assert isinstance(found, DassSpace)
    return found


def _with_sparse(space: DassSpace) -> tuple[str, object]:
    text = str(space.named("darts-v2"))
    text = text.replace("sep_conv_3x3~1", "sparse_sep_conv_3x3~1", 1)
    text = text.replace("dil_conv_3x3~2", "sparse_dil_conv_3x3~2")
    return text, space.parse(text)


def test_darts_genotypes_are_dass_architectures(space: DassSpace) -> None:
    darts = spaces.create("darts")
    for name in GENOTYPES:
        assert space.named(name).choices == darts.named(name).choices
        assert str(space.named(name)) == str(darts.named(name))
    assert space.size == SIZE == (2880 * 11**8) ** 2
    assert DASS_GENOTYPE_OPS[7:] == SPARSE_OPS


def test_text_with_sparse_operations_reads_back(space: DassSpace) -> None:
    text, arch = _with_sparse(space)
    assert str(arch) == text
    assert arch.choices[3] == DASS_GENOTYPE_OPS.index("sparse_sep_conv_3x3")
    assert arch.choices[15] == DASS_GENOTYPE_OPS.index("sparse_dil_conv_3x3")
    assert space.parse(str(arch)) == arch
    assert space.from_choices(arch.choices) == arch
    genotype = space.to_genotype(arch)
    assert genotype.normal[1] == ("sparse_sep_conv_3x3", 1)
    assert space.parse(repr(genotype)) == arch
    assert space.from_genotype(genotype) == arch
    nested = Genotype(
        normal=[genotype.normal[i : i + 2] for i in range(0, 8, 2)],
        normal_concat=[2, 3, 4, 5],
        reduce=genotype.reduce,
        reduce_concat=range(2, 6),
    )
    assert space.from_genotype(nested) == arch


def test_bad_operations_are_refused_with_the_dass_list(space: DassSpace) -> None:
    text, _ = _with_sparse(space)
    with pytest.raises(InvalidArchitectureError, match="sparse_dil_conv_5x5"):
        space.parse(text.replace("max_pool_3x3~0", "sparse_max_pool_3x3~0"))
    with pytest.raises(InvalidArchitectureError, match=r"valid indices are 0\.\.10"):
        space.from_choices([0, 11] + [0, 3, 1, 3] * 7 + [1, 3])
    with pytest.raises(InvalidArchitectureError, match="Unknown DASS operation 'conv'"):
        space.parse(text.replace("sep_conv_3x3~0", "conv~0", 1))
    with pytest.raises(InvalidArchitectureError, match="must differ"):
        space.parse(text.replace("sep_conv_3x3~0,sparse", "sep_conv_3x3~1,sparse", 1))


def test_moves_cover_the_eleven_operations(space: DassSpace) -> None:
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(30)]
    ops = {op for arch in archs for op in arch.choices[1::2]}
    assert ops == set(range(11))
    _, arch = _with_sparse(space)
    neighbours = space.neighbours(arch)
    assert len(neighbours) == 184 and len(set(neighbours)) == 184
    assert all(space.parse(str(n)) == n for n in neighbours[:20])
    mutated = space.mutate(arch, rng)
    assert mutated != arch and mutated.space == "dass"
    assert space.mutate(arch, rng, rate=1.0).space == "dass"
    assert space.encode(arch).shape == (308,) and space.encode(arch).sum() == 16
    swapped = space.parse(
        str(arch).replace(
            "sep_conv_3x3~0,sparse_sep_conv_3x3~1", "sparse_sep_conv_3x3~1,sep_conv_3x3~0"
        )
    )
    assert swapped != arch and space.canonical(swapped) == space.canonical(arch)


def test_sparse_operations_build_at_their_sparsity(space: DassSpace) -> None:
    _, arch = _with_sparse(space)
    flags = space.sparse_edges(arch)
    assert flags[0][1] and flags[0][7] and sum(flags[0]) == 2 and not any(flags[1])
    for sparsity in (0.5, 0.9):
        torch.manual_seed(0)
        net = space.build(arch, channels=4, layers=5, auxiliary=False, sparsity=sparsity)
        for cell in net.cells:
            for position, op in enumerate(cell._ops):
                convs = [m for m in op.modules() if isinstance(m, nn.Conv2d)]
                sparse = not cell.reduction and position in (1, 7)
                assert all(isinstance(m, MaskedConv2d) == sparse for m in convs)
                for m in convs:
                    if sparse:
                        zeros = int((m.masked_weight() == 0).sum())
                        assert zeros == round(sparsity * m.weight.numel())
                        assert m.sparsity == sparsity
        assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
        pruned = prune_magnitude(net, sparsity)
        assert sparsity_of(pruned) == pytest.approx(sparsity, abs=2e-3)
    with pytest.raises(InvalidConfigError, match=r"0\.5, 0\.75, 0\.9"):
        space.build(arch, channels=4, layers=5, sparsity=0.3)


def test_supernet_mixes_twelve_options_with_masked_sparse_ones(space: DassSpace) -> None:
    torch.manual_seed(0)
    net = space.supernet(channels=4, layers=5, num_classes=3, sparsity=0.9)
    assert net.arch_shapes == ((14, 12), (14, 12))
    layers = net.sparse_layers()
    assert layers and len(layers) == len(masked_layers(net))
    assert all(m.sparsity == 0.9 for _, m in layers)
    assert sparsity_of(net) == pytest.approx(0.9, abs=2e-3)
    weights = [torch.randn(14, 12).softmax(-1) for _ in range(2)]
    assert net(torch.randn(2, 3, 8, 8), weights).shape == (2, 3)
    arch = net.derive(weights)
    assert arch.space == "dass"
    assert space.canonical(net.from_path(net.path(arch))) == space.canonical(arch)
    genotype = space.to_genotype(arch)
    assert net.operations(arch) == [name for name, _ in (*genotype.normal, *genotype.reduce)]
    extracted = net.extract(arch)
    net.train(False)
    extracted.train(False)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(extracted(x), net(x, None, net.path(arch)), atol=1e-6)
    with pytest.raises(InvalidConfigError, match=r"0\.5, 0\.75, 0\.9"):
        space.supernet(channels=4, layers=5, sparsity=0.95)
