"""Sparse weights: magnitude masks, masked layers, uniform magnitude pruning.

Unstructured weight sparsity as the pruning literature and DASS use it: a layer keeps the
weights of largest magnitude and sets the others to zero.

* **Magnitude masks.** Han, S., Pool, J., Tran, J. and Dally, W. J. "Learning both Weights
  and Connections for Efficient Neural Networks." NeurIPS 2015, arXiv:1506.02626: the
  connections of smallest absolute weight are removed. :func:`magnitude_mask` keeps the
  largest ``|w|`` of a tensor and zeroes exactly ``round(sparsity * n)`` of its ``n``
  entries (ties go to the lower flat index, so the mask is a function of the weights).
  The same operation is the Euclidean projection onto the set of tensors with at most
  ``n - round(sparsity * n)`` non-zeros (:func:`project_sparse`), the ``Z``-step of ADMM
  pruning (Zhang, T. et al. "A Systematic DNN Weight Pruning Framework using Alternating
  Direction Method of Multipliers." ECCV 2018, arXiv:1804.03294), which
  :mod:`nasforge.oneshot.dass` uses.
* **Masked layers.** :class:`MaskedConv2d` and :class:`MaskedLinear` hold a boolean ``mask``
  buffer and compute with ``weight * mask``, so a pruned weight neither acts nor receives a
  gradient; pruning also sets the pruned weights to zero, so that SGD and Adam (weight
  decay and momentum proportional to the weight or to past gradients, all zero there) keep
  them at zero when the optimiser starts after the pruning. :func:`apply_masks` re-zeroes
  them after a step of an optimiser that still holds momentum from before the pruning.
* **DASS's sparse layers** (Mousavi, H., Loni, M., Alibeigi, M. and Daneshtalab, M. "DASS:
  Differentiable Architecture Search for Sparse Neural Networks." ACM TECS 22(5s), 2023,
  arXiv:2207.06968: its parametric ``SparseConv`` and ``SparseLinear`` operations).
  :class:`SparseConv2d` and :class:`SparseLinear` are masked layers whose mask is *learned*:
  every weight has an importance score ``s`` and the layer computes with
  ``weight * 1[|s| among the largest (1 - sparsity) share]``; the scores receive the gradient
  of the masked weight straight through the top-k selection, as in HYDRA (Sehwag, V. et al.
  "HYDRA: Pruning Adversarially Robust Neural Networks." NeurIPS 2020, arXiv:2002.10509),
  the pruning method DASS builds on. :meth:`SparseConv2d.init_scores` is HYDRA's scaled
  initialisation ``s = sqrt(6 / fan_in) * w / max|w|``, so that before any score update the
  mask is the magnitude mask. The scores are frozen (``requires_grad=False``) unless
  :func:`learn_scores` turns them on: a frozen sparse layer behaves like a masked layer whose
  mask stays fixed while its weights train (HYDRA's fine-tuning). What the paper's text
  says of these layers could not be read here (only its abstract and introduction); the
  definition follows the authors' code (github.com/HERO-MDH/DASS-Differentiable-Architecture-
  Search-for-Sparse-Neural-Networks, ``DASS/layers.py``: ``SubnetConv``, ``SubnetLinear``).
* **Uniform magnitude pruning**, the baseline every sparse search must beat (Zhu, M. and
  Gupta, S. "To prune, or not to prune." arXiv:1710.01878; Gale, T., Elsen, E. and Hooker, S.
  "The State of Sparsity in Deep Neural Networks." arXiv:1902.09574, which finds it
  competitive with more elaborate schemes): :func:`prune_magnitude` prunes every convolution
  and linear layer to the same sparsity (``scope="layer"``) or ranks all their weights together
  (``scope="global"``); the first convolution and the last linear layer stay dense, as is
  usual in these studies.

The supported sparsity levels are :data:`SPARSITY_LEVELS` (and 0, dense);
:func:`check_sparsity` refuses the others, listing them.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten(),
    ...                     nn.LazyLinear(4))
    >>> _ = net(torch.zeros(1, 3, 8, 8))
    >>> sparse = prune_magnitude(net, 0.75)
    >>> type(sparse[2]).__name__, sparsity_of(sparse)
    ('MaskedConv2d', 0.75)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from nasforge.errors import InvalidConfigError
from nasforge.ops._layers import same_layer_args

__all__ = [
    "SPARSITY_LEVELS",
    "MaskedConv2d",
    "MaskedLinear",
    "SparseConv2d",
    "SparseLinear",
    "apply_masks",
    "check_sparsity",
    "end_layers",
    "learn_scores",
    "magnitude_mask",
    "masked_layers",
    "nonzero_params",
    "project_sparse",
    "prunable_layers",
    "prune_magnitude",
    "set_sparsity",
    "sparse_layers",
    "sparsify",
    "sparsity_of",
    "to_sparse",
]

#: The sparsity levels sparse operations and searches support (share of zero weights).
SPARSITY_LEVELS: tuple[float, ...] = (0.5, 0.75, 0.9)

_SCOPES = ("layer", "global")


def check_sparsity(sparsity: float) -> float:
    """``sparsity`` as a float when it is one of :data:`SPARSITY_LEVELS` or 0 (dense).

    Raises:
        InvalidConfigError: Any other value; the message lists the supported levels.
    """
    if not isinstance(sparsity, bool) and isinstance(sparsity, (int, float)):
        value = float(sparsity)
        for level in (0.0, *SPARSITY_LEVELS):
            if abs(value - level) < 1e-9:
                return level
    raise InvalidConfigError(
        f"Sparsity {sparsity!r} is not supported; choose one of "
        f"{', '.join(str(s) for s in SPARSITY_LEVELS)} (the share of zero weights), or 0.0 "
        "for a dense network."
    )


def _check_share(share: float) -> float:
    """A share of zero weights in [0, 1) (masked layers also hold the realised shares of
    global pruning, which are not levels)."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise InvalidConfigError(
            f"A layer's sparsity must be a number in [0, 1), got {share!r}; the supported "
            f"levels are {', '.join(str(s) for s in SPARSITY_LEVELS)}."
        )
    return float(share)


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The boolean mask that keeps the largest ``|weight|`` entries and drops exactly
    ``round(sparsity * weight.numel())`` of the smallest (ties: the lower flat index is
    dropped first). Same shape as ``weight``."""
    share = _check_share(sparsity)
    flat = weight.detach().abs().flatten()
    drop = round(share * flat.numel())
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=weight.device)
    if drop:
        order = torch.sort(flat, stable=True).indices
        keep[order[:drop]] = False
    return keep.view(weight.shape)


def project_sparse(tensor: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The closest tensor (in the Euclidean norm) to ``tensor`` with
    ``round(sparsity * n)`` zeros: ``tensor`` with its smallest-magnitude entries zeroed."""
    return tensor * magnitude_mask(tensor, sparsity)


class _Masked(nn.Module):
    """What both masked layers share: the ``mask`` buffer and its upkeep."""

    weight: torch.Tensor
    mask: torch.Tensor
    sparsity: float

    def _init_mask(self, sparsity: float) -> None:
        self.sparsity = _check_share(sparsity)
        self.register_buffer("mask", torch.ones_like(self.weight, dtype=torch.bool))

    def masked_weight(self) -> torch.Tensor:
        """The weight the layer computes with, ``weight * mask``."""
        return self.weight * self.mask

    def update_mask(self, sparsity: float | None = None) -> None:
        """Recompute the mask from the current weights' magnitudes at ``sparsity`` (default:
        the layer's own :attr:`sparsity`, which a given value replaces). The weights are
        left as they are: a dropped weight keeps its value and may come back when the mask
        is recomputed (see :meth:`prune`)."""
        if sparsity is not None:
            self.sparsity = _check_share(sparsity)
        with torch.no_grad():
            self.mask.copy_(magnitude_mask(self.weight, self.sparsity))

    def prune(self, sparsity: float | None = None) -> None:
        """:meth:`update_mask`, then set the dropped weights to zero (they stay zero under
        training: no gradient reaches them, and decay and momentum of zero are zero)."""
        self.update_mask(sparsity)
        self.apply_mask()

    def apply_mask(self) -> None:
        """Set the weights outside the mask to zero."""
        with torch.no_grad():
            self.weight.mul_(self.mask)


class MaskedConv2d(nn.Conv2d, _Masked):
    """A convolution that computes with ``weight * mask`` (see the module docstring).

    Args:
        Those of :class:`torch.nn.Conv2d`, and ``sparsity``: the share of weights the mask
        drops when it is computed (:meth:`update_mask`); the mask starts all ones.
    """

    def __init__(self, *args: Any, sparsity: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_mask(sparsity)

    @classmethod
    def from_dense(cls, conv: nn.Conv2d, sparsity: float = 0.0) -> MaskedConv2d:
        """A masked copy of ``conv`` (same weights), pruned to ``sparsity`` by magnitude."""
        out = cls(**same_layer_args(conv), sparsity=sparsity)
        _copy_weights(conv, out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self._conv_forward(x, self.masked_weight(), self.bias)
        return out


class MaskedLinear(nn.Linear, _Masked):
    """A linear layer that computes with ``weight * mask`` (see :class:`MaskedConv2d`)."""

    def __init__(self, *args: Any, sparsity: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_mask(sparsity)

    @classmethod
    def from_dense(cls, linear: nn.Linear, sparsity: float = 0.0) -> MaskedLinear:
        """A masked copy of ``linear`` (same weights), pruned to ``sparsity`` by magnitude."""
        out = cls(**same_layer_args(linear), sparsity=sparsity)
        _copy_weights(linear, out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.masked_weight(), self.bias)


def _copy_weights(source: nn.Conv2d | nn.Linear, target: MaskedConv2d | MaskedLinear) -> None:
    with torch.no_grad():
        source_weight = source.weight
        if isinstance(source, (MaskedConv2d, MaskedLinear)):
            source_weight = source.masked_weight()  # pruned weights stay pruned
        target.weight.copy_(source_weight)
        if source.bias is not None and target.bias is not None:
            target.bias.copy_(source.bias)
    target.train(source.training)
    if isinstance(source, _Masked):
        target.mask.copy_(source.mask)
    if target.sparsity > 0:
        target.prune()


class _TopScores(torch.autograd.Function):
    """The 0/1 mask of the largest scores; the gradient passes straight through."""

    @staticmethod
    def forward(ctx: Any, scores: torch.Tensor, sparsity: float) -> torch.Tensor:
        return magnitude_mask(scores, sparsity).to(scores.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class _Scored(_Masked):
    """What both DASS layers share: the importance scores and the mask they select."""

    scores: nn.Parameter

    def _init_scores(self) -> None:
        self.scores = nn.Parameter(torch.zeros_like(self.weight), requires_grad=False)
        self.init_scores()

    def init_scores(self) -> None:
        """HYDRA's scaled initialisation from the current weights,
        ``scores = sqrt(6 / fan_in) * weight / max|weight|``, and the mask it selects (the
        magnitude mask at :attr:`sparsity`)."""
        with torch.no_grad():
            weight = self.weight.detach()
            peak = float(weight.abs().max()) if weight.numel() else 0.0
            fan_in = weight[0].numel() if weight.numel() else 1
            scale = math.sqrt(6.0 / fan_in) / peak if peak > 0 else 0.0
            self.scores.copy_(weight * scale)
            self.mask.copy_(magnitude_mask(self.scores, self.sparsity))

    def masked_weight(self) -> torch.Tensor:
        """``weight * mask``: while the scores learn, the mask is selected from them anew
        (straight-through gradient to the scores); else the stored mask."""
        if self.scores.requires_grad and self.sparsity > 0:
            mask: torch.Tensor = _TopScores.apply(  # type: ignore[no-untyped-call]
                self.scores.abs(), self.sparsity
            )
            with torch.no_grad():
                self.mask.copy_(mask > 0)
            out: torch.Tensor = self.weight * mask
            return out
        return self.weight * self.mask

    def update_mask(self, sparsity: float | None = None) -> None:
        """Set :attr:`sparsity` (when given) and re-initialise the scores from the weights'
        magnitudes (:meth:`init_scores`): the mask becomes the magnitude mask."""
        if sparsity is not None:
            self.sparsity = _check_share(sparsity)
        self.init_scores()

    def learn(self, on: bool = True) -> None:
        """Let the scores train (``on``) or freeze them, fixing the mask they select."""
        self.scores.requires_grad_(on)
        if not on:
            with torch.no_grad():
                self.mask.copy_(magnitude_mask(self.scores.abs(), self.sparsity))


class SparseConv2d(_Scored, MaskedConv2d):
    """DASS's ``SparseConv``: a convolution with importance scores that select the weights it
    computes with (see the module docstring).

    Args:
        Those of :class:`MaskedConv2d`; the scores start at HYDRA's scaled initialisation of
        the initial weights, frozen.
    """

    def __init__(self, *args: Any, sparsity: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, sparsity=sparsity, **kwargs)
        self._init_scores()


class SparseLinear(_Scored, MaskedLinear):
    """DASS's ``SparseLinear``: the linear counterpart of :class:`SparseConv2d`."""

    def __init__(self, *args: Any, sparsity: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, sparsity=sparsity, **kwargs)
        self._init_scores()


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d | nn.Linear]]:
    """The convolutions and linear layers of ``model`` (masked ones included), with their
    module paths, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def end_layers(model: nn.Module) -> tuple[str | None, str | None]:
    """The module paths of the first convolution and of the last linear layer of ``model``
    (``None`` where it has none): the layers pruning leaves dense by default."""
    layers = prunable_layers(model)
    convs = [n for n, m in layers if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in layers if isinstance(m, nn.Linear)]
    return (convs[0] if convs else None), (linears[-1] if linears else None)


def masked_layers(model: nn.Module) -> list[tuple[str, MaskedConv2d | MaskedLinear]]:
    """The masked layers of ``model`` with their module paths, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (MaskedConv2d, MaskedLinear))]


def _masked_form(module: nn.Conv2d | nn.Linear, sparsity: float) -> MaskedConv2d | MaskedLinear:
    if isinstance(module, (MaskedConv2d, MaskedLinear)):
        module.apply_mask()  # a weight pruned before stays pruned
        if sparsity > 0:
            module.prune(sparsity)
        return module
    if isinstance(module, nn.Conv2d):
        return MaskedConv2d.from_dense(module, sparsity)
    return MaskedLinear.from_dense(module, sparsity)


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def sparsify(
    model: nn.Module, sparsity: float = 0.0, *, skip: Iterable[str] = ()
) -> list[tuple[str, MaskedConv2d | MaskedLinear]]:
    """Replace, **in place**, every convolution and linear layer of ``model`` (but those
    named in ``skip``) by its masked form pruned to ``sparsity`` (0: all-ones masks, to be
    pruned later); a layer already masked keeps its pruned weights pruned and is pruned
    again at ``sparsity`` when it is above 0. Returns the masked layers and their paths.

    Raises:
        InvalidConfigError: ``skip`` names a layer ``model`` does not have.
    """
    share = _check_share(sparsity)
    layers = prunable_layers(model)
    skipped = set(skip)
    unknown = skipped - {n for n, _ in model.named_modules()}
    if unknown:
        raise InvalidConfigError(
            f"Layers {sorted(unknown)} are not in the network; give module paths as "
            "model.named_modules() lists them."
        )
    out: list[tuple[str, MaskedConv2d | MaskedLinear]] = []
    for name, module in layers:
        if name in skipped:
            continue
        masked = _masked_form(module, share)
        if masked is not module:
            _replace(model, name, masked)
        out.append((name, masked))
    return out


def prune_magnitude(
    model: nn.Module,
    sparsity: float,
    *,
    scope: str = "layer",
    keep_first: bool = True,
    keep_last: bool = True,
    keep: Iterable[str] = (),
) -> nn.Module:
    """A copy of ``model`` with its convolutions and linear layers magnitude-pruned.

    Args:
        model: Any network (left as it is).
        sparsity: The share of zero weights, one of :data:`SPARSITY_LEVELS` (or 0).
        scope: ``"layer"``: every pruned layer loses the same share of its weights (uniform
            magnitude pruning); ``"global"``: the weights of all pruned layers are ranked
            together and the smallest ``sparsity`` share of them dropped.
        keep_first: Leave the first convolution dense.
        keep_last: Leave the last linear layer (the classifier) dense.
        keep: Module paths of further layers to leave dense.

    Returns:
        The pruned copy: each pruned layer a :class:`MaskedConv2d` or :class:`MaskedLinear`
        whose dropped weights are zero and stay zero under training.

    Raises:
        InvalidConfigError: An unsupported sparsity (the levels are listed), an unknown
            scope, or ``keep`` naming a layer the network does not have.
    """
    share = check_sparsity(sparsity)
    if scope not in _SCOPES:
        raise InvalidConfigError(f"Unknown pruning scope {scope!r}; choose 'layer' or 'global'.")
    out = copy.deepcopy(model)
    first, last = end_layers(out)
    dense = set(keep)
    if keep_first and first is not None:
        dense.add(first)
    if keep_last and last is not None:
        dense.add(last)
    pruned = sparsify(out, share if scope == "layer" else 0.0, skip=dense)
    if scope == "global" and pruned:
        scores = torch.cat([m.masked_weight().detach().abs().flatten() for _, m in pruned])
        keep_all = magnitude_mask(scores, share)
        start = 0
        for _, m in pruned:
            count = m.weight.numel()
            part = keep_all[start : start + count].view(m.weight.shape)
            start += count
            m.mask.copy_(part)
            m.sparsity = 1.0 - float(part.float().mean()) if count else 0.0
            m.apply_mask()
    return out


def apply_masks(model: nn.Module) -> None:
    """Set every masked layer's dropped weights to zero (after a step of an optimiser that
    could have moved them: one holding momentum from before the pruning)."""
    for _, module in masked_layers(model):
        module.apply_mask()


def _effective_weights(model: nn.Module) -> list[torch.Tensor]:
    masked = masked_layers(model)
    if masked:
        return [m.masked_weight().detach() for _, m in masked]
    return [m.weight.detach() for _, m in prunable_layers(model)]


def sparsity_of(model: nn.Module) -> float:
    """The share of zero weights among the prunable layers: the masked layers when the
    network has any (the layers a pruning kept dense are not counted), else all its
    convolutions and linear layers. 0.0 for a network without them."""
    weights = _effective_weights(model)
    total = sum(w.numel() for w in weights)
    if not total:
        return 0.0
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / total


def nonzero_params(model: nn.Module) -> int:
    """The non-zero parameters of ``model`` (every parameter: a masked layer's weight counted
    as ``weight * mask``), the storage a sparse format would keep."""
    masked = {id(m.weight): m for _, m in masked_layers(model)}
    count = 0
    for p in model.parameters():
        layer = masked.get(id(p))
        value = layer.masked_weight() if layer is not None else p
        count += int(torch.count_nonzero(value.detach()))
    return count


def sparse_layers(model: nn.Module) -> list[tuple[str, SparseConv2d | SparseLinear]]:
    """The DASS layers (:class:`SparseConv2d`, :class:`SparseLinear`) of ``model`` with their
    module paths, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (SparseConv2d, SparseLinear))]


def to_sparse(
    model: nn.Module, sparsity: float = 0.0, *, skip: Iterable[str] = ()
) -> list[tuple[str, SparseConv2d | SparseLinear]]:
    """Replace, **in place**, every convolution and linear layer of ``model`` (but those
    named in ``skip``) by its DASS form (:class:`SparseConv2d`, :class:`SparseLinear`: same
    weights, scores initialised from them) at ``sparsity``; a masked layer's dropped weights
    stay zero. Returns the sparse layers and their paths.

    Raises:
        InvalidConfigError: ``sparsity`` outside [0, 1), or ``skip`` naming a layer the
            network does not have.
    """
    share = _check_share(sparsity)
    skipped = set(skip)
    unknown = skipped - {n for n, _ in model.named_modules()}
    if unknown:
        raise InvalidConfigError(
            f"Layers {sorted(unknown)} are not in the network; give module paths as "
            "model.named_modules() lists them."
        )
    out: list[tuple[str, SparseConv2d | SparseLinear]] = []
    for name, module in prunable_layers(model):
        if name in skipped:
            continue
        if isinstance(module, (SparseConv2d, SparseLinear)):
            module.apply_mask()
            module.update_mask(share)
            out.append((name, module))
            continue
        sparse: SparseConv2d | SparseLinear
        if isinstance(module, nn.Conv2d):
            sparse = SparseConv2d.from_dense(module)  # type: ignore[assignment]
        else:
            sparse = SparseLinear.from_dense(module)  # type: ignore[assignment]
        sparse.update_mask(share)
        _replace(model, name, sparse)
        out.append((name, sparse))
    return out


def set_sparsity(model: nn.Module, sparsity: float) -> None:
    """Set every DASS layer of ``model`` to ``sparsity``, its scores re-initialised from its
    weights (the mask becomes the magnitude mask, HYDRA's start of pruning)."""
    share = _check_share(sparsity)
    for _, layer in sparse_layers(model):
        layer.update_mask(share)


def learn_scores(model: nn.Module, on: bool = True) -> None:
    """Let the scores of every DASS layer of ``model`` train, or freeze them (and the masks
    they select)."""
    for _, layer in sparse_layers(model):
        layer.learn(on)
