"""EPE-NAS: per-class correlation of input gradients."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge import proxies
from nasforge.proxies.base import Batch, Proxy

__all__ = ["EpeNas"]

_K = 1e-5


@proxies.register("epe_nas")
class EpeNas(Proxy):
    """How the input gradients of the images of each class correlate.

    Lopes, V., Alirezazadeh, S. and Alexandre, L. A. "EPE-NAS: Efficient Performance
    Estimation Without Training for Neural Architecture Search." ICANN 2021,
    arXiv:2102.08099, Equations 3-5.

    The input Jacobian ``J`` is that of ``jacov`` (shared pass). Its rows are grouped by the
    images' labels; for a class ``c`` with correlation matrix ``Sigma_c`` of its rows,
    ``s_c = sum log(|Sigma_c| + k)`` (``k = 1e-5``, element-wise). With at most 100 outputs
    the score is ``sum_c |s_c|``; with more, each ``s_c`` is first divided by its number of
    images and the score is ``sum_c sum_c' |s_c - s_c'| / C`` over the ``C`` classes present.
    Classes with one image contribute ``log(1 + k)``, as in the reference. An undefined
    correlation (constant gradients) makes the score ``UNDEFINED_SCORE``.

    Example:
        >>> import torch
        >>> torch.manual_seed(0) and None
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 6), torch.nn.ReLU(),
        ...                           torch.nn.Linear(6, 3))
        >>> b = Batch(torch.randn(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2]), num_classes=3)
        >>> EpeNas().score(net, b) > 0
        True
    """

    name = "epe_nas"
    shared_pass = "input_jacobian"

    def reduce(self, result: Mapping[str, Any], batch: Batch) -> float:
        import numpy as np

        jacobian = result["jacobian"]
        labels = batch.targets.detach().cpu().numpy()
        many = result["num_outputs"] > 100
        per_class: dict[int, float] = {}
        with np.errstate(all="ignore"):
            for c in sorted(set(labels.tolist())):
                rows = jacobian[labels == c]
                if len(rows) == 1:
                    s = float(np.log(1.0 + _K))
                else:
                    corr = np.corrcoef(rows)
                    s = float(np.sum(np.log(np.abs(corr) + _K)))
                    if many:
                        s /= len(corr)
                per_class[c] = s
        values = np.array(list(per_class.values()))
        if not many:
            return float(np.sum(np.abs(values)))
        return float(np.sum(np.abs(values[:, None] - values[None, :])) / len(values))
