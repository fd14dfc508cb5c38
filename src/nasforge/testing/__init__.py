"""Contract checks that every registered component must pass, used by nasforge's own tests
and usable by anyone who writes a component of their own (a plugin).

* :func:`check_space`, :func:`check_strategy`, :func:`check_evaluator`,
  :func:`check_benchmark` (:mod:`nasforge.testing.contracts`);
* :func:`check_proxy`, :func:`check_oneshot` (:mod:`nasforge.testing.models`; they import
  torch when they run);
* the storage contract, a pytest class to subclass: :mod:`nasforge.testing.storages`
  (imports pytest, so it is not imported here).

Example:
    >>> from nasforge import spaces
    >>> from nasforge.testing import check_space
    >>> check_space(spaces.create("nb201"), samples=5)
"""

from nasforge.testing.contracts import (
    HashEvaluator,
    check_benchmark,
    check_evaluator,
    check_space,
    check_strategy,
)
from nasforge.testing.models import check_oneshot, check_proxy

__all__ = [
    "HashEvaluator",
    "check_benchmark",
    "check_evaluator",
    "check_oneshot",
    "check_proxy",
    "check_space",
    "check_strategy",
]
