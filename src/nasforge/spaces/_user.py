"""Spaces of the user's own, named by import path: ``"package.module:attribute"``.

:func:`nasforge.spaces.create` hands such a name here. The attribute is imported and made a
space by its kind:

* a :class:`~nasforge.spaces.SearchSpace` object or class: that space (a class is built with
  the keyword arguments), renamed to the import path;
* an ``nn.Module`` class or a function without arguments that returns a model (with
  ``LayerChoice``/``ValueChoice`` of :mod:`nasforge.nn`):
  :class:`nasforge.spaces.module.ModuleSpace`;
* a function of one argument, the trial: :class:`~nasforge.spaces.define_by_run.DefineByRunSpace`.

The space's name is the import path, so a study records it and every process that resumes the
study (``load_study``, ``nasforge worker``) imports it again. Spaces made from objects in this
process (:func:`from_function`, :func:`from_module`, or an object given to ``create_study``) are
also kept here by name, so that a study in memory finds them even where the name cannot be
imported (a function defined inside another one, a lambda).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any

from nasforge.errors import InvalidConfigError, NasforgeError, abbreviate
from nasforge.spaces.base import SearchSpace

__all__ = [
    "build_settings",
    "create",
    "from_function",
    "from_module",
    "is_user_name",
    "object_name",
    "remember",
    "same_space",
    "space_class",
    "unrebuildable",
]

#: Spaces made from objects in this process, by name.
_LIVE: dict[str, SearchSpace] = {}
#: Spaces built from import paths: (name, settings) -> (the imported object, the space).
_BUILT: dict[tuple[str, str], tuple[Any, SearchSpace]] = {}

_KINDS = (
    "a space is named by a SearchSpace (object or class), an nn.Module class or a function "
    "without arguments that returns one (a model with nasforge.nn choices), or a function of "
    "one argument, the trial, that draws choices (a define-by-run space)"
)


def is_user_name(name: str) -> bool:
    """Whether ``name`` names a user's space: an import path, or a space kept in memory."""
    return name in _LIVE or ":" in name


def object_name(obj: Any) -> str:
    """``"module:qualname"`` of a function or class."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise InvalidConfigError(
            f"{abbreviate(obj)} has no module and qualified name to be named by; give name=..."
        )
    return f"{module}:{qualname}"


def _import(name: str) -> Any:
    """The object ``"package.module:attribute"`` names.

    Raises:
        InvalidConfigError: Not such a path, a module that cannot be imported (with a hint on
            the import path) or fails to, or a missing attribute.
    """
    module_name, colon, attribute = name.partition(":")
    if not colon or not module_name.strip() or not attribute.strip():
        raise InvalidConfigError(
            f"A space of your own is named 'package.module:attribute', got {name!r}; e.g. "
            "'my_space:make_model' for the function make_model of my_space.py."
        )
    if "<locals>" in attribute or "<lambda>" in attribute:
        raise InvalidConfigError(
            f"Space {name!r} comes from a function defined inside another function or a "
            "lambda, which cannot be imported by name; it exists only in the process that made "
            "it (nasforge.spaces.from_function). Define it at the top level of a module."
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(f"{missing}.")):
            raise InvalidConfigError(
                f"Space {name!r}: no module {missing!r} can be imported. Put the folder that "
                f"holds {module_name.replace('.', '/')}.py on PYTHONPATH, or work from that "
                "folder (the nasforge command adds the current folder to the import path)."
            ) from None
        raise InvalidConfigError(
            f"Space {name!r}: importing module {module_name!r} failed: {exc}."
        ) from exc
    except Exception as exc:
        raise InvalidConfigError(
            f"Space {name!r}: importing module {module_name!r} raised {type(exc).__name__}: {exc}."
        ) from exc
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            script = (
                " (module __main__ is the script being run: a space defined in a script "
                "resumes only from that script; move it to a module to use it elsewhere)"
                if module_name == "__main__"
                else ""
            )
            raise InvalidConfigError(
                f"Space {name!r}: module {module_name!r} has no attribute {attribute!r}"
                f"{script}; check the spelling after the ':'."
            ) from None
    return found


def _is_module_class(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, type) and issubclass(obj, torch.nn.Module)


def _is_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _required_positional(fn: Any) -> int | None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(
        1
        for p in signature.parameters.values()
        if p.kind in kinds and p.default is inspect.Parameter.empty
    )


def _kind(obj: Any, label: str) -> str:
    """``"instance"``, ``"class"`` (of a SearchSpace), ``"module"`` (ModuleSpace) or
    ``"define-by-run"``; a clear error for any other object."""
    if isinstance(obj, SearchSpace):
        return "instance"
    if isinstance(obj, type):
        if issubclass(obj, SearchSpace):
            return "class"
        if _is_module_class(obj):
            return "module"
        raise InvalidConfigError(f"{label} is the class {obj.__qualname__}; {_KINDS}.")
    if _is_module(obj):
        raise InvalidConfigError(
            f"{label} is an nn.Module object ({type(obj).__name__}); give its class or a "
            "function without arguments that builds it, so that every architecture builds a "
            "fresh model."
        )
    if callable(obj):
        required = _required_positional(obj)
        if required == 0:
            return "module"
        if required == 1:
            return "define-by-run"
        took = "an unreadable signature" if required is None else f"{required} arguments"
        raise InvalidConfigError(f"{label} is a callable taking {took}; {_KINDS}.")
    raise InvalidConfigError(f"{label} is a {type(obj).__name__} object; {_KINDS}.")


def _module_space() -> Any:
    try:
        from nasforge.spaces.module import ModuleSpace
    except ImportError as exc:
        raise InvalidConfigError(
            f"A model with nasforge.nn choices needs nasforge.spaces.module, which failed to "
            f"import: {exc}."
        ) from exc
    return ModuleSpace


def _make(obj: Any, kind: str, name: str, kwargs: Mapping[str, Any]) -> SearchSpace:
    """The space of ``obj`` (of ``kind``) named ``name``."""
    space: SearchSpace
    try:
        if kind == "instance":
            if kwargs:
                raise InvalidConfigError(
                    f"Space {name!r} is an object already built; settings "
                    f"({', '.join(kwargs)}) apply to a class or function."
                )
            space = obj if obj.name == name else copy.copy(obj)
        elif kind == "class":
            space = obj(**kwargs)
        elif kind == "module":
            space = _module_space()(obj, name=name, **kwargs)
        else:
            from nasforge.spaces.define_by_run import DefineByRunSpace

            space = DefineByRunSpace(obj, name=name, **kwargs)
    except TypeError as exc:
        if not kwargs:
            raise
        raise InvalidConfigError(
            f"Space {name!r} does not take the settings {dict(kwargs)!r}: {exc}."
        ) from None
    if space.name != name:
        space.name = name
    return space


def create(name: str, **kwargs: Any) -> SearchSpace:
    """The space ``name`` names: one kept in memory, else the import path's object made a
    space (built once per object and settings)."""
    live = _LIVE.get(name)
    if live is not None:
        if kwargs:
            raise InvalidConfigError(
                f"Space {name!r} was made from an object in this process; it takes no settings "
                f"({', '.join(kwargs)})."
            )
        return live
    return _create_imported(name, kwargs)


def _create_imported(name: str, kwargs: Mapping[str, Any]) -> SearchSpace:
    obj = _import(name)
    key = (name, repr(sorted(kwargs.items())))
    built = _BUILT.get(key)
    if built is not None and built[0] is obj:
        return built[1]
    space = _make(obj, _kind(obj, f"Space {name!r}"), name, kwargs)
    _BUILT[key] = (obj, space)
    return space


def space_class(name: str) -> type[SearchSpace]:
    """The class of the space ``name`` names, without building it."""
    live = _LIVE.get(name)
    if live is not None:
        return type(live)
    obj = _import(name)
    kind = _kind(obj, f"Space {name!r}")
    if kind == "instance":
        return type(obj)
    if kind == "class":
        return obj  # type: ignore[no-any-return]
    if kind == "module":
        return _module_space()  # type: ignore[no-any-return]
    from nasforge.spaces.define_by_run import DefineByRunSpace

    return DefineByRunSpace


def remember(space: SearchSpace) -> None:
    """Keep ``space`` under its name for this process (``create(space.name)`` returns it)."""
    _LIVE[space.name] = space


def _source(space: SearchSpace) -> Any:
    """The user's function or class a space was made from (``None`` for other spaces)."""
    for attribute in ("fn", "factory"):
        found = getattr(space, attribute, None)
        if found is not None:
            return found
    return None


def _free_name(name: str, source: Any) -> str:
    """``name``, or ``name#2``, ``#3``... when another object's space holds it in memory."""
    candidate, n = name, 1
    while candidate in _LIVE and _source(_LIVE[candidate]) is not source:
        n += 1
        candidate = f"{name}#{n}"
    return candidate


def _from_object(
    obj: Any, name: str | None, make: Callable[[str], SearchSpace], what: str
) -> SearchSpace:
    if name is None:
        name = _free_name(object_name(obj), obj)
    elif not isinstance(name, str) or not name.strip():
        raise InvalidConfigError(f"The name of a {what} must be non-empty text, got {name!r}.")
    space = make(name)
    remember(space)
    return space


def from_function(fn: Callable[..., Any], *, name: str | None = None, **kwargs: Any) -> Any:
    """The define-by-run space of ``fn(trial)``, named ``"module:qualname"`` (or ``name``).

    Any function works in this process; a study in a persistent storage also needs the name
    to import it in other processes (a function at the top level of a module), and refuses a
    lambda or a function defined inside another function. ``kwargs`` go to
    :class:`~nasforge.spaces.define_by_run.DefineByRunSpace` (``max_runs``).
    """
    from nasforge.spaces.define_by_run import DefineByRunSpace

    if _required_positional(fn) != 1:
        raise InvalidConfigError(
            f"from_function takes a function of one argument, the trial, got "
            f"{abbreviate(fn)}; for a model class or a function without arguments use "
            "nasforge.spaces.from_module."
        )
    return _from_object(
        fn, name, lambda n: DefineByRunSpace(fn, name=n, **kwargs), "define-by-run space"
    )


def from_module(factory: Callable[[], Any], *, name: str | None = None, **kwargs: Any) -> Any:
    """The space of the choices (``nasforge.nn``) in the model ``factory()`` builds (an
    ``nn.Module`` class or a function without arguments), named ``"module:qualname"`` (or
    ``name``): a :class:`nasforge.spaces.module.ModuleSpace`."""
    if _kind(factory, f"from_module's {abbreviate(factory)}") != "module":
        raise InvalidConfigError(
            f"from_module takes an nn.Module class or a function without arguments, got "
            f"{abbreviate(factory)}; for a function of the trial use "
            "nasforge.spaces.from_function."
        )
    return _from_object(
        factory, name, lambda n: _module_space()(factory, name=n, **kwargs), "module space"
    )


def from_object(obj: Any) -> SearchSpace:
    """The space of a user's object (as an import path's object is made one), kept here."""
    kind = _kind(obj, f"The space {abbreviate(obj)}")
    if kind == "instance":
        return obj  # type: ignore[no-any-return]
    if kind == "define-by-run":
        return from_function(obj)  # type: ignore[no-any-return]
    if kind == "module":
        return from_module(obj)  # type: ignore[no-any-return]
    return _from_object(obj, None, lambda n: _make(obj, kind, n, {}), "space")


def same_space(a: SearchSpace, b: SearchSpace) -> bool:
    """Whether two user spaces are the same: one class, made from the same function or
    class, or (for others) holding equal attributes."""
    if a is b:
        return True
    if type(a) is not type(b) or a.name != b.name:
        return False
    if _source(a) is not None or _source(b) is not None:
        return _source(a) is _source(b)
    try:
        return bool(vars(a) == vars(b))
    except Exception:  # attributes that do not compare
        return False


def unrebuildable(space: SearchSpace) -> str | None:
    """Why another process could not rebuild ``space`` from its name (``None`` if it can)."""
    name = space.name
    if ":" not in name:
        return (
            f"its name {name!r} is not an import path 'package.module:attribute' (make it with "
            "nasforge.spaces.from_function or from_module, which name it so)"
        )
    try:
        other = _create_imported(name, {})
    except NasforgeError as exc:
        return str(exc)
    if not same_space(space, other):
        return f"importing {name!r} gives another space ({other!r}) than the one given"
    return None


def build_settings(
    kwargs: Mapping[str, Any],
    params: Mapping[str, inspect.Parameter],
    names: Collection[str],
    refuse: Callable[[str], NasforgeError],
) -> dict[str, Any]:
    """The build settings of ``kwargs`` that a user's function or model class takes: those
    it names (``names``, among its ``params``), or all where it takes ``**kwargs``.
    ``num_classes`` and ``resolution``, which evaluators pass to every space, are dropped
    where it does not take them; any other setting is refused with ``refuse(key)``."""
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    given: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in names or open_ended:
            given[key] = value
        elif key not in ("num_classes", "resolution"):
            raise refuse(key)
    return given
