from __future__ import annotations

import numpy as np
import pytest

from nasforge.proxies import create

from ._relu import relu_net

pytest.importorskip("torch")


def test_sum_over_classes_of_abs_log_correlations():
    net, batch, _, jacobian = relu_net(n=9)
    labels = batch.targets.numpy()
    expected = 0.0
    for c in range(3):
        corr = np.corrcoef(jacobian[labels == c])
        expected += abs(np.sum(np.log(np.abs(corr) + 1e-5)))
    assert create("epe_nas").score(net, batch) == pytest.approx(expected, rel=1e-6)


def test_more_than_100_classes_use_pairwise_differences():
    net, batch, _, jacobian = relu_net(n=8, classes=101)
    labels = batch.targets.numpy()
    s = []
    for c in sorted(set(labels.tolist())):
        rows = jacobian[labels == c]
        if len(rows) == 1:
            s.append(np.log(1 + 1e-5))
        else:
            corr = np.corrcoef(rows)
            s.append(np.sum(np.log(np.abs(corr) + 1e-5)) / len(corr))
    s = np.array(s)
    expected = np.abs(s[:, None] - s[None, :]).sum() / len(s)
    assert create("epe_nas").score(net, batch) == pytest.approx(expected, rel=1e-6)
