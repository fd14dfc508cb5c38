"""Default names of what a run leaves behind: the study's name and its checkpoint folder.

A search that is persisted without a study name gets one from its settings, so that running
the same command again finds the same study and resumes it::

    >>> default_study_name("nb201", "regularized-evolution", "cifar10", seed=0)
    'nb201-regularized-evolution-cifar10-seed0'
    >>> default_study_name("nb201", "random", "cifar10", seed=1, evaluator="train")
    'nb201-random-train-cifar10-seed1'
    >>> default_checkpoint_dir("sqlite:///runs/t.db", "s")
    'runs/t.db-checkpoints/s'

A study name becomes one folder inside the checkpoint folder, whatever it holds: a name with
path separators, ``..`` or an absolute path is made safe (and told apart from other names by
a short digest), so no name places files outside that folder::

    >>> default_checkpoint_dir("sqlite:///runs/t.db", "../../x")
    'runs/t.db-checkpoints/___.._x-9cdf6a5010'

Devices are named as everywhere in nasforge (``auto``, ``cpu``, ``cuda``, ``cuda:N``)::

    >>> check_device("cuda:1")
    'cuda:1'

Nothing here touches a storage or the disk.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from nasforge.errors import InvalidConfigError

__all__ = ["check_device", "default_checkpoint_dir", "default_study_name", "folder_name"]

#: Evaluators whose results do not depend on a training run; their name is left out.
_LOOKUP_EVALUATORS = ("tabular",)


def default_study_name(
    space: str, method: str, dataset: str, *, seed: int, evaluator: str = "tabular"
) -> str:
    """``SPACE-METHOD[-EVALUATOR]-DATASET-seedSEED``: the name a persisted run gets when none
    is given.

    Args:
        space: The search space's name.
        method: The strategy or one-shot method's name.
        dataset: The dataset, as the evaluator spells it (a benchmark's own spelling).
        seed: The run's seed.
        evaluator: The evaluator's name; a lookup evaluator (``tabular``) is not named, any
            other one (``train``) is, so that training and lookup runs never share a study.
    """
    parts = [space, method]
    if evaluator not in _LOOKUP_EVALUATORS:
        parts.append(evaluator)
    parts += [dataset, f"seed{seed}"]
    return "-".join(parts)


def default_checkpoint_dir(storage: str | None, study_name: str | None) -> str | None:
    """Where the trained weights of ``study_name`` go when no folder is given: next to a
    SQLite database, in ``DATABASE-checkpoints/STUDY``; ``None`` for any other storage
    (in memory, in-memory SQLite, PostgreSQL), where no folder is implied."""
    if storage is None or study_name is None or not storage.startswith("sqlite:///"):
        return None
    database = storage[len("sqlite:///") :].split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return str(
        Path(database).with_name(Path(database).name + "-checkpoints") / folder_name(study_name)
    )


#: Characters kept as they are in a folder made from a study name.
_SAFE = re.compile(r"[^A-Za-z0-9._+=-]")
#: Longest folder name made from a study name (file systems allow 255 bytes).
_MAX_FOLDER = 120


def folder_name(name: str) -> str:
    """A single folder name for ``name`` that stays inside its parent folder.

    A name of letters, digits and ``._+=-`` (not starting with a dot) is kept as it is. Any
    other name (with ``/``, ``\\``, ``..``, a drive, spaces or other characters, or too long)
    has those characters replaced by ``_`` and a digest of the full name appended, so that two
    names never share a folder.

    >>> folder_name("nb201-random-cifar10-seed0")
    'nb201-random-cifar10-seed0'
    >>> folder_name("/etc") == folder_name("_etc")
    False
    """
    safe = _SAFE.sub("_", name)
    safe = "_" * (len(safe) - len(safe.lstrip("."))) + safe.lstrip(".")
    if safe == name and not name.startswith(".") and 0 < len(name) <= _MAX_FOLDER:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{safe[:_MAX_FOLDER]}-{digest}"


_DEVICE = re.compile(r"(auto|cpu|cuda(:\d{1,4})?)")


def check_device(device: str) -> str:
    """``device`` if it names a device nasforge can use: ``auto`` (CUDA when PyTorch sees a
    GPU), ``cpu``, ``cuda`` or ``cuda:N`` (any case, spaces around ignored), lower-cased.

    Only the spelling is checked (torch is not imported); whether CUDA is present is checked
    where the device is used.

    Raises:
        InvalidConfigError: Any other name; the message lists the valid ones.
    """
    name = str(device).strip().lower()
    if not _DEVICE.fullmatch(name):
        shown = repr(device) if len(repr(device)) <= 60 else repr(device)[:57] + "..."
        raise InvalidConfigError(
            f"--device {shown} is not a device; choose auto, cpu, cuda or cuda:N (e.g. cuda:0)."
        )
    return name
