"""The K-way supernet of few-shot NAS (:class:`FewShotSupernet`); private because it imports
torch: use it as :class:`nasforge.elastic.few_shot.FewShotSupernet`."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nasforge.elastic.few_shot import RESTRICTION, Split, check_decision, check_k, decision_kind
from nasforge.errors import InvalidConfigError

if TYPE_CHECKING:
    from nasforge.architecture import Architecture

__all__ = ["FewShotSupernet"]


class FewShotSupernet(nn.Module):
    """K sub-supernets, deep copies of one elastic supernet that inherit its weights, each
    owning some options of the split decision, behind the elastic supernet's interface.

    ``set_active(arch)`` activates ``arch`` in the part that owns its option of the split
    decision and routes ``forward``, ``forward_block``, ``extract()`` and ``bn_modules()``
    there; ``sample(rng, part=i)`` draws only part ``i``'s options.

    Args:
        parent: The trained elastic supernet (left unchanged; each part copies it).
        split: The decision and the option groups of the parts.

    Attributes:
        parts: The sub-supernets (``nn.ModuleList``), part ``i`` owning ``split.groups[i]``.
        split: The :class:`~nasforge.elastic.few_shot.Split`.
        space, settings: The parent's.
        current: The index of the part of the active sub-network.

    Raises:
        InvalidConfigError: The split's decision cannot be split on, or its groups do not
            hold each option exactly once.
    """

    def __init__(self, parent: nn.Module, split: Split) -> None:
        super().__init__()
        space: Any = parent.space
        self.space: Any = space
        self.settings = dict(getattr(parent, "settings", {}))
        self.index = check_decision(space, split.decision)
        options = space.decisions()[self.index].options
        owned = sorted(i for g in split.groups for i in g)
        if owned != list(range(len(options))) or any(not g for g in split.groups):
            raise InvalidConfigError(
                f"The parts of a split on {split.decision!r} must hold each of its "
                f"{len(options)} options exactly once, got groups {split.groups}."
            )
        check_k(len(options), len(split.groups))
        self.split = split
        self.options = tuple(options)
        self.owner = {i: part for part, g in enumerate(split.groups) for i in g}
        self.parts = nn.ModuleList(copy.deepcopy(parent) for _ in split.groups)
        self.current = 0
        #: True while the parts stand in for a split to be read from a state_dict
        self.provisional = False

    def _adopt(self, split: Split) -> None:
        """Rebuild the parts for ``split`` (copies of the first part, whose weights the
        ``state_dict`` being loaded replaces)."""
        index = check_decision(self.space, split.decision)
        options = self.space.decisions()[index].options
        check_k(len(options), len(split.groups))
        template = self._part(0)
        self.parts = nn.ModuleList(copy.deepcopy(template) for _ in split.groups)
        self.index, self.options, self.split = index, tuple(options), split
        self.owner = {i: part for part, g in enumerate(split.groups) for i in g}
        self.current = 0
        self.provisional = False

    def _part(self, index: int) -> Any:
        return self.parts[index]

    # -- routing -------------------------------------------------------------------------------
    def _arch(self, arch: Architecture | str) -> Architecture:
        found: Architecture = (
            self.space.parse(arch) if isinstance(arch, str) else self.space.check(arch)
        )
        return found

    def part_of(self, arch: Architecture | str) -> int:
        """The index of the part that owns ``arch``."""
        return self.owner[self._arch(arch).choices[self.index]]

    def set_active(self, arch: Architecture | str) -> None:
        """Activate ``arch`` in the part that owns it (and route the forward pass there)."""
        found = self._arch(arch)
        self.current = self.owner[found.choices[self.index]]
        self._part(self.current).set_active(found)

    @property
    def active(self) -> Architecture:
        """The active sub-network."""
        arch: Architecture = self._part(self.current).active
        return arch

    @property
    def active_resolution(self) -> int:
        """The input side of the active sub-network."""
        return int(self._part(self.current).active_resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self._part(self.current)(x)
        return out

    # -- sampling ------------------------------------------------------------------------------
    def sample(
        self, rng: np.random.Generator, *, part: int | None = None, **restrictions: Any
    ) -> Architecture:
        """A sub-network drawn uniformly from the allowed options (``restrictions``: the
        keywords of the elastic supernet's ``sample``); with ``part``, its split decision is
        drawn uniformly from that part's options only.

        Raises:
            InvalidConfigError: ``part`` out of range, or none of the part's options within
                ``restrictions``.
        """
        if part is not None and (
            isinstance(part, bool) or not isinstance(part, int) or not 0 <= part < len(self.parts)
        ):
            raise InvalidConfigError(
                f"part must be an integer in 0..{len(self.parts) - 1}, got {part!r}."
            )
        arch: Architecture = self._part(0).sample(rng, **restrictions)
        if part is None:
            return arch
        allowed = list(self.split.groups[part])
        limit = restrictions.get(RESTRICTION[decision_kind(self.split.decision)])
        if limit is not None:
            allowed = [i for i in allowed if self.options[i] in set(limit)]
        if not allowed:
            raise InvalidConfigError(
                f"Part {part} owns {self.split.decision} in "
                f"{[self.options[i] for i in self.split.groups[part]]}, none of them allowed "
                f"by {restrictions}."
            )
        choices = list(arch.choices)
        choices[self.index] = allowed[int(rng.integers(len(allowed)))]
        drawn: Architecture = self.space.from_choices(choices)
        return drawn

    def largest(self) -> Architecture:
        """The largest sub-network."""
        arch: Architecture = self._part(0).largest()
        return arch

    def smallest(self) -> Architecture:
        """The smallest sub-network."""
        arch: Architecture = self._part(0).smallest()
        return arch

    # -- the rest of the interface -------------------------------------------------------------
    def extract(self, arch: Architecture | str | None = None) -> nn.Module:
        """The stand-alone network of ``arch`` (default: the active one) from its part."""
        if arch is None:
            network: nn.Module = self._part(self.current).extract()
            return network
        found = self._arch(arch)
        network = self._part(self.owner[found.choices[self.index]]).extract(found)
        return network

    def reorder_channels(self, *args: Any, **kwargs: Any) -> None:
        """Sort every part's channels by importance (the parts' ``reorder_channels``)."""
        for index in range(len(self.parts)):
            self._part(index).reorder_channels(*args, **kwargs)

    @property
    def num_blocks(self) -> int:
        """Blocks for block-wise training (the parts')."""
        return int(self._part(0).num_blocks)

    def forward_block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Block ``index`` of the active sub-network, in its part."""
        out: torch.Tensor = self._part(self.current).forward_block(index, x)
        return out

    def block_shape(self, index: int, resolution: int) -> tuple[int, ...]:
        """The output shape of block ``index`` at ``resolution`` (the parts')."""
        return tuple(self._part(0).block_shape(index, resolution))

    def bn_modules(self) -> list[nn.Module]:
        """The batch norms of the active part (those the active sub-network uses)."""
        return list(self._part(self.current).bn_modules())

    # -- checkpoints ---------------------------------------------------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        """The split, saved in the module's ``state_dict``."""
        return {"split": self.split.to_dict()}

    def set_extra_state(self, state: Any) -> None:
        """Check that a loaded ``state_dict`` was split the same way.

        Raises:
            InvalidConfigError: The checkpoint's parts are another split's.
        """
        saved = Split.from_dict(state["split"])
        if self.provisional:
            self._adopt(saved)
            return
        if not saved.same_parts(self.split):
            raise InvalidConfigError(
                f"The checkpoint's supernet is split on {saved.decision!r} into parts "
                f"{[list(g) for g in saved.groups]}, this one on {self.split.decision!r} into "
                f"{[list(g) for g in self.split.groups]}; load it with the schedule state it "
                "was saved with."
            )
