"""A softmax regression whose loss gradient is known in closed form."""

from __future__ import annotations

import torch

from nasforge.proxies import Batch


def softmax_regression(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, 4, generator=g)
    x = torch.randn(6, 4, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(w)
    batch = Batch(x.reshape(6, 1, 2, 2), y, num_classes=3)
    p = torch.softmax(x @ w.t(), dim=1)
    onehot = torch.nn.functional.one_hot(y, 3).float()
    dz = (p - onehot) / 6  # dL/dlogits of the mean cross-entropy
    grad = dz.t() @ x  # dL/dW
    return net, batch, w, x, dz, grad
