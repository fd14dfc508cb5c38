"""The binary form of a search space: the same architectures, built as binary networks.

``nasforge.spaces.create("nb201+binary")`` wraps the ``nb201`` space in :class:`BinarySpace`:
its decisions, text, sampling, mutation, crossover, neighbours, encodings and canonical form
are the base space's, and :meth:`BinarySpace.build` returns the base network turned into its
binary form by :func:`nasforge.ops.binary.binarize`: every 2-D convolution and linear layer
but the first convolution and the last linear layer computes on the signs of its inputs
(Hubara, I. et al. "Binarized Neural Networks." NeurIPS 2016, arXiv:1602.02830, Section 1.1)
with per-channel scaled signs of its weights (Rastegari, M. et al. "XNOR-Net." ECCV 2016,
arXiv:1603.05279, Section 3.1), batch norm and the other parameter-free operations staying
real, as XNOR-Net, Bi-Real Net and BATS keep them (Bulat, A., Martinez, B. and
Tzimiropoulos, G. "BATS: Binary ArchitecTure Search." ECCV 2020, arXiv:2003.01711,
Section 3.1 keeps the stem and the classifier real).

An architecture of the wrapped space is recorded under the wrapped name (``"nb201+binary"``)
with the base's choices and text, so a study of ``nb201+binary`` stores, replays and resumes
its trials by that name: ``space.parse(str(arch)) == arch`` holds as for the base.

Costs (:meth:`BinarySpace.costs`): parameters and bit-operations, BOPs, counted as the
binary-network literature counts them (Liu, Z. et al. "Bi-Real Net." ECCV 2018,
arXiv:1808.00278, Section 4.4; Martinez, B. et al. "Training Binary Neural Networks with
Real-to-Binary Convolutions." ICLR 2020, arXiv:2003.11535, Section 5): the multiply-adds of
each 2-D convolution and linear layer times the bits of its weights and activations, 1 x 1
for a binary layer and 32 x 32 for a real one. (Bi-Real Net reports FLOPs as BOPs / 64 +
real FLOPs; ``bops`` here is the count before that division.)

Where the base has operations with no binary form (attention, embeddings, a module with its
own parameters that is not a convolution, linear layer or normalisation), the space is
refused at construction: one network is built and :func:`binarize` names the first such layer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.architecture import Architecture
from nasforge.errors import UnsupportedOperationError
from nasforge.spaces._forms import input_side
from nasforge.spaces.base import Decision, SearchSpace

if TYPE_CHECKING:
    from torch import nn

__all__ = ["BinarySpace"]

#: Attributes of the base space that the wrapped space offers as they are, their
#: architectures renamed to the wrapped space (published networks, benchmark indices,
#: extreme points, the default input of ``nasforge profile``).
_FORWARDED = frozenset(
    {"default_input", "named", "published", "from_index", "index", "largest", "smallest"}
)
#: Capabilities of a base that the wrapped space does not offer: the base's weight-sharing
#: network is real-valued (binary one-shot search is :mod:`nasforge.oneshot.bats`).
_NOT_WRAPPED = frozenset({"supernet"})


class BinarySpace(SearchSpace):
    """The architectures of ``base``, built as binary networks (see the module docstring).

    Args:
        base: A space with a model builder whose networks have a binary form.

    Attributes:
        base: The wrapped space.
        name: ``f"{base.name}+binary"``.

    Raises:
        UnsupportedOperationError: ``base`` has no model builder, or its networks hold an
            operation with no binary form (the layer and its type are named).

    Example:
        >>> from nasforge import spaces
        >>> space = spaces.create("nb201+binary")
        >>> arch = space.from_index(6111)
        >>> arch.space, space.parse(str(arch)) == arch
        ('nb201+binary', True)
        >>> net = space.build(arch, channels=4, cells_per_stage=1)
        >>> from nasforge.ops.binary import binary_layers
        >>> len(list(binary_layers(net)))
        21
    """

    def __init__(self, base: SearchSpace) -> None:
        if not isinstance(base, SearchSpace):
            raise UnsupportedOperationError(
                f"BinarySpace wraps a search space, got {type(base).__name__}."
            )
        self.base = base
        self.name = f"{base.name}+binary"
        self.scale_keys = base.scale_keys
        if not base.supports("build"):
            raise UnsupportedOperationError(
                f"Space {base.name!r} has no model builder (build()), so it has no binary "
                "form; wrap a space that builds networks (nasforge list spaces)."
            )
        self._check_binary_form()

    def _check_binary_form(self) -> None:
        """Build one network of the base (with its default settings, on the meta device: no
        weights are drawn) and binarise it: :func:`binarize` names a layer with no binary
        form."""
        import torch

        from nasforge.ops.binary import binarize

        with torch.device("meta"):
            network = self.base.build(self._first())
        try:
            binarize(network)
        except UnsupportedOperationError as error:
            raise UnsupportedOperationError(
                f"Space {self.base.name!r} has no binary form: {error}"
            ) from None

    def _first(self) -> Architecture:
        """One architecture of the base: its largest where it has one, else the first of its
        decisions, else one drawn with seed 0."""
        largest = getattr(self.base, "largest", None)
        if callable(largest):
            arch: Architecture = largest()
            return arch
        if self.base.supports("decisions"):
            return self.base.from_choices([0] * len(self.base.decisions()))
        return self.base.sample(np.random.default_rng(0))

    # -- renaming architectures between the base and the wrapped space -----------------------
    def _wrap(self, arch: Architecture) -> Architecture:
        return Architecture(self.name, arch.choices, arch.text)

    def _unwrap(self, arch: Architecture) -> Architecture:
        return Architecture(self.base.name, self.check(arch).choices, arch.text)

    def _wrap_any(self, value: Any) -> Any:
        if isinstance(value, Architecture) and value.space == self.base.name:
            return self._wrap(value)
        if isinstance(value, list):
            return [self._wrap_any(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._wrap_any(v) for v in value)
        return value

    def _unwrap_any(self, value: Any) -> Any:
        if isinstance(value, Architecture):
            return self._unwrap(value)
        return value

    def base_arch(self, arch: Architecture) -> Architecture:
        """``arch`` as an architecture of the base space (the same choices and text).

        Raises:
            InvalidArchitectureError: ``arch`` is not of this space.
        """
        return self._unwrap(arch)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_") or attribute not in _FORWARDED or "base" not in vars(self):
            raise AttributeError(
                f"{type(self).__name__} (space {vars(self).get('name', '?')!r}) has no "
                f"attribute {attribute!r}"
            )
        value = getattr(self.base, attribute)
        if not callable(value):
            return value

        def forwarded(*args: Any, **kwargs: Any) -> Any:
            result = value(
                *(self._unwrap_any(a) for a in args),
                **{k: self._unwrap_any(v) for k, v in kwargs.items()},
            )
            return self._wrap_any(result)

        forwarded.__doc__ = value.__doc__
        return forwarded

    # -- the base's architectures, renamed -----------------------------------------------------
    @property
    def encodings(self) -> tuple[str, ...]:
        """The base space's encodings."""
        return tuple(self.base.encodings)

    def parse(self, text: str) -> Architecture:
        """The architecture written as ``text`` in the base space's text form."""
        return self._wrap(self.base.parse(text))

    def from_choices(self, choices: Sequence[int]) -> Architecture:
        return self._wrap(self.base.from_choices(choices))

    def decisions(self) -> tuple[Decision, ...]:
        return self.base.decisions()

    def sample(self, rng: np.random.Generator) -> Architecture:
        return self._wrap(self.base.sample(rng))

    def mutate(
        self, arch: Architecture, rng: np.random.Generator, *, rate: float | None = None
    ) -> Architecture:
        return self._wrap(self.base.mutate(self._unwrap(arch), rng, rate=rate))

    def crossover(
        self, first: Architecture, second: Architecture, rng: np.random.Generator
    ) -> Architecture:
        return self._wrap(self.base.crossover(self._unwrap(first), self._unwrap(second), rng))

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        return [self._wrap(a) for a in self.base.neighbours(self._unwrap(arch))]

    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        return self.base.encode(self._unwrap(arch), kind)

    def canonical(self, arch: Architecture) -> Architecture:
        """The base space's canonical form: binarising replaces each layer by its binary
        form in place, so architectures that build the same real network build the same
        binary network."""
        return self._wrap(self.base.canonical(self._unwrap(arch)))

    def drawing(self, arch: Architecture) -> dict[str, Any]:
        """The base architecture's drawing, with the setting ``binary``."""
        from nasforge.spaces._drawing import with_settings

        return with_settings(self.base.drawing(self._unwrap(arch)), {"binary": True})

    @property
    def dedupe_method(self) -> str | None:
        return self.base.dedupe_method

    @property
    def size(self) -> int | None:
        return self.base.size

    def __iter__(self) -> Iterator[Architecture]:
        return (self._wrap(a) for a in self.base)

    def supports(self, capability: str) -> bool:
        """The base space's capabilities, but for its (real-valued) supernet."""
        if capability == "build":
            return True
        return capability not in _NOT_WRAPPED and self.base.supports(capability)

    # -- networks ----------------------------------------------------------------------------
    def build(self, arch: Architecture, **kwargs: Any) -> nn.Module:
        """The binary form (:func:`nasforge.ops.binary.binarize`: first convolution and last
        linear layer real) of the base network of ``arch`` built with ``kwargs``."""
        from nasforge.ops.binary import binarize

        network: nn.Module = self.base.build(self._unwrap(arch), **kwargs)
        return binarize(network)

    def presets(self) -> Mapping[str, Mapping[str, Any]]:
        return self.base.presets()

    def recipe(self) -> Any:
        return self.base.recipe()

    def costs(self, arch: Architecture, **kwargs: Any) -> dict[str, float]:
        """``params_M`` (millions of parameters of the binary network, real or binary alike)
        and ``bops`` (bit-operations of one image: multiply-adds x 1 x 1 in binary layers,
        x 32 x 32 in real ones, see the module docstring; :func:`nasforge.ops.quant.bops`) of
        the network :meth:`build` makes with ``kwargs`` (built on the meta device: no weights
        are drawn); the image side is that of :func:`nasforge.spaces._forms.input_side`."""
        import torch

        from nasforge.hardware import count_params
        from nasforge.ops.quant import bops

        with torch.device("meta"):
            network = self.build(arch, **kwargs)
        side = input_side(self.base, self._unwrap(arch), kwargs)
        return {
            "params_M": count_params(network) / 1e6,
            "bops": bops(network, (3, side, side)),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base!r})"
