from __future__ import annotations

import numpy as np
import pytest

from nasforge.proxies import UNDEFINED_SCORE, create

from ._relu import relu_net
from .conftest import linear_net

torch = pytest.importorskip("torch")


def test_nwot_is_the_logdet_of_the_agreement_kernel():
    net, batch, codes, _ = relu_net()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    hamming = np.abs(codes[:, None, :] - codes[None, :, :]).sum(-1)
    assert np.allclose(kernel, codes.shape[1] - hamming)  # N_A minus the Hamming distance
    expected = np.linalg.slogdet(kernel)[1]
    assert create("nwot").score(net, batch) == pytest.approx(expected, rel=1e-9)


def test_no_relu_means_no_codes_and_undefined():
    _, batch, _, _ = relu_net()
    assert create("nwot").score(linear_net(torch.randn(3, 5)), batch) == UNDEFINED_SCORE
