"""Parameters, multiply-accumulates and FLOPs of any PyTorch module.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode`, which follows the
operators a forward pass dispatches and charges ``2 * m * n * k`` FLOPs for each matrix
product (one multiplication and one addition per multiply-accumulate). What it counts:

* matrix products: ``mm``, ``addmm``, ``bmm``, ``baddbmm`` (so ``nn.Linear``, ``@``,
  ``torch.matmul`` and ``einsum`` that lower to them); the bias of ``addmm`` is not counted;
* convolutions of any dimension, transposed or grouped (``k*k*C_in/groups*C_out*H_out*W_out``
  multiply-accumulates per sample for a 2-d one); their bias is not counted;
* scaled dot-product attention (``Q @ K^T`` and ``attention @ V``).

What it does not count: pooling, normalisation (batch norm, layer norm), activations,
softmax, element-wise additions and multiplications (residual sums, the zero operation),
embedding look-ups, reshapes. These are cheap next to the products in convolutional networks,
and the NAS literature leaves them out too.

The NAS literature reports **multiply-accumulates** and calls them "FLOPs" (the "FLOPs" of
NAS-Bench-201, DARTS, ProxylessNAS and MobileNet tables are MACs). To keep the two apart,
:class:`Costs` has both, named for what they are: ``macs_M`` (multiply-accumulates, the
papers' "FLOPs") and ``flops_M`` (``2 * macs_M``, the floating-point operations of
``torch.utils.flop_counter``).

NAS-Bench-201 (Dong and Yang, ICLR 2020, arXiv:2001.00326) counts the MACs of convolutions
and linear layers plus one addition per output of the classifier's bias, so its release's
"FLOPs" column equals ``macs_M + num_classes / 1e6`` of the network built by
:class:`nasforge.ops.nb201.NB201Network`; the bundled table reports ``macs_M`` and
``flops_M = 2 * macs_M`` from it, the same quantities as here. Its ``params_M`` equals
:func:`count_params` / 1e6.

Counting runs on PyTorch's ``meta`` device by default: a copy of the module whose tensors have
shapes but no data, so the forward pass does no arithmetic and allocates no memory. A module
that cannot run there (data-dependent control flow, an operator without a meta kernel, a lazy
module) is counted on its own device instead.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from nasforge.errors import InvalidConfigError

__all__ = ["Costs", "count_flops", "count_params"]

logger = logging.getLogger(__name__)

#: Where :func:`count_flops` may run the forward pass.
DEVICES = ("meta", "cpu")


@dataclass(frozen=True)
class Costs:
    """What one forward pass of a module costs, in millions.

    Attributes:
        params_M: Parameters (``nn.Parameter`` elements, each shared one once; buffers such
            as batch-norm running statistics are not parameters).
        macs_M: Multiply-accumulates of convolutions, matrix products and attention, the
            quantity NAS papers call "FLOPs".
        flops_M: Floating-point operations as ``torch.utils.flop_counter`` counts them:
            ``2 * macs_M``.
    """

    params_M: float
    macs_M: float
    flops_M: float

    def as_metrics(self) -> dict[str, float]:
        """The three values as metrics: ``{"params_M": ..., "macs_M": ..., "flops_M": ...}``."""
        return asdict(self)


def count_params(
    module: nn.Module, *, trainable_only: bool = False, exclude: Iterable[str] = ()
) -> int:
    """The number of parameters of ``module``.

    A parameter shared by several submodules counts once. Buffers (batch-norm running
    statistics) are not parameters and do not count.

    Args:
        module: Any module.
        trainable_only: Count only parameters with ``requires_grad``.
        exclude: Names of submodules or parameters to leave out, as ``named_parameters``
            writes them, e.g. ``("auxiliary_head",)`` for a DARTS network, whose papers
            leave the auxiliary head out. A name excludes itself and everything under it
            (``"head"`` excludes ``head.weight`` and ``head.fc.bias``, not ``header.weight``).

    Returns:
        The number of parameter elements (not millions).

    Raises:
        InvalidConfigError: A name in ``exclude`` matches no parameter (a typo would
            otherwise silently count everything).

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
        >>> count_params(net)
        23
        >>> count_params(net, exclude=("1",))
        15
    """
    names = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    used = dict.fromkeys(names, False)
    total = 0
    for name, param in module.named_parameters():
        if trainable_only and not param.requires_grad:
            continue
        hit = [prefix for prefix in names if name == prefix or name.startswith(prefix + ".")]
        for prefix in hit:
            used[prefix] = True
        if not hit:
            total += param.numel()
    unused = [name for name, was_used in used.items() if not was_used]
    if unused:
        children = [name for name, _ in module.named_children()]
        raise InvalidConfigError(
            f"count_params(exclude=...): {unused!r} match no parameter of "
            f"{type(module).__name__}; give submodule or parameter names as named_parameters() "
            f"writes them (top-level submodules: {children or 'none'})."
        )
    return total


def count_flops(
    module: nn.Module,
    inputs: Sequence[int] | torch.Tensor | tuple[torch.Tensor, ...],
    *,
    device: str = "meta",
    exclude: Iterable[str] = (),
) -> Costs:
    """Parameters, MACs and FLOPs of one forward pass of ``module``.

    The pass runs in evaluation mode (batch norm uses its running statistics, dropout and
    auxiliary heads are off), under ``torch.no_grad``; the mode of every submodule is restored
    afterwards. The fast path of ``nn.MultiheadAttention`` is turned off and attention runs
    on PyTorch's reference ("math") kernel during the count, because the fused kernels are
    invisible to the counter. See the module docstring for what counts.

    Args:
        module: Any module whose ``forward`` takes the inputs positionally.
        inputs: The shape of one sample without the batch dimension, e.g. ``(3, 32, 32)``,
            counted for a batch of one (the per-image figure papers report); or example
            tensor(s) passed to ``forward`` as they are, counted for their batch size.
        device: ``"meta"`` (default): count on a data-less copy of the module, falling back
            to ``"cpu"`` where the module cannot run on the meta device. ``"cpu"``: run the
            module itself with real arithmetic, on the device its parameters are on (the
            CPU for a freshly built module).
        exclude: Submodule or parameter names left out of ``params_M`` (see
            :func:`count_params`); they do not change the MACs.

    Returns:
        The :class:`Costs` of the pass.

    Raises:
        InvalidConfigError: ``device`` is not ``"meta"`` or ``"cpu"``, the shape is not a
            sequence of positive integers, or the module fails on the input (usually a
            wrong shape; the message includes PyTorch's).

    Example:
        >>> from torch import nn
        >>> conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)  # 3*3*3*8 MACs per pixel
        >>> count_flops(conv, (3, 32, 32))
        Costs(params_M=0.000216, macs_M=0.221184, flops_M=0.442368)
    """
    if device not in DEVICES:
        raise InvalidConfigError(
            f"count_flops(device={device!r}): choose 'meta' (no arithmetic, the default) "
            f"or 'cpu' (run the module itself)."
        )
    args = _example_inputs(inputs)
    params = count_params(module, exclude=exclude)
    flops: int | None = None
    if device == "meta":
        try:
            flops = _count_on_meta(module, args)
        except Exception as err:  # any failure on meta: the real module will tell
            logger.debug(
                "counting %s on the meta device failed (%s); using its device",
                type(module).__name__,
                err,
            )
    if flops is None:
        flops = _count_in_place(module, args)
    return Costs(params_M=params / 1e6, macs_M=flops / 2 / 1e6, flops_M=flops / 1e6)


def _example_inputs(
    inputs: Sequence[int] | torch.Tensor | tuple[torch.Tensor, ...],
) -> tuple[Any, ...]:
    """Tensors to pass as they are, or a per-sample shape checked to be positive ints."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    items = tuple(inputs)
    if items and all(isinstance(item, torch.Tensor) for item in items):
        return items
    return check_shape(items, "count_flops")


def check_shape(shape: Sequence[Any], caller: str) -> tuple[int, ...]:
    """``shape`` as a tuple of positive ints, or an error saying what a shape is."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise InvalidConfigError(
            f"{caller}: the input shape must be the positive sizes of one sample without the "
            f"batch dimension, e.g. (3, 32, 32) for a CIFAR image; got {shape!r}."
        )
    return dims


def _count_on_meta(module: nn.Module, args: tuple[Any, ...]) -> int:
    """FLOPs of a forward pass of a data-less copy of ``module`` on the meta device."""
    memo: dict[int, Any] = {}
    for param in module.parameters():
        memo[id(param)] = nn.Parameter(
            torch.empty_like(param, device="meta"), requires_grad=param.requires_grad
        )
    for buffer in module.buffers():
        memo[id(buffer)] = torch.empty_like(buffer, device="meta")
    # the memo makes deepcopy reuse the meta tensors instead of copying the data
    twin = copy.deepcopy(module, memo).eval()
    if isinstance(args[0], int):
        meta_args: tuple[Any, ...] = (torch.zeros((1, *args), device="meta"),)
    else:
        meta_args = tuple(t.to("meta") for t in args)
    return _run_counted(twin, meta_args)


def _count_in_place(module: nn.Module, args: tuple[Any, ...]) -> int:
    """FLOPs of a forward pass of ``module`` itself, in evaluation mode, mode restored."""
    if isinstance(args[0], int):
        where = next(module.parameters(), torch.empty(0)).device
        args = (torch.zeros((1, *args), device=where),)
    with eval_mode(module):
        try:
            return _run_counted(module, args)
        except (RuntimeError, ValueError, TypeError, IndexError) as err:
            shapes = ", ".join(str(tuple(t.shape)) for t in args)
            raise InvalidConfigError(
                f"count_flops: {type(module).__name__} failed on inputs of shape {shapes} "
                f"(a shape is given without the batch dimension, e.g. (3, 32, 32)): {err}"
            ) from err


def _run_counted(module: nn.Module, args: tuple[Any, ...]) -> int:
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with (
            torch.no_grad(),
            sdpa_kernel(SDPBackend.MATH),
            FlopCounterMode(display=False) as counter,
        ):
            module(*args)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return int(counter.get_total_flops())


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in evaluation mode, then give every submodule its own mode back."""
    modes = [(sub, sub.training) for sub in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for sub, training in modes:
            sub.training = training
