"""A user's PyTorch model with :mod:`nasforge.nn` choices, as a search space.

:class:`ModuleSpace` traces the model's constructor (a class or a zero-argument function
returning the ``nn.Module``) once to find its choices: one decision per label, in the order
the model creates them, whose options are the candidates' names (a ``LayerChoice`` given a
mapping) or indices (given a list), the values of a ``ValueChoice``, the depths of a
``Repeat`` and the inputs of an ``InputChoice``. It is a product of these decisions, so every
black-box strategy searches it (predictor-guided ones through the one-hot encoding), and it
has both capabilities of a trainable space: :meth:`ModuleSpace.build` is the plain network of
an architecture (the constructor run inside :func:`nasforge.nn.fixed`), and
:meth:`ModuleSpace.supernet` the weight-sharing network the one-shot methods train
(:class:`nasforge.ops.module_supernet.ModuleSupernet`), with no supernet written by the user.
The decisions inside blocks a ``Repeat`` leaves out are kept and change nothing (networks are
deduplicated by hashing what they build).

The approach follows NNI's model spaces (Microsoft NNI, ``nni/nas/nn/pytorch``) and its one-
shot super-modules; the code is nasforge's.

Text: ``label=value,label=value,...`` in the order of the decisions, e.g.
``conv=sep3,width=16,depth=2``.

Importing this module does not import torch; tracing and building do.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from nasforge.architecture import Architecture
from nasforge.errors import InvalidArchitectureError, InvalidConfigError, NasforgeError
from nasforge.spaces._user import build_settings
from nasforge.spaces.base import Decision, ValuedSpace

__all__ = ["ModuleSpace"]

logger = logging.getLogger(__name__)

#: Presets of a model space: the model fixes its own shape, so they hold no settings (a user
#: may pass their own, e.g. ``{"reduced": {"resolution": 16, "data_fraction": 0.1}}``).
DEFAULT_PRESETS: dict[str, dict[str, Any]] = {"paper": {}, "search": {}, "reduced": {}}


class ModuleSpace(ValuedSpace):
    """The search space of a model written with :mod:`nasforge.nn` choices.

    Args:
        factory: A class or a function building the model; it takes no arguments, or
            keyword arguments that :meth:`build` and :meth:`supernet` pass through (a
            ``num_classes`` argument receives the data's classes; one it lacks is dropped).
        name: The space's name, recorded with studies (``"package.module:Net"`` lets
            ``nasforge.spaces.create`` rebuild it by import in another process).
        presets: Named build settings (default: ``paper``, ``search`` and ``reduced``, all
            empty, since the model fixes its own shape); ``resolution``, ``data_fraction``
            and ``batch_size`` in a preset set the one-shot search's data.

    Raises:
        InvalidConfigError: ``factory`` is not callable, ``name`` is empty, the model has no
            choice, or a label is used twice with different options (named).

    Example:
        >>> from torch import nn
        >>> import nasforge.nn as nnf
        >>> def net():
        ...     return nn.Sequential(
        ...         nnf.Conv2d(3, nnf.ValueChoice([4, 8], label="width"), 3, padding=1),
        ...         nnf.LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh()}, label="act"),
        ...     )
        >>> space = ModuleSpace(net, name="doc:net")
        >>> [(d.name, d.options) for d in space.decisions()]
        [('width', (4, 8)), ('act', ('relu', 'tanh'))]
        >>> arch = space.parse("width=4,act=tanh")
        >>> space.build(arch)
        Sequential(
          (0): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
          (1): Tanh()
        )
    """

    def __init__(
        self,
        factory: Callable[..., Any],
        *,
        name: str,
        presets: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not callable(factory):
            raise InvalidConfigError(
                f"ModuleSpace takes a model class or a function returning the model, got "
                f"{type(factory).__name__}."
            )
        if not isinstance(name, str) or not name:
            raise InvalidConfigError(
                "ModuleSpace needs a name (e.g. 'mymodule:Net', how a study records it)."
            )
        self.name = name
        self.factory = factory
        self._presets = {k: dict(v) for k, v in (presets or DEFAULT_PRESETS).items()}
        self._decisions = self._trace()
        if not self._decisions:
            raise InvalidConfigError(
                f"The model of space {name!r} makes no choice (no LayerChoice, ValueChoice, "
                "InputChoice or Repeat with a depth choice from nasforge.nn was created); "
                "there is nothing to search."
            )

    # -- the model ------------------------------------------------------------------------------
    def _call(self, kwargs: Mapping[str, Any]) -> Any:
        """``factory(**kwargs)`` with the keywords it takes (``num_classes`` dropped if not)."""
        try:
            signature = inspect.signature(self.factory)
        except (TypeError, ValueError):  # a builtin without a signature: pass nothing
            return self.factory()
        params = signature.parameters
        given = build_settings(
            kwargs,
            params,
            params,
            lambda key: InvalidConfigError(
                f"The model of space {self.name!r} takes no argument {key!r}; its "
                f"arguments: {', '.join(params) or 'none'}."
            ),
        )
        return self.factory(**given)

    def _trace(self) -> tuple[Decision, ...]:
        import torch

        from nasforge.nn._trace import tracing

        try:  # on the meta device: the decisions without allocating the weights
            with tracing() as trace, torch.device("meta"):
                self._call({})
        except NasforgeError:
            raise
        except Exception:  # a model that computes with real values while it is built
            with tracing() as trace:
                self._call({})
        return tuple(Decision(site.label, site.options) for site in trace.sites.values())

    def decisions(self) -> tuple[Decision, ...]:
        return self._decisions

    def presets(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self._presets.items()}

    def build(self, arch: Architecture, **kwargs: Any) -> Any:
        """The plain network of ``arch``: the model built inside
        :func:`nasforge.nn.fixed` with the architecture's values (``kwargs`` go to the
        factory where it takes them)."""
        from nasforge.nn._trace import fixed

        values = self.values(arch)
        with fixed(values, strict=False):
            return self._call(kwargs)

    def supernet(self, **settings: Any) -> Any:
        """The weight-sharing network (:class:`nasforge.ops.module_supernet.ModuleSupernet`);
        ``partial_channels=K`` gives every ``LayerChoice`` PC-DARTS's partial channels, the
        other settings go to the factory where it takes them.

        Raises:
            InvalidConfigError: The model made other choices than when the space was traced
                (a constructor that is not deterministic).
        """
        from nasforge.nn._trace import tracing
        from nasforge.ops.module_supernet import ModuleSupernet

        partial = settings.pop("partial_channels", 1)
        with tracing() as trace:
            model = self._call(settings)
        sites = list(trace.sites.values())
        found = tuple(Decision(site.label, site.options) for site in sites)
        if found != self._decisions:
            raise InvalidConfigError(
                f"The model of space {self.name!r} made other choices when built again "
                f"({[d.name for d in found]} instead of {[d.name for d in self._decisions]}); "
                "its constructor must create the same choices every time."
            )
        kwargs = {k: v for k, v in settings.items() if k != "resolution"}
        return ModuleSupernet(self, model, sites, partial, build_kwargs=kwargs)

    # -- text -----------------------------------------------------------------------------------
    def _text(self, values: dict[str, Any]) -> str:
        from nasforge.nn._trace import option_text

        return ",".join(f"{d.name}={option_text(values[d.name])}" for d in self._decisions)

    def _parse_values(self, text: str) -> dict[str, Any]:
        from nasforge.nn._trace import option_text

        decisions = {d.name: d for d in self._decisions}
        values: dict[str, Any] = {}
        for part in text.replace(" ", "").split(","):
            label, equals, written = part.partition("=")
            if not equals:
                raise InvalidArchitectureError(f"part {part!r} is not label=value.")
            decision = decisions.get(label)
            if decision is None:
                raise InvalidArchitectureError(
                    f"{label!r} is not a decision; the decisions are {', '.join(decisions)}."
                )
            matches = [o for o in decision.options if option_text(o) == written]
            if not matches:
                raise InvalidArchitectureError(
                    f"{label} = {written!r} is not an option; choose from "
                    f"{', '.join(map(option_text, decision.options))}."
                )
            values[label] = matches[0]
        missing = [name for name in decisions if name not in values]
        if missing:
            raise InvalidArchitectureError(f"no value for {', '.join(missing)}.")
        return values

    def parse(self, text: str) -> Architecture:
        return self._read_text(text)

    def __repr__(self) -> str:
        factory = getattr(self.factory, "__qualname__", self.factory)
        return f"ModuleSpace({factory!r}, name={self.name!r})"
