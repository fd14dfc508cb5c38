from __future__ import annotations

import pytest

from nasforge.proxies import create

from ._softmax import softmax_regression
from .conftest import linear_net

torch = pytest.importorskip("torch")


def test_grad_norm_is_the_norm_of_the_loss_gradient():
    net, batch, _, _, _, grad = softmax_regression(2)
    assert create("grad_norm").score(net, batch) == pytest.approx(float(grad.norm()), rel=1e-5)


def test_layer_norms_are_summed_not_pooled():
    net, batch, _, _, _, _ = softmax_regression(3)
    deeper = linear_net(torch.eye(4), net[1].weight.detach())
    score = create("grad_norm").score(deeper, batch)
    out = deeper(batch.inputs)
    torch.nn.functional.cross_entropy(out, batch.targets).backward()
    norms = [float(m.weight.grad.norm()) for m in deeper if isinstance(m, torch.nn.Linear)]
    assert score == pytest.approx(sum(norms), rel=1e-5)
