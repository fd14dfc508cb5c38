"""Exception classes of nasforge.

Every error nasforge raises on bad input is a :class:`NasforgeError`. Each message says what
was wrong, what was received and how to fix it; the command-line interface prints it as one
line and exits with code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "EvaluationFailuresError",
    "InfeasibleConstraintError",
    "InvalidArchitectureError",
    "InvalidConfigError",
    "MissingDependencyError",
    "NameConflictError",
    "NasforgeError",
    "PluginError",
    "StorageError",
    "StudyConflictError",
    "StudyDeletedError",
    "StudyNotFoundError",
    "UnknownNameError",
    "UnsupportedOperationError",
]


class NasforgeError(Exception):
    """Base class of every error nasforge raises on purpose.

    Every subclass survives :mod:`pickle` (a process-pool or Ray worker sends its errors to
    the main process that way), also one whose constructor takes other arguments than its
    message: an error is rebuilt from its message and attributes, without calling
    ``__init__`` again.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """An unpickled :class:`NasforgeError`: its class, message and attributes, as sent."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class InvalidArchitectureError(NasforgeError, ValueError):
    """An architecture string, tuple or index is not a member of the search space."""


class UnknownNameError(NasforgeError, ValueError):
    """A name (space, strategy, dataset, metric, ...) is not one of the known names.

    The message lists the valid names and the closest match.
    """

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(unknown_name_message(kind, name, self.valid))


class StudyNotFoundError(UnknownNameError):
    """No study of this name in the storage (or it was deleted); the message names the
    storage (URL with its password hidden) and lists its studies."""

    def __init__(self, name: str, storage: str, studies: Iterable[str]) -> None:
        self.kind = "study"
        self.name = name
        self.storage = storage
        self.valid = sorted(studies)
        shown = ", ".join(self.valid[:30]) if self.valid else "none"
        if len(self.valid) > 30:
            shown += f" and {len(self.valid) - 30} more"
        close = difflib.get_close_matches(name, self.valid, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        Exception.__init__(
            self, f"No study {abbreviate(name)} in {storage}; its studies: {shown}.{hint}"
        )


class InvalidConfigError(NasforgeError, ValueError):
    """A parameter value is out of range or inconsistent with another one."""


class StorageError(NasforgeError):
    """The study storage cannot be opened, read or written (bad URL, corrupt database...)."""


class StudyConflictError(StorageError):
    """A study exists under this name with other settings (space, strategy, seed, ...)."""


class StudyDeletedError(StorageError):
    """The study was deleted from its storage while a worker was running it."""


class InfeasibleConstraintError(NasforgeError, ValueError):
    """No architecture seen meets a constraint; the message gives the tightest value found."""


class EvaluationFailuresError(NasforgeError, RuntimeError):
    """Every one of many trials in a row failed in the evaluator: the search stops instead of
    spinning (a broken evaluator never spends a budget); the message gives the last reason."""


class UnsupportedOperationError(NasforgeError, TypeError):
    """A component was asked for something it does not provide (e.g. a space without a model)."""


class MissingDependencyError(NasforgeError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class NameConflictError(NasforgeError, ValueError):
    """Two components register the same name; the message names where each comes from."""


class PluginError(NasforgeError, ImportError):
    """A plugin (an entry point of another distribution) could not be loaded; the message
    names the distribution and the entry point."""


def unknown_name_message(kind: str, name: str, valid: Iterable[str]) -> str:
    """Build the message for an unknown name: the valid names and the closest match."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"Unknown {kind} {abbreviate(name)}; choose from {', '.join(valid)}.{hint}"


def abbreviate(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut in the middle to ``limit`` characters when longer (for messages
    that echo what a user typed)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    half = (limit - 3) // 2
    return f"{text[:half]}...{text[-half:]}"
