"""Progress callbacks of a training evaluator, called before and after each epoch (private to
:mod:`nasforge.evaluators.training`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nasforge.errors import InvalidConfigError

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.train.trainer import EpochReport

__all__ = ["EpochCallbacks"]


class EpochCallbacks:
    """``on_epoch`` and the callbacks added with :meth:`add_epoch_callback`."""

    on_epoch: Callable[[Architecture, EpochReport], None] | None
    _epoch_callbacks: list[Callable[[Architecture, EpochReport], None]]

    def add_epoch_callback(self, callback: Callable[[Architecture, EpochReport], None]) -> None:
        """Call ``callback(arch, report)`` before the first epoch and after each epoch of every
        evaluation from now on, after ``on_epoch`` and the callbacks added before it.

        Callbacks say how to run, not what to compute: they are not part of :meth:`spec` and
        are dropped when the evaluator is pickled for a worker process.
        """
        if not callable(callback):
            raise InvalidConfigError(f"An epoch callback must be callable, got {callback!r}.")
        self._epoch_callbacks.append(callback)

    def remove_epoch_callback(self, callback: Callable[[Architecture, EpochReport], None]) -> None:
        """Stop calling ``callback``, added with :meth:`add_epoch_callback`.

        Raises:
            InvalidConfigError: ``callback`` was not added (or was removed already).
        """
        try:
            self._epoch_callbacks.remove(callback)
        except ValueError:
            raise InvalidConfigError(
                f"{callback!r} is not an epoch callback of this evaluator; add it with "
                "add_epoch_callback() first."
            ) from None

    def _epoch_callbacks_now(self) -> list[Callable[[Architecture, EpochReport], None]]:
        """``on_epoch`` (when given) and the added callbacks, in the order they are called."""
        first = [] if self.on_epoch is None else [self.on_epoch]
        return [*first, *self._epoch_callbacks]

    def __getstate__(self) -> dict[str, Any]:
        """The state to pickle for a worker process: without the callbacks."""
        state = dict(self.__dict__)
        state.update(on_epoch=None, _epoch_callbacks=[])
        return state
