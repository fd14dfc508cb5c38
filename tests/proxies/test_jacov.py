from __future__ import annotations

import numpy as np
import pytest

from nasforge.proxies import UNDEFINED_SCORE, create

from ._relu import relu_net
from .conftest import linear_net

torch = pytest.importorskip("torch")


def test_jacov_from_the_eigenvalues_of_the_jacobian_correlation():
    net, batch, _, jacobian = relu_net()
    values = np.linalg.eigvalsh(np.corrcoef(jacobian))
    expected = -np.sum(np.log(values + 1e-5) + 1 / (values + 1e-5))
    assert create("jacov").score(net, batch) == pytest.approx(expected, rel=1e-4)


def test_identical_gradients_score_as_the_worst_correlation():
    # a linear network gives every image the same input gradient: the correlation matrix is
    # all ones, with eigenvalues n and n - 1 zeros
    net = linear_net(torch.randn(3, 5))
    _, batch, _, _ = relu_net()
    n, k = batch.size, 1e-5
    expected = -((n - 1) * (np.log(k) + 1 / k) + np.log(n + k) + 1 / (n + k))
    assert create("jacov").score(net, batch) == pytest.approx(expected, rel=1e-6)


def test_constant_gradients_are_undefined():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(5, 3))
    with torch.no_grad():
        net[1].weight.zero_()
    _, batch, _, _ = relu_net()
    assert create("jacov").score(net, batch) == UNDEFINED_SCORE
