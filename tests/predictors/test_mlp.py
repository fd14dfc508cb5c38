"""The NumPy MLP ensemble learns, is seeded, reports spread, and fine-tunes from a warm start."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.errors import InvalidConfigError
from nasforge.predictors import MLPEnsemble


def data(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, 6))
    return X, np.sin(3 * X[:, 0]) + X[:, 1] ** 2 - X[:, 2]


def test_fits_a_smooth_function_and_generalises():
    X, y = data(200)
    Xt, yt = data(100, seed=1)
    mean, std = MLPEnsemble(seed=0, epochs=400).fit(X, y).predict(Xt)
    assert np.corrcoef(mean, yt)[0, 1] > 0.9
    assert std.shape == yt.shape and np.all(std >= 0) and std.mean() > 0


def test_same_seed_same_predictions():
    X, y = data()
    a = MLPEnsemble(seed=3).fit(X, y).predict(X)[0]
    b = MLPEnsemble(seed=3).fit(X, y).predict(X)[0]
    c = MLPEnsemble(seed=4).fit(X, y).predict(X)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_uncertainty_is_larger_far_from_the_data():
    X, y = data()
    model = MLPEnsemble(seed=0).fit(X, y)
    near = model.predict(X)[1].mean()
    far = model.predict(X + 5.0)[1].mean()
    assert far > 3 * near


def test_warm_start_keeps_what_was_learned():
    X, y = data(200)
    model = MLPEnsemble(seed=0, finetune_epochs=0).fit(X, y)
    before = model.predict(X)[0]
    model.fit(X, y, warm_start=True)  # zero fine-tuning epochs: same weights
    assert np.allclose(model.predict(X)[0], before)


def test_bad_input():
    with pytest.raises(InvalidConfigError, match="before fit"):
        MLPEnsemble().predict(np.zeros((1, 2)))
    with pytest.raises(InvalidConfigError, match="shape"):
        MLPEnsemble().fit(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(InvalidConfigError, match="loss"):
        MLPEnsemble(loss="huber")
