"""Few-shot NAS: the one-shot supernet split on one decision into K sub-supernets.

Zhao, Y., Wang, L., Tian, Y., Fonseca, R. and Guo, T. "Few-shot Neural Architecture
Search." ICML 2021, arXiv:2006.06863, Section 3: one supernet shares its weights among too
many architectures, whose gradients interfere, so its ranking suffers. Few-shot NAS first
trains the *one-shot* supernet (the parent) as usual, then splits it on the options of one
decision into sub-supernets, each a copy of the parent that *inherits its trained weights*
and represents only the architectures whose split decision takes one of its options; each
sub-supernet then trains on its own architectures only. An architecture is evaluated on the
sub-supernet that owns it.

Here the parent is the elastic supernet (``ofa``/``ofa-cifar``), trained in phase
``"one-shot"`` as the ``uniform`` schedule trains it (SPOS's uniform single-path sampling,
one sub-network per step). Phase ``"split"`` wraps it in :class:`FewShotSupernet`: K deep
copies with the elastic supernet's interface, ``set_active`` routing to the copy that owns
the architecture's option; every step trains each copy on one sub-network drawn uniformly
from its own options, so each copy trains for the remaining epochs, as in the paper (whose
copies train one after another: they share no weight, so the order does not matter).

The split decision (``split``) is one always-present decision: ``"resolution"`` or the
kernel or expansion of a block that every sub-network has (the first two blocks of a stage,
stages being at least 2 deep); ``k`` groups its options into K parts, contiguous in the
options' order (``None``: one part per option, as the paper splits one layer's operations).

**Gradient matching** (``split="gradient"``): Hu, S., Wang, R., Hong, L., Li, Z., Hsieh,
C.-J. and Feng, J. "Generalizing Few-Shot NAS with Gradient Matching." ICLR 2022,
arXiv:2203.15207, Section 3: for every candidate decision, the gradient of the shared weights
(every weight but the split block's own) is computed with the decision fixed to each option,
averaged over ``gm_samples`` batches, each with one sub-network drawn uniformly (the same
batches and sub-networks for every option); the options' pairwise cosine similarities form a
graph, partitioned into K groups by its minimum cut (the partition with the smallest sum of
similarities between groups; for 3 options and K=2 the grouping with the most similar pair
together); the decision whose minimum cut is smallest is split. ``k=None`` means K=2 there
(the paper's bipartition). The chosen split is part of the schedule's ``state_dict`` and of
the wrapper's, so a resumed run and a loaded supernet rebuild the same parts.

Where this differs from the papers: the supernet is Once-for-All's elastic network, whose
options share weights (a kernel is a crop of the larger one), so the split block's own weights
are left out of the gradients compared; the sub-supernets train side by side, one step each
per batch, instead of one after another.

Example:
    >>> from nasforge.elastic import create_schedule
    >>> schedule = create_schedule("few-shot", split="s1b0_kernel", k=2)
    >>> [(p.name, p.epochs) for p in schedule.phases(10)]
    [('one-shot', 5), ('split', 5)]
    >>> contiguous_groups(3, 2)
    ((0, 1), (2,))
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.elastic.base import Phase, Schedule, TrainContext, register_schedule
from nasforge.errors import InvalidConfigError, UnsupportedOperationError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nasforge.elastic._few_shot_net import FewShotSupernet

__all__ = [
    "FewShot",
    "FewShotSupernet",
    "Split",
    "contiguous_groups",
    "gradient_similarities",
    "min_cut_groups",
    "split_candidates",
]

#: The keyword of ``supernet.sample()`` that restricts each kind of split decision.
RESTRICTION = {"resolution": "resolutions", "kernel": "kernels", "expansion": "expansions"}
_BLOCK_DECISION = re.compile(r"^s(\d+)b(\d+)_(kernel|expansion)$")
#: Up to this many options, every partition is tried; beyond, only contiguous ones.
_EXHAUSTIVE_OPTIONS = 8


@dataclass(frozen=True)
class Split:
    """Where a supernet is split: the decision's name and the option indices of each part.

    Attributes:
        decision: Name of the split decision (``"s1b0_kernel"``).
        groups: Per part, the indices of the decision's options it owns (every option in
            exactly one part).
        similarity: Gradient matching only: the options' cosine-similarity matrix.
    """

    decision: str
    groups: tuple[tuple[int, ...], ...]
    similarity: tuple[tuple[float, ...], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The split as JSON-able values."""
        return {
            "decision": self.decision,
            "groups": [list(g) for g in self.groups],
            "similarity": None if self.similarity is None else [list(r) for r in self.similarity],
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Split:
        """The split :meth:`to_dict` wrote."""
        similarity = values.get("similarity")
        return cls(
            decision=str(values["decision"]),
            groups=tuple(tuple(int(i) for i in g) for g in values["groups"]),
            similarity=None
            if similarity is None
            else tuple(tuple(float(v) for v in r) for r in similarity),
        )

    def same_parts(self, other: Split) -> bool:
        """Whether ``other`` splits on the same decision into the same parts."""
        return self.decision == other.decision and self.groups == other.groups


def _splittable_name(name: Any) -> bool:
    return isinstance(name, str) and (name == "resolution" or bool(_BLOCK_DECISION.match(name)))


def decision_kind(decision: str) -> str:
    """``"resolution"``, ``"kernel"`` or ``"expansion"``: the kind of a split decision."""
    return "resolution" if decision == "resolution" else decision.rsplit("_", 1)[-1]


def split_candidates(space: Any) -> list[str]:
    """The decisions of ``space`` a supernet can be split on: ``"resolution"`` and the kernel
    and expansion of every block that every sub-network has (those below the smallest depth
    of its stage)."""
    depths = {d.name: min(d.options) for d in space.decisions() if d.name.endswith("_depth")}
    out = []
    for decision in space.decisions():
        if decision.name == "resolution":
            out.append(decision.name)
            continue
        match = _BLOCK_DECISION.match(decision.name)
        if match and int(match.group(2)) < depths.get(f"s{match.group(1)}_depth", 0):
            out.append(decision.name)
    return out


def check_decision(space: Any, decision: str) -> int:
    """The index of ``decision`` among ``space``'s decisions.

    Raises:
        InvalidConfigError: Not a decision ``space``'s supernets can be split on.
    """
    candidates = split_candidates(space)
    if decision not in candidates:
        raise InvalidConfigError(
            f"Few-shot NAS cannot split space {space.name!r} on {decision!r}: split on "
            "'resolution' or the kernel or expansion of a block every sub-network has, one "
            f"of {candidates}, or use split='gradient'."
        )
    return [d.name for d in space.decisions()].index(decision)


def contiguous_groups(options: int, k: int) -> tuple[tuple[int, ...], ...]:
    """``range(options)`` cut into ``k`` contiguous groups of sizes differing by at most one,
    the larger first.

    Raises:
        InvalidConfigError: ``k`` is not between 2 and ``options``.
    """
    check_k(options, k)
    sizes = [options // k + (1 if i < options % k else 0) for i in range(k)]
    out, start = [], 0
    for size in sizes:
        out.append(tuple(range(start, start + size)))
        start += size
    return tuple(out)


def check_k(options: int, k: int) -> None:
    if not 2 <= k <= options:
        raise InvalidConfigError(
            f"Few-shot NAS needs 2 <= k <= the split decision's {options} options, got k={k}; "
            "give a smaller k or split on a decision with more options."
        )


def _partitions(n: int, k: int) -> Iterator[tuple[tuple[int, ...], ...]]:
    """Every partition of ``range(n)`` into ``k`` non-empty groups (each once, groups ordered
    by their first element); only contiguous ones beyond :data:`_EXHAUSTIVE_OPTIONS`."""
    if n > _EXHAUSTIVE_OPTIONS:
        for cuts in itertools.combinations(range(1, n), k - 1):
            bounds = (0, *cuts, n)
            yield tuple(tuple(range(a, b)) for a, b in itertools.pairwise(bounds))
        return

    def grow(i: int, labels: list[int], used: int) -> Iterator[list[int]]:
        if n - i < k - used:
            return
        if i == n:
            yield labels
            return
        for label in range(min(used + 1, k)):
            yield from grow(i + 1, [*labels, label], max(used, label + 1))

    for labels in grow(0, [], 0):
        yield tuple(tuple(i for i in range(n) if labels[i] == g) for g in range(k))


def min_cut_groups(similarity: np.ndarray, k: int) -> tuple[tuple[tuple[int, ...], ...], float]:
    """The partition of the options into ``k`` groups whose cut (the sum of the similarities
    of pairs in different groups) is smallest, and that cut.

    Example:
        >>> s = np.array([[1.0, 0.9, -0.5], [0.9, 1.0, -0.4], [-0.5, -0.4, 1.0]])
        >>> groups, cut = min_cut_groups(s, 2)
        >>> groups, round(cut, 2)
        (((0, 1), (2,)), -0.9)
    """
    n = similarity.shape[0]
    check_k(n, k)
    best: tuple[tuple[tuple[int, ...], ...], float] | None = None
    for groups in _partitions(n, k):
        label = np.empty(n, dtype=int)
        for g, members in enumerate(groups):
            label[list(members)] = g
        crossing = label[:, None] != label[None, :]
        cut = float(similarity[crossing].sum() / 2)
        if best is None or cut < best[1] - 1e-12:
            best = (groups, cut)
    assert best is not None
    return best


# -- gradient matching -----------------------------------------------------------------------------
def _own_parameters(net: Any, decision: str) -> set[int]:
    """Ids of the parameters of the block ``decision`` belongs to (none for ``resolution``
    or a module without ``stages``)."""
    match = _BLOCK_DECISION.match(decision)
    stages = getattr(net, "stages", None)
    if match is None or stages is None:
        return set()
    block = stages[int(match.group(1)) - 1][int(match.group(2))]
    return {id(p) for p in block.parameters()}


def gradient_similarities(
    net: Any,
    decisions: Sequence[str],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    rng: np.random.Generator,
    *,
    resolutions: Sequence[int] | None = None,
    label_smoothing: float = 0.0,
) -> dict[str, np.ndarray]:
    """For each decision, the cosine similarities between the gradients of the shared weights
    with the decision fixed to each of its options (Hu et al. 2022, Section 3.2).

    For every batch one sub-network is drawn uniformly (``net.sample(rng)``, within
    ``resolutions``); the decision is set to each option in turn and the cross-entropy's
    gradient with respect to every weight outside the decision's block is accumulated per
    option; the batches and sub-networks are the same for every option. The network's
    weights, gradients and batch-norm statistics are left as they were.

    Returns:
        ``{decision: matrix}``, the matrix ``options x options`` of cosine similarities.
    """
    import torch
    import torch.nn.functional as F

    space = net.space
    names = [d.name for d in space.decisions()]
    restrict = {} if resolutions is None else {"resolutions": tuple(resolutions)}
    draws = [net.sample(rng, **restrict) for _ in batches]
    buffers = {name: b.detach().clone() for name, b in net.named_buffers()}
    was_training = net.training
    net.train()
    out: dict[str, np.ndarray] = {}
    try:
        for decision in decisions:
            index = names.index(decision)
            count = len(space.decisions()[index].options)
            own = _own_parameters(net, decision)
            shared = [p for p in net.parameters() if p.requires_grad and id(p) not in own]
            sums = [torch.zeros(sum(p.numel() for p in shared)) for _ in range(count)]
            for (x, y), base in zip(batches, draws, strict=True):
                for option in range(count):
                    choices = list(base.choices)
                    choices[index] = option
                    net.set_active(space.from_choices(choices))
                    side = int(net.active_resolution)
                    inputs = x if x.shape[-1] == side else _resize(x, side)
                    loss = F.cross_entropy(net(inputs), y, label_smoothing=label_smoothing)
                    grads = torch.autograd.grad(loss, shared, allow_unused=True)
                    flat = torch.cat(
                        [
                            torch.zeros(p.numel()) if g is None else g.detach().flatten().cpu()
                            for p, g in zip(shared, grads, strict=True)
                        ]
                    )
                    sums[option] += flat
            stacked = torch.stack(sums).double()
            norms = stacked.norm(dim=1).clamp_min(1e-30)
            unit = stacked / norms[:, None]
            out[decision] = (unit @ unit.T).numpy()
    finally:
        with torch.no_grad():
            named = dict(net.named_buffers())
            for key, value in buffers.items():
                named[key].copy_(value)
        net.train(was_training)
    return out


def _resize(x: torch.Tensor, side: int) -> torch.Tensor:
    from nasforge.ops.elastic import resize_images

    return resize_images(x, side)


# -- the schedule ----------------------------------------------------------------------------------
@register_schedule("few-shot")
class FewShot(Schedule):
    """Few-shot NAS (see the module docstring).

    Args:
        split: The decision to split on (``"s1b0_kernel"``: the kernel of stage 1's first
            block), or ``"gradient"`` for the gradient-matching choice.
        k: Number of sub-supernets (``None``: one per option of a named split, 2 for
            ``"gradient"``).
        parent_fraction: Share of the epochs that train the one-shot parent (0.5, our
            choice for short budgets); the sub-supernets train for the rest.
        gm_samples: Gradient matching: batches (each with one sub-network) per decision.
        candidates: Gradient matching: the decisions considered (``None``: the kernels and
            expansions of every block all sub-networks have).
    """

    def __init__(
        self,
        *,
        split: str = "s1b0_kernel",
        k: int | None = None,
        parent_fraction: float = 0.5,
        gm_samples: int = 4,
        candidates: list[str] | None = None,
    ) -> None:
        for name in [split, *(candidates or [])]:
            if name != "gradient" and not _splittable_name(name):
                raise InvalidConfigError(
                    f"few-shot splits on 'resolution' or a block's kernel or expansion "
                    f"('s<stage>b<block>_kernel', 's<stage>b<block>_expansion'), or "
                    f"split='gradient' chooses; got {name!r}."
                )
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 2):
            raise InvalidConfigError(f"few-shot k must be an integer >= 2 or None, got {k!r}.")
        if not 0.0 < parent_fraction < 1.0:
            raise InvalidConfigError(
                f"few-shot parent_fraction must be in (0, 1), got {parent_fraction!r}."
            )
        if isinstance(gm_samples, bool) or not isinstance(gm_samples, int) or gm_samples < 1:
            raise InvalidConfigError(
                f"few-shot gm_samples must be a positive integer, got {gm_samples!r}."
            )
        self.split = split
        self.k = k
        self.parent_fraction = float(parent_fraction)
        self.gm_samples = gm_samples
        self.candidates = None if candidates is None else list(candidates)
        self.chosen: Split | None = None

    def phases(self, epochs: int) -> list[Phase]:
        parent = max(1, round(epochs * self.parent_fraction))
        if epochs - parent < 1:
            raise InvalidConfigError(
                f"Few-shot NAS needs at least 2 epochs (one for the one-shot parent, one for "
                f"the sub-supernets), got {epochs}."
            )
        return [Phase("one-shot", parent), Phase("split", epochs - parent)]

    # -- the split ---------------------------------------------------------------------------
    def choose_split(self, net: Any, ctx: TrainContext) -> Split:
        """The split of ``net``: the named decision's options in contiguous groups, or the
        gradient-matching choice (which draws batches and sub-networks from ``ctx``).

        Raises:
            InvalidConfigError: An unknown decision or a ``k`` out of range.
        """
        space = net.space
        if self.split != "gradient":
            index = check_decision(space, self.split)
            count = len(space.decisions()[index].options)
            return Split(self.split, contiguous_groups(count, self.k or count))
        candidates = self.candidates
        if candidates is None:
            candidates = [c for c in split_candidates(space) if c != "resolution"]
        for name in candidates:
            check_decision(space, name)
        if not candidates:
            raise InvalidConfigError("few-shot candidates must name at least one decision.")
        if ctx.data is None:
            raise UnsupportedOperationError(
                "The gradient-matching split needs training data (ctx.data)."
            )
        batches = list(ctx.data.batches("train", ctx.generator, ctx.device, self.gm_samples))
        sims = gradient_similarities(
            net,
            candidates,
            batches,
            ctx.rng,
            resolutions=ctx.resolutions or None,
            label_smoothing=ctx.settings.label_smoothing,
        )
        best: tuple[float, Split] | None = None
        for name in candidates:
            groups, cut = min_cut_groups(sims[name], self.k or 2)
            if best is None or cut < best[0] - 1e-12:
                matrix = tuple(tuple(float(v) for v in row) for row in sims[name])
                best = (cut, Split(name, groups, matrix))
        assert best is not None
        return best[1]

    def _provisional(self, net: Any) -> Split:
        """A split with the right decision kind to build parts before the saved one is
        loaded (see :meth:`wrap`)."""
        space = net.space
        names = self.candidates or [c for c in split_candidates(space) if c != "resolution"]
        count = len(space.decisions()[check_decision(space, names[0])].options)
        return Split(names[0], contiguous_groups(count, self.k or 2))

    def wrap(self, supernet: nn.Module, phase: Phase, ctx: TrainContext) -> nn.Module:
        if phase.name != "split":
            return supernet
        from nasforge.elastic._few_shot_net import FewShotSupernet as Wrapper

        if isinstance(supernet, Wrapper):
            return supernet
        if self.chosen is not None:
            return Wrapper(supernet, self.chosen)
        if ctx.restoring and self.split == "gradient":
            # the trainer loads the schedule's state after rebuilding the module: the parts
            # take the saved split from the module's state_dict (FewShotSupernet's extra state)
            wrapper = Wrapper(supernet, self._provisional(supernet))
            wrapper.provisional = True
            return wrapper
        self.chosen = self.choose_split(supernet, ctx)
        return Wrapper(supernet, self.chosen)

    # -- training ----------------------------------------------------------------------------
    def step(
        self, ctx: TrainContext, x: torch.Tensor, y: torch.Tensor, phase: Phase
    ) -> dict[str, float]:
        net = ctx.supernet
        if phase.name == "split":
            options: dict[str, Any] = dict(phase.options)
            options["resolutions"] = ctx.phase_resolutions(phase)
            archs = [net.sample(ctx.rng, part=i, **options) for i in range(len(net.parts))]
        else:
            archs = [ctx.sample(phase)]
        loss_sum = correct = 0.0
        for arch in archs:
            net.set_active(arch)
            logits = net(ctx.resize(x, net.active_resolution))
            loss = ctx.ce_loss(logits, y)
            loss.backward()
            loss_sum += float(loss.detach())
            correct += float((logits.detach().argmax(1) == y).float().mean())
        return {"loss": loss_sum / len(archs), "accuracy": correct / len(archs)}

    def state_dict(self) -> dict[str, Any]:
        return {"split": None if self.chosen is None else self.chosen.to_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = state.get("split")
        self.chosen = None if saved is None else Split.from_dict(saved)


def __getattr__(name: str) -> Any:
    # FewShotSupernet subclasses torch's nn.Module: imported on first use, so that listing
    # the schedules does not import torch
    if name == "FewShotSupernet":
        from nasforge.elastic._few_shot_net import FewShotSupernet

        return FewShotSupernet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
