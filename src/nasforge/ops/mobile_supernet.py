"""One-shot building blocks for mobile (MBConv) spaces: ProxylessNAS's binarized paths and
FBNet's Gumbel-softmax mixture, with their latency terms and losses.

A mixed layer holds the candidate blocks of one searchable layer (any ``nn.Module`` that maps
the layer's input to its output, e.g. :class:`nasforge.ops.mobile.MBConv` built by
:func:`nasforge.ops.mobile.build_layer`). As in :mod:`nasforge.ops.supernet`, the layers hold
*no* architecture parameters: the one-shot method owns them (one row of logits per layer) and
passes, on every forward, what the row stands for; the functions of this module turn a row
into that (:func:`binarize`, :func:`gumbel_softmax`) and into the latency terms
(:func:`expected_latency`) and losses of the papers. Single-Path NAS's superkernel, which
has no candidates to mix, is in :mod:`nasforge.ops.superkernel`.

**ProxylessNAS** (Cai, H., Zhu, L. and Han, S. "ProxylessNAS: Direct Neural Architecture
Search on Target Task and Hardware." ICLR 2019, arXiv:1812.00332, Sections 3.2-3.3).
:class:`BinarizedMixedLayer` computes ``sum_i g_i o_i(x)`` with binary gates ``g`` that open
one path, sampled from ``p = softmax(alpha)``, so only that path runs and keeps activations.
The architecture gradient is the paper's ``dL/dalpha_i = sum_j dL/dg_j * dp_j/dalpha_i =
sum_j dL/dg_j p_j (delta_ij - p_i)`` restricted, to save memory, to *two* paths sampled by a
multinomial over ``p`` without replacement, whose probabilities are renormalised over the pair
(the ``"two"`` binary mode of the authors' code, ``search/modules/mix_op.py``): one of the two
is the active path (drawn from the renormalised pair), the other is run without gradient only
to give ``dL/dg`` of its gate. The gates are ``onehot + (p - p.detach())`` over the pair, so
autograd yields exactly that formula and only the two sampled ``alpha`` receive gradient;
after the architecture optimiser's step, :func:`rescale_sampled` shifts the two so that their
``logsumexp`` is unchanged and the unsampled paths keep their probabilities (the paper's
"rescale the value of architecture parameters of sampled paths"). The latency term is
``E[LAT] = sum_i p_i F(o_i)`` with ``F`` a per-candidate latency table
(:func:`expected_latency`), differentiable in ``alpha`` with ``dE[LAT]/dp_i = F(o_i)``; the
loss is the paper's ``CE + lambda * E[LAT]`` (Section 3.3; weight decay left to the optimiser)
or the two forms of the authors' code, ``add#linear`` ``CE + lambda (E[LAT] - T) / T`` and
``mul#log`` ``alpha CE (log E[LAT] / log T)^beta`` (:func:`proxyless_loss`).

Where this differs from the authors' code: the authors' expected latency uses, in the
``"two"`` mode, the renormalised probabilities of the sampled pair (zero elsewhere); this
module's :attr:`BinaryGate.probs` is that vector, and :func:`expected_latency` takes either
it or the full ``softmax(alpha)`` of the paper's formula. The authors skip the architecture
update when the active path is the zero operation; here the gradient is applied as computed.

**FBNet** (Wu, B., Dai, X., Zhang, P., Wang, Y., Sun, F., Wu, Y., Tian, Y., Vajda, P., Jia, Y.
and Keutzer, K. "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural
Architecture Search." CVPR 2019, arXiv:1812.03443, Sections 3.2-3.3).
:class:`GumbelMixedLayer` computes ``sum_i m_i b_i(x)`` over every candidate with ``m =
softmax((theta + g) / tau)``, ``g`` Gumbel noise (:func:`gumbel_softmax`); the temperature
starts at 5.0 and is multiplied by ``exp(-0.045)`` every epoch (:func:`fbnet_temperature`).
The network's latency is ``LAT(a) = sum_l sum_i m_{l,i} LAT(b_{l,i})``
(:func:`expected_latency` with the Gumbel weights) and the loss
``CE(a, w_a) * alpha * log(LAT(a))^beta`` with ``alpha = 0.2``, ``beta = 0.6`` (:func:`fbnet_loss`).

Derivation: :func:`derive_index` takes the argmax of each row (ties to the lower index), and
``layer.extract(i)`` returns candidate ``i`` as a stand-alone module whose output equals the
layer's one-path output.

Example:
    >>> import torch
    >>> from torch import nn
    >>> layer = BinarizedMixedLayer([nn.Conv2d(4, 4, 3, padding=1), nn.Identity()])
    >>> alpha = torch.zeros(2, requires_grad=True)
    >>> gate = binarize(alpha, torch.Generator().manual_seed(0))
    >>> out = layer(torch.randn(1, 4, 8, 8), gate)
    >>> sorted(gate.sampled)
    [0, 1]
    >>> expected_latency(alpha.softmax(-1), torch.tensor([3.0, 1.0])).item()
    2.0
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nasforge.errors import InvalidConfigError

__all__ = [
    "FBNET_TAU_DECAY",
    "BinarizedMixedLayer",
    "BinaryGate",
    "GumbelMixedLayer",
    "binarize",
    "derive_index",
    "expected_latency",
    "fbnet_loss",
    "fbnet_temperature",
    "gumbel_softmax",
    "proxyless_loss",
    "rescale_sampled",
]

#: FBNet's temperature decay per epoch (Section 4.1: ``tau`` starts at 5.0, times ``exp(-0.045)``).
FBNET_TAU_DECAY = math.exp(-0.045)


def _check_row(alpha: torch.Tensor, what: str) -> None:
    if not isinstance(alpha, torch.Tensor) or alpha.dim() != 1 or alpha.numel() < 1:
        got = tuple(alpha.shape) if isinstance(alpha, torch.Tensor) else type(alpha).__name__
        raise InvalidConfigError(
            f"{what} must be a 1-D tensor with one logit per candidate, got {got}; pass one "
            "row of the architecture parameters at a time."
        )


class _CandidateLayer(nn.Module):
    """The candidates of one searchable layer (shared by the two mixed layers)."""

    def __init__(self, candidates: Sequence[nn.Module], names: Sequence[str] | None) -> None:
        super().__init__()
        candidates = list(candidates)
        if not candidates or not all(isinstance(c, nn.Module) for c in candidates):
            raise InvalidConfigError(
                "A mixed layer needs a non-empty list of candidate nn.Modules, got "
                f"{[type(c).__name__ for c in candidates]}."
            )
        if names is None:
            names = [f"candidate{i}" for i in range(len(candidates))]
        if len(names) != len(candidates):
            raise InvalidConfigError(
                f"Got {len(names)} names for {len(candidates)} candidates; give one each."
            )
        self.candidates = nn.ModuleList(candidates)
        self.names = tuple(names)

    def __len__(self) -> int:
        return len(self.candidates)

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self):
            raise InvalidConfigError(
                f"Candidate index must be an integer in [0, {len(self) - 1}], got {index!r}."
            )
        return index

    def extract(self, index: int) -> nn.Module:
        """Candidate ``index`` as a stand-alone module (a copy with the current weights, in
        the layer's train/eval mode): its output equals the layer's output along that path."""
        module = copy.deepcopy(self.candidates[self._index(index)])
        module.train(self.training)
        return module


# -- ProxylessNAS ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BinaryGate:
    """ProxylessNAS's binary gates of one layer for one step (made by :func:`binarize`).

    Attributes:
        active: The path that runs (gate 1).
        inactive: The second sampled path (gate 0), run without gradient for ``dL/dg``;
            ``None`` in the one-path mode (weight step).
        weights: The gates, shape ``(N,)``: value 1 on ``active`` and 0 elsewhere, with the
            gradient of the pair's renormalised softmax on the two sampled entries (``None``
            in the one-path mode).
        probs: The pair's renormalised probabilities at the sampled entries, 0 elsewhere
            (differentiable in ``alpha``; the authors' expected latency in ``"two"`` mode).
        before: The two sampled logits before the step, for :func:`rescale_sampled`.
    """

    active: int
    inactive: int | None = None
    weights: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    before: tuple[float, float] | None = None

    @property
    def sampled(self) -> tuple[int, ...]:
        """The sampled paths (active first)."""
        return (self.active,) if self.inactive is None else (self.active, self.inactive)


def binarize(alpha: torch.Tensor, generator: torch.Generator, two_paths: bool = True) -> BinaryGate:
    """Sample ProxylessNAS's binary gates of one layer from ``p = softmax(alpha)``.

    With ``two_paths`` (the architecture step), two paths are drawn by a multinomial over
    ``p`` without replacement, their probabilities renormalised (``softmax`` of their two
    logits), and the active one drawn from that pair; the gates carry the pair's softmax
    gradient (see the module docstring). Without (the weight step), one path is drawn from
    ``p`` and runs alone, with no gates.

    Args:
        alpha: The layer's architecture logits, shape ``(N,)``.
        generator: A CPU ``torch.Generator`` (the search's), the only source of randomness.
        two_paths: Sample the pair of the architecture step (``False``: one path).

    Raises:
        InvalidConfigError: ``alpha`` is not a non-empty 1-D tensor, or has fewer than two
            entries with ``two_paths``.
    """
    _check_row(alpha, "alpha")
    probs = alpha.detach().float().cpu().softmax(dim=-1)
    if not two_paths:
        return BinaryGate(active=int(torch.multinomial(probs, 1, generator=generator)))
    if alpha.numel() < 2:
        raise InvalidConfigError(
            "Two-path binarization needs at least two candidates; use two_paths=False."
        )
    # a floor keeps two categories drawable when softmax underflows for extreme logits
    pair = torch.multinomial(probs.clamp_min(1e-30), 2, replacement=False, generator=generator)
    pair_probs = alpha[pair.to(alpha.device)].softmax(dim=-1)
    first = int(torch.multinomial(pair_probs.detach().float().cpu(), 1, generator=generator))
    onehot = torch.zeros_like(pair_probs)
    onehot[first] = 1.0
    straight = onehot + (pair_probs - pair_probs.detach())  # exactly 0 or 1 in value
    index = pair.to(alpha.device)
    weights = torch.zeros_like(alpha).scatter(0, index, straight)
    full_probs = torch.zeros_like(alpha).scatter(0, index, pair_probs)
    a, b = (int(i) for i in pair.tolist())
    before = (float(alpha.detach()[a]), float(alpha.detach()[b]))
    active, inactive = (a, b) if first == 0 else (b, a)
    if first == 1:
        before = (before[1], before[0])
    return BinaryGate(active, inactive, weights, full_probs, before)


def rescale_sampled(alpha: torch.Tensor, gate: BinaryGate) -> None:
    """After the architecture optimiser's step, shift the two sampled logits of ``alpha`` by
    one offset so that their ``logsumexp`` is what it was before the step: the probabilities
    of the unsampled paths stay as they were (ProxylessNAS, Section 3.2.1). In place."""
    if gate.inactive is None or gate.before is None:
        return
    with torch.no_grad():
        index = torch.tensor(gate.sampled, device=alpha.device)
        old = torch.tensor(gate.before, dtype=alpha.dtype, device=alpha.device)
        offset = alpha[index].logsumexp(0) - old.logsumexp(0)
        alpha[index] -= offset


class BinarizedMixedLayer(_CandidateLayer):
    """ProxylessNAS's mixed layer: ``sum_i g_i o_i(x)`` with binary gates (one path active).

    ``forward(x, gate)``: ``gate`` an ``int`` runs that candidate alone (a derived path, or
    SPOS-style training); a :class:`BinaryGate` without weights runs its active path alone
    (the weight step); with weights, the output is ``g_a o_a(x) + g_b o_b(x)`` for the two
    sampled paths, ``o_b`` computed without gradient, so the value is ``o_a(x)``, only the
    active path's weights get gradient, and ``alpha`` gets the paper's gradient through
    ``g``. Unsampled candidates are not run.

    Args:
        candidates: The candidate blocks (same input and output shapes).
        names: Their names (default ``candidate0``...).
    """

    def __init__(self, candidates: Sequence[nn.Module], names: Sequence[str] | None = None) -> None:
        super().__init__(candidates, names)

    def forward(self, x: torch.Tensor, gate: BinaryGate | int) -> torch.Tensor:
        if not isinstance(gate, BinaryGate):
            out: torch.Tensor = self.candidates[self._index(gate)](x)
            return out
        out = self.candidates[self._index(gate.active)](x)
        if gate.weights is None:
            return out
        out = out * gate.weights[gate.active]
        if gate.inactive is not None:
            with torch.no_grad():
                other = self.candidates[self._index(gate.inactive)](x)
            out = out + other * gate.weights[gate.inactive]
        return out


# -- latency terms and losses ----------------------------------------------------------------
def expected_latency(probs: torch.Tensor, latency: torch.Tensor) -> torch.Tensor:
    """``sum_i probs_i * latency_i`` over every row: ProxylessNAS's ``E[LAT]`` (``probs =
    softmax(alpha)``) and FBNet's ``LAT(a)`` (``probs`` the Gumbel-softmax weights).

    Args:
        probs: ``(N,)`` or ``(layers, N)`` weights of the candidates.
        latency: The candidates' latencies from the lookup table, the same shape (or
            broadcastable to it); rows of layers with fewer candidates may pad with 0.

    Raises:
        InvalidConfigError: The shapes do not match, or a latency is negative or not finite.
    """
    latency = torch.as_tensor(latency, dtype=probs.dtype, device=probs.device)
    try:
        shape = torch.broadcast_shapes(probs.shape, latency.shape)
    except RuntimeError:
        shape = None
    if shape != probs.shape:
        raise InvalidConfigError(
            f"The latency table has shape {tuple(latency.shape)}, the candidate weights "
            f"{tuple(probs.shape)}; give one latency per candidate of every layer."
        )
    if not bool(torch.isfinite(latency).all()) or bool((latency < 0).any()):
        raise InvalidConfigError(
            f"Latencies must be finite and >= 0, got {latency.tolist()}; fill the lookup "
            "table for every candidate."
        )
    return (probs * latency).sum()


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidConfigError(f"{name} must be a positive number, got {value!r}.")
    return float(value)


def proxyless_loss(
    ce: torch.Tensor,
    latency: torch.Tensor,
    *,
    form: str = "add",
    lam: float = 0.2,
    target: float | None = None,
    alpha: float = 1.0,
    beta: float = 0.6,
) -> torch.Tensor:
    """ProxylessNAS's architecture loss from the cross-entropy and ``E[LAT]``.

    * ``form="add"`` without ``target``: the paper's ``CE + lam * E[LAT]`` (Section 3.3);
    * ``form="add"`` with ``target`` ``T``: the authors' ``add#linear``,
      ``CE + lam * (E[LAT] - T) / T`` (their default ``lam`` 0.2);
    * ``form="mul"``: the authors' ``mul#log``, ``alpha * CE * (log E[LAT] / log T)^beta``
      (defaults ``alpha`` 1, ``beta`` 0.6; needs ``target`` > 1 in the table's unit).

    Raises:
        InvalidConfigError: An unknown form, a missing or non-positive target for ``mul``, a
            negative ``lam``, or a latency <= 1 in the ``mul`` form.
    """
    if form == "add":
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or lam < 0:
            raise InvalidConfigError(f"lam must be a number >= 0, got {lam!r}.")
        if target is None:
            return ce + lam * latency
        t = _positive(target, "target")
        return ce + lam * (latency - t) / t
    if form == "mul":
        if target is None:
            raise InvalidConfigError("proxyless_loss(form='mul') needs the latency target.")
        t = _positive(target, "target")
        if t <= 1.0 or not bool((latency > 1.0).all()):
            raise InvalidConfigError(
                f"The mul#log form takes log(E[LAT]) / log(target) and needs both above 1 in "
                f"the table's unit, got target {t} and E[LAT] {float(latency.detach()):.4g}; "
                "express latencies in a smaller unit (ms or us)."
            )
        return _positive(alpha, "alpha") * ce * (latency.log() / math.log(t)) ** beta
    raise InvalidConfigError(f"Unknown ProxylessNAS loss form {form!r}; choose 'add' or 'mul'.")


def fbnet_loss(
    ce: torch.Tensor, latency: torch.Tensor, alpha: float = 0.2, beta: float = 0.6
) -> torch.Tensor:
    """FBNet's loss ``CE * alpha * log(LAT)^beta`` (Section 3.2; ``alpha`` 0.2, ``beta`` 0.6).

    Raises:
        InvalidConfigError: ``LAT`` <= 1 (``log(LAT)^beta`` is not real there: express the
            table in a smaller unit), or ``alpha``/``beta`` not positive.
    """
    a, b = _positive(alpha, "alpha"), _positive(beta, "beta")
    if not bool((latency > 1.0).all()):
        raise InvalidConfigError(
            f"FBNet's loss takes log(LAT)^beta, which needs LAT > 1 in the table's unit; got "
            f"LAT {float(latency.detach().max()):.4g}. Express latencies in ms or us."
        )
    return ce * a * latency.log() ** b


# -- FBNet ------------------------------------------------------------------------------------
def fbnet_temperature(epoch: int, initial: float = 5.0, decay: float = FBNET_TAU_DECAY) -> float:
    """FBNet's Gumbel-softmax temperature at ``epoch`` (0-based): ``initial * decay**epoch``
    (5.0 and ``exp(-0.045)``, Section 4.1).

    Raises:
        InvalidConfigError: A negative epoch, a non-positive ``initial``, or ``decay``
            outside ``(0, 1]``.
    """
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise InvalidConfigError(f"epoch must be an integer >= 0, got {epoch!r}.")
    tau0 = _positive(initial, "initial temperature")
    if not isinstance(decay, (int, float)) or not 0.0 < decay <= 1.0:
        raise InvalidConfigError(f"decay must be in (0, 1], got {decay!r}.")
    return tau0 * float(decay) ** epoch


def gumbel_softmax(theta: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """FBNet's mixing weights ``softmax((theta + g) / tau)`` over the last dimension, with
    Gumbel noise ``g = -log(E)``, ``E ~ Exp(1)``, drawn from ``generator`` (on the CPU).
    Differentiable in ``theta``; ``theta`` may be one row or ``(layers, N)``."""
    tau = _positive(tau, "tau")
    noise = torch.empty(theta.shape).exponential_(generator=generator).log().neg()
    return ((theta + noise.to(theta.device, theta.dtype)) / tau).softmax(dim=-1)


class GumbelMixedLayer(_CandidateLayer):
    """FBNet's mixed layer: ``sum_i m_i b_i(x)`` over every candidate.

    ``forward(x, weights)`` with ``weights`` the layer's ``(N,)`` mixing weights (from
    :func:`gumbel_softmax`); ``forward(x, index=i)`` runs candidate ``i`` alone (the derived
    network's path, equal to :meth:`extract`'s output).

    Args:
        candidates: The candidate blocks (same input and output shapes).
        names: Their names.
    """

    def __init__(self, candidates: Sequence[nn.Module], names: Sequence[str] | None = None) -> None:
        super().__init__(candidates, names)

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor | None = None, index: int | None = None
    ) -> torch.Tensor:
        if index is not None:
            out: torch.Tensor = self.candidates[self._index(index)](x)
            return out
        if weights is None or weights.shape != (len(self),):
            got = None if weights is None else tuple(weights.shape)
            raise InvalidConfigError(
                f"GumbelMixedLayer needs weights of shape ({len(self)},) or an index, got {got}."
            )
        total: torch.Tensor = self.candidates[0](x) * weights[0]
        for i in range(1, len(self)):
            total = total + self.candidates[i](x) * weights[i]
        return total


# -- derivation -------------------------------------------------------------------------------
def derive_index(params: torch.Tensor) -> list[int]:
    """The chosen candidate of every row of ``params`` (``alpha`` or ``theta``, ``(N,)`` or
    ``(layers, N)``): the argmax, ties to the lower index."""
    rows = params.detach().cpu().float().reshape(-1, params.shape[-1])
    return [int(i) for i in rows.argmax(dim=-1).tolist()]
