"""Evaluate architectures with a plain function of your own: your data, your training code.

``fn(model, context)`` (or ``fn(arch, context)`` with ``pass_model=False``) trains and
measures however you like and returns its metrics: a mapping (``{"valid_acc": 91.2,
"latency_ms": 3.1}``) or one number (the first declared metric). ``context`` is the trial's
:class:`~nasforge.reporting.TrialContext`: report intermediate values with
``context.report(value, step=epoch)`` and end early when ``context.should_stop()`` says so
(raise :class:`~nasforge.reporting.TrialStopped`, or return), so the study's stopping rule
(median, successive halving, Hyperband, ASHA: ``create_study(..., stopping="asha")``) can cut
poor trials short. This is Optuna's objective-function interface (Akiba et al., "Optuna: A
Next-generation Hyperparameter Optimization Framework", KDD 2019, arXiv:1907.10902,
Section 2 and its pruning interface, Section 3) with the architecture in place of the trial's
suggestions.

Named by import path (``fn="package.module:function"``), the evaluator is recorded with the
study, so that ``nasforge worker`` processes, process pools and Ray tasks rebuild it; a
lambda or a local function works in this process only (its spec is ``None``).

Torch is imported only to build a network (``pass_model=True``).
"""

from __future__ import annotations

import logging
import numbers
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nasforge import evaluators, spaces
from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.evaluators.base import Evaluator
from nasforge.reporting import TrialContext, TrialStopped
from nasforge.spaces.base import SearchSpace
from nasforge.train._references import load_reference, reference_of
from nasforge.trial import Direction, Result

__all__ = ["FunctionEvaluator"]

logger = logging.getLogger(__name__)


@evaluators.register("function")
class FunctionEvaluator(Evaluator):
    """Scores each architecture with ``fn(model_or_arch, context)``.

    Args:
        fn: The function, or its import path ``"package.module:function"`` (recordable).
        metrics: The metrics ``fn`` returns and their directions (``"max"``/``"min"``);
            the study's objectives and constraints name some of them. A bare number
            returned is the first.
        space: The space whose architectures it scores (a name, ``"package.module:attr"``
            for a space of your own, or the space object); ``None``: any, the network is
            built by the architecture's own space (``spaces.create(arch.space)``).
        pass_model: Call ``fn`` with the network ``space.build(arch)`` (weights drawn from
            a seed of ``seed`` and the architecture); ``False``: with the architecture.
        cost_unit: ``"seconds"`` (the wall time of ``fn``) or another unit, whose cost ``fn``
            returns as the metric ``"cost"`` (1 per call when it does not).
        seed: Seed of the networks' initial weights.

    Raises:
        InvalidConfigError: ``fn`` not callable or not importable, metrics with an unknown
            direction, no metrics.
        UnsupportedOperationError: ``pass_model`` with a space that builds no networks.

    Example:
        >>> from nasforge import spaces
        >>> def score(arch, context):
        ...     for step in (1, 2):
        ...         context.report(float(step), step=step)
        ...     return {"valid_acc": float(sum(arch.choices))}
        >>> ev = FunctionEvaluator(score, pass_model=False)
        >>> arch = spaces.create("nb201").from_index(0)
        >>> ev.evaluate(arch).metrics == {"valid_acc": float(sum(arch.choices))}
        True
        >>> ev.spec() is None  # a local function: this process only
        True
    """

    takes_context = True

    def __init__(
        self,
        fn: Callable[[Any, TrialContext], Any] | str,
        *,
        metrics: Mapping[str, str | Direction] | None = None,
        space: str | SearchSpace | None = None,
        pass_model: bool = True,
        cost_unit: str = "seconds",
        seed: int = 0,
    ) -> None:
        if isinstance(fn, str):
            self.reference: str | None = fn.strip()
            fn = load_reference(fn, "function of the function evaluator")
        else:
            self.reference = reference_of(fn)
        if not callable(fn):
            raise InvalidConfigError(
                f"fn must be a function fn(model_or_arch, context) -> metrics, got {fn!r}."
            )
        self.fn = fn
        if self.reference is None:
            logger.warning(
                "the function evaluator's %s cannot be imported by name (a lambda, a local "
                "function or one defined in __main__): it runs in this process only; nasforge "
                "worker processes, process pools and resumed studies need a module-level "
                "function of an importable module, given as 'package.module:function'",
                getattr(fn, "__qualname__", repr(fn)),
            )
        chosen = {"valid_acc": "max"} if metrics is None else metrics
        if not isinstance(chosen, Mapping) or not chosen:
            raise InvalidConfigError(
                "metrics must map each metric fn returns to 'max' or 'min', e.g. "
                f"{{'valid_acc': 'max'}}; got {metrics!r}."
            )
        self._metrics = {str(k): Direction.parse(v) for k, v in chosen.items()}
        self._space: SearchSpace | None = None
        if space is not None:
            self._space = space if isinstance(space, SearchSpace) else spaces.create(space)
            self.space = space if isinstance(space, str) else self._space.name
        self.pass_model = bool(pass_model)
        if self.pass_model and self._space is not None and not self._space.supports("build"):
            raise UnsupportedOperationError(
                f"Search space {self.space!r} builds no networks (build()); give "
                "pass_model=False to call the function with the architecture."
            )
        if not isinstance(cost_unit, str) or not cost_unit:
            raise InvalidConfigError(f"cost_unit must be a word, got {cost_unit!r}.")
        self.cost_unit = cost_unit
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InvalidConfigError(f"seed must be a non-negative integer, got {seed!r}.")
        self.seed = seed
        self._spaces: dict[str, SearchSpace] = {}

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return self._metrics

    def evaluate(
        self,
        arch: Architecture,
        fidelity: Mapping[str, Any] | None = None,
        context: TrialContext | None = None,
    ) -> Result:
        """Call the function on ``arch`` (or its network) and return what it measured.

        Without a ``context`` (a call by hand) a fresh one is made, which keeps the reports
        and never stops.

        Raises:
            InvalidConfigError: The function returned none of the metrics the study's
                objective names (the returned and the expected ones are named), or a value
                that is not a number.
            TrialStopped: Never: a stopped trial returns ``Result(stopped=True)`` with the
                metrics last reported.
        """
        first = next(iter(self._metrics))
        if context is None:
            context = TrialContext(0, arch, fidelity, metric=first)
        if self._space is not None:  # an architecture of another space is refused
            arch = self._space.check(arch)
        started = time.perf_counter()
        subject = self._build(arch) if self.pass_model else arch
        try:
            returned = self.fn(subject, context)
        except TrialStopped:
            seconds = time.perf_counter() - started
            cost = seconds if self.cost_unit == "seconds" else 1.0
            return Result(dict(context.last), cost=cost, seconds=seconds, stopped=True)
        seconds = time.perf_counter() - started
        values = self._values(returned, first, context)
        cost = seconds if self.cost_unit == "seconds" else values.pop("cost", 1.0)
        return Result(values, cost=cost, seconds=seconds)

    def _values(self, returned: Any, first: str, context: TrialContext) -> dict[str, float]:
        name = getattr(self.fn, "__qualname__", "the function")
        if isinstance(returned, Mapping):
            items = dict(returned)
        elif isinstance(returned, numbers.Real) and not isinstance(returned, bool):
            items = {first: returned}
        else:
            raise InvalidConfigError(
                f"{name} returned {type(returned).__name__} {returned!r}; return a mapping of "
                f"metrics such as {{{first!r}: value}} or one number (the metric {first!r})."
            )
        values: dict[str, float] = {}
        for key, value in items.items():
            if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.generic)):
                raise InvalidConfigError(
                    f"{name} returned {key!r}: {value!r}; every metric must be a number."
                )
            values[str(key)] = float(value)
        wanted = context.metric if context.metric in self._metrics else first
        if wanted not in values:
            raise InvalidConfigError(
                f"{name} returned the metrics {sorted(values)} but not {wanted!r}, which the "
                f"study's objective names (the evaluator declares {sorted(self._metrics)}); "
                f"return {{{wanted!r}: value, ...}} or a bare number."
            )
        return values

    def _build(self, arch: Architecture) -> Any:
        from nasforge.train.trainer import seeded

        space = self._space
        if space is None:
            if arch.space not in self._spaces:
                self._spaces[arch.space] = spaces.create(arch.space)
            space = self._spaces[arch.space]
        arch = space.check(arch)
        entropy = [self.seed, zlib.crc32(arch.space.encode()), *(int(c) for c in arch.choices)]
        seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)
        with seeded(seed):
            return space.build(arch)

    def spec(self) -> dict[str, Any] | None:
        """``{"name": "function", "fn": "package.module:function", ...}``, or ``None`` when
        the function cannot be imported by name (or the space is an object without one)."""
        if self.reference is None:
            return None
        return {
            "name": "function",
            "fn": self.reference,
            "metrics": {k: v.value for k, v in self._metrics.items()},
            "space": self.space,
            "pass_model": self.pass_model,
            "cost_unit": self.cost_unit,
            "seed": self.seed,
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_spaces"] = {}
        return state

    def __repr__(self) -> str:
        what = self.reference or getattr(self.fn, "__qualname__", repr(self.fn))
        return f"FunctionEvaluator({what!r}, metrics={list(self._metrics)})"
