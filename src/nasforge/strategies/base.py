"""The :class:`Strategy` contract: what to try next?"""

from __future__ import annotations

import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.registry import keyword_params
from nasforge.spaces.base import SearchSpace
from nasforge.trial import Proposal, Trial

__all__ = ["Strategy", "check_params", "draw_per_decision"]

_S = typing.TypeVar("_S", bound="Strategy")


class Strategy(ABC):
    """Proposes architectures (:meth:`ask`) and learns from their results (:meth:`tell`).

    A strategy's state is a function of its seed and of the trials told to it, in order:
    given the same seed and the same tells it proposes the same architectures. Studies rely
    on this to resume: they rebuild the strategy and replay the stored trials (a replay calls
    ``ask`` and ``tell`` exactly as the original run did). A strategy must therefore draw all
    randomness from ``self.rng`` and never depend on wall-clock time.

    Trials told are COMPLETE (``trial.score`` is the study's first objective, larger is
    better) or FAILED (``trial.score`` is ``None``).

    Attributes:
        requires: The capabilities of the space the strategy uses (``"sample"``,
            ``"mutate"``, ``"neighbours"``, ``"encode"``...); checked at construction.
    """

    requires: ClassVar[tuple[str, ...]] = ("sample",)

    #: Set by the study: metrics of an architecture that cost no evaluation (see
    #: ``Evaluator.free_metrics``); ``None`` when the evaluator is not known.
    free_metrics: Callable[[Architecture], Mapping[str, float]] | None = None
    #: Set by the study: the space's ``functional_key`` when the study deduplicates (its
    #: ``dedupe`` option), else ``None``. Strategies that take architectures up to function
    #: (a ``canonical`` parameter left at ``None``) follow it, so that in a comparison every
    #: strategy has the same knowledge of which architectures compute the same function.
    functional_key: Callable[[Architecture], Hashable] | None = None
    _built_with: dict[str, Any]

    def __new__(cls: type[_S], *args: Any, **kwargs: Any) -> _S:
        # remember the keyword arguments it was built with, so that a study given this object
        # can record them and rebuild the strategy on resume (see params())
        self = super().__new__(cls)
        self._built_with = {k: v for k, v in kwargs.items() if k not in ("space", "seed")}
        return self

    def params(self) -> dict[str, Any]:
        """The keyword arguments (other than ``space`` and ``seed``) this strategy was built
        with: with its registry name and seed, what rebuilds it (a study records them)."""
        return dict(getattr(self, "_built_with", {}))

    def __init__(self, space: SearchSpace, *, seed: int | None = 0) -> None:
        missing = [c for c in self.requires if not space.supports(c)]
        if missing:
            hint = (
                " Declare the space's decisions() to get sample, mutate, crossover, "
                "neighbours and a one-hot encode by default."
                if not space.supports("decisions")
                else ""
            )
            raise UnsupportedOperationError(
                f"Strategy {type(self).__name__} needs a search space with "
                f"{', '.join(missing)}(); space {space.name!r} does not provide "
                f"{'it' if len(missing) == 1 else 'them'}.{hint}"
            )
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def ask(self) -> Proposal:
        """The next architecture (and fidelity) to evaluate."""

    def tell(self, trial: Trial) -> None:  # noqa: B027 - optional hook
        """Learn from a finished trial (COMPLETE, STOPPED or FAILED). No-op by default."""

    def free(self, arch: Architecture) -> Mapping[str, float]:
        """``free_metrics(arch)``, or a clear error when the study gave the strategy none."""
        if self.free_metrics is None:
            raise InvalidConfigError(
                f"Strategy {type(self).__name__} needs metrics that cost no evaluation (params, "
                "FLOPs, table latency) from the evaluator; create the study with "
                "create_study(..., evaluator=...) or pass the evaluator to optimize()."
            )
        return self.free_metrics(arch)


def draw_per_decision(
    probs: np.ndarray, counts: Sequence[int], rng: np.random.Generator
) -> list[int]:
    """One option per decision, decision ``i`` drawn from row ``i`` of ``probs`` (its
    ``counts[i]`` options, zero-padded to the widest), for the strategies that learn one
    distribution per decision.

    The draws are one ``rng.random(len(counts))`` call, each uniform number inverted
    through its row's cumulative distribution.

    Example:
        >>> draw_per_decision(np.array([[0.0, 1.0], [1.0, 0.0]]), [2, 2], np.random.default_rng(0))
        [1, 0]
    """
    cumulative = np.cumsum(probs, axis=1)
    draws = rng.random(len(counts))
    return [
        min(int(np.searchsorted(row, u * row[-1], side="right")), n - 1)
        for row, u, n in zip(cumulative, draws, counts, strict=True)
    ]


def check_params(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Validate strategy parameters by name and by type; return them, converted.

    Names must be keyword-only parameters of ``cls``; values are checked against the type
    hints of ``cls.__init__`` with pydantic (strict for booleans, so ``True`` is no ``1``;
    ``"3"`` from a config file becomes ``3``, ``"abc"`` is refused).

    Raises:
        InvalidConfigError: An unknown name (the valid ones and the closest match are listed)
            or a value of the wrong type.
    """
    label = getattr(cls, "registry_name", cls.__name__)
    keyword_params(cls, params, "strategy", label, exclude=("space", "seed"))
    if not params:
        return {}
    types = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    from pydantic import TypeAdapter, ValidationError

    out = dict(params)
    for name, value in params.items():
        if name not in types:
            continue
        strict = isinstance(value, (bool, float)) and types[name] is int
        try:
            out[name] = TypeAdapter(types[name]).validate_python(value, strict=strict)
        except ValidationError as exc:
            reason = "; ".join(err["msg"] for err in exc.errors())
            expected = getattr(types[name], "__name__", None) or str(types[name])
            raise InvalidConfigError(
                f"Invalid value {value!r} for parameter {name!r} of strategy {label!r}: "
                f"{reason.lower()} (expected {expected.replace('typing.', '')})."
            ) from None
    return out
