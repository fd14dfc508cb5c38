from __future__ import annotations

import numpy as np
import pytest

from nasforge.errors import InvalidConfigError
from nasforge.proxies.combined import CombinedProxy
from nasforge.proxies.scores import ProxyScores, spearman


def make(nb201, n=300, seed=0):
    rng = np.random.default_rng(seed)
    archs = tuple(nb201.from_index(i) for i in range(n))
    truth = rng.normal(size=n)
    # two noisy proxies and one that measures nothing; one heavy-tailed with undefined values
    good = np.exp(3 * (truth + rng.normal(scale=0.8, size=n)))
    good[:5] = -1e8
    other = truth + rng.normal(scale=0.8, size=n)
    noise = rng.normal(size=n)
    return ProxyScores(archs, ("good", "other", "noise"), np.c_[good, other, noise]), truth


def test_learned_combination_beats_every_single_proxy(nb201):
    scores, truth = make(nb201)
    labels = {scores.archs[i]: truth[i] for i in range(40)}
    combo = CombinedProxy().fit(scores, labels)
    assert combo.result.n_labelled == 40
    best_single = max(spearman(scores.values[:, j], truth) for j in range(3))
    assert spearman(combo.predict(scores), truth) > best_single + 0.02
    assert abs(combo.result.weights["noise"]) < abs(combo.result.weights["other"])


def test_encoding_features(nb201):
    scores, truth = make(nb201, n=100)
    labels = {scores.archs[i]: truth[i] for i in range(30)}
    combo = CombinedProxy(["other"], encoding="onehot", space=nb201).fit(scores, labels)
    assert combo.features(scores).shape == (100, 31)


def test_bad_input(nb201):
    scores, _ = make(nb201, n=10)
    with pytest.raises(InvalidConfigError, match="at least 3"):
        CombinedProxy().fit(scores, {scores.archs[0]: 1.0})
    with pytest.raises(InvalidConfigError, match="not in the score table"):
        CombinedProxy().fit(scores, {nb201.from_index(i): 1.0 for i in range(500, 505)})
    with pytest.raises(InvalidConfigError, match="before predict"):
        CombinedProxy().predict(scores)
    with pytest.raises(InvalidConfigError, match="space="):
        CombinedProxy(encoding="onehot")


@pytest.mark.shared_data
def test_combined_proxy_on_the_reference_table(shared_nb201, bench):
    from nasforge.proxies.scores import read_reference

    table = read_reference(shared_nb201 / "nb201_zero_cost_proxies.csv.gz")
    valid = np.array([bench.query(a, "cifar10", "valid_acc") for a in table.archs])
    test = np.array([bench.query(a, "cifar10", "test_acc") for a in table.archs])
    rows = np.random.default_rng(0).choice(len(table), size=100, replace=False)
    combo = CombinedProxy().fit(table, {table.archs[i]: valid[i] for i in rows})
    best_single = max(spearman(table.values[:, j], test) for j in range(len(table.names)))
    assert spearman(combo.predict(table), test) >= max(0.85, best_single)
