"""Recurrent convolutional network (Liang and Hu 2015, "Recurrent Convolutional
Neural Network for Object Recognition").

A recurrent convolutional layer (RCL) keeps its input u fixed and lets its own
feature maps x evolve over T steps, each step adding what the neighbours
computed the step before:

    z(0) = w_f * u + b
    z(t) = w_f * u + w_r * x(t-1) + b,     t = 1 .. T
    x(t) = relu(BN_t(z(t)))

with ``*`` a convolution, the feed-forward kernel w_f and the recurrent kernel
w_r shared by all steps (the layer's weights do not grow with T), and x(T) the
output. Unrolled, one RCL is a feed-forward network of depth T + 1 whose
paths have lengths 1 .. T + 1, and each unit's receptive field widens with
every step: context enters without more parameters. The paper normalizes with
local response normalization; as in later implementations we use one
BatchNorm per step (statistics differ from step to step, weights do not).

The network: a convolutional stem, then RCLs separated by max pooling, global
pooling and a linear classifier, following the paper's layout at digits' size.
"""
from __future__ import annotations

from typing import Sequence

from .. import nn
from ..tensor import Tensor


class RecurrentConv2d(nn.Module):
    """One RCL: ``RecurrentConv2d(channels, kernel_size=3, steps=3)``; input and
    output have ``channels`` maps of the same size.

    >>> import nnforge as nf
    >>> rcl = nf.models.rcnn.RecurrentConv2d(8, steps=3)
    >>> tuple(rcl(nf.zeros(2, 8, 6, 6)).shape), len(rcl.norms)
    ((2, 8, 6, 6), 4)
    """

    def __init__(self, channels: int, kernel_size: int = 3, steps: int = 3):
        super().__init__()
        if steps < 0:
            raise ValueError(f"RecurrentConv2d: steps must be >= 0, got {steps}")
        pad = kernel_size // 2
        self.steps = steps
        self.feedforward = nn.Conv2d(channels, channels, kernel_size, padding=pad)
        self.recurrent = nn.Conv2d(channels, channels, kernel_size, padding=pad, bias=False)
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(steps + 1))
        self.relu = nn.ReLU()

    def forward(self, u: Tensor) -> Tensor:
        drive = self.feedforward(u)          # w_f * u + b: the same at every step
        x = self.relu(self.norms[0](drive))  # x(0)
        for t in range(1, self.steps + 1):
            x = self.relu(self.norms[t](drive + self.recurrent(x)))
        return x


class RCNN(nn.Module):
    """``RCNN(num_classes=10, in_channels=1, channels=32, layers=2, steps=3,
    dropout=0.2)``: stem conv 3x3 + ReLU, then ``layers`` RCLs of ``steps``
    steps with 2x2 max pooling (and dropout) between them, global max pooling
    over the last maps (as in the paper) and a linear classifier.

    >>> import nnforge as nf
    >>> net = nf.models.RCNN()
    >>> tuple(net(nf.zeros(2, 1, 8, 8)).shape)
    (2, 10)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, channels: int = 32,
                 layers: int = 2, steps: int = 3, dropout: float = 0.2,
                 kernel_sizes: Sequence[int] | None = None):
        super().__init__()
        if layers < 1:
            raise ValueError(f"RCNN: layers must be >= 1, got {layers}")
        kernel_sizes = list(kernel_sizes) if kernel_sizes is not None else [3] * layers
        if len(kernel_sizes) != layers:
            raise ValueError(f"RCNN: {len(kernel_sizes)} kernel sizes for {layers} layers")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1),
                                  nn.BatchNorm2d(channels), nn.ReLU())
        body = []
        for i, k in enumerate(kernel_sizes):
            if i > 0:
                body += [nn.MaxPool2d(2), nn.Dropout(dropout)]
            body.append(RecurrentConv2d(channels, k, steps))
        self.body = nn.Sequential(*body)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.body(self.stem(x))
        x = x.amax(dim=(2, 3))  # global max pooling: the strongest response of each map
        return self.fc(self.drop(x))
