from __future__ import annotations

import pytest

from nasforge.proxies import create

from ._softmax import softmax_regression

pytest.importorskip("torch")


def test_snip_is_sum_of_abs_gradient_times_weight():
    net, batch, w, _, _, grad = softmax_regression()
    assert create("snip").score(net, batch) == pytest.approx(
        float((grad * w).abs().sum()), rel=1e-5
    )
