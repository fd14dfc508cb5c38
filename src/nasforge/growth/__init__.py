"""Grow and compress trained networks by function-preserving transformations.

* :mod:`nasforge.growth.net2net` — Net2WiderNet / Net2DeeperNet (Chen, Goodfellow and
  Shlens, ICLR 2016, arXiv:1511.05641) and the layer removal / shrinkage of N2N, on any
  network :mod:`torch.fx` can trace: :func:`layers`, :func:`widen`, :func:`deepen`,
  :func:`remove`, :func:`shrink`, :func:`describe`;
* :func:`eas` (in the private module ``_eas``, so that no submodule shadows the function)
  — Efficient Architecture Search by network transformation (Cai et al., AAAI
  2018, arXiv:1707.04873): a reinforcement-learning meta-controller that widens and deepens a
  network with Net2Net operations, reusing its weights.

Importing this package does not import torch; the functions do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasforge.growth._eas import EASResult, GrownNetwork, eas
    from nasforge.growth.n2n_learning import N2NResult, n2n
    from nasforge.growth.net2net import Layer, deepen, describe, layers, remove, shrink, widen

__all__ = [
    "EASResult",
    "GrownNetwork",
    "Layer",
    "N2NResult",
    "deepen",
    "describe",
    "eas",
    "layers",
    "n2n",
    "remove",
    "shrink",
    "widen",
]

_HOMES = {
    "EASResult": "nasforge.growth._eas",
    "GrownNetwork": "nasforge.growth._eas",
    "eas": "nasforge.growth._eas",
    "N2NResult": "nasforge.growth.n2n_learning",
    "n2n": "nasforge.growth.n2n_learning",
    "Layer": "nasforge.growth.net2net",
    "deepen": "nasforge.growth.net2net",
    "describe": "nasforge.growth.net2net",
    "layers": "nasforge.growth.net2net",
    "remove": "nasforge.growth.net2net",
    "shrink": "nasforge.growth.net2net",
    "widen": "nasforge.growth.net2net",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'nasforge.growth' has no attribute {name!r}")
