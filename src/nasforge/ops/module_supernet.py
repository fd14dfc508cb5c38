"""The supernet of a user's model written with :mod:`nasforge.nn` choices.

:class:`ModuleSupernet` wraps the weight-sharing form of the model (what its constructor
builds outside :func:`nasforge.nn.fixed`) in the :class:`~nasforge.ops.supernet.Supernet`
interface the one-shot methods talk to: one :class:`~nasforge.ops.supernet.DecisionGroup`
of one row per decision (label), in the order the model created them. A forward sets every
decision's weights, index and edge weight (``weights[g][0]``, ``index[g][0]``,
``edge_weights[g][0]``) and calls the model, whose choices mix as
:mod:`nasforge.nn.choice` and :mod:`nasforge.nn.layers` describe: dense for DARTS and
single-level DARTS, one path with straight-through weights for GDAS, one path for SPOS,
partial channels in every ``LayerChoice`` for PC-DARTS (``partial_channels=K``).

:meth:`ModuleSupernet.extract` builds the plain network of an architecture (the space's
``build``, i.e. the model inside ``fixed``) and copies into it the supernet's weights: the
chosen candidate of each layer choice, the first blocks of each repeat, and the leading
channels and centre kernel of each value-aware layer; its output equals the supernet's
one-path output for that architecture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.nn._trace import Site, option_text
from nasforge.nn.choice import LayerChoice, Repeat
from nasforge.nn.layers import copy_sliced
from nasforge.ops.supernet import DecisionGroup, Supernet, check_partial

if TYPE_CHECKING:
    from nasforge.architecture import Architecture
    from nasforge.spaces.module import ModuleSpace

__all__ = ["ModuleSupernet"]


class ModuleSupernet(Supernet):
    """A user's model in its weight-sharing form, as the one-shot methods see it.

    Args:
        space: The :class:`~nasforge.spaces.module.ModuleSpace` it belongs to.
        model: The weight-sharing model (built while tracing the space's factory).
        sites: Its decisions, in the order of ``space.decisions()``.
        partial_channels: PC-DARTS's ``K`` for every layer choice (1: every channel).
        build_kwargs: Keyword arguments of the space's ``build`` for :meth:`extract`.

    Raises:
        UnsupportedOperationError: ``partial_channels > 1`` and the model has no layer choice.
    """

    space: ModuleSpace

    def __init__(
        self,
        space: ModuleSpace,
        model: nn.Module,
        sites: Sequence[Site],
        partial_channels: int = 1,
        build_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.space = space
        self.model = model
        self.sites = list(sites)
        self.build_kwargs = dict(build_kwargs or {})
        self.groups = tuple(
            DecisionGroup(site.label, tuple(option_text(o) for o in site.options), 1)
            for site in self.sites
        )
        if partial_channels != 1:
            check_partial(partial_channels, partial_channels)
            choices = [m for m in model.modules() if isinstance(m, LayerChoice)]
            if not choices:
                raise UnsupportedOperationError(
                    f"The model of space {space.name!r} has no LayerChoice, so PC-DARTS's "
                    "partial channels have nothing to apply to; search it with darts, gdas "
                    "or spos."
                )
            for choice in choices:
                choice.partial = partial_channels
        self.partial_channels = partial_channels

    def forward(
        self,
        x: Any,
        weights: Sequence[torch.Tensor | None] | None = None,
        index: Sequence[Sequence[int]] | None = None,
        edge_weights: Sequence[Any] | None = None,
    ) -> Any:
        """The model's output with each decision mixed by ``weights[g][0]`` (dense), or one
        path ``index[g][0]`` (with ``weights``: GDAS's straight-through form)."""
        if weights is None and index is None:
            raise InvalidConfigError(
                "A supernet forward needs the decisions' weights (dense) or an index (one "
                "path), one entry per decision group."
            )
        for g, site in enumerate(self.sites):
            row = None if weights is None else weights[g]
            site.set(
                None if row is None else row[0],
                None if index is None else int(index[g][0]),
                None if edge_weights is None or edge_weights[g] is None else edge_weights[g][0],
            )
        try:
            return self.model(x)
        finally:
            for site in self.sites:
                site.clear()

    def path(self, arch: Architecture) -> list[list[int]]:
        return [[int(c)] for c in self.space.check(arch).choices]

    def from_path(self, index: Sequence[Sequence[int]]) -> Architecture:
        return self.space.from_choices([int(row[0]) for row in index])

    def extract(self, arch: Architecture) -> nn.Module:
        """The plain network of ``arch`` (``space.build(arch)``) with the supernet's weights
        (see the module docstring), in the supernet's training mode."""
        values = self.space.values(arch)
        net: nn.Module = self.space.build(arch, **self.build_kwargs)
        device = next((p.device for p in self.parameters()), None)
        if device is not None:
            net = net.to(device)
        _inherit(self.model, net, values)
        return net.train(self.training)


def _inherit(source: nn.Module, target: nn.Module, values: Mapping[str, Any]) -> None:
    """Copy the weights of ``source`` (weight-sharing) into ``target`` (its fixed form)."""
    if isinstance(source, LayerChoice):
        chosen = source.names.index(values[source.label])
        _inherit(source.candidates[chosen], target, values)
        return
    if isinstance(source, Repeat):
        depth = source.depths[0] if source.site is None else int(values[source.site.label])
        blocks = list(target.children())
        for i in range(depth):
            _inherit(source.blocks[i], blocks[i], values)
        return
    copy_sliced(source, target)
    children = dict(target.named_children())
    for name, child in source.named_children():
        if name not in children:
            raise InvalidConfigError(
                f"Cannot inherit the weights of {type(source).__name__}.{name}: the fixed "
                f"network has no module of that name; the model must create the same "
                "submodules in its fixed and weight-sharing forms."
            )
        _inherit(child, children[name], values)
