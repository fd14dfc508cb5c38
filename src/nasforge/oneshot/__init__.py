"""One-shot and differentiable search: train one supernet, derive an architecture each epoch.

Methods (one file each, registered by name; ``nasforge.oneshot.names()``):

* ``darts`` — DARTS, first or second order (Liu et al., ICLR 2019, arXiv:1806.09055);
* ``single-level-darts`` — weights and architecture on the same batch (Hou et al. 2021);
* ``gdas`` — Gumbel-softmax sampling with a hard forward (Dong and Yang, CVPR 2019);
* ``pc-darts`` — partial channels and edge normalisation (Xu et al., ICLR 2020);
* ``spos`` — uniform single-path training, then evolution on the supernet (Guo et al. 2020);
* ``darts-pt`` — perturbation-based selection on a DARTS supernet (Wang et al., ICLR 2021);
* ``proxylessnas`` — binarized paths with two-path architecture gradients and the expected
  latency in the loss (Cai et al., ICLR 2019), on the mobile spaces;
* ``fbnet`` — Gumbel-softmax supernet with FBNet's ``CE * alpha * log(LAT)^beta`` loss (Wu et
  al., CVPR 2019);
* ``single-path-nas`` — one superkernel per layer, kernel and expansion decided by threshold
  indicators, runtime-aware loss (Stamoulis et al., ECML-PKDD 2019), on ``mobilenet``;
* ``hurricane`` — device-specific candidate blocks from a latency table, then a two-stage
  single-path search, later layers first (Zhang et al., CVPRW 2020), on ``mobilenet``;
* ``bats`` — binary cells: DARTS's search on the ``bats`` space of grouped binary
  convolutions with real shortcuts, a temperature on the architecture softmax and binary
  activations before binary weights (Bulat et al., ECCV 2020, arXiv:2003.01711);
* ``dass`` — sparse cells: pre-training, then learned top-k masks (HYDRA) and fine-tuning,
  the architecture descending the validation loss of the sparse network (Mousavi et al.,
  ACM TECS 2023, arXiv:2207.06968), on ``dass``;
* ``rarts`` — two weight copies (training and validation halves) tied by a penalty, the
  architecture learned from both by first derivatives only (Xue et al., arXiv:2008.03901);
* ``sd-darts`` — DARTS whose weights also distil the vote of the supernets of the previous
  steps (Zhu et al., Neural Networks 2023, arXiv:2302.05629).

The hardware-aware methods read per-layer latency tables
(:class:`nasforge.hardware.layer_lut.LayerLatencyTable`), measured here or filled from a
device.

:func:`search` runs one on the supernet of any space that has one (``space.supernet()``;
:func:`supernet_spaces` lists them) and records every
epoch's derived architecture as a trial of a study (looked up in the bundled table when the
space has one, else scored by the evaluator given), with the wall time spent so far, and
saves a checkpoint per epoch from which an interrupted search resumes.

Importing this package does not import torch; :func:`search` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.oneshot.base import (
    NonFiniteLossError,
    OneShotMethod,
    SupernetSettings,
    supernet_spaces,
)
from nasforge.registry import Registry

if TYPE_CHECKING:
    from nasforge.evaluators.base import Evaluator
    from nasforge.oneshot._engine import OneShotResult
    from nasforge.spaces.base import SearchSpace
    from nasforge.study import Study
    from nasforge.train.data import DataSplits
    from nasforge.trial import Trial

__all__ = [
    "NonFiniteLossError",
    "OneShotMethod",
    "SupernetSettings",
    "create",
    "get",
    "names",
    "register",
    "search",
    "supernet_spaces",
]

_REGISTRY: Registry[OneShotMethod] = Registry("one-shot method", __name__)
register = _REGISTRY.register


def create(name: str, **params: Any) -> OneShotMethod:
    """The one-shot method registered as ``name``, built with its hyperparameters.

    Raises:
        UnknownNameError: No method of that name (the valid ones and the closest are listed).
        InvalidConfigError: An unknown hyperparameter or a value out of range.
    """
    from nasforge.strategies.base import check_params

    factory = _REGISTRY.get(name)
    if isinstance(factory, type):
        params = check_params(factory, dict(params))
    return factory(**params)


def get(name: str) -> Any:
    """The class registered as ``name``."""
    return _REGISTRY.get(name)


def names() -> list[str]:
    """Names of the registered one-shot methods."""
    return _REGISTRY.names()


def search(
    method: str,
    data: DataSplits | Any,
    *,
    space: str | SearchSpace = "nb201",
    params: Mapping[str, Any] | None = None,
    settings: SupernetSettings | None = None,
    epochs: int | None = None,
    seed: int = 0,
    evaluator: Evaluator | None = None,
    storage: Any = None,
    study_name: str | None = None,
    objectives: Sequence[str] = ("valid_acc:max",),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    threads: int | None = None,
    callbacks: Sequence[Callable[[Study, Trial], None]] = (),
) -> OneShotResult:
    """Run one-shot method ``method`` and record each epoch's architecture in a study.

    Every epoch trains the supernet (and the architecture, for differentiable methods),
    derives the architecture it stands for and records it as a trial: its metrics are the
    evaluator's (the bundled table's for ``nb201``: ``valid_acc``, ``test_acc``...) plus
    ``epoch``, ``search_seconds`` (wall time of the search so far, resumes included),
    ``param_free_share`` (share of the cell's edges that carry none, skip or pooling),
    ``param_free_weight`` (the architecture weights' mean mass on those operations) and the
    method's statistics (``train_loss``, ``train_acc``...). A trial's ``seconds`` is the
    epoch's search time plus its evaluation. With ``checkpoint_dir`` the supernet, the
    architecture parameters, the optimisers and the generators are saved after each epoch;
    running the same search again (same study in a persistent ``storage``) resumes from the
    last saved epoch and, on the CPU, continues exactly as an uninterrupted run.

    Args:
        method: Registry name (:func:`names`).
        data: The images (``nasforge.train.load_cifar10(path)``, or ``SyntheticImages``):
            the training images are split in halves, weights and architecture. Or your own
            classification data: a :class:`~nasforge.train.UserData`, a ``Dataset`` or
            ``DataLoader`` of ``(input, target)`` items, or ``(inputs, targets)`` tensors, of
            any input shape; its training items are split in halves and used as they are
            (no augmentation, no normalisation, no resizing: ``settings.resolution`` must be
            ``None``).
        space: A space with a supernet (its name or the object; :func:`supernet_spaces`).
        params: Hyperparameters of the method (``{"order": 2}`` for second-order DARTS).
        settings: Supernet shape and data (default :meth:`SupernetSettings.standard`; a CPU
            fits :meth:`SupernetSettings.reduced`).
        epochs: Supernet training epochs (default the method's published protocol).
        seed: Seed of every random draw (weights, batches, augmentation, sampling).
        evaluator: Scores derived architectures (default: the bundled table of the space on
            the data's dataset; the DARTS space has none, pass e.g. the ``train`` evaluator;
            on your own data, each derived network trained for 10 epochs with the space's
            recipe on its training items and measured on its validation items, ``valid_acc``,
            a repeated architecture answered from a cache).
        storage: ``None`` (memory), a URL (``"sqlite:///runs.db"``) or a storage.
        study_name: Name of the study; an existing study of that name with the same settings
            is continued.
        objectives: The study's objectives (the evaluator must return their metrics).
        checkpoint_dir: Folder of the per-epoch checkpoint (``oneshot.pt``).
        device: ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda[:N]"``.
        threads: CPU threads (default all this process may use).
        callbacks: Called as ``callback(study, trial)`` after each recorded trial.

    Returns:
        A :class:`~nasforge.oneshot._engine.OneShotResult`. A non-finite loss does not
        raise: the epoch is recorded as a FAILED trial with the reason, the search stops and
        ``result.failed`` says why; the checkpoint of the last good epoch is kept.

    Raises:
        UnknownNameError: An unknown method.
        UnsupportedOperationError: A space without a supernet (or without what the method
            needs of it, e.g. partial channels for PC-DARTS), refused before anything is
            recorded.
        InvalidConfigError: Bad settings, data too small for the split, a checkpoint of
            another search.

    Example:
        >>> from nasforge.train import SyntheticImages
        >>> data = SyntheticImages(num_classes=4, n_train=64, n_test=4, size=8).load()
        >>> settings = SupernetSettings(channels=4, cells=1, batch_size=16)
        >>> result = search("darts", data, settings=settings, epochs=2, device="cpu")
        >>> [t.metrics["epoch"] for t in result.study.trials]
        [0.0, 1.0]
    """
    from nasforge.oneshot import _engine

    built = create(method, **dict(params or {}))
    return _engine.search(
        built,
        method,
        data,
        space=space,
        settings=settings,
        epochs=epochs,
        seed=seed,
        evaluator=evaluator,
        storage=storage,
        study_name=study_name,
        objectives=objectives,
        checkpoint_dir=checkpoint_dir,
        device=device,
        threads=threads,
        callbacks=callbacks,
    )
