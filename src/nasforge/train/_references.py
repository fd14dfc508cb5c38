"""Objects of the user's code named by import path, ``"package.module:attribute"``.

A study records what it cannot pickle by name: the training function of the ``function``
evaluator, the data set, loss and metric of the training evaluator. Another process (a second
``nasforge worker``, a pool process, a Ray task) imports the same name and gets the same
object. Plain Python, no torch.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any

from nasforge.errors import InvalidConfigError

__all__ = ["is_reference", "load_reference", "reference_of"]

_NAME = r"[A-Za-z_]\w*"
_REFERENCE = re.compile(rf"^{_NAME}(\.{_NAME})*:{_NAME}(\.{_NAME})*$")


def is_reference(value: Any) -> bool:
    """Whether ``value`` is text of the form ``"package.module:attribute"``."""
    return isinstance(value, str) and _REFERENCE.match(value.strip()) is not None


def load_reference(text: str, what: str) -> Any:
    """The object ``text`` (``"package.module:attribute.sub"``) names.

    The module is imported as Python finds it; when its top package is not found, the
    current folder is tried too (a console script does not put it on ``sys.path``).

    Args:
        text: The import path.
        what: What the object is for, for the messages (``"training function"``...).

    Raises:
        InvalidConfigError: Not of the form ``module:attribute``, a module that cannot be
            imported (the error is named) or an attribute it lacks.
    """
    if not is_reference(text):
        raise InvalidConfigError(
            f"The {what} must be named as 'package.module:attribute' (an importable module and "
            f"a name in it), got {text!r}."
        )
    module_name, _, attribute = text.strip().partition(":")
    try:
        module = _import(module_name)
    except ImportError as err:
        raise InvalidConfigError(
            f"Cannot import module {module_name!r} of the {what} {text!r}: {err}. Make it "
            "importable in every process that runs trials (install the package, or add its "
            "folder to PYTHONPATH)."
        ) from None
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise InvalidConfigError(
                f"Module {module_name!r} has no attribute {attribute!r} (the {what} {text!r})."
            )
        value = getattr(value, part)
    return value


def reference_of(value: Any) -> str | None:
    """The import path that gives back ``value`` (a module-level function, class or object
    of an importable module), or ``None``: a lambda, a local function, or a name defined in
    a script run as ``__main__`` (another process cannot import it)."""
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    if module == "__main__" or "<" in qualname:
        return None
    text = f"{module}:{qualname}"
    try:
        found = load_reference(text, "object")
    except InvalidConfigError:
        return None
    return text if found is value else None


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        here = os.getcwd()
        top = name.partition(".")[0]
        if err.name != top or here in sys.path:
            raise
        sys.path.append(here)
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            sys.path.remove(here)
            raise
