"""The zero-cost proxy contract, the data batch it reads, and the passes proxies share.

A zero-cost proxy scores a freshly initialised network from at most one mini-batch, without
training it (Abdelfattah, M. S., Mehrotra, A., Dudziak, L. and Lane, N. D. "Zero-Cost Proxies
for Lightweight NAS." ICLR 2021, arXiv:2101.08134). nasforge computes every proxy as
NAS-Bench-Suite-Zero does (Krishnakumar, A., White, C., Zela, A., Tu, R., Safari, M. and
Hutter, F. "NAS-Bench-Suite-Zero: Accelerating Research on Zero Cost Proxies." NeurIPS 2022
Datasets and Benchmarks, arXiv:2210.03230), so that its scores can be compared with the
published tables:

* one batch (64 training images by default), the network freshly initialised by PyTorch's
  default initialisation and in training mode (batch norm uses the batch's statistics);
* the per-weight proxies (``snip``, ``grasp``, ``fisher``, ``grad_norm``, ``plain``,
  ``synflow``, ``l2_norm``) sum their per-weight values over the weights of every
  ``Conv2d`` and ``Linear`` layer, and nothing else (batch-norm parameters do not count);
* the loss is the mean cross-entropy of the network's logits;
* a score that is not a finite number (an undefined correlation of a network whose output
  does not depend on its input, the logarithm of zero) is reported as
  :data:`UNDEFINED_SCORE` (``-1e8``), the value NAS-Bench-Suite-Zero stores for it, and a
  warning is logged. A proxy never returns NaN.

Every proxy treats larger as better; the sign of each is the reference's (``grasp`` and
``jacov`` carry their sign inside the definition).

Several proxies read the same forward and backward pass: ``snip``, ``grad_norm``, ``plain``
and ``fisher`` the gradient of the loss (:func:`loss_gradient_pass`); ``jacov``, ``epe_nas``
and ``nwot`` the gradient of the summed output with respect to the input and the ReLU codes
of the same forward pass (:func:`input_jacobian_pass`). :func:`nasforge.proxies.compute`
runs each pass once for all of them.
"""

from __future__ import annotations

import copy
import logging
import math
from abc import ABC
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nasforge.errors import InvalidConfigError, UnsupportedOperationError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "UNDEFINED_SCORE",
    "Batch",
    "Proxy",
    "input_jacobian_pass",
    "loss_gradient_pass",
    "weighted_layers",
]

logger = logging.getLogger(__name__)

#: The score of a proxy whose value is not a finite number (NAS-Bench-Suite-Zero's value).
UNDEFINED_SCORE: float = -1e8


@dataclass(frozen=True, eq=False)
class Batch:
    """One mini-batch a proxy reads.

    Attributes:
        inputs: Float tensor ``(N, C, H, W)``.
        targets: Int64 class labels ``(N,)`` in ``0..num_classes-1``.
        num_classes: Classes of the task (outputs of the network).
        source: Where the images came from (``"cifar10 train"``, ``"synthetic"``...).

    Raises:
        InvalidConfigError: Inputs that are not a 4-d floating-point tensor, targets of
            another length or outside ``0..num_classes-1``, fewer than 2 samples.

    Example:
        >>> import torch
        >>> b = Batch(torch.zeros(4, 3, 8, 8), torch.tensor([0, 1, 2, 1]), num_classes=3)
        >>> b.size, b.image_shape
        (4, (3, 8, 8))
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    num_classes: int
    source: str = ""

    def __post_init__(self) -> None:
        import torch

        x, y = self.inputs, self.targets
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InvalidConfigError(
                f"A proxy batch needs inputs as a floating-point tensor (N, C, H, W), got "
                f"{shape}; add the batch dimension with inputs.unsqueeze(0) or convert "
                "uint8 images with .float() / 255 and normalise them."
            )
        if x.shape[0] < 2:
            raise InvalidConfigError(
                f"A proxy batch needs at least 2 samples (correlations between samples), got "
                f"{x.shape[0]}."
            )
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != (x.shape[0],):
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise InvalidConfigError(
                f"A proxy batch of {x.shape[0]} inputs needs targets of shape "
                f"({x.shape[0]},), got {shape}."
            )
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise InvalidConfigError(f"num_classes must be an integer, got {self.num_classes!r}")
        if self.num_classes < 2:
            raise InvalidConfigError(f"num_classes must be at least 2, got {self.num_classes}.")
        if y.dtype != torch.int64 or int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise InvalidConfigError(
                f"Proxy batch targets must be int64 class indices in 0..{self.num_classes - 1}, "
                f"got {y.dtype} values {int(y.min())}..{int(y.max())}."
            )

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.inputs.shape[1:])

    def to(self, device: Any) -> Batch:
        """The same batch on ``device``."""
        return Batch(self.inputs.to(device), self.targets.to(device), self.num_classes, self.source)


class Proxy(ABC):  # noqa: B024 - subclasses override _score or reduce
    """A zero-cost proxy: :meth:`score` of a freshly initialised ``model`` on a ``batch``.

    Subclasses set :attr:`name` (the registry name), :attr:`data` and either override
    :meth:`_score` or set :attr:`shared_pass` and override :meth:`reduce`.

    Attributes:
        name: Registry name (also the metric name in studies).
        data: ``"images"``: reads the batch's images and labels; ``"shape"``: only the shape
            of one input (synflow feeds ones, zen Gaussian noise, flops counts); ``"none"``:
            only the weights.
        shared_pass: Name of the pass in :data:`PASSES` the proxy reads, or ``None``.
        requires: ``nas_role`` values of modules the network must have (``("attention",
            "mlp")`` for the transformer proxies); empty for proxies of any network.
    """

    name: ClassVar[str] = ""
    data: ClassVar[str] = "images"
    shared_pass: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()

    def score(self, model: nn.Module, batch: Batch, *, seed: int = 0) -> float:
        """The proxy's score of ``model`` on ``batch`` (``model`` itself is left unchanged).

        Args:
            model: A freshly initialised network whose output is ``(N, num_classes)`` logits.
            batch: The data (:class:`Batch`); a data-free proxy reads only its shape.
            seed: Seed of the proxy's own random draws (zen's Gaussian inputs and weights).

        Returns:
            A finite float, or :data:`UNDEFINED_SCORE` where the value is not defined.
        """
        check_model(model)
        if self.shared_pass is not None:
            result = PASSES[self.shared_pass](copy.deepcopy(model), batch)
            return self.finite(self.reduce(result, batch))
        return self.finite(self._score(copy.deepcopy(model), batch, seed))

    def _score(self, model: nn.Module, batch: Batch, seed: int) -> float:
        """The raw score; ``model`` is a private copy the proxy may change."""
        raise NotImplementedError

    def applies(self, model: nn.Module) -> bool:
        """Whether the proxy can score networks like ``model``: each role of
        :attr:`requires` is the ``nas_role`` of one of its modules (a proxy with other needs
        overrides this). Lists of proxies "for this space" keep those that apply."""
        roles = {getattr(m, "nas_role", None) for m in model.modules()}
        return all(role in roles for role in self.requires)

    def reduce(self, result: Mapping[str, Any], batch: Batch) -> float:
        """The raw score from the result of :attr:`shared_pass`."""
        raise NotImplementedError

    def finite(self, value: float) -> float:
        """``value`` as a float, or :data:`UNDEFINED_SCORE` (with a warning) if not finite."""
        value = float(value)
        if math.isfinite(value):
            return value
        logger.warning(
            "proxy %s is undefined for this network (got %s); reporting %g",
            self.name,
            value,
            UNDEFINED_SCORE,
        )
        return UNDEFINED_SCORE

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_model(model: Any) -> None:
    from torch import nn

    if not isinstance(model, nn.Module):
        raise UnsupportedOperationError(
            f"A proxy scores a torch.nn.Module, got {type(model).__name__}; build one with "
            "space.build(arch)."
        )


def weighted_layers(model: nn.Module) -> Iterator[nn.Conv2d | nn.Linear]:
    """The ``Conv2d`` and ``Linear`` layers of ``model``: the layers whose weights the
    per-weight proxies sum over (as the reference implementations)."""
    from torch import nn

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            yield module


# -- shared passes -------------------------------------------------------------------------------
def loss_gradient_pass(model: nn.Module, batch: Batch) -> dict[str, Any]:
    """One forward and backward pass of the mean cross-entropy on ``batch``.

    Returns, for each layer of :func:`weighted_layers` in order, its weight, the gradient of
    the loss with respect to it (``None`` when no gradient reaches it), and the Fisher
    information of its output channels (Theis et al. 2018, as Turner et al. 2020 use it):
    ``0.5 * mean_n (sum_hw a * dL/da)**2`` per channel ``a`` of the layer's output.
    ``model`` is changed (its gradients); pass a copy.
    """
    import torch.nn.functional as F

    model.train()
    model.zero_grad(set_to_none=True)
    layers = list(weighted_layers(model))
    fisher: dict[int, Any] = {}
    handles = []

    def hook_for(index: int) -> Callable[..., None]:
        def forward_hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            if not output.requires_grad:
                return
            act = output.detach()

            def grad_hook(grad: torch.Tensor) -> None:
                if act.dim() > 2:
                    g_nk = (act * grad).sum(dim=tuple(range(2, act.dim())))
                else:
                    g_nk = act * grad
                value = g_nk.pow(2).mean(0).mul(0.5)
                fisher[index] = value if index not in fisher else fisher[index] + value

            output.register_hook(grad_hook)

        return forward_hook

    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_hook(hook_for(i)))
    try:
        outputs = model(batch.inputs)
        check_logits(outputs, batch)
        loss = F.cross_entropy(outputs, batch.targets)
        if loss.requires_grad:
            loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    return {
        "layers": [
            (layer.weight.detach(), None if layer.weight.grad is None else layer.weight.grad)
            for layer in layers
        ],
        "fisher": [fisher.get(i) for i in range(len(layers))],
        "fan_in": [int(layer.weight[0].numel()) for layer in layers],
    }


def input_jacobian_pass(model: nn.Module, batch: Batch) -> dict[str, Any]:
    """One forward pass with the ReLU codes recorded, then the gradient of the summed output
    with respect to the input.

    Returns ``jacobian`` (``(N, C*H*W)`` float64 numpy array: the input gradient of each
    sample, as NASWOT's first version and EPE-NAS use it) and ``relu_kernel`` (the
    ``N x N`` float64 matrix NASWOT's second version takes the log-determinant of: for every
    ``nn.ReLU`` module, ``c c^T + (1 - c)(1 - c)^T`` summed, where ``c`` is the binary code
    ``input > 0`` of each sample). ``model`` is changed (its gradients); pass a copy.
    """
    import numpy as np
    import torch
    from torch import nn

    model.train()
    model.zero_grad(set_to_none=True)
    n = batch.size
    kernel = torch.zeros(n, n, dtype=torch.float64)
    handles = []

    def relu_hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        codes = (inputs[0].detach().reshape(n, -1) > 0).to(torch.float64).cpu()
        kernel.add_(codes @ codes.t()).add_((1.0 - codes) @ (1.0 - codes).t())

    for module in model.modules():
        if isinstance(module, nn.ReLU):
            handles.append(module.register_forward_hook(relu_hook))
    x = batch.inputs.detach().clone().requires_grad_(True)
    try:
        outputs = model(x)
    finally:
        for handle in handles:
            handle.remove()
    check_logits(outputs, batch)
    if outputs.requires_grad:
        outputs.backward(torch.ones_like(outputs))
    grad = x.grad if x.grad is not None else torch.zeros_like(x)
    jacobian = grad.detach().reshape(n, -1).to(torch.float64).cpu().numpy()
    return {
        "jacobian": np.asarray(jacobian),
        "relu_kernel": kernel.numpy(),
        "num_outputs": int(outputs.shape[-1]),
    }


def check_logits(outputs: Any, batch: Batch) -> None:
    import torch

    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 2:
        shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs)
        raise InvalidConfigError(
            f"A proxy needs a network whose output is logits (N, num_classes); got {shape}."
        )
    if outputs.shape[0] != batch.size:
        raise InvalidConfigError(
            f"The network returned {outputs.shape[0]} rows for a batch of {batch.size}."
        )
    if outputs.shape[1] != batch.num_classes:
        raise InvalidConfigError(
            f"The network has {outputs.shape[1]} outputs but the batch has "
            f"{batch.num_classes} classes; build it with num_classes={batch.num_classes}."
        )


#: The passes proxies share, by name.
PASSES: dict[str, Callable[[Any, Batch], dict[str, Any]]] = {
    "loss_gradient": loss_gradient_pass,
    "input_jacobian": input_jacobian_pass,
}
