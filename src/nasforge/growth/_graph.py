"""The channel graph of a network: which layers a Net2Net transformation may change, and how.

:func:`analyse` traces a model with :mod:`torch.fx`, runs one forward on an example input
(recording every node's output shape) and, for each ``Conv2d`` / ``Linear`` layer, follows its
output forward through the operations that act on each channel alone (batch norm, ReLU-like
activations, pooling, dropout, flatten, scalar arithmetic, spatial means, depthwise
convolutions) up to the layers that consume it. The result (:class:`Plan` per layer) says
which modules must change with the layer's width and gives the reasons when the width cannot
change (a residual sum, a concatenation, a multiplicative gate, a grouped convolution, the
network's output...).

Private helper of :mod:`nasforge.growth.net2net`; torch is imported at module level.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from nasforge.errors import UnsupportedOperationError

__all__ = ["Plan", "analyse", "eval_mode", "trace"]

#: Modules that act on each channel alone and keep the channel axis (dim 1).
_CHANNELWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Mish,
    nn.Softplus,
    nn.PReLU,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.AlphaDropout,
)
_POOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
_CHANNELWISE_FUNCTIONS = {
    torch.relu,
    torch.sigmoid,
    torch.tanh,
    F.relu,
    F.relu6,
    F.leaky_relu,
    F.elu,
    F.gelu,
    F.silu,
    F.hardswish,
    F.hardsigmoid,
    F.hardtanh,
    F.mish,
    F.softplus,
    F.dropout,
    F.dropout2d,
}
_POOL_FUNCTIONS = {
    F.max_pool2d,
    F.avg_pool2d,
    F.adaptive_avg_pool2d,
    F.adaptive_max_pool2d,
    torch.max_pool2d,
}
_CHANNELWISE_METHODS = {
    "relu",
    "relu_",
    "sigmoid",
    "tanh",
    "contiguous",
    "clone",
    "detach",
    "float",
}
_ARITHMETIC = {
    operator.add: "add",
    operator.iadd: "add",
    torch.add: "add",
    operator.sub: "sub",
    operator.isub: "sub",
    torch.sub: "sub",
    operator.mul: "mul",
    operator.imul: "mul",
    torch.mul: "mul",
    operator.truediv: "div",
    torch.div: "div",
}
_ARITHMETIC_METHODS = {
    "add": "add",
    "add_": "add",
    "sub": "sub",
    "mul": "mul",
    "mul_": "mul",
    "div": "div",
}
_REDUCTIONS = {"mean", "amax", "sum"}
_RELU_LIKE: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)


@dataclass
class Plan:
    """What changes with one layer's width, and why it may not change.

    Attributes:
        name: The layer's module name.
        node: Its call node in the traced graph.
        followers: ``(module name, "bn" | "depthwise")``: modules whose per-channel
            parameters follow the layer's output channels.
        consumers: ``(module name, spatial)``: layers reading the channels as input;
            ``spatial`` is the number of features per channel after a flatten (1 otherwise).
        widen_reasons: Why the width cannot change (empty when it can).
        remove_reasons: Why the layer cannot be replaced by identity.
        in_shape, out_shape: Shapes of the layer's input and output in the example forward.
        insert_after: The node after which Net2DeeperNet inserts a layer (the last batch
            norm or activation that follows the layer alone).
        relu_after: Whether that node is a ReLU / ReLU6 (the inserted layer then ends with
            the same activation, which is identity on its non-negative input).
        calls: How many times the forward calls the layer.
        feeds_output: Its output reaches the network's output through channel-wise
            operations (a classifier).
    """

    name: str
    node: torch.fx.Node
    followers: list[tuple[str, str]] = field(default_factory=list)
    consumers: list[tuple[str, int]] = field(default_factory=list)
    widen_reasons: list[str] = field(default_factory=list)
    remove_reasons: list[str] = field(default_factory=list)
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    insert_after: torch.fx.Node | None = None
    relu_after: nn.Module | None = None
    calls: int = 1
    feeds_output: bool = False


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode inside the block, each module's own mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def trace(model: nn.Module) -> torch.fx.GraphModule:
    """``model`` traced by :func:`torch.fx.symbolic_trace` (it shares its modules).

    Raises:
        UnsupportedOperationError: The model cannot be traced; the message gives the construct
            torch.fx stopped at.
    """
    if not isinstance(model, nn.Module):
        raise UnsupportedOperationError(
            f"Net2Net transformations take a torch.nn.Module, got {type(model).__name__}."
        )
    try:
        return torch.fx.symbolic_trace(model)
    except Exception as exc:  # torch.fx raises TraceError, TypeError, RuntimeError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedOperationError(
            f"Cannot trace {type(model).__name__} with torch.fx ({type(exc).__name__}: "
            f"{first}); Net2Net needs a network whose forward has no Python control flow on "
            "tensor values (if/for over a tensor, .item(), data-dependent shapes): rewrite "
            "that part with tensor operations or move it into a leaf module."
        ) from exc


class _Recorder(torch.fx.Interpreter):
    """Runs the graph, storing each node's output shape (and the values of ``keep``)."""

    def __init__(self, gm: torch.fx.GraphModule, keep: set[str]) -> None:
        super().__init__(gm)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.keep = keep
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            self.shapes[n.name] = tuple(result.shape)
            if n.name in self.keep:
                self.values[n.name] = result.detach().clone()
        return result


def record(
    gm: torch.fx.GraphModule, example: torch.Tensor, keep: set[str] | None = None
) -> _Recorder:
    """One forward of ``gm`` on ``example`` in eval mode without gradients."""
    if not isinstance(example, torch.Tensor):
        raise UnsupportedOperationError(
            f"example must be a torch.Tensor input of the network (e.g. torch.randn(2, 3, 32, "
            f"32)), got {type(example).__name__}."
        )
    recorder = _Recorder(gm, keep or set())
    with eval_mode(gm), torch.no_grad():
        try:
            recorder.run(example)
        except Exception as exc:
            raise UnsupportedOperationError(
                f"The network fails on the example input of shape {tuple(example.shape)} "
                f"({type(exc).__name__}: {exc}); give an input it accepts."
            ) from exc
    return recorder


def is_layer(module: nn.Module) -> bool:
    """Whether Net2Net treats ``module`` as a weight layer (``Conv2d`` or ``Linear``)."""
    return isinstance(module, nn.Conv2d | nn.Linear)


def is_depthwise(module: nn.Module) -> bool:
    """A depthwise convolution: one filter per input channel and as many outputs."""
    return (
        isinstance(module, nn.Conv2d)
        and module.groups > 1
        and module.groups == module.in_channels == module.out_channels
    )


def analyse(
    model: nn.Module, example: torch.Tensor, keep: set[str] | None = None
) -> tuple[torch.fx.GraphModule, list[Plan], _Recorder]:
    """The traced graph, one :class:`Plan` per layer in forward order, and the forward's
    record (shapes; values of the nodes named in ``keep``)."""
    gm = trace(model)
    recorder = record(gm, example, keep)
    shapes = recorder.shapes
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    plans: list[Plan] = []
    seen: set[str] = set()
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.target in seen:
            continue
        module = gm.get_submodule(node.target)
        if not is_layer(module):
            continue
        seen.add(node.target)
        plan = Plan(name=str(node.target), node=node, calls=calls[node.target])
        source = node.args[0] if node.args else None
        plan.in_shape = shapes.get(source.name, ()) if isinstance(source, torch.fx.Node) else ()
        plan.out_shape = shapes.get(node.name, ())
        if calls[node.target] > 1:
            why = f"it is called {calls[node.target]} times in the forward (shared weights)"
            plan.widen_reasons.append(why)
            plan.remove_reasons.append(why)
        if plan.in_shape != plan.out_shape:
            plan.remove_reasons.append(
                f"its input shape {plan.in_shape} differs from its output shape "
                f"{plan.out_shape}, so identity cannot replace it"
            )
        if is_depthwise(module):
            plan.widen_reasons.append(
                f"it is a depthwise convolution (groups={module.groups}): its width follows "
                "the layer that feeds it, widen that one"
            )
        elif isinstance(module, nn.Conv2d) and module.groups > 1:
            plan.widen_reasons.append(f"it is a grouped convolution (groups={module.groups})")
        else:
            _follow(gm, plan, shapes, calls)
        _insertion(gm, plan)
        plans.append(plan)
    return gm, plans, recorder


def _follow(
    gm: torch.fx.GraphModule,
    plan: Plan,
    shapes: dict[str, tuple[int, ...]],
    calls: dict[str, int],
) -> None:
    """Fill ``plan.followers``, ``consumers`` and ``widen_reasons`` from the layer's node."""
    reasons = plan.widen_reasons
    stack: list[tuple[torch.fx.Node, int]] = [(plan.node, 1)]
    visited: set[str] = set()
    while stack:
        node, spatial = stack.pop()
        if node.name in visited:
            continue
        visited.add(node.name)
        for user in node.users:
            step = _step(gm, node, user, spatial, shapes)
            if isinstance(step, str):
                reasons.append(step)
                plan.feeds_output |= user.op == "output"
                continue
            kind, value = step
            if kind in ("bn", "depthwise", "consumer") and calls.get(str(user.target), 0) > 1:
                reasons.append(
                    f"module {user.target!r} on its path is called {calls[str(user.target)]} times "
                    "(shared weights)"
                )
                continue
            if kind == "consumer":
                plan.consumers.append((str(user.target), value))
            elif kind == "ignore":
                continue
            else:
                if kind in ("bn", "depthwise"):
                    plan.followers.append((str(user.target), kind))
                stack.append((user, value))
    if not plan.consumers and not reasons:
        reasons.append("no layer consumes its output")


def _step(
    gm: torch.fx.GraphModule,
    node: torch.fx.Node,
    user: torch.fx.Node,
    spatial: int,
    shapes: dict[str, tuple[int, ...]],
) -> tuple[str, int] | str:
    """How ``user`` treats the channels of ``node``: ``(kind, spatial)`` or a reason."""
    if user.op == "output":
        return "its output is the network's output (widening would change the output's shape)"
    if user.op == "call_module":
        module = gm.get_submodule(str(user.target))
        where = f"{type(module).__name__} {user.target!r}"
        if isinstance(module, nn.Conv2d):
            if spatial != 1:
                return f"its flattened output feeds the convolution {user.target!r}"
            if is_depthwise(module):
                return "depthwise", 1
            if module.groups == 1:
                return "consumer", 1
            return (
                f"its output feeds the grouped convolution {user.target!r} (groups={module.groups})"
            )
        if isinstance(module, nn.Linear):
            if len(shapes.get(node.name, ())) != 2:
                return (
                    f"its output feeds the linear layer {user.target!r} on a tensor of shape "
                    f"{shapes.get(node.name)} (the linear layer mixes the last axis, not the "
                    "channels)"
                )
            return "consumer", spatial
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            return "bn", spatial
        if isinstance(module, _CHANNELWISE_MODULES):
            return "pass", spatial
        if isinstance(module, _POOL_MODULES) and spatial == 1:
            return "pass", spatial
        if isinstance(module, nn.Flatten) and module.start_dim == 1 and spatial == 1:
            return "pass", math.prod(shapes.get(node.name, (1, 1))[2:])
        return f"its output goes through {where}, which nasforge cannot follow channel by channel"
    target = user.target
    name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    if user.op == "call_method" and target in ("size", "dim"):
        return "ignore", spatial
    if user.op == "call_function" and target is getattr:
        return "ignore", spatial
    if (user.op == "call_function" and target in _CHANNELWISE_FUNCTIONS) or (
        user.op == "call_method" and target in _CHANNELWISE_METHODS
    ):
        return "pass", spatial
    if user.op == "call_function" and target in _POOL_FUNCTIONS and spatial == 1:
        return "pass", spatial
    if target in (torch.flatten, "flatten"):
        start = user.args[1] if len(user.args) > 1 else user.kwargs.get("start_dim", 0)
        ndim = len(shapes.get(node.name, ()))
        if start == 1 and spatial == 1 and ndim >= 2:
            return "pass", math.prod(shapes[node.name][2:])
    if (user.op == "call_method" and target in _REDUCTIONS) or target in (
        torch.mean,
        torch.amax,
        torch.sum,
    ):
        dims = user.args[1] if len(user.args) > 1 else user.kwargs.get("dim")
        ndim = len(shapes.get(node.name, ()))
        dims = (dims,) if isinstance(dims, int) else dims
        if (
            isinstance(dims, tuple | list)
            and dims
            and spatial == 1
            and all(isinstance(d, int) and d % ndim >= 2 for d in dims)
        ):
            return "pass", spatial
    arithmetic = (
        _ARITHMETIC.get(target)  # type: ignore[arg-type]
        if user.op == "call_function"
        else _ARITHMETIC_METHODS.get(str(target))
    )
    if arithmetic:
        others = [a for a in (*user.args, *user.kwargs.values()) if a is not node]
        if all(isinstance(a, int | float) for a in others):
            return "pass", spatial
        other = next((a for a in others if isinstance(a, torch.fx.Node)), None)
        origin = origin_of(gm, other) if other is not None else "another tensor"
        if arithmetic in ("add", "sub"):
            return f"its output is added to the output of {origin} (a residual sum)"
        return (
            f"its output is multiplied by the output of {origin} (a multiplicative gate such "
            "as squeeze-and-excitation)"
        )
    if target in (torch.cat, torch.concat, torch.stack):
        return f"its output is concatenated with other tensors ({name} at node {user.name!r})"
    return (
        f"its output goes through {name} (node {user.name!r}), which nasforge cannot follow "
        "channel by channel"
    )


def origin_of(gm: torch.fx.GraphModule, node: torch.fx.Node) -> str:
    """The nearest layer (or the input) upstream of ``node``, in words."""
    current: Any = node
    for _ in range(10_000):
        if not isinstance(current, torch.fx.Node):
            break
        if current.op == "placeholder":
            return "the network's input"
        if current.op == "call_module" and is_layer(gm.get_submodule(str(current.target))):
            return f"layer {current.target!r}"
        args = [a for a in current.args if isinstance(a, torch.fx.Node)]
        if not args:
            break
        current = args[0]
    return f"node {node.name!r}"


def _insertion(gm: torch.fx.GraphModule, plan: Plan) -> None:
    """The node after which Net2DeeperNet inserts: the layer's own batch norm and activation
    (each the only user of the node before)."""
    node = plan.node
    relu: nn.Module | None = None
    while len(node.users) == 1:
        user = next(iter(node.users))
        if user.op == "call_module":
            module = gm.get_submodule(str(user.target))
            if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
                node, relu = user, None
                continue
            if isinstance(module, _CHANNELWISE_MODULES) and not isinstance(
                module, nn.Dropout | nn.Dropout2d | nn.AlphaDropout | nn.Identity
            ):
                node = user
                relu = module if isinstance(module, _RELU_LIKE) else None
                continue
        elif user.target in (torch.relu, F.relu, "relu"):
            node, relu = user, nn.ReLU()
            continue
        break
    plan.insert_after = node
    plan.relu_after = relu
