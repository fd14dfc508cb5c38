"""ENAS and random search with weight sharing: the same supernet, a controller or none.

Pham, H., Guan, M. Y., Zoph, B., Le, Q. V. and Dean, J. "Efficient Neural Architecture Search
via Parameter Sharing." ICML 2018, arXiv:1802.03268. Section 2.2 (``enas``): training
alternates two phases every epoch. Phase 1 trains the shared weights ``w`` by SGD on the
training half, every batch on one path drawn from the controller ``pi(m; theta)`` (theta
fixed). Phase 2 trains the controller (``w`` fixed) by REINFORCE (Williams 1992) for
``controller_steps`` steps, each averaging the gradient of ``controller_aggregate`` sampled
paths: the reward of a path is its accuracy (in ``[0, 1]``) on one validation batch, plus
``entropy_weight`` times the sample's entropy (as the reference code adds it to the reward);
the baseline is a moving average updated with the reward before the advantage is taken,
``b <- b - (1 - d) (b - R)``, from ``b = 0``, and the loss is ``-(R - b) log pi(m)``.
*Deriving architectures*: ``derive_samples`` paths are sampled from the trained policy, each
scored on one validation batch, and the best is kept.

Li, L. and Talwalkar, A. "Random Search and Reproducibility for Neural Architecture Search."
UAI 2019, arXiv:1902.07638, Section 4 (``random-ws``): the same supernet trained on paths
drawn uniformly, and the same derivation from uniformly drawn paths. The two methods share
every line but the sampler (the controller's policy, or every allowed option equally likely),
so a comparison isolates the controller: the question of Sciuto, Yu, Jaggi, Musat and
Salzmann, "Evaluating the Search Phase of Neural Architecture Search" (ICLR 2020,
arXiv:1902.08142), whose ENAS did no better than random sampling. The training batches come
from the search's generator and the paths from a generator of the method's own, so with the
same seed both methods see the same batches in the same order.

The controller's decisions are read from the supernet's groups
(:class:`~nasforge.ops.supernet.DecisionGroup`), never from a space's name: for a group
without ``inputs_per_node`` (NAS-Bench-201's six edges, a macro network's layers) one step
per row picks its operation among the selectable ones; for a group that keeps
``inputs_per_node`` inputs per node (the DARTS and BATS cells: ENAS's micro space) each node
first picks its inputs among the node's rows (an input already taken is masked out), then an
operation for each, and the rows left out take the group's first non-selectable option
(``none``). Steps that pick operations of one group share one classifier and embedding, as
ENAS shares ``w_soft`` and ``w_emb`` between the nodes of a cell; input steps of a group
share another.

Adaptations: the inputs are picked by a classifier over the node's inputs rather than ENAS's
attention over the anchors of earlier nodes; the LSTM has one layer. The rewards are the
accuracy of one validation batch with batch norm in training mode (batch statistics, as the
reference code's controller rewards: the shared batch norms' running statistics mix every
path). The shared weights follow the house's one-shot protocol (NAS-Bench-201's: SGD lr 0.025
cosine to 0.001, momentum 0.9 Nesterov, weight decay 5e-4, gradient norm clipped at 5; ENAS
used lr 0.05 to 0.0005 with warm restarts). Controller defaults follow NAS-Bench-201's ENAS
(Dong and Yang, ICLR 2020, arXiv:2001.00326; its code ``exps/algos/ENAS.py``): temperature
5, tanh constant 2.5, entropy weight 1e-4, baseline decay 0.99, Adam lr 0.001 with betas
``(0, 0.999)`` and eps 1e-3, 50 steps of 20 samples per epoch of 390 weight steps (ENAS's
macro search), scaled to the search data's epoch (a tenth of CIFAR-10: 5 steps); ENAS's
CIFAR micro search used a tanh constant of 1.1 divided by 2.5 for operations
(``op_tanh_reduce``), lr 0.0035 and 30 steps of 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nasforge import oneshot
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.oneshot.base import OneShotMethod, check_non_negative

if TYPE_CHECKING:
    from nasforge.oneshot._engine import SearchState
    from nasforge.ops.supernet import Supernet
    from nasforge.strategies._controller import Controller, Step

__all__ = ["ENAS", "REFERENCE_STEPS", "REFERENCE_WEIGHT_STEPS", "PathPlan", "RandomWeightSharing"]

#: Controller updates per epoch in the reference setting (ENAS's macro search, NAS-Bench-201's
#: ENAS: 50 updates of 20 paths)...
REFERENCE_STEPS = 50
#: ...for an epoch of this many weight steps (NAS-Bench-201's search: 25,000 images in
#: batches of 64). A search on less data scales the controller's updates alike, so that the
#: two phases keep the paper's proportion (a tenth of the data: 5 updates per epoch).
REFERENCE_WEIGHT_STEPS = 390


@dataclass(frozen=True)
class _Site:
    """What a controller step decides: the operation of ``row`` of group ``group``, the
    operation of the row picked by step ``source``, or (``node`` set) an input of a node."""

    group: int
    row: int | None = None
    source: int | None = None
    node: tuple[int, ...] | None = None
    siblings: tuple[int, ...] = ()


class PathPlan:
    """The sequence of decisions that makes a path of ``supernet`` (see the module docstring),
    and the path of a sequence of choices."""

    def __init__(self, supernet: Supernet) -> None:
        from nasforge.strategies._controller import Step

        steps: list[Step] = []
        sites: list[_Site] = []
        widths: list[int] = []
        roles: list[str] = []
        fillers: list[int | None] = []
        for g, group in enumerate(supernet.groups):
            allowed = group.choosable
            op_kind = len(widths)
            widths.append(len(allowed))
            roles.append("op")
            keep = group.inputs_per_node
            if keep is None:
                fillers.append(None)
                for row in range(group.rows):
                    steps.append(Step(op_kind, len(allowed)))
                    sites.append(_Site(g, row=row))
                continue
            spare = [i for i in range(len(group.options)) if i not in allowed]
            if not spare:
                raise UnsupportedOperationError(
                    f"Group {group.name!r} of {type(supernet).__name__} keeps {keep} inputs "
                    "per node but has no option that computes nothing for the rows left out; "
                    "enas and random-ws need one (e.g. 'none' outside its selectable options)."
                )
            fillers.append(spare[0])
            input_kind = len(widths)
            widths.append(max(len(rows) for rows in group.nodes))
            roles.append("input")
            for rows in group.nodes:
                first = len(steps)
                count = min(keep, len(rows))
                for k in range(count):
                    steps.append(Step(input_kind, len(rows)))
                    sites.append(_Site(g, node=rows, siblings=tuple(range(first, first + k))))
                for k in range(count):
                    steps.append(Step(op_kind, len(allowed)))
                    sites.append(_Site(g, source=first + k))
        self.supernet = supernet
        self.steps: tuple[Step, ...] = tuple(steps)
        self.sites = tuple(sites)
        self.widths = tuple(widths)
        self.roles = tuple(roles)
        self._fillers = tuple(fillers)

    def mask(self, t: int, choices: Any) -> list[bool] | None:
        """The options step ``t`` may take after ``choices``: a node's inputs taken already
        are masked out."""
        site = self.sites[t]
        if not site.siblings:
            return None
        taken = {int(choices[s]) for s in site.siblings}
        return [i not in taken for i in range(self.steps[t].options)]

    def index(self, choices: Any) -> list[list[int]]:
        """The supernet path (``index``) of a sequence of choices."""
        groups = self.supernet.groups
        index: list[list[int]] = [
            [0 if filler is None else filler] * group.rows
            for group, filler in zip(groups, self._fillers, strict=True)
        ]
        for t, site in enumerate(self.sites):
            if site.node is not None:
                continue
            row = site.row
            if row is None:
                assert site.source is not None
                node = self.sites[site.source].node
                assert node is not None
                row = node[int(choices[site.source])]
            index[site.group][row] = groups[site.group].choosable[int(choices[t])]
        return index


class _WeightSharing(OneShotMethod):
    """Shared by ``enas`` and ``random-ws``: phase 1 and the derivation, with the sampler of
    the subclass (:attr:`uniform`)."""

    default_epochs = 50
    share_weights = False
    uniform: ClassVar[bool] = True

    def __init__(
        self,
        *,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        derive_samples: int = 100,
    ) -> None:
        check_non_negative(
            lr=lr, lr_min=lr_min, momentum=momentum, weight_decay=weight_decay, grad_clip=grad_clip
        )
        if lr <= 0:
            raise InvalidConfigError(f"lr must be positive, got {lr!r}.")
        _positive_int("derive_samples", derive_samples)
        self.lr, self.lr_min, self.momentum = float(lr), float(lr_min), float(momentum)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)
        self.grad_clip = float(grad_clip)
        self.derive_samples = derive_samples
        self.plan: PathPlan | None = None
        self.controller: Controller | None = None
        self.w_optimizer: Any = None
        self.generator: Any = None
        #: ``(choices, validation accuracy)`` of the paths scored by the last derivation.
        self.scored: list[tuple[tuple[int, ...], float]] = []

    def params(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "lr_min": self.lr_min,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
            "grad_clip": self.grad_clip,
            "derive_samples": self.derive_samples,
        }

    # -- set-up -----------------------------------------------------------------------------------
    def controller_settings(self) -> dict[str, Any]:
        """Keyword arguments of the controller (its shape does not matter for uniform
        sampling, which never runs it)."""
        return {"hidden": 8, "temperature": None, "tanh": None, "init_range": 0.1}

    def setup(self, state: SearchState) -> None:
        import torch

        from nasforge.oneshot import _engine
        from nasforge.strategies._controller import Controller

        self.plan = PathPlan(state.supernet)
        # the paths' own generator: the search's generator then orders the training batches
        # alike for enas and random-ws
        self.generator = torch.Generator().manual_seed(int(state.rng.integers(2**62)))
        settings = self.controller_settings()
        tanh = settings.pop("tanh")
        self.controller = Controller(
            self.plan.steps,
            self.plan.widths,
            tanh=[tanh(role) if callable(tanh) else tanh for role in self.plan.roles],
            generator=self.generator,
            **settings,
        )  # on the CPU, whatever the supernet's device: it is tiny
        self.w_optimizer = _engine.weight_optimizer(
            state.supernet, self.lr, self.momentum, self.weight_decay, self.nesterov
        )

    def sample(self) -> tuple[list[int], list[list[bool]]]:
        """One sequence of choices (and its masks) from the sampler."""
        assert self.controller is not None and self.plan is not None
        return self.controller.sample(self.generator, self.plan.mask, uniform=self.uniform)

    def choices(self, sequence: list[int]) -> tuple[int, ...]:
        """The architecture's choices of a sampled sequence."""
        assert self.plan is not None
        return tuple(self.plan.supernet.from_path(self.plan.index(sequence)).choices)

    # -- training ---------------------------------------------------------------------------------
    def train_epoch(self, state: SearchState, epoch: int) -> dict[str, float]:
        from nasforge.oneshot import _engine
        from nasforge.train.schedule import cosine_annealing

        assert self.plan is not None
        _engine.set_lr(
            self.w_optimizer,
            cosine_annealing(epoch, state.epochs, lr=self.lr, min_lr=self.lr_min),
        )
        state.supernet.train()
        plan = self.plan

        def draw() -> tuple[Any, tuple[int, ...]]:
            sequence, _ = self.sample()
            return plan.index(sequence), self.choices(sequence)

        stats = _engine.train_single_paths(state, self.w_optimizer, self.grad_clip, epoch, draw)
        stats.update(self.train_sampler(state, epoch))
        return stats

    def train_sampler(self, state: SearchState, epoch: int) -> dict[str, float]:
        """Phase 2 (nothing for uniform sampling)."""
        return {}

    def reward_batches(self, state: SearchState, count: int) -> list[Any]:
        """``count`` random validation batches (drawn with the method's generator)."""
        return list(state.data.batches("valid", self.generator, state.device, steps=count))

    def path_accuracy(self, state: SearchState, sequence: list[int], batch: Any) -> float:
        """Accuracy (percent) of the path of ``sequence`` on one batch, batch norm on the
        batch's statistics."""
        from nasforge.oneshot import _engine

        assert self.plan is not None
        accuracy, _ = _engine.supernet_accuracy(
            state.supernet, [batch], index=self.plan.index(sequence), train_mode=True
        )
        return accuracy

    # -- derivation -------------------------------------------------------------------------------
    def derive(self, state: SearchState) -> tuple[int, ...] | None:
        (batch,) = self.reward_batches(state, 1)
        seen: dict[tuple[int, ...], float] = {}
        for _ in range(self.derive_samples):
            sequence, _ = self.sample()
            choices = self.choices(sequence)
            if choices not in seen:
                seen[choices] = self.path_accuracy(state, sequence, batch)
        self.scored = list(seen.items())
        return max(self.scored, key=lambda item: item[1])[0]

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        assert self.controller is not None
        return {
            "w_optimizer": self.w_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "controller": self.controller.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.controller is not None
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.generator.set_state(state["generator"])
        self.controller.load_state_dict(state["controller"])


@oneshot.register("random-ws")
class RandomWeightSharing(_WeightSharing):
    """Random search with weight sharing (Li & Talwalkar 2019): paths drawn uniformly for
    training and for the derivation (see the module docstring).

    Args:
        lr, lr_min, momentum, weight_decay, nesterov, grad_clip: The shared weights' SGD
            (cosine from ``lr`` to ``lr_min``).
        derive_samples: Paths drawn and scored on a validation batch after each epoch; the
            best is the epoch's architecture.
    """


@oneshot.register("enas")
class ENAS(_WeightSharing):
    """ENAS (Pham et al. 2018): an LSTM controller samples the paths and learns from their
    validation accuracy (see the module docstring).

    Args:
        lr, lr_min, momentum, weight_decay, nesterov, grad_clip: The shared weights' SGD.
        derive_samples: Paths sampled from the controller and scored after each epoch.
        controller_steps: Controller updates per epoch (default: :data:`REFERENCE_STEPS`
            scaled to the epoch's weight steps, see there).
        controller_aggregate: Sampled paths averaged in one update.
        controller_lr: The controller's Adam step size (betas ``(0, 0.999)``, eps 1e-3).
        hidden: Units of the controller's LSTM.
        temperature: Logits divided by it (``None``: not).
        tanh_constant: ``c`` of ``c * tanh(logits)`` (``None``: not).
        op_tanh_reduce: The operation steps use ``tanh_constant / op_tanh_reduce``.
        entropy_weight: Weight of the sample's entropy added to the reward.
        baseline_decay: ``d`` of the moving-average baseline.
    """

    uniform = False

    def __init__(
        self,
        *,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = True,
        grad_clip: float = 5.0,
        derive_samples: int = 100,
        controller_steps: int | None = None,
        controller_aggregate: int = 20,
        controller_lr: float = 0.001,
        hidden: int = 32,
        temperature: float | None = 5.0,
        tanh_constant: float | None = 2.5,
        op_tanh_reduce: float = 1.0,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.99,
    ) -> None:
        super().__init__(
            lr=lr, lr_min=lr_min, momentum=momentum, weight_decay=weight_decay,
            nesterov=nesterov, grad_clip=grad_clip, derive_samples=derive_samples,
        )  # fmt: skip
        if controller_steps is not None:
            _positive_int("controller_steps", controller_steps)
        _positive_int("controller_aggregate", controller_aggregate)
        _positive_int("hidden", hidden)
        numbers = {"controller_lr": controller_lr, "temperature": temperature,
                   "tanh_constant": tanh_constant, "op_tanh_reduce": op_tanh_reduce}  # fmt: skip
        for name, number in numbers.items():
            if number is not None and not (isinstance(number, (int, float)) and number > 0):
                raise InvalidConfigError(f"{name} must be a positive number, got {number!r}.")
        if not (isinstance(entropy_weight, (int, float)) and entropy_weight >= 0):
            raise InvalidConfigError(f"entropy_weight must be >= 0, got {entropy_weight!r}.")
        if not (isinstance(baseline_decay, (int, float)) and 0 <= baseline_decay < 1):
            raise InvalidConfigError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}.")
        self.controller_steps, self.controller_aggregate = controller_steps, controller_aggregate
        self.controller_lr, self.hidden = float(controller_lr), hidden
        self.temperature = None if temperature is None else float(temperature)
        self.tanh_constant = None if tanh_constant is None else float(tanh_constant)
        self.op_tanh_reduce = float(op_tanh_reduce)
        self.entropy_weight, self.baseline_decay = float(entropy_weight), float(baseline_decay)
        self.baseline = 0.0
        self.c_optimizer: Any = None

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "controller_steps": self.controller_steps,
            "controller_aggregate": self.controller_aggregate,
            "controller_lr": self.controller_lr,
            "hidden": self.hidden,
            "temperature": self.temperature,
            "tanh_constant": self.tanh_constant,
            "op_tanh_reduce": self.op_tanh_reduce,
            "entropy_weight": self.entropy_weight,
            "baseline_decay": self.baseline_decay,
        }

    def controller_settings(self) -> dict[str, Any]:
        c = self.tanh_constant

        def tanh(role: str) -> float | None:
            if c is None:
                return None
            return c / self.op_tanh_reduce if role == "op" else c

        return {"hidden": self.hidden, "temperature": self.temperature, "tanh": tanh,
                "init_range": 0.1}  # fmt: skip

    def setup(self, state: SearchState) -> None:
        import torch

        super().setup(state)
        assert self.controller is not None
        self.c_optimizer = torch.optim.Adam(
            self.controller.parameters(), lr=self.controller_lr, betas=(0.0, 0.999), eps=1e-3
        )

    def train_sampler(self, state: SearchState, epoch: int) -> dict[str, float]:
        """Phase 2: REINFORCE on the validation accuracy of sampled paths."""
        import torch

        assert self.controller is not None
        net = self.controller
        steps = self.steps(state.data.steps_per_epoch)
        batches = iter(self.reward_batches(state, steps * self.controller_aggregate))
        rewards, entropies = [], []
        for _ in range(steps):
            drawn = [self.sample() for _ in range(self.controller_aggregate)]
            accuracy = [self.path_accuracy(state, seq, next(batches)) / 100.0 for seq, _ in drawn]
            choices = torch.tensor([seq for seq, _ in drawn], dtype=torch.long)
            log_prob, entropy = net.log_probs(choices, net.mask_tensor([m for _, m in drawn]))
            advantages = []
            for acc, ent in zip(accuracy, entropy.detach().tolist(), strict=True):
                reward = acc + self.entropy_weight * ent
                self.baseline -= (1.0 - self.baseline_decay) * (self.baseline - reward)
                advantages.append(reward - self.baseline)
                rewards.append(acc)
                entropies.append(ent)
            loss = -(torch.tensor(advantages) * log_prob).mean()
            self.c_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.c_optimizer.step()
        return {
            "controller_reward": 100.0 * sum(rewards) / len(rewards),
            "controller_entropy": sum(entropies) / len(entropies),
            "baseline": self.baseline,
            "controller_steps": float(steps),
        }

    def steps(self, weight_steps: int) -> int:
        """Controller updates per epoch: ``controller_steps``, or by default
        :data:`REFERENCE_STEPS` scaled by the epoch's weight steps over
        :data:`REFERENCE_WEIGHT_STEPS` (at least one)."""
        if self.controller_steps is not None:
            return self.controller_steps
        return max(1, round(REFERENCE_STEPS * weight_steps / REFERENCE_WEIGHT_STEPS))

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "c_optimizer": self.c_optimizer.state_dict(),
            "baseline": self.baseline,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.c_optimizer.load_state_dict(state["c_optimizer"])
        self.baseline = float(state["baseline"])


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidConfigError(f"{name} must be a positive integer, got {value!r}.")
