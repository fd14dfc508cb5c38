"""Quantized layers: per-layer fake quantization of weights and activations at integer and FP8
precisions, their policies, calibration and bit costs.

A quantized layer computes in float with values restricted to the grid of its precision
("fake" or simulated quantization): its input and its weight go through
:func:`~nasforge.ops.fake_quant.fake_quantize` (integer ranges on PyTorch's fake-quantize
operators, FP8 on the ``torch.float8_*`` dtypes, straight-through gradients; the references are
in :mod:`nasforge.ops.fake_quant`, whose names this module re-exports) before the convolution
or matrix product.

* **Scales** (Jacob, B. et al. "Quantization and Training of Neural Networks for Efficient
  Integer-Arithmetic-Only Inference." CVPR 2018, arXiv:1712.05877, Sections 2.1 and 3.1):
  weights symmetric per output channel (``Z = 0``, ``S = max|W| / (2^(b-1) - 1)``);
  activations affine per tensor on ``[0, 2^b - 1]`` (``S = (max - min) / (2^b - 1)``,
  ``Z = -round(min / S)``, the range widened to contain zero so that zero is exact; the
  formula of ``torch.ao``'s min/max observers). FP8 scales map the largest magnitude to the
  format's largest value (per output channel for weights, per tensor for activations).
* **Activation range**: collected in training mode by an exponential moving average of the
  batch minimum and maximum (Jacob et al. Section 3.1; averaging constant 0.01 as
  ``torch.ao.quantization.MovingAverageMinMaxObserver``); :func:`calibrate` sets it to the
  exact minimum and maximum over calibration batches. A layer never trained nor calibrated
  quantizes with its batch's own range.
* **Costs.** :func:`model_bits`: the size of the weights in bits (parameters that are not
  quantized count 32). :func:`bops`: bit operations, ``MACs x b_w x b_a`` summed over the
  convolutions and linear layers; a float layer counts ``32 x 32``. Bit operations were
  introduced by Baskin, C. et al. "UNIQ: Uniform Noise Injection for Non-Uniform
  Quantization of Neural Networks." ACM Transactions on Computer Systems 2020,
  arXiv:1804.10969, whose count of a layer, ``m n k^2 (b_a b_w + b_a + b_w + log2(n k^2))``,
  also charges the accumulator; van Baalen, M. et al. "Bayesian Bits: Unifying Quantization
  and Pruning." NeurIPS 2020, arXiv:2005.07093 report their networks' cost in these bit
  operations relative to the 32-bit network. Here the accumulator terms are left out (the
  product ``MACs x b_w x b_a``, the form the mixed-precision search literature, FLIQS
  included, uses), which keeps the count exact to check by hand.

Not done here: the bias stays float (Jacob et al. keep it in int32 with scale ``S_w S_x``,
which changes nothing visible at 8 bits), and :func:`quantize_model` does not fold batch norm
into the convolution before it (Jacob et al. Section 3.2); fold it first where the network
is to run in integers, e.g. with ``torch.fx.experimental.optimization.fuse`` as
``benchmarks/int8_onnx.py`` does.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from typing import Any, cast

import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.ops._layers import NO_WEIGHTED_FORM, same_layer_args
from nasforge.ops.fake_quant import (
    FP8_DTYPES,
    INT_BITS,
    PRECISIONS,
    check_precision,
    fake_quantize,
    int_range,
    precision_bits,
)

__all__ = [
    "FP8_DTYPES",
    "INT_BITS",
    "NO_QUANT_FORM",
    "PRECISIONS",
    "QuantConv2d",
    "QuantLinear",
    "bops",
    "calibrate",
    "check_precision",
    "fake_quantize",
    "freeze_qparams",
    "int_range",
    "model_bits",
    "policy_of",
    "precision_bits",
    "quantizable_layers",
    "quantize_model",
    "quantized_layers",
    "set_policy",
]

#: Module types with weights that :func:`quantize_model` cannot quantize.
NO_QUANT_FORM: tuple[type[nn.Module], ...] = NO_WEIGHTED_FORM
#: Averaging constant of the running activation range (torch.ao's MovingAverageMinMaxObserver).
AVERAGING_CONSTANT = 0.01
_EPS = float(torch.finfo(torch.float32).eps)


def _weight_scale(weight: torch.Tensor, precision: str) -> torch.Tensor:
    """The symmetric per-output-channel scale of ``weight`` at ``precision``."""
    largest = weight.detach().abs().amax(dim=tuple(range(1, weight.dim())))
    if precision in FP8_DTYPES:
        top = torch.finfo(FP8_DTYPES[precision]).max
    else:
        top = float(int_range(precision_bits(precision), signed=True)[1])
    return (largest / top).clamp_min(_EPS).float()


def _act_qparams(
    lo: torch.Tensor, hi: torch.Tensor, precision: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-tensor scale and zero point (``None`` for FP8) of the range ``[lo, hi]``."""
    lo = lo.clamp(max=0.0)
    hi = hi.clamp(min=0.0)
    if precision in FP8_DTYPES:
        top = torch.finfo(FP8_DTYPES[precision]).max
        return (torch.maximum(-lo, hi) / top).clamp_min(_EPS).float(), None
    qmin, qmax = int_range(precision_bits(precision), signed=False)
    scale = ((hi - lo) / float(qmax - qmin)).clamp_min(_EPS).float()
    zero = (qmin - torch.round(lo / scale)).clamp(qmin, qmax).to(torch.int32)
    return scale, zero


class _QuantLayer:
    """What :class:`QuantConv2d` and :class:`QuantLinear` share: precisions, the running
    activation range (buffers ``act_min``/``act_max``), and the quantization of the input
    and of the weight."""

    training: bool
    act_min: torch.Tensor
    act_max: torch.Tensor
    weight_precision: str
    act_precision: str
    _calibrating: bool
    _frozen: tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None] | None

    def _init_quant(self, weight_precision: str | int, act_precision: str | int | None) -> None:
        module: Any = self
        module.register_buffer("act_min", torch.tensor(math.inf))
        module.register_buffer("act_max", torch.tensor(-math.inf))
        self._calibrating = False
        self._frozen = None
        self.set_precision(weight_precision, act_precision)

    def set_precision(self, weight: str | int, act: str | int | None = None) -> None:
        """Quantize the weight at ``weight`` and the input at ``act`` (``None``: the same)."""
        self.weight_precision = check_precision(weight)
        self.act_precision = self.weight_precision if act is None else check_precision(act)
        self._frozen = None

    @property
    def observed(self) -> bool:
        """Whether the running activation range has been set (by training or calibration)."""
        return bool(torch.isfinite(self.act_min)) and bool(torch.isfinite(self.act_max))

    def reset_range(self) -> None:
        """Forget the running activation range."""
        self.act_min.fill_(math.inf)
        self.act_max.fill_(-math.inf)

    def _observe(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            lo, hi = torch.aminmax(x.detach().float())
            if self._calibrating or not self.observed:
                self.act_min.copy_(torch.minimum(self.act_min, lo))
                self.act_max.copy_(torch.maximum(self.act_max, hi))
            else:
                self.act_min.add_(AVERAGING_CONSTANT * (lo - self.act_min))
                self.act_max.add_(AVERAGING_CONSTANT * (hi - self.act_max))

    def _quant_input(self, x: torch.Tensor) -> torch.Tensor:
        if self._frozen is not None:
            _, scale, zero = self._frozen
            if scale is None:
                return x
            return fake_quantize(x, self.act_precision, scale=scale, zero_point=zero, signed=False)
        if self.training or self._calibrating:
            self._observe(x)
        if self.act_precision == "fp32":
            return x
        if self.observed:
            lo, hi = self.act_min, self.act_max
        else:  # never trained nor calibrated: the batch's own range
            lo, hi = torch.aminmax(x.detach().float())
        scale, zero = _act_qparams(lo, hi, self.act_precision)
        return fake_quantize(x, self.act_precision, scale=scale, zero_point=zero, signed=False)

    def _quant_weight(self) -> torch.Tensor:
        weight: torch.Tensor = cast(Any, self).weight
        if self.weight_precision == "fp32":
            return weight
        if self._frozen is not None and self._frozen[0] is not None:
            scale = self._frozen[0]
        else:
            scale = _weight_scale(weight, self.weight_precision)
        return fake_quantize(weight, self.weight_precision, scale=scale, axis=0)

    def _quant_repr(self) -> str:
        return f"weight_precision={self.weight_precision}, act_precision={self.act_precision}"


class QuantConv2d(_QuantLayer, nn.Conv2d):
    """A 2-D convolution of its fake-quantized input with its fake-quantized weight.

    The arguments are :class:`torch.nn.Conv2d`'s plus ``weight_precision`` (default int8)
    and ``act_precision`` (default: the weight's), each one of :data:`PRECISIONS`.

    Example:
        >>> import torch
        >>> conv = QuantConv2d.from_float(torch.nn.Conv2d(3, 4, 3), "int4", "int8")
        >>> conv(torch.randn(2, 3, 8, 8)).shape, conv.weight_precision, conv.act_precision
        (torch.Size([2, 4, 6, 6]), 'int4', 'int8')
    """

    def __init__(
        self,
        *args: Any,
        weight_precision: str | int = "int8",
        act_precision: str | int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._init_quant(weight_precision, act_precision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self._conv_forward(
            self._quant_input(x), self._quant_weight(), self.bias
        )
        return out

    @classmethod
    def from_float(
        cls, module: nn.Conv2d, weight: str | int = "int8", act: str | int | None = None
    ) -> QuantConv2d:
        """A quantized convolution with ``module``'s settings and a copy of its weights."""
        out = cls(**same_layer_args(module), weight_precision=weight, act_precision=act)
        out.load_state_dict(module.state_dict(), strict=False)
        out.train(module.training)
        return out.to(module.weight.device)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"  # type: ignore[no-untyped-call]


class QuantLinear(_QuantLayer, nn.Linear):
    """A linear layer on its fake-quantized input with its fake-quantized weight (per output
    unit); the arguments are :class:`torch.nn.Linear`'s plus the precisions of
    :class:`QuantConv2d`."""

    def __init__(
        self,
        *args: Any,
        weight_precision: str | int = "int8",
        act_precision: str | int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._init_quant(weight_precision, act_precision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(self._quant_input(x), self._quant_weight(), self.bias)

    @classmethod
    def from_float(
        cls, module: nn.Linear, weight: str | int = "int8", act: str | int | None = None
    ) -> QuantLinear:
        """A quantized linear layer with a copy of ``module``'s weights."""
        out = cls(**same_layer_args(module), weight_precision=weight, act_precision=act)
        out.load_state_dict(module.state_dict(), strict=False)
        out.train(module.training)
        return out.to(module.weight.device)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"


_QUANT_TYPES = (QuantConv2d, QuantLinear)


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The 2-D convolutions and linear layers of ``model`` (plain or already quantized) with
    their module paths, in module order. Subclasses with a forward of their own (binary,
    masked, attention projections) are not listed."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if type(module) in (nn.Conv2d, nn.Linear) or isinstance(module, _QUANT_TYPES)
    ]


def quantized_layers(model: nn.Module) -> list[tuple[str, QuantConv2d | QuantLinear]]:
    """The quantized layers of ``model`` with their module paths, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _QUANT_TYPES)]


def _expand(policy: str | int | Sequence[str | int], names: Sequence[str], what: str) -> list[str]:
    """One checked precision per layer of ``names`` from one precision or a sequence."""
    if isinstance(policy, (str, int)):
        return [check_precision(policy)] * len(names)
    items = list(policy)
    if len(items) != len(names):
        raise InvalidConfigError(
            f"The {what} has {len(items)} entries but the network has {len(names)} "
            f"quantizable layers: {list(names)}; give one precision per layer, in this order, "
            "or a single precision for all of them."
        )
    return [check_precision(p) for p in items]


def quantize_model(
    model: nn.Module,
    policy: str | int | Sequence[str | int],
    *,
    act_policy: str | int | Sequence[str | int] | None = None,
    keep: Iterable[str] = (),
) -> nn.Module:
    """A copy of ``model`` with every quantizable layer replaced by its quantized form.

    Args:
        model: The float network (left as it is).
        policy: The weight precision of every layer, or one per layer of
            :func:`quantizable_layers` not named in ``keep``, in that order.
        act_policy: The input precision, in the same form (``None``: each layer's weight
            precision).
        keep: Module paths of layers to leave as they are (float).

    Raises:
        InvalidConfigError: A policy of the wrong length (both counts and the layers named),
            an unsupported precision, or ``keep`` naming a layer the network does not have.
        UnsupportedOperationError: The network has no quantizable layer, or a layer with
            weights that has no quantized form (its path and type named).

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))
        >>> policy_of(quantize_model(net, ["int4", "int8"]))
        ('int4', 'int8')
    """
    out = copy.deepcopy(model)
    kept = set(keep)
    named = dict(out.named_modules())
    unknown = kept - set(named)
    if unknown:
        raise InvalidConfigError(
            f"quantize_model(keep=...) names layers the network does not have: "
            f"{sorted(unknown)}; give module paths as model.named_modules() lists them."
        )
    for name, module in named.items():
        if name in kept or any(name.startswith(k + ".") for k in kept if k):
            continue
        if isinstance(module, NO_QUANT_FORM) or getattr(module, "quant_form", True) is False:
            raise UnsupportedOperationError(
                f"Layer {name!r} ({type(module).__name__}) has no quantized form; quantized "
                "networks quantize 2-D convolutions and linear layers. Choose a space without "
                "this operation, or leave it float with quantize_model(..., keep=(name,))."
            )
    layers = [(n, m) for n, m in quantizable_layers(out) if n not in kept]
    if not layers:
        raise UnsupportedOperationError(
            f"{type(model).__name__} has no quantizable layer (nn.Conv2d or nn.Linear) outside "
            f"keep={sorted(kept)}; nothing to quantize."
        )
    names = [n for n, _ in layers]
    weights = _expand(policy, names, "precision policy")
    acts = weights if act_policy is None else _expand(act_policy, names, "activation policy")
    for (name, module), w, a in zip(layers, weights, acts, strict=True):
        if isinstance(module, _QUANT_TYPES):
            module.set_precision(w, a)
            continue
        replacement: nn.Module
        if isinstance(module, nn.Conv2d):
            replacement = QuantConv2d.from_float(module, w, a)
        else:
            replacement = QuantLinear.from_float(cast(nn.Linear, module), w, a)
        if not name:  # the network is itself one layer
            return replacement
        parent_name, _, child = name.rpartition(".")
        setattr(out.get_submodule(parent_name) if parent_name else out, child, replacement)
    return out


def _quant_or_error(model: nn.Module, caller: str) -> list[tuple[str, QuantConv2d | QuantLinear]]:
    layers = quantized_layers(model)
    if not layers:
        raise UnsupportedOperationError(
            f"{caller}: {type(model).__name__} has no quantized layer; make one with "
            "quantize_model(model, policy)."
        )
    return layers


def set_policy(
    model: nn.Module,
    policy: str | int | Sequence[str | int],
    act_policy: str | int | Sequence[str | int] | None = None,
) -> None:
    """Set the precisions of the quantized layers of ``model`` in place (one precision for
    all or one per quantized layer, in module order; ``act_policy=None``: the weights')."""
    layers = _quant_or_error(model, "set_policy")
    names = [n for n, _ in layers]
    weights = _expand(policy, names, "precision policy")
    acts = weights if act_policy is None else _expand(act_policy, names, "activation policy")
    for (_, module), w, a in zip(layers, weights, acts, strict=True):
        module.set_precision(w, a)


def policy_of(model: nn.Module) -> tuple[str, ...]:
    """The weight precision of each quantized layer of ``model``, in module order."""
    return tuple(m.weight_precision for _, m in quantized_layers(model))


def calibrate(model: nn.Module, batches: Iterable[Any]) -> int:
    """Set every quantized layer's activation range to the exact minimum and maximum of its
    inputs over ``batches`` (tensors, or ``(inputs, targets)`` pairs), in evaluation mode and
    without gradients; the weights are not changed. Returns the number of batches.

    Raises:
        UnsupportedOperationError: ``model`` has no quantized layer.
        InvalidConfigError: ``batches`` is empty.
    """
    layers = _quant_or_error(model, "calibrate")
    modes = [(sub, sub.training) for sub in model.modules()]
    model.eval()
    count = 0
    for _, layer in layers:
        layer.reset_range()
        layer._calibrating = True
    try:
        with torch.no_grad():
            for batch in batches:
                inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(inputs)
                count += 1
    finally:
        for _, layer in layers:
            layer._calibrating = False
        for sub, training in modes:
            sub.training = training
    if not count:
        raise InvalidConfigError("calibrate: no batches given; pass at least one input batch.")
    return count


def freeze_qparams(model: nn.Module) -> None:
    """Fix the weight scales and the input scale and zero point of every quantized layer as
    constants computed now (so that an exported graph holds them as initializers). Setting a
    precision again unfreezes a layer.

    Raises:
        InvalidConfigError: A layer quantizes its input but has no activation range yet
            (train or :func:`calibrate` first); the layer is named.
    """
    for name, layer in _quant_or_error(model, "freeze_qparams"):
        w_scale = None
        if layer.weight_precision != "fp32":
            w_scale = _weight_scale(layer.weight, layer.weight_precision)
        a_scale: torch.Tensor | None = None
        a_zero: torch.Tensor | None = None
        if layer.act_precision != "fp32":
            if not layer.observed:
                raise InvalidConfigError(
                    f"Layer {name!r} has no activation range yet; run calibrate(model, batches) "
                    "or train the quantized network before exporting it."
                )
            a_scale, a_zero = _act_qparams(layer.act_min, layer.act_max, layer.act_precision)
        layer._frozen = (w_scale, a_scale, a_zero)


def _layer_bits(module: nn.Module) -> tuple[int, int]:
    """(weight bits, input bits) a layer computes with."""
    if isinstance(module, _QUANT_TYPES):
        return precision_bits(module.weight_precision), precision_bits(module.act_precision)
    from nasforge.ops.binary import BinaryConv2d, BinaryLinear

    if isinstance(module, (BinaryConv2d, BinaryLinear)):
        return (1 if module.binary_weights else 32), (1 if module.binary_activations else 32)
    return 32, 32


def model_bits(model: nn.Module) -> int:
    """Bits of the parameters of ``model``: each quantized weight at its precision's bits,
    every other parameter (biases, normalisation, float layers) at 32.

    Example:
        >>> from torch import nn
        >>> model_bits(quantize_model(nn.Linear(10, 2), "int4"))  # 20 x 4 + 2 x 32
        144
    """
    seen: set[int] = set()
    total = 0
    for module in model.modules():
        for pname, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            bits = 32
            if pname == "weight":
                bits = _layer_bits(module)[0]
            total += param.numel() * bits
    return total


def bops(model: nn.Module, input_size: Sequence[int]) -> float:
    """Bit operations of one forward pass on one sample of shape ``input_size`` (no batch
    dimension): ``MACs x weight bits x input bits`` summed over the 2-D convolutions and
    linear layers (float layers ``32 x 32``).

    Example:
        >>> from torch import nn
        >>> bops(quantize_model(nn.Linear(10, 2), "int4", act_policy="int8"), (10,))
        640.0
    """
    from nasforge.hardware.costs import check_shape, eval_mode

    shape = check_shape(input_size, "bops")
    total = [0.0]

    def count(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        per_sample = output.numel() / output.shape[0]
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            fan_in = module.in_channels // module.groups * kh * kw
        else:
            fan_in = module.in_features  # type: ignore[assignment]
        w_bits, a_bits = _layer_bits(module)
        total[0] += per_sample * fan_in * w_bits * a_bits

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    device = next(model.parameters(), torch.empty(0)).device
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros((1, *shape), device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]
