"""The quantized form of a search space: the base's decisions plus one precision per layer.

``nasforge.spaces.create("mobilenet+quant")`` wraps the ``mobilenet`` space in
:class:`QuantizedSpace`: an architecture is a base architecture and a *precision policy*, the
precision of every quantizable layer (2-D convolution and linear layer), and
:meth:`QuantizedSpace.build` returns the base network fake-quantized with that policy
(:func:`nasforge.ops.quant.quantize_model`). This is the joint architecture and
mixed-precision space of

* Sukthanker et al.'s SimQ-NAS: Sarah, S. et al. "SimQ-NAS: Simultaneous Quantization Policy
  and Neural Architecture Search." arXiv:2312.13301 (2023), Section 3: a sub-network of a
  weight-sharing supernet and a per-layer quantization policy searched together, each layer
  choosing among a few precisions (their ``int8`` / ``fp32``);
* Dotzel, J. et al. "FLIQS: One-Shot Mixed-Precision Floating-Point and Integer Quantization
  Search." arXiv:2308.03290 (2023), Section 3: each layer choosing among integer and
  low-precision floating-point formats (``int4``, ``int8``, ``fp8_e4m3``...).

Slots
-----
The precision decisions are the *slots* of the space, :attr:`QuantizedSpace.slots`: one per
quantizable layer that some network of the base can have, named so that the same name means
the same place in every network. They are the layers of the base's reference networks, built
with the space's ``settings``:

* ``base.largest()`` where the base has it (``ofa``, ``vit``, ``llm``), which holds every
  layer any of its networks has;
* otherwise, for each ``k``, the architecture with every decision at its ``k``-th option (its
  last where it has fewer), stage depths (decisions ``s<i>_depth``) at their largest and
  block skips (``*_skip``) off; the slots are the union of their layers, in network order
  (for ``nb201``: every edge a convolution; for ``mobilenet``: every block present, with and
  without expansion convolution and squeeze-and-excitation, every head).

A layer's slot name is its module path, except in the networks of the mobile family
(:class:`nasforge.ops.mobile.MobileNetwork`: ``mobilenet``, ``ofa``, ``ofa-cifar``, ``fbnet``),
where a skipped block or a shallower stage shifts the later layers' positions. There the
leading ``layers.<i>`` of the path is replaced by the layer's *place*: the layers before the
first searched stage keep ``layers.<i>`` (the stem, the fixed first block), the ``k``-th block
present in stage ``i`` is ``s<i>b<k>`` (spaces with ``s<i>_depth`` decisions), the layer of
decision ``layer<n>`` is ``layer<n>`` (``fbnet``, whose layers say which of them are absent,
``layer_candidates``), and the last layer is ``head``: ``s2b1.expand.0`` is the expansion
convolution of the second block of stage 2 in every network that has it. A space of that
family that names neither is refused.

:meth:`QuantizedSpace.quantize` applies an architecture's policy to any network of its base
architecture by these names, so a network extracted from a supernet with inherited weights
(:meth:`nasforge.ops.elastic.ElasticMobileNet.extract`, at another width) is quantized as
:meth:`QuantizedSpace.build` would quantize it.

Settings, precisions and the name
---------------------------------
The name is ``f"{base.name}+quant"`` whatever the arguments; a study records the arguments
as its ``space_params`` and rebuilds the same space on resume. ``precisions`` (default
``("int2", "int4", "int8")``) are the options of every slot, taken from
:data:`nasforge.ops.quant.PRECISIONS` (``int2``, ``int3``, ``int4``, ``int8``, ``fp8_e4m3``,
``fp8_e5m2``, ``fp32``; an integer bit width 2, 3, 4, 8 or 32 names ``int<b>`` or ``fp32``);
``weights_only=True`` keeps the activations at full precision. ``settings`` are build keywords
of the base that change which layers exist (``nb201``'s ``cells_per_stage``): the reference
networks and every :meth:`build` use them (a build with other structural settings is refused
by :meth:`quantize`, naming a layer without a slot).

Text
----
``"<base text>|q=<precision of slot 0>,<slot 1>,..."``: ``8`` for ``int8`` (the bits of an
integer precision), ``32`` for ``fp32``, the name of an FP8 format (``fp8_e4m3``). A policy of
the wrong length, or a precision that is not an option of the space, is refused naming both
lengths or the options.

Canonical form
--------------
The base's canonical form with the precisions carried along: when the base's canonical
architecture builds the same network (``mobilenet``, ``ofa``, ``fbnet``, ``vit``: blocks
reordered or unused options reset), every layer keeps its precision, matched by module path;
when it builds another network that computes the same function (``nb201``, which merges
edges and swaps nodes), the precisions are carried only if every layer has the same one, and
otherwise the base architecture is kept. Slots whose layer the network does not have take the
first precision.

Costs (:meth:`QuantizedSpace.costs`): ``model_bits`` (:func:`nasforge.ops.quant.model_bits`),
``bops`` (:func:`nasforge.ops.quant.bops`, multiply-adds x weight bits x activation bits) and
``params_M``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.architecture import Architecture
from nasforge.errors import (
    InvalidArchitectureError,
    InvalidConfigError,
    UnsupportedOperationError,
    abbreviate,
)
from nasforge.spaces._forms import AddedDecisions, input_side
from nasforge.spaces.base import Decision, SearchSpace

if TYPE_CHECKING:
    from torch import nn

__all__ = ["QuantizedSpace"]

#: The separator between the base architecture's text and the policy.
SEPARATOR = "|q="
#: Layouts of base architectures kept (module paths and slot names of their networks).
_CACHE_SIZE = 4096
_DEPTH = re.compile(r"^s(\d+)_depth$")


def _token(precision: str) -> str:
    """A precision as the text writes it: ``int8 -> "8"``, ``fp32 -> "32"``, FP8 by name."""
    if precision.startswith("int"):
        return precision[3:]
    return "32" if precision == "fp32" else precision


class QuantizedSpace(AddedDecisions):
    """The architectures of ``base``, each with a precision per quantizable layer (see the
    module docstring for the slots, the text and the canonical form).

    Decisions: those of ``base``, then ``q0``, ``q1``, ... (one per slot, options
    ``precisions``); sampling, mutation, crossover, neighbours and the one-hot encoding follow.

    Args:
        base: A space with decisions and a model builder.
        precisions: The precision options of every slot (:data:`nasforge.ops.quant.PRECISIONS`).
        weights_only: Quantize the weights only; activations stay ``fp32``.
        settings: Build keywords of the base that the reference networks and every
            :meth:`build` use (those that change which layers exist).

    Raises:
        InvalidConfigError: A precision outside the supported set (which is listed), a
            repeated or missing one.
        UnsupportedOperationError: ``base`` has no decisions or no builder, a layer with
            weights and no quantized form (named), or (mobile family) no decisions that name
            its layers' places.

    Example:
        >>> from nasforge import spaces
        >>> space = spaces.create("nb201+quant", settings={"cells_per_stage": 1})
        >>> len(space.slots), space.slots[1]
        (26, 'cells.0.edges.0.1')
        >>> base = spaces.create("nb201").from_index(6111)
        >>> arch = space.join(base, ["int8"] * 26)
        >>> str(arch).endswith("|q=" + ",".join(["8"] * 26)), space.parse(str(arch)) == arch
        (True, True)
        >>> lower = space.join(base, ["int8"] * 25 + ["int2"])  # the classifier at 2 bits
        >>> bits = [space.costs(a, channels=4)["model_bits"] for a in (arch, lower)]
        >>> bits[0] - bits[1] == 16 * 10 * (8 - 2)  # its 16 x 10 weights, 6 bits fewer each
        True
    """

    encodings = ("onehot",)
    separator = SEPARATOR

    def __init__(
        self,
        base: SearchSpace,
        precisions: Sequence[str | int] = ("int2", "int4", "int8"),
        *,
        weights_only: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        from nasforge.ops.quant import PRECISIONS, check_precision

        self._wrap(base, "per-layer precisions", "quantized")
        if isinstance(precisions, (str, int)):
            precisions = [precisions]
        names = [check_precision(p) for p in precisions]
        if not names or len(set(names)) != len(names):
            raise InvalidConfigError(
                f"precisions must be distinct precisions of {list(PRECISIONS)}, at least one, "
                f"got {list(precisions)!r}."
            )
        if not isinstance(weights_only, bool):
            raise InvalidConfigError(f"weights_only must be True or False, got {weights_only!r}.")
        self.name = f"{base.name}+quant"
        self.precisions: tuple[str, ...] = tuple(names)
        self.weights_only = weights_only
        self.settings: dict[str, Any] = dict(settings or {})
        self._layouts: dict[Architecture, tuple[Any, tuple[tuple[str, str], ...]]] = {}
        self._mobile = self._is_mobile()
        self.slots: tuple[str, ...] = self._find_slots()
        self._slot_index = {slot: i for i, slot in enumerate(self.slots)}
        self._decisions = self._base_decisions + tuple(
            Decision(f"q{i}", self.precisions) for i in range(len(self.slots))
        )

    # -- slots -------------------------------------------------------------------------------
    def _is_mobile(self) -> bool:
        """Whether the base's networks are mobile networks described by ``layers(arch)``."""
        layers = getattr(self.base, "layers", None)
        if not callable(layers):
            return False
        from nasforge.ops.mobile import LayerSpec

        specs = layers(self._references()[0], **self._layer_settings())
        return all(isinstance(spec, LayerSpec) for spec in specs)

    def _layer_settings(self) -> dict[str, Any]:
        layers = getattr(self.base, "layers")  # noqa: B009 - a capability of some spaces
        accepted = inspect.signature(layers).parameters
        return {k: v for k, v in self.settings.items() if k in accepted}

    def _references(self) -> list[Architecture]:
        """The reference architectures (see the module docstring)."""
        largest = getattr(self.base, "largest", None)
        if callable(largest):
            return [largest()]
        out = []
        top = max(len(d.options) for d in self._base_decisions)
        for k in range(top):
            choices = []
            for decision in self._base_decisions:
                options = decision.options
                if _DEPTH.match(decision.name):
                    choices.append(options.index(max(options)))
                elif decision.name.endswith("_skip") and False in options:
                    choices.append(options.index(False))
                else:
                    choices.append(min(k, len(options) - 1))
            out.append(self.base.from_choices(choices))
        return out

    def _find_slots(self) -> tuple[str, ...]:
        order: list[str] = []
        for arch in self._references():
            if not self._mobile:
                self._check_quant_form(arch)
            position = 0
            for _, slot in self._layout(arch)[1]:
                if slot in order:
                    position = order.index(slot) + 1
                else:
                    order.insert(position, slot)
                    position += 1
        if self._mobile:  # by place: leading layers, stages and blocks, head
            order.sort(key=_place_key)
        if not order:
            raise UnsupportedOperationError(
                f"The networks of space {self.base.name!r} have no quantizable layer (2-D "
                "convolution or linear layer); there is nothing to give a precision."
            )
        return tuple(order)

    def _check_quant_form(self, arch: Architecture) -> None:
        """Refuse a base network with a layer that has weights and no quantized form."""
        from nasforge.ops.quant import NO_QUANT_FORM

        for name, module in self._meta_network(arch).named_modules():
            if isinstance(module, NO_QUANT_FORM) or getattr(module, "quant_form", True) is False:
                raise UnsupportedOperationError(
                    f"Space {self.base.name!r} has no quantized form: layer {name!r} "
                    f"({type(module).__name__}) has none (quantized networks quantize 2-D "
                    "convolutions and linear layers); choose a space without this operation."
                )

    def _meta_network(self, arch: Architecture) -> nn.Module:
        import torch

        with torch.device("meta"):
            network: nn.Module = self.base.build(arch, **self.settings)
        return network

    def _layout(self, arch: Architecture) -> tuple[Any, tuple[tuple[str, str], ...]]:
        """A signature of the network of base architecture ``arch`` (equal for equal
        networks) and the module path and slot name of each of its quantizable layers."""
        if arch in self._layouts:
            return self._layouts[arch]
        if self._mobile:
            specs = self.base.layers(arch, **self._layer_settings())  # type: ignore[attr-defined]
            labels = self._places(arch, len(specs))
            pairs = tuple(
                (f"layers.{i}.{sub}", f"{labels[i]}.{sub}")
                for i, spec in enumerate(specs)
                for sub in _spec_layers(spec)
            )
            layout: tuple[Any, tuple[tuple[str, str], ...]] = (tuple(specs), pairs)
        else:
            from nasforge.ops.quant import quantizable_layers

            network = self._meta_network(arch)
            names = tuple((n, _path_slot(network, n)) for n, _ in quantizable_layers(network))
            layout = (repr(network), names)
        if len(self._layouts) >= _CACHE_SIZE:
            self._layouts.clear()
        self._layouts[arch] = layout
        return layout

    def _places(self, arch: Architecture, count: int) -> list[str]:
        """The place of each of the ``count`` layers of a mobile network of ``arch``."""
        values = {
            d.name: d.options[c]
            for d, c in zip(self._base_decisions, self.base.check(arch).choices, strict=True)
        }
        stages = sorted(int(m.group(1)) for name in values if (m := _DEPTH.match(name)))
        candidates = getattr(self.base, "layer_candidates", None)
        blocks: list[str] = []
        if stages:
            for i in stages:
                depth = int(values[f"s{i}_depth"])
                kept = [b for b in range(depth) if not values.get(f"s{i}b{b}_skip", False)]
                blocks += [f"s{i}b{k}" for k in range(len(kept))]
        elif callable(candidates):
            options = candidates()
            blocks = [
                f"layer{n + 1}"
                for n, (layer, c) in enumerate(zip(options, arch.choices, strict=False))
                if layer[c] is not None
            ]
        else:
            raise UnsupportedOperationError(
                f"Space {self.base.name!r} builds mobile networks but its decisions name neither "
                "stage depths (s<i>_depth) nor layers with candidates (layer_candidates()), so "
                "the quantized form cannot tell which layer of a network is which slot; the "
                "space must provide one of them."
            )
        lead = count - 1 - len(blocks)
        if lead < 0:
            raise UnsupportedOperationError(
                f"The network of {abbreviate(arch.text, 60)} has {count} layers, fewer than its "
                f"{len(blocks)} blocks and head; space {self.base.name!r} does not follow the "
                "mobile layout the quantized form reads."
            )
        return [f"layers.{i}" for i in range(lead)] + blocks + ["head"]

    def _model_slots(self, model: nn.Module, arch: Architecture) -> list[tuple[str, str]]:
        """The module path and slot name of each quantizable layer of ``model``, a network
        of base architecture ``arch``."""
        from nasforge.ops.mobile import MobileNetwork
        from nasforge.ops.quant import quantizable_layers

        paths = [n for n, _ in quantizable_layers(model)]
        if not (self._mobile and isinstance(model, MobileNetwork)):
            return [(p, _path_slot(model, p)) for p in paths]
        labels = self._places(arch, len(model.layers))
        out = []
        for path in paths:
            _, index, sub = path.split(".", 2)
            out.append((path, f"{labels[int(index)]}.{sub}"))
        return out

    # -- decisions, text ---------------------------------------------------------------------
    def _own_text(self, own: Sequence[int]) -> str:
        return ",".join(_token(self.precisions[c]) for c in own)

    def parse(self, text: str) -> Architecture:
        """The architecture written as ``"<base text>|q=<precisions>"`` (module docstring).

        Raises:
            InvalidArchitectureError: No policy part, a malformed base text, a precision that
                is not an option, or a policy of the wrong length.
        """
        own = f"<precision of each of the {len(self.slots)} slots>"
        base_text, policy = self._split_text(text, own, 120)
        tokens = [t.strip() for t in policy.split(",")] if policy.strip() else []
        return self.join(self.base.parse(base_text), tokens)

    def _precision(self, value: str | int, slot: int) -> int:
        """The option index of precision ``value`` (a name, bits, or the text's token)."""
        from nasforge.ops.quant import check_precision

        token: str | int = value
        if isinstance(value, str) and value.strip().isdigit():
            token = int(value)
        try:
            name = check_precision(token)
        except InvalidConfigError as error:
            raise InvalidArchitectureError(f"Slot {slot} ({self.slots[slot]}): {error}") from None
        if name not in self.precisions:
            raise InvalidArchitectureError(
                f"Slot {slot} ({self.slots[slot]}) has precision {name!r}, which is not an "
                f"option of space {self.name!r}; choose from {list(self.precisions)} (or build "
                "the space with precisions=... that include it)."
            )
        return self.precisions.index(name)

    def join(self, base_arch: Architecture, policy: Sequence[str | int]) -> Architecture:
        """The architecture of ``base_arch`` (of the base space) with ``policy``, one
        precision per slot in the order of :attr:`slots`.

        Raises:
            InvalidArchitectureError: ``base_arch`` is not of the base space, the policy has
                the wrong length (both lengths named), or a precision is not an option.
        """
        self.base.check(base_arch)
        if isinstance(policy, (str, int)) or len(policy) != len(self.slots):
            got = 1 if isinstance(policy, (str, int)) else len(policy)
            listed = abbreviate(str(list(self.slots)), 200)
            raise InvalidArchitectureError(
                f"The precision policy has {got} entries, but space {self.name!r} has "
                f"{len(self.slots)} slots (quantizable layers: {listed}); give one precision "
                "per slot, in that order."
            )
        indices = [self._precision(p, i) for i, p in enumerate(policy)]
        return self.from_choices((*base_arch.choices, *indices))

    def check(self, arch: Architecture) -> Architecture:
        """``arch`` if it is an architecture of this space, made with these precisions and
        settings (an evaluator that opens the space by name with other arguments would read
        its choices as other precisions: refused).

        Raises:
            InvalidArchitectureError: Another space, or the same name with other arguments.
        """
        arch = super().check(arch)
        if not self._made_here(arch):
            raise InvalidArchitectureError(
                f"Architecture {abbreviate(arch.text, 80)!r} was made by a {self.name} space with "
                f"other arguments than this one (precisions={list(self.precisions)}, "
                f"{len(self.slots)} slots, settings={self.settings}); open the space with the "
                "arguments the study recorded (its space_params)."
            )
        return arch

    def split(self, arch: Architecture) -> tuple[Architecture, tuple[str, ...]]:
        """The base architecture of ``arch`` and its policy (one precision per slot)."""
        base, own = self._base_and_own(self.check(arch).choices)
        return base, tuple(self.precisions[c] for c in own)

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """The base architecture's drawing with the precision of every slot as a setting
        (``"precision · s2b1.expand.0": "int4"``), and ``weights only`` when it holds."""
        from nasforge.spaces._drawing import with_settings

        base, policy = self.split(arch)
        settings: dict[str, Any] = {"weights only": True} if self.weights_only else {}
        settings.update((f"precision · {s}", p) for s, p in zip(self.slots, policy, strict=True))
        return with_settings(self.base.drawing(base), settings)

    # -- canonical form ----------------------------------------------------------------------
    def canonical(self, arch: Architecture) -> Architecture:
        """The base's canonical form, the precisions carried along (module docstring)."""
        base, policy = self.split(arch)
        first = self.precisions[0]
        canonical = self.base.canonical(base)
        signature, layers = self._layout(base)
        used = [policy[self._slot(slot, base)] for _, slot in layers]
        if canonical != base:
            new_signature, new_layers = self._layout(canonical)
            if new_signature == signature:  # the same network: precisions by module path
                by_path = dict(zip((path for path, _ in layers), used, strict=True))
                return self._assign(canonical, [(s, by_path[p]) for p, s in new_layers])
            if len(set(used)) <= 1:  # another network, one precision for every layer
                fill = used[0] if used else first
                return self._assign(canonical, [(s, fill) for _, s in new_layers])
        return self._assign(base, [(slot, p) for (_, slot), p in zip(layers, used, strict=True)])

    def _assign(self, base: Architecture, given: Sequence[tuple[str, str]]) -> Architecture:
        policy = [self.precisions[0]] * len(self.slots)
        for slot, precision in given:
            policy[self._slot(slot, base)] = precision
        return self.join(base, policy)

    def _slot(self, slot: str, base: Architecture) -> int:
        if slot not in self._slot_index:
            raise InvalidConfigError(
                f"Layer {slot!r} of the {self.base.name} network of {abbreviate(base.text, 60)} "
                f"has no slot in space {self.name!r}, whose slots are the layers of its reference "
                f"networks built with settings={self.settings}; build the network with the "
                "settings the space was made with (or make the space with settings=...)."
            )
        return self._slot_index[slot]

    # -- networks ----------------------------------------------------------------------------
    def quantize(self, model: nn.Module, arch: Architecture) -> nn.Module:
        """A copy of ``model``, a network of ``split(arch)[0]`` (built by the base, or
        extracted from a supernet with inherited weights), with every quantizable layer
        fake-quantized at its slot's precision in ``arch``'s policy (activations at the same
        precision, or ``fp32`` with ``weights_only``).

        Raises:
            InvalidConfigError: A layer of ``model`` has no slot (a network of another space
                or built with other structural settings; the layer is named).
        """
        from nasforge.ops.quant import quantize_model

        base, policy = self.split(arch)
        weights = [policy[self._slot(slot, base)] for _, slot in self._model_slots(model, base)]
        acts = ["fp32"] * len(weights) if self.weights_only else None
        return quantize_model(model, weights, act_policy=acts)

    def build(self, arch: Architecture, **kwargs: Any) -> nn.Module:
        """The base network of ``arch`` (built with the space's ``settings`` and
        ``kwargs``) quantized with its policy (:meth:`quantize`)."""
        base, _ = self.split(arch)
        network: nn.Module = self.base.build(base, **{**self.settings, **kwargs})
        return self.quantize(network, arch)

    def costs(self, arch: Architecture, **kwargs: Any) -> dict[str, float]:
        """``model_bits`` (bits of the parameters, quantized weights at their precision),
        ``bops`` (multiply-adds x weight bits x activation bits for one image) and
        ``params_M`` of the network :meth:`build` makes with ``kwargs``."""
        from nasforge.hardware import count_params
        from nasforge.ops.quant import bops, model_bits

        network = self.build(arch, **kwargs)
        side = input_side(self.base, self.split(arch)[0], {**self.settings, **kwargs})
        return {
            "model_bits": float(model_bits(network)),
            "bops": float(bops(network, (3, side, side))),
            "params_M": count_params(network) / 1e6,
        }

    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        return self.base.presets()

    def recipe(self) -> Any:
        return self.base.recipe()

    @property
    def default_input(self) -> tuple[int, int] | None:
        """The base space's classes and image side of ``nasforge profile``, if it has them."""
        default = getattr(self.base, "default_input", None)
        return None if default is None else (int(default[0]), int(default[1]))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.base!r}, precisions={self.precisions!r}, "
            f"weights_only={self.weights_only!r})"
        )


def _spec_layers(spec: Any) -> tuple[str, ...]:
    """Module paths of the quantizable layers inside the mobile layer of ``spec``, built once
    per distinct layer structure."""
    key = (
        spec.kind,
        spec.expansion != 1 or spec.always_expand,
        spec.se,
        spec.head_conv > 0,
        spec.head_hidden > 0,
        spec.groups,
    )
    if key not in _SPEC_LAYERS:
        from nasforge.ops.mobile import build_layer
        from nasforge.ops.quant import quantizable_layers

        _SPEC_LAYERS[key] = tuple(n for n, _ in quantizable_layers(build_layer(spec)))
    return _SPEC_LAYERS[key]


_SPEC_LAYERS: dict[tuple[Any, ...], tuple[str, ...]] = {}


def _path_slot(model: nn.Module, path: str) -> str:
    """The slot name of the layer at ``path`` of a network matched by module path: the path,
    with a numbered last top-level child (a sequential network's classifier, whose index
    follows the depth: ``vit``) named ``head``."""
    top, dot, rest = path.partition(".")
    children = [name for name, _ in model.named_children()]
    if top.isdigit() and children and top == children[-1]:
        return f"head{dot}{rest}"
    return path


def _place_key(slot: str) -> tuple[int, ...]:
    """Orders mobile slot names by place: ``layers.<i>``, ``s<i>b<k>`` / ``layer<n>``,
    ``head`` (a stable sort keeps the network order inside a place)."""
    place = slot.split(".", 1)[0]
    if place == "layers":
        return (0, int(slot.split(".")[1]))
    if place == "head":
        return (2,)
    return (1, *(int(n) for n in re.findall(r"\d+", place)))
