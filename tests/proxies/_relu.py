"""A one-hidden-layer ReLU network and its input Jacobian and ReLU codes, by hand."""

from __future__ import annotations

import torch

from nasforge.proxies import Batch


def relu_net(n: int = 8, seed: int = 0, classes: int = 3):
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(16, 5, generator=g)
    w2 = torch.randn(classes, 16, generator=g)
    x = torch.randn(n, 5, generator=g)
    net = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(5, 16, bias=False),
        torch.nn.ReLU(),
        torch.nn.Linear(16, classes, bias=False),
    )
    with torch.no_grad():
        net[1].weight.copy_(w1)
        net[3].weight.copy_(w2)
    batch = Batch(x.reshape(n, 1, 1, 5), torch.arange(n) % classes, num_classes=classes)
    pre = x @ w1.t()
    codes = (pre > 0).double()
    # d sum(out) / dx = W1^T (relu'(pre) * (W2^T 1))
    jacobian = ((pre > 0).float() * w2.sum(0)) @ w1
    return net, batch, codes.numpy(), jacobian.double().numpy()
