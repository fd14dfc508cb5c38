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


# -- the fast paths compute the builders' operations ------------------------------------------
def _reference_ops(edge: MixedEdge, space: str, width: int, stride: int) -> list[torch.nn.Module]:
    """The edge's operations as the model builders make them (every ReLU in place, PyTorch's
    average pooling), holding the edge's weights."""
    from nasforge.ops import darts as darts_ops
    from nasforge.ops import nb201 as nb201_ops

    ops = []
    for name, op in zip(edge.names, edge.ops, strict=True):
        if space == "nb201":
            ref = nb201_ops.make_op(name, width, affine=False)
        else:
            ref = darts_ops.make_op(name, width, stride, affine=False)
            if "pool" in name:
                ref = torch.nn.Sequential(ref, torch.nn.BatchNorm2d(width, affine=False))
        ref.load_state_dict(op.state_dict())
        ops.append(ref.double())
    return ops


def _reference_edge(
    ops: list[torch.nn.Module],
    x: torch.Tensor,
    w: torch.Tensor,
    k: int,
    stride: int,
    e: torch.Tensor | None,
) -> torch.Tensor:
    """The textbook mixed edge: ``sum_o w_o op_o(x)`` over *every* operation (``none``
    included), on the first ``C / k`` channels, the rest passed (max-pooled at stride 2),
    concatenated, shuffled, times the edge weight."""
    width = x.shape[1] // k
    head, tail = x[:, :width], x[:, width:]
    mixed = sum(w[i] * op(head) for i, op in enumerate(ops))
    if k > 1:
        if stride > 1:
            tail = torch.nn.functional.max_pool2d(tail, 2, 2)
        mixed = channel_shuffle(torch.cat([mixed, tail], dim=1), k)
    return mixed if e is None else mixed * e


@pytest.mark.parametrize(
    ("space", "k", "stride", "edge_weight"),
    [
        ("nb201", 1, 1, False),
        ("nb201", 4, 1, True),
        ("darts", 1, 1, False),
        ("darts", 1, 2, False),
        ("darts", 4, 2, True),
    ],
)
def test_mixed_edge_matches_the_builders_operations_in_value_and_gradient(
    space, k, stride, edge_weight
):
    # the fast paths (none skipped, one shared ReLU, in-place weighted sum, pooling as a
    # convolution, edge weight folded in, one-copy shuffle) compute the same function
    torch.manual_seed(0)
    channels = 8
    if space == "nb201":
        net = NB201Supernet(channels=channels, cells_per_stage=1, partial_channels=k)
        edge = net.cells[0].edges[3]
    else:
        net = DartsSupernet(channels=channels, layers=5, partial_channels=k)
        cell = next(c for c in net.cells if c.reduction == (stride == 2))
        edge = cell.edges[0]
        channels = cell.preprocess1.op[1].out_channels
    assert edge.stride == stride and edge.partial == k
    edge.double()
    ref_ops = _reference_ops(edge, space, channels // k, stride)
    x0 = torch.randn(3, channels, 8, 8, dtype=torch.float64)
    w0 = torch.randn(len(edge.names), dtype=torch.float64).softmax(0)
    e0 = torch.tensor(0.7, dtype=torch.float64) if edge_weight else None
    results = []
    for fast in (True, False):
        x = x0.clone().requires_grad_(True)
        w = w0.clone().requires_grad_(True)
        e = None if e0 is None else e0.clone().requires_grad_(True)
        if fast:
            out = edge(x, w, None, e)
            params = list(edge.parameters())
        else:
            out = _reference_edge(ref_ops, x, w, k, stride, e)
            params = [p for op in ref_ops for p in op.parameters()]
        target = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)
        grads = torch.autograd.grad((out * target).sum(), [x, w, *params, *([e] if e0 else [])])
        results.append((out.detach(), grads))
    (out_fast, g_fast), (out_ref, g_ref) = results
    assert torch.allclose(out_fast, out_ref, atol=1e-10, rtol=1e-8)
    assert len(g_fast) == len(g_ref)
    for a, b in zip(g_fast, g_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-8)
    assert float(g_fast[1][0].abs()) == 0.0  # none: its weight's direct gradient is zero


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(7, 7), (8, 5)])
def test_avg_pool_3x3_equals_pytorch_count_excluding_pooling(stride, size):
    from nasforge.ops.supernet import AvgPool3x3

    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    fast = AvgPool3x3(3, stride).double()(x)
    ref = torch.nn.functional.avg_pool2d(x, 3, stride, 1, count_include_pad=False)
    assert fast.shape == ref.shape and torch.allclose(fast, ref, atol=1e-12)
    g = torch.randn_like(ref)
    (gf,) = torch.autograd.grad(fast, x, g)
    (gr,) = torch.autograd.grad(ref, x, g)
    assert torch.allclose(gf, gr, atol=1e-12)
    assert "kernel" not in AvgPool3x3(3).state_dict()  # checkpoints are unchanged


def test_dense_edge_applies_one_relu_for_all_convolutions(monkeypatch):
    edge = NB201Supernet(channels=4, cells_per_stage=1).cells[0].edges[0]
    assert isinstance(edge.ops[2][0], torch.nn.Identity)  # the conv's ReLU is hoisted
    calls = []
    relu = torch.relu
    monkeypatch.setattr(torch, "relu", lambda t: calls.append(1) or relu(t))
    edge(torch.randn(2, 4, 6, 6), torch.full((5,), 0.2))
    assert len(calls) == 1  # nor_conv_1x1 and nor_conv_3x3 share it
    calls.clear()
    edge(torch.randn(2, 4, 6, 6), None, 3)  # one path: the chosen conv still gets its ReLU
    assert len(calls) == 1


def test_partial_channel_edge_keeps_no_full_width_tensor_for_backward():
    # PC-DARTS's memory saving: with the edge weight live, what the edge keeps for the
    # backward pass beyond its input is at most the mixture's 1/K width
    torch.manual_seed(0)
    k = 4
    edge = NB201Supernet(channels=16, cells_per_stage=1, partial_channels=k).cells[0].edges[0]
    x = torch.randn(4, 16, 8, 8)
    w = torch.randn(5).softmax(0).requires_grad_(True)
    e = torch.tensor(0.5, requires_grad=True)
    sizes: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        sizes[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = edge(x, w, None, e)
    sizes.pop(x.untyped_storage().data_ptr(), None)
    assert sizes and max(sizes.values()) <= x.untyped_storage().nbytes() // k
    out.sum().backward()
    assert e.grad is not None and w.grad is not None
