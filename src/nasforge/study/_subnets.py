"""The study of a sub-network search on a trained super-network: created, or opened when it
exists with equal settings (its measured sub-networks are then not measured again).

Used by :mod:`nasforge.elastic.search` (Once-for-All's evolution on an elastic supernet) and
:mod:`nasforge.transformer.search` (AutoFormer's evolution on a super-transformer).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasforge.constraints import Constraint
    from nasforge.evaluators.base import Evaluator
    from nasforge.study._study import Study
    from nasforge.trial import Objective

__all__ = ["open_recorded", "open_subnet_study"]


def open_subnet_study(
    evaluator: Evaluator,
    strategy: str,
    params: Mapping[str, Any],
    seed: int,
    storage: Any,
    study_name: str | None,
    objective: Objective,
    constraints: Sequence[Constraint],
) -> Study:
    """The one-shot study of ``strategy`` searching ``evaluator``'s space (its ``space``
    attribute) under ``objective`` and ``constraints``, named ``study_name`` (a fresh name
    by default).

    Raises:
        StudyConflictError: A study of that name exists with other settings.
    """
    from nasforge.storage import StudyRecord, get_storage
    from nasforge.study import check_evaluator

    space = str(evaluator.space)
    check_evaluator(evaluator, space, [objective], constraints)
    store = get_storage(storage)
    options: dict[str, Any] = {"oneshot": True}
    if constraints:
        options["constraints"] = [str(c) for c in constraints]
    record = StudyRecord(
        name=study_name or f"{space}-{strategy}-seed{seed}-{os.urandom(4).hex()}",
        space=space,
        strategy=strategy,
        seed=int(seed),
        objectives=(str(objective),),
        strategy_params=dict(params),
        space_params={},
        evaluator=evaluator.spec(),
        options=options,
    )
    return open_recorded(store, record)


def open_recorded(store: Any, record: Any) -> Study:
    """The study ``record`` names in ``store``: created from ``record``, or opened when it
    exists with the same settings.

    Raises:
        StudyConflictError: The stored study has other settings (they are listed).
    """
    from nasforge.errors import StudyConflictError
    from nasforge.study._study import Study

    existing = store.get_study(record.name)
    if existing is None:
        return Study(store.create_study(record), store)
    diffs = existing.differences(record)
    if diffs:
        raise StudyConflictError(
            f"Study {record.name!r} already exists with other settings ({'; '.join(diffs)}). "
            "Use another study name, or the stored settings to resume it."
        )
    return Study(existing, store)
