"""Zero-cost proxies: score an untrained network from one batch. ``create("synflow")``.

Each proxy is one module of this package, registered under the name NAS-Bench-Suite-Zero
gives it (``synflow``, ``snip``, ``grasp``, ``fisher``, ``grad_norm``, ``jacov``, ``nwot``,
``zen``, ``epe_nas``, ``l2_norm``, ``plain``, ``params``, ``flops``), plus the proxies of
transformers (``dss``, ``synaptic_diversity``, ``synaptic_saliency`` of TF-TAS and
``decoder_params`` of LiteTransformerSearch), which need attention and MLP layers
(``Proxy.requires``); a dash may stand for the underscore (``grad-norm``). See
:mod:`nasforge.proxies.base` for the conventions they share.

Example:
    >>> import torch
    >>> from nasforge import proxies, spaces
    >>> space = spaces.create("nb201")
    >>> model = space.build(space.from_index(6111), channels=4, cells_per_stage=1)
    >>> batch = proxies.Batch(torch.randn(8, 3, 8, 8), torch.arange(8) % 10, num_classes=10)
    >>> scores = proxies.compute(model, ["synflow", "nwot", "params"], batch)
    >>> sorted(scores)
    ['nwot', 'params', 'synflow']
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.proxies.base import UNDEFINED_SCORE, Batch, Proxy, check_model
from nasforge.registry import Registry

if TYPE_CHECKING:
    from torch import nn

__all__ = ["UNDEFINED_SCORE", "Batch", "Proxy", "compute", "create", "get", "names", "register"]

_REGISTRY: Registry[Proxy] = Registry("zero-cost proxy", __name__)
register = _REGISTRY.register


def _key(name: str) -> str:
    return name.replace("-", "_") if isinstance(name, str) else name


def get(name: str) -> Any:
    """The class registered as ``name`` (:class:`~nasforge.errors.UnknownNameError` if none)."""
    return _REGISTRY.get(_key(name))


def create(name: str) -> Proxy:
    """The proxy registered as ``name``."""
    return _REGISTRY.create(_key(name))


def names() -> list[str]:
    """Names of the registered proxies."""
    return _REGISTRY.names()


def compute(
    model: nn.Module,
    proxies: Sequence[str],
    batch: Batch,
    *,
    seed: int = 0,
    timings: dict[str, float] | None = None,
    fresh: Callable[[], nn.Module] | None = None,
) -> dict[str, float]:
    """Several proxies of one model; proxies that read the same pass share it.

    Each proxy (or pass) works on its own copy of ``model``, which is left unchanged.

    Args:
        model: A freshly initialised network with ``num_classes`` outputs.
        proxies: Registry names.
        batch: The batch (see :class:`Batch`).
        seed: Seed of the proxies' own random draws (zen).
        timings: If given, filled with the seconds each proxy took (a shared pass is
            charged to the first proxy that reads it, the others get the time of their
            reduction only).
        fresh: Builds a new copy of ``model`` (same weights); faster than the deep copy
            each proxy otherwise takes of ``model``.

    Returns:
        Proxy name to score (``UNDEFINED_SCORE`` where a score is not defined).

    Raises:
        UnknownNameError: A name that is not a registered proxy (the closest is suggested).
    """
    check_model(model)
    from nasforge.proxies.base import PASSES

    chosen = [create(name) for name in proxies]
    passes: dict[str, Any] = {}
    out: dict[str, float] = {}

    def private() -> nn.Module:
        return fresh() if fresh is not None else copy.deepcopy(model)

    for proxy in chosen:
        start = time.perf_counter()
        if proxy.shared_pass is None:
            out[proxy.name] = proxy.finite(proxy._score(private(), batch, seed))
        else:
            if proxy.shared_pass not in passes:
                passes[proxy.shared_pass] = PASSES[proxy.shared_pass](private(), batch)
            out[proxy.name] = proxy.finite(proxy.reduce(passes[proxy.shared_pass], batch))
        if timings is not None:
            timings[proxy.name] = time.perf_counter() - start
    return out
