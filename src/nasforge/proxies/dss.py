"""DSS: the synaptic diversity of multi-head attention plus the synaptic saliency of the MLPs.

Zhou, Q., Sheng, K., Zheng, X., Li, K., Sun, X., Tian, Y., Chen, J. and Ji, R. "Training-free
Transformer Architecture Search." CVPR 2022, arXiv:2203.12217, Sec. 3 (the DSS-indicator);
reference code decemberzhou/TF_TAS (``lib/training_free/indicators/dss.py``).

TF-TAS scores a freshly initialised vision transformer without data, module by module:

* **synaptic diversity** of each multi-head self-attention (MSA) module: for each weight
  matrix ``W`` of the module (the Q-K-V projection and the output projection),
  ``||dR/dW||_* * ||W||_*`` with ``||.||_*`` the nuclear norm (the sum of singular values,
  the convex surrogate of the rank the paper uses: a low-rank, collapsed attention scores
  low), summed over the matrices and the MSA modules;
* **synaptic saliency** of each MLP: ``sum |dR/dW * W|`` over the weights of its two linear
  layers (the saliency of SynFlow, Tanaka et al., NeurIPS 2020, arXiv:2006.05467), summed
  over the MLPs;
* **DSS** = synaptic diversity + synaptic saliency (unweighted sum, the paper's DSS-indicator).

``R`` is computed as SynFlow does and as the reference code does: every parameter and buffer
of a copy of the network is replaced by its absolute value (batch-norm layers, if any, pass
their input through), a single input of ones with the batch's image shape goes forward, and
``R`` is the sum of the outputs. nasforge runs this pass in double precision (the reference
in single precision; the ranking is the same, the sum cannot overflow).

The modules are found by their ``nas_role`` attribute (``"attention"``: a module with ``qkv``
and ``proj`` linear layers; ``"mlp"``: ``fc1`` and ``fc2``), as :mod:`nasforge.ops.vit` marks
them, so the proxies score any network built from those layers: vision transformers, the
language models built from the same blocks, and sub-networks extracted from a supernet (score
an extracted sub-network, not the supernet, whose layers hold more weights than the path
uses). A network without attention or without MLP modules is refused: these proxies need
transformer layers.

Where nasforge differs from the reference code: the code also adds the saliency of the
1000-class classifier to the indicator; the paper defines the two terms on the MSA and MLP
modules only, which nasforge follows. The two terms are also registered alone
(``synaptic_diversity``, ``synaptic_saliency``), as the paper ablates them; the
three share one forward and backward pass in :func:`nasforge.proxies.compute`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nasforge import proxies
from nasforge.errors import UnsupportedOperationError
from nasforge.proxies.base import PASSES, Batch, Proxy

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "DSS",
    "SynapticDiversity",
    "SynapticSaliency",
    "role_modules",
    "synaptic_pass",
    "synaptic_scores",
]

#: The linear layers of a module of each role whose weights the two terms read.
ROLE_LAYERS: dict[str, tuple[str, str]] = {"attention": ("qkv", "proj"), "mlp": ("fc1", "fc2")}


def role_modules(model: nn.Module, role: str) -> list[nn.Module]:
    """The modules of ``model`` whose ``nas_role`` is ``role``, in ``model.modules()`` order."""
    return [m for m in model.modules() if getattr(m, "nas_role", None) == role]


def _role_linears(model: nn.Module, role: str) -> list[nn.Linear]:
    """The linear layers (``ROLE_LAYERS[role]``) of every module of ``role``."""
    from torch import nn

    modules = role_modules(model, role)
    if not modules:
        raise UnsupportedOperationError(
            "The TF-TAS proxies (dss, synaptic_diversity, synaptic_saliency) need transformer "
            f"layers: {type(model).__name__} has no module "
            f"with nas_role={role!r} (multi-head attention with .qkv/.proj, MLP with "
            ".fc1/.fc2, as nasforge.ops.vit builds them). Score a vision transformer or a "
            "language model (of a supernet, the sub-network supernet.extract(arch)), or use "
            "a proxy for any network (synflow, snip, params)."
        )
    layers = []
    for module in modules:
        for attr in ROLE_LAYERS[role]:
            layer = getattr(module, attr, None)
            if not isinstance(layer, nn.Linear):
                raise UnsupportedOperationError(
                    f"The {role} module {type(module).__name__} has no linear layer "
                    f"{attr!r}; a module with nas_role={role!r} needs "
                    f"{' and '.join(ROLE_LAYERS[role])} as nn.Linear layers."
                )
            layers.append(layer)
    return layers


def synaptic_scores(model: nn.Module, example: torch.Tensor) -> dict[str, float]:
    """Synaptic diversity of the attention and synaptic saliency of the MLPs of ``model``.

    Args:
        model: A network with ``nas_role`` attention and MLP modules; it is changed (its
            weights made absolute, its gradients set): pass a copy.
        example: An input of the network with its batch dimension. A floating-point input
            (images) is replaced by one input of ones of the same shape, as the paper does;
            integer token ids (a language model) have no such neutral value, so the first
            sequence of ``example`` itself is used.

    Returns:
        ``{"synaptic_diversity": ..., "synaptic_saliency": ..., "dss": their sum}``.

    Raises:
        UnsupportedOperationError: No attention or no MLP module (not a transformer).
    """
    import torch
    from torch import nn

    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, child_name, nn.Identity())
    attention = _role_linears(model, "attention")
    mlp = _role_linears(model, "mlp")
    model.double().eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    model.zero_grad(set_to_none=True)
    if example.is_floating_point():
        inputs = torch.ones((1, *example.shape[1:]), dtype=torch.float64, device=example.device)
    else:
        inputs = example[:1]
    output = model(inputs)
    if output.requires_grad:
        output.sum().backward()
    diversity = 0.0
    for layer in attention:
        grad = layer.weight.grad
        if grad is not None:
            weight = layer.weight.detach()
            diversity += float(
                torch.linalg.matrix_norm(grad, ord="nuc")
                * torch.linalg.matrix_norm(weight, ord="nuc")
            )
    saliency = 0.0
    for layer in mlp:
        grad = layer.weight.grad
        if grad is not None:
            saliency += float((grad * layer.weight.detach()).abs().sum())
    return {
        "synaptic_diversity": diversity,
        "synaptic_saliency": saliency,
        "dss": diversity + saliency,
    }


def synaptic_pass(model: nn.Module, batch: Batch) -> dict[str, Any]:
    """The pass the three TF-TAS proxies share: :func:`synaptic_scores` on the batch's image
    shape (``model`` is changed; pass a copy)."""
    return synaptic_scores(model, batch.inputs)


PASSES.setdefault("synaptic", synaptic_pass)


class _Synaptic(Proxy):
    data = "shape"
    shared_pass = "synaptic"
    #: ``nas_role`` values of the modules the network must have.
    requires = ("attention", "mlp")

    def reduce(self, result: Mapping[str, Any], batch: Batch) -> float:
        return float(result[self.name])


@proxies.register("dss")
class DSS(_Synaptic):
    """TF-TAS's DSS-indicator: synaptic diversity of the attention plus synaptic saliency of
    the MLPs (see the module docstring); data-free, larger is better.

    Example:
        >>> import torch
        >>> from nasforge.ops.vit import LayerConfig, ViTConfig, VisionTransformer
        >>> net = VisionTransformer(ViTConfig(8, 4, 8, (LayerConfig(2, 8, 16),), num_classes=3))
        >>> b = Batch(torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]), num_classes=3)
        >>> parts = [proxies.create(n).score(net, b) for n in ("synaptic-diversity",
        ...          "synaptic-saliency", "dss")]
        >>> abs(parts[0] + parts[1] - parts[2]) < 1e-6 * parts[2]
        True
    """

    name = "dss"


@proxies.register("synaptic_diversity")
class SynapticDiversity(_Synaptic):
    """The first term of DSS: ``sum ||dR/dW||_* ||W||_*`` over the Q-K-V and output
    projections of every multi-head attention (see the module docstring)."""

    name = "synaptic_diversity"


@proxies.register("synaptic_saliency")
class SynapticSaliency(_Synaptic):
    """The second term of DSS: ``sum |dR/dW * W|`` over the two linear layers of every MLP
    (see the module docstring)."""

    name = "synaptic_saliency"
