"""Default names of what a run leaves behind: the study's name and its checkpoint folder.

A search that is persisted without a study name gets one from its settings, so that running
the same command again finds the same study and resumes it::

    >>> default_study_name("nb201", "regularized-evolution", "cifar10", seed=0)
    'nb201-regularized-evolution-cifar10-seed0'
    >>> default_study_name("nb201", "random", "cifar10", seed=1, evaluator="train")
    'nb201-random-train-cifar10-seed1'
    >>> default_checkpoint_dir("sqlite:///runs/t.db", "s")
    'runs/t.db-checkpoints/s'

Nothing here touches a storage or the disk.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_checkpoint_dir", "default_study_name"]

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
    return str(Path(database).with_name(Path(database).name + "-checkpoints") / study_name)
