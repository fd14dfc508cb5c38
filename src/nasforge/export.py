"""Export the network of a study's trial: as a PyTorch file, or as a checked ONNX model.

``nasforge export STUDY --storage URL --format pytorch|onnx --out PATH [--trial N]`` calls
:func:`export_trial`. The trial is the study's best (or trial ``N``); its weights are the
checkpoint the training evaluator saved for it (``checkpoint_dir``). A study scored by a
tabular benchmark has no weights: the export is then the architecture's network freshly
initialised from a seed, and says so (``ExportResult.trained`` is ``False``). A study of the
``supernet`` evaluator (sub-networks of a trained elastic supernet) exports the sub-network
with its inherited weights, after the batch-norm recalibration the evaluator did
(:func:`nasforge.evaluators.supernet.subnet_record`); so does a study of the
``super-transformer`` evaluator (:func:`nasforge.evaluators.super_transformer.subvit_record`).

* ``pytorch``: a file written by ``torch.save`` holding a plain dictionary (space, the
  architecture's text, the keyword arguments of ``space.build``, input shape, normalisation,
  classes, the state dict; see :mod:`nasforge.train.checkpoint`). :func:`load` rebuilds the
  network from it alone with ``torch.load(weights_only=True)``. Given a folder (a path
  without the ``.pt`` suffix), the file is ``model.pt`` in it beside ``model.json``, the same
  information without the weights.
* ``onnx``: an ONNX model (opset 17, TorchScript-based exporter as in
  :func:`nasforge.hardware.export_onnx`, a dynamic batch dimension, input ``input``, output
  ``logits``, the record's fields as metadata). The exporter checks it with
  ``onnx.checker.check_model(full_check=True)`` and runs it with ONNX Runtime on a batch of
  two and of one image: the outputs must match PyTorch's within ``atol`` (1e-4), else it
  raises. Needs the extra ``[onnx]``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import (
    InvalidConfigError,
    MissingDependencyError,
    NasforgeError,
)
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from torch import nn

    from nasforge.study import Study
    from nasforge.train.checkpoint import ModelRecord

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportResult",
    "export_trial",
    "load",
    "load_record",
    "record_for_trial",
    "save",
    "to_onnx",
]

logger = logging.getLogger(__name__)

#: Export formats.
FORMATS: tuple[str, ...] = ("pytorch", "onnx")
#: Largest absolute difference allowed between ONNX Runtime's and PyTorch's outputs.
ONNX_ATOL = 1e-4
ONNX_OPSET = 17
_INSTALL = "pip install 'nasforge[onnx]'"

#: Classes and input size of the tabular benchmarks' datasets (untrained exports).
_TABULAR_DATASETS: Mapping[str, tuple[int, int]] = {
    "cifar10": (10, 32),
    "cifar10-valid": (10, 32),
    "cifar100": (100, 32),
    "imagenet16-120": (120, 16),
}
#: NAS-Bench-201's normalisation of each dataset, ``(mean, std)`` of ``[0, 1]`` pixels.
_NORMALISATION: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255)),
    "cifar100": ((129.3 / 255, 124.1 / 255, 112.4 / 255), (68.2 / 255, 65.4 / 255, 70.4 / 255)),
    "imagenet16-120": (
        (122.68 / 255, 116.66 / 255, 104.01 / 255),
        (63.22 / 255, 61.26 / 255, 65.09 / 255),
    ),
}


class ExportError(NasforgeError):
    """An export cannot be written or fails its check (ONNX outputs differ from PyTorch's)."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_trial` wrote.

    Attributes:
        path: The file written (``model.pt`` or the ``.onnx`` file).
        format: ``"pytorch"`` or ``"onnx"``.
        trial: Number of the exported trial.
        arch: The architecture's text.
        trained: Whether the weights are trained ones (``False``: freshly initialised).
        note: Why the weights are untrained, or ``None``.
        max_abs_diff: For ONNX, the largest difference between ONNX Runtime's and PyTorch's
            outputs on the check batches.
    """

    path: Path
    format: str
    trial: int
    arch: str
    trained: bool
    note: str | None = None
    max_abs_diff: float | None = None


# -- from a study to a record -----------------------------------------------------------------
def record_for_trial(
    study: Study, trial: int | None = None, *, untrained: bool = False
) -> tuple[ModelRecord, Trial, str | None]:
    """The network of a trial as a :class:`~nasforge.train.checkpoint.ModelRecord`.

    Args:
        study: The study.
        trial: A trial number; ``None``: the study's best trial.
        untrained: Accept a trial of a training study without saved weights, and export its
            network freshly initialised.

    Returns:
        The record, the trial, and a note when the weights are not trained ones.

    Raises:
        InvalidConfigError: No such trial, a failed trial, or no saved weights (the message
            says how to get them).
        CheckpointMismatchError: The saved weights do not fit the trial's architecture.
    """
    chosen = _choose_trial(study, trial)
    spec = dict(study.record.evaluator or {})
    name = spec.pop("name", None)
    if name == "supernet":  # a sub-network of a trained supernet: its inherited weights
        from nasforge.evaluators.supernet import subnet_record

        info = {"study": study.name, "trial": chosen.number}
        return subnet_record(study.record.evaluator or {}, chosen.arch, info), chosen, None
    if name == "super-transformer":  # a sub-network of a super-transformer: inherited weights
        from nasforge.evaluators.super_transformer import subvit_record

        info = {"study": study.name, "trial": chosen.number}
        return subvit_record(study.record.evaluator or {}, chosen.arch, info), chosen, None
    if name == "train":
        from nasforge import evaluators
        from nasforge.evaluators.training import TrainingEvaluator

        evaluator = evaluators.create("train", **spec)
        assert isinstance(evaluator, TrainingEvaluator)
        source = chosen
        if chosen.duplicate_of is not None:  # answered from another trial's record
            source = study.trials[chosen.duplicate_of]
        path = evaluator.checkpoint_path(source.arch, source.fidelity)
        if path is not None and path.is_file() and source.state is TrialState.COMPLETE:
            return _trained_record(path, source, chosen.number, study), chosen, None
        if not untrained:
            if chosen.state is not TrialState.COMPLETE:
                why = f"it is {chosen.state.value} ({chosen.fail_reason or 'no reason recorded'})"
            elif path is None:
                why = (
                    "the training evaluator ran without a checkpoint_dir (nasforge search "
                    "--checkpoints DIR keeps the weights)"
                )
            else:
                why = f"its checkpoint {str(path)!r} is missing"
            raise InvalidConfigError(
                f"Trial {chosen.number} of study {study.name!r} has no saved weights: {why}. "
                "Export another trial (--trial N), or pass --untrained (untrained=True) for a "
                "freshly initialised network."
            )
        note = f"trial {chosen.number} has no saved weights; the network is freshly initialised"
        setting = evaluator.setting(None)
        build = evaluator.build_kwargs(setting, evaluator.num_classes())
        shape = (3, setting.resolution, setting.resolution)
        normalisation = _NORMALISATION.get(evaluator.dataset)
    else:
        what = "no evaluator yet" if name is None else f"evaluator {name!r}"
        note = (
            f"study {study.name!r} ({what}) keeps no trained weights; the network is freshly "
            "initialised (untrained)"
        )
        dataset = str(spec.get("dataset") or "cifar10").lower()
        classes, size = _TABULAR_DATASETS.get(dataset, (10, 32))
        build = {"num_classes": classes}
        shape = (3, size, size)
        normalisation = _NORMALISATION.get(dataset.replace("-valid", ""))
    seed = _init_seed(study.seed, chosen)
    record = _untrained_record(study, chosen, build, shape, seed, normalisation)
    return record, chosen, note


def _choose_trial(study: Study, number: int | None) -> Trial:
    if number is None:
        return study.best_trial
    trials = study.trials
    if isinstance(number, bool) or not 0 <= number < len(trials):
        raise InvalidConfigError(
            f"Study {study.name!r} has trials 0..{len(trials) - 1}, not {number!r}."
            if trials
            else f"Study {study.name!r} has no trials."
        )
    return trials[number]


def _trained_record(path: Path, trial: Trial, number: int, study: Study) -> ModelRecord:
    from nasforge.train.checkpoint import CheckpointMismatchError, build_model, load_record

    record = load_record(path)
    if record.space != trial.arch.space or record.arch != trial.arch.text:
        raise CheckpointMismatchError(
            f"The checkpoint {str(path)!r} holds architecture {record.arch!r} of space "
            f"{record.space!r}, not trial {trial.number}'s {trial.arch.text!r}."
        )
    record = _as_network(study, record)
    build_model(record)  # the weights must fit the network (names the mismatching keys)
    info = dict(record.info)
    info["trial"] = number
    return replace(record, info=info)


def _as_network(study: Study, record: ModelRecord) -> ModelRecord:
    """``record`` written under the architecture of its network where the study's space
    names one (``space.network_arch``: the recipe form, whose networks are its base's), the
    trial's architecture and its recipe (``info["recipe"]``, saved by the evaluator) kept in
    ``info``: the file then loads without the space's arguments."""
    network = getattr(study.space, "network_arch", None)
    if not callable(network):
        return record
    arch = network(study.space.parse(record.arch))
    info = {**record.info, "searched_space": record.space, "searched_arch": record.arch}
    return replace(record, space=arch.space, arch=arch.text, info=info)


def _init_seed(seed: int, trial: Trial) -> int:
    entropy = [int(seed), zlib.crc32(trial.arch.space.encode()), *trial.arch.choices]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


def _untrained_record(
    study: Study,
    trial: Trial,
    build: Mapping[str, Any],
    shape: tuple[int, int, int],
    seed: int,
    normalisation: tuple[tuple[float, ...], tuple[float, ...]] | None,
) -> ModelRecord:
    from nasforge.train.checkpoint import ModelRecord
    from nasforge.train.trainer import seeded

    with seeded(seed):
        module = study.space.build(trial.arch, **build)
    return ModelRecord(
        space=trial.arch.space,
        arch=trial.arch.text,
        build=dict(build),
        state_dict={k: v.detach().cpu() for k, v in module.state_dict().items()},
        input_shape=shape,
        mean=None if normalisation is None else normalisation[0],
        std=None if normalisation is None else normalisation[1],
        trained=False,
        info={"study": study.name, "trial": trial.number, "init_seed": seed},
    )


# -- writing and reading ----------------------------------------------------------------------
def export_trial(
    study: Study,
    out: str | os.PathLike[str],
    *,
    format: str = "pytorch",
    trial: int | None = None,
    untrained: bool = False,
    atol: float = ONNX_ATOL,
) -> ExportResult:
    """Write the network of a study's best trial (or trial ``trial``) to ``out``.

    Args:
        study: The study.
        out: A ``.pt`` / ``.onnx`` file, or a folder (``model.pt`` / ``model.onnx`` in it).
        format: ``"pytorch"`` or ``"onnx"``.
        trial: A trial number; ``None``: the best trial.
        untrained: Export a freshly initialised network when a training study's trial has
            no saved weights (tabular studies always export one).
        atol: The largest ONNX Runtime vs PyTorch difference accepted (ONNX only).

    Raises:
        UnknownNameError: An unknown format.
        InvalidConfigError, CheckpointMismatchError: See :func:`record_for_trial`.
        MissingDependencyError: ONNX without the ``[onnx]`` extra.
        ExportError: The ONNX model fails its check.

    Example:
        >>> import nasforge, tempfile
        >>> study = nasforge.create_study(seed=0)
        >>> _ = study.optimize(nasforge.evaluators.create("tabular"), n_trials=3)
        >>> folder = tempfile.mkdtemp()
        >>> result = export_trial(study, folder + "/best.pt")
        >>> result.trained, load(result.path).__class__.__name__
        (False, 'NB201Network')
    """
    if format not in FORMATS:
        from nasforge.errors import UnknownNameError

        raise UnknownNameError("export format", format, FORMATS)
    record, chosen, note = record_for_trial(study, trial, untrained=untrained)
    info = dict(record.info)
    info.update(study=study.name, trial=chosen.number)
    if chosen.metrics:
        info["metrics"] = {k: float(v) for k, v in chosen.metrics.items()}
    record = replace(record, info=info)
    if note:
        logger.info("%s", note)
    if format == "pytorch":
        path = save(record, out)
        return ExportResult(path, format, chosen.number, record.arch, record.trained, note)
    target = _file_in(Path(out), ".onnx", "model.onnx")
    diff = to_onnx(record, target, atol=atol)
    return ExportResult(target, format, chosen.number, record.arch, record.trained, note, diff)


def _file_in(out: Path, suffix: str, default: str) -> Path:
    if out.suffix.lower() in (suffix, ".pth" if suffix == ".pt" else suffix):
        return out
    if out.exists() and not out.is_dir():
        raise InvalidConfigError(
            f"--out {str(out)!r} is a file without the {suffix} suffix; give a {suffix} file "
            "or a folder."
        )
    return out / default


def save(record: ModelRecord, out: str | os.PathLike[str]) -> Path:
    """Write ``record`` as a PyTorch file (``out`` ending in ``.pt``/``.pth``) or into the
    folder ``out`` (``model.pt`` and ``model.json``). Returns the ``.pt`` path."""
    from nasforge.train.checkpoint import save_record

    target = _file_in(Path(out), ".pt", "model.pt")
    try:
        save_record(record, target)
        if target.name == "model.pt" and Path(out).suffix.lower() not in (".pt", ".pth"):
            meta = record.to_dict()
            meta.pop("state_dict")
            meta["weights"] = "model.pt"
            (target.parent / "model.json").write_text(json.dumps(meta, indent=2, default=str))
    except OSError as err:
        raise ExportError(f"Cannot write {str(target)!r}: {err.strerror or err}") from err
    return target


def load_record(path: str | os.PathLike[str]) -> ModelRecord:
    """The record in a file (or folder) written by :func:`save` / ``nasforge export``."""
    from nasforge.train.checkpoint import load_record as read

    source = Path(path)
    if source.is_dir():
        source = source / "model.pt"
    return read(source)


def load(path: str | os.PathLike[str]) -> nn.Module:
    """The network saved at ``path`` (file or folder), rebuilt and with its weights, in
    evaluation mode. Needs nothing but nasforge: not the study, not the data.

    Raises:
        InvalidConfigError: No file, or not a nasforge model file.
        CheckpointMismatchError: The weights do not fit the architecture.
    """
    from nasforge.train.checkpoint import build_model

    return build_model(load_record(path))


# -- ONNX -------------------------------------------------------------------------------------
def _require(package: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingDependencyError(
            f"ONNX export needs the {package} package, which is not installed: {_INSTALL}"
        ) from None


def to_onnx(
    record: ModelRecord,
    path: str | os.PathLike[str],
    *,
    atol: float = ONNX_ATOL,
    opset: int = ONNX_OPSET,
) -> float:
    """Write ``record``'s network as an ONNX model and check it (see the module docstring).

    Returns:
        The largest absolute difference between ONNX Runtime's and PyTorch's outputs.

    Raises:
        MissingDependencyError: onnx or onnxruntime is not installed.
        UnsupportedOperationError: The exporter cannot export the network.
        ExportError: The checker rejects the model or the outputs differ by more than atol.
    """
    import torch

    from nasforge.hardware.latency import export_onnx
    from nasforge.train.checkpoint import build_model

    onnx = _require("onnx")
    ort = _require("onnxruntime")
    module = build_model(record)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn((2, *record.input_shape), generator=generator)
    with torch.no_grad():
        expected = module(example)
    export_onnx(
        module,
        example,
        target,
        opset=opset,
        dynamic_batch=True,
        what=f"the {record.space} network of {record.arch!r}",
    )
    model = onnx.load(str(target))
    meta = record.to_dict()
    meta.pop("state_dict")
    props = {k: v if isinstance(v, str) else json.dumps(v, default=str) for k, v in meta.items()}
    onnx.helper.set_model_props(model, props)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as err:
        raise ExportError(f"The ONNX model of {record.arch!r} fails onnx.checker: {err}") from err
    onnx.save(model, str(target))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
    diff = 0.0
    for batch, reference in ((example, expected), (example[:1], expected[:1])):
        (got,) = session.run(["logits"], {"input": batch.numpy()})
        diff = max(diff, float(np.max(np.abs(np.asarray(got) - reference.numpy()))))
    if not diff <= atol:
        raise ExportError(
            f"ONNX Runtime's outputs for {record.arch!r} differ from PyTorch's by {diff:.3g} "
            f"(more than {atol:g}); the file {str(target)!r} is not a faithful export."
        )
    return diff
