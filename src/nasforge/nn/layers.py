"""Layers that take :class:`~nasforge.nn.ValueChoice` arguments: ``Conv1d``, ``Conv2d``,
``Linear``, ``BatchNorm1d``, ``BatchNorm2d``.

Given plain numbers (always so under :func:`nasforge.nn.fixed`) the constructors return the
``torch.nn`` layer itself. Given value choices they return the weight-sharing layer: a
subclass of the ``torch.nn`` layer holding the largest weight (largest channels, largest
kernel), which one architecture's layer is a slice of:

* **channels** (``in_channels``, ``out_channels``, ``in_features``, ``out_features``,
  ``num_features``): one path slices the weight to the chosen widths (its input to the chosen
  input width); the dense mixture runs the full width and multiplies the output channels by
  ``sum_o w_o m_o``, with ``m_o`` the mask of the first ``c_o`` channels, as FBNetV2's channel
  masking does (Wan et al., "FBNetV2: Differentiable Neural Architecture Search for Spatial
  and Channel Dimensions", CVPR 2020, arXiv:2004.05565, Section 3.1). This is exactly
  ``sum_o w_o layer_o(x)`` with each ``layer_o``'s output zero-padded to the full width;
* **kernel size** (convolutions): option ``k`` is the centre ``k x k`` of the one largest
  kernel, as Single-Path NAS's superkernel (Stamoulis et al., ECML-PKDD 2019,
  arXiv:1904.02877, Section 3.1); one path convolves with the cropped kernel and its own
  padding, the dense mixture with ``W * sum_o w_o M_o`` (``M_o`` the centre mask of
  ``k_o``), which by linearity equals ``sum_o w_o conv_{k_o}(x)`` when the padding grows
  with the kernel (``padding = dilation * (k - 1) / 2``, e.g. ``kernel // 2``).

With weights and an index (GDAS) each decision of the layer adds its other options' weights,
``w_i out + sum_{o != i} w_o``. A value choice for ``groups`` makes a depthwise convolution
(``groups`` the same choice as ``in_channels`` and ``out_channels``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.nn._trace import Site
from nasforge.nn.choice import ValueChoice, resolve

__all__ = ["BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d", "Linear", "copy_sliced"]


def _positive(value: Any, what: str, layer: str) -> None:
    for option in resolve(value):
        if isinstance(option, bool) or not isinstance(option, int) or option < 1:
            label = f" ({value.label!r})" if isinstance(value, ValueChoice) else ""
            raise InvalidConfigError(
                f"{layer} {what}{label} takes positive integers, got {option!r}."
            )


def _has_choice(*values: Any) -> bool:
    return any(isinstance(v, ValueChoice) for v in values)


def _sites(*values: Any) -> tuple[Site, ...]:
    out: list[Site] = []
    for value in values:
        if isinstance(value, ValueChoice) and all(value.site is not s for s in out):
            out.append(value.site)
    return tuple(out)


def _now(value: Any) -> Any:
    """The value of a one-path forward."""
    return value.current() if isinstance(value, ValueChoice) else value


def _channel_masks(value: Any, largest: int) -> torch.Tensor:
    options = resolve(value)
    masks = torch.zeros(len(options), largest)
    for o, width in enumerate(options):
        masks[o, :width] = 1.0
    return masks


def _dense_mask(value: Any, masks: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_o w_o m_o`` shaped to multiply ``x``'s channels (dim 1, or the last for linear
    layers when ``x`` has one dimension more than ``masks``)."""
    mask: torch.Tensor = value.site.weights.to(x.dtype) @ masks.to(x.dtype)
    return mask


def _one_path(sites: Sequence[Site]) -> bool:
    return all(site.one_path for site in sites)


def _gate(out: torch.Tensor, sites: Sequence[Site]) -> torch.Tensor:
    for site in sites:
        out = site.gate(out)
    return out


# -- convolutions ---------------------------------------------------------------------------------
class _ChoiceConv:
    """What :class:`Conv1d` and :class:`Conv2d` share (their weight-sharing form)."""

    weight: Any
    bias: Any
    stride: Any
    dilation: Any
    _dims: int
    _largest: int
    _out_masks: torch.Tensor
    _kernel_masks: torch.Tensor

    def _setup(
        self,
        in_channels: Any,
        out_channels: Any,
        kernel_size: Any,
        padding: Any,
        dilation: Any,
        groups: Any,
        padding_mode: str,
    ) -> dict[str, Any]:
        """Check the choices; the arguments of the largest ``torch.nn`` layer."""
        layer = type(self).__name__
        _positive(in_channels, "in_channels", layer)
        _positive(out_channels, "out_channels", layer)
        if isinstance(kernel_size, ValueChoice):
            _positive(kernel_size, "kernel_size", layer)
        self._in, self._out, self._kernel, self._groups = (
            in_channels,
            out_channels,
            kernel_size,
            groups,
        )
        self.depthwise = isinstance(groups, ValueChoice)
        if self.depthwise and not (
            isinstance(in_channels, ValueChoice)
            and isinstance(out_channels, ValueChoice)
            and groups.site is in_channels.site is out_channels.site
            and groups.options == in_channels.options == out_channels.options
        ):
            raise UnsupportedOperationError(
                f"{layer}: groups may be a choice only for a depthwise convolution, whose "
                "in_channels, out_channels and groups are the same choice."
            )
        if not self.depthwise and groups != 1 and _has_choice(in_channels, out_channels):
            raise UnsupportedOperationError(
                f"{layer}: groups={groups} with a channel choice; slicing channels would "
                "regroup them. Use groups=1, or a depthwise convolution (groups the same "
                "choice as the channels)."
            )
        sites = _sites(in_channels, out_channels, kernel_size, groups)
        if (
            isinstance(kernel_size, ValueChoice)
            and isinstance(out_channels, ValueChoice)
            and kernel_size.site is out_channels.site
        ):
            raise UnsupportedOperationError(
                f"{layer}: kernel_size and out_channels follow the same decision "
                f"{kernel_size.label!r}; give them separate choices."
            )
        self._choice_sites = sites
        dilation_value = dilation if isinstance(dilation, int) else dilation[0]
        kernels = resolve(kernel_size)
        pads = self._paddings(kernel_size, padding, dilation_value, layer)
        self._pads = pads
        largest = kernels.index(max(kernels)) if isinstance(kernel_size, ValueChoice) else 0
        self._largest = largest  # the kernel option the full weight is (a dense forward's)
        if isinstance(kernel_size, ValueChoice):
            if padding_mode != "zeros":
                raise UnsupportedOperationError(
                    f"{layer}: a kernel choice needs padding_mode='zeros' (the smaller kernels "
                    f"are the centre of the largest one), got {padding_mode!r}."
                )
            for k, p in zip(kernels, pads, strict=True):
                if dilation_value * (max(kernels) - k) != 2 * (pads[largest] - p):
                    raise InvalidConfigError(
                        f"{layer}: kernel choice {kernel_size.label!r} {list(kernels)} with "
                        f"paddings {list(pads)}: the kernels' centres do not align, so the "
                        "smaller kernels are not the centre of the largest one. Use kernels "
                        "of one parity and padding=dilation*(kernel-1)//2, e.g. "
                        "padding=kernel // 2 with the kernel's ValueChoice."
                    )
        kernel_arg = max(kernels) if isinstance(kernel_size, ValueChoice) else kernel_size
        return {
            "in_channels": max(resolve(in_channels)),
            "out_channels": max(resolve(out_channels)),
            "kernel_size": kernel_arg,
            "padding": pads[largest],
            "groups": max(resolve(groups)),
        }

    def _paddings(self, kernel: Any, padding: Any, dilation: int, layer: str) -> tuple[Any, ...]:
        """The padding of each kernel option (``'same'`` as numbers where a kernel choice
        needs them)."""
        kernels = resolve(kernel)
        if isinstance(padding, ValueChoice):
            if not isinstance(kernel, ValueChoice) or padding.site is not kernel.site:
                raise UnsupportedOperationError(
                    f"{layer}: padding may be a choice only when it follows the kernel's "
                    "choice (padding=kernel // 2)."
                )
            return padding.options
        if padding == "same" and isinstance(kernel, ValueChoice):
            if any(k % 2 == 0 for k in kernels):
                raise InvalidConfigError(
                    f"{layer}: padding='same' with kernel choice {kernel.label!r} needs odd "
                    f"kernels, got {list(kernels)}."
                )
            return tuple(dilation * (k - 1) // 2 for k in kernels)
        return tuple(padding for _ in kernels)

    def _register_masks(self) -> None:
        module: Any = self
        largest_out = int(self.weight.shape[0])
        module.register_buffer(
            "_out_masks", _channel_masks(self._out, largest_out), persistent=False
        )
        kernels = resolve(self._kernel)
        size = max(kernels)
        masks = torch.zeros(len(kernels), *([size] * self._dims))
        for o, k in enumerate(kernels):
            _centre(masks[o][None, None], k).fill_(1.0)
        module.register_buffer("_kernel_masks", masks, persistent=False)

    def _conv(self, x: torch.Tensor, weight: Any, bias: Any, padding: Any, groups: int) -> Any:
        raise NotImplementedError  # each class binds its functional convolution

    def _choice_forward(self, x: torch.Tensor) -> torch.Tensor:
        sites = self._choice_sites
        if _one_path(sites):
            c_in, c_out = int(_now(self._in)), int(_now(self._out))
            groups = c_out if self.depthwise else int(self._groups)
            weight = (
                self.weight[:c_out] if self.depthwise else self.weight[:c_out, : c_in // groups]
            )
            if isinstance(self._kernel, ValueChoice):
                weight = _centre(weight, int(_now(self._kernel)))
                padding = self._pads[self._kernel.site.index or 0]
            else:
                padding = self._pads[0]
            bias = None if self.bias is None else self.bias[:c_out]
            return _gate(self._conv(x[:, :c_in], weight, bias, padding, groups), sites)
        weight, bias = self.weight, self.bias
        if isinstance(self._kernel, ValueChoice):
            kernel_weights = self._kernel.site.weights.to(weight.dtype)
            mix = torch.tensordot(kernel_weights, self._kernel_masks.to(weight.dtype), dims=1)
            weight = weight * mix
            if bias is not None:
                bias = bias * kernel_weights.sum()
        groups = int(self.weight.shape[0]) if self.depthwise else int(self._groups)
        out: torch.Tensor = self._conv(x, weight, bias, self._pads[self._largest], groups)
        if isinstance(self._out, ValueChoice):
            mask = _dense_mask(self._out, self._out_masks, out)
            out = out * mask.view(1, -1, *([1] * self._dims))
        return out


def _centre(weight: torch.Tensor, k: int) -> torch.Tensor:
    """The centre ``k x k`` (``k`` along each kernel dimension) of a convolution weight."""
    for dim in range(2, weight.dim()):
        start = (weight.shape[dim] - k) // 2
        weight = weight.narrow(dim, start, k)
    return weight


def _conv_new(cls: type, torch_cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    names = (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
    )
    values = dict(zip(names, args, strict=False))
    values.update(kwargs)
    if not _has_choice(*values.values()):
        return torch_cls(*args, **kwargs)
    return object.__new__(cls)


class _ChoiceConvNd(_ChoiceConv):
    """The constructor and forward of :class:`Conv1d` and :class:`Conv2d`: ``_torch`` is the
    torch class (what plain numbers give) and ``_functional`` its convolution function."""

    _torch: Any
    _functional: Any
    padding_mode: Any
    _reversed_padding_repeated_twice: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:  # copy / pickle
            return object.__new__(cls)
        return _conv_new(cls, cls._torch, args, kwargs)

    def __init__(
        self,
        in_channels: Any,
        out_channels: Any,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: Any = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        shape = self._setup(
            in_channels, out_channels, kernel_size, padding, dilation, groups, padding_mode
        )
        self._torch.__init__(
            self,
            stride=stride,
            dilation=dilation,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
            **shape,
        )
        self._register_masks()

    def _conv(self, x: torch.Tensor, weight: Any, bias: Any, padding: Any, groups: int) -> Any:
        if self.padding_mode != "zeros":
            return self._functional(
                nn.functional.pad(x, self._reversed_padding_repeated_twice, self.padding_mode),
                weight, bias, self.stride, 0, self.dilation, groups,
            )  # fmt: skip
        return self._functional(x, weight, bias, self.stride, padding, self.dilation, groups)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._choice_forward(input)


class Conv2d(_ChoiceConvNd, nn.Conv2d):
    """``torch.nn.Conv2d`` whose ``in_channels``, ``out_channels``, ``kernel_size``
    (``padding`` following it) and depthwise ``groups`` may be value choices (see the
    module docstring); plain numbers give ``torch.nn.Conv2d`` itself."""

    _dims = 2
    _torch = nn.Conv2d
    _functional = staticmethod(nn.functional.conv2d)


class Conv1d(_ChoiceConvNd, nn.Conv1d):
    """``torch.nn.Conv1d`` with value choices, as :class:`Conv2d`."""

    _dims = 1
    _torch = nn.Conv1d
    _functional = staticmethod(nn.functional.conv1d)


# -- linear ---------------------------------------------------------------------------------------
class Linear(nn.Linear):
    """``torch.nn.Linear`` whose ``in_features`` and ``out_features`` may be value choices
    (sliced along the last dimension); plain numbers give ``torch.nn.Linear``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:  # copy / pickle
            return object.__new__(cls)
        values = [*args[:2], kwargs.get("in_features"), kwargs.get("out_features")]
        if not _has_choice(*values):
            return nn.Linear(*args, **kwargs)
        return object.__new__(cls)

    def __init__(
        self,
        in_features: Any,
        out_features: Any,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        _positive(in_features, "in_features", "Linear")
        _positive(out_features, "out_features", "Linear")
        super().__init__(max(resolve(in_features)), max(resolve(out_features)), bias, device, dtype)
        self._in, self._out = in_features, out_features
        self._choice_sites = _sites(in_features, out_features)
        self._out_masks: torch.Tensor
        self.register_buffer(
            "_out_masks", _channel_masks(out_features, self.out_features), persistent=False
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        sites = self._choice_sites
        if _one_path(sites):
            c_in, c_out = int(_now(self._in)), int(_now(self._out))
            bias = None if self.bias is None else self.bias[:c_out]
            out = nn.functional.linear(input[..., :c_in], self.weight[:c_out, :c_in], bias)
            return _gate(out, sites)
        out = nn.functional.linear(input, self.weight, self.bias)
        if isinstance(self._out, ValueChoice):
            out = out * _dense_mask(self._out, self._out_masks, out)
        return out


# -- batch norm -----------------------------------------------------------------------------------
class _ChoiceNorm:
    """The constructor and forward of the batch norms with a ``num_features`` choice:
    ``_torch`` is the torch class (what a plain number gives)."""

    _torch: Any
    _features: ValueChoice
    _out_masks: torch.Tensor

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:  # copy / pickle
            return object.__new__(cls)
        features = args[0] if args else kwargs.get("num_features")
        if not isinstance(features, ValueChoice):
            return cls._torch(*args, **kwargs)
        return object.__new__(cls)

    def __init__(self, num_features: Any, **kwargs: Any) -> None:
        norm: Any = self
        _positive(num_features, "num_features", type(self).__name__)
        self._torch.__init__(norm, max(num_features.options), **kwargs)
        self._features = num_features
        norm.register_buffer(
            "_out_masks", _channel_masks(num_features, norm.num_features), persistent=False
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        norm: Any = self
        site = self._features.site
        if not site.one_path:
            out: torch.Tensor = self._torch.forward(norm, input)
            mask = _dense_mask(self._features, self._out_masks, out)
            return out * mask.view(1, -1, *([1] * (out.dim() - 2)))
        c = int(_now(self._features))
        factor = 0.0 if norm.momentum is None else norm.momentum
        if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
            norm.num_batches_tracked.add_(1)
            if norm.momentum is None:
                factor = 1.0 / float(norm.num_batches_tracked)
        training = norm.training or (norm.running_mean is None and norm.running_var is None)
        track = not norm.training or norm.track_running_stats
        out = nn.functional.batch_norm(
            input[:, :c],
            norm.running_mean[:c] if track and norm.running_mean is not None else None,
            norm.running_var[:c] if track and norm.running_var is not None else None,
            None if norm.weight is None else norm.weight[:c],
            None if norm.bias is None else norm.bias[:c],
            training,
            factor,
            norm.eps,
        )
        gated: torch.Tensor = site.gate(out)
        return gated


class BatchNorm2d(_ChoiceNorm, nn.BatchNorm2d):
    """``torch.nn.BatchNorm2d`` whose ``num_features`` may be a value choice (one path: the
    statistics and affine parameters of the first channels; dense: the full layer with the
    channel mask); a plain number gives ``torch.nn.BatchNorm2d``."""

    _torch = nn.BatchNorm2d


class BatchNorm1d(_ChoiceNorm, nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` with a ``num_features`` choice, as :class:`BatchNorm2d`."""

    _torch = nn.BatchNorm1d


# -- weights of one architecture ------------------------------------------------------------------
@torch.no_grad()
def copy_sliced(source: nn.Module, target: nn.Module) -> None:
    """Copy ``source``'s own parameters and buffers into ``target``'s, each sliced to the
    target's shape: leading entries along every dimension, the centre of a convolution's
    kernel (the weights one architecture inherits from a weight-sharing layer).

    Raises:
        InvalidConfigError: A tensor of ``target`` is larger than ``source``'s or missing.
    """
    mine: dict[str, torch.Tensor] = dict(source.named_parameters(recurse=False))
    mine.update(source.named_buffers(recurse=False))
    theirs: dict[str, torch.Tensor] = dict(target.named_parameters(recurse=False))
    theirs.update(target.named_buffers(recurse=False))
    for name, tensor in theirs.items():
        if tensor is None:
            continue
        found = mine.get(name)
        if found is None or found.dim() != tensor.dim():
            raise InvalidConfigError(
                f"Cannot inherit {type(target).__name__}.{name}: the weight-sharing "
                f"{type(source).__name__} has no tensor of that name and rank."
            )
        kernel = isinstance(source, _ChoiceConv) and name == "weight"
        piece: torch.Tensor = found
        for dim, size in enumerate(tensor.shape):
            if piece.shape[dim] < size:
                raise InvalidConfigError(
                    f"Cannot inherit {type(target).__name__}.{name} of shape "
                    f"{tuple(tensor.shape)} from a tensor of shape {tuple(found.shape)}."
                )
            start = (piece.shape[dim] - size) // 2 if kernel and dim >= 2 else 0
            piece = piece.narrow(dim, start, size)
        tensor.copy_(piece)
