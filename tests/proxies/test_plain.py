from __future__ import annotations

import pytest

from nasforge.proxies import create

from ._softmax import softmax_regression

pytest.importorskip("torch")


def test_plain_is_signed_sum_of_gradient_times_weight():
    net, batch, w, _, _, grad = softmax_regression(1)
    expected = float((grad * w).sum())
    assert create("plain").score(net, batch) == pytest.approx(expected, rel=1e-5, abs=1e-7)
