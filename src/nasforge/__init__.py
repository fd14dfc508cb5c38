"""nasforge: neural architecture search on PyTorch.

A study asks a strategy what to try next in a search space, hands each architecture to an
evaluator through an executor, and records every trial in a storage::

    import nasforge
    study = nasforge.create_study(space="nb201", strategy="regularized-evolution", seed=0)
    study.optimize(nasforge.evaluators.create("tabular", dataset="cifar10"), n_trials=100)
    print(study.best_trial.arch, study.best_trial.metrics["test_acc"])
"""

from __future__ import annotations

__version__ = "0.1.0"

from nasforge import errors, evaluators, spaces, strategies, tabular
from nasforge.architecture import Architecture
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.study import Study, create_study, load_study
from nasforge.trial import Direction, Objective, Proposal, Result, Trial, TrialState

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
