"""The :class:`Predictor` contract: a learned guess of a metric from an encoding."""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import numpy as np

__all__ = ["Predictor", "blas_threads", "one_blas_thread"]

_CONTROLLER: list[tuple[int, Any]] = []
_F = TypeVar("_F", bound=Callable[..., Any])
_LIMIT = threading.local()


@contextlib.contextmanager
def blas_threads(limit: int = 1) -> Iterator[None]:
    """Run the block with the BLAS libraries (OpenBLAS, MKL) held to ``limit`` threads.

    A predictor's matrices are small (hundreds of rows): one BLAS thread computes them
    fastest, while a BLAS thread per core, with the evaluations and other workers sharing the
    cores, slows a fit from about a second to twenty. Uses threadpoolctl (a dependency); nested
    blocks keep the outermost limit. Results do not depend on it.
    """
    if getattr(_LIMIT, "depth", 0):
        _LIMIT.depth += 1
        try:
            yield
        finally:
            _LIMIT.depth -= 1
        return
    # one scan of the loaded libraries per set of imported modules: a BLAS library comes with
    # a module (torch, scipy), and one loaded after the last scan must be held too
    count = len(sys.modules)
    if not _CONTROLLER or _CONTROLLER[0][0] != count:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER[:] = [(count, ThreadpoolController())]
    controller = _CONTROLLER[0][1]
    _LIMIT.depth = 1
    try:
        with controller.limit(limits=limit, user_api="blas"):
            yield
    finally:
        _LIMIT.depth = 0


def one_blas_thread(fn: _F) -> _F:
    """Decorator: run ``fn`` inside :func:`blas_threads` (one BLAS thread)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with blas_threads(1):
            return fn(*args, **kwargs)

    return cast(_F, wrapper)


class Predictor(ABC):
    """Regression from architecture encodings ``X`` (n x d) to a metric ``y`` (n).

    ``predict`` returns the mean prediction and a standard deviation per row (zeros for a
    predictor that has no notion of uncertainty). ``fit`` may be called again with more data;
    with ``warm_start=True`` a predictor that supports it continues from its current weights
    (used to fine-tune a predictor pretrained on free statistics, as in FBNetV3's NARS).
    """

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, *, warm_start: bool = False) -> Predictor:
        """Learn from ``X`` and ``y``; returns ``self``."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the prediction for each row of ``X``."""
