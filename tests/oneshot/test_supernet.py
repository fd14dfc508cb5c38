"""Supernets: mixed edges compute what the one-shot methods ask of them."""

from __future__ import annotations

import pytest
import torch

from nasforge.errors import InvalidConfigError
from nasforge.ops.supernet import DartsSupernet, MixedEdge, NB201Supernet, channel_shuffle


def _calls(module: torch.nn.Module) -> dict[int, int]:
    """Count forward calls of each operation of every mixed edge (by operation index)."""
    counts: dict[int, int] = {}
    for edge in module.modules():
        if isinstance(edge, MixedEdge):
            for i, op in enumerate(edge.ops):
                op.register_forward_hook(
                    lambda *_, i=i: counts.__setitem__(i, counts.get(i, 0) + 1)
                )
    return counts


def test_dense_forward_runs_every_operation_but_none_and_weights_them():
    net = NB201Supernet(channels=4, cells_per_stage=1)
    counts = _calls(net)
    w = torch.full((6, 5), 0.2, requires_grad=True)
    out = net(torch.randn(2, 3, 8, 8), [w])
    assert out.shape == (2, 10)
    assert 0 not in counts  # the zero operation adds nothing and is skipped
    assert counts == {1: 18, 2: 18, 3: 18, 4: 18}  # 3 cells x 6 edges
    out.sum().backward()
    assert w.grad is not None and bool((w.grad[:, 1:] != 0).any())


def test_one_path_forward_computes_only_the_chosen_operation():
    net = NB201Supernet(channels=4, cells_per_stage=1)
    counts = _calls(net)
    net(torch.randn(2, 3, 8, 8), None, [[3, 3, 2, 3, 1, 4]])
    assert counts == {3: 9, 2: 3, 1: 3, 4: 3}


def test_partial_channels_send_one_kth_through_the_operations():
    torch.manual_seed(0)
    edge = NB201Supernet(channels=8, cells_per_stage=1, partial_channels=4).cells[0].edges[0]
    seen = []
    edge.ops[3].register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[1]))
    x = torch.randn(2, 8, 6, 6)
    w = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0])
    out = edge(x, w)
    assert seen == [2]  # 8 channels / K=4
    # the other 3/4 of the channels pass unchanged, interleaved by the shuffle
    unshuffled = channel_shuffle(out, 2)  # shuffling by C/K groups undoes a K-group shuffle
    assert torch.equal(unshuffled[:, 2:], x[:, 2:])


def test_darts_supernet_partial_channels_and_reduction_shapes():
    net = DartsSupernet(channels=8, layers=5, partial_channels=4)
    w = [torch.full((14, 8), 1 / 8)] * 2
    e = [torch.ones(14)] * 2
    assert net(torch.randn(2, 3, 16, 16), w, None, e).shape == (2, 10)
    with pytest.raises(InvalidConfigError, match="must divide"):
        DartsSupernet(channels=6, layers=5, partial_channels=4)
