"""Name registries: each leaf component registers itself by name with a decorator.

A registry belongs to one sub-package (``nasforge.spaces``, ``nasforge.strategies``, ...). On
first use it imports every public module of that package, so that a new strategy or space is
one new file and nothing else: its ``@register`` decorator runs when the registry looks. Leaf
modules therefore must not import heavy libraries (torch, ray) at module level.

Plugins
-------
Other distributions add components through entry points, one group per registry:

=======================  ============================  =====================================
group                    registry                      what the entry point names
=======================  ============================  =====================================
``nasforge.spaces``      ``nasforge.spaces``           a :class:`~nasforge.spaces.SearchSpace`
``nasforge.strategies``  ``nasforge.strategies``       a :class:`~nasforge.strategies.Strategy`
``nasforge.evaluators``  ``nasforge.evaluators``       an :class:`~nasforge.evaluators.Evaluator`
``nasforge.proxies``     ``nasforge.proxies``          a :class:`~nasforge.proxies.Proxy`
``nasforge.oneshot``     ``nasforge.oneshot``          a :class:`~nasforge.oneshot.OneShotMethod`
``nasforge.benchmarks``  ``nasforge.tabular``          a :class:`~nasforge.tabular.TabularBenchmark`
=======================  ============================  =====================================

Each entry point names a class or factory (``module:attribute``), and is registered under
the entry point's name, exactly as if it had been decorated with ``@register(name)``. In a
``pyproject.toml``::

    [project.entry-points."nasforge.spaces"]
    chain = "nasforge_chain.space:ChainSpace"

    [project.entry-points."nasforge.strategies"]
    walk = "nasforge_chain.walk:RandomWalk"

Plugins are loaded with nasforge's own modules, when a registry is first looked at (never at
``import nasforge``), in a fixed order: nasforge's modules first, then the entry points
sorted by distribution and name. So a plugin module, like a leaf, imports heavy libraries
inside its functions. A plugin that fails to load is logged, listed by :meth:`Registry.problems`
and named, with its distribution and entry point, by :class:`~nasforge.errors.PluginError`
when its name is asked for; the other plugins load as usual. A plugin whose name is already
taken is refused (:class:`~nasforge.errors.NameConflictError`, naming both origins) and the
first owner keeps the name: nasforge's own components always win over plugins. Proxy names
use underscores (``my_proxy``), as ``nasforge.proxies.create`` reads a dash as one.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import pkgutil
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from nasforge.errors import InvalidConfigError, NameConflictError, PluginError, UnknownNameError

T = TypeVar("T")
logger = logging.getLogger(__name__)

__all__ = ["ENTRY_POINT_GROUPS", "Registry", "keyword_params"]

#: The entry-point group that feeds the registry of each package.
ENTRY_POINT_GROUPS: dict[str, str] = {
    "nasforge.spaces": "nasforge.spaces",
    "nasforge.strategies": "nasforge.strategies",
    "nasforge.evaluators": "nasforge.evaluators",
    "nasforge.proxies": "nasforge.proxies",
    "nasforge.oneshot": "nasforge.oneshot",
    "nasforge.tabular": "nasforge.benchmarks",
}


def keyword_params(
    factory: Any, params: Any, kind: str, name: str, *, exclude: tuple[str, ...] = ()
) -> list[str]:
    """The keyword-only parameters of ``factory`` (less ``exclude``), after refusing any name
    in ``params`` that is not one of them.

    Raises:
        InvalidConfigError: ``Unknown parameter 'x' (did you mean 'y'?) for <kind> '<name>';
            its parameters are: ...`` for the names ``factory`` does not take.
    """
    accepted = [
        key
        for key, p in inspect.signature(factory).parameters.items()
        if key not in exclude and p.kind is p.KEYWORD_ONLY
    ]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, accepted, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise InvalidConfigError(
            f"Unknown parameter {', '.join(hints)} for {kind} {name!r}; its parameters "
            f"are: {', '.join(accepted) or 'none'}."
        )
    return accepted


def _where(factory: Any) -> str:
    """``module.QualifiedName`` of a registered factory."""
    module = getattr(factory, "__module__", None) or "?"
    qualname = getattr(factory, "__qualname__", None) or type(factory).__name__
    return f"{module}.{qualname}"


def _distribution_of(module: str) -> str | None:
    """The installed distribution that provides top-level package of ``module``, if known."""
    from importlib.metadata import packages_distributions

    names = packages_distributions().get(module.partition(".")[0], [])
    return names[0] if names else None


_SCANNED: tuple[tuple[str, ...], Any] | None = None  # (sys.path, every entry point)


def _entry_points(group: str) -> list[Any]:
    """The entry points of ``group``; every group is read in one scan of ``sys.path``,
    repeated only when ``sys.path`` changes."""
    global _SCANNED
    from importlib.metadata import entry_points

    key = tuple(sys.path)
    if _SCANNED is None or _SCANNED[0] != key:
        _SCANNED = (key, entry_points())
    return list(_SCANNED[1].select(group=group))


class Registry(Generic[T]):
    """A mapping from user-facing names (kebab-case) to factories.

    Args:
        kind: What the registry holds, in words (``"strategy"``); used in error messages.
        package: The package whose modules are imported on first look-up, or ``None``.
        group: The entry-point group whose plugins are loaded on first look-up; by default
            the group of ``package`` in :data:`ENTRY_POINT_GROUPS` (none for other packages).

    Example:
        >>> widgets: Registry[object] = Registry("widget")
        >>> @widgets.register("blue-widget")
        ... class BlueWidget:
        ...     pass
        >>> widgets.names(), type(widgets.create("blue-widget")).__name__
        (['blue-widget'], 'BlueWidget')
    """

    def __init__(self, kind: str, package: str | None = None, *, group: str | None = None) -> None:
        self.kind = kind
        self._package = package
        self.group = group if group is not None else ENTRY_POINT_GROUPS.get(package or "")
        self._entries: dict[str, Callable[..., T]] = {}
        self._origins: dict[str, str] = {}
        self._discovered = package is None and self.group is None
        self._discovering = False  # True while this registry's discovery is under way
        self._discovery_lock = threading.RLock()
        self._broken: dict[str, str] = {}  # nasforge module that failed to import -> reason
        self._failed_plugins: dict[str, str] = {}  # entry-point name -> full message
        self._loading: str | None = None  # the plugin being loaded, for decorator origins

    # -- registering --------------------------------------------------------------------------
    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Class or function decorator that registers a factory under ``name``.

        Raises:
            NameConflictError: Another factory already has ``name`` (both origins named).
        """

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            origin = _where(factory)
            if self._loading is not None:
                origin = f"{origin} from {self._loading}"
            self._add(name, factory, origin)
            return factory

        return decorator

    def _add(self, name: str, factory: Callable[..., T], origin: str) -> None:
        existing = self._entries.get(name)
        if existing is not None and existing is not factory:
            same = _where(existing) == _where(factory)  # a module imported again
            if not same:
                raise NameConflictError(
                    f"{self.kind} {name!r} of {self._described(origin)} is refused: the name "
                    f"is already registered by {self._described(self._origins[name])}. Rename "
                    "one of them, or uninstall the plugin that brings the unwanted one."
                )
        self._entries[name] = factory
        if existing is not factory or self._loading is not None:
            self._origins[name] = origin
        factory.registry_name = name  # type: ignore[attr-defined]

    @staticmethod
    def _described(origin: str) -> str:
        """``origin``, with the distribution of its module added when that is not said yet."""
        if "distribution" in origin:
            return origin
        distribution = _distribution_of(origin)
        return f"{origin} (distribution {distribution!r})" if distribution else origin

    # -- discovery ----------------------------------------------------------------------------
    def _discover(self) -> None:
        """Import the package's modules and load the plugins, once. Another thread asking
        meanwhile waits until every entry is in (it would otherwise be told that a name
        does not exist); a look-up made by a module being imported here returns at once."""
        if self._discovered:
            return
        with self._discovery_lock:
            if self._discovered or self._discovering:
                return
            self._discovering = True
            try:
                if self._package is not None:
                    self._import_own_modules(self._package)
                if self.group:
                    self._load_plugins(self.group)
            finally:
                self._discovering = False
                self._discovered = True

    def _import_own_modules(self, package_name: str) -> None:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            if module.name.startswith("_") or module.name == "base":
                continue
            name = f"{package_name}.{module.name}"
            try:
                importlib.import_module(name)
            except Exception as exc:  # one broken leaf must not hide the others
                self._broken[name] = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "could not import %s, its %s is unavailable: %s", name, self.kind, exc
                )

    def _load_plugins(self, group: str) -> None:
        found = sorted(
            _entry_points(group),
            key=lambda ep: (ep.dist.name if ep.dist else "", ep.name, ep.value),
        )
        for ep in found:
            dist = ep.dist
            label = (
                f"plugin distribution {dist.name!r} {dist.version}" if dist else "a plugin"
            ) + f" (entry point '{ep.name} = {ep.value}' in group {group!r})"
            self._loading = label
            try:
                factory = ep.load()
                if isinstance(factory, types.ModuleType) or not callable(factory):
                    what = "a module" if isinstance(factory, types.ModuleType) else "no callable"
                    raise PluginError(
                        f"{label} names {what}; an entry point names the class or factory of "
                        f"its {self.kind}, e.g. '{ep.name} = {ep.module}:ClassName'."
                    )
                self._add(ep.name, factory, label)
            except NameConflictError as exc:
                self._refuse(ep.name, str(exc))
            except Exception as exc:  # one broken plugin must not hide the others
                if isinstance(exc, PluginError):
                    message = str(exc)
                else:
                    uninstall = f" (pip uninstall {dist.name})" if dist else ""
                    message = (
                        f"{label} failed to load: {type(exc).__name__}: {exc}. Fix the plugin "
                        f"or uninstall it{uninstall}."
                    )
                self._refuse(ep.name, message)
            finally:
                self._loading = None

    def _refuse(self, name: str, message: str) -> None:
        self._failed_plugins.setdefault(name, message)
        logger.warning("%s %r is unavailable: %s", self.kind, name, message)

    # -- looking up ---------------------------------------------------------------------------
    def get(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name``.

        Raises:
            PluginError: ``name`` is the entry point of a plugin that failed to load (its
                distribution, entry point and error are named).
            UnknownNameError: No such name; the valid ones and the closest are listed.
        """
        self._discover()
        try:
            return self._entries[name]
        except KeyError:
            pass
        if name in self._failed_plugins:
            raise PluginError(
                f"The {self.kind} {name!r} is unavailable: {self._failed_plugins[name]}"
            )
        error = UnknownNameError(self.kind, name, self._entries)
        if self._broken:
            failed = "; ".join(f"{m} ({reason})" for m, reason in self._broken.items())
            error.args = (f"{error.args[0]} Modules that failed to import: {failed}.",)
        raise error from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """Build the component registered under ``name`` with the given arguments."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        """The registered names, sorted (plugins included; those that failed to load are not,
        see :meth:`problems`)."""
        self._discover()
        return sorted(self._entries)

    def origin(self, name: str) -> str:
        """Where the component ``name`` comes from: its ``module.Class``, or the plugin
        distribution and entry point that brought it."""
        self.get(name)
        return self._origins[name]

    def problems(self) -> list[str]:
        """One sentence per module or plugin that failed to load or was refused."""
        self._discover()
        modules = [
            f"nasforge module {module} failed to import, its {self.kind} is unavailable: {reason}"
            for module, reason in self._broken.items()
        ]
        return modules + list(self._failed_plugins.values())

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
