from __future__ import annotations

import pytest

from nasforge.proxies import create

from ._softmax import softmax_regression

torch = pytest.importorskip("torch")


def test_grasp_is_minus_weight_times_hessian_gradient():
    net, batch, w, x, _, grad = softmax_regression(5)
    y = batch.targets

    def loss(weight):
        return torch.nn.functional.cross_entropy(x @ weight.t(), y)

    _, hg = torch.autograd.functional.hvp(loss, w, grad)
    expected = float((-w * hg).sum())
    assert create("grasp").score(net, batch) == pytest.approx(expected, rel=1e-4, abs=1e-8)
