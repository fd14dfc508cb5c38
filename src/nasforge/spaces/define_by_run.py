"""Define-by-run search spaces: a function draws named choices from a trial and returns a
model; the choices it drew are the architecture.

The space is written the way Optuna's define-by-run API writes a hyperparameter space (Akiba,
Sano, Yanase, Ohta and Koyama, "Optuna: A Next-generation Hyperparameter Optimization
Framework", KDD 2019, arXiv:1907.10902, Section 2 "Define-by-run API"): the function asks the
trial for a value where it needs one (``trial.choice``, ``trial.integer``, ``trial.boolean``),
so that a choice drawn only under another one (the width of layer 3 only when the depth is at
least 3) is written as an ``if``. Where Optuna's samplers see one trial at a time, nasforge's
strategies search a fixed set of decisions (mutation, neighbours, one-hot encodings for
predictors), so the space differs from Optuna in one respect: it *explores* the function once
to find every choice it can draw, and makes them the decisions of a product space.

* **Exploration.** The function is run with every choice at its first option, then once for
  each other option of each choice found (in the context of the run that found it), until no
  run finds a new choice (a breadth-first search over (choice, option) pairs, at most
  ``max_runs`` runs). When the product of the option counts is small (at most
  :data:`EXACT_LIMIT`), every architecture is then enumerated, so that no choice is missed;
  else rounds of :data:`PROBES` random architectures (from a fixed seed) look for choices that
  only a combination of values draws, until a round finds none.
  :attr:`~DefineByRunSpace.size` counts the architectures up to :data:`SIZE_LIMIT`. Where
  PyTorch is loaded these runs build their models on the meta device (no weights, no time),
  falling back to ordinary runs for a function that cannot.
* **Architectures.** Decision ``i`` of an architecture is the option index of the ``i``-th
  choice found; a choice the function does not draw for the other values (*inactive*) is set
  to option 0, so that two draws of the same network are the same architecture. The text is
  the active choices in the order the function draws them, ``"name=value,name=value"``.
* **Replay.** :meth:`DefineByRunSpace.build` runs the function again with the architecture's
  values and returns what it returns (a ``torch.nn.Module`` or any other object), and
  :meth:`~DefineByRunSpace.parse` reads a text back the same way. A function that then draws a
  choice the architecture does not record, or skips one it records, is not deterministic and
  is refused, naming the choice.

Example:
    >>> def space(trial):
    ...     depth = trial.integer("depth", 1, 3)
    ...     widths = [trial.choice(f"width{i}", [8, 16]) for i in range(depth)]
    ...     return {"widths": widths, "relu": trial.boolean("relu")}
    >>> s = DefineByRunSpace(space, name="doc:space")
    >>> [d.name for d in s.decisions()], s.size
    (['depth', 'width0', 'width1', 'width2', 'relu'], 28)
    >>> arch = s.parse("depth=2,width0=16,width1=8,relu=True")
    >>> arch.choices, s.build(arch)
    ((1, 1, 0, 0, 1), {'widths': [16, 8], 'relu': True})
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    NasforgeError,
    abbreviate,
    unknown_name_message,
)
from nasforge.spaces._arch_trial import (
    MAX_OPTIONS,
    Answer,
    ArchTrial,
    Draw,
    Option,
    integer_setting,
    listed,
    show,
)
from nasforge.spaces._user import build_settings
from nasforge.spaces.base import Decision, SearchSpace

__all__ = [
    "EXACT_LIMIT",
    "MAX_OPTIONS",
    "MAX_RUNS",
    "SIZE_LIMIT",
    "ArchTrial",
    "DefineByRunSpace",
]

#: Runs of the function one exploration may take (the space's ``max_runs`` by default).
MAX_RUNS = 5000
#: Most different choices one function may draw (over all its runs).
MAX_DECISIONS = 4096
#: Spaces whose option counts multiply to at most this are enumerated whole at construction
#: (every choice found for sure).
EXACT_LIMIT = 512
#: :attr:`DefineByRunSpace.size` counts the architectures (once, when first asked) of a space
#: with at most this many; a larger space has size ``None``.
SIZE_LIMIT = 2048
#: Random architectures per round of the last stage of exploring a larger space (rounds go on
#: until one finds no new choice).
PROBES = 64
#: Architectures remembered per space (the function is replayed for others).
MEMO_LIMIT = 100_000


class DefineByRunSpace(SearchSpace):
    """The space of the choices a define-by-run function draws (see the module docstring).

    Args:
        fn: ``fn(trial)`` draws choices from the :class:`ArchTrial` and returns the model (an
            ``nn.Module``, or any object). It may take keyword settings after the trial
            (``fn(trial, num_classes=10)``), which :meth:`build` passes on; the choices it
            draws must depend only on the trial's values.
        name: The space's name, what studies record (``"package.module:function"`` for a
            study that resumes in another process: ``nasforge.spaces.from_function`` names
            it so).
        max_runs: Most runs of ``fn`` while exploring it.

    Raises:
        InvalidConfigError: ``fn`` draws nothing, draws differently for the same values,
            uses a name with two lists of options, draws bad options or an empty range,
            raises, or needs more than ``max_runs`` runs to explore.
    """

    def __init__(self, fn: Callable[..., Any], *, name: str, max_runs: int = MAX_RUNS) -> None:
        if not callable(fn):
            raise InvalidConfigError(
                f"A define-by-run space takes a function of the trial, got {abbreviate(fn)}."
            )
        if not isinstance(name, str) or not name.strip():
            raise InvalidConfigError(f"A define-by-run space needs a name, got {name!r}.")
        self.fn = fn
        self.name = name
        self.max_runs = integer_setting(max_runs, "max_runs")
        self._meta = True
        self._options: dict[str, tuple[Option, ...]] = {}
        self._order: list[str] = []
        self._exploring = True
        self._size: int | bool | None = False  # False: not counted yet
        self._memo: dict[Any, Architecture] = {}
        self._explore()
        self._exploring = False
        self._decisions = tuple(Decision(n, self._options[n]) for n in self._order)
        self._index = {n: i for i, n in enumerate(self._order)}

    # -- running the function -----------------------------------------------------------------
    def _label(self) -> str:
        return f"The define-by-run function of space {self.name!r}"

    def _run(
        self, answer: Answer, *, structure: bool, kwargs: Mapping[str, Any] | None = None
    ) -> tuple[list[Draw], Any]:
        """Run the function with ``answer`` giving each choice's option index; the draws and
        what it returned. A structure run builds on the meta device where it can."""
        meta = structure and self._meta and "torch" in sys.modules
        trial = ArchTrial(answer, self._options)
        try:
            with self._device(meta):
                result = self.fn(trial, **(kwargs or {}))
        except (NasforgeError, _Missing):
            raise
        except Exception as exc:
            if not structure:
                raise
            if meta:  # a function that computes on its tensors: run it on the CPU
                self._meta = False
                return self._run(answer, structure=True)
            raise InvalidConfigError(
                f"{self._label()} raised {type(exc).__name__}: {exc} (choices drawn: "
                f"{_written(trial._draws()) or 'none'}); every combination of its options "
                "must build."
            ) from exc
        return trial._draws(), result

    @staticmethod
    def _device(meta: bool) -> Any:
        if not meta:
            return contextlib.nullcontext()
        import torch

        return torch.device("meta")

    def _explorer(self, assignment: Mapping[str, int]) -> Answer:
        """Answers from ``assignment``, the first option elsewhere (a choice not found by the
        exploration is refused once it is over)."""

        def answer(name: str, options: tuple[Option, ...]) -> int:
            if not self._exploring and name not in self._index:
                raise self._unexplored(name)
            index = assignment.get(name, 0)
            return index if index < len(options) else 0

        return answer

    def _unexplored(self, name: str) -> InvalidConfigError:
        return InvalidConfigError(
            f"{self._label()} draws choice {name!r}, which exploring it did not find (each "
            "option of each choice is tried once, in the context where the choice was found); "
            "it depends on a combination of earlier choices that was not tried, or the function "
            "is not deterministic. Give such a choice a name of its own per context (e.g. "
            f"f'{name}_{{layer}}')."
        )

    # -- exploration ---------------------------------------------------------------------------
    def _explore(self) -> None:
        first, _ = self._run(self._explorer({}), structure=True)
        again, _ = self._run(self._explorer({}), structure=True)
        self._check_same(first, again)
        if not first:
            raise InvalidConfigError(
                f"{self._label()} draws no choice; draw them with trial.choice(name, options), "
                "trial.integer(name, low, high) or trial.boolean(name)."
            )
        self._merge(first)
        self._runs = 2
        tried = {(n, i) for n, _, i in first}
        self._pairs(deque([first]), tried)
        if math.prod(len(o) for o in self._options.values()) <= EXACT_LIMIT:
            count = 0
            for draws in self._leaves():
                self._merge(draws)
                count += 1
                if count > EXACT_LIMIT:
                    break
            if count <= EXACT_LIMIT:
                self._size = count
            return
        rng = np.random.default_rng(0)  # fixed: the same decisions in every process
        while True:  # random architectures, until a round of them finds no new choice
            news = []
            for _ in range(PROBES):
                assignment = {n: int(rng.integers(len(o))) for n, o in self._options.items()}
                found = self._counted(assignment)
                if any(n not in self._options for n, _, _ in found):
                    self._merge(found)
                    news.append(found)
            if not news:
                return
            for found in news:
                tried.update((n, i) for n, _, i in found)
            self._pairs(deque(news), tried)

    def _counted(self, assignment: Mapping[str, int]) -> list[Draw]:
        """The draws of a run with ``assignment``, counted against ``max_runs``."""
        self._runs += 1
        self._check_runs(self._runs)
        return self._run(self._explorer(assignment), structure=True)[0]

    def _pairs(self, queue: deque[list[Draw]], tried: set[tuple[str, int]]) -> None:
        """From each run in ``queue``, a run with each (choice, option) pair not tried yet
        (the run's other values kept), and so on from the runs made."""
        while queue:
            draws = queue.popleft()
            base = {n: i for n, _, i in draws}
            for name, options, _ in draws:
                for option in range(len(options)):
                    if (name, option) in tried:
                        continue
                    tried.add((name, option))
                    found = self._counted({**base, name: option})
                    self._merge(found)
                    tried.update((n, i) for n, _, i in found)
                    queue.append(found)

    def _check_runs(self, runs: int) -> None:
        if runs > self.max_runs:
            raise InvalidConfigError(
                f"Exploring the define-by-run function of space {self.name!r} took more than "
                f"{self.max_runs} runs ({len(self._options)} choices found so far); draw fewer "
                "choices (a name built from a counter makes a new choice in every run), or give "
                "a larger max_runs."
            )

    def _check_same(self, first: list[Draw], again: list[Draw]) -> None:
        one, two = [(n, i) for n, _, i in first], [(n, i) for n, _, i in again]
        if one != two:
            differ = [a[0] for a, b in zip(one, two, strict=False) if a != b]
            longer = one if len(one) > len(two) else two
            name = differ[0] if differ else longer[min(len(one), len(two))][0]
            raise InvalidConfigError(
                f"{self._label()} is not deterministic: run twice with every choice at its "
                f"first option, it drew choice {name!r} differently (once "
                f"{_describe(first)}, once {_describe(again)}). Draw every choice from the "
                "trial; no random numbers, clock or global state may decide what is drawn."
            )

    def _merge(self, draws: list[Draw]) -> None:
        """Add the choices of ``draws`` not known yet, each after the choice drawn before it."""
        previous: str | None = None
        for name, options, _ in draws:
            if name not in self._options:
                self._options[name] = options
                at = 0 if previous is None else self._order.index(previous) + 1
                self._order.insert(at, name)
            previous = name
        if len(self._options) > MAX_DECISIONS:
            raise InvalidConfigError(
                f"{self._label()} draws more than "
                f"{MAX_DECISIONS} different choices; a name built from a counter makes a new "
                "choice in every run."
            )

    def _leaves(self) -> Iterator[list[Draw]]:
        """The draws of every architecture once: a depth-first search where each run first
        differs from its parent at one choice."""
        stack: list[tuple[dict[str, int], int]] = [({}, 0)]
        while stack:
            assignment, fixed = stack.pop()
            draws, _ = self._run(self._explorer(assignment), structure=True)
            yield draws
            children = []
            for j in range(fixed, len(draws)):
                name, options, index = draws[j]
                prefix = {n: i for n, _, i in draws[:j]}
                children += [({**prefix, name: o}, j + 1) for o in range(index + 1, len(options))]
            stack.extend(reversed(children))

    # -- architectures -------------------------------------------------------------------------
    def decisions(self) -> tuple[Decision, ...]:
        """Every choice the function can draw, in the order found."""
        return self._decisions

    def _arch(self, draws: list[Draw]) -> Architecture:
        choices = [0] * len(self._order)
        for name, _, index in draws:
            choices[self._index[name]] = index
        return Architecture(self.name, tuple(choices), _written(draws))

    def _remember(self, key: Any, arch: Architecture) -> Architecture:
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = arch
        self._memo[arch.choices] = arch
        return arch

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        """The architecture of these option indices (one per decision); the function is run
        with them, and the decisions it does not draw are set to option 0."""
        checked = self.check_choices(choices)
        known = self._memo.get(checked)
        if known is not None:
            return known

        def answer(name: str, options: tuple[Option, ...]) -> int:
            if name not in self._index:
                raise self._unexplored(name)
            return checked[self._index[name]]

        draws, _ = self._run(answer, structure=True)
        return self._remember(checked, self._arch(draws))

    def _read(self, text: str) -> dict[str, int]:
        """The option index of each choice written in ``text``."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidArchitectureError(
                f"An architecture of space {self.name!r} is written 'name=value,...', got "
                f"{abbreviate(text)}; e.g. {self._example()!r}."
            )
        values: dict[str, int] = {}
        for part in text.split(","):
            name, equals, value = (s.strip() for s in part.partition("="))
            if not equals:
                raise self._bad_text(text, f"{part.strip()!r} is not name=value")
            if name not in self._index:
                raise self._bad_text(text, unknown_name_message("choice", name, self._order))
            if name in values:
                raise self._bad_text(text, f"choice {name!r} is written twice")
            options = self._options[name]
            found = [i for i, o in enumerate(options) if show(o) == value]
            if not found and value.lower() in ("true", "false"):
                found = [i for i, o in enumerate(options) if show(o).lower() == value.lower()]
            if not found:
                raise self._bad_text(
                    text, f"{value!r} is not an option of {name!r}; choose from {listed(options)}"
                )
            values[name] = found[0]
        return values

    def _bad_text(self, text: str, problem: str) -> InvalidArchitectureError:
        return InvalidArchitectureError(
            f"In architecture {abbreviate(text, 80)} of space {self.name!r}: {problem}. "
            f"Example: {self._example()!r}."
        )

    def _example(self) -> str:
        return self.from_choices([0] * len(self._order)).text

    def _replay(
        self, values: Mapping[str, int], *, structure: bool, kwargs: Mapping[str, Any] | None
    ) -> tuple[list[Draw], list[str], Any]:
        """Run the function with ``values``; its draws, the recorded choices it skipped, and
        what it returned (a choice not in ``values`` raises ``_Missing``)."""

        def answer(name: str, options: tuple[Option, ...]) -> int:
            if name not in values:
                raise _Missing(name)
            return values[name]

        draws, result = self._run(answer, structure=structure, kwargs=kwargs)
        drawn = {n for n, _, _ in draws}
        return draws, [n for n in values if n not in drawn], result

    def parse(self, text: str) -> Architecture:
        """The architecture written as ``"name=value,..."`` (the active choices, any order).

        Raises:
            InvalidArchitectureError: A malformed text, an unknown choice or value, or a text
                that does not list exactly the choices the function draws with its values.
        """
        known = self._memo.get(("text", text))
        if known is not None:
            return known
        values = self._read(text)
        try:
            draws, skipped, _ = self._replay(values, structure=True, kwargs=None)
        except _Missing as missing:
            raise self._bad_text(
                text,
                f"the function draws choice {missing.name!r} with these values and the text "
                "does not give it (if this space wrote the text, the function is not "
                "deterministic)",
            ) from None
        if skipped:
            raise self._bad_text(
                text,
                f"the function does not draw choice {skipped[0]!r} with these values (if this "
                "space wrote the text, the function is not deterministic)",
            )
        return self._remember(("text", text), self._arch(draws))

    def check(self, arch: Architecture) -> Architecture:
        """``arch`` if it belongs to this space and its text matches its choices (a function
        changed since the architecture was recorded is refused)."""
        super().check(arch)
        text = self.from_choices(arch.choices).text
        if text != arch.text:
            raise InvalidArchitectureError(
                f"Architecture {abbreviate(arch.text, 80)} of space {self.name!r} does not match "
                f"its choices, which the function now reads as "
                f"{abbreviate(text, 80)}: the function was "
                "changed since the architecture was recorded, or it is not deterministic."
            )
        return arch

    def active(self, arch: Architecture) -> dict[str, Option]:
        """The values of the choices ``arch`` makes (the active ones), in the order drawn."""
        values = self._read(self.check(arch).text)
        return {name: self._options[name][i] for name, i in values.items()}

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """The strip of the choices ``arch`` makes (the active ones), in the order drawn."""
        from nasforge.spaces._drawing import decision_strip

        return decision_strip(list(self.active(arch).items()))

    # -- variation and encoding ------------------------------------------------------------------
    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every change of one active choice to another of its options (changing an inactive
        one changes nothing), decision by decision."""
        choices = self.check(arch).choices
        active = self._read(arch.text)
        out = []
        for k, decision in enumerate(self._decisions):
            if decision.name in active:
                for option in range(len(decision.options)):
                    if option != choices[k]:
                        out.append(self.from_choices((*choices[:k], option, *choices[k + 1 :])))
        return out

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        """One block per decision, one entry per option; an inactive decision's block is all
        zeros (so that it differs from the same decision at option 0)."""
        self.check_encoding(kind)
        choices = self.check(arch).choices
        active = self._read(arch.text)
        counts = [len(d.options) for d in self._decisions]
        vector = np.zeros(sum(counts))
        offset = 0
        for k, decision in enumerate(self._decisions):
            if decision.name in active:
                vector[offset + choices[k]] = 1.0
            offset += counts[k]
        return vector

    @property
    def size(self) -> int | None:
        """The number of architectures, counted by running the function once for each when
        first asked, up to :data:`SIZE_LIMIT`; ``None`` for a larger space."""
        if self._size is False:
            self._size = self._count()
        return None if isinstance(self._size, bool) else self._size

    def _count(self) -> int | None:
        if math.prod(len(d.options) for d in self._decisions) > SIZE_LIMIT**2:
            return None
        count = 0
        try:
            for _ in self._leaves():
                count += 1
                if count > SIZE_LIMIT:
                    return None
        except InvalidConfigError:  # a choice exploring missed: the space cannot be counted
            return None
        return count

    def __iter__(self) -> Iterator[Architecture]:
        """Every architecture once (the function runs once for each)."""
        return (self._arch(draws) for draws in self._leaves())

    # -- models --------------------------------------------------------------------------------
    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        """No settings of its own: the function's keyword arguments are the build settings."""
        return {"paper": {}, "search": {}, "reduced": {}}

    def build(self, arch: Architecture, **kwargs: Any) -> Any:
        """What the function returns for ``arch`` (its model), with ``kwargs`` passed on.

        Raises:
            InvalidConfigError: ``fn`` does not take a setting of ``kwargs`` (``num_classes``
                and ``resolution`` are then dropped, others refused), or draws another
                set of choices than ``arch`` records (not deterministic; the choice is named).
        """
        values = self._read(self.check(arch).text)
        settings = self._settings(kwargs) if kwargs else {}
        try:
            _, skipped, model = self._replay(values, structure=False, kwargs=settings)
        except _Missing as missing:
            raise self._not_deterministic(
                arch, f"asks for choice {missing.name!r}, which the architecture does not record"
            ) from None
        if skipped:
            raise self._not_deterministic(
                arch, f"skips choice {skipped[0]!r}, which the architecture records"
            )
        return model

    def _settings(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The build settings the function takes (``num_classes`` and ``resolution``, which
        evaluators pass to every space, are dropped where it does not take them)."""
        try:
            params = inspect.signature(self.fn).parameters
        except (TypeError, ValueError):  # no signature to read: pass them all
            return dict(kwargs)
        taken = [
            p for p in list(params)[1:] if params[p].kind is not inspect.Parameter.VAR_POSITIONAL
        ]
        return build_settings(
            kwargs,
            params,
            taken,
            lambda key: InvalidConfigError(
                f"{self._label()} takes no build setting {key!r} (its settings after the "
                f"trial: {', '.join(taken) or 'none'}); add it as a keyword parameter "
                f"(def fn(trial, {key}=...)) or leave it out."
            ),
        )

    def _not_deterministic(self, arch: Architecture, what: str) -> InvalidConfigError:
        return InvalidConfigError(
            f"{self._label()} is not deterministic: replaying architecture "
            f"{abbreviate(arch.text, 80)} it {what}. The choices drawn must depend only on the "
            "trial's values (no random numbers, clock, global state or build settings)."
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_memo"] = {}
        return state

    def __repr__(self) -> str:
        return f"DefineByRunSpace({self.name!r}, {len(self._decisions)} decisions)"


class _Missing(Exception):
    """A replay met a choice that the values it replays do not give."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _written(draws: list[Draw]) -> str:
    """The draws as an architecture's text, ``name=value,...``."""
    return ",".join(f"{n}={show(o[i])}" for n, o, i in draws)


def _describe(draws: list[Draw]) -> str:
    return repr(_written(draws) or "nothing")
