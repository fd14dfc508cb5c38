"""Lion: one step and two steps equal the formula of Chen et al. (2023) on a hand example."""

from __future__ import annotations

import pytest
import torch

from nasforge.errors import InvalidConfigError
from nasforge.train.lion import Lion


def test_update_equals_the_formula_by_hand() -> None:
    lr, wd, b1, b2 = 0.1, 0.5, 0.9, 0.99
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0]))
    opt = Lion([p], lr=lr, betas=(b1, b2), weight_decay=wd)
    g1 = torch.tensor([0.3, -0.1, 0.0, -2.0])
    p.grad = g1.clone()
    opt.step()
    # m = 0: c = (1 - b1) g -> sign(g); theta <- theta - lr (sign(c) + wd theta)
    theta1 = torch.tensor(
        [1.0 - 0.1 * (1 + 0.5), -2.0 - 0.1 * (-1 - 1.0), 0.5 - 0.1 * 0.25, 3.0 - 0.1 * (-1 + 1.5)]
    )
    assert torch.allclose(p.detach(), theta1)
    m1 = (1 - b2) * g1
    assert torch.allclose(opt.state[p]["exp_avg"], m1)
    g2 = torch.tensor([-0.01, 0.5, 1.0, 0.1])
    p.grad = g2.clone()
    opt.step()
    c = b1 * m1 + (1 - b1) * g2  # [-0.0003-0.001, ...]: signs -, +, +, -(0.0002*... )
    theta2 = theta1 - lr * (torch.sign(c) + wd * theta1)
    assert torch.allclose(p.detach(), theta2)
    assert torch.allclose(opt.state[p]["exp_avg"], b2 * m1 + (1 - b2) * g2)
    # by hand for the last coordinate: c = 0.9 * (0.01 * -2) + 0.1 * 0.1 = -0.008 -> sign -1
    assert c[3].item() == pytest.approx(-0.008)
    assert p[3].item() == pytest.approx(theta1[3].item() - 0.1 * (-1 + 0.5 * theta1[3].item()))


def test_parameters_without_gradient_are_left_alone() -> None:
    a = torch.nn.Parameter(torch.ones(2))
    b = torch.nn.Parameter(torch.ones(2))
    opt = Lion([a, b], lr=0.5)
    a.grad = torch.tensor([1.0, -1.0])
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2))
    assert torch.equal(a.detach(), torch.tensor([0.5, 1.5]))


def test_minimises_a_quadratic() -> None:
    p = torch.nn.Parameter(torch.tensor([5.0, -3.0]))
    opt = Lion([p], lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        (p**2).sum().backward()
        opt.step()
    assert p.abs().max().item() <= 0.1 + 1e-5  # sign steps of lr=0.05 end within one step


def test_bad_settings() -> None:
    p = [torch.nn.Parameter(torch.ones(1))]
    for kwargs in ({"lr": 0.0}, {"betas": (0.9, 1.5)}, {"weight_decay": -1.0}):
        with pytest.raises(InvalidConfigError):
            Lion(p, **kwargs)  # type: ignore[arg-type]
