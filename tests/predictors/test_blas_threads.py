"""Predictor fits run with one BLAS thread (threadpoolctl), and give the same numbers."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from nasforge.predictors import MLPEnsemble
from nasforge.predictors.base import blas_threads, one_blas_thread
from nasforge.predictors.ridge import ridge_loo


def blas() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_fit_and_predict_hold_blas_to_one_thread_and_restore_it(monkeypatch):
    seen: list[set[int]] = []
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas()

        @one_blas_thread
        def probe() -> None:
            seen.append(blas())
            with blas_threads(1):  # nested: keeps the outer limit
                seen.append(blas())
            seen.append(blas())

        probe()
        assert seen == [{1}, {1}, {1}]
        assert blas() == before

        inside: list[set[int]] = []
        monkeypatch.setattr(MLPEnsemble, "_forward", _spy(MLPEnsemble._forward, inside))
        rng = np.random.default_rng(0)
        X, y = rng.random((40, 5)), rng.random(40)
        MLPEnsemble(n_members=2, epochs=3, seed=0).fit(X, y).predict(X)
        assert inside and all(s == {1} for s in inside)
        assert blas() == before


def _spy(method, log):
    def wrapped(self, X):
        log.append(blas())
        return method(self, X)

    return wrapped


def test_results_do_not_depend_on_the_limit():
    rng = np.random.default_rng(1)
    X, y = rng.random((60, 6)), rng.random(60)
    limited = MLPEnsemble(n_members=2, epochs=20, seed=3).fit(X, y).predict(X)[0]
    with blas_threads(2):  # the outer block wins over the fit's own limit
        free = MLPEnsemble(n_members=2, epochs=20, seed=3).fit(X, y).predict(X)[0]
    np.testing.assert_allclose(limited, free, rtol=1e-12)
    fit = ridge_loo(X, y)
    assert np.isfinite(fit.predict(X)).all()
