"""Choices a user puts inside their own network: ``LayerChoice``, ``ValueChoice``,
``InputChoice`` and ``Repeat``.

The user-facing semantics follow NNI's model-space modules (Microsoft NNI,
``nni/nas/nn/pytorch/choice.py`` and ``repeat.py``): a layer choice holds candidate modules,
an input choice picks ``n_chosen`` of ``n_candidates`` inputs and reduces them, a repeat
stacks a block a chosen number of times, and a value choice is a value (a width, a kernel,
a depth) handed to a layer. Under :func:`nasforge.nn.fixed` each constructor returns the
plain module or value, so the built model is the hand-written network.

Outside it they are the weight-sharing supernet, mixed as the one-shot methods need
(:mod:`nasforge.ops.supernet` describes the three forms):

* **dense** (DARTS, Liu et al., ICLR 2019, arXiv:1806.09055, Eq. 2): a layer choice computes
  ``sum_o w_o op_o(x)``; a repeat ``sum_d w_d x_d`` over the outputs ``x_d`` after each
  allowed depth ``d`` (the differentiable repeat of NNI's one-shot super-modules); an input
  choice ``sum_c w_c reduce(inputs in c)``;
* **one path with weights** (GDAS, Dong and Yang, CVPR 2019, arXiv:1910.04465):
  ``w_i op_i(x) + sum_{o != i} w_o``; **one path without weights** (SPOS, Guo et al., ECCV
  2020, arXiv:1904.00420): ``op_i(x)``;
* **partial channels** (PC-DARTS, Xu et al., ICLR 2020, arXiv:1907.05737, Section 3.1): a
  layer choice whose candidates keep the channel count mixes the first ``C / K`` channels,
  passes the rest through (max-pooled where the candidates halve the resolution) and
  shuffles the channels in ``K`` groups.

Value choices are mixed by the layers that take them (:mod:`nasforge.nn.layers`).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.nn._trace import Option, Site, Trace, check_options, current

__all__ = ["ChosenInputs", "InputChoice", "LayerChoice", "Repeat", "ValueChoice"]


def _trace() -> Trace:
    """The active trace, or a throw-away one for a choice built outside any (its own
    decision, not shared)."""
    return current() or Trace()


# -- value choices --------------------------------------------------------------------------------
class ValueChoice:
    """A value chosen among ``options`` (a width, a kernel size, a depth...), to hand to the
    value-aware layers (:class:`nasforge.nn.Conv2d`, :class:`nasforge.nn.Linear`...) or to a
    :class:`Repeat`.

    Under :func:`nasforge.nn.fixed` the constructor returns the chosen value itself. In the
    weight-sharing form it is this object; arithmetic with a number (``width * 4``,
    ``kernel // 2``) gives a value choice of the same decision with the options transformed
    (:meth:`map`), e.g. a padding that follows the kernel.

    Args:
        options: The values (numbers, strings or booleans; distinct).
        label: The decision's name (default ``valuechoice_<n>``). A label used again with the
            same options is the same decision.

    Attributes:
        label: The decision's name.
        options: The values this choice takes, option by option of the decision.
        site: The decision (shared by the choices of one label).

    Example:
        >>> import nasforge.nn as nnf
        >>> width = nnf.ValueChoice([8, 16], label="width")
        >>> (width * 2).options, width.label
        ((16, 32), 'width')
    """

    label: str
    options: tuple[Any, ...]
    site: Site

    def __new__(cls, options: Sequence[Option] | None = None, *, label: str | None = None) -> Any:
        if options is None:  # copy / pickle
            return super().__new__(cls)
        checked = check_options(options, "ValueChoice")
        trace = _trace()
        name = trace.label(label, "valuechoice", "ValueChoice")
        if trace.is_fixed:
            return trace.value(name, checked, "ValueChoice")
        self = super().__new__(cls)
        self.site = trace.site(name, checked, "value", "ValueChoice")
        self.label = name
        self.options = checked
        return self

    def map(self, fn: Callable[[Any], Any]) -> ValueChoice:
        """The value choice of the same decision whose option ``i`` is ``fn(options[i])``."""
        derived = object.__new__(ValueChoice)
        derived.site, derived.label = self.site, self.label
        derived.options = tuple(fn(o) for o in self.options)
        return derived

    def __mul__(self, other: Any) -> ValueChoice:
        return self.map(lambda v: v * other)

    __rmul__ = __mul__

    def __add__(self, other: Any) -> ValueChoice:
        return self.map(lambda v: v + other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> ValueChoice:
        return self.map(lambda v: v - other)

    def __floordiv__(self, other: Any) -> ValueChoice:
        return self.map(lambda v: v // other)

    def __int__(self) -> int:
        raise InvalidConfigError(
            f"ValueChoice {self.label!r} {list(self.options)} is not one number while the "
            "weight-sharing model is built: hand it to the value-aware layers of nasforge.nn "
            "(Conv2d, Linear, BatchNorm2d...) or to Repeat, or build one architecture inside "
            "nasforge.nn.fixed({...}), where it is its value."
        )

    __index__ = __int__

    def __float__(self) -> float:
        return float(self.__int__())

    @property
    def largest(self) -> Any:
        """The largest option (what the weight-sharing layers allocate)."""
        return max(self.options)

    def current(self) -> Any:
        """The option of the one-path forward running now (``None`` in a dense forward)."""
        return None if not self.site.one_path else self.options[self.site.index or 0]

    def __repr__(self) -> str:
        return f"ValueChoice({list(self.options)!r}, label={self.label!r})"


def resolve(value: Any) -> tuple[Any, ...]:
    """The options of ``value``: a value choice's, else ``(value,)``."""
    return value.options if isinstance(value, ValueChoice) else (value,)


# -- layer choices --------------------------------------------------------------------------------
def _candidates(candidates: Any) -> tuple[tuple[Option, ...], list[nn.Module]]:
    """The option names (keys of a mapping, else indices) and the candidate modules."""
    if isinstance(candidates, Mapping):
        names: tuple[Option, ...] = tuple(candidates.keys())
        modules = list(candidates.values())
        if not all(isinstance(n, str) for n in names):
            raise InvalidConfigError(
                f"The keys of a LayerChoice's candidates name its options and must be strings, "
                f"got {list(names)!r}."
            )
    elif isinstance(candidates, Sequence) and not isinstance(candidates, (str, bytes)):
        modules = list(candidates)
        names = tuple(range(len(modules)))
    else:
        raise InvalidConfigError(
            "A LayerChoice takes a list or a mapping of candidate modules, got "
            f"{type(candidates).__name__}."
        )
    if not modules:
        raise InvalidConfigError(
            "A LayerChoice needs at least one candidate module, got none; give it the "
            "operations to choose from, e.g. LayerChoice([nn.Conv2d(...), nn.Identity()])."
        )
    bad = [type(m).__name__ for m in modules if not isinstance(m, nn.Module)]
    if bad:
        raise InvalidConfigError(
            f"The candidates of a LayerChoice must be torch.nn.Module instances, got {bad}."
        )
    return check_options(names, "LayerChoice"), modules


def _max_pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    dims = x.dim() - 2
    pool = {1: nn.functional.max_pool1d, 2: nn.functional.max_pool2d, 3: nn.functional.max_pool3d}
    out: torch.Tensor = pool[dims](x, factor, factor)
    return out


class LayerChoice(nn.Module):
    """One of several candidate modules (the same input, outputs of one shape).

    Under :func:`nasforge.nn.fixed` the constructor returns the chosen candidate itself. In
    the weight-sharing form it holds every candidate (``self.candidates``) and mixes them as
    the module docstring says.

    Args:
        candidates: The modules, as a list (options ``0, 1, ...``) or a mapping of names to
            modules (the names are the options).
        label: The decision's name (default ``layerchoice_<n>``).

    Raises:
        InvalidConfigError: No candidate, a candidate that is not a module.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import nasforge.nn as nnf
        >>> choice = nnf.LayerChoice({"relu": nn.ReLU(), "neg": nn.Identity()}, label="act")
        >>> choice.site.set(weights=torch.tensor([0.25, 0.75]))
        >>> choice(torch.tensor([-4.0, 4.0])).tolist()
        [-3.0, 4.0]
    """

    def __new__(cls, candidates: Any = None, *, label: str | None = None) -> Any:
        if candidates is None:  # copy / pickle
            return super().__new__(cls)
        names, modules = _candidates(candidates)
        trace = current()
        if trace is not None and trace.is_fixed:
            name = trace.label(label, "layerchoice", "LayerChoice")
            return modules[names.index(trace.value(name, names, "LayerChoice"))]
        return super().__new__(cls)

    def __init__(self, candidates: Any = None, *, label: str | None = None) -> None:
        super().__init__()
        if candidates is None:
            return
        names, modules = _candidates(candidates)
        trace = _trace()
        name = trace.label(label, "layerchoice", "LayerChoice")
        self.site = trace.site(name, names, "layer", "LayerChoice")
        self.label = name
        self.names = names
        self.candidates = nn.ModuleList(modules)
        #: PC-DARTS's ``K`` (set by the supernet built with partial channels).
        self.partial = 1

    def extra_repr(self) -> str:
        return f"label={self.label!r}, options={list(self.names)!r}"

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Mix the candidates on ``x``; further arguments (a graph's edges, a mask...) go to
        every candidate as they are (PC-DARTS splits only ``x``'s channels)."""
        site = self.site
        one_path = site.one_path
        if self.partial > 1:
            return self._partial(x, one_path, args, kwargs)
        return self._mix(x, one_path, site.edge_weight, args, kwargs)

    def _mix(
        self,
        x: torch.Tensor,
        one_path: bool,
        edge_weight: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        site = self.site
        kwargs = kwargs or {}
        if one_path:
            assert site.index is not None
            out: torch.Tensor = site.gate(self.candidates[site.index](x, *args, **kwargs))
        else:
            weights = site.weights
            if edge_weight is not None:
                weights = weights * edge_weight
            total: torch.Tensor | None = None
            for i, candidate in enumerate(self.candidates):
                term = candidate(x, *args, **kwargs) * weights[i]
                total = term if total is None else total + term
            assert total is not None
            return total
        return out if edge_weight is None else out * edge_weight

    def _partial(
        self, x: torch.Tensor, one_path: bool, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> torch.Tensor:
        """PC-DARTS's partial channel connection (see the module docstring)."""
        k, channels = self.partial, x.shape[1]
        if channels % k:
            raise InvalidConfigError(
                f"LayerChoice {self.label!r}: partial channels K={k} must divide its input's "
                f"{channels} channels; search it with another K (pc-darts params k=...)."
            )
        width = channels // k
        head, tail = x[:, :width], x[:, width:]
        edge_weight = self.site.edge_weight
        try:
            mixed = self._mix(head, one_path, edge_weight, args, kwargs)
        except RuntimeError as error:  # a candidate built for all the channels
            raise UnsupportedOperationError(
                f"LayerChoice {self.label!r} cannot take PC-DARTS's partial channels: a "
                f"candidate failed on {width} of the {channels} input channels ({error}). "
                "Partial channels need candidates that run on any share of the channels and "
                "keep its count (pooling, identity, channel-free operations); search this model "
                "with darts, gdas or spos."
            ) from None
        spatial, before = tuple(mixed.shape[2:]), tuple(head.shape[2:])
        if mixed.shape[1] != width or len(spatial) != len(before):
            raise UnsupportedOperationError(
                f"LayerChoice {self.label!r} cannot take PC-DARTS's partial channels: its "
                f"candidates map {channels} channels to {mixed.shape[1] * k} (on a 1/{k} share: "
                f"{width} to {mixed.shape[1]}), and partial channels pass the other channels "
                "through unchanged; search this model with darts, gdas or spos, or make the "
                "candidates keep the channel count."
            )
        if spatial != before:
            factors = {b // s for b, s in zip(before, spatial, strict=True) if s}
            if len(factors) != 1 or any(
                s * next(iter(factors)) != b for b, s in zip(before, spatial, strict=True)
            ):
                raise UnsupportedOperationError(
                    f"LayerChoice {self.label!r} cannot take partial channels: its candidates "
                    f"resize {before} to {spatial}, which max pooling cannot match."
                )
            tail = _max_pool(tail, next(iter(factors)))
        if edge_weight is not None:
            tail = tail * edge_weight
        # concatenate and shuffle in K groups in one copy: channel j * K + g is channel j of
        # group g (group 0 the mixture, 1..K-1 the passed-through channels)
        n = mixed.shape[0]
        groups = tail.reshape(n, k - 1, width, *spatial).transpose(1, 2)
        out = torch.cat([mixed.unsqueeze(2), groups], dim=2)
        return out.reshape(n, channels, *spatial)


# -- input choices --------------------------------------------------------------------------------
_REDUCTIONS = ("sum", "mean", "concat")


def _reduce(inputs: Sequence[torch.Tensor], reduction: str) -> torch.Tensor:
    if len(inputs) == 1:
        return inputs[0]
    if reduction == "concat":
        return torch.cat(list(inputs), dim=1)
    total = inputs[0]
    for x in inputs[1:]:
        total = total + x
    return total / len(inputs) if reduction == "mean" else total


def _input_options(n_candidates: int, n_chosen: int) -> tuple[Option, ...]:
    if n_chosen == 1:
        return tuple(range(n_candidates))
    return tuple(
        "+".join(map(str, c)) for c in itertools.combinations(range(n_candidates), n_chosen)
    )


def _chosen(option: Option) -> list[int]:
    return [option] if isinstance(option, int) else [int(v) for v in str(option).split("+")]


class ChosenInputs(nn.Module):
    """The fixed form of an :class:`InputChoice`: the inputs ``chosen`` reduced.

    Args:
        chosen: Indices of the inputs kept.
        reduction: ``"sum"``, ``"mean"`` or ``"concat"`` (along the channels).
    """

    def __init__(self, chosen: Sequence[int], reduction: str = "sum") -> None:
        super().__init__()
        self.chosen = [int(i) for i in chosen]
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"chosen={self.chosen}, reduction={self.reduction!r}"

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        return _reduce([inputs[i] for i in self.chosen], self.reduction)


class InputChoice(nn.Module):
    """``n_chosen`` of ``n_candidates`` inputs, reduced; ``forward(list_of_tensors)``.

    The options are the input indices (``n_chosen=1``) or the sets of indices written
    ``"0+2"``. Under :func:`nasforge.nn.fixed` the constructor returns a
    :class:`ChosenInputs`; the weight-sharing form mixes ``sum_c w_c reduce(inputs in c)``.

    Args:
        n_candidates: How many inputs ``forward`` receives.
        n_chosen: How many it keeps.
        reduction: ``"sum"``, ``"mean"`` or ``"concat"`` of the kept inputs.
        label: The decision's name (default ``inputchoice_<n>``).
    """

    def __new__(
        cls,
        n_candidates: int | None = None,
        n_chosen: int = 1,
        *,
        reduction: str = "sum",
        label: str | None = None,
    ) -> Any:
        if n_candidates is None:  # copy / pickle
            return super().__new__(cls)
        trace = current()
        if trace is not None and trace.is_fixed:
            options = _input_check(n_candidates, n_chosen, reduction)
            name = trace.label(label, "inputchoice", "InputChoice")
            return ChosenInputs(_chosen(trace.value(name, options, "InputChoice")), reduction)
        return super().__new__(cls)

    def __init__(
        self,
        n_candidates: int | None = None,
        n_chosen: int = 1,
        *,
        reduction: str = "sum",
        label: str | None = None,
    ) -> None:
        super().__init__()
        if n_candidates is None:
            return
        options = _input_check(n_candidates, n_chosen, reduction)
        trace = _trace()
        name = trace.label(label, "inputchoice", "InputChoice")
        self.site = trace.site(name, options, "input", "InputChoice")
        self.label = name
        self.n_candidates, self.n_chosen, self.reduction = n_candidates, n_chosen, reduction
        self.choices = [_chosen(o) for o in options]

    def extra_repr(self) -> str:
        return (
            f"label={self.label!r}, n_candidates={self.n_candidates}, n_chosen={self.n_chosen}, "
            f"reduction={self.reduction!r}"
        )

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != self.n_candidates:
            raise InvalidConfigError(
                f"InputChoice {self.label!r} takes {self.n_candidates} inputs, got {len(inputs)}."
            )
        site = self.site
        if site.one_path:
            assert site.index is not None
            out: torch.Tensor = site.gate(
                _reduce([inputs[i] for i in self.choices[site.index]], self.reduction)
            )
            return out
        total: torch.Tensor | None = None
        for w, chosen in zip(site.weights, self.choices, strict=True):
            term = _reduce([inputs[i] for i in chosen], self.reduction) * w
            total = term if total is None else total + term
        assert total is not None
        return total


def _input_check(n_candidates: Any, n_chosen: Any, reduction: Any) -> tuple[Option, ...]:
    for name, value in (("n_candidates", n_candidates), ("n_chosen", n_chosen)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidConfigError(
                f"InputChoice {name} must be a positive integer, got {value!r}."
            )
    if n_chosen > n_candidates:
        raise InvalidConfigError(
            f"InputChoice cannot keep n_chosen={n_chosen} of n_candidates={n_candidates} inputs."
        )
    if reduction not in _REDUCTIONS:
        raise InvalidConfigError(
            f"InputChoice reduction must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}."
        )
    return _input_options(n_candidates, n_chosen)


# -- repeat ---------------------------------------------------------------------------------------
def _depths(depth: Any) -> tuple[int, ...] | ValueChoice:
    if isinstance(depth, ValueChoice):
        bad = [d for d in depth.options if isinstance(d, bool) or not isinstance(d, int) or d < 0]
        if bad:
            raise InvalidConfigError(
                f"A Repeat's depth choice {depth.label!r} takes integers >= 0, got {bad}."
            )
        return depth
    if isinstance(depth, tuple) and len(depth) == 2 and all(isinstance(d, int) for d in depth):
        low, high = depth
        if not 0 <= low <= high:
            raise InvalidConfigError(f"A Repeat's depth range needs 0 <= min <= max, got {depth}.")
        return tuple(range(low, high + 1))
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise InvalidConfigError(
            "A Repeat's depth is an integer >= 0, a (min, max) range or a ValueChoice of "
            f"depths, got {depth!r}."
        )
    return (depth,)


def _blocks(block: Any, count: int, trace: Trace, label: str) -> list[nn.Module]:
    """Blocks ``0..count-1``: ``block(i)`` for a factory, copies of a module (whose choices
    stay the same decisions). Automatic labels inside block ``i`` are scoped ``label.i.``."""
    out = []
    for i in range(count):
        with trace.scope(f"{label}.{i}."):
            if isinstance(block, nn.Module):
                memo: dict[int, Any] = {id(s): s for s in trace.sites.values()}
                made = copy.deepcopy(block, memo)
            elif callable(block):
                made = block(i)
            else:
                raise InvalidConfigError(
                    "A Repeat's block is a module or a function of the block index returning "
                    f"one, got {type(block).__name__}."
                )
        if not isinstance(made, nn.Module):
            raise InvalidConfigError(
                f"Repeat {label!r}: block({i}) returned {type(made).__name__}, not a module."
            )
        out.append(made)
    return out


class Repeat(nn.Module):
    """A block stacked a chosen number of times (``x -> block_0 -> block_1 -> ...``).

    Under :func:`nasforge.nn.fixed` the constructor returns an ``nn.Sequential`` of the chosen
    depth. The weight-sharing form holds the largest depth and mixes the outputs after each
    allowed depth (dense), or runs the chosen depth (one path).

    Args:
        block: A function of the block's index returning a module (called once per block),
            or a module (copied per block; its choices stay shared decisions).
        depth: An integer, a ``(min, max)`` range (a decision labelled ``label``), or a
            :class:`ValueChoice` of depths (its own decision).
        label: The decision's name for a range (default ``repeat_<n>``); automatic labels of
            the choices inside block ``i`` are ``<label>.<i>.<kind>_<n>``.
    """

    def __new__(cls, block: Any = None, depth: Any = None, *, label: str | None = None) -> Any:
        if block is None:  # copy / pickle
            return super().__new__(cls)
        trace = current()
        if trace is None or not trace.is_fixed:
            return super().__new__(cls)
        depths = _depths(depth)
        name = trace.label(label, "repeat", "Repeat")
        assert not isinstance(depths, ValueChoice)
        chosen = int(trace.value(name, depths, "Repeat")) if len(depths) > 1 else depths[0]
        trace.skipped += [f"{name}.{i}." for i in range(chosen, max(depths))]
        return nn.Sequential(*_blocks(block, chosen, trace, name))

    def __init__(self, block: Any = None, depth: Any = None, *, label: str | None = None) -> None:
        super().__init__()
        if block is None:
            return
        depths = _depths(depth)
        trace = _trace()
        name = trace.label(label, "repeat", "Repeat")
        self.label = name
        self.site: Site | None
        if isinstance(depths, ValueChoice):
            self.site, self.depths = depths.site, tuple(int(d) for d in depths.options)
        elif len(depths) > 1:
            self.site, self.depths = trace.site(name, depths, "repeat", "Repeat"), depths
        else:
            self.site, self.depths = None, depths
        self.blocks = nn.ModuleList(_blocks(block, max(self.depths), trace, name))

    def extra_repr(self) -> str:
        return f"label={self.label!r}, depths={list(self.depths)!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        site = self.site
        if site is None or site.one_path:
            depth = self.depths[0] if site is None else self.depths[site.index or 0]
            for block in self.blocks[:depth]:
                x = block(x)
            return x if site is None else site.gate(x)
        wanted = set(self.depths)
        outputs = {0: x} if 0 in wanted else {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i + 1 in wanted:
                outputs[i + 1] = x
        total: torch.Tensor | None = None
        for w, d in zip(site.weights, self.depths, strict=True):
            out = outputs[d]
            if total is not None and out.shape != total.shape:
                raise UnsupportedOperationError(
                    f"Repeat {self.label!r}: the output after {d} blocks has shape "
                    f"{tuple(out.shape)}, after {self.depths[0]} {tuple(total.shape)}; the "
                    "dense mixture of depths needs blocks that keep the shape (search it with "
                    "spos, or keep the shape)."
                )
            total = out * w if total is None else total + out * w
        assert total is not None
        return total
