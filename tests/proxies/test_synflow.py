from __future__ import annotations

import math

import pytest

from nasforge.proxies import Batch, create

from .conftest import linear_net

torch = pytest.importorskip("torch")


def ones_batch(features: int) -> Batch:
    return Batch(torch.randn(4, 1, 1, features), torch.tensor([0, 1, 0, 1]), num_classes=2)


def test_scalar_chain_is_depth_times_product_of_weights():
    # two width-1 paths 2 * -3 * 0.5 (|.| = 3 each): R = 6, and each of the 3 layers
    # carries the whole flow, so the sum of |theta * dR/dtheta| is 3 * R
    net = linear_net([[2.0]], [[-3.0]], [[0.5], [0.5]])
    expected = 3 * (3.0 + 3.0)
    assert math.exp(create("synflow").score(net, ones_batch(1))) == pytest.approx(expected)


def test_linear_chain_equals_depth_times_sum_of_abs_products():
    w1 = torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.0, 1.0]])
    w2 = torch.tensor([[2.0, -1.0, 0.5], [1.0, 1.0, -1.0]])
    net = linear_net(w1, w2)
    flow = float(torch.ones(2) @ w2.abs() @ w1.abs() @ torch.ones(2))
    assert math.exp(create("synflow").score(net, ones_batch(2))) == pytest.approx(2 * flow)


def test_batch_norm_is_switched_off_and_biases_made_positive():
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2)
    )
    plain = torch.nn.Sequential(net[0], net[1], net[3])
    assert create("synflow").score(net, ones_batch(2)) == pytest.approx(
        create("synflow").score(plain, ones_batch(2))
    )


def test_no_path_scores_zero():
    net = linear_net([[0.0, 0.0]], [[1.0], [1.0]])
    assert create("synflow").score(net, ones_batch(2)) == 0.0
