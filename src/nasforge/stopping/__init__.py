"""Early-stopping rules: which running trials to end on their intermediate reports.

``create_study(..., stopping="asha", stopping_params={"min_step": 1})`` gives a study a
rule; an evaluator that reports (``takes_context = True``: the ``function`` evaluator, the
training evaluator) asks it through :meth:`nasforge.reporting.TrialContext.should_stop`. The
rules: ``median`` (Google Vizier's median stopping rule), ``successive-halving``,
``hyperband`` and ``asha``. ``create("asha", min_step=1)`` builds one by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge.registry import Registry, keyword_params
from nasforge.stopping.base import ReportHistory, StoppingRule

__all__ = ["ReportHistory", "StoppingRule", "create", "from_spec", "get", "names", "register"]

_REGISTRY: Registry[StoppingRule] = Registry("stopping rule", __name__)
register = _REGISTRY.register


def create(name: str, **params: Any) -> StoppingRule:
    """The stopping rule registered as ``name``, with its parameters.

    Raises:
        UnknownNameError: No rule of that name (the valid names are listed).
        InvalidConfigError: A parameter the rule does not take (its parameters are listed)
            or a value out of range.
    """
    factory = _REGISTRY.get(name)
    keyword_params(factory, params, "stopping rule", name)
    return factory(**params)


def from_spec(spec: Mapping[str, Any]) -> StoppingRule:
    """The rule of a spec as :meth:`StoppingRule.spec` writes it (``{"name": ..., ...}``)."""
    params = dict(spec)
    return create(str(params.pop("name")), **params)


def get(name: str) -> Any:
    """The class registered as ``name``."""
    return _REGISTRY.get(name)


def names() -> list[str]:
    """Names of the registered stopping rules."""
    return _REGISTRY.names()
