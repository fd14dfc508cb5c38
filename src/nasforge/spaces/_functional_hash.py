"""Functional hashing of networks: one key for networks that compute the same function.

A space that builds networks but has no hand-written canonical form gets deduplication from
here: :func:`architecture_hash` builds an architecture's network, traces it with
:mod:`torch.fx` (standard ``torch.nn`` modules as leaves), rewrites the graph into a normal
form with generic rules about standard operations and hashes it; :func:`module_hash` does the
same for any ``nn.Module``. This is the functional equivalence caching of Gillard, R.,
Jonany, S., Miao, Y., Munn, M., de Souza, C., Dungay, J., Liang, C., So, D. R., Le, Q. V. and
Real, E. "Unified Functional Hashing in Automatic Machine Learning." arXiv:2302.05433, 2023.
Where that paper hashes a candidate's outputs on fixed random inputs and weights, we hash the
*symbolic structure* of the traced computation: no weight is read, networks share a key when
the rules make them equal for every weight value (up to which module holds which weights),
and no key depends on a random draw; only identities the rules know are found.

Rules (the normal form)
-----------------------
Every traced tensor is a node of a DAG. Parameter-free nodes are hash-consed (one node per
operation on given inputs); a call of a module with parameters or buffers is a node of that
*instance*: ``c(x)`` used twice is one node, ``c_a(x)`` and ``c_b(x)`` are two.

* **Zero.** ``x * 0`` is zero; zero passes through operations with ``f(0) = 0`` (ReLU-like
  activations, pooling, flattening, slicing, concatenating zeros) and through convolutions and
  linear layers *without bias*. A zero term vanishes from a sum.
* **Modules at zero.** Any other module with parameters applied to zero (a batch norm, a
  biased layer) is a learned constant of its instance, the same at every position of a
  channel for batch norms and biased convolutions or linear layers. So ReLU -> conv -> BN of
  zero is the BN's constant whatever the kernel size; the convolution drops out.
* **Identity.** ``nn.Identity``, dropout (we hash eval mode), ``x * 1``, ``x + 0``,
  ``contiguous``/``clone``.
* **Sums** are flattened multisets: commutative, associative, with multiplicity (``x + x`` is
  not ``x``); ``a - b`` is ``a + (-b)``.
* **Linearity.** Parameter-free linear operations (average pooling, flattening, reshaping,
  slicing, negation, scaling by a number) distribute over sums. Average pooling that does not
  count padding, max pooling and adaptive pooling map a per-channel constant of the same
  shape to itself; an activation of a per-channel constant is one. A module with parameters
  applied to anything but zero is opaque: a convolution of a constant is not evaluated.
* **Channel order.** A concatenation along channels whose every use reaches, through
  per-channel operations only (activations, pooling, batch norm, spatial slicing,
  flattening), a layer that mixes all its input channels (a convolution with ``groups=1``, a
  linear layer) is a multiset: that layer absorbs a permutation of its inputs into its weights.
* **Dead code** vanishes: only what the outputs reach is hashed.

A node's key digests its operation (module class and ``extra_repr``, or function and non-tensor
arguments), output shape and inputs' keys (sorted for sums and products). Such keys see the
tree the DAG unfolds to, blind to one convolution used twice versus two; so the hash refines
each key by its users' keys, with multiplicity, and by the other calls of its module instance,
until the partition of the nodes stops splitting (Weisfeiler-Lehman), and digests them all.

Checked against the hand-written canonical forms (``benchmarks/functional_hash_classes.py``):
on all 15,625 NAS-Bench-201 networks the partition by hash equals the 5,234 classes of
:mod:`nasforge.spaces._nb201_canonical` (``keep_bn_bias=True``), no class split or merged;
hashing the network rather than a cell changes nothing, as every stage repeats the cell inside
the same layers. On DARTS, hash equality agrees with :meth:`DartsSpace.canonical` for random
genotypes, their relabellings (edge and node orders) and their neighbours.

Limits: in-place operations are read as out-of-place ones; identities the rules do not know
(``maxpool(maxpool(x))``, a 1x1 convolution of a constant...) keep equal networks apart;
different networks merge only through a WL-indistinguishable sharing pattern or a collision of
128-bit digests. A key for deduplication, not for cost: parameters and FLOPs may differ inside
a class (dead convolutions).
"""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import fx, nn

from nasforge.errors import InvalidConfigError, NasforgeError, UnsupportedOperationError

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.spaces.base import SearchSpace

__all__ = ["architecture_hash", "module_hash"]

Shape = tuple[int, ...]
InputLike = torch.Tensor | Sequence[int]

# -- what the rules know about standard operations ----------------------------------------------
# fmt: off
_IDENTITY_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Hardswish,
                nn.Hardtanh, nn.Mish, nn.Softsign, nn.Tanhshrink)  # f(0) = 0, elementwise
_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE_AVG = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d,
              nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_LINEAR_MODULES = (*_AVG_POOLS, *_ADAPTIVE_AVG, nn.Flatten, nn.Unflatten)
_BATCH_NORM = nn.modules.batchnorm._BatchNorm
_PER_CHANNEL = (*_ACTIVATIONS, *_IDENTITY_MODULES, *_AVG_POOLS, *_ADAPTIVE_AVG, *_MAX_POOLS,
                _BATCH_NORM)
_BIASED = (nn.modules.conv._ConvNd, nn.Linear)
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__radd__", "__iadd__"}
_SUB = {operator.sub, operator.isub, torch.sub, "sub", "sub_", "__sub__", "__isub__"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_", "__mul__", "__rmul__", "__imul__"}
_NEG = {operator.neg, torch.neg, "neg", "__neg__"}
_CAT = {torch.cat, torch.concat}
_IDENTITY_CALLS = {"contiguous", "clone", "detach", torch.clone}
_LINEAR_CALLS = {torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.squeeze,
                 torch.unsqueeze, torch.mean, torch.sum, operator.getitem, F.avg_pool1d,
                 F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
                 F.adaptive_avg_pool3d, "view", "reshape", "flatten", "permute", "transpose",
                 "squeeze", "unsqueeze", "mean", "sum", "__getitem__"}
_ELEMENTWISE_CALLS = {torch.relu, F.relu, F.relu6, F.leaky_relu, F.gelu, F.silu, F.hardswish,
                      torch.tanh, "relu", "relu_", "tanh"}
_ZERO_CALLS = {*_ELEMENTWISE_CALLS, F.max_pool1d, F.max_pool2d, F.max_pool3d}
# fmt: on


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _stable_repr(value: Any) -> str:
    """``repr(value)``, or its type's name where the repr holds a memory address."""
    text = repr(value)
    return type(value).__qualname__ if " at 0x" in text else text


class _Node(NamedTuple):
    kind: str  # input, zero, sum, op, module, at_zero, param, output
    sig: str  # digest of the tree below (instances anonymous)
    children: tuple[int, ...]
    ordered: bool
    instance: int | None  # id() of the module or tensor holding the weights
    shape: Shape
    const: bool  # the same at every position of a channel


class _Dag:
    """Hash-consed expression DAG of one traced network."""

    def __init__(self) -> None:
        self.ids: dict[tuple[Any, ...], int] = {}
        self.nodes: list[_Node] = []

    def node(self, kind: str, attrs: str, children: Sequence[int], shape: Shape, *,
             ordered: bool = True, instance: int | None = None, const: bool = False,
             ) -> int:  # fmt: skip
        """The id of the node; ``children`` sorted when their order does not matter."""
        kids = tuple(children) if ordered else tuple(sorted(children))
        key = (kind, attrs, kids, shape, instance)
        found = self.ids.get(key)
        if found is not None:
            return found
        parts = [self.nodes[k].sig for k in kids]
        if not ordered:
            parts.sort()
        sig = _digest(f"{kind}|{attrs}|{shape}|{int(ordered)}|{','.join(parts)}")
        self.ids[key] = len(self.nodes)
        self.nodes.append(_Node(kind, sig, kids, ordered, instance, shape, const))
        return len(self.nodes) - 1

    def zero(self, shape: Shape) -> int:
        return self.node("zero", "", (), shape)

    def is_zero(self, n: int) -> bool:
        return self.nodes[n].kind == "zero"

    def add(self, terms: Iterable[int], shape: Shape) -> int:
        """The sum of ``terms``: flattened, zeros dropped where that keeps the shape."""
        flat: list[int] = []
        for term in terms:
            node = self.nodes[term]
            flat.extend(node.children if node.kind == "sum" else (term,))
        kept = [t for t in flat if not self.is_zero(t)]
        shapes = [self.nodes[t].shape for t in kept]
        if kept and len(kept) < len(flat) and torch.broadcast_shapes(*shapes) != shape:
            kept = flat  # a zero term broadcasts the others: keep it
        if not kept:
            return self.zero(shape)
        if len(kept) == 1 and self.nodes[kept[0]].shape == shape:
            return kept[0]
        const = all(self.nodes[t].const for t in kept)
        return self.node("sum", "", kept, shape, ordered=False, const=const)


def _shape(value: Any) -> Shape:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else ()


def _module_name(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}({module.extra_repr()})"


def _call_name(node: fx.Node) -> str:
    target = node.target
    if isinstance(target, str):
        return f"method.{target}"
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}"


def _has_state(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None or next(module.buffers(), None) is not None


def _keeps_constants(module: nn.Module) -> bool:
    """Whether the module maps a per-channel constant to itself when it keeps the shape."""
    if isinstance(module, _AVG_POOLS):
        pads = module.padding if isinstance(module.padding, tuple) else (module.padding,)
        return not module.count_include_pad or not any(pads)
    return isinstance(module, (*_MAX_POOLS, *_ADAPTIVE_AVG))


def _absorbs_order(node: fx.Node, modules: Mapping[str, nn.Module], depth: int = 0) -> bool:
    """Whether every use of ``node`` reaches a channel-mixing layer through per-channel ops."""
    if not node.users or depth > 64:
        return False
    for user in node.users:
        if user.op == "call_module":
            module = modules[str(user.target)]
            conv = isinstance(module, nn.modules.conv._ConvNd) and module.groups == 1
            if conv or isinstance(module, nn.Linear):
                continue
            per_channel = isinstance(module, _PER_CHANNEL) and len(user.all_input_nodes) == 1
            if per_channel and _absorbs_order(user, modules, depth + 1):
                continue
            return False
        if user.op in ("call_function", "call_method") and user.args and user.args[0] is node:
            target = user.target
            index = user.args[1] if len(user.args) > 1 else None
            full = slice(None)
            spatial = isinstance(index, tuple) and len(index) >= 2 and index[:2] == (full, full)
            sliced = target in (operator.getitem, "__getitem__") and spatial
            flatten = target in (torch.flatten, "flatten") and user.args[1:2] == (1,)
            per_channel = target in _ELEMENTWISE_CALLS or sliced or flatten
            if per_channel and _absorbs_order(user, modules, depth + 1):
                continue
        return False
    return True


def _scalar(value: Any) -> float | None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if number else None


class _Interpreter:
    """Runs the traced graph on example inputs (for shapes) and builds its normal form."""

    def __init__(self, root: nn.Module, graph: fx.Graph) -> None:
        self.root, self.graph = root, graph
        self.modules = dict(root.named_modules())
        self.dag = _Dag()
        self.real: dict[fx.Node, Any] = {}
        self.sym: dict[fx.Node, int] = {}
        self.neg_of: dict[int, int] = {}

    def _attrs_and_children(self, node: fx.Node) -> tuple[str, list[int]]:
        """The non-tensor arguments as text (tensors as ``#``) and the tensor arguments."""
        children: list[int] = []

        def text(value: Any) -> str:
            if isinstance(value, fx.Node):
                if value in self.sym:
                    children.append(self.sym[value])
                    return "#"
                return _stable_repr(self.real[value])
            if isinstance(value, (list, tuple)):
                inner = ",".join(text(v) for v in value)
                return f"[{inner}]" if isinstance(value, list) else f"({inner})"
            if isinstance(value, dict):
                return "{" + ",".join(f"{k}:{text(v)}" for k, v in sorted(value.items())) + "}"
            return _stable_repr(value)

        return text(tuple(node.args)) + text(dict(node.kwargs)), children

    # -- the rules --------------------------------------------------------------------------
    def _unary(self, attrs: str, term: int, shape: Shape, *, linear: bool, zero: bool = True,
               keeps_const: bool = False, elementwise: bool = False) -> int:  # fmt: skip
        dag, node = self.dag, self.dag.nodes[term]
        if (linear or zero) and node.kind == "zero":
            return dag.zero(shape)
        if keeps_const and node.const and node.shape == shape:
            return term
        if linear and node.kind == "sum" and all(dag.nodes[t].shape == node.shape
                                                 for t in node.children):  # fmt: skip
            parts = [self._unary(attrs, t, shape, linear=True, keeps_const=keeps_const)
                     for t in node.children]  # fmt: skip
            return dag.add(parts, shape)
        if attrs == "neg" and term in self.neg_of:
            return self.neg_of[term]
        result = dag.node("op", attrs, (term,), shape, const=elementwise and node.const)
        if attrs == "neg":
            self.neg_of[result] = term
        return result

    def _call_module(self, node: fx.Node, out: Any) -> int:
        dag, module, shape = self.dag, self.modules[str(node.target)], _shape(out)
        attrs, children = self._attrs_and_children(node)
        name = _module_name(module)
        unary = len(children) == 1 and len(node.all_input_nodes) == 1
        if isinstance(module, _IDENTITY_MODULES) and unary:
            return children[0]
        if _has_state(module):
            if unary and dag.is_zero(children[0]):
                if isinstance(module, _BIASED) and module.bias is None:
                    return dag.zero(shape)
                const = isinstance(module, (*_BIASED, _BATCH_NORM))
                return dag.node("at_zero", name + attrs, (), shape, instance=id(module),
                                const=const)  # fmt: skip
            return dag.node("module", name + attrs, children, shape, instance=id(module))
        if unary:
            linear, keeps = isinstance(module, _LINEAR_MODULES), _keeps_constants(module)
            act = isinstance(module, _ACTIVATIONS)
            zero = act or isinstance(module, _MAX_POOLS)
            return self._unary(name + attrs, children[0], shape, linear=linear, zero=zero,
                               keeps_const=keeps, elementwise=act)  # fmt: skip
        return dag.node("op", name + attrs, children, shape)

    def _call(self, node: fx.Node, out: Any) -> int:
        dag, target, shape = self.dag, node.target, _shape(out)
        attrs, children = self._attrs_and_children(node)
        tensors = [self.sym[a] for a in node.args if isinstance(a, fx.Node) and a in self.sym]
        first = node.args[0] if node.args else None
        leading = isinstance(first, fx.Node) and first in self.sym
        binary = len(node.args) == 2 and not node.kwargs
        scalar = node.args[1 if leading else 0] if binary else None
        other = _scalar(self.real.get(scalar) if isinstance(scalar, fx.Node) else scalar)
        if (target in _ADD or target in _SUB) and binary:
            if len(tensors) == 2:
                if target in _SUB:
                    tensors[1] = self._unary("neg", tensors[1], dag.nodes[tensors[1]].shape,
                                             linear=True)  # fmt: skip
                return dag.add(tensors, shape)
            if len(tensors) == 1 and other == 0 and (leading or target in _ADD):
                return tensors[0]
        if target in _MUL and binary and tensors:
            if any(dag.is_zero(t) for t in tensors) or (len(tensors) == 1 and other == 0):
                return dag.zero(shape)
            if len(tensors) == 1 and other is not None:
                if other == 1 and dag.nodes[tensors[0]].shape == shape:
                    return tensors[0]
                return self._unary(f"scale {other!r}", tensors[0], shape, linear=True)
            return dag.node("op", "mul", tensors, shape, ordered=False)
        if target in _NEG and len(tensors) == 1:
            return self._unary("neg", tensors[0], shape, linear=True)
        if target in _IDENTITY_CALLS and len(tensors) == 1 and dag.nodes[tensors[0]].shape == shape:
            return tensors[0]
        if target in _CAT and isinstance(out, torch.Tensor):
            if children and all(dag.is_zero(c) for c in children):
                return dag.zero(shape)
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
            channels = dim in (1, 1 - out.dim()) and _absorbs_order(node, self.modules)
            return dag.node("op", f"cat{dim!r}", children, shape, ordered=not channels)
        name = _call_name(node)
        if len(children) == 1 and leading and (target in _LINEAR_CALLS or target in _ZERO_CALLS):
            return self._unary(name + attrs, children[0], shape, linear=target in _LINEAR_CALLS,
                               elementwise=target in _ELEMENTWISE_CALLS)  # fmt: skip
        return dag.node("op", name + attrs, children, shape)

    def run(self, inputs: Sequence[torch.Tensor]) -> int:
        """Interpret the graph; the id of the output node."""
        dag, placeholders = self.dag, 0
        for node in self.graph.nodes:
            if node.op == "placeholder":
                if placeholders < len(inputs):
                    self.real[node] = inputs[placeholders]
                    self.sym[node] = dag.node("input", str(placeholders), (),
                                              _shape(inputs[placeholders]))  # fmt: skip
                    placeholders += 1
                elif node.args:
                    self.real[node] = node.args[0]  # a default argument: a constant
                else:
                    raise InvalidConfigError(f"forward() takes more inputs than the {len(inputs)} "
                                             "example input(s); pass one per input.")  # fmt: skip
                continue
            if node.op == "output":
                attrs, outputs = self._attrs_and_children(node)
                return dag.node("output", attrs, outputs, ())
            args = fx.node.map_arg(node.args, lambda n: self.real[n])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: self.real[n])
            if node.op == "get_attr":
                out: Any = functools.reduce(getattr, str(node.target).split("."), self.root)
            elif node.op == "call_module":
                out = self.modules[str(node.target)](*args, **kwargs)
            elif node.op == "call_method":
                out = getattr(args[0], str(node.target))(*args[1:], **kwargs)
            else:
                assert callable(node.target)
                out = node.target(*args, **kwargs)
            self.real[node] = out
            if isinstance(out, torch.Tensor) and node.op == "get_attr":
                self.sym[node] = dag.node("param", "", (), _shape(out), instance=id(out))
            elif isinstance(out, torch.Tensor):
                rule = self._call_module if node.op == "call_module" else self._call
                self.sym[node] = rule(node, out)
            elif isinstance(out, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in out):
                module = self.modules.get(str(node.target)) if node.op == "call_module" else None
                attrs, children = self._attrs_and_children(node)  # getitem picks the tensors
                name = _module_name(module) if module is not None else _call_name(node)
                instance = id(module) if module is not None and _has_state(module) else None
                self.sym[node] = dag.node("op", name + attrs, children, (), instance=instance)
        raise UnsupportedOperationError("The traced graph has no output node.")


def _refined_hash(dag: _Dag, root: int) -> str:
    """Digest of the DAG below ``root``, sharing included (WL refinement by users)."""
    order: dict[int, None] = {}  # the nodes the root reaches
    stack = [root]
    while stack:
        n = stack.pop()
        if n not in order:
            order[n] = None
            stack.extend(dag.nodes[n].children)
    users: dict[int, list[tuple[int, int]]] = {n: [] for n in order}
    twins: dict[int, list[int]] = {}
    for n in order:
        node = dag.nodes[n]
        for position, child in enumerate(node.children):
            users[child].append((n, position if node.ordered else -1))
        if node.instance is not None:
            twins.setdefault(node.instance, []).append(n)
    labels = {n: dag.nodes[n].sig for n in order}
    for _ in order:
        refined = {}
        for n in order:
            above = sorted(f"{labels[u]}:{position}" for u, position in users[n])
            instance = dag.nodes[n].instance
            same = sorted(labels[m] for m in twins.get(instance, ()) if m != n) if instance else []
            refined[n] = _digest(f"{labels[n]}^{','.join(above)}~{','.join(same)}")
        stable = len(set(refined.values())) == len(set(labels.values()))
        labels = refined
        if stable:
            break
    return _digest(f"{labels[root]}|{','.join(sorted(labels.values()))}")


class _Tracer(fx.Tracer):
    """The default tracer (``torch.nn`` modules are leaves) plus the caller's leaf types."""

    leaves: tuple[type[nn.Module], ...] = ()

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self.leaves) or super().is_leaf_module(m, module_qualified_name)


def _example_inputs(module: nn.Module, inputs: Any) -> list[torch.Tensor]:
    single = not isinstance(inputs, Sequence) or _scalar(next(iter(inputs), None)) is not None
    weight = next(module.parameters(), None)
    device, dtype = (weight.device, weight.dtype) if weight is not None else (None, None)
    result: list[torch.Tensor] = []
    for item in [inputs] if single else inputs:
        shape = item if isinstance(item, Sequence) and not isinstance(item, str) else ()
        if isinstance(item, torch.Tensor):
            result.append(item)
        elif shape and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
            result.append(torch.zeros(tuple(shape), device=device, dtype=dtype))
        else:
            raise InvalidConfigError(
                "An example input is a tensor or a shape (a tuple of positive ints such as "
                f"(1, 3, 32, 32)), or a sequence of these; got {item!r}."
            )
    return result


def module_hash(
    module: nn.Module,
    inputs: InputLike | Sequence[InputLike],
    *,
    leaf_modules: Iterable[type[nn.Module]] = (),
) -> str:
    """A hash of the function ``module`` computes, independent of its weight values.

    The module is traced with :mod:`torch.fx` in eval mode (its train/eval flags are restored
    afterwards), run once on the example inputs to learn the shapes, rewritten into the normal
    form of the module docstring and hashed. Modules get equal hashes when the rules make them
    equal for every weight value; no weight is read.

    Args:
        module: Any ``nn.Module`` whose ``forward`` torch.fx can trace.
        inputs: The example input, a tensor or a shape (zeros on the module's device are
            created), or a sequence of these, one per argument of ``forward``.
        leaf_modules: Module classes kept as opaque calls instead of traced into (e.g. a block
            whose ``forward`` branches on tensor values).

    Returns:
        32 hexadecimal digits.

    Raises:
        UnsupportedOperationError: torch.fx cannot trace the module.
        InvalidConfigError: The example inputs are malformed or do not fit the module.

    Example:
        >>> import torch
        >>> class Residual(torch.nn.Module):
        ...     def __init__(self, swap: bool) -> None:
        ...         super().__init__()
        ...         self.conv, self.swap = torch.nn.Conv2d(4, 4, 3, padding=1), swap
        ...     def forward(self, x):
        ...         return x + self.conv(x) if self.swap else self.conv(x) + x
        >>> module_hash(Residual(True), (1, 4, 8, 8)) == module_hash(Residual(False), (1, 4, 8, 8))
        True
    """
    examples = _example_inputs(module, inputs)
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        try:
            tracer = _Tracer()
            tracer.leaves = tuple(leaf_modules)
            graph = tracer.trace(module)
        except Exception as exc:
            raise UnsupportedOperationError(
                f"Cannot hash {type(module).__name__}: torch.fx cannot trace it ({exc}). Make "
                "forward() free of Python control flow on tensor values, or pass the class of "
                "the block that has it in leaf_modules=(...); else search with dedupe=False."
            ) from exc
        with torch.no_grad():
            interpreter = _Interpreter(module, graph)
            root = interpreter.run(examples)
    except Exception as exc:
        if isinstance(exc, NasforgeError):
            raise
        shapes = [tuple(t.shape) for t in examples]
        raise InvalidConfigError(
            f"Running {type(module).__name__} on example inputs of shape(s) {shapes} failed "
            f"({type(exc).__name__}: {exc}); pass inputs that the model accepts."
        ) from exc
    finally:
        for m, training in flags:
            m.training = training
    return _refined_hash(interpreter.dag, root)


def architecture_hash(
    space: SearchSpace,
    arch: Architecture,
    *,
    settings: Mapping[str, Any] | None = None,
    input_shape: Sequence[int] | None = None,
) -> str:
    """A hash of the network ``space.build(arch)`` computes, independent of weight values.

    What :meth:`SearchSpace.functional_key` returns for a space with a builder and no canonical
    form: architectures with equal hashes compute the same function (see the module
    docstring). The network is built with the cheapest settings that keep its structure, the
    space's ``"reduced"`` preset (fewer cells and channels; the space's defaults without
    presets), and hashed by :func:`module_hash` on one image of the preset's resolution,
    ``(1, 3, r, r)`` (32 without one), or of shape ``space.input_shape`` if the space has one.

    Args:
        space: A space with :meth:`~SearchSpace.build`.
        arch: An architecture of ``space``.
        settings: Keywords for ``build`` instead of the reduced preset's.
        input_shape: The example input's shape instead of the default.

    Returns:
        32 hexadecimal digits.

    Raises:
        UnsupportedOperationError: The space cannot build networks or torch.fx trace them.

    Example:
        >>> from nasforge.spaces.nb201 import NB201Space
        >>> space = NB201Space()
        >>> a = space.from_choices((3, 1, 0, 0, 0, 1))  # conv on a dead branch; skip to output
        >>> b = space.from_choices((0, 0, 0, 1, 0, 0))  # just the skip
        >>> architecture_hash(space, a) == architecture_hash(space, b)
        True
    """
    if settings is None and input_shape is None and getattr(space, "__hash__", None):
        return _cached_hash(space, arch)
    return _architecture_hash(space, arch, settings, input_shape)


@functools.lru_cache(maxsize=4096)
def _cached_hash(space: SearchSpace, arch: Architecture) -> str:
    return _architecture_hash(space, arch, None, None)


def _architecture_hash(space: SearchSpace, arch: Architecture, settings: Mapping[str, Any] | None,
                       input_shape: Sequence[int] | None) -> str:  # fmt: skip
    from nasforge.spaces.base import DATA_SETTINGS

    try:
        reduced = dict(space.presets().get("reduced", {}))
    except UnsupportedOperationError:
        reduced = {}
    side = reduced.get("resolution", 32)
    if settings is None:
        settings = {k: v for k, v in reduced.items() if k not in DATA_SETTINGS}
    if input_shape is None:
        declared = getattr(space, "input_shape", None)
        input_shape = tuple(declared) if declared is not None else (1, 3, side, side)
    model = space.build(arch, **settings)
    if not isinstance(model, nn.Module):
        raise UnsupportedOperationError(
            f"Search space {space.name!r} built a {type(model).__name__}, not a torch.nn.Module; "
            "functional hashing traces PyTorch modules."
        )
    return module_hash(model, tuple(input_shape))
