from __future__ import annotations

import pytest

from nasforge.proxies import create

from .conftest import linear_net

torch = pytest.importorskip("torch")


def test_sum_of_layer_norms(batch):
    net = linear_net([[3.0, 4.0]], [[1.0], [0.0]], bias=True)
    net.add_module("bn", torch.nn.BatchNorm1d(2))  # batch norm weights do not count
    flat = batch.inputs[:, :1, :1, :2]
    from nasforge.proxies import Batch

    assert create("l2_norm").score(net, Batch(flat, batch.targets % 2, 2)) == pytest.approx(6.0)
