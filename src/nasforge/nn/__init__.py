"""Choices inside your own PyTorch model: the model becomes a search space and a
weight-sharing supernet.

Write the network as usual, with a :class:`LayerChoice` where an operation is to be chosen, a
:class:`ValueChoice` for a width, a kernel size or a depth (handed to the value-aware layers
:class:`Conv2d`, :class:`Conv1d`, :class:`Linear`, :class:`BatchNorm2d`, :class:`BatchNorm1d`
or to :class:`Repeat`), an :class:`InputChoice` to pick among inputs, and a :class:`Repeat` to
stack a block a chosen number of times. Then
``nasforge.spaces.module.ModuleSpace(Net, name="mymodule:Net")`` is the search space: every
black-box strategy samples its decisions, ``space.build(arch)`` is the plain network of one
architecture (built inside :func:`fixed`), and ``space.supernet()`` is the weight-sharing
network that DARTS, GDAS, PC-DARTS and SPOS train (:mod:`nasforge.nn.choice` and
:mod:`nasforge.nn.layers` say how each choice mixes).

This package imports torch; ``import nasforge`` does not import it.

Example:
    >>> from torch import nn
    >>> import nasforge.nn as nnf
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         width = nnf.ValueChoice([8, 16], label="width")
    ...         self.conv = nnf.Conv2d(3, width, 3, padding=1)
    ...         self.act = nnf.LayerChoice({"relu": nn.ReLU(), "gelu": nn.GELU()}, label="act")
    ...     def forward(self, x):
    ...         return self.act(self.conv(x))
    >>> with nnf.fixed({"width": 8, "act": "gelu"}):
    ...     net = Net()
    >>> net.conv, net.act
    (Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)), GELU(approximate='none'))
"""

from __future__ import annotations

from nasforge.nn._trace import Site, fixed
from nasforge.nn.choice import ChosenInputs, InputChoice, LayerChoice, Repeat, ValueChoice
from nasforge.nn.layers import BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Linear

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "ChosenInputs",
    "Conv1d",
    "Conv2d",
    "InputChoice",
    "LayerChoice",
    "Linear",
    "Repeat",
    "Site",
    "ValueChoice",
    "fixed",
]
