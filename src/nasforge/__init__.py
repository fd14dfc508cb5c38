"""nasforge: neural architecture search on PyTorch.

A study asks a strategy what to try next in a search space, hands each architecture to an
evaluator through an executor, and records every trial in a storage::

    import nasforge
    study = nasforge.create_study(space="nb201", strategy="regularized-evolution", seed=0)
    study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), n_trials=100)
    print(study.best_trial.arch, study.best_trial.metrics["test_acc"])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from nasforge import errors, evaluators, spaces, strategies, tabular
from nasforge.architecture import Architecture
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.trial import Direction, Objective, Proposal, Result, Trial, TrialState

if TYPE_CHECKING:
    from nasforge.study import Study, create_study, load_study

#: Names loaded on first use, so that ``import nasforge`` stays cheap (the study and its
#: storage load with the first study).
_LAZY = dict.fromkeys(("Study", "create_study", "load_study"), "nasforge.study")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    try:  # a subpackage (nasforge.storage, nasforge.oneshot...) on first use
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


__all__ = [
    "Architecture",
    "Direction",
    "Objective",
    "Proposal",
    "Result",
    "SearchSpace",
    "Strategy",
    "Study",
    "Trial",
    "TrialState",
    "__version__",
    "create_study",
    "errors",
    "evaluators",
    "load_study",
    "spaces",
    "strategies",
    "tabular",
]
