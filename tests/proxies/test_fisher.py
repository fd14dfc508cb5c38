from __future__ import annotations

import pytest

from nasforge.proxies import create

from ._softmax import softmax_regression

pytest.importorskip("torch")


def test_fisher_of_the_output_channels_times_fan_in():
    net, batch, w, x, dz, _ = softmax_regression(4)
    act = x @ w.t()  # the layer's output, per sample and channel
    per_channel = 0.5 * (act * dz).pow(2).mean(0)
    expected = float(per_channel.sum()) * 4  # each channel is fed by 4 weights
    assert create("fisher").score(net, batch) == pytest.approx(expected, rel=1e-5)
