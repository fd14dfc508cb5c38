"""AutoFormer's evolutionary search over the sub-networks of a super-transformer (no torch).

Chen, M., Peng, H., Fu, J. and Ling, H. "AutoFormer: Searching Transformers for Visual
Recognition." ICCV 2021, arXiv:2107.00651, Section 3.3 ("Search pipeline: evolution search
under resource constraints") and Section 4.1; the numbers are those of the authors' search
(microsoft/Cream, ``AutoFormer/evolution.py``): a population of 50, 20 generations, the top
10 sub-networks seen so far as parents, 25 children by mutation and 25 by crossover per
generation (the rest of the population drawn at random), mutation probability 0.2 for each
layer's heads, Q-K-V dimension and MLP ratio and 0.4 (``s_prob``) for the depth and the
embedding dimension; a crossover takes each decision from either of two parents of the same
depth. A child that violates a constraint or was measured before is drawn again, at most ten
times the wanted count per kind (as the reference code's ``max_iters``).

Where this differs: the token-embedding (patch) size, ViTAS's extra dimension, mutates with
the structural probability 0.4 like the embedding dimension; a deeper mutated depth draws the
new layers' decisions uniformly, as the reference code does; the search stops early when a
trial budget is spent.

:func:`autoformer_evolution` works on any space with the ``vit`` decisions (``patch_size``,
``embed_dim``, ``depth``, ``l{i}_heads``, ``l{i}_head_dim``, ``l{i}_mlp_ratio``); scoring and
the constraint check are callables, so :func:`nasforge.transformer.search_subvits` records
every scored sub-network as a trial.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.spaces.base import SearchSpace

__all__ = [
    "DEFAULTS",
    "EvolutionResult",
    "NothingScoredError",
    "autoformer_evolution",
    "check_settings",
    "crossover",
    "mutate",
]

#: The reference search's settings (microsoft/Cream ``AutoFormer/evolution.py`` defaults).
DEFAULTS = {
    "population": 50,
    "generations": 20,
    "parents": 10,
    "mutations": 25,
    "crossovers": 25,
    "mutate_prob": 0.2,
    "structure_prob": 0.4,
}

_STRUCTURE = ("patch_size", "embed_dim")
_LAYER = ("heads", "head_dim", "mlp_ratio")


@dataclass
class EvolutionResult:
    """What :func:`autoformer_evolution` found.

    Attributes:
        best: The best sub-network scored.
        score: Its score (larger is better).
        scored: Every scored sub-network and its score, in order.
        history: The best score after each generation (generation 0: the random population).
    """

    best: Architecture
    score: float
    scored: list[tuple[Architecture, float]] = field(default_factory=list)
    history: list[float] = field(default_factory=list)


class NothingScoredError(InvalidConfigError):
    """The evolution scored no sub-network: every draw violated the constraints or failed."""


class _Layout:
    """Where each decision of a vit-like space sits in ``choices``."""

    def __init__(self, space: SearchSpace) -> None:
        decisions = space.decisions()
        self.space = space
        self.counts = [len(d.options) for d in decisions]
        index = {d.name: i for i, d in enumerate(decisions)}
        missing = [n for n in ("depth", *_STRUCTURE) if n not in index]
        if missing:
            raise InvalidConfigError(
                f"Space {space.name!r} has no decisions {missing}; AutoFormer's evolution "
                "searches vision-transformer spaces (vit, vit-cifar)."
            )
        self.depth = index["depth"]
        self.depths = [int(v) for v in decisions[self.depth].options]
        self.structure = [index[n] for n in _STRUCTURE]
        self.layers: list[list[int]] = []
        while all(f"l{len(self.layers)}_{k}" in index for k in _LAYER):
            self.layers.append([index[f"l{len(self.layers)}_{k}"] for k in _LAYER])

    def depth_of(self, choices: list[int]) -> int:
        return self.depths[choices[self.depth]]

    def canonical(self, choices: list[int]) -> Architecture:
        return self.space.canonical(self.space.from_choices(choices))


def mutate(
    space: SearchSpace,
    parent: Architecture,
    rng: np.random.Generator,
    *,
    mutate_prob: float = 0.2,
    structure_prob: float = 0.4,
) -> Architecture:
    """AutoFormer's mutation: the depth redrawn with ``structure_prob`` (new layers drawn
    uniformly), each kept layer's heads, head dimension and MLP ratio with ``mutate_prob``,
    the embedding dimension and the patch size with ``structure_prob``."""
    layout = _Layout(space)
    child = list(parent.choices)
    old = layout.depth_of(child)
    if rng.random() < structure_prob:
        child[layout.depth] = int(rng.integers(layout.counts[layout.depth]))
        for i in range(old, layout.depth_of(child)):
            for k in layout.layers[i]:
                child[k] = int(rng.integers(layout.counts[k]))
    for i in range(layout.depth_of(child)):
        for k in layout.layers[i]:
            if rng.random() < mutate_prob:
                child[k] = int(rng.integers(layout.counts[k]))
    for k in layout.structure:
        if rng.random() < structure_prob:
            child[k] = int(rng.integers(layout.counts[k]))
    return layout.canonical(child)


def crossover(
    space: SearchSpace, a: Architecture, b: Architecture, rng: np.random.Generator
) -> Architecture:
    """Each decision from ``a`` or ``b`` with equal probability (AutoFormer pairs parents of
    the same depth, so the layers line up)."""
    pick = rng.random(len(a.choices)) < 0.5
    child = [int(x) if p else int(y) for p, x, y in zip(pick, a.choices, b.choices, strict=True)]
    return _Layout(space).canonical(child)


def check_settings(values: Mapping[str, float | int]) -> None:
    """Refuse evolution settings out of range (each named with the value given)."""
    for name in ("population", "generations", "parents"):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidConfigError(f"{name} must be an integer >= 1, got {value!r}.")
    for name in ("mutations", "crossovers"):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidConfigError(f"{name} must be an integer >= 0, got {value!r}.")
    if int(values["mutations"]) + int(values["crossovers"]) > int(values["population"]):
        raise InvalidConfigError(
            f"mutations + crossovers ({values['mutations']} + {values['crossovers']}) must not "
            f"exceed the population ({values['population']})."
        )
    for name in ("mutate_prob", "structure_prob"):
        if not 0.0 <= float(values[name]) <= 1.0:
            raise InvalidConfigError(f"{name} must be in [0, 1], got {values[name]!r}.")


def autoformer_evolution(
    space: SearchSpace,
    score: Callable[[Architecture], float | None],
    feasible: Callable[[Architecture], bool],
    rng: np.random.Generator,
    *,
    population: int = 50,
    generations: int = 20,
    parents: int = 10,
    mutations: int = 25,
    crossovers: int = 25,
    mutate_prob: float = 0.2,
    structure_prob: float = 0.4,
    budget: int | None = None,
    max_draws: int = 10_000,
) -> EvolutionResult:
    """Run AutoFormer's evolution (see the module docstring).

    Args:
        space: A vision-transformer space.
        score: The fitness of a sub-network (larger is better; ``None``: it failed and is
            never a parent).
        feasible: Whether a sub-network meets the constraints (checked before scoring).
        rng: Every random draw.
        population, generations, parents, mutations, crossovers, mutate_prob,
            structure_prob: The evolution's settings (AutoFormer's by default).
        budget: Stop after this many scored sub-networks (``None``: no limit).
        max_draws: Random draws in a row that may be infeasible or seen before while
            filling the population, before the search stops filling it.

    Raises:
        InvalidConfigError: Settings out of range.
        NothingScoredError: No sub-network was feasible and scored (a subclass of
            :class:`~nasforge.errors.InvalidConfigError`).
    """
    check_settings(dict(population=population, generations=generations, parents=parents,
                mutations=mutations, crossovers=crossovers, mutate_prob=mutate_prob,
                structure_prob=structure_prob))  # fmt: skip
    layout = _Layout(space)
    seen: set[tuple[int, ...]] = set()
    scored: list[tuple[Architecture, float]] = []
    history: list[float] = []

    def spent() -> bool:
        return budget is not None and len(seen) >= budget

    def admit(arch: Architecture) -> bool:
        if arch.choices in seen or spent() or not feasible(arch):
            return False
        seen.add(arch.choices)
        value = score(arch)
        if value is not None and np.isfinite(value):
            scored.append((arch, float(value)))
        return True

    def fill(count: int, draw: Callable[[], Architecture], tries: int) -> int:
        added = 0
        while added < count and tries > 0 and not spent():
            tries -= 1
            added += admit(draw())
        return added

    def top() -> list[Architecture]:
        return [a for a, _ in sorted(scored, key=lambda p: -p[1])[:parents]]

    def random_arch() -> Architecture:
        return space.canonical(space.sample(rng))

    def mutant(chosen: list[Architecture]) -> Architecture:
        parent = chosen[int(rng.integers(len(chosen)))]
        return mutate(space, parent, rng, mutate_prob=mutate_prob, structure_prob=structure_prob)

    def cross(chosen: list[Architecture]) -> Architecture:
        a = chosen[int(rng.integers(len(chosen)))]
        b = chosen[int(rng.integers(len(chosen)))]
        for _ in range(50):  # a partner of the same depth, as the reference code
            if layout.depth_of(list(a.choices)) == layout.depth_of(list(b.choices)):
                break
            b = chosen[int(rng.integers(len(chosen)))]
        return crossover(space, a, b, rng)

    for generation in range(generations + 1):
        made = 0
        if generation > 0:
            chosen = top()
            if not chosen:
                break
            made += fill(mutations, partial(mutant, chosen), 10 * mutations)
            made += fill(crossovers, partial(cross, chosen), 10 * crossovers)
        fill(population - made, random_arch, max_draws)
        if scored:
            history.append(max(v for _, v in scored))
        if spent():
            break
    if not scored:
        raise NothingScoredError(
            "The evolution scored no sub-network: every draw violated the constraints or "
            "failed; loosen the constraints or see the failed trials."
        )
    best, value = max(scored, key=lambda p: p[1])
    return EvolutionResult(best=best, score=value, scored=scored, history=history)
