"""Function-preserving transformations of any traceable network: Net2Net and its inverses.

Chen, T., Goodfellow, I. and Shlens, J. "Net2Net: Accelerating Learning via Knowledge
Transfer." ICLR 2016, arXiv:1511.05641.

* :func:`widen` is Net2WiderNet (Section 2.3, Algorithm 1): the layer's ``width - n`` new
  units copy units drawn uniformly at random (the random mapping ``g``); every consumer's
  input weights of a unit ``j`` are divided by the number of its copies, so the consumers'
  outputs are unchanged. Batch norms and depthwise convolutions between the layer and its
  consumers are replicated with the same mapping. ``noise`` adds Gaussian noise, scaled by
  the standard deviation of the layer's weights, to the new units' incoming weights to break
  the symmetry (the paper's remedy, Section 2.3; the function is then only approximately
  preserved).
* :func:`deepen` is Net2DeeperNet (Section 2.4): after the layer's batch norm and activation
  it inserts a layer initialised to the identity (a convolution whose kernel is a centred
  delta per channel, or an identity matrix), followed by a batch norm set to the identity
  through its running statistics (mean and variance of its input in the example forward;
  ``gamma = sqrt(var + eps)``, ``beta = mean``) and the layer's ReLU, which is identity on the
  non-negative values it follows. Adaptation: when the layer's activation is not ReLU-like
  the new layer has no activation (the paper requires an idempotent activation).
* :func:`remove` and :func:`shrink` are the layer removal and layer shrinkage of N2N (Ashok,
  Rhinehart, Beainy and Kitani, ICLR 2018, arXiv:1709.06030, Section 3.1): a layer whose
  input and output shapes are equal becomes identity; a layer keeps its filters of largest
  L1 norm (Li et al. 2017's criterion) and its consumers drop the matching input channels.
  Adaptation: a dropped filter identical to a kept one (a copy made by :func:`widen`) adds
  its consumer weights to the kept one instead of being cut, so shrinking a widened network
  back to its width returns the original function exactly.

Which layers can change is found by tracing the network with :mod:`torch.fx` and following
each layer's output through channel-wise operations (:mod:`nasforge.growth._graph`); a layer
whose output is summed with another tensor (a residual), concatenated, multiplied by a gate
(squeeze-and-excitation) or returned as the network's output cannot be widened, and
:attr:`Layer.reasons` says so. Every function returns a new model (a deep copy); the
original is untouched.

Example:
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> from nasforge import growth
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
    ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()
    >>> x = torch.randn(2, 3, 16, 16)
    >>> wider = growth.widen(net, x, 0, 12, rng=np.random.default_rng(0)).eval()
    >>> bool((wider(x) - net(x)).abs().max() < 1e-5)
    True
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx
from torch import nn

from nasforge.errors import InvalidConfigError, UnknownNameError, UnsupportedOperationError
from nasforge.growth._graph import Plan, analyse, record

__all__ = ["Layer", "deepen", "describe", "layers", "remove", "shrink", "widen"]


@dataclass(frozen=True)
class Layer:
    """One transformable weight layer (``Conv2d`` or ``Linear``) of a network.

    Attributes:
        index: Position in :func:`layers` (forward order).
        name: Qualified module name (``model.get_submodule(name)``).
        kind: ``"conv"`` or ``"linear"``.
        in_features: Input channels (conv) or features (linear).
        out_features: Output channels or features.
        widenable: Whether the width can grow or shrink function-preservingly.
        removable: Whether identity can replace the layer (same input and output shape).
        reasons: Why it is not widenable / not removable, in words.
    """

    index: int
    name: str
    kind: str
    in_features: int
    out_features: int
    widenable: bool
    removable: bool
    reasons: tuple[str, ...]


def _layer(index: int, plan: Plan, module: nn.Conv2d | nn.Linear) -> Layer:
    conv = isinstance(module, nn.Conv2d)
    reasons = [f"not widenable: {r}" for r in plan.widen_reasons]
    reasons += [f"not removable: {r}" for r in plan.remove_reasons]
    return Layer(
        index=index,
        name=plan.name,
        kind="conv" if conv else "linear",
        in_features=module.in_channels if isinstance(module, nn.Conv2d) else module.in_features,
        out_features=(
            module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        ),
        widenable=not plan.widen_reasons,
        removable=not plan.remove_reasons,
        reasons=tuple(reasons),
    )


def layers(model: nn.Module, example: torch.Tensor) -> list[Layer]:
    """The ``Conv2d`` and ``Linear`` layers of ``model`` in forward order, with what Net2Net
    can do to each.

    Args:
        model: Any :class:`torch.nn.Module` that :func:`torch.fx.symbolic_trace` can trace.
        example: An input batch; one forward (eval mode, no gradients) gives the shapes.

    Raises:
        UnsupportedOperationError: The model cannot be traced (the message names the
            construct) or fails on ``example``.
    """
    gm, plans, _ = analyse(model, example)
    return [_layer(i, p, _layer_module(gm, p.name)) for i, p in enumerate(plans)]


def describe(model: nn.Module, example: torch.Tensor) -> list[dict[str, Any]]:
    """Per layer: ``index``, ``name``, ``kind``, ``in``, ``out``, ``kernel``, ``stride``,
    ``groups``, ``size`` (output side in pixels, 1 for linear layers), ``widenable``,
    ``removable``, ``output`` (its output is the network's output, e.g. the classifier) and
    ``calls`` (times the forward calls it) — the layer descriptions the controllers' encoders
    read."""
    gm, plans, _ = analyse(model, example)
    rows = []
    for i, plan in enumerate(plans):
        module = _layer_module(gm, plan.name)
        layer = _layer(i, plan, module)
        conv = isinstance(module, nn.Conv2d)
        rows.append(
            {
                "index": i,
                "name": plan.name,
                "kind": layer.kind,
                "in": layer.in_features,
                "out": layer.out_features,
                "kernel": module.kernel_size[0] if isinstance(module, nn.Conv2d) else 1,
                "stride": module.stride[0] if isinstance(module, nn.Conv2d) else 1,
                "groups": module.groups if isinstance(module, nn.Conv2d) else 1,
                "size": int(plan.out_shape[-1]) if conv and len(plan.out_shape) == 4 else 1,
                "widenable": layer.widenable,
                "removable": layer.removable,
                "output": plan.feeds_output,
                "calls": plan.calls,
            }
        )
    return rows


def _resolve(plans: Sequence[Plan], key: int | str) -> int:
    """The index of the layer named or numbered ``key``."""
    names = [p.name for p in plans]
    shown = ", ".join(f"{i} {n!r}" for i, n in enumerate(names))
    if isinstance(key, str):
        if key in names:
            return names.index(key)
        error = UnknownNameError("layer", key, names)
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        Exception.__init__(
            error,
            f"Unknown layer {key!r}; the network's layers (index, name) are {shown or 'none'}."
            f"{hint}",
        )
        raise error
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        if 0 <= int(key) < len(plans):
            return int(key)
        raise InvalidConfigError(
            f"Layer index {key} is out of range: the network has {len(plans)} layers "
            f"({shown or 'none'})."
        )
    raise InvalidConfigError(
        f"A layer is given by its index (int) or module name (str), got {type(key).__name__}."
    )


def _refuse(plan: Plan, index: int, what: str, reasons: Sequence[str]) -> None:
    if reasons:
        raise UnsupportedOperationError(
            f"Layer {index} {plan.name!r} cannot be {what}: {'; '.join(reasons)}."
        )


def _t(module: nn.Module, attr: str) -> torch.Tensor:
    """``module.attr`` as a tensor (a parameter or buffer that exists)."""
    value = getattr(module, attr)
    assert isinstance(value, torch.Tensor)
    return value


def _layer_module(model: nn.Module, name: str) -> nn.Conv2d | nn.Linear:
    module = model.get_submodule(name)
    assert isinstance(module, nn.Conv2d | nn.Linear)
    return module


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _conv_like(old: nn.Conv2d, c_in: int, c_out: int, groups: int) -> nn.Conv2d:
    return nn.Conv2d(
        c_in,
        c_out,
        old.kernel_size,  # type: ignore[arg-type]
        stride=old.stride,  # type: ignore[arg-type]
        padding=old.padding,  # type: ignore[arg-type]
        dilation=old.dilation,  # type: ignore[arg-type]
        groups=groups,
        bias=old.bias is not None,
        padding_mode=old.padding_mode,
    ).to(_t(old, "weight").dtype)


def _remap(
    model: nn.Module,
    plan: Plan,
    source: torch.Tensor,
    combine: torch.Tensor,
    noise: torch.Tensor | None = None,
) -> None:
    """Give ``plan``'s layer ``len(source)`` units: unit ``k`` copies old unit ``source[k]``
    (layer rows, followers' per-channel parameters); consumers' input weights become
    ``W @ combine`` over the channel axis (``combine`` is old units x new units)."""
    width = len(source)
    with torch.no_grad():
        old = model.get_submodule(plan.name)
        if isinstance(old, nn.Conv2d):
            new: nn.Module = _conv_like(old, old.in_channels, width, 1)
        else:
            assert isinstance(old, nn.Linear)
            new = nn.Linear(old.in_features, width, bias=old.bias is not None)
            new = new.to(_t(old, "weight").dtype)
        _t(new, "weight").copy_(_t(old, "weight")[source])
        if noise is not None:
            _t(new, "weight").add_(noise.to(_t(new, "weight").dtype))
        if old.bias is not None:
            _t(new, "bias").copy_(_t(old, "bias")[source])
        new.train(old.training)
        _set_module(model, plan.name, new)
        for name, kind in plan.followers:
            old = model.get_submodule(name)
            if kind == "depthwise":
                assert isinstance(old, nn.Conv2d)
                new = _conv_like(old, width, width, width)
                _t(new, "weight").copy_(_t(old, "weight")[source])
                if old.bias is not None:
                    _t(new, "bias").copy_(_t(old, "bias")[source])
            else:
                assert isinstance(old, nn.BatchNorm1d | nn.BatchNorm2d)
                new = type(old)(
                    width,
                    eps=old.eps,
                    momentum=old.momentum,
                    affine=old.affine,
                    track_running_stats=old.track_running_stats,
                )
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    value = getattr(old, attr)
                    if value is not None:
                        getattr(new, attr).copy_(value[source])
                if old.num_batches_tracked is not None:
                    _t(new, "num_batches_tracked").copy_(_t(old, "num_batches_tracked"))
            new.train(old.training)
            _set_module(model, name, new)
        for name, spatial in plan.consumers:
            old = model.get_submodule(name)
            mix = combine.to(_t(old, "weight").dtype)
            if isinstance(old, nn.Conv2d):
                new = _conv_like(old, width, old.out_channels, 1)
                _t(new, "weight").copy_(torch.einsum("oihw,ik->okhw", _t(old, "weight"), mix))
            else:
                assert isinstance(old, nn.Linear)
                new = nn.Linear(width * spatial, old.out_features, bias=old.bias is not None)
                w = _t(old, "weight").reshape(old.out_features, -1, spatial)
                w = torch.einsum("ois,ik->oks", w, mix).reshape(old.out_features, -1)
                _t(new, "weight").copy_(w)
            if old.bias is not None:
                _t(new, "bias").copy_(_t(old, "bias"))
            new.train(old.training)
            _set_module(model, name, new)


def widen(
    model: nn.Module,
    example: torch.Tensor,
    layer: int | str,
    width: int,
    *,
    rng: np.random.Generator,
    noise: float = 0.0,
) -> nn.Module:
    """Net2WiderNet: a copy of ``model`` whose layer ``layer`` has ``width`` output units.

    Args:
        model: The network (not modified).
        example: An input batch (for tracing and shapes).
        layer: Index in :func:`layers` or module name.
        width: The new number of output channels / features (at least the current one).
        rng: Draws the units each new unit copies.
        noise: Standard deviation of the noise added to the new units' incoming weights,
            relative to the standard deviation of the layer's weights (0: exact).

    Raises:
        UnsupportedOperationError: The layer cannot be widened (the message gives why).
        InvalidConfigError: A width below the current one, or a bad layer index.
    """
    new_model = copy.deepcopy(model)
    gm, plans, _ = analyse(new_model, example)
    index = _resolve(plans, layer)
    plan = plans[index]
    _refuse(plan, index, "widened", plan.widen_reasons)
    module = gm.get_submodule(plan.name)
    n = int(_t(module, "weight").shape[0])
    if not isinstance(width, int | np.integer) or width < n:
        raise InvalidConfigError(
            f"widen() needs a width of at least {n} (layer {plan.name!r} has {n} units), got "
            f"{width!r}; use shrink() to make a layer narrower."
        )
    if noise < 0:
        raise InvalidConfigError(f"noise must be >= 0, got {noise}.")
    extra = rng.integers(0, n, size=int(width) - n)
    source = torch.as_tensor(np.concatenate([np.arange(n), extra]), dtype=torch.long)
    counts = torch.bincount(source, minlength=n).to(torch.float64)
    combine = torch.zeros(n, int(width), dtype=torch.float64)
    combine[source, torch.arange(int(width))] = 1.0 / counts[source]
    perturb = None
    if noise > 0 and width > n:
        shape = (int(width), *_t(module, "weight").shape[1:])
        scale = float(_t(module, "weight").detach().std()) * noise
        draws = torch.as_tensor(rng.standard_normal(shape)) * scale
        draws[:n] = 0.0
        perturb = draws
    _remap(new_model, plan, source, combine, perturb)
    return new_model


def deepen(
    model: nn.Module, example: torch.Tensor, layer: int | str, *, kernel: int = 3
) -> nn.Module:
    """Net2DeeperNet: a copy of ``model`` with an identity-initialised layer (``kernel x
    kernel`` convolution after a conv layer, linear after a linear one), a batch norm at
    identity and the layer's ReLU, inserted after ``layer``'s batch norm and activation.

    When that point is a module called once, the module is replaced by
    ``nn.Sequential(module, new_layers)`` (the model keeps its class); otherwise the new
    layers are inserted in the traced graph and a :class:`torch.fx.GraphModule` is returned.

    Raises:
        UnsupportedOperationError: The layer is called more than once, or feeds a linear
            layer with inputs of more than two dimensions.
        InvalidConfigError: An even or non-positive kernel, or a bad layer index.
    """
    if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise InvalidConfigError(
            f"kernel must be a positive odd integer (1, 3, 5...), got {kernel!r}."
        )
    new_model = copy.deepcopy(model)
    gm, plans, _ = analyse(new_model, example)
    index = _resolve(plans, layer)
    plan = plans[index]
    if plan.calls > 1:
        _refuse(plan, index, "deepened", [f"it is called {plan.calls} times (shared weights)"])
    point = plan.insert_after
    assert point is not None
    values = record(gm, example, {point.name}).values[point.name]
    module = gm.get_submodule(plan.name)
    width = int(_t(module, "weight").shape[0])
    conv = isinstance(module, nn.Conv2d)
    if values.dim() != (4 if conv else 2):
        _refuse(plan, index, "deepened", [f"its output has shape {tuple(values.shape)}"])
    dims = (0, 2, 3) if conv else (0,)
    mean = values.mean(dims).to(torch.float64)
    var = values.var(dims, unbiased=False).to(torch.float64)
    with torch.no_grad():
        if conv:
            inserted: nn.Module = nn.Conv2d(width, width, kernel, padding=kernel // 2, bias=False)
            _t(inserted, "weight").zero_()
            centre = kernel // 2
            _t(inserted, "weight")[torch.arange(width), torch.arange(width), centre, centre] = 1.0
            norm: nn.BatchNorm1d | nn.BatchNorm2d = nn.BatchNorm2d(width)
        else:
            inserted = nn.Linear(width, width)
            _t(inserted, "weight").copy_(torch.eye(width))
            _t(inserted, "bias").zero_()
            norm = nn.BatchNorm1d(width)
        _t(norm, "running_mean").copy_(mean)
        _t(norm, "running_var").copy_(var)
        _t(norm, "weight").copy_(torch.sqrt(var + norm.eps))
        _t(norm, "bias").copy_(mean)
    parts = [inserted.to(_t(module, "weight").dtype), norm.to(_t(module, "weight").dtype)]
    if plan.relu_after is not None:
        parts.append(copy.deepcopy(plan.relu_after))
    block = nn.Sequential(*parts)
    block.train(module.training)
    calls = sum(1 for n in gm.graph.nodes if n.op == "call_module" and n.target == point.target)
    if point.op == "call_module" and calls == 1:
        target = str(point.target)
        _set_module(new_model, target, nn.Sequential(new_model.get_submodule(target), block))
        return new_model
    name = f"{plan.name.replace('.', '_')}_deeper"
    while hasattr(gm, name):
        name += "_"
    gm.add_submodule(name, block)
    with gm.graph.inserting_after(point):
        node = gm.graph.call_module(name, (point,))
    point.replace_all_uses_with(node, delete_user_cb=lambda user: user is not node)
    gm.recompile()
    return gm


def remove(model: nn.Module, example: torch.Tensor, layers: Sequence[int | str]) -> nn.Module:
    """A copy of ``model`` with each of ``layers`` replaced by :class:`torch.nn.Identity`
    (N2N's layer removal); each must have equal input and output shapes.

    Raises:
        UnsupportedOperationError: A layer cannot be removed (the message gives why).
        InvalidConfigError: A bad layer index.
    """
    if isinstance(layers, int | str):
        layers = [layers]
    new_model = copy.deepcopy(model)
    _, plans, _ = analyse(new_model, example)
    chosen = sorted({_resolve(plans, key) for key in layers})
    for index in chosen:
        _refuse(plans[index], index, "removed", plans[index].remove_reasons)
    for index in chosen:
        _set_module(new_model, plans[index].name, nn.Identity())
    return new_model


def shrink(model: nn.Module, example: torch.Tensor, widths: Mapping[int | str, int]) -> nn.Module:
    """A copy of ``model`` whose layers have the output widths of ``widths`` (N2N's layer
    shrinkage): each keeps its filters of largest L1 norm, filters identical to a kept one
    merged into it, and its consumers' input channels are cut to match.

    Raises:
        UnsupportedOperationError: A layer's width cannot change (the message gives why).
        InvalidConfigError: A width below 1 or above the current width, or a bad layer.
    """
    new_model = copy.deepcopy(model)
    _, plans, _ = analyse(new_model, example)
    targets = {plans[_resolve(plans, key)].name: width for key, width in widths.items()}
    for name, width in targets.items():
        gm, plans, _ = analyse(new_model, example)
        index = [p.name for p in plans].index(name)
        plan = plans[index]
        _refuse(plan, index, "shrunk", plan.widen_reasons)
        weight = _t(gm.get_submodule(name), "weight").detach()
        n = int(weight.shape[0])
        if not isinstance(width, int | np.integer) or not 1 <= width <= n:
            raise InvalidConfigError(
                f"shrink() needs a width between 1 and {n} for layer {name!r}, got {width!r}."
            )
        _remap(new_model, plan, *_selection(gm, plan, weight, int(width)))
    return new_model


def _selection(
    gm: torch.fx.GraphModule, plan: Plan, weight: torch.Tensor, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept units (largest L1 norm first among distinct units) and the consumers' mix."""
    n = int(weight.shape[0])
    signature = [weight.reshape(n, -1)]
    layer = gm.get_submodule(plan.name)
    if layer.bias is not None:
        signature.append(_t(layer, "bias").detach().reshape(n, 1))
    for name, _ in plan.followers:
        module = gm.get_submodule(name)
        for attr in ("weight", "bias", "running_mean", "running_var"):
            value = getattr(module, attr, None)
            if isinstance(value, torch.Tensor):
                signature.append(value.detach().reshape(n, -1).to(weight.dtype))
    rows = torch.cat(signature, dim=1)
    _, group = torch.unique(rows, dim=0, return_inverse=True)
    norms = weight.abs().reshape(n, -1).sum(1)
    first = {int(g): i for i, g in reversed(list(enumerate(group.tolist())))}
    order = {i: (-float(norms[i]), i) for i in range(n)}
    leaders = sorted(first.values(), key=order.__getitem__)
    rest = sorted((i for i in range(n) if first[int(group[i])] != i), key=order.__getitem__)
    keep = sorted((leaders + rest)[:width])
    combine = torch.zeros(n, width, dtype=torch.float64)
    slot: dict[int, int] = {}
    for k, i in enumerate(keep):
        combine[i, k] = 1.0
        slot.setdefault(int(group[i]), k)
    for i in range(n):
        if i not in keep and int(group[i]) in slot:
            combine[i, slot[int(group[i])]] = 1.0
    return torch.as_tensor(keep, dtype=torch.long), combine
