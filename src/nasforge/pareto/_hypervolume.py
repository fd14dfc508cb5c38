"""Hypervolume (by moocore) and reference points (see :mod:`nasforge.pareto`)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Literal

import numpy as np

from nasforge.errors import InvalidConfigError, MissingDependencyError
from nasforge.pareto._sorting import _as_points

#: The extra that installs the hypervolume library.
INSTALL_HINT = "pip install 'nasforge[mo]'"
#: Reference point choices of :func:`reference_point`.
ReferenceKind = Literal["nadir", "median"]


def _moocore() -> ModuleType:
    try:
        return importlib.import_module("moocore")
    except ImportError:
        raise MissingDependencyError(
            f"The hypervolume is computed by the moocore package, which is not installed: "
            f"{INSTALL_HINT}"
        ) from None


def hypervolume(points: Any, reference: Sequence[float] | np.ndarray) -> float:
    """The volume dominated by ``points`` and bounded by ``reference`` (oriented values).

    Only points strictly better than ``reference`` in every objective add volume; the others
    are dropped first. Computed by ``moocore.hypervolume`` (maximising).

    Args:
        points: Oriented values (larger is better), shape ``(n, k)``; dominated points may
            be included, they add nothing.
        reference: One oriented value per objective, worse than the points that count.

    Raises:
        MissingDependencyError: ``moocore`` is not installed (``pip install 'nasforge[mo]'``).

    Example:
        >>> hypervolume([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]], [0.0, 0.0])  # a staircase
        6.0
    """
    array = _as_points(points)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if len(array) and array.shape[1] != ref.size:
        raise InvalidConfigError(
            f"reference has {ref.size} values but the points have {array.shape[1]} objectives."
        )
    if not np.all(np.isfinite(ref)):
        raise InvalidConfigError(f"reference must be finite, got {ref.tolist()}.")
    moocore = _moocore()
    inside = array[np.all(array > ref, axis=1)] if len(array) else array
    if len(inside) == 0:
        return 0.0
    return float(moocore.hypervolume(inside, ref=ref, maximise=True))


def reference_point(
    front_points: Any,
    *,
    kind: ReferenceKind = "nadir",
    margin: float = 0.1,
    table: Any = None,
) -> np.ndarray:
    """The reference point of the hypervolume (see the module docstring).

    Args:
        front_points: Oriented values of the true front.
        kind: ``"nadir"``: the front's worst value in each objective, moved outwards by
            ``margin`` times the front's range (by ``margin`` itself where the range is 0).
            ``"median"``: the median of ``table`` in each objective.
        margin: Share of the range added beyond the nadir.
        table: Oriented values of every point of the benchmark (for ``"median"``).

    Example:
        >>> reference_point([[10.0, -3.0], [20.0, -5.0]]).tolist()
        [9.0, -5.2]
    """
    points = _as_points(front_points, "front_points")
    if len(points) == 0:
        raise InvalidConfigError("The true front is empty; there is no reference point.")
    if kind == "nadir":
        if not margin >= 0:
            raise InvalidConfigError(f"margin must be non-negative, got {margin}.")
        nadir = points.min(axis=0)
        span = points.max(axis=0) - nadir
        span[span == 0] = 1.0
        return np.asarray(nadir - margin * span)
    if kind == "median":
        if table is None:
            raise InvalidConfigError("reference_point(kind='median') needs table= (all points).")
        values = _as_points(table, "table")
        return np.asarray(np.median(values, axis=0))
    raise InvalidConfigError(f"Unknown reference kind {kind!r}; choose 'nadir' or 'median'.")
