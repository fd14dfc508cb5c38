"""Search spaces: what can be built. ``create("nb201")`` builds one by name.

A name ``"<space>+<form>"`` builds a registered space wrapped in a *form* that adds decisions
or changes how networks are built (:data:`FORMS`): ``"mobilenet+quant"`` adds a precision
decision per layer to the ``mobilenet`` space (:mod:`nasforge.spaces.quantized`),
``"nb201+binary"`` builds every network of ``nb201`` in binary form
(:mod:`nasforge.spaces.binary`). Forms compose left to right and the full name is what a study
records, so a study of a wrapped space resumes like any other.

A name ``"package.module:attribute"`` builds a space of the user's own by importing the
attribute (:mod:`nasforge.spaces._user`): a :class:`SearchSpace` object or class, a model with
``nasforge.nn`` choices (an ``nn.Module`` class or a function without arguments:
:class:`nasforge.spaces.module.ModuleSpace`), or a define-by-run function of the trial
(:class:`~nasforge.spaces.define_by_run.DefineByRunSpace`). :func:`from_function` and
:func:`from_module` make the same spaces from the objects themselves.
"""

from __future__ import annotations

import importlib
from typing import Any

from nasforge.errors import UnknownNameError
from nasforge.registry import Registry
from nasforge.spaces import _user
from nasforge.spaces._user import from_function, from_module
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.define_by_run import ArchTrial, DefineByRunSpace

__all__ = [
    "FORMS",
    "ArchTrial",
    "DefineByRunSpace",
    "SearchSpace",
    "create",
    "from_function",
    "from_module",
    "get",
    "names",
    "register",
]

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
    form (:data:`FORMS`), which takes ``kwargs``. A name ``"package.module:attribute"`` imports
    a space of the user's own (see the module docstring); ``kwargs`` then go to its class or to
    the space made of it.
    """
    base, plus, form = name.rpartition("+")
    if not plus or name in _REGISTRY:
        if name not in _REGISTRY and _user.is_user_name(name):
            return _user.create(name, **kwargs)
        try:
            return _REGISTRY.create(name, **kwargs)
        except UnknownNameError as error:
            if error.args and isinstance(error.args[0], str) and name not in _REGISTRY:
                error.args = (
                    f"{error.args[0]} A space of your own is named by its import path, "
                    "'package.module:attribute'.",
                )
            raise
    if form not in FORMS:
        raise UnknownNameError("space form", form, FORMS)
    wrapper = _form(form)
    space: SearchSpace = wrapper(create(base), **kwargs)
    return space


def get(name: str) -> Any:
    """The class (or factory) registered as ``name``, without building it (for a name with a
    form, the form's class; for a user's ``"package.module:attribute"``, the class of the space
    :func:`create` makes of it)."""
    base, plus, form = name.rpartition("+")
    if not plus or name in _REGISTRY:
        if name not in _REGISTRY and _user.is_user_name(name):
            return _user.space_class(name)
        return _REGISTRY.get(name)
    if form not in FORMS:
        raise UnknownNameError("space form", form, FORMS)
    get(base)
    return _form(form)


def names() -> list[str]:
    """Names of the registered search spaces (wrapped names such as ``"nb201+quant"`` are
    not listed; any registered name takes any form of :data:`FORMS`; nor are the user's
    spaces, named by their import path ``"package.module:attribute"``)."""
    return _REGISTRY.names()
