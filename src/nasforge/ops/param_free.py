"""The names of the operations that carry no parameters (without importing PyTorch).

A growing share of them in a cell is DARTS's failure mode (Zela, A. et al. "Understanding and
Robustifying Differentiable Architecture Search." ICLR 2020, arXiv:1909.09656): the supernets
count them (:data:`nasforge.ops.supernet.PARAM_FREE`) and the drawings of architectures mark
them (:meth:`nasforge.spaces.base.SearchSpace.drawing`) from this one set.
"""

from __future__ import annotations

__all__ = ["PARAM_FREE"]

#: Operations without parameters: zero, identities and poolings.
PARAM_FREE = frozenset({"none", "skip_connect", "avg_pool_3x3", "max_pool_3x3", "skip", "identity"})
