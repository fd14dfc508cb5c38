"""N2N learning: a teacher network compressed into a student by two policy-gradient agents.

Ashok, Rhinehart, Beainy & Kitani, "N2N Learning: Network to Network Compression via Policy
Gradient Reinforcement Learning", ICLR 2018, arXiv:1709.06030. Followed here:

* **States and actions**: the teacher's weight layers in forward order, each described by its
  kind, kernel size, stride and widths (:func:`nasforge.growth.net2net.describe`); a student is
  the teacher after the actions, with the teacher's weights.
* **Stage 1, layer removal** (the paper's Fig. 2a): a bidirectional LSTM reads every layer's
  description; a softmax per layer gives keep / remove. Removed layers become identity
  (:func:`~nasforge.growth.net2net.remove`).
* **Stage 2, layer shrinkage** (Fig. 2b): an autoregressive LSTM reads each layer's
  description with the previous layer's action and picks a shrink ratio from a discrete set;
  the layer keeps ``round(ratio * width)`` of its filters
  (:func:`~nasforge.growth.net2net.shrink`). It starts from the best student of stage 1.
* **Reward**: ``R = R_c * R_a`` with ``R_c = C (2 - C)``, ``C = 1 - params_student /
  params_teacher`` and ``R_a = acc_student / acc_teacher`` (:func:`n2n_reward`). A student that
  cannot be built or does not run, or that breaks a constraint (``max_params``,
  ``min_accuracy``), gets the paper's reward of ``-1``.
* **Policy gradient**: REINFORCE over ``m = rollouts`` students per iteration,
  ``grad J = 1/m sum_k sum_t grad log pi(a_t | h_t) (R_k - b)``, ``b`` a moving average of
  earlier rewards; Adam at 3e-3, LSTMs of 2 layers and 30 hidden units (the authors' code).
* **Students trained by knowledge distillation**: a few epochs (5 in the paper) of the L2 loss
  between the student's and the teacher's logits (Ba & Caruana 2014) on the training data;
  the reward takes the accuracy on held-out validation data.

Adaptations: removal replaces a layer by identity, so only layers whose input and output
shapes match can be removed (the paper also re-sizes the next layer to fit); shrinkage changes
output widths only (not kernel sizes); the description has the layer's output size in pixels
where the paper has its padding; the policies act only on the layers that can take their
action, the others keep their place in the sequence with no log-probability counted; a
student seen before reuses its reward instead of being trained again; the baseline is an
exponential moving average (decay ``baseline_decay``) of the iterations' mean rewards,
starting at the first one; students inherit the teacher's weights (the filters of largest L1
norm when shrunk) before distillation; the best student over both stages is returned.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from nasforge.growth.n2n_learning import n2n_reward
    >>> round(n2n_reward(250, 1000, 0.8, 0.9), 4)  # C = 0.75: 0.9375 * 0.8 / 0.9
    0.8333
    >>> n2n_reward(250, 1000, 0.8, 0.9, max_params=200)  # over the size constraint
    -1.0
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import (
    InfeasibleConstraintError,
    InvalidConfigError,
    NasforgeError,
    UnsupportedOperationError,
)
from nasforge.growth import net2net
from nasforge.growth._n2n_parts import (
    FEATURES,
    Reinforce,
    RemovalPolicy,
    Settings,
    ShrinkPolicy,
    accuracy,
    check_settings,
    count_params,
    distill,
    layer_features,
    logits,
    read_data,
    refusal_message,
)
from nasforge.growth.net2net import Layer
from nasforge.train.data import DataSplits
from nasforge.train.trainer import num_threads, seeded, select_device
from nasforge.train.user_data import TensorData, UserData

__all__ = [
    "DEFAULT_RATIOS",
    "INVALID_REWARD",
    "N2NIteration",
    "N2NResult",
    "N2NStudent",
    "RemovalPolicy",
    "ShrinkPolicy",
    "distill",
    "layer_features",
    "n2n",
    "n2n_reward",
]

logger = logging.getLogger(__name__)

#: The reward of a student that cannot be built, does not run or breaks a constraint.
INVALID_REWARD = -1.0
#: The shrink ratios the shrinkage policy chooses from.
DEFAULT_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def n2n_reward(
    student_params: int,
    teacher_params: int,
    student_accuracy: float,
    teacher_accuracy: float,
    *,
    max_params: int | None = None,
    min_accuracy: float | None = None,
) -> float:
    """The N2N reward ``R_c * R_a``, or ``-1`` for a student breaking a constraint.

    ``R_c = C (2 - C)`` with ``C = 1 - student_params / teacher_params`` rewards compression
    with diminishing returns; ``R_a = student_accuracy / teacher_accuracy``.

    Raises:
        InvalidConfigError: ``teacher_params`` or ``teacher_accuracy`` is not positive.
    """
    if teacher_params <= 0 or not teacher_accuracy > 0:
        raise InvalidConfigError(
            f"The teacher needs parameters and a positive accuracy for the N2N reward, got "
            f"{teacher_params} parameters and accuracy {teacher_accuracy!r}; train it first."
        )
    if max_params is not None and student_params > max_params:
        return INVALID_REWARD
    if min_accuracy is not None and student_accuracy < min_accuracy:
        return INVALID_REWARD
    c = 1.0 - student_params / teacher_params
    return c * (2.0 - c) * (student_accuracy / teacher_accuracy)


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class N2NStudent:
    """One student a policy proposed.

    Attributes:
        stage: ``"removal"`` or ``"shrinkage"``.
        iteration, rollout: Where it was sampled.
        removed: The teacher's layers replaced by identity.
        widths: ``(layer, width)`` of the shrunk layers.
        params: Its parameters (the teacher's count for an invalid student).
        accuracy: Its validation accuracy in ``[0, 1]`` after distillation (``None`` when it
            was not trained: invalid, or over ``max_params``).
        compression: ``C = 1 - params / teacher params``.
        reward: :func:`n2n_reward`, or ``-1``.
        note: Why the reward is ``-1`` (empty otherwise).
    """

    stage: str
    iteration: int
    rollout: int
    removed: tuple[str, ...]
    widths: tuple[tuple[str, int], ...]
    params: int
    accuracy: float | None
    compression: float
    reward: float
    note: str = ""


@dataclass(frozen=True)
class N2NIteration:
    """One policy update.

    Attributes:
        stage: ``"removal"`` or ``"shrinkage"``.
        iteration: Its index within the stage.
        rewards: The rollouts' rewards.
        baseline: The baseline ``b`` of the update.
        layers: The layers the policy acts on.
        per_layer: Removal: the probability of keeping each of ``layers`` under the policy
            that sampled this iteration. Shrinkage: the mean ratio sampled for each.
    """

    stage: str
    iteration: int
    rewards: tuple[float, ...]
    baseline: float
    layers: tuple[str, ...]
    per_layer: tuple[float, ...]

    @property
    def mean_reward(self) -> float:
        return float(np.mean(self.rewards))

    @property
    def best_reward(self) -> float:
        return max(self.rewards)


@dataclass(frozen=True, eq=False)
class N2NResult:
    """What :func:`n2n` found.

    Attributes:
        student: The best student (highest reward), trained by distillation.
        best: Its record.
        teacher_params, teacher_accuracy: The teacher's parameters and validation accuracy.
        removal, shrinkage: The per-iteration history of each stage.
        students: Every rollout's student, in order.
        keep_probabilities: The removal policy's final probability of keeping each removable
            layer.
    """

    student: nn.Module
    best: N2NStudent
    teacher_params: int
    teacher_accuracy: float
    removal: tuple[N2NIteration, ...]
    shrinkage: tuple[N2NIteration, ...]
    students: tuple[N2NStudent, ...]
    keep_probabilities: Mapping[str, float]

    @property
    def student_params(self) -> int:
        return self.best.params

    @property
    def student_accuracy(self) -> float:
        return float(self.best.accuracy if self.best.accuracy is not None else math.nan)

    @property
    def compression(self) -> float:
        """``C = 1 - student params / teacher params``."""
        return self.best.compression

    @property
    def compression_ratio(self) -> float:
        """Teacher params / student params (the paper's "10x")."""
        return self.teacher_params / max(1, self.best.params)

    @property
    def reward(self) -> float:
        return self.best.reward


# -- the search --------------------------------------------------------------------------------
def n2n(
    teacher: nn.Module,
    data: DataSplits | UserData | Any,
    *,
    example: torch.Tensor | None = None,
    removal_iterations: int = 10,
    shrink_iterations: int = 10,
    rollouts: int = 5,
    student_epochs: int = 5,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    max_params: int | None = None,
    min_accuracy: float | None = None,
    student_lr: float = 1e-3,
    batch_size: int = 64,
    policy_lr: float = 3e-3,
    baseline_decay: float = 0.8,
    hidden: int = 30,
    score: Callable[[nn.Module], float] | None = None,
    seed: int = 0,
    device: str = "cpu",
    threads: int | None = None,
) -> N2NResult:
    """Compress a trained ``teacher`` into a student with N2N's two policies (see the module).

    Args:
        teacher: A trained classifier (left untouched).
        data: :class:`~nasforge.train.data.DataSplits` (a tenth of its training images, drawn
            by ``seed``, becomes the validation set), a
            :class:`~nasforge.train.user_data.UserData`, or what it accepts (``(inputs,
            targets)`` with integer targets, a ``Dataset``, a ``DataLoader``).
        example: An input batch for tracing the teacher (default: two training items).
        removal_iterations, shrink_iterations: Policy updates of each stage (``0`` skips it).
        rollouts: Students per update (the paper's ``m``).
        student_epochs: Distillation epochs of each student.
        ratios: The shrink ratios in ``(0, 1]``.
        max_params, min_accuracy: Constraints (accuracy in ``[0, 1]``); a student breaking one
            gets reward ``-1``.
        student_lr, batch_size: Adam's rate and the batch of the distillation.
        policy_lr, baseline_decay, hidden: The policies' Adam rate, the baseline's moving
            average decay, the LSTMs' hidden units.
        score: ``score(model) -> accuracy in [0, 1]`` in place of distillation and validation
            (the students are then returned untrained), e.g. a cheap proxy.
        seed: Seeds the policies, the sampling, the split and the students' training.
        device: Where students train (``"cpu"``, ``"cuda"``, ``"auto"``).
        threads: Torch threads for the run (``None``: torch's setting).

    Returns:
        :class:`N2NResult`: the best student, its compression and accuracy against the
        teacher's, and the reward history of both stages.

    Raises:
        UnsupportedOperationError: The teacher cannot be traced, or no layer can take the
            asked stages' actions (the message names each layer and why).
        InvalidConfigError: Bad settings, regression targets, a teacher of zero accuracy.
        InfeasibleConstraintError: No student met the constraints.
    """
    check_settings(
        removal_iterations,
        shrink_iterations,
        rollouts,
        student_epochs,
        ratios,
        batch_size,
        baseline_decay,
    )
    if not isinstance(teacher, nn.Module):
        raise InvalidConfigError(
            f"teacher must be a torch nn.Module, got {type(teacher).__name__}."
        )
    train, valid = read_data(data, seed)
    if example is None:
        example = train.inputs[:2]
    settings = Settings(
        removal_iterations, shrink_iterations, rollouts, student_epochs,
        tuple(float(r) for r in ratios), max_params, min_accuracy, student_lr, batch_size,
        policy_lr, baseline_decay, hidden, score, int(seed), device,
    )  # fmt: skip
    context = num_threads(threads) if threads is not None else contextlib.nullcontext(0)
    with context:
        return _Search(teacher, train, valid, example, settings).run()


class _Search:
    """The state of one :func:`n2n` run."""

    def __init__(
        self,
        teacher: nn.Module,
        train: TensorData,
        valid: TensorData,
        example: torch.Tensor,
        settings: Settings,
    ) -> None:
        self.s = settings
        self.device = select_device(settings.device)
        self.teacher = copy.deepcopy(teacher).cpu().eval()
        self.example = example.cpu()
        self.train, self.valid = train, valid
        self.layers = net2net.layers(self.teacher, self.example)
        if not self.layers:
            raise UnsupportedOperationError(
                "N2N cannot compress this teacher: it has no Conv2d or Linear layer to remove "
                "or shrink."
            )
        removal, shrink = settings.removal_iterations, settings.shrink_iterations
        can_remove = any(layer.removable for layer in self.layers)
        can_shrink = any(layer.widenable for layer in self.layers)
        if not ((removal and can_remove) or (shrink and can_shrink)):
            what = " or ".join(
                w for w, asked in (("removed", removal), ("shrunk", shrink)) if asked
            )
            raise UnsupportedOperationError(refusal_message(self.layers, what))
        self.teacher_params = count_params(self.teacher)
        with torch.no_grad():
            self.output_shape = tuple(self.teacher(self.example).shape)
        self.seed = int(settings.seed)
        self.generator = torch.Generator().manual_seed(self._seed(0))
        self.teacher_logits = (
            None if settings.score is not None else logits(self.teacher, train.inputs, self.device)
        )
        self.teacher_accuracy = self._accuracy(self.teacher)
        if not self.teacher_accuracy > 0:
            raise InvalidConfigError(
                "The teacher's validation accuracy is 0: N2N's reward is relative to it; train "
                "the teacher first."
            )
        self.cache: dict[tuple[Any, ...], N2NStudent] = {}
        self.students: list[N2NStudent] = []
        self.best: tuple[N2NStudent, nn.Module] | None = None
        self.evaluations = 0

    def _seed(self, *key: int) -> int:
        state = np.random.SeedSequence([self.seed, *key]).generate_state(1, np.uint64)[0]
        return int(state) & 0x7FFF_FFFF_FFFF_FFFF

    def _accuracy(self, model: nn.Module) -> float:
        scorer = self.s.score
        if scorer is not None:
            return float(scorer(model))
        return accuracy(model, self.valid, self.device)

    def _policy_input(self, model: nn.Module) -> tuple[list[Layer], torch.Tensor]:
        layers = net2net.layers(model, self.example)
        return layers, layer_features(net2net.describe(model, self.example))

    # -- one student
    def _trained_accuracy(self, model: nn.Module) -> float:
        """The student's accuracy after distillation (or its score, untrained)."""
        if self.teacher_logits is not None:
            self.evaluations += 1
            s = self.s
            distill(
                model,
                self.teacher_logits,
                self.train.inputs,
                epochs=s.student_epochs,
                lr=s.student_lr,
                batch_size=s.batch_size,
                seed=self._seed(1, self.evaluations),
                device=self.device,
            )
        return self._accuracy(model)

    def _build(self, removed: tuple[str, ...], widths: tuple[tuple[str, int], ...]) -> nn.Module:
        model = (
            net2net.remove(self.teacher, self.example, list(removed)) if removed else self.teacher
        )
        if widths:
            model = net2net.shrink(model, self.example, dict(widths))
        model = copy.deepcopy(model) if model is self.teacher else model
        with torch.no_grad():
            shape = tuple(model.eval()(self.example).shape)
        if shape != self.output_shape:
            raise InvalidConfigError(
                f"its output has shape {shape}, the teacher's {self.output_shape}"
            )
        return model

    def _student(
        self,
        stage: str,
        iteration: int,
        rollout: int,
        removed: tuple[str, ...],
        widths: tuple[tuple[str, int], ...],
    ) -> N2NStudent:
        key = (removed, widths)
        seen = self.cache.get(key)
        if seen is not None:
            record = replace(seen, stage=stage, iteration=iteration, rollout=rollout)
            self.students.append(record)
            return record
        s = self.s
        model: nn.Module | None = None
        acc: float | None = None
        try:
            model = self._build(removed, widths)
        except (NasforgeError, RuntimeError, ValueError) as err:
            note = f"invalid student: {err}"
            params = self.teacher_params
        else:
            params = count_params(model)
            note = ""
            if s.max_params is not None and params > s.max_params:
                note = f"{params} parameters > max_params={s.max_params}"
            else:
                acc = self._trained_accuracy(model) if removed or widths else self.teacher_accuracy
                if s.min_accuracy is not None and acc < s.min_accuracy:
                    note = f"accuracy {acc:.4f} < min_accuracy={s.min_accuracy}"
        compression = 1.0 - params / self.teacher_params
        if note or acc is None:
            reward = INVALID_REWARD
        else:
            reward = n2n_reward(params, self.teacher_params, acc, self.teacher_accuracy)
        record = N2NStudent(
            stage, iteration, rollout, removed, widths, params, acc, compression, reward, note
        )
        self.cache[key] = record
        self.students.append(record)
        if model is not None and not note and (self.best is None or reward > self.best[0].reward):
            self.best = (record, model.cpu())
        return record

    # -- the two stages
    def run(self) -> N2NResult:
        removal_iterations = self.s.removal_iterations
        shrink_iterations = self.s.shrink_iterations
        removal: list[N2NIteration] = []
        keep: dict[str, float] = {}
        if removal_iterations and any(layer.removable for layer in self.layers):
            removal, keep = self._removal(removal_iterations)
        elif removal_iterations:
            logger.warning("N2N: no layer of the teacher can be removed; stage 1 skipped.")
        removed: tuple[str, ...] = ()
        stage_one = [r for r in self.students if r.stage == "removal" and not r.note]
        if stage_one:
            top = max(stage_one, key=lambda r: r.reward)
            removed = top.removed if top.reward > 0 else ()
        shrinkage: list[N2NIteration] = []
        if shrink_iterations:
            base = self._build(removed, ())
            layers, x = self._policy_input(base)
            if any(layer.widenable for layer in layers):
                shrinkage = self._shrinkage(shrink_iterations, removed, layers, x)
            else:
                logger.warning(
                    "N2N: no layer of the stage-1 student can be shrunk; stage 2 skipped."
                )
        if self.best is None:
            notes = sorted({r.note for r in self.students if r.note})
            raise InfeasibleConstraintError(
                f"No N2N student met the constraints in {len(self.students)} rollouts "
                f"({'; '.join(notes[:3])}); loosen max_params / min_accuracy or run more "
                "iterations."
            )
        record, model = self.best
        return N2NResult(
            model,
            record,
            self.teacher_params,
            self.teacher_accuracy,
            tuple(removal),
            tuple(shrinkage),
            tuple(self.students),
            keep,
        )

    def _removal(self, iterations: int) -> tuple[list[N2NIteration], dict[str, float]]:
        s = self.s
        layers, x = self._policy_input(self.teacher)
        mask = torch.tensor([layer.removable for layer in layers])
        names = tuple(layer.name for layer in layers if layer.removable)
        with seeded(self._seed(2)):
            policy = RemovalPolicy(FEATURES, s.hidden)
        learner = Reinforce(policy, s.policy_lr, s.baseline_decay)
        history = []
        for it in range(iterations):
            probs = policy.keep_probabilities(x)[mask]
            samples = [policy.sample(x, mask, self.generator) for _ in range(s.rollouts)]
            rewards = []
            for k, actions in enumerate(samples):
                removed = tuple(
                    layer.name
                    for layer, a in zip(layers, actions.tolist(), strict=True)
                    if layer.removable and a == 0
                )
                rewards.append(self._student("removal", it, k, removed, ()).reward)
            b = learner.update(x, mask, samples, rewards)
            history.append(
                N2NIteration("removal", it, tuple(rewards), b, names, tuple(probs.tolist()))
            )
            logger.info(
                "N2N removal %d: mean reward %.4f, best %.4f", it, np.mean(rewards), max(rewards)
            )
        final = policy.keep_probabilities(x)[mask].tolist()
        return history, dict(zip(names, final, strict=True))

    def _shrinkage(
        self, iterations: int, removed: tuple[str, ...], layers: list[Layer], x: torch.Tensor
    ) -> list[N2NIteration]:
        s = self.s
        ratios = list(s.ratios)
        mask = torch.tensor([layer.widenable for layer in layers])
        names = tuple(layer.name for layer in layers if layer.widenable)
        with seeded(self._seed(3)):
            policy = ShrinkPolicy(len(ratios), FEATURES, s.hidden)
        learner = Reinforce(policy, s.policy_lr, s.baseline_decay)
        history = []
        for it in range(iterations):
            samples = [policy.sample(x, mask, self.generator) for _ in range(s.rollouts)]
            rewards = []
            for k, actions in enumerate(samples):
                widths = []
                for layer, a in zip(layers, actions.tolist(), strict=True):
                    if a >= 0:
                        width = max(1, round(ratios[a] * layer.out_features))
                        if width != layer.out_features:
                            widths.append((layer.name, width))
                rewards.append(self._student("shrinkage", it, k, removed, tuple(widths)).reward)
            b = learner.update(x, mask, samples, rewards)
            chosen = torch.stack(samples)[:, mask]
            mean_ratio = torch.tensor(ratios)[chosen].mean(0)
            history.append(
                N2NIteration("shrinkage", it, tuple(rewards), b, names, tuple(mean_ratio.tolist()))
            )
            logger.info(
                "N2N shrinkage %d: mean reward %.4f, best %.4f", it, np.mean(rewards), max(rewards)
            )
        return history
