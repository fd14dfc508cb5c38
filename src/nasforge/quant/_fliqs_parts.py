"""The parts of FLIQS (:mod:`nasforge.quant.fliqs`) that need no torch: the cosine entropy
schedule, TuNAS's absolute reward, the format controller, and the study, in which each
measured policy of a network built from a quantized space (``"<space>+quant"``) is written as
an architecture of that space and recorded as a trial."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import InvalidConfigError
from nasforge.evaluators.base import Evaluator
from nasforge.predictors.adam import Adam
from nasforge.strategies.base import draw_per_decision
from nasforge.trial import Direction, Result

__all__ = [
    "FormatController",
    "PolicyEvaluator",
    "PolicyRecord",
    "cosine_entropy_weight",
    "open_study",
    "tunas_reward",
]


# -- the schedule, the reward, the controller ---------------------------------------------------
def cosine_entropy_weight(step: int, total: int, start: float) -> float:
    """FLIQS's entropy coefficient at search step ``step`` of ``total``: ``start`` at step 0,
    0 at step ``total`` and after, along ``start * (1 + cos(pi * step / total)) / 2``.

    Example:
        >>> [round(cosine_entropy_weight(s, 4, 0.2), 4) for s in range(5)]
        [0.2, 0.1707, 0.1, 0.0293, 0.0]
    """
    if total <= 0 or step >= total:
        return 0.0
    return float(start * 0.5 * (1.0 + math.cos(math.pi * max(step, 0) / total)))


def tunas_reward(quality: float, cost: float, target: float, beta: float) -> float:
    """TuNAS's absolute reward ``quality + beta * |cost / target - 1|`` (``beta < 0``
    penalises a cost away from the target on either side).

    Example:
        >>> tunas_reward(0.8, 110.0, 100.0, -1.0)
        0.7
    """
    if not target > 0:
        raise InvalidConfigError(f"The cost target must be positive, got {target!r}.")
    return float(quality + beta * abs(cost / target - 1.0))


class FormatController:
    """A factorised categorical policy, one softmax over the formats per layer, trained with
    REINFORCE and an entropy bonus (the controller of FLIQS, as in TuNAS).

    The logits start at zero (the uniform policy). :meth:`update` folds ``reward`` into the
    baseline (the bias-corrected moving average of
    :class:`~nasforge.strategies.reinforce.Reinforce`), then takes one Adam step on
    ``-(reward - baseline) * log pi(choices) - entropy_weight * H``, ``H`` the mean entropy of
    the layers' softmaxes; the gradient for layer ``l`` is
    ``-(r - b) (onehot - p_l) + entropy_weight / L * p_l (log p_l + H_l)``.

    Args:
        layers: Layers (decisions).
        options: Formats per layer.
        learning_rate: Adam's step size on the logits.
        baseline_momentum: Momentum of the reward baseline, in ``(0, 1)``.

    Example:
        >>> c = FormatController(2, 3)
        >>> c.probabilities().round(3).tolist()[0]
        [0.333, 0.333, 0.333]
    """

    def __init__(
        self,
        layers: int,
        options: int,
        *,
        learning_rate: float = 0.05,
        baseline_momentum: float = 0.95,
    ) -> None:
        if layers < 1 or options < 1:
            raise InvalidConfigError(
                f"A controller needs at least one layer and one format, got {layers} and {options}."
            )
        if not (math.isfinite(learning_rate) and learning_rate > 0):
            raise InvalidConfigError(
                f"controller_lr must be a positive finite number, got {learning_rate!r}."
            )
        if not 0 < baseline_momentum < 1:
            raise InvalidConfigError(
                f"baseline_momentum must be in (0, 1), got {baseline_momentum!r}."
            )
        self.options = options
        self.baseline_momentum = float(baseline_momentum)
        self.logits = np.zeros((layers, options))
        self._adam = Adam([self.logits.shape], lr=float(learning_rate))
        self._numerator = 0.0
        self._denominator = 0.0

    def probabilities(self) -> np.ndarray:
        """Row ``l``: the probabilities of the formats of layer ``l``."""
        shifted = np.exp(self.logits - self.logits.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))

    def sample(self, rng: np.random.Generator) -> list[int]:
        """One format index per layer, drawn from the policy."""
        return draw_per_decision(self.probabilities(), [self.options] * len(self.logits), rng)

    def argmax(self) -> list[int]:
        """The most probable format of each layer (the lowest index on a tie)."""
        return [int(i) for i in self.logits.argmax(axis=1)]

    def entropy(self) -> float:
        """The mean entropy of the layers' softmaxes, in nats."""
        p = self.probabilities()
        return float(-(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1).mean())

    @property
    def baseline(self) -> float:
        """The moving average of the rewards so far (0 before the first)."""
        return self._numerator / self._denominator if self._denominator else 0.0

    def update(self, choices: Sequence[int], reward: float, entropy_weight: float = 0.0) -> float:
        """One REINFORCE step for ``choices`` with ``reward``; returns the advantage."""
        m = self.baseline_momentum
        self._numerator = m * self._numerator + (1 - m) * reward
        self._denominator = m * self._denominator + (1 - m)
        advantage = float(reward - self.baseline)
        p = self.probabilities()
        onehot = np.zeros_like(p)
        onehot[np.arange(len(p)), list(choices)] = 1.0
        log_p = np.log(np.clip(p, 1e-300, None))
        row_entropy = -(p * log_p).sum(axis=1, keepdims=True)
        grad = -advantage * (onehot - p)
        grad += entropy_weight / len(p) * p * (log_p + row_entropy)
        (step,) = self._adam.step([grad])
        self.logits = self.logits - step
        return advantage

    def state_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`load_state_dict` restores exactly."""
        adam = self._adam
        return {
            "logits": self.logits.tolist(),
            "numerator": self._numerator,
            "denominator": self._denominator,
            "adam_steps": adam.steps,
            "adam_m": adam._m[0].tolist(),  # Adam keeps its moments private; saved as they are
            "adam_v": adam._v[0].tolist(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.logits = np.array(state["logits"], dtype=float)
        self._numerator = float(state["numerator"])
        self._denominator = float(state["denominator"])
        self._adam.steps = int(state["adam_steps"])
        self._adam._m[0] = np.array(state["adam_m"], dtype=float)
        self._adam._v[0] = np.array(state["adam_v"], dtype=float)


# -- the study ---------------------------------------------------------------------------------
class PolicyEvaluator(Evaluator):
    """Measures a policy of the study's space with the current shared weights."""

    cost_unit = "seconds"

    def __init__(
        self, space: str, to_policy: Callable[[Architecture], tuple[str, ...]],
        measure: Callable[[tuple[str, ...]], dict[str, float]],
    ) -> None:  # fmt: skip
        self.space = space
        self._to_policy = to_policy
        self._measure = measure

    @property
    def metrics(self) -> Mapping[str, Direction]:
        return {
            "reward": Direction.MAXIMIZE,
            "valid_acc": Direction.MAXIMIZE,
            "model_bits": Direction.MINIMIZE,
            "bops": Direction.MINIMIZE,
        }

    def evaluate(self, arch: Architecture, fidelity: Mapping[str, Any] | None = None) -> Result:
        began = time.perf_counter()
        metrics = self._measure(self._to_policy(arch))
        seconds = time.perf_counter() - began
        return Result(metrics, cost=seconds, seconds=seconds)

    def __repr__(self) -> str:
        return f"FLIQS one-shot accuracy ({self.space})"


class PolicyRecord:
    """The study of a search on a quantized space (``"<base>+quant"``,
    :class:`~nasforge.spaces.quantized.QuantizedSpace`): each policy of the model's layers is
    written as an architecture of that space, the base architecture ``arch`` with the policy
    on the slots of the model's layers (other slots take the first format)."""

    def __init__(
        self, space: Any, arch: Architecture | str, model: Any, precisions: Sequence[str],
        weights_only: bool,
    ) -> None:  # fmt: skip
        from nasforge import spaces

        if isinstance(space, str):
            space = spaces.create(space, precisions=tuple(precisions), weights_only=weights_only)
        for name in ("slots", "split", "join", "base"):
            if not hasattr(space, name):
                raise InvalidConfigError(
                    f"space must be a quantized space (a '<space>+quant' name or a "
                    f"QuantizedSpace), got {space!r}, which has no {name!r}."
                )
        missing = [p for p in precisions if p not in space.precisions]
        if missing or bool(space.weights_only) != weights_only:
            raise InvalidConfigError(
                f"Space {space.name!r} has precisions {list(space.precisions)} and "
                f"weights_only={space.weights_only}, but the search uses {list(precisions)} and "
                f"weights_only={weights_only}; make the space with the search's settings."
            )
        self.space = space
        if isinstance(arch, str):
            arch = space.parse(arch) if "|q=" in arch else space.base.parse(arch)
        if not isinstance(arch, Architecture):
            raise InvalidConfigError(f"arch must be an architecture or its text, got {arch!r}.")
        if arch.space == space.name:
            arch = space.split(arch)[0]
        self.base_arch: Architecture = space.base.check(arch)
        # the slot of each quantizable layer of the model, in module order (by module path,
        # or by place in mobile networks): the space's own matching
        named = space._model_slots(model, self.base_arch)
        self.index = [space._slot(slot, self.base_arch) for _, slot in named]
        self.slots = list(space.slots)
        self.first = str(space.precisions[0])

    @property
    def space_params(self) -> dict[str, Any]:
        """The arguments that rebuild the space when the study is loaded."""
        return {
            "precisions": list(self.space.precisions),
            "weights_only": bool(self.space.weights_only),
            "settings": dict(self.space.settings),
        }

    def to_arch(self, policy: Sequence[str]) -> Architecture:
        full = [self.first] * len(self.slots)
        for i, p in zip(self.index, policy, strict=True):
            full[i] = p
        arch: Architecture = self.space.join(self.base_arch, tuple(full))
        return arch

    def to_policy(self, arch: Architecture) -> tuple[str, ...]:
        full = self.space.split(arch)[1]
        return tuple(str(full[i]) for i in self.index)


def open_study(
    record: PolicyRecord, evaluator: Evaluator, settings: Mapping[str, Any], seed: int,
    storage: Any, study_name: str | None,
) -> Any:  # fmt: skip
    """Create the study, or open it when one of that name exists with equal settings."""
    from nasforge.storage import StudyRecord, get_storage
    from nasforge.study import check_evaluator
    from nasforge.study._subnets import open_recorded
    from nasforge.trial import Objective

    space = record.space.name
    objective = Objective.parse("reward:max")
    check_evaluator(evaluator, space, [objective])
    store = get_storage(storage)
    wanted = StudyRecord(
        name=study_name or f"{space}-fliqs-seed{seed}-{os.urandom(4).hex()}",
        space=space,
        strategy="fliqs",
        seed=int(seed),
        objectives=(str(objective),),
        strategy_params={**settings, "arch": record.base_arch.text},
        space_params=record.space_params,
        evaluator=None,
        options={"oneshot": True},
    )
    return open_recorded(store, wanted)
