"""Pretraining a predictor on free architecture statistics, then fine-tuning it (NARS).

Dai, X., Wan, A., Zhang, P., Wu, B., He, Z., Wei, Z., Chen, K., Tian, Y., Yu, M., Vajda, P.
and Gonzalez, J. E. "FBNetV3: Joint Architecture-Recipe Search using Predictor Pretraining."
CVPR 2021, arXiv:2006.02049 (Section 3.2, "predictor pretraining"). The accuracy predictor
of Neural Architecture-Recipe Search (NARS) is first trained to predict statistics that cost
no training, FLOPs and the number of parameters, on a large pool of architectures; the
pretrained network is then fine-tuned on the few measured accuracies. The statistics are
strongly correlated with accuracy, so the pretrained predictor already ranks architectures
before any has been evaluated, and fine-tuning needs fewer samples.

How nasforge differs: FBNetV3 pretrains the architecture embedding layer with one output
per statistic and then replaces the head; :class:`~nasforge.predictors.Predictor` has one
output, so :func:`free_target` combines the statistics into one target: the mean of the
standardised logarithms of ``params_M`` and ``flops_M``. On NAS-Bench-201 the two are
perfectly rank-correlated (Spearman 1.0 on all 15,625 cells: both count the same
convolutions), so a second output would add nothing there. The whole network, not only an
embedding, is then fine-tuned with ``fit(X, y, warm_start=True)``.

The API, for every strategy that wants a pretrained predictor (BANANAS, WeakNAS, PNAS...)::

    random_pool(space, rng, size, *, exclude=()) -> list[Architecture]
    free_target(stats, metrics=("params_M", "flops_M")) -> np.ndarray      # (n,)
    pretrain(predictor, archs, encode, free, *, metrics=("params_M", "flops_M"),
             transform=None) -> predictor

``encode`` maps an architecture to its feature vector (``lambda a: space.encode(a, "path")``);
``free`` maps it to its free metrics (``Strategy.free``); ``transform`` turns the
standardised target (larger: more parameters and FLOPs, which predicts higher accuracy) into
the scale and orientation the predictor is later fine-tuned on. A strategy then fine-tunes::

    model = pretrain(MLPEnsemble(seed=0), random_pool(self.space, self.rng, 500),
                     lambda a: self.space.encode(a, "path"), self.free)
    model.fit(X_measured, y_measured, warm_start=True)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TypeVar

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.predictors.base import Predictor, one_blas_thread
from nasforge.spaces.base import SearchSpace

__all__ = ["DEFAULT_METRICS", "free_target", "pretrain", "random_pool"]

#: The statistics FBNetV3 pretrains on.
DEFAULT_METRICS: tuple[str, ...] = ("params_M", "flops_M")

P = TypeVar("P", bound=Predictor)


def random_pool(
    space: SearchSpace,
    rng: np.random.Generator,
    size: int,
    *,
    exclude: Collection[Architecture] = (),
) -> list[Architecture]:
    """Up to ``size`` distinct random architectures of ``space``, none of them in ``exclude``.

    Fewer come back only when the space runs out of new architectures (after
    ``20 * size`` draws; :meth:`~nasforge.spaces.base.SearchSpace.sample_distinct`).

    Raises:
        InvalidConfigError: ``size`` is not positive.
    """
    if size < 1:
        raise InvalidConfigError(f"A pretraining pool needs at least 1 architecture, got {size}.")
    return space.sample_distinct(rng, size, exclude=exclude)


def free_target(
    stats: Sequence[Mapping[str, float]], metrics: Sequence[str] = DEFAULT_METRICS
) -> np.ndarray:
    """One pretraining target per architecture: the mean standardised free statistic.

    Each metric is log-transformed when all its values are positive (parameters and FLOPs
    span orders of magnitude; accuracy grows about linearly in their logarithm), then
    standardised to mean 0 and standard deviation 1 over ``stats``; the target is the mean
    over ``metrics``. A metric that is constant over ``stats`` contributes zeros.

    Args:
        stats: Free metrics of each architecture (``Strategy.free(arch)``).
        metrics: Names of the metrics to combine.

    Returns:
        An array of shape ``(len(stats),)``.

    Raises:
        InvalidConfigError: No metric named, or a metric missing (or NaN) for an
            architecture; the message lists the metrics that are available.

    Example:
        >>> free_target([{"params_M": 1.0, "flops_M": 10.0}, {"params_M": 4.0, "flops_M": 40.0}])
        array([-1.,  1.])
    """
    if not metrics:
        raise InvalidConfigError("Name at least one free metric to pretrain on, e.g. params_M.")
    target = np.zeros(len(stats))
    for name in metrics:
        values = np.empty(len(stats))
        for i, row in enumerate(stats):
            value = row.get(name)
            if value is None or not np.isfinite(value):
                raise InvalidConfigError(
                    f"Pretraining needs the free metric {name!r} of every architecture, but "
                    f"one has {'no value' if value is None else value}; available free "
                    f"metrics: {', '.join(sorted(row)) or 'none'}."
                )
            values[i] = value
        if np.all(values > 0):
            values = np.log(values)
        spread = values.std()
        if spread > 0:
            target += (values - values.mean()) / spread
    return target / len(metrics)


@one_blas_thread
def pretrain(
    predictor: P,
    archs: Sequence[Architecture],
    encode: Callable[[Architecture], np.ndarray],
    free: Callable[[Architecture], Mapping[str, float]],
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> P:
    """Fit ``predictor`` from scratch to the free statistics of ``archs``; return it.

    Args:
        predictor: Any :class:`~nasforge.predictors.Predictor`; fine-tune it afterwards with
            ``fit(X, y, warm_start=True)``.
        archs: The pool (:func:`random_pool`); evaluating none of them costs anything.
        encode: Feature vector of an architecture, the same the predictor is fine-tuned on.
        free: Free metrics of an architecture (``Strategy.free``).
        metrics: The metrics combined by :func:`free_target`.
        transform: Applied to the standardised target before fitting, to put it in the
            scale and orientation of the fine-tuning targets (e.g. a positive "regret" for a
            MAPE loss); ``None`` fits the standardised target itself.

    Raises:
        InvalidConfigError: An empty pool, or a metric missing (see :func:`free_target`).

    Example:
        >>> import numpy as np
        >>> from nasforge import spaces
        >>> from nasforge.predictors import MLPEnsemble
        >>> space = spaces.create("nb201")
        >>> pool = random_pool(space, np.random.default_rng(0), 200)
        >>> def free(arch):  # a stand-in for Strategy.free: convolutions as "parameters"
        ...     n = sum(op in (2, 3) for op in arch.choices)
        ...     return {"params_M": 1.0 + n, "flops_M": 10.0 * (1 + n)}
        >>> model = pretrain(MLPEnsemble(seed=0), pool, lambda a: space.encode(a, "onehot"), free)
        >>> X = np.stack([space.encode(a, "onehot") for a in pool])
        >>> y = [free(a)["params_M"] for a in pool]
        >>> bool(np.corrcoef(model.predict(X)[0], y)[0, 1] > 0.9)
        True
    """
    if not archs:
        raise InvalidConfigError("Pretraining needs a non-empty pool of architectures.")
    X = np.stack([np.asarray(encode(arch), dtype=np.float64) for arch in archs])
    target = free_target([free(arch) for arch in archs], metrics)
    if transform is not None:
        target = np.asarray(transform(target), dtype=np.float64)
    predictor.fit(X, target)
    return predictor
