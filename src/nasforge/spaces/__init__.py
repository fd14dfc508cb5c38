"""Search spaces: what can be built. ``create("nb201")`` builds one by name.

A name ``"<space>+<form>"`` builds a registered space wrapped in a *form* that adds decisions
or changes how networks are built (:data:`FORMS`): ``"mobilenet+quant"`` adds a precision
decision per layer to the ``mobilenet`` space (:mod:`nasforge.spaces.quantized`),
``"nb201+binary"`` builds every network of ``nb201`` in binary form
(:mod:`nasforge.spaces.binary`). Forms compose left to right and the full name is what a study
records, so a study of a wrapped space resumes like any other.
"""

from __future__ import annotations

import importlib
from typing import Any

from nasforge.errors import UnknownNameError
from nasforge.registry import Registry
from nasforge.spaces.base import SearchSpace

__all__ = ["FORMS", "SearchSpace", "create", "get", "names", "register"]

_REGISTRY: Registry[SearchSpace] = Registry("search space", __name__)
register = _REGISTRY.register

#: Forms a space name can end with (``"<space>+<form>"``) and the ``module:class`` that wraps
#: the space in it; the class takes the base space as its first argument.
FORMS: dict[str, str] = {
    "binary": "nasforge.spaces.binary:BinarySpace",
    "quant": "nasforge.spaces.quantized:QuantizedSpace",
    "recipe": "nasforge.spaces.recipe:RecipeSpace",
}


def _form(name: str) -> Any:
    module, _, attribute = FORMS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def create(name: str, **kwargs: Any) -> SearchSpace:
    """The search space registered as ``name`` (``"nb201"``), built with ``kwargs``.

    A name ``"<space>+<form>"`` wraps the space ``<space>`` (built without arguments) in the
    form (:data:`FORMS`), which takes ``kwargs``.
    """
    base, plus, form = name.rpartition("+")
    if not plus or name in _REGISTRY:
        return _REGISTRY.create(name, **kwargs)
    if form not in FORMS:
        raise UnknownNameError("space form", form, FORMS)
    wrapper = _form(form)
    space: SearchSpace = wrapper(create(base), **kwargs)
    return space


def get(name: str) -> Any:
    """The class (or factory) registered as ``name``, without building it (for a name with a
    form, the form's class)."""
    base, plus, form = name.rpartition("+")
    if not plus or name in _REGISTRY:
        return _REGISTRY.get(name)
    if form not in FORMS:
        raise UnknownNameError("space form", form, FORMS)
    get(base)
    return _form(form)


def names() -> list[str]:
    """Names of the registered search spaces (wrapped names such as ``"nb201+quant"`` are
    not listed; any registered name takes any form of :data:`FORMS`)."""
    return _REGISTRY.names()
