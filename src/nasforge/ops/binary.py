"""Binary operations: sign activations, binary weights with real scaling factors, real shortcuts.

A binary convolution computes with one-bit activations and one-bit weights. The pieces and
where they come from:

* **Sign with the straight-through estimator.** Hubara, I., Courbariaux, M., Soudry, D.,
  El-Yaniv, R. and Bengio, Y. "Binarized Neural Networks." NeurIPS 2016, arXiv:1602.02830,
  Section 1.1 and Eq. (4): the forward pass is ``sign(x)`` (+1 for ``x >= 0``, -1 otherwise),
  the backward pass lets the gradient through where ``|x| <= 1`` and cancels it elsewhere
  (the gradient of ``hardtanh``).
* **Binary weights with per-channel real scaling factors.** Rastegari, M., Ordonez, V.,
  Redmon, J. and Farhadi, A. "XNOR-Net: ImageNet Classification Using Binary Convolutional
  Neural Networks." ECCV 2016, arXiv:1603.05279, Section 3.1: ``W ~ alpha * sign(W)`` with
  ``alpha`` the mean absolute value of the output channel's weights (the least-squares
  optimum). As Bi-Real Net trains them (Liu, Z. et al., "Bi-Real Net", ECCV 2018,
  arXiv:1808.00278, Section 3.3 and its released code), ``alpha`` is a constant of the
  backward pass and the gradient reaches the real weights through the straight-through
  estimator of ``clamp(W, -1, 1)``.
* **Real-valued shortcuts** around every binary convolution (Bi-Real Net, Section 3.1): the
  real input is added to the batch-normalised binary convolution's output, so that the
  information lost by the sign survives; where the convolution has a stride or changes the
  width, the shortcut is a 2x2 average pooling followed by a real 1x1 convolution and batch
  norm (Bi-Real Net's downsampling shortcut).

:func:`binarize` turns a real network into its binary form, layer by layer, and refuses
(naming the layer) a network with an operation that has no binary form.

Each binary layer has two switches, ``binary_activations`` and ``binary_weights``, so that a
search can binarise the activations first and the weights later (BATS's staged search,
:mod:`nasforge.oneshot.bats`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.ops._layers import NO_WEIGHTED_FORM, same_layer_args

__all__ = [
    "NO_BINARY_FORM",
    "BinaryActivation",
    "BinaryConv2d",
    "BinaryConvBN",
    "BinaryLinear",
    "SignSTE",
    "binarize",
    "binary_layers",
    "binary_weight",
    "set_binary",
    "sign_ste",
]


class SignSTE(torch.autograd.Function):
    """``sign`` forward (+1 at zero), the straight-through estimator backward: the incoming
    gradient where ``|x| <= 1``, zero elsewhere (Hubara et al. 2016, Eq. 4)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        out: torch.Tensor = grad * (x.abs() <= 1).to(grad.dtype)
        return out


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """+1 where ``x >= 0``, -1 elsewhere; gradient ``1{|x| <= 1}`` (straight-through).

    Example:
        >>> import torch
        >>> x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
        >>> y = sign_ste(x); y.sum().backward()
        >>> y.tolist(), x.grad.tolist()
        ([-1.0, -1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0, 0.0])
    """
    out: torch.Tensor = SignSTE.apply(x)  # type: ignore[no-untyped-call]
    return out


def binary_weight(weight: torch.Tensor) -> torch.Tensor:
    """``alpha * sign(W)`` per output channel, ``alpha = mean |W|`` over the channel's weights.

    Forward: the scaled signs. Backward: the gradient reaches ``W`` through
    ``clamp(W, -1, 1)`` (zero where ``|W| > 1``); ``alpha`` is a constant of the backward
    pass (Bi-Real Net's training rule).
    """
    dims = tuple(range(1, weight.dim()))
    alpha = weight.detach().abs().mean(dim=dims, keepdim=True)
    signs = torch.where(weight.detach() >= 0, 1.0, -1.0).to(weight.dtype)
    clipped = weight.clamp(-1.0, 1.0)
    return (alpha * signs).detach() + clipped - clipped.detach()


class BinaryActivation(nn.Module):
    """The sign of its input with the straight-through estimator (identity when switched off)."""

    def __init__(self, enabled: bool = True) -> None:
        super().__init__()
        self.binary_activations = enabled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sign_ste(x) if self.binary_activations else x

    def extra_repr(self) -> str:
        return f"binary_activations={self.binary_activations}"


class BinaryConv2d(nn.Conv2d):
    """A convolution of the signs of its input with scaled signs of its weights.

    The arguments are :class:`torch.nn.Conv2d`'s. ``binary_activations`` and
    ``binary_weights`` (both on by default) switch each half of the binarisation; with both
    off the layer is the real convolution.
    """

    binary_activations: bool = True
    binary_weights: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = sign_ste(x) if self.binary_activations else x
        weight = binary_weight(self.weight) if self.binary_weights else self.weight
        out: torch.Tensor = self._conv_forward(inputs, weight, self.bias)
        return out

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> BinaryConv2d:
        """A binary convolution sharing ``conv``'s settings and holding a copy of its weights."""
        out = cls(**same_layer_args(conv))
        out.load_state_dict(conv.state_dict())
        return out

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, "  # type: ignore[no-untyped-call]
            f"binary_activations={self.binary_activations}, "
            f"binary_weights={self.binary_weights}"
        )


class BinaryLinear(nn.Linear):
    """A linear layer on the signs of its input with scaled signs of its weights (per output
    unit); the switches are :class:`BinaryConv2d`'s."""

    binary_activations: bool = True
    binary_weights: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = sign_ste(x) if self.binary_activations else x
        weight = binary_weight(self.weight) if self.binary_weights else self.weight
        return nn.functional.linear(inputs, weight, self.bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> BinaryLinear:
        """A binary linear layer holding a copy of ``linear``'s weights."""
        out = cls(**same_layer_args(linear))
        out.load_state_dict(linear.state_dict())
        return out

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, binary_activations={self.binary_activations}, "
            f"binary_weights={self.binary_weights}"
        )


class BinaryConvBN(nn.Module):
    """Sign, binary convolution, batch norm, plus a real-valued shortcut (Bi-Real Net).

    ``y = BN(BinaryConv(sign(x))) + shortcut(x)``: the shortcut is the identity when the
    shape is kept, and a 2x2 average pooling (for a stride) followed by a real 1x1
    convolution and batch norm (for a change of width) otherwise. With ``shortcut=False``
    the block is the plain binary convolution and batch norm.

    Args:
        c_in, c_out, kernel, stride, padding, dilation, groups: The convolution's.
        shortcut: Add the real-valued shortcut.
        affine: Learnable batch-norm scale and shift.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        *,
        shortcut: bool = True,
        affine: bool = True,
    ) -> None:
        super().__init__()
        if c_in % groups or c_out % groups:
            raise InvalidConfigError(
                f"A binary convolution with {groups} groups needs channel counts divisible by "
                f"{groups}, got {c_in} -> {c_out}; pick a group count that divides both."
            )
        self.conv = BinaryConv2d(
            c_in,
            c_out,
            kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(c_out, affine=affine)
        self.shortcut: nn.Module | None = None
        if shortcut:
            if stride == 1 and c_in == c_out:
                self.shortcut = nn.Identity()
            else:
                parts: list[nn.Module] = []
                if stride != 1:
                    parts.append(
                        nn.AvgPool2d(stride, stride=stride, ceil_mode=True, count_include_pad=False)
                    )
                if c_in != c_out:
                    parts += [
                        nn.Conv2d(c_in, c_out, 1, bias=False),
                        nn.BatchNorm2d(c_out, affine=affine),
                    ]
                self.shortcut = nn.Sequential(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.bn(self.conv(x))
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return y


#: Module types that have no binary form: :func:`binarize` refuses networks holding them.
NO_BINARY_FORM: tuple[type[nn.Module], ...] = NO_WEIGHTED_FORM

#: Parameterised module types that stay real in a binary network (normalisation, PReLU).
_KEEP_REAL: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.PReLU,
)


def _no_binary_form(name: str, module: nn.Module) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"Layer {name!r} ({type(module).__name__}) has no binary form; binary networks are "
        "built from 2-D convolutions and linear layers (with normalisation, pooling and "
        "activations kept real). Choose a space without this operation, or leave the layer "
        "real by naming it in binarize(..., keep=...)."
    )


def binarize(
    model: nn.Module,
    *,
    keep_first: bool = True,
    keep_last: bool = True,
    keep: tuple[str, ...] = (),
    drop_relu: bool = True,
) -> nn.Module:
    """The binary form of ``model``: every ``Conv2d`` and ``Linear`` replaced by its binary
    layer with the same weights (a new module; ``model`` is left as it is).

    A ReLU right before a binary layer (in module order, the order of a sequential block
    such as NAS-Bench-201's and DARTS's ReLU-convolution-batch-norm) would make the sign
    constant (+1 everywhere); with ``drop_relu`` (default) it becomes the identity, the sign
    being the layer's non-linearity as in Bi-Real Net.

    As in binary-network practice (XNOR-Net, Bi-Real Net, BATS) the first convolution and
    the last linear layer stay real (``keep_first``, ``keep_last``); ``keep`` names more
    layers (module paths) to leave real.

    Raises:
        UnsupportedOperationError: A layer has no binary form (an attention, a recurrent or
            embedding layer, a 1-D/3-D or transposed convolution, a module whose class says
            ``binary_form = False``, or a module with parameters of another kind): its path
            and type are named.
    """
    import copy

    out = copy.deepcopy(model)
    named = list(out.named_modules())
    weighted = [n for n, m in named if type(m) in (nn.Conv2d, nn.Linear)]
    real = set(keep)
    convs = [n for n, m in named if type(m) is nn.Conv2d]
    linears = [n for n, m in named if type(m) is nn.Linear]
    if keep_first and convs:
        real.add(convs[0])
    if keep_last and linears:
        real.add(linears[-1])
    unknown = real - {n for n, _ in named}
    if unknown:
        raise InvalidConfigError(
            f"binarize(keep=...) names layers the network does not have: {sorted(unknown)}; "
            "give module paths as model.named_modules() lists them."
        )
    for name, module in named:
        if name in real:
            continue
        if isinstance(module, NO_BINARY_FORM) or getattr(module, "binary_form", True) is False:
            raise _no_binary_form(name, module)
        if name in weighted or isinstance(module, (BinaryConv2d, BinaryLinear, *_KEEP_REAL)):
            continue
        own = [p for p, _ in module.named_parameters(recurse=False)]
        if own:
            raise _no_binary_form(name, module)
    for name in weighted:
        if name in real:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        module = getattr(parent, child)
        replacement = (
            BinaryConv2d.from_conv(module)
            if isinstance(module, nn.Conv2d)
            else BinaryLinear.from_linear(module)
        )
        replacement.train(module.training)
        setattr(parent, child, replacement)
    if drop_relu:
        _drop_relus_before_signs(out, {n for n in weighted if n not in real})
    return out


#: Activations whose output is never negative: a sign right after one is constant.
_NON_NEGATIVE = (nn.ReLU, nn.ReLU6)


def _drop_relus_before_signs(model: nn.Module, binary: set[str]) -> None:
    """Replace by the identity each ReLU that comes right before a binary layer in module
    order (the order of data in a sequential block): the sign of a ReLU's output is +1
    everywhere, so the binary layer would see a constant."""
    leaves = [
        (name, module)
        for name, module in model.named_modules()
        if name and not any(True for _ in module.children())
    ]
    for (name, module), (following, _) in itertools.pairwise(leaves):
        if isinstance(module, _NON_NEGATIVE) and following in binary:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, nn.Identity())


def binary_layers(model: nn.Module) -> Iterator[tuple[str, BinaryConv2d | BinaryLinear]]:
    """The binary layers of ``model`` with their module paths, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, (BinaryConv2d, BinaryLinear)):
            yield name, module


def set_binary(
    model: nn.Module, *, activations: bool | None = None, weights: bool | None = None
) -> None:
    """Switch the binarisation of every binary layer and activation of ``model``
    (``None`` leaves a half as it is)."""
    for module in model.modules():
        if activations is not None and isinstance(
            module, (BinaryConv2d, BinaryLinear, BinaryActivation)
        ):
            module.binary_activations = activations
        if weights is not None and isinstance(module, (BinaryConv2d, BinaryLinear)):
            module.binary_weights = weights
