"""DNA: block-wise distillation of a teacher into the elastic supernet, and ranking by the
summed block losses.

Li, C., Peng, J., Yuan, L., Wang, G., Liang, X., Lin, L. and Chang, X. "Block-wisely
Supervised Neural Architecture Search with Knowledge Distillation." CVPR 2020,
arXiv:1911.13053 (authors' code: changlin31/DNA).

* **Blocks** (Section 3.2). The supernet is cut into the blocks of
  :class:`~nasforge.ops.elastic.ElasticMobileNet` (``num_blocks`` = 7): block 0 is the stem
  and the fixed first block ``s0``, blocks 1..5 are the searched stages, block 6 the head.
  The teacher is cut at the same places: the outputs of its modules named in
  :class:`TeacherBlocks` are its block outputs ``Y_0 .. Y_5``.
* **Training** (Sections 3.2-3.3). Every step, each searched block ``i`` takes the
  *teacher's* output of the previous block ``Y_{i-1}`` as its input and learns to reproduce
  the teacher's ``Y_i`` with the mean squared error normalised by the size of the target
  (``||Y_i - Ŷ_i||² / K``, the paper's Eq. 3; the authors' ``nn.MSELoss``, also averaged over
  the batch). Inside each block a random sub-path is drawn uniformly (the stage's depth and
  every block's kernel and expansion: one architecture drawn with
  ``supernet.sample(rng, resolutions=(R,))``, whose stages are independent). The inputs
  come from the frozen teacher, so no gradient crosses from one block to another: the blocks
  train independently, and in parallel (their losses are summed into one backward pass,
  which gives each block exactly the gradient of its own loss; only a global gradient clip
  of the trainer, when set, couples them).
* **Resolution.** DNA trains at one resolution: ``R``, the largest trained side
  (``ctx.resolutions``, by default the space's largest).
* **Teacher** (Section 3.2). Any ``nn.Module`` with the names of the modules whose outputs
  are the block outputs (:func:`teacher_blocks`), a file written by
  ``nasforge export --format pytorch`` (:func:`nasforge.export.load`), or a network of the
  space (:class:`~nasforge.ops.mobile.MobileNetwork`, whose block boundaries are derived from
  its layer specs, :func:`mobile_block_names`). It is frozen (eval mode, no gradient).
  Before training, one batch runs through it and each block output's shape ``(C, H, W)``
  must equal ``supernet.block_shape(i, R)``: a mismatch raises
  :class:`~nasforge.errors.InvalidConfigError` naming the block and both shapes. With
  ``teacher_share > 0`` and no teacher given, a first phase ``"teacher"`` trains the space's
  largest network (cross-entropy on the labels, at ``R``) and the ``"blocks"`` phase distils
  a frozen copy of it (kept in :meth:`DNASchedule.state_dict` for resume and ranking).
* **Stem and head** (not searched). DNA keeps the teacher's stem: the first searched block
  is fed by the teacher. So that every sub-network extracted from the supernet is a whole
  network, block 0 (stem + ``s0``) also learns to reproduce the teacher's ``Y_0`` from the
  images with the same loss, and the head learns the labels (cross-entropy) from the teacher's
  last block output ``Y_5``, as the authors' code trains its last stage on the labels with
  the teacher's features as input. Neither enters the ranking (they are the same for every
  candidate).
* **Ranking** (Section 3.4). A candidate's loss is the *sum* over the searched blocks of its
  block loss on fixed validation batches (the authors' ``process_potential.py`` sums the
  blocks' losses, ``loss_join = 'sum'``, without normalising them); :meth:`DNASchedule.score`
  returns minus that sum (higher is better). The blocks are trained on batch statistics of
  the teacher's features, and by default (``score_bn="batch"``) a candidate is scored the
  same way, its batch norms normalising each scored batch, as the authors' ``_potential``
  does (the supernet's running statistics are left unchanged); ``score_bn="running"`` scores
  in eval mode with the running statistics (recalibrated per sub-network by the caller).
  A candidate of another resolution ``r`` is scored at ``r`` when the teacher accepts
  ``r``-sized images and its block shapes there match the supernet's; otherwise (a teacher
  fixed to one input size) at ``R``, which ranks the blocks' choices but not the resolution,
  and a warning says so once.

Where this differs from the paper: DNA searches a supernet of its own (cells of 6 MBConv
candidates, traversing every path of a block and a constrained traversal of the block
combinations); here the supernet is the elastic Once-for-All network and the candidates are
its sub-networks, ranked by :meth:`DNASchedule.score` for any search strategy. The
self-trained teacher starts the student at the teacher's weights (the largest sub-network
reproduces it at first), as Once-for-All starts its shrinking from the largest network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.elastic.base import Phase, Schedule, TrainContext, register_schedule
from nasforge.errors import InvalidConfigError, unknown_name_message

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nasforge.architecture import Architecture

__all__ = ["DNASchedule", "TeacherBlocks", "block_label", "mobile_block_names", "teacher_blocks"]

logger = logging.getLogger(__name__)

#: Phase names.
TEACHER_PHASE = "teacher"
BLOCKS_PHASE = "blocks"
#: How :meth:`DNASchedule.score` normalises: each batch's statistics, or the running ones.
SCORE_BN = ("batch", "running")


def block_label(index: int, num_blocks: int = 7) -> str:
    """A readable name of supernet block ``index``: ``"stem+s0"``, ``"stage <i>"``,
    ``"head"``."""
    if index == 0:
        return "stem+s0"
    if index == num_blocks - 1:
        return "head"
    return f"stage {index}"


def mobile_block_names(network: nn.Module) -> tuple[str, ...]:
    """The names of the modules of a :class:`~nasforge.ops.mobile.MobileNetwork` (or any
    module with ``specs`` and ``layers`` in the same order) whose outputs are the block
    outputs ``Y_0 .. Y_5`` of a network of the Once-for-All skeleton.

    Block 0 ends with the first MBConv block (the stem and ``s0``); after it, a stage begins
    at every block that has no residual (a stride or a change of width) or another
    squeeze-and-excitation variant or activation than the block before it, and ends at the
    last block before the next stage or the head. In the Once-for-All skeleton every stage
    boundary is one of these at any width multiplier (stages 3 and 4 keep the resolution and
    may round to one width, but differ in SE).

    Raises:
        InvalidConfigError: ``network`` has no layer specs, or no stem, first block and head.
    """
    specs = getattr(network, "specs", None)
    if specs is None or not hasattr(network, "layers"):
        raise InvalidConfigError(
            f"Cannot find the block outputs of a {type(network).__name__}: only a "
            "MobileNetwork (nasforge.ops.mobile) has its boundaries derived from its layer "
            "specs; give the names of the modules whose outputs are the block outputs "
            "(teacher_blocks(teacher, names=[...]))."
        )
    kinds = [spec.kind for spec in specs]
    if len(kinds) < 3 or kinds[0] != "stem" or kinds[1] != "mbconv" or kinds[-1] != "head":
        raise InvalidConfigError(
            f"A teacher network of the space starts with a stem and a first block and ends "
            f"with a head; this one has the layers {kinds}. Give the block names instead."
        )
    ends = [1]
    for k in range(3, len(specs) - 1):
        before, spec = specs[k - 1], specs[k]
        if not spec.residual or (spec.se, spec.act) != (before.se, before.act):
            ends.append(k - 1)
    if len(specs) - 2 > 1:
        ends.append(len(specs) - 2)
    return tuple(f"layers.{k}" for k in ends)


class TeacherBlocks:
    """A frozen teacher and the names of its modules whose outputs are its block outputs.

    Calling it runs the teacher on a batch (no gradient) and returns those outputs in the
    order of ``names``, captured with forward hooks.

    Args:
        module: The teacher; it is put in eval mode and its parameters stop requiring
            gradients.
        names: Names of its modules (as ``module.named_modules()`` lists them) whose outputs
            are the block outputs ``Y_0 .. Y_{n-1}``, in order.

    Raises:
        InvalidConfigError: No names, a repeated name, or a name the module does not have.
    """

    def __init__(self, module: nn.Module, names: Sequence[str]) -> None:
        self.names = tuple(names)
        modules = dict(module.named_modules())
        missing = [name for name in self.names if name not in modules]
        if not self.names or missing or len(set(self.names)) != len(self.names):
            known = [name for name in modules if name]
            raise InvalidConfigError(
                f"Bad teacher block names {list(self.names)}: "
                + (f"the teacher has no module {missing}; " if missing else "")
                + "give each block output's module once, in order; the teacher's modules "
                f"include {known[:12]}{' ...' if len(known) > 12 else ''}."
            )
        self.module = module.eval().requires_grad_(False)
        self._modules = [modules[name] for name in self.names]

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The block outputs of the teacher on ``x``."""
        import torch

        seen: list[list[Any]] = [[] for _ in self.names]
        handles = [
            m.register_forward_hook(lambda _m, _i, out, box=box: box.append(out))
            for m, box in zip(self._modules, seen, strict=True)
        ]
        try:
            self.module.eval()
            with torch.no_grad():
                self.module(x)
        finally:
            for handle in handles:
                handle.remove()
        outputs = []
        for name, box in zip(self.names, seen, strict=True):
            if len(box) != 1 or not isinstance(box[0], torch.Tensor):
                raise InvalidConfigError(
                    f"The teacher's module {name!r} ran {len(box)} times in one forward pass "
                    + ("" if len(box) != 1 else "but gave no single tensor ")
                    + "; name modules that run once and return the block output tensor."
                )
            outputs.append(box[0].detach())
        return outputs

    def to(self, device: Any) -> TeacherBlocks:
        """Move the teacher to ``device``; returns itself."""
        self.module.to(device)
        return self


def teacher_blocks(
    teacher: nn.Module | str | os.PathLike[str] | TeacherBlocks,
    names: Sequence[str] | None = None,
) -> TeacherBlocks:
    """A :class:`TeacherBlocks` of ``teacher``.

    Args:
        teacher: An ``nn.Module``, the path of a file (or folder) written by ``nasforge export
            --format pytorch``, or a :class:`TeacherBlocks` (returned as it is when ``names``
            is ``None``).
        names: The modules whose outputs are the block outputs; ``None`` derives them from
            a :class:`~nasforge.ops.mobile.MobileNetwork`'s layer specs
            (:func:`mobile_block_names`).

    Raises:
        InvalidConfigError: No such file, names that do not fit, or no names for a module
            that is not a network of the space.
    """
    if isinstance(teacher, TeacherBlocks):
        if names is None:
            return teacher
        teacher = teacher.module
    if isinstance(teacher, (str, os.PathLike)):
        from nasforge.export import load

        teacher = load(teacher)
    if names is None:
        names = mobile_block_names(teacher)
    return TeacherBlocks(teacher, names)


@register_schedule("dna")
class DNASchedule(Schedule):
    """DNA's block-wise distillation and ranking (see the module docstring).

    Args:
        teacher: Path of a teacher file written by ``nasforge export --format pytorch``,
            used when training is given no teacher module (``train_supernet(teacher=...)``).
        teacher_blocks: Names of the teacher's modules whose outputs are the block outputs
            of blocks 0..5 (``None``: derived from a network of the space).
        teacher_share: Share of the epochs of a first phase that trains the space's largest
            network as the teacher (0: the teacher is given).
        score_bn: How :meth:`score` normalises: ``"batch"`` (each scored batch's own
            statistics, as DNA) or ``"running"`` (the running statistics, eval mode).

    Raises:
        InvalidConfigError: ``teacher_share`` outside ``[0, 1)`` or an unknown
            ``score_bn``.

    Example:
        >>> from nasforge.elastic import create_schedule
        >>> schedule = create_schedule("dna", teacher_share=0.5)
        >>> [(p.name, p.epochs) for p in schedule.phases(4)]
        [('teacher', 2), ('blocks', 2)]
    """

    def __init__(
        self,
        *,
        teacher: str | None = None,
        teacher_blocks: tuple[str, ...] | None = None,
        teacher_share: float = 0.0,
        score_bn: str = "batch",
    ) -> None:
        if score_bn not in SCORE_BN:
            raise InvalidConfigError(unknown_name_message("score_bn", score_bn, SCORE_BN))
        if not 0.0 <= float(teacher_share) < 1.0:
            raise InvalidConfigError(
                f"teacher_share must be in [0, 1) (the share of the epochs that trains the "
                f"largest network as the teacher), got {teacher_share!r}."
            )
        self.teacher = None if teacher is None else str(teacher)
        self.teacher_blocks = None if teacher_blocks is None else tuple(teacher_blocks)
        self.teacher_share = float(teacher_share)
        self.score_bn = score_bn
        self._teacher: TeacherBlocks | None = None
        self._checked: set[int] = set()
        self._failed: set[int] = set()
        self._own: dict[str, Any] | None = None
        self._cache: dict[tuple[int, int], tuple[Any, list[Any]]] = {}
        self._warned = False

    # -- phases ------------------------------------------------------------------------------
    def phases(self, epochs: int) -> list[Phase]:
        if self.teacher_share == 0.0:
            return [Phase(BLOCKS_PHASE, epochs)]
        if epochs < 2:
            raise InvalidConfigError(
                f"DNA with teacher_share={self.teacher_share} trains the teacher, then the "
                f"blocks: it needs at least 2 epochs, got {epochs}."
            )
        first = min(epochs - 1, max(1, round(epochs * self.teacher_share)))
        return [Phase(TEACHER_PHASE, first), Phase(BLOCKS_PHASE, epochs - first)]

    def begin_phase(self, ctx: TrainContext, phase: Phase) -> None:
        if phase.name == TEACHER_PHASE:
            if ctx.teacher is not None or self.teacher is not None:
                raise InvalidConfigError(
                    "DNA was given a teacher and teacher_share > 0, which trains its own "
                    "teacher; set teacher_share=0 to distil the given one."
                )
            return
        if self.teacher_share > 0 and self._own is None:
            self._own = self._freeze_largest(ctx)
            self._teacher = None
        if ctx.data is not None:
            x, _ = ctx.data.fixed("train", min(2, ctx.data.batch_size), ctx.device)[0]
            self.teacher_for(ctx, x)

    # -- teacher -----------------------------------------------------------------------------
    def _freeze_largest(self, ctx: TrainContext) -> dict[str, Any]:
        arch = ctx.supernet.largest()
        network = ctx.supernet.extract(arch)
        return {"arch": str(arch), "state": {k: v.clone() for k, v in network.state_dict().items()}}

    def teacher_for(self, ctx: TrainContext, x: torch.Tensor | None = None) -> TeacherBlocks:
        """The teacher of this run, checked against the supernet's block shapes on ``x``
        (a batch at the data's resolution) the first time.

        The teacher is ``ctx.teacher`` (a module, a path or a :class:`TeacherBlocks`), else
        the ``teacher`` file, else the teacher this schedule trained (``teacher_share``).

        Raises:
            InvalidConfigError: No teacher, or one whose block outputs do not match the
                supernet's block shapes (the block and both shapes are named).
        """
        if self._teacher is None:
            self._teacher = self._resolve(ctx)
        if x is not None:
            self._check(ctx, self._teacher, x, self.resolution(ctx))
        return self._teacher

    def _resolve(self, ctx: TrainContext) -> TeacherBlocks:
        names = self.teacher_blocks
        if ctx.teacher is not None:
            found = teacher_blocks(ctx.teacher, names)
        elif self.teacher is not None:
            found = teacher_blocks(self.teacher, names)
        elif self._own is not None:
            network = ctx.supernet.extract(ctx.space.parse(self._own["arch"]))
            network.load_state_dict(self._own["state"])
            found = teacher_blocks(network)
        else:
            raise InvalidConfigError(
                "DNA distils a teacher and has none: pass teacher=<nn.Module> to "
                "train_supernet, teacher=<path of a 'nasforge export --format pytorch' file> "
                "to the schedule, or teacher_share=0.5 to train the space's largest network "
                "as the teacher first."
            )
        return found.to(ctx.device)

    def resolution(self, ctx: TrainContext) -> int:
        """``R``, the side DNA trains at: the largest trained resolution."""
        if ctx.resolutions:
            return int(max(ctx.resolutions))
        space = ctx.space if ctx.space is not None else ctx.supernet.space
        return int(space.resolution(space.largest()))

    def _check(self, ctx: TrainContext, teacher: TeacherBlocks, x: Any, side: int) -> None:
        if side in self._checked:
            return
        supernet = ctx.supernet
        expected = supernet.num_blocks - 1
        if len(teacher.names) != expected:
            raise InvalidConfigError(
                f"The teacher has {len(teacher.names)} block outputs {list(teacher.names)}; "
                f"DNA needs the outputs of the supernet's blocks 0..{expected - 1} "
                f"({', '.join(block_label(i) for i in range(expected))}): {expected} names."
            )
        outputs = teacher(ctx.resize(x, side))
        self._check_shapes(ctx, teacher, outputs, side)
        self._checked.add(side)

    @staticmethod
    def _check_shapes(
        ctx: TrainContext, teacher: TeacherBlocks, outputs: list[Any], side: int
    ) -> None:
        for index, (name, out) in enumerate(zip(teacher.names, outputs, strict=True)):
            want = tuple(int(v) for v in ctx.supernet.block_shape(index, side))
            got = tuple(int(v) for v in out.shape[1:])
            if got != want:
                raise InvalidConfigError(
                    f"The teacher's block {index} ({block_label(index)}, module {name!r}) "
                    f"gives outputs of shape {got} (C, H, W) at resolution {side}, but the "
                    f"supernet's block {index} gives {want}: name a teacher module whose "
                    "output has the supernet's shape, or build the supernet at the teacher's "
                    "widths."
                )

    # -- training ----------------------------------------------------------------------------
    def step(
        self, ctx: TrainContext, x: torch.Tensor, y: torch.Tensor, phase: Phase
    ) -> dict[str, float]:
        side = self.resolution(ctx)
        if phase.name == TEACHER_PHASE:
            ctx.supernet.set_active(self._largest_at(ctx, side))
            loss = ctx.ce_loss(ctx.supernet(ctx.resize(x, side)), y)
            loss.backward()
            return {"loss": float(loss.detach())}
        self._cache.clear()
        teacher = self.teacher_for(ctx, x)
        inputs = ctx.resize(x, side)
        targets = teacher(inputs)
        ctx.supernet.set_active(ctx.sample(phase, resolutions=(side,)))
        losses = self.block_losses(ctx.supernet, inputs, targets)
        head = ctx.ce_loss(ctx.supernet.forward_block(len(targets), targets[-1]), y)
        total = sum(losses, head)
        total.backward()
        stats = {"loss": float(total.detach()), "head": float(head.detach())}
        stats.update({f"block{i}": float(v.detach()) for i, v in enumerate(losses)})
        return stats

    @staticmethod
    def block_losses(
        supernet: Any, images: torch.Tensor, targets: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """The loss of each block ``0 .. len(targets)-1`` of the active sub-network: block 0
        on ``images``, block ``i`` on the teacher's ``targets[i - 1]``, each against
        ``targets[i]`` (mean squared error, normalised by the target's size)."""
        import torch.nn.functional as F

        inputs = [images, *targets[:-1]]
        return [
            F.mse_loss(supernet.forward_block(i, inputs[i]), targets[i])
            for i in range(len(targets))
        ]

    @staticmethod
    def _largest_at(ctx: TrainContext, side: int) -> Architecture:
        space = ctx.space if ctx.space is not None else ctx.supernet.space
        largest = ctx.supernet.largest()
        choices = list(largest.choices)
        for k, decision in enumerate(space.decisions()):
            if decision.name == "resolution":
                choices[k] = list(decision.options).index(side)
        return space.from_choices(choices)  # type: ignore[no-any-return]

    # -- ranking -----------------------------------------------------------------------------
    def score(self, ctx: TrainContext, arch: Architecture, batches: Any) -> float | None:
        """Minus ``arch``'s summed block loss over the searched blocks 1..5 on ``batches``
        (``(x, y)`` pairs or images, at the data's resolution); each block's loss is its mean
        squared error over all the batches' elements (see the module docstring)."""
        import torch

        supernet = ctx.supernet
        space = ctx.space if ctx.space is not None else supernet.space
        batches = [b[0] if isinstance(b, (tuple, list)) else b for b in batches]
        if not batches:
            raise InvalidConfigError("DNA scores a sub-network on batches; got none.")
        teacher = self.teacher_for(ctx, batches[0])
        side = self._score_side(ctx, teacher, space.resolution(arch), batches[0])
        was_training, previous = supernet.training, getattr(supernet, "active", None)
        norms = [
            m for m in supernet.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]
        kept = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
        supernet.train(self.score_bn == "batch")
        searched = range(1, supernet.num_blocks - 1)
        sse = [0.0 for _ in searched]
        count = [0 for _ in searched]
        try:
            supernet.set_active(arch)
            with torch.no_grad():
                for x in batches:
                    targets = self._teacher_outputs(ctx, teacher, x, side)
                    for k, i in enumerate(searched):
                        out = supernet.forward_block(i, targets[i - 1])
                        sse[k] += float(((out - targets[i]) ** 2).sum())
                        count[k] += targets[i].numel()
        finally:
            for module, state in zip(norms, kept, strict=True):
                module.load_state_dict(state)
            if previous is not None:
                supernet.set_active(previous)
            supernet.train(was_training)
        return -sum(s / n for s, n in zip(sse, count, strict=True))

    def _score_side(self, ctx: TrainContext, teacher: TeacherBlocks, side: int, x: Any) -> int:
        trained = self.resolution(ctx)
        if side == trained or side in self._checked:
            return side
        if side in self._failed:
            return trained
        try:
            self._check(ctx, teacher, x, side)
            return side
        except (InvalidConfigError, RuntimeError) as err:
            self._failed.add(side)
            if not self._warned:
                logger.warning(
                    "DNA scores sub-networks of resolution %d at %d: the teacher does not "
                    "give the supernet's block shapes at %d (%s)",
                    side,
                    trained,
                    side,
                    err,
                )
                self._warned = True
            return trained

    def _teacher_outputs(
        self, ctx: TrainContext, teacher: TeacherBlocks, x: Any, side: int
    ) -> list[Any]:
        # the teacher is frozen: its outputs on the same batch tensor are kept for scoring
        # many candidates (the tensor itself is kept, so its id is not reused)
        key = (id(x), side)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is x:
            return hit[1]
        if len(self._cache) >= 64:
            self._cache.clear()
        outputs = teacher(ctx.resize(x, side))
        self._cache[key] = (x, outputs)
        return outputs

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {} if self._own is None else {"own_teacher": self._own}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        own = state.get("own_teacher")
        self._own = None if own is None else dict(own)
        self._teacher = None
        self._checked.clear()
        self._failed.clear()
        self._cache.clear()
